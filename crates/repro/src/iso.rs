//! Hybrid ISO images: isofs writes the ISO9660 volume, El Torito and the isohybrid MBR boot
//! code; with a GPT, the protective MBR and the GPT come from gptpart, the one GPT writer,
//! with GUIDs by the one seed rule ([`Seed`]).
//!
//! The GPT of a hybrid image has, as xorriso writes it, an `ISO9660` basic-data partition from
//! sector 64 over the volume and an `EFI boot partition` over the ESP image (appended after
//! the volume, or a file inside it). The disk GUID and partition GUIDs are systemd-repart's
//! for the seed ([`Seed::gpt`]); the MBR disk signature is the seed's
//! `mbr-disk-signature` stream.

use std::io::Write;

use imgpipe_gptpart::{GptBuilder, PartitionSize, PartitionSpec, partition_type};
use imgpipe_isofs::{BuildReport, Builder};

use crate::error::{Error, Result};
use crate::seed::{Purpose, Seed};

/// First 512-byte sector of the ISO9660 partition (as xorriso: 64, i.e. 32 KiB).
const ISO_FIRST_SECTOR: u64 = 64;

fn iso_err(step: &'static str) -> impl FnOnce(imgpipe_isofs::Error) -> Error {
    move |e| Error::Step {
        step: step.to_owned(),
        message: e.to_string(),
    }
}

fn gpt_err(e: imgpipe_gptpart::Error) -> Error {
    Error::Step {
        step: "planning the hybrid image's GPT".to_owned(),
        message: e.to_string(),
    }
}

/// The seed of an image built without one: from its volume id and epoch, so one tree and
/// one set of options give one image.
pub fn default_iso_seed(volume_id: &str, epoch: i64) -> Seed {
    Seed::from_material(format!("imgpipe iso\0{volume_id}\0{epoch}").as_bytes())
}

/// Plans the GPT of `builder`'s image (the options must ask for one, [`imgpipe_isofs::Options::gpt`])
/// and returns its byte regions, ready for [`Builder::set_partition_tables`].
pub fn hybrid_gpt_tables(builder: &Builder, seed: Seed) -> Result<Vec<(u64, Vec<u8>)>> {
    let l = builder
        .system_area_layout()
        .map_err(iso_err("planning the ISO image"))?;
    let esp_type = partition_type("esp").ok_or(Error::Unsupported {
        feature: "the ESP partition type",
    })?;
    let data_type =
        partition_type("EBD0A0A2-B9E5-4433-87C0-68B6B72699C7").ok_or(Error::Unsupported {
            feature: "the basic data partition type",
        })?;
    let iso_sectors = u64::from(l.volume_blocks) * 4;
    let iso_part = |end_sector: u64| {
        PartitionSpec::new(
            data_type,
            PartitionSize::Bytes((end_sector - ISO_FIRST_SECTOR) * 512),
        )
        .name("ISO9660")
        .start(ISO_FIRST_SECTOR * 512)
    };
    let esp_part = |block: u32, bytes: u64| {
        PartitionSpec::new(esp_type, PartitionSize::Bytes(bytes))
            .name("EFI boot partition")
            .start(u64::from(block) * 2048)
    };
    let mut b = GptBuilder::new(l.total_bytes, seed.gpt())
        .sector_size(512)
        .alignment(512)
        .mbr_disk_signature(mbr_disk_signature(seed));
    b = match l.efi {
        Some(e) if e.appended => b
            .partition(iso_part(u64::from(e.block) * 4))
            .partition(esp_part(e.block, e.bytes)),
        Some(e) => b.partition(esp_part(e.block, e.bytes)),
        None => b.partition(iso_part(iso_sectors)),
    };
    Ok(b.plan().map_err(gpt_err)?.table_regions())
}

/// The MBR disk signature of a hybrid image (isohybrid MBR or protective MBR) by the seed
/// rule.
pub fn mbr_disk_signature(seed: Seed) -> u32 {
    seed.u32(&Purpose::Other {
        label: "mbr-disk-signature",
        index: 0,
    })
}

/// Writes `builder`'s image to `w`; when its options ask for a GPT, the protective MBR and
/// GPT are planned by gptpart with GUIDs from `seed` ([`hybrid_gpt_tables`]).
pub fn build_hybrid<W: Write>(mut builder: Builder, seed: Seed, w: W) -> Result<BuildReport> {
    builder.set_mbr_disk_signature(mbr_disk_signature(seed));
    if builder.options().gpt {
        let tables = hybrid_gpt_tables(&builder, seed)?;
        builder.set_partition_tables(tables);
    }
    builder.build(w).map_err(iso_err("writing the ISO image"))
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use imgpipe_isofs::{BiosBoot, EfiBoot, HybridMbr, Metadata, Options, Reader};

    use super::*;

    fn builder(gpt: bool, efi: Option<EfiBoot>) -> Builder {
        let mut o = Options::new("HYBRID", 1_700_000_000);
        o.bios_boot = Some(BiosBoot {
            path: "boot/bios.img".into(),
            load_size: None,
            boot_info_table: false,
            grub2_boot_info: false,
        });
        o.efi_boot = efi;
        o.hybrid_mbr = Some(HybridMbr::detect(vec![0xAB; 432]));
        o.gpt = gpt;
        let mut b = Builder::new(o);
        b.add_file("boot/bios.img", Metadata::file(0o644), vec![1u8; 2048])
            .unwrap();
        b.add_file("efi.img", Metadata::file(0o644), vec![2u8; 10_000])
            .unwrap();
        b
    }

    #[test]
    fn gpt_comes_from_gptpart_with_seeded_guids() {
        let seed = Seed::parse("0123456789abcdef0123456789abcdef").unwrap();
        let mut img = Cursor::new(Vec::new());
        build_hybrid(
            builder(
                true,
                Some(EfiBoot::InTree {
                    path: "efi.img".into(),
                }),
            ),
            seed,
            &mut img,
        )
        .unwrap();
        let bytes = img.into_inner();
        // Boot code patched over gptpart's protective MBR; the 0xEE entry kept.
        assert_eq!(bytes[..432], [0xAB; 432]);
        assert_eq!(bytes[446 + 4], 0xEE);
        let d = imgpipe_gptpart::read_gpt(Cursor::new(&bytes)).unwrap();
        assert!(d.is_clean(), "{d:?}");
        assert_eq!(d.disk_guid, seed.gpt().disk_guid());
        assert_eq!(d.partitions.len(), 1);
        assert_eq!(d.partitions[0].name, "EFI boot partition");
        let esp = partition_type("esp").unwrap();
        assert_eq!(
            d.partitions[0].unique_guid,
            seed.gpt().partition_guid(esp, 0)
        );
        // Still an ISO whose ESP partition is the El Torito UEFI image.
        let mut r = Reader::open(Cursor::new(&bytes)).unwrap();
        let cat = r.boot_catalog().unwrap().unwrap();
        assert_eq!(
            u64::from(cat.entries[1].load_rba) * 4,
            d.partitions[0].first_lba
        );
    }

    #[test]
    fn without_gpt_isofs_writes_its_mbr_and_with_gpt_alone_refuses() {
        let seed = Seed::from_material(b"x");
        let mut a = Vec::new();
        build_hybrid(builder(false, None), seed, &mut a).unwrap();
        // isofs alone writes the same MBR, with the disk signature it is given.
        let mut b = Vec::new();
        let mut alone = builder(false, None);
        alone.set_mbr_disk_signature(mbr_disk_signature(seed));
        alone.build(&mut b).unwrap();
        assert_eq!(a, b);
        assert_eq!(a[440..444], mbr_disk_signature(seed).to_le_bytes());
        assert_ne!(
            mbr_disk_signature(seed),
            mbr_disk_signature(Seed::from_material(b"y"))
        );
        assert!(builder(true, None).build(&mut Vec::new()).is_err());
    }
}
