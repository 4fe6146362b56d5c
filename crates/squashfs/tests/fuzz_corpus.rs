//! Replays the fuzz corpus and regressions of this crate's targets (see `fuzz/`) through the
//! very bodies the targets run ([`imgpipe_squashfs::fuzzing`]), and checks that the committed
//! seeds are real images.

use imgpipe_squashfs::fuzzing;
use imgpipe_testsupport::{fuzz_inputs, workspace_root};

fn inputs(target: &str) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let v = fuzz_inputs(target);
    assert!(!v.is_empty(), "no corpus for {target}");
    v
}

fn is_seed(path: &std::path::Path) -> bool {
    path.starts_with(workspace_root().join("fuzz/corpus"))
}

#[test]
fn squashfs_superblock() {
    let parsed = inputs("squashfs_superblock")
        .iter()
        .filter(|(_, d)| fuzzing::squashfs_superblock(d))
        .count();
    assert!(parsed >= 1, "the seed superblock no longer parses");
}

#[test]
fn erofs_superblock() {
    let parsed = inputs("erofs_superblock")
        .iter()
        .filter(|(_, d)| fuzzing::erofs_superblock(d))
        .count();
    assert!(parsed >= 1, "the seed superblock no longer parses");
}

#[test]
fn squashfs_image() {
    let mut walked = 0;
    for (path, data) in inputs("squashfs_image") {
        let Some(w) = fuzzing::squashfs_image(&data) else {
            continue;
        };
        walked += 1;
        if is_seed(&path) {
            assert_eq!(w.files_read, w.files, "{}", path.display());
        }
    }
    assert!(walked >= 6, "the seed images no longer read");
}

#[test]
fn squashfs_inode() {
    let parsed = inputs("squashfs_inode")
        .iter()
        .filter(|(_, d)| fuzzing::squashfs_inode(d))
        .count();
    assert!(parsed >= 1);
}

#[test]
fn squashfs_directory() {
    for (_, data) in inputs("squashfs_directory") {
        fuzzing::squashfs_directory(&data);
    }
}

#[test]
fn squashfs_decompress() {
    let ok = inputs("squashfs_decompress")
        .iter()
        .filter(|(_, d)| fuzzing::squashfs_decompress(d))
        .count();
    assert!(ok >= 6, "every compressor's seed decompresses");
}

#[test]
fn erofs_image() {
    let mut walked = 0;
    for (path, data) in inputs("erofs_image") {
        let Some(w) = fuzzing::erofs_image(&data) else {
            continue;
        };
        walked += 1;
        if is_seed(&path) {
            assert_eq!(w.files_read, w.files, "{}", path.display());
            assert!(w.entries > 1, "{}", path.display());
        }
    }
    // The committed seeds are real mkfs.erofs images (default, extended inodes without
    // inline data, chunk based; compressed with lz4hc fragments and ztailpacking, lzma big
    // pclusters, deflate full indexes, zstd dedupe, lz4 all-fragments with long xattr
    // prefixes).
    assert!(walked >= 8, "{walked}");
}

#[test]
fn erofs_zmap() {
    let ok = inputs("erofs_zmap")
        .iter()
        .filter(|(_, d)| fuzzing::erofs_zmap(d))
        .count();
    assert!(ok >= 5, "every map structure's seed parses");
}

#[test]
fn erofs_decompress() {
    for (path, data) in inputs("erofs_decompress") {
        let ok = fuzzing::erofs_decompress(&data);
        assert!(ok || !is_seed(&path), "{}", path.display());
    }
}

#[test]
fn erofs_extract() {
    let inputs = fuzz_inputs("erofs_extract");
    assert!(!inputs.is_empty());
    for (path, data) in inputs {
        let sandbox = imgpipe_testsupport::tempdir();
        let ok = fuzzing::erofs_extract(&data, &sandbox.path().join("s"));
        if path.components().any(|c| c.as_os_str() == "corpus") {
            assert!(ok, "{}", path.display());
        }
    }
}

#[test]
fn squashfs_extract() {
    let inputs = fuzz_inputs("squashfs_extract");
    assert!(!inputs.is_empty());
    for (path, data) in inputs {
        let sandbox = imgpipe_testsupport::tempdir();
        let ok = fuzzing::squashfs_extract(&data, &sandbox.path().join("s"));
        if path.components().any(|c| c.as_os_str() == "corpus") {
            assert!(ok, "{}", path.display());
        }
    }
}
