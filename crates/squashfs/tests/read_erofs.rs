//! EROFS images written by mkfs.erofs (erofs-utils) read back exactly: every entry's type,
//! mode, owner, mtime, size, content, link target and device numbers equal the source tree
//! and the kernel's view of the same image (loop mount), xattrs included; a compressed file
//! reads (see `read_erofs_compressed.rs` for the full matrix); truncated images are errors,
//! never panics.

mod common;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use imgpipe_squashfs::erofs::ErofsReader;
use imgpipe_squashfs::raw::InodeKind;
use imgpipe_squashfs::{Bytes, Limits};
use imgpipe_testsupport::{
    EntryFacts, TreeOptions, describe_tree, run, tempdir, tool, tricky_tree,
};

const T: i64 = 1_700_000_000;

fn source(root: &Path) {
    tricky_tree(root, TreeOptions::default());
    let big = root.join("bigdir");
    std::fs::create_dir(&big).unwrap();
    for i in 0..700 {
        // Enough names for several directory blocks.
        std::fs::write(
            big.join(format!("entry-{i:04}-with-a-longish-name")),
            i.to_string(),
        )
        .unwrap();
    }
    for (p, name, value) in [
        ("README", "user.comment", &b"hello"[..]),
        ("bin/tool", "user.a", b"1"),
        (
            "bin/tool",
            "user.b",
            b"a longer value for the second attribute",
        ),
        ("etc", "user.dir", b"x"),
    ] {
        rustix::fs::lsetxattr(root.join(p), name, value, rustix::fs::XattrFlags::empty()).unwrap();
    }
    imgpipe_testsupport::set_mtimes(root, T);
}

fn makedev(major: u32, minor: u32) -> u64 {
    let (ma, mi) = (u64::from(major), u64::from(minor));
    ((ma & 0xffff_f000) << 32) | ((ma & 0xfff) << 8) | ((mi & 0xffff_ff00) << 12) | (mi & 0xff)
}

/// The tree as our reader sees it, in `describe_tree`'s terms.
fn facts(r: &ErofsReader) -> BTreeMap<PathBuf, EntryFacts> {
    use sha2::{Digest, Sha256};
    let mut out = BTreeMap::new();
    for e in r.walk().unwrap() {
        if e.path.is_empty() {
            continue;
        }
        let i = &e.inode;
        let kind = match i.kind {
            InodeKind::Dir => 'd',
            InodeKind::File => 'f',
            InodeKind::Symlink => 'l',
            InodeKind::Fifo => 'p',
            InodeKind::CharDev => 'c',
            InodeKind::BlockDev => 'b',
            InodeKind::Socket => 's',
        };
        let sha256 = (kind == 'f').then(|| {
            let mut data = Vec::new();
            r.read_file(i, &mut data).unwrap();
            assert_eq!(data.len() as u64, i.size);
            Sha256::digest(&data)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        });
        let link = (kind == 'l').then(|| {
            PathBuf::from(OsStr::new(
                std::str::from_utf8(&r.read_link(i).unwrap()).unwrap(),
            ))
        });
        out.insert(
            PathBuf::from(String::from_utf8(e.path.clone()).unwrap()),
            EntryFacts {
                kind,
                mode: u32::from(i.mode),
                uid: i.uid,
                gid: i.gid,
                mtime: i.mtime as i64,
                size: if kind == 'f' { i.size } else { 0 },
                sha256,
                link,
                rdev: i.device.map_or(0, |(a, b)| makedev(a, b)),
            },
        );
    }
    out
}

fn xattrs_of(r: &ErofsReader, path: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let e = r
        .walk()
        .unwrap()
        .into_iter()
        .find(|e| e.path == path.as_bytes())
        .unwrap();
    let mut x = r.xattrs(&e.inode).unwrap();
    x.retain(|(n, _)| n.starts_with(b"user."));
    x.sort();
    x
}

fn check(name: &str, extra: &[&str]) {
    let Some(mkfs) = tool("mkfs.erofs") else {
        return;
    };
    let tmp = tempdir();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    source(&src);
    let img = tmp.path().join("img.erofs");
    let stamp = format!("-T{T}");
    let mut args: Vec<&OsStr> = vec![OsStr::new("--quiet"), OsStr::new(&stamp)];
    args.extend(extra.iter().map(OsStr::new));
    args.extend([img.as_os_str(), src.as_os_str()]);
    run(&mkfs, args);

    let r = ErofsReader::open_at(std::fs::File::open(&img).unwrap(), 0, Limits::default()).unwrap();
    let ours = facts(&r);
    let want = describe_tree(&src);
    assert_eq!(ours.len(), want.len(), "{name}: entry count");
    for (p, f) in &want {
        assert_eq!(ours.get(p), Some(f), "{name}: {}", p.display());
    }
    assert_eq!(
        xattrs_of(&r, "bin/tool"),
        vec![
            (b"user.a".to_vec(), b"1".to_vec()),
            (
                b"user.b".to_vec(),
                b"a longer value for the second attribute".to_vec()
            )
        ],
        "{name}"
    );
    assert_eq!(
        xattrs_of(&r, "etc"),
        vec![(b"user.dir".to_vec(), b"x".to_vec())],
        "{name}"
    );

    // The kernel reads the same tree from the same image.
    if let Some(m) = common::Mount::typed(&img, "erofs") {
        let kernel = describe_tree(&m.path());
        assert_eq!(kernel, ours, "{name}: kernel mount vs our reader");
    }

    // Extraction gives back the source tree (owners too when root), xattrs included.
    let out = tmp.path().join("extracted");
    let rep = r
        .extract(&out, imgpipe_squashfs::ExtractOptions::full())
        .unwrap();
    assert!(rep.files > 700 && rep.symlinks > 0, "{name}: {rep:?}");
    let what = imgpipe_testsupport::Compare {
        owner: imgpipe_testsupport::is_root(),
        ..imgpipe_testsupport::Compare::default()
    };
    let d = imgpipe_testsupport::diff_trees(&src, &out, what);
    assert!(d.is_empty(), "{name}: extracted tree: {d:#?}");
    let x = rustix::fs::lgetxattr(out.join("bin/tool"), "user.b", &mut [0u8; 256][..]).unwrap();
    assert_eq!(x, 39, "{name}: xattr restored");
    // Extracting again into the same place refuses to overwrite.
    assert!(
        r.extract(&out, imgpipe_squashfs::ExtractOptions::full())
            .is_err()
    );

    // At an offset inside a larger file.
    let mut shifted = vec![0xa5u8; 12_345];
    shifted.extend(std::fs::read(&img).unwrap());
    let r2 = ErofsReader::open_at(Bytes(shifted), 12_345, Limits::default()).unwrap();
    assert_eq!(facts(&r2), ours, "{name}: at an offset");
}

#[test]
fn default_layout() {
    check("default", &[]);
}

#[test]
fn extended_inodes_without_inline_data() {
    check(
        "extended, no inline",
        &["-Eforce-inode-extended,noinline_data"],
    );
}

#[test]
fn chunk_based_files() {
    check("chunks", &["--chunksize=4096"]);
}

#[test]
fn compressed_files_read_and_truncation_is_an_error() {
    let Some(mkfs) = tool("mkfs.erofs") else {
        return;
    };
    let tmp = tempdir();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    source(&src);
    std::fs::write(src.join("text.txt"), "hello erofs\n".repeat(20_000)).unwrap();
    let img = tmp.path().join("lz4.erofs");
    run(
        &mkfs,
        [
            OsStr::new("--quiet"),
            OsStr::new("-zlz4"),
            img.as_os_str(),
            src.as_os_str(),
        ],
    );
    let r = ErofsReader::open_at(std::fs::File::open(&img).unwrap(), 0, Limits::default()).unwrap();
    let entries = r.walk().unwrap();
    let big = entries.iter().find(|e| e.path == b"text.txt").unwrap();
    assert!(matches!(big.inode.layout, 1 | 3), "{:?}", big.inode);
    let mut text = Vec::new();
    r.read_file(&big.inode, &mut text).unwrap();
    assert_eq!(text, "hello erofs\n".repeat(20_000).as_bytes());

    // Every truncated prefix of an uncompressed image is an error or a shorter tree.
    let plain = tmp.path().join("plain.erofs");
    run(
        &mkfs,
        [OsStr::new("--quiet"), plain.as_os_str(), src.as_os_str()],
    );
    let bytes = std::fs::read(&plain).unwrap();
    for cut in (0..bytes.len()).step_by(997) {
        let Ok(r) = ErofsReader::open_at(Bytes(bytes[..cut].to_vec()), 0, Limits::default()) else {
            continue;
        };
        let Ok(entries) = r.walk() else { continue };
        for e in entries {
            if e.inode.kind == InodeKind::File {
                let _ = r.read_file(&e.inode, &mut std::io::sink());
            }
            let _ = r.xattrs(&e.inode);
        }
    }
}

/// A chunk-based file whose size claims far more chunks than the limits allow is refused
/// before any zeros are produced for its holes.
#[test]
fn chunk_counts_are_capped() {
    let Some(mkfs) = tool("mkfs.erofs") else {
        return;
    };
    let tmp = tempdir();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("f"), vec![1u8; 9000]).unwrap();
    let img = tmp.path().join("c.erofs");
    run(
        &mkfs,
        [
            OsStr::new("--quiet"),
            OsStr::new("--chunksize=4096"),
            img.as_os_str(),
            src.as_os_str(),
        ],
    );
    let mut bytes = std::fs::read(&img).unwrap();
    let limits = Limits {
        max_file_blocks: 16,
        ..Limits::default()
    };
    let r = ErofsReader::open_at(Bytes(bytes.clone()), 0, limits).unwrap();
    let f = r
        .walk()
        .unwrap()
        .into_iter()
        .find(|e| e.path == b"f")
        .unwrap();
    assert_eq!(f.inode.layout, 4, "chunk based");
    r.read_file(&f.inode, &mut std::io::sink()).unwrap();
    // Claim 1 MiB (256 chunks of 4 KiB) in the size field (32-bit compact, 64-bit extended).
    let at = f.inode.position() as usize + 8;
    if f.inode.extended {
        bytes[at..at + 8].copy_from_slice(&(1u64 << 20).to_le_bytes());
    } else {
        bytes[at..at + 4].copy_from_slice(&(1u32 << 20).to_le_bytes());
    }
    let r = ErofsReader::open_at(Bytes(bytes), 0, limits).unwrap();
    let f = r
        .walk()
        .unwrap()
        .into_iter()
        .find(|e| e.path == b"f")
        .unwrap();
    let err = r.read_file(&f.inode, &mut std::io::sink()).unwrap_err();
    assert!(err.to_string().contains("chunk-based file size"), "{err}");
}
