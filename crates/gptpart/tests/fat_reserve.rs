//! A reserved FAT file rewritten by hand (its data and the fields `FatReservedFile` names)
//! stays a volume dosfstools finds clean and mtools reads: FAT16 and FAT32, in the root and
//! in a subdirectory under a long name.

use std::fs;
use std::path::Path;
use std::process::Command;

use imgpipe_gptpart::{FatBuilder, FatReservedFile, FatType};
use imgpipe_testsupport::{pattern, tempdir, tool};

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
    // The version line and the summary line, nothing else.
    assert_eq!(text.lines().count(), 2, "fsck.vfat -n: {text}");
}

fn mtools(program: &str, args: &[&str], img: &Path) -> Vec<u8> {
    let out = Command::new(tool(program).unwrap())
        .env("MTOOLS_SKIP_CHECK", "1")
        .env("LC_ALL", "C.UTF-8")
        .arg("-i")
        .arg(img)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn put(img: &Path, r: &FatReservedFile, piece: &[u8]) {
    let mut b = fs::read(img).unwrap();
    let at = r.offset as usize;
    b[at..at + r.capacity as usize].fill(0);
    b[at..at + piece.len()].copy_from_slice(piece);
    for (offset, bytes) in r.size_patches(piece.len() as u64).unwrap() {
        b[offset as usize..offset as usize + bytes.len()].copy_from_slice(&bytes);
    }
    fs::write(img, b).unwrap();
}

#[test]
fn rewritten_reserved_files_pass_fsck_and_read_back_with_mtools() {
    let (Some(fsck), Some(_), Some(_)) = (tool("fsck.vfat"), tool("mdir"), tool("mtype")) else {
        eprintln!("skipped: dosfstools or mtools missing");
        return;
    };
    let t = tempdir();
    for (t_, size, path, mpath) in [
        (FatType::Fat16, 8u64 << 20, "piece.htm", "::/piece.htm"),
        (
            FatType::Fat32,
            64 << 20,
            "srv/kiosk piece.html",
            "::/srv/kiosk piece.html",
        ),
    ] {
        let img = t.path().join(format!("{t_:?}.img"));
        let mut b = FatBuilder::new(size)
            .fat_type(t_)
            .epoch(1_700_000_000)
            .volume_id(0x1234_5678);
        b.add_file("EFI/BOOT/BOOTX64.EFI", pattern(70_000)).unwrap();
        b.reserve_file(path, 100_000, b"placeholder\n".to_vec())
            .unwrap();
        b.add_file("srv/after.txt", b"after\n".to_vec()).unwrap();
        let s = b.build(fs::File::create(&img).unwrap()).unwrap();
        let r = &s.reserved[0];
        fsck_clean(&fsck, &img);
        assert_eq!(mtools("mtype", &[mpath], &img), b"placeholder\n");
        for piece in [
            pattern(99_999),
            pattern(100_000),
            b"x".to_vec(),
            Vec::new(),
            pattern(5000),
        ] {
            put(&img, r, &piece);
            fsck_clean(&fsck, &img);
            assert_eq!(mtools("mtype", &[mpath], &img), piece, "{t_:?}");
            let dir = String::from_utf8(mtools("mdir", &["-a", "::/srv"], &img)).unwrap();
            assert!(dir.contains("after"), "{dir}");
            if path.starts_with("srv/") {
                assert!(
                    dir.lines().any(|l| l.contains("kiosk piece.html")
                        && l.split_whitespace().any(|w| w == piece.len().to_string())),
                    "{t_:?}: {dir}"
                );
            }
            assert_eq!(mtools("mtype", &["::/srv/after.txt"], &img), b"after\n");
        }
    }
}
