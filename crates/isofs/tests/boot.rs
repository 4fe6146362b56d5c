//! El Torito and hybrid system areas we write, checked with xorriso's reports, sfdisk and
//! sgdisk.

use std::fs;
use std::io::Cursor;
use std::path::Path;

use imgpipe_isofs::{BiosBoot, Builder, EfiBoot, HybridMbr, MbrFlavor, Metadata, Options, Reader};
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

fn boot_builder(esp: Vec<u8>, flavor: MbrFlavor) -> Builder {
    let mut o = Options::new("HYBRID", 1_700_000_000);
    o.bios_boot = Some(BiosBoot {
        path: "boot/bios.img".into(),
        load_size: Some(4),
        boot_info_table: true,
        grub2_boot_info: flavor == MbrFlavor::Grub2,
    });
    o.efi_boot = Some(EfiBoot::InTree {
        path: "boot/efi.img".into(),
    });
    o.boot_catalog = "boot/boot.cat".into();
    o.hybrid_mbr = Some(HybridMbr {
        boot_code: pattern(432),
        flavor,
    });
    let mut b = Builder::new(o);
    b.add_file("boot/bios.img", Metadata::file(0o644), pattern(8192))
        .unwrap();
    b.add_file("boot/efi.img", Metadata::file(0o644), esp)
        .unwrap();
    b.add_file("README", Metadata::file(0o644), b"hybrid\n".to_vec())
        .unwrap();
    b
}

#[test]
fn bios_and_uefi_hybrid_mbr() {
    let t = tempdir();
    let Some(esp) = esp_image(t.path()) else {
        return;
    };
    for flavor in [MbrFlavor::Isolinux, MbrFlavor::Grub2] {
        let b = boot_builder(esp.clone(), flavor);
        let mut img = Cursor::new(Vec::new());
        let rep = b.build(&mut img).unwrap();
        let img = img.into_inner();
        let iso = t.path().join(format!("{flavor:?}.iso"));
        fs::write(&iso, &img).unwrap();

        let mut r = Reader::open(Cursor::new(&img)).unwrap();
        let cat = r.boot_catalog().unwrap().unwrap();
        assert_eq!(cat.entries.len(), 2);
        let bios = r.lookup("boot/bios.img").unwrap();
        let bios_lba = bios.extents[0].block;
        assert_eq!(cat.entries[0].load_rba, bios_lba);
        assert_eq!(cat.entries[0].sector_count, 4);
        assert_eq!(rep.boot_files[0].offset, u64::from(bios_lba) * 2048);
        let efi = r.lookup("boot/efi.img").unwrap();
        assert_eq!(cat.entries[1].load_rba, efi.extents[0].block);
        assert_eq!(cat.entries[1].sector_count, 2880);
        // Boot info table: PVD at 16, the image's block, its length.
        let data = r.read_to_vec(&bios, 1 << 20).unwrap();
        assert_eq!(&data[8..12], &16u32.to_le_bytes());
        assert_eq!(&data[12..16], &bios_lba.to_le_bytes());
        assert_eq!(&data[16..20], &8192u32.to_le_bytes());
        // MBR address patch and GRUB's own patch.
        let addr = u64::from_le_bytes(img[432..440].try_into().unwrap());
        match flavor {
            MbrFlavor::Isolinux => assert_eq!(addr, u64::from(bios_lba) * 4),
            MbrFlavor::Grub2 => {
                assert_eq!(addr, u64::from(bios_lba) * 4 + 4);
                let g = u64::from_le_bytes(data[2548..2556].try_into().unwrap());
                assert_eq!(g, u64::from(bios_lba) * 4 + 5);
            }
        }
        assert_eq!(&img[..432], &pattern(432)[..]);

        let Some(xorriso) = tool("xorriso") else {
            return;
        };
        let el = report(&xorriso, &iso, "-report_el_torito");
        assert!(
            el.contains(&format!(
                "El Torito boot img :   1  BIOS  y   none  0x0000  0x00      4  {bios_lba:>10}"
            )),
            "{el}"
        );
        assert!(
            el.contains("El Torito img opts :   1  boot-info-table"),
            "{el}"
        );
        assert!(
            el.contains("El Torito img path :   1  /boot/bios.img"),
            "{el}"
        );
        assert!(
            el.contains("El Torito img path :   2  /boot/efi.img"),
            "{el}"
        );
        assert!(el.contains("El Torito cat path : /boot/boot.cat"), "{el}");
        if flavor == MbrFlavor::Grub2 {
            assert!(el.contains("grub2-boot-info"), "{el}");
        }
        let sa = report(&xorriso, &iso, "-report_system_area");
        let blocks = img.len() / 512;
        assert!(
            sa.contains(&format!(
                "MBR partition      :   1   0x80  0x00            0  {blocks:>11}"
            )),
            "{sa}"
        );
        assert!(
            sa.contains(&format!(
                "MBR partition      :   2   0x00  0xef  {:>11}         2880",
                efi.extents[0].block * 4
            )),
            "{sa}"
        );
        assert!(
            sa.contains("MBR partition path :   2  /boot/efi.img"),
            "{sa}"
        );
        if let Some(sfdisk) = tool("sfdisk") {
            let d = stdout_of(&sfdisk, ["-d".as_ref(), iso.as_os_str()]);
            assert!(d.contains("label: dos"), "{d}");
            assert!(d.contains("type=ef"), "{d}");
            assert!(d.contains("bootable"), "{d}");
        }
    }
}

#[test]
fn several_el_torito_entries() {
    let mut o = Options::new("MULTIBOOT", 0);
    o.bios_boot = Some(BiosBoot {
        path: "a.img".into(),
        load_size: Some(4),
        boot_info_table: false,
        grub2_boot_info: false,
    });
    o.efi_boot = Some(EfiBoot::InTree {
        path: "b.img".into(),
    });
    o.extra_boot = vec![
        imgpipe_isofs::ExtraBoot {
            path: "c.img".into(),
            platform: 0xEF,
            load_size: None,
        },
        imgpipe_isofs::ExtraBoot {
            path: "d.img".into(),
            platform: 0,
            load_size: Some(8),
        },
    ];
    let mut b = Builder::new(o);
    for (name, len) in [
        ("a.img", 2048),
        ("b.img", 4096),
        ("c.img", 6000),
        ("d.img", 9000),
    ] {
        b.add_file(name, Metadata::file(0o644), pattern(len))
            .unwrap();
    }
    let mut img = Cursor::new(Vec::new());
    b.build(&mut img).unwrap();
    let img = img.into_inner();
    let mut r = Reader::open(Cursor::new(&img)).unwrap();
    let cat = r.boot_catalog().unwrap().unwrap();
    let got: Vec<(u8, u16)> = cat
        .entries
        .iter()
        .map(|e| (e.platform, e.sector_count))
        .collect();
    assert_eq!(got, [(0, 4), (0xEF, 8), (0xEF, 12), (0, 8)]);
    for (e, name) in cat.entries.iter().zip(["a.img", "b.img", "c.img", "d.img"]) {
        assert_eq!(e.load_rba, r.lookup(name).unwrap().extents[0].block);
    }
    let t = tempdir();
    let iso = t.path().join("multi.iso");
    fs::write(&iso, &img).unwrap();
    if let Some(xorriso) = tool("xorriso") {
        let el = report(&xorriso, &iso, "-report_el_torito");
        assert_eq!(el.matches("El Torito boot img :").count(), 4, "{el}");
        assert!(el.contains("El Torito img path :   4  /d.img"), "{el}");
    }
}
