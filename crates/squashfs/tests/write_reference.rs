//! What we write, with every compressor: unsquashfs lists the same entries as for
//! mksquashfs's image of the same tree and extracts the source tree exactly; the kernel mounts
//! it and the mounted tree (content, mode, owner, mtime, links, hard links, xattrs) equals the
//! source; `unsquashfs -s` shows our options.

mod common;

use std::ffi::OsStr;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use imgpipe_squashfs::{Builder, Compression, Compressor, ExtractOptions, Reader, WriteOptions};
use imgpipe_testsupport::{Compare, TreeOptions, diff_trees, run, tempdir, tool, tricky_tree};

const XATTRS: &[(&str, &str, &[u8])] = &[
    ("bin/tool", "user.comment", b"hello"),
    (
        "bin/tool",
        "security.capability",
        &[
            1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ],
    ),
    ("etc", "user.dir", b"x"),
    ("README", "user.comment", b"hello"),
];

/// The tricky tree plus xattrs and a big directory (forces a directory index).
pub fn source_tree(root: &Path) {
    tricky_tree(root, TreeOptions::default());
    let big = root.join("bigdir");
    std::fs::create_dir(&big).unwrap();
    for i in 0..1500 {
        std::fs::write(
            big.join(format!("entry-{i:05}-with-a-longish-name")),
            i.to_string(),
        )
        .unwrap();
    }
    imgpipe_testsupport::set_mtimes(root, 1_700_000_000);
    for (p, name, value) in XATTRS {
        rustix::fs::lsetxattr(root.join(p), *name, value, rustix::fs::XattrFlags::empty()).unwrap();
    }
}

fn xattrs_of(p: &Path) -> Vec<(String, Vec<u8>)> {
    let mut list = vec![0u8; 4096];
    let n = rustix::fs::llistxattr(p, &mut list[..]).unwrap();
    let mut out = Vec::new();
    for name in list[..n].split(|&c| c == 0).filter(|n| !n.is_empty()) {
        let name = String::from_utf8(name.to_vec()).unwrap();
        if name.starts_with("system.") {
            continue;
        }
        let mut v = vec![0u8; 65536];
        let l = rustix::fs::lgetxattr(p, name.as_str(), &mut v[..]).unwrap();
        v.truncate(l);
        out.push((name, v));
    }
    out.sort();
    out
}

fn check_xattrs(src: &Path, copy: &Path) {
    for (p, _, _) in XATTRS {
        assert_eq!(xattrs_of(&src.join(p)), xattrs_of(&copy.join(p)), "{p}");
    }
    assert!(!xattrs_of(&copy.join("bin/tool")).is_empty());
}

fn mask_dir_sizes(lines: Vec<String>) -> Vec<String> {
    lines
        .into_iter()
        .map(|l| {
            let mut f: Vec<&str> = l.split(' ').collect();
            if l.starts_with('d') {
                f[2] = "-";
            }
            f.join(" ")
        })
        .collect()
}

fn build(src: &Path, image: &Path, opts: WriteOptions) {
    let mut b = Builder::new(opts).unwrap();
    b.add_tree(src).unwrap();
    let mut f = std::fs::File::create(image).unwrap();
    b.build(&mut f).unwrap();
}

fn check(comp: Compressor, level: Option<u32>, block_size: u32, fragments: bool) {
    let (Some(mksquashfs), Some(unsquashfs)) = (tool("mksquashfs"), tool("unsquashfs")) else {
        return;
    };
    let tmp = tempdir();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    source_tree(&src);
    let ours = tmp.path().join("ours.sqfs");
    let mut opts = WriteOptions::new(1_600_000_000);
    opts.compression = Compression {
        compressor: comp,
        level,
    };
    opts.block_size = block_size;
    opts.fragments = fragments;
    build(&src, &ours, opts);

    // unsquashfs lists what mksquashfs's image of the same tree lists.
    let theirs = tmp.path().join("theirs.sqfs");
    let mut args: Vec<&OsStr> = vec![src.as_os_str(), theirs.as_os_str()];
    args.extend(["-comp", comp.name(), "-noappend", "-quiet", "-no-progress"].map(OsStr::new));
    run(&mksquashfs, args);
    let ours_list = common::unsquashfs_listing(&unsquashfs, &ours);
    assert_eq!(
        mask_dir_sizes(ours_list.clone()),
        mask_dir_sizes(common::unsquashfs_listing(&unsquashfs, &theirs))
    );
    // Our reader agrees with unsquashfs on our image, directory sizes included.
    let r = Reader::open(std::fs::File::open(&ours).unwrap()).unwrap();
    assert_eq!(
        common::normalise(common::our_listing(&r, &r.walk().unwrap())),
        ours_list
    );

    // The big directory carries an index at least as fine as mksquashfs's.
    let index_len = |r: &Reader| match r.lookup(b"bigdir").unwrap().1.data {
        imgpipe_squashfs::raw::InodeData::Dir(d) => d.index.len(),
        _ => unreachable!(),
    };
    let rt = Reader::open(std::fs::File::open(&theirs).unwrap()).unwrap();
    assert!(
        index_len(&r) >= 5 && index_len(&r) + 1 >= index_len(&rt),
        "{} vs {}",
        index_len(&r),
        index_len(&rt)
    );

    // unsquashfs extracts the source tree.
    let out = tmp.path().join("unsquashed");
    run(
        &unsquashfs,
        [
            OsStr::new("-q"),
            OsStr::new("-n"),
            OsStr::new("-d"),
            out.as_os_str(),
            ours.as_os_str(),
        ],
    );
    let d = diff_trees(&src, &out, Compare::default());
    assert!(d.is_empty(), "unsquashfs -d: {d:#?}");
    check_xattrs(&src, &out);

    // unsquashfs -s shows our options.
    let s = imgpipe_testsupport::stdout_of(&unsquashfs, [OsStr::new("-s"), ours.as_os_str()]);
    assert!(s.contains(&format!("Compression {}", comp.name())), "{s}");
    assert!(s.contains(&format!("Block size {block_size}")), "{s}");
    assert!(s.contains("Filesystem is exportable via NFS"), "{s}");
    assert!(s.contains("Xattrs are compressed"), "{s}");
    if !fragments {
        assert!(s.contains("Fragments are not stored"), "{s}");
    }

    // The kernel mounts it and shows the same tree (hard links, xattrs included).
    if let Some(m) = common::Mount::new(&ours) {
        let d = diff_trees(&src, &m.path(), Compare::default());
        assert!(d.is_empty(), "kernel mount: {d:#?}");
        check_xattrs(&src, &m.path());
        let a = std::fs::metadata(m.path().join("data/small.txt")).unwrap();
        let b = std::fs::metadata(m.path().join("data/small-hardlink.txt")).unwrap();
        assert_eq!((a.ino(), a.nlink()), (b.ino(), 2));
        // Lookups through the directory index find every name.
        for i in (0..1500).step_by(97) {
            let p = m
                .path()
                .join(format!("bigdir/entry-{i:05}-with-a-longish-name"));
            assert_eq!(std::fs::read_to_string(p).unwrap(), i.to_string());
        }
    }

    // And our own extraction matches too.
    let out2 = tmp.path().join("ours-extracted");
    r.extract(&out2, ExtractOptions::full()).unwrap();
    let d = diff_trees(&src, &out2, Compare::default());
    assert!(d.is_empty(), "our extract: {d:#?}");
    check_xattrs(&src, &out2);
}

#[test]
fn gzip() {
    check(Compressor::Gzip, None, 131_072, true);
}

#[test]
fn xz_no_fragments() {
    check(Compressor::Xz, None, 131_072, false);
}

#[test]
fn zstd_level_19_small_blocks() {
    check(Compressor::Zstd, Some(19), 4096, true);
}

#[test]
fn lz4_big_blocks() {
    check(Compressor::Lz4, None, 1 << 20, true);
}

#[test]
fn lzo() {
    check(Compressor::Lzo, None, 65_536, true);
}
