//! FAT cross-validation against dosfstools and mtools, in both directions.

use std::fs;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;

use imgpipe_gptpart::{Error, FatBuilder, FatType, FatVolume};
use imgpipe_testsupport::{Compare, diff_trees, pattern, run, set_mtimes, tempdir, tool};

const EPOCH: u64 = 1_700_000_000;

/// A tree with what ESPs and boot loaders contain, and what makes FAT writers trip.
fn esp_tree(root: &Path, many: usize) {
    let w = |p: &str, data: &[u8]| {
        let path = root.join(p);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, data).unwrap();
    };
    w("EFI/BOOT/BOOTX64.EFI", &pattern(300_000));
    w("EFI/BOOT/grub.cfg", b"set timeout=1\n");
    w(
        "EFI/Linux/Fedora Linux 40 (Workstation).efi",
        &pattern(70_001),
    );
    for i in 0..many {
        w(
            &format!("loader/entries/entry-{i:03}.conf"),
            format!("title {i}\n").as_bytes(),
        );
    }
    w(
        "names/unicode-\u{e9}t\u{e9}-\u{65e5}\u{672c}.txt",
        b"unicode\n",
    );
    w("names/UPPER.lower.Mixed.ext", b"case\n");
    w("names/.hidden", b"dot\n");
    w("names/MiXed.TxT", b"mixed\n");
    w(&format!("names/{}", "l".repeat(200)), b"long\n");
    w("empty", b"");
    w("cluster-exact.bin", &pattern(4096));
    fs::create_dir_all(root.join("emptydir")).unwrap();
    let deep: String = (1..=12).map(|i| format!("d{i}/")).collect();
    w(&format!("{deep}bottom.txt"), b"deep\n");
    set_mtimes(root, EPOCH as i64);
}

fn mtools(program: &Path, args: &[&str], img: &Path) -> std::process::Output {
    let out = Command::new(program)
        .env("MTOOLS_SKIP_CHECK", "1")
        .env("TZ", "UTC")
        .env("LC_ALL", "C.UTF-8")
        .arg("-i")
        .arg(img)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{program:?} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn fsck_clean(fsck: &Path, img: &Path) {
    let out = Command::new(fsck)
        .arg("-n")
        .arg(img)
        .env("LC_ALL", "C")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "fsck.vfat -n: {text}");
    // A clean volume prints the version line and the summary line, nothing else.
    assert_eq!(text.lines().count(), 2, "fsck.vfat -n: {text}");
    assert!(text.contains(" files, "), "fsck.vfat -n: {text}");
}

fn build(src: &Path, size: u64, t: Option<FatType>) -> Vec<u8> {
    let mut b = FatBuilder::new(size)
        .label("esp")
        .volume_id(0x1234_abcd)
        .epoch(EPOCH);
    if let Some(t) = t {
        b = b.fat_type(t);
    }
    b.add_tree(src).unwrap();
    b.build_vec().unwrap()
}

#[test]
fn fsck_and_mtools_accept_ours() {
    let (Some(fsck), Some(mcopy), Some(mdir), Some(mlabel)) = (
        tool("fsck.vfat"),
        tool("mcopy"),
        tool("mdir"),
        tool("mlabel"),
    ) else {
        return;
    };
    let t = tempdir();
    let src = t.path().join("src");
    esp_tree(&src, 200);
    for (size, t_req, expect) in [
        (4u64 << 20, Some(FatType::Fat12), FatType::Fat12),
        (24 << 20, None, FatType::Fat16),
        (40 << 20, Some(FatType::Fat32), FatType::Fat32),
    ] {
        let img = t.path().join(format!("{expect:?}.img"));
        let bytes = build(&src, size, t_req);
        assert_eq!(bytes.len() as u64, size);
        fs::write(&img, &bytes).unwrap();
        fsck_clean(&fsck, &img);
        let vol = FatVolume::open(Cursor::new(&bytes)).unwrap();
        assert_eq!(vol.boot_sector().fat_type, expect);
        assert_eq!(vol.boot_sector().volume_id, 0x1234_abcd);
        assert_eq!(vol.label(), Some("ESP"));
        let label =
            String::from_utf8_lossy(&mtools(&mlabel, &["-s", "::"], &img).stdout).into_owned();
        assert!(label.contains("Volume label is ESP"), "{label}");
        // mtools lists exactly our tree.
        let listing =
            String::from_utf8_lossy(&mtools(&mdir, &["-/", "-b", "::"], &img).stdout).into_owned();
        let mut theirs: Vec<String> = listing
            .lines()
            .map(|l| {
                l.trim_start_matches("::/")
                    .trim_end_matches('/')
                    .to_string()
            })
            .collect();
        theirs.sort();
        let mut ours: Vec<String> = FatVolume::open(Cursor::new(&bytes))
            .unwrap()
            .walk()
            .unwrap()
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        ours.sort();
        assert_eq!(theirs, ours, "{expect:?}");
        // mcopy extracts every file byte for byte, with our timestamps.
        let out = t.path().join(format!("out-{expect:?}"));
        fs::create_dir(&out).unwrap();
        mtools(
            &mcopy,
            &["-s", "-m", "-n", "::*", out.to_str().unwrap()],
            &img,
        );
        let diffs = diff_trees(
            &src,
            &out,
            Compare {
                owner: false,
                mtime: true,
                dir_mtime: false,
                mode: false,
            },
        );
        assert!(diffs.is_empty(), "{expect:?}: {diffs:#?}");
    }
}

#[test]
fn fat32_with_4096_byte_sectors() {
    let Some(fsck) = tool("fsck.vfat") else {
        return;
    };
    let t = tempdir();
    let src = t.path().join("src");
    esp_tree(&src, 3);
    let mut b = FatBuilder::new(300 << 20)
        .sector_size(4096)
        .fat_type(FatType::Fat32)
        .epoch(EPOCH);
    b.add_tree(&src).unwrap();
    let img = t.path().join("4k.img");
    let f = fs::File::create(&img).unwrap();
    let summary = b.build(std::io::BufWriter::new(f)).unwrap();
    assert_eq!(summary.boot_sector.bytes_per_sector, 4096);
    fsck_clean(&fsck, &img);
    let mut vol = FatVolume::open(fs::File::open(&img).unwrap()).unwrap();
    let e = vol.lookup("EFI/BOOT/BOOTX64.EFI").unwrap();
    assert_eq!(vol.read_file(&e).unwrap(), pattern(300_000));
}

#[test]
fn we_read_mkfs_and_mcopy_volumes() {
    let (Some(mkfs), Some(mcopy), Some(mdir)) = (tool("mkfs.vfat"), tool("mcopy"), tool("mdir"))
    else {
        return;
    };
    let t = tempdir();
    let src = t.path().join("src");
    esp_tree(&src, 40);
    for (bits, mib) in [("12", 4u64), ("16", 20), ("32", 40)] {
        let img = t.path().join(format!("mkfs{bits}.img"));
        fs::File::create(&img).unwrap().set_len(mib << 20).unwrap();
        run(
            &mkfs,
            [
                "-F",
                bits,
                "-n",
                "THEIRS",
                "-i",
                "0badcafe",
                img.to_str().unwrap(),
            ],
        );
        let entries: Vec<PathBuf> = fs::read_dir(&src)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        let mut args = vec!["-s".to_string(), "-m".into()];
        args.extend(entries.iter().map(|p| p.display().to_string()));
        args.push("::".into());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        mtools(&mcopy, &args, &img);
        let mut vol = FatVolume::open(fs::File::open(&img).unwrap()).unwrap();
        assert_eq!(vol.label(), Some("THEIRS"));
        assert_eq!(vol.boot_sector().volume_id, 0x0bad_cafe);
        let walked = vol.walk().unwrap();
        let listing =
            String::from_utf8_lossy(&mtools(&mdir, &["-/", "-b", "::"], &img).stdout).into_owned();
        let mut theirs: Vec<String> = listing
            .lines()
            .map(|l| {
                l.trim_start_matches("::/")
                    .trim_end_matches('/')
                    .to_string()
            })
            .collect();
        theirs.sort();
        let mut ours: Vec<String> = walked.iter().map(|(p, _)| p.clone()).collect();
        ours.sort();
        assert_eq!(theirs, ours, "FAT{bits}");
        // Extract with ours and compare with the source tree.
        let out = t.path().join(format!("ours{bits}"));
        fs::create_dir(&out).unwrap();
        let files = vol.extract(&out).unwrap();
        assert_eq!(
            files,
            walked.iter().filter(|(_, e)| !e.is_dir).count() as u64
        );
        let diffs = diff_trees(
            &src,
            &out,
            Compare {
                owner: false,
                mtime: true,
                dir_mtime: false,
                mode: false,
            },
        );
        assert!(diffs.is_empty(), "FAT{bits}: {diffs:#?}");
    }
}

#[test]
fn reproducible_and_in_memory_equals_directory() {
    let t = tempdir();
    let src = t.path().join("src");
    esp_tree(&src, 20);
    let a = build(&src, 8 << 20, None);
    let b = build(&src, 8 << 20, None);
    assert!(a == b);
    // Seeking over free space into a zeroed target gives the same bytes.
    let mut sparse = FatBuilder::new(8 << 20)
        .label("esp")
        .volume_id(0x1234_abcd)
        .epoch(EPOCH);
    sparse.add_tree(&src).unwrap();
    let mut c = Cursor::new(vec![0u8; 8 << 20]);
    sparse.build_sparse(&mut c).unwrap();
    assert_eq!(c.position(), 8 << 20);
    assert!(c.into_inner() == a);
    // The same tree given in memory gives the same bytes as read from a directory.
    let small = t.path().join("small");
    fs::create_dir_all(small.join("EFI/BOOT")).unwrap();
    fs::write(small.join("EFI/BOOT/BOOTX64.EFI"), pattern(300_000)).unwrap();
    fs::write(small.join("EFI/grub.cfg"), b"x").unwrap();
    let from_dir = build(&small, 8 << 20, None);
    let mut mem = FatBuilder::new(8 << 20)
        .label("ESP")
        .volume_id(0x1234_abcd)
        .epoch(EPOCH);
    mem.add_file("EFI/grub.cfg", b"x".to_vec()).unwrap();
    mem.add_file("EFI/BOOT/BOOTX64.EFI", pattern(300_000))
        .unwrap();
    let one = mem.build_vec().unwrap();
    assert!(one == from_dir);
    let other_epoch = {
        let mut m = FatBuilder::new(8 << 20)
            .label("ESP")
            .volume_id(0x1234_abcd)
            .epoch(EPOCH + 86_400);
        m.add_file("EFI/grub.cfg", b"x".to_vec()).unwrap();
        m.add_file("EFI/BOOT/BOOTX64.EFI", pattern(300_000))
            .unwrap();
        m.build_vec().unwrap()
    };
    // Only timestamps differ: same length, and the file data is where it was.
    assert!(one != other_epoch);
    assert_eq!(one.len(), other_epoch.len());
    let differing = one.iter().zip(&other_epoch).filter(|(a, b)| a != b).count();
    assert!(differing > 0 && differing < 200, "{differing}");
    let mut v = FatVolume::open(Cursor::new(&other_epoch)).unwrap();
    let e = v.lookup("efi/boot/bootx64.efi").unwrap();
    assert_eq!(e.modified, Some(EPOCH + 86_400));
}

#[test]
fn builder_limits_and_damaged_volumes() {
    // Does not fit.
    let mut b = FatBuilder::new(2 << 20);
    b.add_file("big", vec![7; 3 << 20]).unwrap();
    assert!(matches!(b.build_vec(), Err(Error::DoesNotFit { .. })));
    // Too many root entries on FAT16.
    let mut b = FatBuilder::new(8 << 20);
    for i in 0..600 {
        b.add_file(&format!("F{i}"), vec![]).unwrap();
    }
    assert!(matches!(b.build_vec(), Err(Error::LimitExceeded { .. })));
    // Every truncated prefix of a valid volume fails cleanly or reads consistently.
    let mut b = FatBuilder::new(1 << 20).epoch(EPOCH);
    b.add_file("dir/file.txt", pattern(5000)).unwrap();
    let bytes = b.build_vec().unwrap();
    for len in (0..bytes.len()).step_by(4093) {
        assert!(
            FatVolume::open(Cursor::new(&bytes[..len])).is_err(),
            "{len}"
        );
    }
    // A cluster chain that loops is an error, not a hang.
    let mut bad = bytes.clone();
    let vol = FatVolume::open(Cursor::new(&bytes)).unwrap();
    let fat_off = vol.boot_sector().fat_offset() as usize;
    let mut vol = vol;
    let file = vol.lookup("dir/file.txt").unwrap();
    let c = file.first_cluster as usize;
    // FAT12: point the file's first cluster at itself.
    let o = fat_off + c * 3 / 2;
    let v = u16::from_le_bytes([bad[o], bad[o + 1]]);
    let nv = if c.is_multiple_of(2) {
        (v & 0xF000) | c as u16
    } else {
        (v & 0x000F) | ((c as u16) << 4)
    };
    bad[o..o + 2].copy_from_slice(&nv.to_le_bytes());
    let mut vol = FatVolume::open(Cursor::new(&bad)).unwrap();
    let e = vol.lookup("dir/file.txt").unwrap();
    let err = vol.read_file(&e).unwrap_err();
    assert!(err.to_string().contains("loops"), "{err}");
}
