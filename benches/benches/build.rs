//! `imgpipe build` against the same composition done with the C tools, on the same inputs: a
//! ~1 GB rootfs-like tree (a bounded copy of /usr, or `IMGPIPE_BENCH_TREE`) made into a live
//! ISO (squashfs root, GRUB for BIOS and UEFI, the FAT efiboot.img, isohybrid MBR, GPT).
//!
//! The C side: `mksquashfs` (same compressor, block size and thread count), `grub-mkimage`
//! twice, `mkfs.vfat` + `mmd` + `mcopy` for efiboot.img, `xorriso -as mkisofs` with the boot
//! options `imgpipe build` uses. Ours: one `imgpipe_repro::build::build` call (which also
//! hashes every input and output for the manifest, and applies a kickstart). Each side runs
//! `IMGPIPE_BENCH_RUNS` times (default 3), alternating; the medians and their ratio are
//! printed (ratio > 1: we are faster; the issue's target is ours <= 0.8x theirs, a ratio
//! >= 1.25).
//!
//! The same again with an EROFS root (`imgpipe build --rootfs erofs` against `mkfs.erofs`
//! 1.8.6 with `--workers` = the cores, same compressor) when mkfs.erofs 1.8.6 is found.
//!
//! Environment: `IMGPIPE_BENCH_TREE`, `IMGPIPE_BENCH_MB` (default 1024),
//! `IMGPIPE_BENCH_COMP` (squashfs compressors, default `gzip,xz,zstd`: mksquashfs's default,
//! `imgpipe build`'s and lorax's default, and the fastest; an EROFS root takes the same
//! algorithm, deflate for gzip and lzma for xz),
//! `IMGPIPE_BENCH_ROOTFS` (default `squashfs,erofs`), `IMGPIPE_BENCH_RUNS`,
//! `IMGPIPE_BENCH_XZ_BCJ` (default `x86`: a squashfs xz root tries the x86 BCJ filter on each
//! block on both sides, `imgpipe build`'s default and livemedia-creator's `-Xbcj x86` on
//! x86-64; `none` for plain xz on both).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use imgpipe_benches::{copy_usr, have, median, print_ratio, sh};
use imgpipe_repro::build::{BuildRequest, RootFs};
use imgpipe_squashfs::erofs::{ErofsAlgorithm, ErofsCompression, ErofsWriteOptions};
use imgpipe_squashfs::{Compression, Compressor, WriteOptions, bcj};

const MODULES: &[&str] = &[
    "iso9660",
    "normal",
    "configfile",
    "linux",
    "search",
    "search_label",
    "search_fs_uuid",
    "serial",
    "terminal",
    "echo",
    "test",
    "gzio",
    "part_gpt",
    "part_msdos",
];

/// [`imgpipe_benches::timed`] after a `sync`, so one side's dirty pages are not the other's.
fn timed(f: impl FnOnce()) -> Duration {
    let _ = Command::new("sync").status();
    imgpipe_benches::timed(f)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("build: bench");
        return;
    }
    for t in [
        "mksquashfs",
        "xorriso",
        "grub-mkimage",
        "mkfs.vfat",
        "mcopy",
        "mmd",
    ] {
        if !have(t) {
            println!("build bench skipped: {t} is not installed (scripts/test.sh installs it)");
            return;
        }
    }
    let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_owned());
    let runs: usize = env("IMGPIPE_BENCH_RUNS", "3").parse().unwrap_or(3);
    let comps = env("IMGPIPE_BENCH_COMP", "gzip,xz,zstd");
    let mb: u64 = env("IMGPIPE_BENCH_MB", "1024").parse().unwrap_or(1024);
    let tmp = tempfile::tempdir_in(env("IMGPIPE_BENCH_DIR", "/var/tmp")).unwrap();
    let d = tmp.path();
    let tree = match std::env::var("IMGPIPE_BENCH_TREE") {
        Ok(t) => t.into(),
        Err(_) => {
            let t = d.join("tree");
            copy_usr(&t, mb);
            t
        }
    };
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    // Inputs both sides share: kernel, initrd, GRUB images, boot_hybrid.img, a kickstart.
    let kernel = d.join("vmlinuz");
    let initrd = d.join("initrd.img");
    std::fs::write(&kernel, imgpipe_testsupport::pattern(12 << 20)).unwrap();
    std::fs::write(&initrd, imgpipe_testsupport::pattern(60 << 20)).unwrap();
    let eltorito = d.join("eltorito.img");
    let efi = d.join("bootx64.efi");
    let grub = |format: &str, out: &Path, extra: &str| {
        let mut c = Command::new("grub-mkimage");
        c.args(["-O", format, "-p", "/boot/grub", "-o"])
            .arg(out)
            .arg(extra)
            .args(MODULES);
        sh(&mut c);
    };
    grub("i386-pc-eltorito", &eltorito, "biosdisk");
    grub("x86_64-efi", &efi, "fat");
    let mbr = Path::new("/usr/lib/grub/i386-pc/boot_hybrid.img");
    let ks = d.join("ks.cfg");
    std::fs::write(
        &ks,
        "network --hostname=bench\nbootloader --append=\"quiet\"\n",
    )
    .unwrap();
    let cfg = "search --no-floppy --set=root --label BENCH_LIVE\nmenuentry BENCH_LIVE {\n linux /images/pxeboot/vmlinuz root=live:CDLABEL=BENCH_LIVE rd.live.image quiet\n initrd /images/pxeboot/initrd.img\n}\n";

    let kinds = env("IMGPIPE_BENCH_ROOTFS", "squashfs,erofs");
    let x86_bcj = match env("IMGPIPE_BENCH_XZ_BCJ", "x86").as_str() {
        "x86" => true,
        "none" => false,
        other => panic!("IMGPIPE_BENCH_XZ_BCJ={other}: x86 or none"),
    };
    let mkfs_erofs = imgpipe_testsupport::erofs_utils("mkfs.erofs");
    for (kind, squashfs_comp) in kinds
        .split(',')
        .flat_map(|k| comps.split(',').map(move |c| (k, c)))
    {
        let erofs = kind == "erofs";
        let comp = match (erofs, squashfs_comp) {
            (true, "gzip") => "deflate",
            (true, "xz") => "lzma",
            (_, c) => c,
        };
        if erofs && mkfs_erofs.is_none() {
            println!(
                "build bench, erofs root: skipped (mkfs.erofs 1.8.6 not found: IMGPIPE_EROFS_UTILS)"
            );
            continue;
        }
        let theirs = || {
            let stage = d.join("stage");
            let _ = std::fs::remove_dir_all(&stage);
            for sub in ["LiveOS", "images/pxeboot", "boot/grub"] {
                std::fs::create_dir_all(stage.join(sub)).unwrap();
            }
            match &mkfs_erofs {
                Some(mkfs) if erofs => sh(Command::new(mkfs)
                    .arg("--quiet")
                    .arg(format!("-z{comp}"))
                    .arg(format!("--workers={threads}"))
                    .arg("-T1700000000")
                    .arg("-U01234567-89ab-cdef-0123-456789abcdef")
                    .arg(stage.join("LiveOS/squashfs.img"))
                    .arg(&tree)),
                _ => sh(Command::new("mksquashfs")
                    .arg(&tree)
                    .arg(stage.join("LiveOS/squashfs.img"))
                    .args([
                        "-noappend",
                        "-no-progress",
                        "-comp",
                        comp,
                        "-processors",
                        &threads.to_string(),
                    ])
                    .args(if comp == "xz" && x86_bcj {
                        &["-Xbcj", "x86"][..]
                    } else {
                        &[]
                    })),
            }
            std::fs::copy(&kernel, stage.join("images/pxeboot/vmlinuz")).unwrap();
            std::fs::copy(&initrd, stage.join("images/pxeboot/initrd.img")).unwrap();
            std::fs::write(stage.join("boot/grub/grub.cfg"), cfg).unwrap();
            grub(
                "i386-pc-eltorito",
                &stage.join("boot/grub/eltorito.img"),
                "biosdisk",
            );
            let efi_c = d.join("bootx64-c.efi");
            grub("x86_64-efi", &efi_c, "fat");
            let esp = d.join("efiboot.img");
            let _ = std::fs::remove_file(&esp);
            sh(Command::new("mkfs.vfat")
                .args(["-n", "EFIBOOT", "-C"])
                .arg(&esp)
                .arg("4096"));
            let i = format!("-i{}", esp.display());
            sh(Command::new("mmd").args([i.as_str(), "::/EFI", "::/EFI/BOOT"]));
            sh(Command::new("mcopy")
                .arg(&i)
                .arg(&efi_c)
                .arg("::/EFI/BOOT/BOOTX64.EFI"));
            let cfg_file = d.join("grub.cfg");
            std::fs::write(&cfg_file, cfg).unwrap();
            sh(Command::new("mcopy")
                .arg(&i)
                .arg(&cfg_file)
                .arg("::/EFI/BOOT/grub.cfg"));
            let out = d.join("theirs.iso");
            let _ = std::fs::remove_file(&out);
            sh(Command::new("xorriso")
                .args([
                    "-as",
                    "mkisofs",
                    "-quiet",
                    "-V",
                    "BENCH_LIVE",
                    "-r",
                    "-J",
                    "-c",
                    "boot/grub/boot.cat",
                ])
                .args([
                    "-b",
                    "boot/grub/eltorito.img",
                    "-no-emul-boot",
                    "-boot-load-size",
                    "4",
                    "-boot-info-table",
                    "--grub2-boot-info",
                ])
                .arg("--grub2-mbr")
                .arg(mbr)
                .arg("-append_partition")
                .arg("2")
                .arg("0xef")
                .arg(&esp)
                .args([
                    "-appended_part_as_gpt",
                    "-eltorito-alt-boot",
                    "-e",
                    "--interval:appended_partition_2:all::",
                    "-no-emul-boot",
                    "-o",
                ])
                .arg(&out)
                .arg(&stage));
        };
        let ours = || {
            let out = d.join("ours.iso");
            let _ = std::fs::remove_file(&out);
            let mut req = BuildRequest::new(&ks, &tree, &out, "BENCH_LIVE");
            req.rootfs = if erofs {
                let mut o = ErofsWriteOptions::new(0, [0; 16]);
                o.compression = Some(ErofsCompression::new(
                    ErofsAlgorithm::from_name(comp).expect("an EROFS compressor"),
                ));
                RootFs::Erofs(Box::new(o))
            } else {
                let mut o = WriteOptions::new(0);
                o.compression =
                    Compression::new(Compressor::from_name(comp).expect("a squashfs compressor"));
                if comp == "xz" && x86_bcj {
                    o.compression.xz_bcj = bcj::X86;
                }
                RootFs::Squashfs(Box::new(o))
            };
            req.kernel = Some(kernel.clone());
            req.initrd = Some(initrd.clone());
            req.efi_loader = Some(efi.clone());
            req.bios_loader = Some(eltorito.clone());
            req.bios_hybrid_mbr = Some(mbr.to_path_buf());
            req.epoch = Some(1_700_000_000);
            imgpipe_repro::build::build(&req, &mut |_| {}).expect("imgpipe build");
        };
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..runs.max(1) {
            b.push(timed(theirs));
            a.push(timed(ours));
        }
        let size = |p: &str| std::fs::metadata(d.join(p)).map_or(0, |m| m.len());
        let comp = if comp == "xz" && !erofs && x86_bcj {
            "xz -Xbcj x86"
        } else {
            comp
        };
        println!(
            "live ISO ({kind} root, {comp}, {} runs): ours {} bytes, theirs {} bytes",
            runs,
            size("ours.iso"),
            size("theirs.iso")
        );
        let root_tool = if erofs { "mkfs.erofs" } else { "mksquashfs" };
        print_ratio(
            &format!(
                "imgpipe build --rootfs {kind} vs {root_tool}+grub-mkimage+mkfs.vfat+mcopy+xorriso ({comp})"
            ),
            median(a),
            median(b),
        );
    }
}
