//! Compressed EROFS images written by others read back exactly: Debian's mkfs.erofs 1.5
//! (lz4, lz4hc, big pclusters) and erofs-utils 1.8.6 (every compressor, big pclusters,
//! fragments, ztailpacking, dedupe, all-fragments, full indexes, long xattr prefixes). For
//! each, our walk (types, modes, owners, mtimes, sizes, sha256, link targets, rdev, xattrs)
//! equals the source tree and the kernel's loop mount of the image, and extraction gives
//! the source tree back.

mod common;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use imgpipe_fstree::FsRead;
use imgpipe_squashfs::erofs::ErofsReader;
use imgpipe_squashfs::{Bytes, Limits};
use imgpipe_testsupport::{
    EntryFacts, TreeOptions, describe_tree, erofs_utils, run, tempdir, tool, tricky_tree,
};

const T: i64 = 1_700_000_000;
const LONG_PREFIX: &str = "user.imgpipe.a-rather-long-xattr-name-prefix.";

/// The source tree, built once per test binary: compressible text over many clusters,
/// incompressible data, duplicates (small and large), tiny and empty files, a sparse file,
/// xattrs with short and long names.
fn source() -> &'static Path {
    static SRC: OnceLock<tempfile::TempDir> = OnceLock::new();
    SRC.get_or_init(|| {
        let tmp = tempdir();
        let root = tmp.path();
        tricky_tree(root, TreeOptions::default());
        let text: String = (0..60_000)
            .map(|k| format!("line {k} of a compressible text file\n"))
            .collect();
        std::fs::write(root.join("data/text.txt"), &text).unwrap();
        let big = imgpipe_testsupport::pattern(700_000);
        std::fs::write(root.join("data/random-a.bin"), &big).unwrap();
        std::fs::write(root.join("data/random-b.bin"), &big).unwrap();
        let mut mixed = text.as_bytes()[..200_000].to_vec();
        mixed.extend_from_slice(&big[..100_000]);
        mixed.extend_from_slice(&text.as_bytes()[..5_000]);
        std::fs::write(root.join("data/mixed.bin"), &mixed).unwrap();
        for k in 0..40 {
            std::fs::write(root.join(format!("data/tiny-{k:02}")), format!("{k}\n")).unwrap();
        }
        std::fs::write(root.join("data/one-block"), vec![b'x'; 4096]).unwrap();
        std::fs::write(root.join("data/block-plus-one"), vec![b'y'; 4097]).unwrap();
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
            let _ =
                rustix::fs::lsetxattr(root.join(p), name, value, rustix::fs::XattrFlags::empty());
        }
        for (k, p) in ["data/text.txt", "data/small.txt", "etc"]
            .iter()
            .enumerate()
        {
            let name = format!("{LONG_PREFIX}{k}");
            let _ = rustix::fs::lsetxattr(
                root.join(p),
                name.as_str(),
                format!("long-prefixed value {k}").as_bytes(),
                rustix::fs::XattrFlags::empty(),
            );
        }
        imgpipe_testsupport::set_mtimes(root, T);
        tmp
    })
    .path()
}

/// `user.*` xattrs of a host path, sorted.
fn host_xattrs(p: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut names = vec![0u8; 65536];
    let n = rustix::fs::llistxattr(p, &mut names[..]).unwrap_or(0);
    let mut out = Vec::new();
    for name in names[..n]
        .split(|&c| c == 0)
        .filter(|s| s.starts_with(b"user."))
    {
        let mut v = vec![0u8; 65536];
        let name_s = std::str::from_utf8(name).unwrap();
        let len = rustix::fs::lgetxattr(p, name_s, &mut v[..]).unwrap();
        out.push((name.to_vec(), v[..len].to_vec()));
    }
    out.sort();
    out
}

fn makedev(major: u32, minor: u32) -> u64 {
    let (ma, mi) = (u64::from(major), u64::from(minor));
    ((ma & 0xffff_f000) << 32) | ((ma & 0xfff) << 8) | ((mi & 0xffff_ff00) << 12) | (mi & 0xff)
}

type Xattrs = BTreeMap<PathBuf, Vec<(Vec<u8>, Vec<u8>)>>;

/// The tree as our reader sees it through [`FsRead`], in `describe_tree`'s terms, and the
/// `user.*` xattrs of each entry that has some.
fn facts(r: &ErofsReader) -> (BTreeMap<PathBuf, EntryFacts>, Xattrs) {
    use sha2::{Digest, Sha256};
    let mut out = BTreeMap::new();
    let mut xattrs = BTreeMap::new();
    for (e, node) in FsRead::walk(r).unwrap() {
        if e.path.is_empty() {
            continue;
        }
        let path = PathBuf::from(String::from_utf8(e.path.clone()).unwrap());
        let kind = match e.file_type {
            imgpipe_fstree::FileType::Dir => 'd',
            imgpipe_fstree::FileType::File => 'f',
            imgpipe_fstree::FileType::Symlink => 'l',
            imgpipe_fstree::FileType::Fifo => 'p',
            imgpipe_fstree::FileType::Char => 'c',
            imgpipe_fstree::FileType::Block => 'b',
            imgpipe_fstree::FileType::Socket => 's',
        };
        let sha256 = (kind == 'f').then(|| {
            let mut data = Vec::new();
            let n = r.read_content(&node, &mut data).unwrap();
            assert_eq!(n, e.size, "{}", path.display());
            Sha256::digest(&data)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        });
        let mut x: Vec<_> = e
            .meta
            .xattrs
            .iter()
            .filter(|(n, _)| n.starts_with(b"user."))
            .cloned()
            .collect();
        x.sort();
        if !x.is_empty() {
            xattrs.insert(path.clone(), x);
        }
        out.insert(
            path,
            EntryFacts {
                kind,
                mode: e.meta.mode,
                uid: e.meta.uid,
                gid: e.meta.gid,
                mtime: e.meta.mtime,
                size: if kind == 'f' { e.size } else { 0 },
                sha256,
                link: e
                    .target
                    .as_ref()
                    .map(|t| PathBuf::from(std::str::from_utf8(t).unwrap())),
                rdev: e.rdev.map_or(0, |(a, b)| makedev(a, b)),
            },
        );
    }
    (out, xattrs)
}

fn tree_xattrs(root: &Path, paths: impl Iterator<Item = PathBuf>) -> Xattrs {
    paths
        .filter_map(|p| {
            let x = host_xattrs(&root.join(&p));
            (!x.is_empty()).then_some((p, x))
        })
        .collect()
}

/// What an image turned out to use: its superblock and the data layouts of its files.
struct Used {
    sb: imgpipe_squashfs::erofs::raw::ErofsSuperBlock,
    layouts: std::collections::BTreeSet<u8>,
}

impl Used {
    fn has(&self, incompat: u32) -> bool {
        self.sb.feature_incompat & incompat != 0
    }
}

/// Builds an image of the source with `mkfs` and `args`, and checks our reader against the
/// source, the kernel and extraction. Says what the image uses.
fn check(name: &str, mkfs: &Path, args: &[&str]) -> Used {
    let src = source();
    let tmp = tempdir();
    let img = tmp.path().join("img.erofs");
    let stamp = format!("-T{T}");
    let mut a: Vec<&OsStr> = vec![OsStr::new("--quiet"), OsStr::new(&stamp)];
    a.extend(args.iter().map(OsStr::new));
    a.extend([img.as_os_str(), src.as_os_str()]);
    run(mkfs, a);

    let r = ErofsReader::open_at(std::fs::File::open(&img).unwrap(), 0, Limits::default())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let (ours, our_x) = facts(&r);
    let want = describe_tree(src);
    assert_eq!(ours.len(), want.len(), "{name}: entry count");
    for (p, f) in &want {
        assert_eq!(ours.get(p), Some(f), "{name}: {}", p.display());
    }
    // Compressed files' extents cover them without gaps and lie inside the image.
    let image_len = std::fs::metadata(&img).unwrap().len();
    let mut with_extents = 0;
    for (e, n) in FsRead::walk(&r).unwrap() {
        let Some(x) = r.extents(&n).unwrap() else {
            continue;
        };
        if !matches!(n.layout, 1 | 3) {
            continue;
        }
        with_extents += 1;
        let mut at = 0;
        for x in &x {
            assert_eq!(x.file_offset, at, "{name}: {x:?}");
            assert!(x.image_offset + x.stored_len <= image_len, "{name}: {x:?}");
            at += x.len;
        }
        assert_eq!(at, e.size, "{name}");
    }
    assert!(with_extents > 0 || r.superblock().packed_nid != 0, "{name}");
    let want_x = tree_xattrs(src, want.keys().cloned());
    assert_eq!(our_x, want_x, "{name}: xattrs");

    // The same image at an offset inside a larger file.
    let mut shifted = vec![0xa5u8; 12_345];
    shifted.extend(std::fs::read(&img).unwrap());
    let r2 = ErofsReader::open_at(Bytes(shifted), 12_345, Limits::default()).unwrap();
    assert_eq!(facts(&r2).0, ours, "{name}: at an offset");

    // The kernel reads the same tree from the same image (blocks up to its 4 KiB pages).
    let mountable = r.superblock().blkszbits <= 12;
    if let Some(m) = mountable
        .then(|| common::Mount::typed(&img, "erofs"))
        .flatten()
    {
        let kernel = describe_tree(&m.path());
        assert_eq!(kernel, ours, "{name}: kernel mount vs our reader");
        assert_eq!(
            tree_xattrs(&m.path(), kernel.keys().cloned()),
            our_x,
            "{name}: kernel xattrs"
        );
    }

    // Extraction (in parallel) gives back the source tree.
    let out = tmp.path().join("extracted");
    r.extract(&out, imgpipe_squashfs::ExtractOptions::full())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let what = imgpipe_testsupport::Compare {
        owner: imgpipe_testsupport::is_root(),
        ..imgpipe_testsupport::Compare::default()
    };
    let d = imgpipe_testsupport::diff_trees(src, &out, what);
    assert!(d.is_empty(), "{name}: extracted tree: {d:#?}");
    // The sparse file stays sparse.
    use std::os::unix::fs::MetadataExt;
    let sparse = std::fs::metadata(out.join("data/sparse.img")).unwrap();
    assert!(
        sparse.blocks() * 512 < 1 << 20,
        "{name}: {} blocks",
        sparse.blocks()
    );
    let layouts = r.walk().unwrap().iter().map(|e| e.inode.layout).collect();
    let used = Used {
        sb: r.superblock().clone(),
        layouts,
    };
    assert!(
        used.layouts.contains(&1) || used.layouts.contains(&3),
        "{name}: nothing compressed"
    );
    used
}

use imgpipe_squashfs::erofs::raw::{
    FEATURE_INCOMPAT_BIG_PCLUSTER as BIG, FEATURE_INCOMPAT_FRAGMENTS as FRAGMENTS,
    FEATURE_INCOMPAT_XATTR_PREFIXES as PREFIXES, FEATURE_INCOMPAT_ZTAILPACKING as ZTAIL,
};

fn debian() -> Option<PathBuf> {
    tool("mkfs.erofs")
}

fn utils() -> Option<PathBuf> {
    erofs_utils("mkfs.erofs")
}

#[test]
fn debian_15_lz4_lz4hc_big_pclusters() {
    let Some(m) = debian() else { return };
    check("1.5 lz4", &m, &["-zlz4"]);
    check("1.5 lz4hc", &m, &["-zlz4hc"]);
    assert!(check("1.5 lz4hc -C65536", &m, &["-zlz4hc", "-C65536"]).has(BIG));
    assert!(check("1.5 lz4 ztailpacking", &m, &["-zlz4", "-Eztailpacking"]).has(ZTAIL));
    check(
        "1.5 lz4hc fragments",
        &m,
        &["-zlz4hc", "-C65536", "-Efragments,ztailpacking"],
    );
    check("1.5 lz4hc dedupe", &m, &["-zlz4hc", "-C65536", "-Ededupe"]);
}

#[test]
fn utils_186_lz4() {
    let Some(m) = utils() else { return };
    check("lz4", &m, &["-zlz4"]);
    assert!(check("lz4hc -C65536", &m, &["-zlz4hc", "-C65536"]).has(BIG));
    let legacy = check("lz4hc legacy", &m, &["-zlz4hc", "-Elegacy-compress"]);
    assert!(legacy.layouts.contains(&1) && !legacy.layouts.contains(&3));
}

#[test]
fn utils_186_lzma() {
    let Some(m) = utils() else { return };
    check("lzma", &m, &["-zlzma"]);
    let kiosk = check(
        "lzma kiosk",
        &m,
        &["-zlzma", "-C1048576", "-Efragments,ztailpacking"],
    );
    assert!(kiosk.has(BIG) && kiosk.has(FRAGMENTS) && kiosk.sb.packed_nid != 0);
}

#[test]
fn utils_186_deflate() {
    let Some(m) = utils() else { return };
    check("deflate", &m, &["-zdeflate"]);
    let d = check(
        "deflate -C65536 ztailpacking",
        &m,
        &["-zdeflate", "-C65536", "-Eztailpacking"],
    );
    assert!(d.has(ZTAIL) && d.has(BIG));
}

#[test]
fn utils_186_zstd() {
    let Some(m) = utils() else { return };
    check("zstd", &m, &["-zzstd"]);
    let z = check(
        "zstd -C1048576 fragments",
        &m,
        &["-zzstd", "-C1048576", "-Efragments"],
    );
    assert!(z.sb.packed_nid != 0);
}

#[test]
fn utils_186_fragments_dedupe_and_prefixes() {
    let Some(m) = utils() else { return };
    let d = check("lz4hc dedupe", &m, &["-zlz4hc", "-C65536", "-Ededupe"]);
    assert!(d.has(FRAGMENTS) && d.layouts.contains(&1));
    assert!(
        check("lz4hc all-fragments", &m, &["-zlz4hc", "-Eall-fragments"])
            .sb
            .packed_nid
            != 0
    );
    check(
        "lzma all-fragments dedupe",
        &m,
        &["-zlzma", "-C65536", "-Eall-fragments,dedupe,ztailpacking"],
    );
    let prefix = format!("--xattr-prefix={LONG_PREFIX}");
    let p = check(
        "zstd long xattr prefixes",
        &m,
        &["-zzstd", &prefix, "-Efragments"],
    );
    assert!(p.has(PREFIXES) && p.sb.xattr_prefix_count == 1);
}

/// Blocks above 4 KiB (`mkfs.erofs -b`, images for 16K- and 64K-page machines): compact
/// indexes with 4-byte packs only (16 KiB lclusters), full indexes above that.
#[test]
fn utils_186_blocks_above_4k() {
    let Some(m) = utils() else { return };
    let u = check(
        "lz4hc -b16384 -C65536 fragments ztailpacking",
        &m,
        &["-b16384", "-zlz4hc", "-C65536", "-Efragments,ztailpacking"],
    );
    assert_eq!(u.sb.blkszbits, 14);
    assert!(u.has(BIG) && u.has(FRAGMENTS) && u.sb.packed_nid != 0);
    let u = check(
        "zstd -b65536 ztailpacking",
        &m,
        &["-b65536", "-zzstd", "-Eztailpacking"],
    );
    assert_eq!(u.sb.blkszbits, 16);
    assert!(u.has(ZTAIL));
    check(
        "deflate -b8192 dedupe",
        &m,
        &["-b8192", "-zdeflate", "-Ededupe"],
    );
}

/// Two algorithms in one image, chosen per file by compress hints (and one file left
/// uncompressed), with different pcluster sizes.
#[test]
fn utils_186_two_algorithms_by_hints() {
    let Some(m) = utils() else { return };
    let tmp = tempdir();
    let hints = tmp.path().join("hints");
    std::fs::write(
        &hints,
        "0 data/random-a\\.bin\n16384 1 data/text\\.txt\n65536 1 data/mixed\n",
    )
    .unwrap();
    let arg = format!("--compress-hints={}", hints.display());
    let u = check("lz4hc:lzma hints", &m, &["-zlz4hc:lzma", "-C65536", &arg]);
    assert_eq!(u.sb.compr_algs(), 0b11);
}

/// The packed inode of a `-Efragments,ztailpacking` image whose last fragment does not
/// compress ends in an uncompressed inline tail, stored unrotated although the inode's
/// plain pclusters are interlaced: it reads back as the source file (Linux 6.18 and
/// fsck.erofs 1.8.6 return other bytes for it).
#[test]
fn an_unrotated_inline_tail_of_an_interlaced_inode() {
    let Some(m) = utils() else { return };
    let tmp = tempdir();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    for (k, lines) in [(0, 2700), (1, 900), (2, 1500), (3, 2100)] {
        let text: String = (0..lines).map(|i| format!("text line {k} {i}\n")).collect();
        std::fs::write(src.join(format!("a{k}.txt")), text).unwrap();
    }
    let gz = imgpipe_testsupport::pattern(1900);
    std::fs::write(src.join("z.gz"), &gz).unwrap();
    let img = tmp.path().join("img");
    run(
        &m,
        [
            OsStr::new("--quiet"),
            OsStr::new("-zlz4hc"),
            OsStr::new("-Efragments,ztailpacking"),
            img.as_os_str(),
            src.as_os_str(),
        ],
    );
    let r = ErofsReader::open_at(std::fs::File::open(&img).unwrap(), 0, Limits::default()).unwrap();
    for (e, n) in FsRead::walk(&r).unwrap() {
        if e.file_type != imgpipe_fstree::FileType::File {
            continue;
        }
        let mut got = Vec::new();
        r.read_content(&n, &mut got).unwrap();
        let path = std::str::from_utf8(&e.path).unwrap();
        assert_eq!(got, std::fs::read(src.join(path)).unwrap(), "{path}");
    }
}

#[test]
fn every_truncated_prefix_fails_cleanly() {
    let Some(m) = utils() else { return };
    let tmp = tempdir();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("text"), "compressible line of text\n".repeat(3000)).unwrap();
    std::fs::write(src.join("mixed"), imgpipe_testsupport::pattern(9000)).unwrap();
    std::fs::write(src.join("tiny"), "tiny\n").unwrap();
    let img = tmp.path().join("small.erofs");
    run(
        &m,
        [
            OsStr::new("--quiet"),
            OsStr::new("-zlz4hc"),
            OsStr::new("-Efragments,ztailpacking"),
            img.as_os_str(),
            src.as_os_str(),
        ],
    );
    let bytes = std::fs::read(&img).unwrap();
    let full = ErofsReader::open_at(Bytes(bytes.clone()), 0, Limits::default()).unwrap();
    assert!(full.superblock().packed_nid != 0);
    let mut read_ok = 0;
    for cut in 0..bytes.len() {
        let Ok(r) = ErofsReader::open_at(Bytes(bytes[..cut].to_vec()), 0, Limits::default()) else {
            continue;
        };
        let Ok(entries) = FsRead::walk(&r) else {
            continue;
        };
        for (e, node) in entries {
            if e.file_type == imgpipe_fstree::FileType::File
                && let Ok(n) = r.read_content(&node, &mut std::io::sink())
            {
                assert_eq!(n, e.size);
                read_ok += 1;
            }
        }
    }
    assert!(read_ok > 0);
}
