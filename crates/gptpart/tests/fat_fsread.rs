//! The FAT reader through the shared vocabulary (`imgpipe_fstree::FsRead`) on a volume that
//! mkfs.vfat made and mcopy filled: names, types, sizes, times and content agree with the
//! host tree, cluster runs hold the content, and the walk is in name order.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use imgpipe_fstree::{FileType, FsRead};
use imgpipe_gptpart::FatVolume;
use imgpipe_testsupport::{pattern, run, set_mtimes, tempdir, tool};

const EPOCH: i64 = 1_700_000_000;

fn tree(root: &Path) {
    let w = |p: &str, data: &[u8]| {
        let path = root.join(p);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, data).unwrap();
    };
    w("EFI/BOOT/BOOTX64.EFI", &pattern(300_000));
    w("EFI/BOOT/grub.cfg", b"set timeout=1\n");
    w("loader/entries/Fedora Linux.conf", b"title Fedora\n");
    w("b-second.txt", b"b\n");
    w("A-first.txt", b"a\n");
    w("empty", b"");
    fs::create_dir_all(root.join("emptydir")).unwrap();
    set_mtimes(root, EPOCH);
}

#[test]
fn mkfs_and_mcopy_volume_through_fsread() {
    let (Some(mkfs), Some(mcopy)) = (tool("mkfs.vfat"), tool("mcopy")) else {
        return;
    };
    let t = tempdir();
    let src = t.path().join("src");
    tree(&src);
    let img = t.path().join("v.img");
    fs::File::create(&img).unwrap().set_len(16 << 20).unwrap();
    run(&mkfs, ["-F", "16", img.to_str().unwrap()]);
    let mut args: Vec<String> = vec![
        "-i".into(),
        img.display().to_string(),
        "-s".into(),
        "-m".into(),
    ];
    let mut tops: Vec<PathBuf> = fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    tops.sort();
    args.extend(tops.iter().map(|p| p.display().to_string()));
    args.push("::".into());
    let out = Command::new(&mcopy)
        .env("MTOOLS_SKIP_CHECK", "1")
        .env("TZ", "UTC")
        .args(&args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let data = fs::read(&img).unwrap();
    let v = FatVolume::open(std::io::Cursor::new(&data[..])).unwrap();
    let h = v.holds();
    assert!(h.mtime && !h.mode && !h.owner && !h.xattrs && !h.special_files && !h.hard_links);
    let walked = FsRead::walk(&v).unwrap();
    let paths: Vec<String> = walked.iter().map(|(e, _)| e.display_path()).collect();
    let mut sorted = paths.clone();
    sorted.sort_by(|a, b| a.split('/').cmp(b.split('/')));
    assert_eq!(
        paths, sorted,
        "name order, each directory before its contents"
    );
    assert_eq!(paths[0], "/");
    let by_path: BTreeMap<&str, _> = walked
        .iter()
        .map(|(e, n)| (std::str::from_utf8(&e.path).unwrap(), (e, n)))
        .collect();
    let mut host = Vec::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p.clone());
            }
            host.push(p);
        }
    }
    assert_eq!(by_path.len(), host.len() + 1, "{paths:?}");
    for p in host {
        let rel = p.strip_prefix(&src).unwrap().to_str().unwrap().to_owned();
        let (e, node) = by_path[rel.as_str()];
        let m = fs::metadata(&p).unwrap();
        // mcopy -m keeps the host mtime (FAT: two-second resolution, EPOCH is even).
        assert_eq!(e.meta.mtime, EPOCH, "{rel}");
        assert!(e.target.is_none() && e.rdev.is_none() && e.link.is_none());
        if m.is_dir() {
            assert_eq!((e.file_type, e.size), (FileType::Dir, 0), "{rel}");
            assert_eq!(v.extents(node).unwrap(), None);
            continue;
        }
        let body = fs::read(&p).unwrap();
        assert_eq!(
            (e.file_type, e.size),
            (FileType::File, body.len() as u64),
            "{rel}"
        );
        let mut got = Vec::new();
        assert_eq!(v.read_content(node, &mut got).unwrap(), body.len() as u64);
        assert_eq!(got, body, "{rel}");
        let mut via = Vec::new();
        for x in v.extents(node).unwrap().unwrap() {
            assert_eq!(x.file_offset, via.len() as u64, "{rel}");
            assert!(!x.compressed);
            let at = x.image_offset as usize;
            via.extend_from_slice(&data[at..at + x.len as usize]);
        }
        assert_eq!(via, body, "{rel}");
    }
}
