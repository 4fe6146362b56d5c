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
    // Blocks no compressor shrinks (stored as they are, early abort or not), and blocks
    // only an entropy coder shrinks (lz4 cannot: they get past early abort to the compressor).
    let noise = imgpipe_testsupport::noise(300_000, 7);
    std::fs::write(root.join("data/noise.bin"), &noise).unwrap();
    let skewed: Vec<u8> = noise.iter().map(|b| b'A' + b % 16).collect();
    std::fs::write(
        root.join("data/skewed.bin"),
        [&noise[..150_000], &skewed].concat(),
    )
    .unwrap();
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

/// What a kernel lookup of each name in `dir` reads, as fs/squashfs/namei.c does it: index
/// entries up to the first whose name sorts after the target, then directory entries from
/// the chosen index point to the target. Returns (mean, max) over every name.
fn lookup_cost(r: &Reader, dir: &[u8]) -> (f64, usize) {
    let (_, inode) = r.lookup(dir).unwrap();
    let imgpipe_squashfs::raw::InodeData::Dir(d) = &inode.data else {
        panic!("not a directory")
    };
    let names: Vec<Vec<u8>> = r
        .read_dir(&inode)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    let rank = |n: &[u8]| names.iter().position(|x| x == n).unwrap();
    let (mut total, mut max) = (0usize, 0usize);
    for (i, target) in names.iter().enumerate() {
        let passed = d.index.iter().take_while(|x| x.name <= *target).count();
        let index_reads = (passed + 1).min(d.index.len());
        let from = passed.checked_sub(1).map_or(0, |k| rank(&d.index[k].name));
        let cost = index_reads + (i - from + 1);
        total += cost;
        max = max.max(cost);
    }
    (total as f64 / names.len() as f64, max)
}

/// Every stored full data block of every regular file as (length, hash of its bytes), by path.
fn data_blocks(r: &Reader, image: &Path) -> Vec<(String, Vec<(usize, u64)>)> {
    use std::hash::{Hash, Hasher};
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(image).unwrap();
    let mut out = Vec::new();
    for e in r.walk().unwrap() {
        let imgpipe_squashfs::raw::InodeData::File(fi) = &e.inode.data else {
            continue;
        };
        let mut pos = fi.blocks_start;
        let mut blocks = Vec::new();
        // Full blocks only: mksquashfs stores tail ends as blocks where we use fragments.
        let full = (fi.file_size / u64::from(r.superblock().block_size)) as usize;
        for &w in fi.block_sizes.iter().take(full) {
            let len = u64::from(w & 0x00ff_ffff);
            let mut b = vec![0u8; len as usize];
            f.seek(SeekFrom::Start(pos)).unwrap();
            f.read_exact(&mut b).unwrap();
            let mut h = std::hash::DefaultHasher::new();
            b.hash(&mut h);
            blocks.push((b.len(), h.finish()));
            pos += len;
        }
        if !blocks.is_empty() {
            out.push((String::from_utf8_lossy(&e.path).into_owned(), blocks));
        }
    }
    out
}

/// `unsquashfs -d TMP/unsquashed IMAGE`: the extracted tree's path.
fn unsquash(unsquashfs: &Path, image: &Path, tmp: &Path) -> std::path::PathBuf {
    let out = tmp.join("unsquashed");
    let args = [OsStr::new("-q"), OsStr::new("-n"), OsStr::new("-d")];
    run(
        unsquashfs,
        args.into_iter().chain([out.as_os_str(), image.as_os_str()]),
    );
    out
}

fn check(comp: Compressor, level: Option<u32>, block_size: u32, fragments: bool) {
    check_with(
        Compression::with_level(comp, level),
        &[],
        block_size,
        fragments,
    );
}

fn check_with(c: Compression, mksquashfs_args: &[&str], block_size: u32, fragments: bool) {
    let comp = c.compressor;
    let (Some(mksquashfs), Some(unsquashfs)) = (tool("mksquashfs"), tool("unsquashfs")) else {
        return;
    };
    let tmp = tempdir();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    source_tree(&src);
    let ours = tmp.path().join("ours.sqfs");
    let mut opts = WriteOptions::new(1_600_000_000);
    opts.compression = c;
    opts.block_size = block_size;
    opts.fragments = fragments;
    build(&src, &ours, opts);

    // unsquashfs lists what mksquashfs's image of the same tree lists.
    let theirs = tmp.path().join("theirs.sqfs");
    let mut args: Vec<&OsStr> = vec![src.as_os_str(), theirs.as_os_str()];
    args.extend(["-comp", comp.name(), "-noappend", "-quiet", "-no-progress"].map(OsStr::new));
    let bs = block_size.to_string();
    args.extend(["-b", bs.as_str()].map(OsStr::new));
    if !fragments {
        args.push(OsStr::new("-no-fragments"));
    }
    let level = c.level.map(|l| l.to_string());
    if let Some(l) = &level {
        args.extend(["-Xcompression-level", l.as_str()].map(OsStr::new));
    }
    args.extend(mksquashfs_args.iter().map(OsStr::new));
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
    // A kernel lookup in it reads no more than in mksquashfs's image of the same tree
    // (measured on mounts: cold `ls -l` of 20,000 entries and `find -ls` of a 61,000-entry
    // /usr copy take the same time on both images; see benches/benches/squashfs.rs).
    let ((ours_mean, ours_max), (theirs_mean, theirs_max)) =
        (lookup_cost(&r, b"bigdir"), lookup_cost(&rt, b"bigdir"));
    assert!(
        ours_mean <= theirs_mean * 1.05 && ours_max <= theirs_max + 8,
        "lookup cost: ours mean {ours_mean:.1} max {ours_max}, mksquashfs mean {theirs_mean:.1} max {theirs_max}"
    );
    // liblz4 is mksquashfs's encoder too: every full data block is byte-identical.
    if comp == Compressor::Lz4 {
        assert_eq!(data_blocks(&r, &ours), data_blocks(&rt, &theirs));
    }

    // unsquashfs extracts the source tree.
    let out = unsquash(&unsquashfs, &ours, tmp.path());
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
    // The options block reads as mksquashfs's does.
    let theirs_s =
        imgpipe_testsupport::stdout_of(&unsquashfs, [OsStr::new("-s"), theirs.as_os_str()]);
    let opts_lines = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| {
                l.contains("Filters selected")
                    || l.contains("High Compression")
                    || l.contains("Dictionary size")
                    || l.contains("compression-level")
            })
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        opts_lines(&s),
        opts_lines(&theirs_s),
        "{s}\n--- mksquashfs:\n{theirs_s}"
    );

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

#[test]
fn xz_bcj_x86_and_arm() {
    let mut c = Compression::new(Compressor::Xz);
    c.xz_bcj = imgpipe_squashfs::bcj::X86 | imgpipe_squashfs::bcj::ARM;
    check_with(c, &["-Xbcj", "x86,arm"], 131_072, true);
}

/// With the x86 filter: blocks of machine code take the filtered result where it is smaller,
/// text blocks (which the filter cannot change, so are compressed once) are stored exactly
/// as plain xz stores them, and unsquashfs and the kernel read both back.
#[test]
fn xz_bcj_x86_machine_code_and_text() {
    let Some(unsquashfs) = tool("unsquashfs") else {
        return;
    };
    let tmp = tempdir();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    // This test's own executable: x86-64 machine code.
    let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    std::fs::write(src.join("code.bin"), &exe[..exe.len().min(2 << 20)]).unwrap();
    let text: String = (0..40_000)
        .map(|i| format!("{i} \u{8a9e}\u{9577} line of text {}\n", i % 11))
        .collect();
    std::fs::write(src.join("text.txt"), text).unwrap();
    let image = |bcj: u32| {
        let out = tmp.path().join(format!("bcj-{bcj}.sqfs"));
        let mut o = WriteOptions::new(1_600_000_000);
        o.compression = Compression::new(Compressor::Xz);
        o.compression.xz_bcj = bcj;
        build(&src, &out, o);
        out
    };
    let (x86, plain) = (image(imgpipe_squashfs::bcj::X86), image(0));
    let blocks = |p: &Path| {
        let r = Reader::open(std::fs::File::open(p).unwrap()).unwrap();
        data_blocks(&r, p)
    };
    let (bx, bp) = (blocks(&x86), blocks(&plain));
    let of = |b: &[(String, Vec<(usize, u64)>)], name: &str| {
        b.iter().find(|(p, _)| p == name).unwrap().1.clone()
    };
    assert_eq!(of(&bx, "text.txt"), of(&bp, "text.txt"));
    let (cx, cp) = (of(&bx, "code.bin"), of(&bp, "code.bin"));
    let sum = |v: &[(usize, u64)]| v.iter().map(|b| b.0).sum::<usize>();
    assert!(
        sum(&cx) < sum(&cp),
        "x86 {} vs plain {}",
        sum(&cx),
        sum(&cp)
    );
    assert!(cx.iter().zip(&cp).all(|(x, p)| x.0 <= p.0));
    let out = unsquash(&unsquashfs, &x86, tmp.path());
    assert!(diff_trees(&src, &out, Compare::default()).is_empty());
    if let Some(m) = common::Mount::new(&x86) {
        for f in ["code.bin", "text.txt"] {
            assert!(
                std::fs::read(m.path().join(f)).unwrap() == std::fs::read(src.join(f)).unwrap()
            );
        }
    }
}

#[test]
fn lz4_high_compression() {
    let mut c = Compression::new(Compressor::Lz4);
    c.lz4_hc = true;
    check_with(c, &["-Xhc"], 131_072, true);
}
