//! Hybrid ISO images with a GPT: isofs writes the volume, El Torito and the boot code,
//! gptpart the protective MBR and the GPT (`imgpipe_repro::iso::build_hybrid`); checked with
//! xorriso's reports, sfdisk and sgdisk.

use std::fs;
use std::io::Cursor;
use std::path::Path;

use imgpipe_isofs::{BiosBoot, Builder, EfiBoot, HybridMbr, Metadata, Options, Reader};
use imgpipe_repro::Seed;
use imgpipe_repro::iso::build_hybrid;
use imgpipe_testsupport::{pattern, run, stdout_of, tempdir, tool};

fn esp_image(dir: &Path) -> Option<Vec<u8>> {
    let mkfs = tool("mkfs.vfat")?;
    let p = dir.join("esp.img");
    fs::write(&p, vec![0u8; 1440 * 1024]).unwrap();
    run(&mkfs, ["-n".as_ref(), "ESP".as_ref(), p.as_os_str()]);
    Some(fs::read(&p).unwrap())
}

fn report(xorriso: &Path, iso: &Path, what: &str) -> String {
    stdout_of(
        xorriso,
        [
            "-indev".as_ref(),
            iso.as_os_str(),
            what.as_ref(),
            "plain".as_ref(),
        ],
    )
}

#[test]
fn gpt_with_appended_esp_partition() {
    let t = tempdir();
    let Some(esp) = esp_image(t.path()) else {
        return;
    };
    let esp_path = t.path().join("esp.img");
    let mut o = Options::new("GPTHYBRID", 1_700_000_000);
    o.bios_boot = Some(BiosBoot {
        path: "boot/bios.img".into(),
        load_size: None,
        boot_info_table: false,
        grub2_boot_info: false,
    });
    o.efi_boot = Some(EfiBoot::Appended {
        file: esp_path.clone(),
    });
    o.hybrid_mbr = Some(HybridMbr::detect(pattern(432)));
    o.gpt = true;
    let mut b = Builder::new(o);
    b.add_file("boot/bios.img", Metadata::file(0o644), pattern(2048))
        .unwrap();
    let mut img = Cursor::new(Vec::new());
    let seed = Seed::parse("0123456789abcdef0123456789abcdef").unwrap();
    let rep = build_hybrid(b, seed, &mut img).unwrap();
    let img = img.into_inner();
    let iso = t.path().join("gpt.iso");
    fs::write(&iso, &img).unwrap();
    let esp_block = (rep.volume_blocks) as usize;
    assert_eq!(
        &img[esp_block * 2048..esp_block * 2048 + esp.len()],
        &esp[..]
    );

    let mut r = Reader::open(Cursor::new(&img)).unwrap();
    let cat = r.boot_catalog().unwrap().unwrap();
    assert_eq!(cat.entries[1].load_rba as usize, esp_block);
    assert_eq!(cat.entries[0].sector_count, 4);
    assert!(r.system_area().gpt);
    // One GPT writer, one GUID rule: the GUIDs are systemd-repart's for the seed.
    let d = imgpipe_gptpart::read_gpt(Cursor::new(&img)).unwrap();
    assert!(d.is_clean(), "{d:?}");
    assert_eq!(
        d.disk_guid.to_string(),
        "6913F4B6-6690-4A57-A202-F1B53C56DBDF"
    );
    assert_eq!(
        d.partitions[1].unique_guid.to_string(),
        "B2D552B0-45DB-4678-B34F-066168609D1A"
    );
    assert_eq!(d.partitions[0].name, "ISO9660");
    assert_eq!(d.partitions[0].first_lba, 64);

    if let Some(sfdisk) = tool("sfdisk") {
        let d = stdout_of(&sfdisk, ["-d".as_ref(), iso.as_os_str()]);
        assert!(d.contains("label: gpt"), "{d}");
        assert!(
            d.contains(&format!(
                "start=       {:>5}, size=        2880, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
                esp_block * 4
            )),
            "{d}"
        );
        assert!(
            d.contains("type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"),
            "{d}"
        );
    }
    if let Some(sgdisk) = tool("sgdisk") {
        let v = stdout_of(&sgdisk, ["-v".as_ref(), iso.as_os_str()]);
        assert!(v.contains("No problems found"), "{v}");
    }
    if let Some(xorriso) = tool("xorriso") {
        let sa = report(&xorriso, &iso, "-report_system_area");
        assert!(sa.contains("GPT"), "{sa}");
        assert!(sa.contains("0xee"), "{sa}");
        let el = report(&xorriso, &iso, "-report_el_torito");
        assert!(el.contains("UEFI  y   none  0x0000  0x00   2880"), "{el}");
    }
}
