//! Golden output: fixed images must keep their exact bytes across versions, so a change to
//! the output is always a deliberate one (update the hash and say why in the commit).
//!
//! Made by this file alone: an in-memory tree written plain (ECMA-119 only) and with Rock
//! Ridge and Joliet, and a small host tree added with `add_tree` (asserted only when the
//! files belong to root, since Rock Ridge records the owners).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use imgpipe_isofs::{Builder, Metadata, Options};
use sha2::{Digest, Sha256};

fn hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn meta(mode: u32, mtime: i64, uid: u32) -> Metadata {
    Metadata {
        mode,
        uid,
        gid: uid + 1,
        mtime: Some(mtime),
    }
}

fn memory_image(rock_ridge: bool, joliet: bool) -> Vec<u8> {
    let mut o = Options::new("GOLDEN", 1_700_000_000);
    o.rock_ridge = rock_ridge;
    o.joliet = joliet;
    let mut b = Builder::new(o);
    b.add_dir("etc", meta(0o755, 1_700_000_002, 0)).unwrap();
    b.add_file(
        "etc/hostname",
        meta(0o644, 1_700_000_003, 0),
        b"golden\n".to_vec(),
    )
    .unwrap();
    b.add_file(
        "etc/big",
        meta(0o600, 1_600_000_000, 1000),
        imgpipe_testsupport::pattern(10_000),
    )
    .unwrap();
    b.add_file(
        "A Long Mixed-Case Name.txt",
        Metadata::file(0o644),
        b"x".to_vec(),
    )
    .unwrap();
    b.add_zero_file("zeros", meta(0o644, 5, 0), 5000).unwrap();
    if rock_ridge {
        b.add_symlink("etc/link", Metadata::symlink(), "hostname")
            .unwrap();
        b.add_hard_link("etc/hard", "etc/hostname").unwrap();
        b.add_device("dev-null", meta(0o666, 8, 0), false, 1, 3)
            .unwrap();
        b.add_fifo("fifo", meta(0o644, 10, 0)).unwrap();
    }
    let mut out = Vec::new();
    b.build(&mut out).unwrap();
    out
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

#[test]
fn golden_plain() {
    assert_eq!(
        hex(&memory_image(false, false)),
        "89d11af82bc280ef4e145b6f08ce12ebb986a4ff415885a29bd20d54280c6cf7"
    );
}

#[test]
fn golden_rock_ridge_joliet() {
    assert_eq!(
        hex(&memory_image(true, true)),
        "c95898badbcf3e7f4c633abb85237712d4d7d0283a6f3842d3d3b810269c044b"
    );
}

#[test]
fn golden_host_tree() {
    let t = imgpipe_testsupport::tempdir();
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    host_tree(&src);
    if std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&src).unwrap()) != 0 {
        return; // Rock Ridge records the owner
    }
    let mut b = Builder::new(Options::new("HOST", 1_700_000_000));
    b.add_tree(&src).unwrap();
    let mut out = Vec::new();
    b.build(&mut out).unwrap();
    assert_eq!(
        hex(&out),
        "6dc8dcde228babe3d35c2a7ba43d8b05612f7442ed3f4c536d963e4b92b9a2c3"
    );
}
