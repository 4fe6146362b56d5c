//! The EROFS writer against the reference: a tricky host tree scanned with
//! `imgpipe_fstree::scan` and written by [`ErofsBuilder`] is accepted by `fsck.erofs`, reads
//! back entry for entry through our own reader, mounts in the kernel with the same tree,
//! extracts with `fsck.erofs --extract` to the same tree, is described by `dump.erofs` as we
//! planned it, and is byte-identical when built again from a copy of the tree.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::Path;
use std::sync::Arc;

use imgpipe_fstree::{Content, Entry, FileType, FsRead, Metadata, ScanOptions, Tree, scan};
use imgpipe_squashfs::erofs::{ErofsBuildReport, ErofsBuilder, ErofsReader, ErofsWriteOptions};
use imgpipe_squashfs::{Bytes, Error, Limits};
use imgpipe_testsupport::{
    Compare, TreeOptions, diff_trees, is_root, run, run_status, set_mtimes, tempdir, tool,
    tricky_tree,
};
use sha2::{Digest, Sha256};

const T: i64 = 1_700_000_000;
const UUID: [u8; 16] = *b"imgpipe-erofs-ut";

/// The tricky tree, plus what exercises the writer's choices: a directory over several
/// blocks, xattrs (enough on one file that its tail no longer fits inline), an owner and a
/// time that need extended inodes, a long symlink, a socket, files of exact block sizes.
fn source(root: &Path) {
    tricky_tree(root, TreeOptions::default());
    let big = root.join("bigdir");
    std::fs::create_dir(&big).unwrap();
    for i in 0..700 {
        std::fs::write(
            big.join(format!("entry-{i:04}-with-a-longish-name")),
            i.to_string(),
        )
        .unwrap();
    }
    let w = |p: &str, data: &[u8]| std::fs::write(root.join(p), data).unwrap();
    w("sizes-4096", &imgpipe_testsupport::pattern(4096));
    w("sizes-8191", &imgpipe_testsupport::pattern(8191));
    w("sizes-4000", &imgpipe_testsupport::pattern(4000));
    w("xattr-heavy", &imgpipe_testsupport::pattern(6000));
    w("owned", b"owned by someone else\n");
    w("older", b"an older file\n");
    std::os::unix::fs::symlink("t/".repeat(600), root.join("link-long")).unwrap();
    drop(std::os::unix::net::UnixListener::bind(root.join("socket")).unwrap());
    let set = |p: &str, name: &str, value: &[u8]| {
        rustix::fs::lsetxattr(root.join(p), name, value, rustix::fs::XattrFlags::empty()).unwrap()
    };
    set("README", "user.comment", b"hello");
    set("bin/tool", "user.a", b"1");
    set(
        "bin/tool",
        "user.b",
        b"a longer value for the second attribute",
    );
    set("etc", "user.dir", b"x");
    if is_root() {
        set("link-relative", "trusted.link", b"on a symlink");
    }
    set("xattr-heavy", "user.big", &[b'v'; 3000]);
    // On more than two inodes: stored once in the shared xattr area.
    for p in [
        "README",
        "empty",
        "bin/tool",
        "data/small.txt",
        "deep",
        "data/big.bin",
    ] {
        set(p, "user.label", b"system_u:object_r:shared_t:s0");
    }
    if is_root() {
        rustix::fs::chown(
            root.join("owned"),
            Some(rustix::fs::Uid::from_raw(70_000)),
            Some(rustix::fs::Gid::from_raw(1234)),
        )
        .unwrap();
    }
    set_mtimes(root, T);
    run(
        "touch",
        [
            "-h",
            "-d",
            "@1500000000",
            root.join("older").to_str().unwrap(),
        ],
    );
}

fn build(tree: &Tree) -> (Vec<u8>, ErofsBuildReport) {
    let mut b = ErofsBuilder::new(ErofsWriteOptions::new(T as u64, UUID)).unwrap();
    b.add_fstree(tree).unwrap();
    let mut out = std::io::Cursor::new(Vec::new());
    let report = b.build(&mut out).unwrap();
    let bytes = out.into_inner();
    assert_eq!(bytes.len() as u64, report.image_size);
    (bytes, report)
}

/// Per path: the entry without its hard-link identity, and the content's sha256.
type Facts = BTreeMap<Vec<u8>, (Entry, Option<String>)>;

fn hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn tree_facts(tree: &Tree) -> Facts {
    tree.iter()
        .map(|n| {
            let mut e = n.entry.clone();
            e.link = None;
            if e.file_type == FileType::Dir {
                e.size = 0;
            }
            let sha = (e.file_type == FileType::File).then(|| {
                let mut v = Vec::new();
                n.content.write_to(&mut v).unwrap();
                hex(&v)
            });
            (e.path.clone(), (e, sha))
        })
        .collect()
}

fn image_facts(r: &ErofsReader) -> Facts {
    FsRead::walk(r)
        .unwrap()
        .into_iter()
        .map(|(mut e, i)| {
            e.link = None;
            let sha = (e.file_type == FileType::File).then(|| {
                let mut v = Vec::new();
                r.read_file(&i, &mut v).unwrap();
                hex(&v)
            });
            (e.path.clone(), (e, sha))
        })
        .collect()
}

/// A kernel loop mount, unmounted on drop; `None` (the check is skipped) when not root or
/// when mounting fails here.
struct Mounted(tempfile::TempDir);

impl Mounted {
    fn new(image: &Path) -> Option<Self> {
        if !is_root() {
            eprintln!("skipping kernel mount: not root");
            return None;
        }
        let dir = tempdir();
        let out = run_status(
            "mount",
            [
                OsStr::new("-o"),
                OsStr::new("loop,ro"),
                OsStr::new("-t"),
                OsStr::new("erofs"),
                image.as_os_str(),
                dir.path().as_os_str(),
            ],
        );
        if !out.status.success() {
            eprintln!(
                "skipping kernel mount: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return None;
        }
        Some(Self(dir))
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Err(e) = imgpipe_testsupport::try_unmount(self.0.path()) {
            eprintln!("warning: {e}");
        }
    }
}

/// `Key: value` from a `dump.erofs` report.
fn field<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim_start_matches(':').trim())
        .unwrap_or_else(|| panic!("no {key} in {text}"))
}

#[test]
fn tricky_tree_round_trips_through_every_reader() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    source(&src);
    let tree = scan(&src, &ScanOptions::default()).unwrap();
    let (bytes, report) = build(&tree);
    let img = tmp.path().join("img.erofs");
    std::fs::write(&img, &bytes).unwrap();
    assert_eq!(report.root_nid, 36);
    assert!(report.extended_inodes >= 1, "{report:?}");
    assert!(report.inline_tails > 10, "{report:?}");
    assert_eq!(report.shared_xattrs, 1, "{report:?}");

    // (2) Our reader: every entry equals the source, xattrs and special files included.
    let r = ErofsReader::open_at(Bytes(bytes.clone()), 0, Limits::default()).unwrap();
    let (want, got) = (tree_facts(&tree), image_facts(&r));
    assert_eq!(got.len(), want.len());
    for (path, w) in &want {
        assert_eq!(got.get(path), Some(w), "{}", String::from_utf8_lossy(path));
    }
    let walked = FsRead::walk(&r).unwrap();
    let find = |p: &[u8]| walked.iter().find(|(e, _)| e.path == p).unwrap();
    let (a, b) = (find(b"data/small.txt"), find(b"data/small-hardlink.txt"));
    assert_eq!(a.1.nid, b.1.nid, "hard links share one inode");
    assert_eq!(a.1.nlink, 2);
    assert!(find(b"older").1.extended && !find(b"README").1.extended);
    assert_eq!(
        find(b"xattr-heavy").1.layout,
        0,
        "tail does not fit: flat plain"
    );
    assert_eq!(find(b"sizes-4000").1.layout, 2, "tail inline");
    assert_eq!(
        find(b"sizes-8191").1.layout,
        0,
        "a 4095-byte tail never fits inline"
    );
    assert!(
        find(b"bigdir").1.size > 3 * 4096,
        "several directory blocks"
    );
    if is_root() {
        let owned = &find(b"owned").1;
        assert!(owned.extended && owned.uid == 70_000 && owned.gid == 1234);
    }

    // (1) fsck.erofs accepts it.
    if let Some(fsck) = tool("fsck.erofs") {
        run(&fsck, [&img]);

        // (4) fsck.erofs --extract gives back the tree; dump.erofs describes what we planned.
        let out = tmp.path().join("fsck-extract");
        let arg = format!("--extract={}", out.display());
        run(&fsck, [OsStr::new(&arg), img.as_os_str()]);
        let what = Compare {
            owner: is_root(),
            ..Compare::default()
        };
        let mut d = diff_trees(&src, &out, what);
        // fsck.erofs 1.5 chowns after chmod, which clears setuid: its own images lose the
        // bit the same way (the kernel mount below sees it).
        d.retain(|l| !l.ends_with(": mode 4755 vs 755"));
        assert!(d.is_empty(), "fsck.erofs --extract: {d:#?}");
    }
    if let Some(dump) = tool("dump.erofs") {
        let sb = imgpipe_testsupport::stdout_of(&dump, [OsStr::new("-s"), img.as_os_str()]);
        assert_eq!(
            field(&sb, "Filesystem inode count"),
            report.inodes.to_string()
        );
        assert_eq!(field(&sb, "Filesystem blocks"), report.blocks.to_string());
        assert_eq!(field(&sb, "Filesystem root nid"), "36");
        assert!(
            field(&sb, "Filesystem features").contains("sb_csum"),
            "{sb}"
        );
        assert_eq!(
            field(&sb, "Filesystem UUID"),
            "696d6770-6970-652d-6572-6f66732d7574"
        );
        let big = imgpipe_testsupport::stdout_of(
            &dump,
            [OsStr::new("--path=/data/big.bin"), img.as_os_str()],
        );
        assert!(big.contains("Size: 300000"), "{big}");
        let ls = imgpipe_testsupport::stdout_of(
            &dump,
            [
                OsStr::new("--ls"),
                OsStr::new("--path=/bigdir"),
                img.as_os_str(),
            ],
        );
        let names = ls.lines().filter(|l| l.contains("entry-")).count();
        assert_eq!(names, 700, "{ls}");
    }

    // (3) The kernel mounts it and sees the source tree.
    if let Some(m) = Mounted::new(&img) {
        let d = diff_trees(&src, m.0.path(), Compare::default());
        assert!(d.is_empty(), "kernel mount: {d:#?}");
        let x = rustix::fs::lgetxattr(m.0.path().join("bin/tool"), "user.b", &mut [0u8; 64][..])
            .unwrap();
        assert_eq!(x, 39, "xattr through the kernel");
        let mut buf = [0u8; 64];
        let n = rustix::fs::lgetxattr(m.0.path().join("deep"), "user.label", &mut buf[..]).unwrap();
        assert_eq!(&buf[..n], b"system_u:object_r:shared_t:s0", "shared xattr");
    }

    // Our layout is about as compact as mkfs.erofs's for the same tree.
    if let Some(mkfs) = tool("mkfs.erofs") {
        let theirs = tmp.path().join("mkfs.erofs");
        let stamp = format!("-T{T}");
        run(
            &mkfs,
            [
                OsStr::new("--quiet"),
                OsStr::new(&stamp),
                theirs.as_os_str(),
                src.as_os_str(),
            ],
        );
        let their_len = std::fs::metadata(&theirs).unwrap().len();
        eprintln!("image size: ours {} mkfs.erofs {their_len}", bytes.len());
        assert!(
            bytes.len() as u64 * 100 <= their_len * 101,
            "ours {} vs mkfs.erofs {their_len}",
            bytes.len()
        );
    }

    // (5) The same tree copied elsewhere gives the same bytes, twice.
    let copy = tmp.path().join("copy");
    run("cp", [OsStr::new("-a"), src.as_os_str(), copy.as_os_str()]);
    let tree2 = scan(&copy, &ScanOptions::default()).unwrap();
    let (again, _) = build(&tree2);
    assert!(again == bytes, "a copy of the tree builds different bytes");
    assert!(build(&tree2).0 == bytes);
    // Every byte is written, padding included: a dirty target ends up the same.
    let mut b = ErofsBuilder::new(ErofsWriteOptions::new(T as u64, UUID)).unwrap();
    b.add_fstree(&tree2).unwrap();
    let mut dirty = std::io::Cursor::new(vec![0xffu8; bytes.len()]);
    b.build(&mut dirty).unwrap();
    assert!(dirty.into_inner() == bytes, "padding is not zeroed");
}

fn meta(mtime: i64) -> Metadata {
    Metadata::new(0o644, mtime)
}

fn one_entry_tree(e: Entry, content: Content) -> Tree {
    let mut t = Tree::new(Metadata::new(0o755, T));
    t.insert_with_parents(e, content, &Metadata::new(0o755, T))
        .unwrap();
    t
}

fn build_err(tree: &Tree) -> String {
    let mut b = ErofsBuilder::new(ErofsWriteOptions::new(T as u64, UUID)).unwrap();
    b.add_fstree(tree).unwrap();
    let err = b.build(&mut std::io::Cursor::new(Vec::new())).unwrap_err();
    assert!(
        matches!(err, Error::BadEntry { .. }),
        "not a BadEntry: {err:?}"
    );
    err.to_string()
}

#[test]
fn what_erofs_cannot_hold_is_refused_by_name() {
    let mut x = Entry::new("a/odd-xattr", FileType::File, meta(T));
    x.meta.xattrs = vec![(b"system.unknown".to_vec(), b"v".to_vec())];
    let e = build_err(&one_entry_tree(x, Content::None));
    assert!(e.contains("a/odd-xattr") && e.contains("prefix"), "{e}");

    let mut dev = Entry::new("dev/huge", FileType::Char, meta(T));
    dev.rdev = Some((5000, 1));
    let e = build_err(&one_entry_tree(dev, Content::None));
    assert!(
        e.contains("dev/huge") && e.contains("device numbers"),
        "{e}"
    );

    let mut short = Entry::new("short", FileType::File, meta(T));
    short.size = 10;
    let e = build_err(&one_entry_tree(
        short,
        Content::Bytes(Arc::from(&b"12345"[..])),
    ));
    assert!(e.contains("short") && e.contains("shorter"), "{e}");

    let mut long = Entry::new("long", FileType::File, meta(T));
    long.size = 2;
    let e = build_err(&one_entry_tree(
        long,
        Content::Bytes(Arc::from(&b"12345"[..])),
    ));
    assert!(e.contains("long") && e.contains("longer"), "{e}");

    let name = "n".repeat(256);
    let e = build_err(&one_entry_tree(
        Entry::new(name.clone(), FileType::Fifo, meta(T)),
        Content::None,
    ));
    assert!(e.contains(&name) && e.contains("255"), "{e}");

    let mut big = Entry::new("big-value", FileType::File, meta(T));
    big.meta.xattrs = vec![(b"user.v".to_vec(), vec![0; 70_000])];
    let e = build_err(&one_entry_tree(big, Content::None));
    assert!(e.contains("big-value") && e.contains("65535"), "{e}");
}

/// Times before 1970 and owners beyond 16 bits take extended inodes and read back exactly;
/// an image written at an offset inside a larger file reads there; a builder without a tree
/// writes an empty root.
#[test]
fn extended_fields_offsets_and_an_empty_tree() {
    let mut e = Entry::new("old", FileType::File, meta(-86_400 * 365));
    e.meta.uid = 100_000;
    e.meta.gid = 200_000;
    e.meta.mtime_nsec = 123_456_789;
    e.size = 3;
    let tree = one_entry_tree(e, Content::Bytes(Arc::from(&b"abc"[..])));
    let mut b = ErofsBuilder::new(ErofsWriteOptions::new(T as u64, UUID)).unwrap();
    b.add_fstree(&tree).unwrap();
    let mut out = std::io::Cursor::new(vec![0xa5u8; 5000]);
    out.set_position(5000);
    b.build(&mut out).unwrap();
    let r = ErofsReader::open_at(Bytes(out.into_inner()), 5000, Limits::default()).unwrap();
    let walked = FsRead::walk(&r).unwrap();
    let (entry, inode) = &walked[1];
    assert_eq!(entry.meta.mtime, -86_400 * 365);
    assert_eq!(entry.meta.mtime_nsec, 123_456_789);
    assert_eq!((entry.meta.uid, entry.meta.gid), (100_000, 200_000));
    assert!(inode.extended);

    let mut empty = std::io::Cursor::new(Vec::new());
    let report = ErofsBuilder::new(ErofsWriteOptions::new(0, [0; 16]))
        .unwrap()
        .build(&mut empty)
        .unwrap();
    assert_eq!((report.inodes, report.blocks), (1, 1));
    let r = ErofsReader::open_at(Bytes(empty.into_inner()), 0, Limits::default()).unwrap();
    assert_eq!(FsRead::walk(&r).unwrap().len(), 1);

    let mut opts = ErofsWriteOptions::new(0, [0; 16]);
    opts.block_size = 1000;
    assert!(ErofsBuilder::new(opts).is_err());
}

/// Sizes around the block and inline boundaries (for compact and extended inodes, with and
/// without xattrs) and directories that fill a block exactly or by one entry more: fsck.erofs
/// accepts the image, our reader and the kernel read every byte back.
#[test]
fn sizes_and_directories_at_block_boundaries() {
    let mut tree = Tree::new(Metadata::new(0o755, T));
    let dm = Metadata::new(0o755, T);
    let mut expect: Vec<(String, Vec<u8>)> = Vec::new();
    let sizes = [
        0, 1, 31, 32, 4000, 4032, 4063, 4064, 4065, 4095, 4096, 4097, 8160, 8191, 8192, 12_289,
    ];
    for (k, size) in sizes.into_iter().enumerate() {
        for (variant, extended, xattr) in [("c", false, 0), ("e", true, 0), ("x", false, 90)] {
            let path = format!("files/{variant}-{size:05}");
            let mut m = meta(if extended { T - 1 } else { T });
            if xattr > 0 {
                m.xattrs = vec![(b"user.pad".to_vec(), vec![b'p'; xattr])];
            }
            let mut e = Entry::new(path.clone(), FileType::File, m);
            e.size = size as u64;
            let mut data = imgpipe_testsupport::pattern(size + k);
            data.truncate(size);
            tree.insert_with_parents(e, Content::Bytes(Arc::from(data.clone())), &dm)
                .unwrap();
            expect.push((path, data));
        }
    }
    // 27 bytes of `.` and `..`, 126 entries of 32 bytes and one of 37: exactly one block.
    for (dir, extra) in [("exact", 0), ("exact-plus-one", 1)] {
        let mut names: Vec<String> = (0..126).map(|i| format!("n{i:019}")).collect();
        names.push(format!("z{:024}", 0));
        for i in 0..extra {
            names.push(format!("y{i}"));
        }
        for n in names {
            let path = format!("{dir}/{n}");
            tree.insert_with_parents(
                Entry::new(path.clone(), FileType::File, meta(T)),
                Content::None,
                &dm,
            )
            .unwrap();
            expect.push((path, Vec::new()));
        }
    }
    let (bytes, _) = build(&tree);
    let tmp = tempdir();
    let img = tmp.path().join("b.erofs");
    std::fs::write(&img, &bytes).unwrap();
    if let Some(fsck) = tool("fsck.erofs") {
        run(&fsck, [&img]);
    }
    let r = ErofsReader::open_at(Bytes(bytes), 0, Limits::default()).unwrap();
    assert_eq!(image_facts(&r), tree_facts(&tree));
    let walked = FsRead::walk(&r).unwrap();
    let dir = |p: &[u8]| walked.iter().find(|(e, _)| e.path == p).unwrap().1.size;
    assert_eq!(dir(b"exact"), 4096);
    assert!(dir(b"exact-plus-one") > 4096);
    if let Some(m) = Mounted::new(&img) {
        for (path, data) in &expect {
            assert_eq!(
                &std::fs::read(m.0.path().join(path)).unwrap(),
                data,
                "{path}"
            );
        }
        let listed = std::fs::read_dir(m.0.path().join("exact-plus-one"))
            .unwrap()
            .count();
        assert_eq!(listed, 128);
    }
}

/// Larger blocks (what kernels with 16 or 64 KiB pages mount; this machine's kernel and
/// fsck.erofs 1.5 refuse any block size but the 4 KiB page size): the same tree reads back
/// with 16 KiB and 64 KiB blocks, and fsck.erofs 1.8.6 built for 64 KiB blocks
/// (scripts/test.sh) checks the images.
#[test]
fn larger_block_sizes_read_back() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    source(&src);
    let tree = scan(&src, &ScanOptions::default()).unwrap();
    for bs in [16_384u32, 65_536] {
        let mut opts = ErofsWriteOptions::new(T as u64, UUID);
        opts.block_size = bs;
        let mut b = ErofsBuilder::new(opts).unwrap();
        b.add_fstree(&tree).unwrap();
        let mut out = std::io::Cursor::new(Vec::new());
        let report = b.build(&mut out).unwrap();
        let bytes = out.into_inner();
        assert_eq!(bytes.len() as u64, report.image_size);
        assert_eq!(bytes.len() as u64 % u64::from(bs), 0);
        let r = ErofsReader::open_at(Bytes(bytes.clone()), 0, Limits::default()).unwrap();
        assert_eq!(r.superblock().blkszbits, bs.trailing_zeros() as u8);
        assert_eq!(image_facts(&r), tree_facts(&tree), "block size {bs}");
        if let Some(fsck) = imgpipe_testsupport::erofs_utils("fsck.erofs") {
            let img = tmp.path().join(format!("b{bs}.erofs"));
            std::fs::write(&img, &bytes).unwrap();
            let out = run_status(&fsck, [OsStr::new("--extract"), img.as_os_str()]);
            assert!(out.status.success(), "block size {bs}: {out:?}");
        }
    }
}

/// `clamp_mtime` lowers later times to the build time (compact inodes again), `all_root`
/// makes every owner root, and progress ends at the total content size.
#[test]
fn clamp_all_root_and_progress() {
    let mut e = Entry::new("future", FileType::File, meta(T + 1000));
    e.meta.uid = 1000;
    e.meta.mtime_nsec = 5;
    e.size = 5;
    let mut tree = one_entry_tree(e, Content::Bytes(Arc::from(&b"12345"[..])));
    let mut past = Entry::new("past", FileType::File, meta(T - 1000));
    past.size = 3;
    tree.insert(past, Content::Bytes(Arc::from(&b"abc"[..])))
        .unwrap();
    let mut opts = ErofsWriteOptions::new(T as u64, UUID);
    opts.clamp_mtime = true;
    opts.all_root = true;
    let mut b = ErofsBuilder::new(opts).unwrap();
    b.add_fstree(&tree).unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let s2 = seen.clone();
    b.on_progress(move |p| s2.lock().unwrap().push((p.done, p.total)));
    let mut out = std::io::Cursor::new(Vec::new());
    b.build(&mut out).unwrap();
    assert_eq!(seen.lock().unwrap().last(), Some(&(8, 8)));
    let r = ErofsReader::open_at(Bytes(out.into_inner()), 0, Limits::default()).unwrap();
    let walked = FsRead::walk(&r).unwrap();
    let get = |p: &[u8]| walked.iter().find(|(e, _)| e.path == p).unwrap();
    let (future, inode) = get(b"future");
    assert_eq!((future.meta.mtime, future.meta.mtime_nsec), (T, 0));
    assert_eq!(future.meta.uid, 0);
    assert!(!inode.extended);
    let (past, inode) = get(b"past");
    assert_eq!(past.meta.mtime, T - 1000);
    assert!(inode.extended);
}

/// What the proptests draw for one entry: kind, size, owner, time offset, xattr count, depth.
type Item = (u8, usize, u32, i64, usize, u8);

/// A tree of every kind of entry from `items`; with `text`, every other file is text (which
/// compresses) rather than noise.
fn random_tree(items: Vec<Item>, text: bool) -> Tree {
    let dm = Metadata::new(0o755, T);
    let mut tree = Tree::new(dm.clone());
    let mut first_file: Option<(Metadata, u64, Arc<[u8]>)> = None;
    for (k, (kind, size, uid, dt, nx, depth)) in items.into_iter().enumerate() {
        let dirs: String = (0..depth)
            .map(|d| format!("d{}/", (k + d as usize) % 3))
            .collect();
        let path = format!("{dirs}e{k}");
        let mut m = meta(T + dt);
        m.uid = uid;
        m.gid = uid / 2;
        m.xattrs = (0..nx)
            .map(|x| {
                (
                    format!("user.x{x}").into_bytes(),
                    vec![b'v'; x * 40 + k % 7],
                )
            })
            .collect();
        let ft = [
            FileType::File,
            FileType::Dir,
            FileType::Symlink,
            FileType::Char,
            FileType::Block,
            FileType::Fifo,
            FileType::Socket,
        ][kind as usize];
        let mut e = Entry::new(path.clone(), ft, m);
        let mut content = Content::None;
        match ft {
            FileType::File => {
                let data: Arc<[u8]> = if text && k % 2 == 0 {
                    let line = format!("line {k} of a text that compresses well\n");
                    Arc::from(line.bytes().cycle().take(size).collect::<Vec<u8>>())
                } else {
                    Arc::from(imgpipe_testsupport::pattern(size))
                };
                e.size = size as u64;
                content = Content::Bytes(data.clone());
                if size % 3 == 0 {
                    // Hard links: these entries share an inode (and so all they hold).
                    if let Some((fmeta, fsize, fdata)) = &first_file {
                        e.meta = fmeta.clone();
                        e.size = *fsize;
                        content = Content::Bytes(fdata.clone());
                    } else {
                        first_file = Some((e.meta.clone(), e.size, data));
                    }
                    e.link = Some(1);
                }
            }
            FileType::Symlink => {
                let t = vec![b't'; 1 + size % 4095];
                e.size = t.len() as u64;
                e.target = Some(t);
            }
            FileType::Char | FileType::Block => e.rdev = Some(((size % 4096) as u32, uid)),
            _ => {}
        }
        tree.insert_with_parents(e, content, &dm).unwrap();
    }
    tree
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    /// Whatever the tree (types, sizes, owners, times, xattrs, hard links), our reader reads
    /// back exactly what was written, fsck.erofs accepts it, and building twice gives the
    /// same bytes.
    #[test]
    fn any_tree_round_trips(
        items in proptest::collection::vec(
            (0u8..7, 0usize..9000, 0u32..70_000, -5i64..5, 0usize..4, 0u8..3),
            1..40,
        )
    ) {
        let tree = random_tree(items, false);
        let (bytes, _) = build(&tree);
        let r = ErofsReader::open_at(Bytes(bytes.clone()), 0, Limits::default()).unwrap();
        let want = tree_facts(&tree);
        proptest::prop_assert_eq!(image_facts(&r), want);
        proptest::prop_assert!(build(&tree).0 == bytes);
        if let Some(fsck) = tool("fsck.erofs") {
            let tmp = tempdir();
            let img = tmp.path().join("p.erofs");
            std::fs::write(&img, &bytes).unwrap();
            let out = run_status(&fsck, [&img]);
            proptest::prop_assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        }
    }

    /// The same through the compressed writer, for each algorithm with big pclusters,
    /// fragments, ztailpacking and dedupe: our reader reads the tree back, fsck.erofs
    /// accepts it, and one thread writes the bytes two do.
    #[test]
    fn any_tree_round_trips_compressed(
        items in proptest::collection::vec(
            (0u8..7, 0usize..70_000, 0u32..70_000, -5i64..5, 0usize..4, 0u8..3),
            1..24,
        ),
        mode in 0usize..7,
    ) {
        use imgpipe_squashfs::erofs::{ErofsAlgorithm, ErofsCompression};
        let tree = random_tree(items, true);
        let mut o = ErofsWriteOptions::new(T as u64, UUID);
        // The last two use blocks above 4 KiB (mkfs.erofs -b): fsck.erofs reads those, the
        // kernel only blocks up to its page size.
        let (alg, block, pcluster, fragments, tail, dedupe) = [
            (ErofsAlgorithm::Lz4, 4096, 4096, false, false, false),
            (ErofsAlgorithm::Lz4hc, 4096, 65_536, true, true, false),
            (ErofsAlgorithm::Zstd, 4096, 16_384, false, true, true),
            (ErofsAlgorithm::Lzma, 4096, 1 << 20, true, true, false),
            (ErofsAlgorithm::Deflate, 4096, 65_536, false, false, true),
            (ErofsAlgorithm::Zstd, 16_384, 65_536, true, true, true),
            (ErofsAlgorithm::Lz4hc, 65_536, 65_536, false, true, false),
        ][mode];
        o.block_size = block;
        o.compression = Some(ErofsCompression::new(alg));
        o.pcluster_size = pcluster;
        o.fragments = fragments;
        o.ztailpacking = tail;
        o.dedupe = dedupe;
        o.threads = Some(2);
        let with = |o: ErofsWriteOptions| {
            let mut b = ErofsBuilder::new(o).unwrap();
            b.add_fstree(&tree).unwrap();
            let mut out = std::io::Cursor::new(Vec::new());
            b.build(&mut out).unwrap();
            out.into_inner()
        };
        let bytes = with(o.clone());
        let r = ErofsReader::open_at(Bytes(bytes.clone()), 0, Limits::default()).unwrap();
        proptest::prop_assert_eq!(image_facts(&r), tree_facts(&tree));
        o.threads = Some(1);
        proptest::prop_assert!(with(o) == bytes);
        if let Some(fsck) = imgpipe_testsupport::erofs_utils("fsck.erofs") {
            let tmp = tempdir();
            let img = tmp.path().join("p.erofs");
            std::fs::write(&img, &bytes).unwrap();
            let out = run_status(&fsck, [&img]);
            proptest::prop_assert!(out.status.success(), "{:?}: {}", alg, String::from_utf8_lossy(&out.stderr));
        }
    }
}
