//! Golden output: fixed images must keep their exact bytes across versions, so a change to
//! the output is always a deliberate one (update the hash and say why in the commit).
//!
//! Made by this file alone: an in-memory tree with every entry kind (gzip and zstd), and a
//! small host tree added with `add_tree` (owners forced to root, xattrs off, so the bytes do
//! not depend on who runs the test or on the filesystem under the temporary directory).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use imgpipe_squashfs::raw::InodeKind;
use imgpipe_squashfs::{Builder, Compression, Compressor, EntryMeta, WriteOptions};
use sha2::{Digest, Sha256};

fn hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn meta(mode: u16, mtime: u32, uid: u32) -> EntryMeta {
    let mut m = EntryMeta::new(mode, mtime);
    m.uid = uid;
    m.gid = uid + 1;
    m
}

fn memory_image(comp: Compressor) -> Vec<u8> {
    let mut opts = WriteOptions::new(1_700_000_000);
    opts.compression = Compression::new(comp);
    opts.block_size = 4096;
    let mut b = Builder::new(opts).unwrap();
    b.set_root(meta(0o755, 1_700_000_001, 0)).unwrap();
    b.add_dir("etc", meta(0o755, 1_700_000_002, 0)).unwrap();
    let mut hm = meta(0o644, 1_700_000_003, 0);
    hm.xattrs = vec![(b"user.golden".to_vec(), b"yes".to_vec())];
    b.add_file("etc/hostname", hm, b"golden\n".to_vec())
        .unwrap();
    b.add_file(
        "etc/big",
        meta(0o600, 1_700_000_004, 1000),
        imgpipe_testsupport::pattern(10_000),
    )
    .unwrap();
    b.add_file("etc/zeros", meta(0o644, 5, 0), vec![0u8; 9000])
        .unwrap();
    b.add_file("empty", meta(0o4755, 6, 0), Vec::new()).unwrap();
    b.add_symlink("etc/link", meta(0o777, 7, 0), "hostname")
        .unwrap();
    b.add_hard_link("etc/hard", "etc/hostname").unwrap();
    b.add_device("dev-null", meta(0o666, 8, 0), InodeKind::CharDev, 1, 3)
        .unwrap();
    b.add_device("sda", meta(0o660, 9, 6), InodeKind::BlockDev, 8, 0)
        .unwrap();
    b.add_special("fifo", meta(0o644, 10, 0), InodeKind::Fifo)
        .unwrap();
    b.add_special("sock", meta(0o755, 11, 0), InodeKind::Socket)
        .unwrap();
    let mut out = std::io::Cursor::new(Vec::new());
    b.build(&mut out).unwrap();
    out.into_inner()
}

/// A small host tree: directories, files, a symlink, a hard link pair, a FIFO.
fn host_tree(root: &Path) {
    let w = |p: &str, data: &[u8], mode: u32| {
        std::fs::write(root.join(p), data).unwrap();
        std::fs::set_permissions(root.join(p), std::fs::Permissions::from_mode(mode)).unwrap();
    };
    for (d, mode) in [("bin", 0o755), ("etc", 0o755), ("empty", 0o700)] {
        std::fs::create_dir(root.join(d)).unwrap();
        std::fs::set_permissions(root.join(d), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    w("bin/tool", b"#!/bin/sh\necho hi\n", 0o755);
    w("etc/hostname", b"golden\n", 0o644);
    w("etc/big", &imgpipe_testsupport::pattern(200_000), 0o640);
    std::os::unix::fs::symlink("hostname", root.join("etc/link")).unwrap();
    std::fs::hard_link(root.join("etc/hostname"), root.join("etc/hard")).unwrap();
    imgpipe_testsupport::run("mkfifo", [root.join("fifo")]);
    std::fs::set_permissions(root.join("fifo"), std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
    imgpipe_testsupport::set_mtimes(root, 1_700_000_000);
}

fn host_image(comp: Compressor) -> Vec<u8> {
    let t = imgpipe_testsupport::tempdir();
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    host_tree(&src);
    let mut opts = WriteOptions::new(1_700_000_000);
    opts.compression = Compression::new(comp);
    opts.all_root = true;
    opts.xattrs = false;
    let mut b = Builder::new(opts).unwrap();
    b.add_tree(&src).unwrap();
    let mut out = std::io::Cursor::new(Vec::new());
    b.build(&mut out).unwrap();
    out.into_inner()
}

#[test]
fn golden_memory_gzip() {
    assert_eq!(
        hex(&memory_image(Compressor::Gzip)),
        "19e0743bec0bf7b3cd24fb4f334ed6b997f0a07eea2c153d6a7acce752780335"
    );
}

#[test]
fn golden_memory_zstd() {
    assert_eq!(
        hex(&memory_image(Compressor::Zstd)),
        "a7776056927fd99c26abd3bd134eaf4604653482183548df0447a33d3bbdb033"
    );
}

#[test]
fn golden_host_tree_gzip() {
    assert_eq!(
        hex(&host_image(Compressor::Gzip)),
        "10e9a771ec167d3e51931ae65436b1f18d7ca1e84bd22adf40dacc698f9671e5"
    );
}

#[test]
fn golden_host_tree_xz() {
    assert_eq!(
        hex(&host_image(Compressor::Xz)),
        "dc40d254f2630db68ebf59226ea6beae045891895c2f207054b43d0fee8907f7"
    );
}
