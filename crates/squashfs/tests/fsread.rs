//! The shared reading trait ([`FsRead`]) on squashfs and EROFS images made by the reference
//! tools: every entry equals the source tree (type, mode, owner, mtime, size, content, link
//! target, device numbers, xattrs), hard links share one identity, the walk order is exactly
//! `Tree`'s, and each extent points at the image bytes that hold that part of the content.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use imgpipe_fstree::{Entry, Extent, FileType, FsRead, Tree, join_dev};
use imgpipe_squashfs::erofs::ErofsReader;
use imgpipe_squashfs::{Bytes, Limits, Reader, decompress_block};
use imgpipe_testsupport::{TreeOptions, describe_tree, run, tempdir, tool, tricky_tree};

const T: i64 = 1_700_000_000;

/// A tricky tree plus names whose byte order differs from a plain path sort (`a/b` vs `a.b`
/// vs `a-b`), and xattrs.
fn source(root: &Path) {
    tricky_tree(root, TreeOptions::default());
    for p in [
        "a/b",
        "a/b.c",
        "a-b",
        "a.b",
        "a0",
        "B",
        "\u{e9}t\u{e9}",
        "a/B",
    ] {
        std::fs::create_dir_all(root.join(p).parent().unwrap()).unwrap();
        std::fs::write(root.join(p), p).unwrap();
    }
    for (p, name, value) in [
        ("README", "user.zz", &b"last"[..]),
        ("README", "user.aa", b"first"),
        ("etc", "user.dir", b"x"),
    ] {
        rustix::fs::lsetxattr(root.join(p), name, value, rustix::fs::XattrFlags::empty()).unwrap();
    }
    imgpipe_testsupport::set_mtimes(root, T);
}

fn letter(t: FileType) -> char {
    match t {
        FileType::File => 'f',
        FileType::Dir => 'd',
        FileType::Symlink => 'l',
        FileType::Char => 'c',
        FileType::Block => 'b',
        FileType::Fifo => 'p',
        FileType::Socket => 's',
    }
}

fn user_xattrs(path: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut names = vec![0u8; 4096];
    let n = rustix::fs::llistxattr(path, &mut names).unwrap();
    let mut out = Vec::new();
    for name in names[..n]
        .split(|&c| c == 0)
        .filter(|n| n.starts_with(b"user."))
    {
        let mut v = vec![0u8; 65_536];
        let k = rustix::fs::lgetxattr(path, OsStr::from_bytes(name), &mut v).unwrap();
        out.push((name.to_vec(), v[..k].to_vec()));
    }
    out.sort();
    out
}

/// Checks every entry of `r` against the source tree and the image bytes. `decode` turns an
/// extent's stored bytes into bytes that contain the extent's content.
/// `no_extents_ok` says which files may report no extents (their bytes share a compressed
/// block with other files'); every other file's extents must cover its content.
fn check<R>(
    r: R,
    src: &Path,
    image: &[u8],
    decode: &dyn Fn(&[u8]) -> Vec<u8>,
    no_extents_ok: &dyn Fn(&Entry) -> bool,
) -> Vec<Entry>
where
    R: FsRead + Send + Sync + 'static,
    R::Node: 'static,
    R::Error: std::fmt::Debug,
{
    use sha2::{Digest, Sha256};
    let walked = r.walk().unwrap();
    let want = describe_tree(src);
    assert_eq!(walked.len(), want.len() + 1, "entry count");
    assert_eq!(walked[0].0.path, b"");
    assert_eq!(walked[0].0.file_type, FileType::Dir);
    for (e, node) in &walked[1..] {
        let p = PathBuf::from(String::from_utf8(e.path.clone()).unwrap());
        let f = want
            .get(&p)
            .unwrap_or_else(|| panic!("{} not in source", p.display()));
        let name = p.display();
        assert_eq!(letter(e.file_type), f.kind, "{name}");
        assert_eq!(e.meta.mode, f.mode, "{name}");
        assert_eq!((e.meta.uid, e.meta.gid), (f.uid, f.gid), "{name}");
        assert_eq!(e.meta.mtime, f.mtime, "{name}");
        assert_eq!(e.rdev.map_or(0, |(a, b)| join_dev(a, b)), f.rdev, "{name}");
        let host = src.join(&p);
        let mut x = e.meta.xattrs.clone();
        assert!(x.windows(2).all(|w| w[0] <= w[1]), "{name}: xattrs sorted");
        x.retain(|(n, _)| n.starts_with(b"user."));
        assert_eq!(x, user_xattrs(&host), "{name}");
        match e.file_type {
            FileType::Symlink => {
                let t = std::fs::read_link(&host).unwrap();
                assert_eq!(e.target.as_deref(), Some(t.as_os_str().as_encoded_bytes()));
                assert_eq!(e.size, t.as_os_str().len() as u64, "{name}");
            }
            FileType::File => {
                assert_eq!(e.size, f.size, "{name}");
                let mut data = Vec::new();
                assert_eq!(r.read_content(node, &mut data).unwrap(), f.size);
                let sha: String = Sha256::digest(&data)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                assert_eq!(Some(sha), f.sha256, "{name}");
                let nlink = std::fs::symlink_metadata(&host).unwrap().nlink();
                assert_eq!(e.link.is_some(), nlink > 1, "{name}: link identity");
                match r.extents(node).unwrap() {
                    Some(extents) => {
                        check_extents(&extents, &data, image, decode, &name.to_string())
                    }
                    None => assert!(no_extents_ok(e), "{name}: a file has extents"),
                }
            }
            _ => assert_eq!(r.extents(node).unwrap(), None, "{name}"),
        }
    }
    let links: Vec<_> = walked
        .iter()
        .filter(|(e, _)| e.link.is_some())
        .map(|(e, _)| (e.path.clone(), e.link))
        .collect();
    assert_eq!(links.len(), 2, "{links:?}");
    assert_eq!(links[0].1, links[1].1);

    // The walk order is the order a Tree iterates in.
    let ours: Vec<Vec<u8>> = walked.iter().map(|(e, _)| e.path.clone()).collect();
    let entries: Vec<Entry> = walked.into_iter().map(|(e, _)| e).collect();
    let tree = Tree::from_reader(Arc::new(r)).unwrap();
    let theirs: Vec<Vec<u8>> = tree.iter().map(|n| n.entry.path.clone()).collect();
    assert_eq!(ours, theirs);
    for (a, b) in entries.iter().zip(tree.iter()) {
        assert_eq!(a, &b.entry);
    }
    entries
}

fn check_extents(
    extents: &[Extent],
    data: &[u8],
    image: &[u8],
    decode: &dyn Fn(&[u8]) -> Vec<u8>,
    name: &str,
) {
    let mut covered = vec![false; data.len()];
    let mut prev_end = 0;
    for x in extents {
        assert!(
            x.file_offset >= prev_end,
            "{name}: extents in content order"
        );
        prev_end = x.file_offset + x.len;
        let want = &data[x.file_offset as usize..prev_end as usize];
        let stored = &image[x.image_offset as usize..(x.image_offset + x.stored_len) as usize];
        if x.compressed {
            let got = decode(stored);
            assert!(
                got == want || got.windows(want.len()).any(|w| w == want),
                "{name}: extent {x:?}"
            );
        } else {
            assert_eq!(x.len, x.stored_len, "{name}");
            assert!(stored == want, "{name}: extent {x:?}");
        }
        covered[x.file_offset as usize..prev_end as usize].fill(true);
    }
    // What no extent covers is a hole.
    for (k, c) in covered.iter().enumerate() {
        assert!(*c || data[k] == 0, "{name}: byte {k} is in no extent");
    }
}

#[test]
fn squashfs_entries_extents_and_order() {
    let Some(mksquashfs) = tool("mksquashfs") else {
        return;
    };
    let tmp = tempdir();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    source(&src);
    for (comp, extra) in [("gzip", None), ("xz", Some("-noD"))] {
        let img = tmp.path().join(format!("{comp}.sqfs"));
        let mut args: Vec<&OsStr> = vec![
            src.as_os_str(),
            img.as_os_str(),
            "-comp".as_ref(),
            comp.as_ref(),
            "-noappend".as_ref(),
            "-quiet".as_ref(),
            "-no-progress".as_ref(),
        ];
        args.extend(extra.map(OsStr::new));
        run(&mksquashfs, args);
        let bytes = std::fs::read(&img).unwrap();
        let r = Reader::open(Bytes(bytes.clone())).unwrap();
        assert!(!r.holds().mtime_nsec && r.holds().xattrs && r.holds().hard_links);
        let c = r.superblock().compressor;
        let bs = r.superblock().block_size as usize;
        // A fragment extent is marked compressed even where its block is stored as is
        // (`-noF`-less `-noD` images compress fragments; others may not).
        let decode = move |b: &[u8]| decompress_block(c, b, bs).unwrap_or_else(|_| b.to_vec());
        // Only a file stored whole in a compressed fragment (smaller than a block, as
        // mksquashfs packs by default) may report no extents.
        let small = move |e: &Entry| e.size < bs as u64;
        let entries = check(r, &src, &bytes, &decode, &small);
        assert!(entries.iter().all(|e| e.meta.mtime_nsec == 0));
    }
}

#[test]
fn erofs_entries_extents_and_order() {
    let Some(mkfs) = tool("mkfs.erofs") else {
        return;
    };
    let tmp = tempdir();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    source(&src);
    let big = src.join("bigdir");
    std::fs::create_dir(&big).unwrap();
    for i in 0..300 {
        std::fs::write(big.join(format!("entry-{i:04}-with-a-long-name")), "x").unwrap();
    }
    imgpipe_testsupport::set_mtimes(&src, T);
    for (name, extra) in [
        ("plain", None),
        ("chunks", Some("--chunksize=8192")),
        ("flat", Some("-Enoinline_data")),
    ] {
        let img = tmp.path().join(format!("{name}.erofs"));
        let stamp = format!("-T{T}");
        let mut args: Vec<&OsStr> = vec!["--quiet".as_ref(), stamp.as_ref()];
        args.extend(extra.map(OsStr::new));
        args.extend([img.as_os_str(), src.as_os_str()]);
        run(&mkfs, args);
        let bytes = std::fs::read(&img).unwrap();
        let r = ErofsReader::open_at(Bytes(bytes.clone()), 0, Limits::default()).unwrap();
        assert!(r.holds().mtime_nsec);
        check(r, &src, &bytes, &|_| unreachable!("uncompressed"), &|_| {
            false
        });
    }
}

/// Extended EROFS inodes keep the nanoseconds; the entries report them.
#[test]
fn erofs_mtime_nanoseconds() {
    let Some(mkfs) = tool("mkfs.erofs") else {
        return;
    };
    let tmp = tempdir();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("d/f"), "nsec").unwrap();
    for p in ["d/f", "d"] {
        run(
            "touch",
            ["-h", "-d", "@1700000000.123456789"]
                .map(OsStr::new)
                .into_iter()
                .chain([src.join(p).as_os_str()]),
        );
    }
    let img = tmp.path().join("n.erofs");
    run(
        &mkfs,
        [OsStr::new("--quiet"), img.as_os_str(), src.as_os_str()],
    );
    let r = ErofsReader::open_at(std::fs::File::open(&img).unwrap(), 0, Limits::default()).unwrap();
    let got: BTreeMap<Vec<u8>, (i64, u32)> = FsRead::walk(&r)
        .unwrap()
        .into_iter()
        .map(|(e, _)| (e.path, (e.meta.mtime, e.meta.mtime_nsec)))
        .collect();
    for p in ["d/f", "d"] {
        let m = std::fs::symlink_metadata(src.join(p)).unwrap();
        assert_eq!(got[p.as_bytes()], (m.mtime(), m.mtime_nsec() as u32), "{p}");
    }
    assert_eq!(got[&b"d"[..]], (1_700_000_000, 123_456_789));
}
