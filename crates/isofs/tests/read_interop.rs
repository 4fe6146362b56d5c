//! What others write: images made by xorriso and genisoimage list exactly as xorriso lists
//! them and extract to the source tree; El Torito catalogs read as xorriso reports them.

mod common;

use std::fs;
use std::path::Path;

use common::{our_listing, xorriso_listing};
use imgpipe_isofs::{ExtractOptions, Namespace, Reader};
use imgpipe_testsupport::{
    Compare, TreeOptions, diff_trees, run, stdout_of, tempdir, tool, tricky_tree,
};

fn args(list: &[&str], tail: &[&Path]) -> Vec<std::ffi::OsString> {
    list.iter()
        .map(Into::into)
        .chain(tail.iter().map(|p| p.as_os_str().to_owned()))
        .collect()
}

fn check_image(xorriso: &Path, iso: &Path, src: &Path, compare: Compare) {
    let data = fs::read(iso).unwrap();
    let ours = our_listing(&data);
    let theirs = xorriso_listing(xorriso, iso);
    assert_eq!(
        ours,
        theirs,
        "{}: listing differs from xorriso's",
        iso.display()
    );
    let mut r = Reader::open(std::io::Cursor::new(&data)).unwrap();
    assert_eq!(r.namespace(), Namespace::RockRidge);
    r.check_path_table().unwrap();
    let out = iso.with_extension("out");
    // Devices and set-id bits as the source has them: asked for, with owners.
    r.extract(&out, ExtractOptions::full()).unwrap();
    // genisoimage's (empty once relocations are undone) rr_moved stays visible, as in
    // xorriso's listing and the Linux kernel's view.
    let d: Vec<String> = diff_trees(src, &out, compare)
        .into_iter()
        .filter(|l| l != "only in second: rr_moved")
        .collect();
    assert!(d.is_empty(), "{}: {d:#?}", iso.display());
}

#[test]
fn xorriso_and_genisoimage_images() {
    let t = tempdir();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    tricky_tree(&src, TreeOptions::default());
    let Some(xorriso) = tool("xorriso") else {
        return;
    };
    let x = t.path().join("x.iso");
    common::run_utf8(
        &xorriso,
        args(
            &["-as", "mkisofs", "-R", "-J", "-joliet-long", "-o"],
            &[&x, &src],
        ),
    );
    check_image(
        &xorriso,
        &x,
        &src,
        Compare {
            owner: false,
            ..Compare::default()
        },
    );
    // The Joliet tree of the same image: names only.
    let data = fs::read(&x).unwrap();
    let mut r = Reader::open_with(
        std::io::Cursor::new(&data),
        imgpipe_isofs::Limits::default(),
        Some(Namespace::Joliet),
    )
    .unwrap();
    let names: Vec<String> = r.entries().unwrap().into_iter().map(|(p, _)| p).collect();
    assert!(
        names.contains(&"names/unicode-\u{e9}t\u{e9}-\u{65e5}\u{672c}.txt".to_string()),
        "{names:?}"
    );

    if let Some(genisoimage) = tool("genisoimage") {
        // genisoimage relocates the deep chain (RE/CL/PL) and cannot store FIFOs or big names
        // beyond its limits, so it gets a tree without special files.
        let gsrc = t.path().join("gsrc");
        fs::create_dir(&gsrc).unwrap();
        tricky_tree(
            &gsrc,
            TreeOptions {
                special_files: false,
                sparse: false,
                ..TreeOptions::default()
            },
        );
        let g = t.path().join("g.iso");
        common::run_utf8(
            &genisoimage,
            args(&["-R", "-J", "-joliet-long", "-quiet", "-o"], &[&g, &gsrc]),
        );
        let data = fs::read(&g).unwrap();
        let mut r = Reader::open(std::io::Cursor::new(&data)).unwrap();
        let listed = r.entries().unwrap();
        // The relocated chain reads at its original place.
        assert!(
            listed
                .iter()
                .any(|(p, _)| p == "deep/d0/d1/d2/d3/d4/d5/d6/d7/d8/d9/bottom.txt"),
            "{:?}",
            listed.iter().map(|(p, _)| p).collect::<Vec<_>>()
        );
        check_image(
            &xorriso,
            &g,
            &gsrc,
            Compare {
                owner: false,
                dir_mtime: false,
                ..Compare::default()
            },
        );
    }
}

#[test]
fn el_torito_catalog_matches_xorriso_report() {
    let Some(xorriso) = tool("xorriso") else {
        return;
    };
    let Some(mkfs_vfat) = tool("mkfs.vfat") else {
        return;
    };
    let t = tempdir();
    let src = t.path().join("src");
    fs::create_dir_all(src.join("boot")).unwrap();
    fs::write(
        src.join("boot/bios.img"),
        imgpipe_testsupport::pattern(4096),
    )
    .unwrap();
    let efi = src.join("boot/efi.img");
    fs::write(&efi, vec![0u8; 1440 * 1024]).unwrap();
    run(&mkfs_vfat, [efi.as_os_str()]);
    let iso = t.path().join("boot.iso");
    run(
        &xorriso,
        args(
            &[
                "-as",
                "mkisofs",
                "-R",
                "-J",
                "-b",
                "boot/bios.img",
                "-c",
                "boot/boot.cat",
                "-no-emul-boot",
                "-boot-load-size",
                "4",
                "-boot-info-table",
                "-eltorito-alt-boot",
                "-e",
                "boot/efi.img",
                "-no-emul-boot",
                "-o",
            ],
            &[&iso, &src],
        ),
    );
    let data = fs::read(&iso).unwrap();
    let mut r = Reader::open(std::io::Cursor::new(&data)).unwrap();
    let cat = r.boot_catalog().unwrap().unwrap();
    let report = stdout_of(
        &xorriso,
        args(&["-indev"], &[&iso])
            .into_iter()
            .chain(["-report_el_torito".into(), "plain".into()]),
    );
    let theirs: Vec<Vec<String>> = report
        .lines()
        .filter(|l| l.starts_with("El Torito boot img :"))
        .map(|l| {
            l.split(':')
                .nth(1)
                .unwrap()
                .split_whitespace()
                .map(String::from)
                .collect()
        })
        .collect();
    assert_eq!(theirs.len(), cat.entries.len(), "{report}");
    for (e, x) in cat.entries.iter().zip(&theirs) {
        // N Pltf B Emul Ld_seg Hdpt Ldsiz LBA
        let pltf = if e.platform == 0xEF { "UEFI" } else { "BIOS" };
        assert_eq!(x[1], pltf);
        assert_eq!(x[2], if e.bootable { "y" } else { "n" });
        assert_eq!(x[3], "none");
        assert_eq!(x[4], format!("0x{:04x}", e.load_segment));
        assert_eq!(x[6], e.sector_count.to_string());
        assert_eq!(x[7], e.load_rba.to_string());
    }
    assert_eq!(cat.entries[1].sector_count, 2880);
}

/// Real ISOs shipped in Debian packages (grub-rescue-pc, ipxe, memtest86+): we list them as
/// xorriso does, report the same El Torito entries, and extract the same tree.
#[test]
fn debian_package_isos() {
    let Some(xorriso) = tool("xorriso") else {
        return;
    };
    let isos = [
        "/usr/lib/grub-rescue/grub-rescue-cdrom.iso",
        "/usr/lib/ipxe/ipxe.iso",
        "/usr/lib/memtest86+/memtest86+x64.iso",
    ];
    let t = tempdir();
    for (k, iso) in isos.iter().enumerate() {
        let iso = Path::new(iso);
        if !iso.exists() {
            assert!(
                !imgpipe_testsupport::in_ci(),
                "{} missing under CI=true",
                iso.display()
            );
            eprintln!("skipping: {} not installed", iso.display());
            continue;
        }
        let data = fs::read(iso).unwrap();
        common::assert_same_listing(
            &our_listing(&data),
            &xorriso_listing(&xorriso, iso),
            &iso.display().to_string(),
        );
        let mut r = Reader::open(std::io::Cursor::new(&data)).unwrap();
        let report = stdout_of(
            &xorriso,
            args(&["-indev"], &[iso])
                .into_iter()
                .chain(["-report_el_torito".into(), "plain".into()]),
        );
        let theirs: Vec<Vec<String>> = report
            .lines()
            .filter(|l| l.starts_with("El Torito boot img :"))
            .map(|l| {
                l.split(':')
                    .nth(1)
                    .unwrap()
                    .split_whitespace()
                    .map(String::from)
                    .collect()
            })
            .collect();
        let cat = r.boot_catalog().unwrap();
        let ours: Vec<Vec<String>> = cat
            .map(|c| {
                c.entries
                    .iter()
                    .enumerate()
                    .map(|(i, e)| {
                        vec![
                            (i + 1).to_string(),
                            if e.platform == 0xEF { "UEFI" } else { "BIOS" }.to_string(),
                            if e.bootable { "y" } else { "n" }.to_string(),
                            match e.emulation {
                                imgpipe_isofs::raw::Emulation::NoEmulation => "none".to_string(),
                                imgpipe_isofs::raw::Emulation::HardDisk => "hd".to_string(),
                                imgpipe_isofs::raw::Emulation::Floppy12 => "fd1.2".to_string(),
                                imgpipe_isofs::raw::Emulation::Floppy144 => "fd1.4".to_string(),
                                imgpipe_isofs::raw::Emulation::Floppy288 => "fd2.8".to_string(),
                                imgpipe_isofs::raw::Emulation::Other(x) => format!("{x}"),
                            },
                            format!("0x{:04x}", e.load_segment),
                            format!("0x{:02x}", e.system_type),
                            e.sector_count.to_string(),
                            e.load_rba.to_string(),
                        ]
                    })
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(ours, theirs, "{}: {report}", iso.display());
        let ours_out = t.path().join(format!("ours{k}"));
        r.extract(&ours_out, ExtractOptions::default()).unwrap();
        let theirs_out = t.path().join(format!("theirs{k}"));
        run(
            &xorriso,
            args(&["-osirrox", "on", "-indev"], &[iso])
                .into_iter()
                .chain(["-extract".into(), "/".into(), theirs_out.clone().into()]),
        );
        let d = diff_trees(
            &theirs_out,
            &ours_out,
            Compare {
                owner: false,
                mtime: true,
                dir_mtime: false,
                mode: true,
            },
        );
        assert!(d.is_empty(), "{}: {d:#?}", iso.display());
    }
}
