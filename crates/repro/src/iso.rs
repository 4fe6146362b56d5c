//! Hybrid ISO images: isofs writes the ISO9660 volume, El Torito and the isohybrid MBR boot
//! code; with a GPT, the protective MBR and the GPT come from gptpart, the one GPT writer,
//! with GUIDs by the one seed rule ([`Seed`]).
//!
//! The GPT of a hybrid image has, as xorriso writes it, an `ISO9660` basic-data partition from
//! sector 64 over the volume and an `EFI boot partition` over the ESP image (appended after
//! the volume, or a file inside it). The disk GUID and partition GUIDs are systemd-repart's
//! for the seed ([`Seed::gpt`]); the MBR disk signature is the seed's
//! `mbr-disk-signature` stream.
//!
//! [`IsoRequest`] is what `imgpipe iso create` asks for (a directory, options, boot images,
//! an isohybrid MBR, a sort file, reserved slots, a seed); [`IsoPlan::prepare`] checks and
//! collects everything before a byte is written, [`IsoPlan::write_to`] writes the image.

use std::io::Write;
use std::path::{Path, PathBuf};

use imgpipe_gptpart::{GptBuilder, PartitionSize, PartitionSpec, partition_type};
use imgpipe_isofs::{BiosBoot, BuildReport, Builder, EfiBoot, HybridMbr, MbrFlavor, Options};

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

/// A fixed-size slot reserved for a file (`--reserve PATH:SIZE[:ALIGN]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// Path of the file inside the image.
    pub path: String,
    /// Size of the slot in bytes.
    pub size: u64,
    /// Alignment of the slot in bytes.
    pub align: u64,
    /// How the request spelled it (`boot/cfg:64K`), for messages.
    pub spec: String,
}

/// What a hybrid ISO image is to be: the directory, the options, boot images, the isohybrid
/// MBR, the sort file, reserved slots and where the identifiers come from.
#[derive(Debug, Clone)]
pub struct IsoRequest {
    /// The directory to put in the image.
    pub dir: PathBuf,
    /// The volume label (volume identifier).
    pub label: String,
    /// The build epoch (Unix seconds).
    pub epoch: i64,
    /// Lower file times later than the epoch to the epoch.
    pub clamp_mtime: bool,
    /// Write Rock Ridge.
    pub rock_ridge: bool,
    /// Write a Joliet tree.
    pub joliet: bool,
    /// Relocate directories deeper than 8 levels (Rock Ridge CL/PL/RE).
    pub relocate_deep: bool,
    /// The boot catalog's path inside the image (isofs's default when `None`).
    pub boot_catalog: Option<String>,
    /// The BIOS El Torito boot image (a file of `dir`).
    pub bios_boot: Option<BiosBoot>,
    /// The UEFI boot image: a file of `dir`, or a host file appended after the volume.
    pub efi_boot: Option<EfiBoot>,
    /// A host file of MBR boot code (432 to 512 bytes) for an isohybrid system area.
    pub isohybrid_mbr: Option<PathBuf>,
    /// Which boot code it is (`None`: recognised from its bytes).
    pub mbr_flavor: Option<MbrFlavor>,
    /// Write a protective MBR and a GPT.
    pub gpt: bool,
    /// A `mkisofs -sort` file: lines of `PATH WEIGHT`.
    pub sort: Option<PathBuf>,
    /// Reserved slots.
    pub reserve: Vec<Reservation>,
    /// The seed of every identifier (`None`: [`default_iso_seed`] of label and epoch).
    pub seed: Option<Seed>,
}

impl IsoRequest {
    /// A request for `dir` with Rock Ridge and Joliet, no boot images and no GPT.
    pub fn new(dir: impl Into<PathBuf>, label: impl Into<String>, epoch: i64) -> Self {
        Self {
            dir: dir.into(),
            label: label.into(),
            epoch,
            clamp_mtime: false,
            rock_ridge: true,
            joliet: true,
            relocate_deep: false,
            boot_catalog: None,
            bios_boot: None,
            efi_boot: None,
            isohybrid_mbr: None,
            mbr_flavor: None,
            gpt: false,
            sort: None,
            reserve: Vec::new(),
            seed: None,
        }
    }

    fn options(&self) -> Result<Options> {
        let mut o = Options::new(&self.label, self.epoch);
        o.rock_ridge = self.rock_ridge;
        o.joliet = self.joliet;
        o.clamp_mtime = self.clamp_mtime;
        o.clamp_times = self.clamp_mtime;
        o.relocate_deep = self.relocate_deep;
        if let Some(c) = &self.boot_catalog {
            o.boot_catalog = c.clone();
        }
        o.bios_boot = self.bios_boot.clone();
        o.efi_boot = self.efi_boot.clone();
        if let Some(m) = &self.isohybrid_mbr {
            let code = std::fs::read(m).map_err(|source| Error::HostIo {
                what: "--isohybrid-mbr: cannot read",
                path: m.clone(),
                source,
            })?;
            if !(432..=512).contains(&code.len()) {
                return Err(Error::BootCodeSize {
                    path: m.clone(),
                    len: code.len(),
                });
            }
            let detected = HybridMbr::detect(code);
            o.hybrid_mbr = Some(match self.mbr_flavor {
                None => detected,
                Some(flavor) => HybridMbr { flavor, ..detected },
            });
        }
        o.gpt = self.gpt;
        Ok(o)
    }
}

/// The text of an error and of its causes, joined as the binary prints a chain.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

fn step_err(step: String) -> impl FnOnce(imgpipe_isofs::Error) -> Error {
    move |e| Error::Step {
        step,
        message: chain(&e),
    }
}

/// A checked ISO image: the tree scanned, sort weights and slots applied, boot files found,
/// the seed chosen. Nothing has been written yet.
#[derive(Debug)]
pub struct IsoPlan {
    builder: Builder,
    seed: Seed,
}

impl IsoPlan {
    /// Checks `req` and collects the image: reads the boot code, scans the tree, applies the
    /// sort file and the reserved slots, and checks that every boot image exists, all before
    /// anything is written.
    pub fn prepare(req: &IsoRequest) -> Result<Self> {
        let mut b = Builder::new(req.options()?);
        b.add_tree(&req.dir)
            .map_err(step_err(format!("cannot read {}", req.dir.display())))?;
        if let Some(sort) = &req.sort {
            apply_sort(&mut b, sort, &req.dir)?;
        }
        for r in &req.reserve {
            b.reserve_slot(&r.path, r.size, r.align)
                .map_err(step_err(format!("--reserve {}", r.spec)))?;
        }
        // The boot files named by the request must be in the tree before anything is written.
        let efi_in_tree = match &req.efi_boot {
            Some(EfiBoot::InTree { path }) => Some(path),
            _ => None,
        };
        let boot = [
            ("--bios-boot", req.bios_boot.as_ref().map(|b| &b.path)),
            ("--efi-boot", efi_in_tree),
        ];
        for (option, path) in boot {
            if let Some(p) = path
                && !req.dir.join(p.trim_start_matches('/')).is_file()
            {
                return Err(Error::NotAFile {
                    option,
                    path: p.clone(),
                    within: Some(req.dir.clone()),
                });
            }
        }
        if let Some(EfiBoot::Appended { file }) = &req.efi_boot
            && !file.is_file()
        {
            return Err(Error::NotAFile {
                option: "--efi-partition",
                path: file.display().to_string(),
                within: None,
            });
        }
        let seed = req
            .seed
            .unwrap_or_else(|| default_iso_seed(&b.options().volume_id, b.options().epoch));
        Ok(Self { builder: b, seed })
    }

    /// Bytes of file data the image will hold (for progress).
    pub fn data_bytes(&self) -> u64 {
        self.builder.data_bytes()
    }

    /// The seed the identifiers come from.
    pub fn seed(&self) -> Seed {
        self.seed
    }

    /// Writes the image ([`build_hybrid`]).
    pub fn write_to<W: Write>(self, w: W) -> Result<BuildReport> {
        build_hybrid(self.builder, self.seed, w)
    }
}

/// Applies a `mkisofs -sort` file: `PATH WEIGHT` lines, `#` comments; paths may start with
/// the tree's directory.
fn apply_sort(b: &mut Builder, sort: &Path, dir: &Path) -> Result<()> {
    let text = std::fs::read_to_string(sort).map_err(|source| Error::HostIo {
        what: "cannot read",
        path: sort.to_path_buf(),
        source,
    })?;
    for (n, line) in text.lines().enumerate() {
        let at = format!("{}:{}", sort.display(), n + 1);
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((path, weight)) = line.rsplit_once(char::is_whitespace) else {
            return Err(Error::Step {
                step: at,
                message: "expected `PATH WEIGHT`".to_owned(),
            });
        };
        let weight: i32 = weight
            .parse()
            .map_err(|e: std::num::ParseIntError| Error::Step {
                step: format!("{at}: bad weight"),
                message: e.to_string(),
            })?;
        let path = path.trim();
        let rel = Path::new(path)
            .strip_prefix(dir)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|_| path.to_string());
        b.set_sort_weight(&rel, weight).map_err(step_err(at))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use imgpipe_isofs::{Metadata, Reader};

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

    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("boot")).unwrap();
        std::fs::write(d.path().join("boot/bios.img"), [1u8; 2048]).unwrap();
        std::fs::write(d.path().join("hello"), b"hello\n").unwrap();
        d
    }

    fn bios(path: &str) -> Option<BiosBoot> {
        Some(BiosBoot {
            path: path.into(),
            load_size: None,
            boot_info_table: false,
            grub2_boot_info: false,
        })
    }

    #[test]
    fn a_request_refuses_a_missing_boot_image_before_writing() {
        let d = tree();
        let mut req = IsoRequest::new(d.path(), "REQ", 1_700_000_000);
        req.bios_boot = bios("boot/missing.img");
        let e = IsoPlan::prepare(&req).unwrap_err();
        assert!(
            matches!(&e, Error::NotAFile { option: "--bios-boot", path, .. } if path == "boot/missing.img"),
            "{e:?}"
        );
        req.bios_boot = bios("boot/bios.img");
        req.efi_boot = Some(EfiBoot::Appended {
            file: d.path().join("no-esp.img"),
        });
        assert!(matches!(
            IsoPlan::prepare(&req),
            Err(Error::NotAFile {
                option: "--efi-partition",
                within: None,
                ..
            })
        ));
        req.efi_boot = None;
        req.isohybrid_mbr = Some(d.path().join("hello"));
        assert!(matches!(
            IsoPlan::prepare(&req),
            Err(Error::BootCodeSize { len: 6, .. })
        ));
        // `prepare` has no writer: a refused request has written nothing, by construction.
    }

    #[test]
    fn a_request_builds_what_the_builder_builds() {
        let d = tree();
        std::fs::write(d.path().join("sort"), b"# weights\nhello 5\n").unwrap();
        let mut req = IsoRequest::new(d.path(), "REQ", 1_700_000_000);
        req.bios_boot = bios("/boot/bios.img");
        req.sort = Some(d.path().join("sort"));
        req.reserve.push(Reservation {
            path: "slot".into(),
            size: 4096,
            align: 2048,
            spec: "slot:4K".into(),
        });
        let plan = IsoPlan::prepare(&req).unwrap();
        assert_eq!(plan.seed(), default_iso_seed("REQ", 1_700_000_000));
        let mut got = Vec::new();
        let rep = plan.write_to(&mut got).unwrap();
        assert_eq!(rep.slots.len(), 1);

        let mut o = Options::new("REQ", 1_700_000_000);
        o.bios_boot = bios("/boot/bios.img");
        let mut b = Builder::new(o);
        b.add_tree(d.path()).unwrap();
        b.set_sort_weight("hello", 5).unwrap();
        b.reserve_slot("slot", 4096, 2048).unwrap();
        let mut want = Vec::new();
        build_hybrid(b, default_iso_seed("REQ", 1_700_000_000), &mut want).unwrap();
        assert_eq!(got, want);

        std::fs::write(d.path().join("sort"), b"hello x\n").unwrap();
        let e = IsoPlan::prepare(&req).unwrap_err();
        assert!(
            e.to_string()
                .ends_with(":1: bad weight: invalid digit found in string"),
            "{e}"
        );
    }
}
