//! Images made by mksquashfs (each compressor, with and without fragments, xattrs, hard links,
//! special files) list exactly as `unsquashfs -lln` lists them and extract to the same tree.

mod common;

use std::path::Path;

use imgpipe_squashfs::{ExtractOptions, Reader};
use imgpipe_testsupport::{Compare, TreeOptions, diff_trees, run, tempdir, tool, tricky_tree};

fn check(comp: &str, extra: &[&str]) {
    let (Some(mksquashfs), Some(unsquashfs)) = (tool("mksquashfs"), tool("unsquashfs")) else {
        return;
    };
    let tmp = tempdir();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    tricky_tree(&src, TreeOptions::default());
    // The same value in two different xattr sets: mksquashfs stores it out of line once.
    let x = |p: &str, n: &str, v: &[u8]| {
        rustix::fs::lsetxattr(src.join(p), n, v, rustix::fs::XattrFlags::empty()).unwrap()
    };
    x(
        "bin/tool",
        "user.comment",
        b"a value long enough to be shared out of line",
    );
    x("bin/tool", "user.other", b"1");
    x(
        "README",
        "user.comment",
        b"a value long enough to be shared out of line",
    );
    x("etc", "trusted.dir", b"t");
    let image = tmp.path().join("img.sqfs");
    let mut args: Vec<&std::ffi::OsStr> = vec![
        src.as_os_str(),
        image.as_os_str(),
        "-comp".as_ref(),
        comp.as_ref(),
        "-noappend".as_ref(),
        "-quiet".as_ref(),
        "-no-progress".as_ref(),
        "-processors".as_ref(),
        "1".as_ref(),
    ];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    run(&mksquashfs, args);
    let r = Reader::open(std::fs::File::open(&image).unwrap()).unwrap();
    let entries = r.walk().unwrap();
    assert_eq!(
        common::normalise(common::our_listing(&r, &entries)),
        common::unsquashfs_listing(&unsquashfs, &image),
        "{comp} {extra:?}"
    );
    let xattrs = |p: &[u8]| {
        let mut v = r.xattrs(&r.lookup(p).unwrap().1).unwrap();
        v.sort();
        v
    };
    if !extra.contains(&"-no-xattrs") {
        let shared = b"a value long enough to be shared out of line".to_vec();
        assert_eq!(
            xattrs(b"bin/tool"),
            vec![
                (b"user.comment".to_vec(), shared.clone()),
                (b"user.other".to_vec(), b"1".to_vec())
            ]
        );
        assert_eq!(xattrs(b"README"), vec![(b"user.comment".to_vec(), shared)]);
        assert_eq!(
            xattrs(b"etc"),
            vec![(b"trusted.dir".to_vec(), b"t".to_vec())]
        );
    }
    let out = tmp.path().join("out");
    let opts = ExtractOptions::full();
    let report = r.extract(&out, opts).unwrap();
    assert!(report.files > 10);
    let d = diff_trees(&src, &out, Compare::default());
    assert!(d.is_empty(), "{comp} {extra:?}: {d:#?}");
    // Hard links stay hard links.
    use std::os::unix::fs::MetadataExt;
    let a = std::fs::metadata(out.join("data/small.txt")).unwrap();
    let b = std::fs::metadata(out.join("data/small-hardlink.txt")).unwrap();
    assert_eq!(a.ino(), b.ino());
    let _ = Path::new("");
}

#[test]
fn gzip_default() {
    check("gzip", &[]);
}

#[test]
fn xz_no_fragments() {
    check("xz", &["-no-fragments"]);
}

#[test]
fn xz_bcj_always_fragments() {
    check("xz", &["-Xbcj", "x86", "-always-use-fragments"]);
}

#[test]
fn zstd_small_blocks() {
    check("zstd", &["-b", "4096", "-Xcompression-level", "3"]);
}

#[test]
fn lz4_hc() {
    check("lz4", &["-Xhc"]);
}

#[test]
fn lzo() {
    check("lzo", &[]);
}

#[test]
fn gzip_uncompressed_everything() {
    check("gzip", &["-noI", "-noD", "-noF", "-noX", "-no-duplicates"]);
}
