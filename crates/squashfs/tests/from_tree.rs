//! `Builder::add_fstree`: every kind of content is carried, and what squashfs cannot hold is
//! refused with an error naming the entry (or clamped when asked).

use imgpipe_fstree::{Content, Entry, FileType, Metadata, Tree};
use imgpipe_squashfs::{Builder, Error, Reader, WriteOptions};
use imgpipe_testsupport::{
    EVERY_KIND_CONTENTS, every_kind_tree, file_entry as file, one_entry_tree as one,
};

fn build(tree: &Tree, opts: WriteOptions) -> Result<Vec<u8>, Error> {
    let mut b = Builder::new(opts)?;
    b.add_fstree(tree)?;
    let mut out = std::io::Cursor::new(Vec::new());
    b.build(&mut out)?;
    Ok(out.into_inner())
}

fn refused(tree: &Tree, opts: WriteOptions, path: &str, words: &str) {
    match build(tree, opts) {
        Err(e @ Error::BadEntry { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(path) && msg.contains(words), "{msg}");
        }
        other => panic!(
            "{path}: expected a refusal, got {:?}",
            other.map(|v| v.len())
        ),
    }
}

#[test]
fn carries_every_kind_of_content_and_entry() {
    let m = |mode| {
        let mut m = Metadata::new(mode, 1_600_000_000);
        m.uid = 1000;
        m.gid = 100;
        m
    };
    let (t, _host) = every_kind_tree(m);
    let img = build(&t, WriteOptions::new(1_700_000_000)).unwrap();
    let r = Reader::open(imgpipe_squashfs::Bytes(img)).unwrap();
    let body = |p: &str| {
        let (_, i) = r.lookup(p.as_bytes()).unwrap();
        r.read_file_to_vec(&i).unwrap()
    };
    for (p, want) in EVERY_KIND_CONTENTS {
        assert_eq!(body(p), want, "{p}");
    }
    let (_, root) = r.lookup(b"").unwrap();
    assert_eq!((root.mode, root.mtime), (0o750, 1_600_000_000));
    assert_eq!(r.owner(&root).unwrap(), (1000, 100));
    let (a1, _) = r.lookup(b"a1").unwrap();
    let (a2, i2) = r.lookup(b"a2").unwrap();
    assert_eq!(a1, a2, "one inode for both names");
    assert_eq!(i2.nlink, 2);
}

#[test]
fn refuses_mode_bits_beyond_0o7777() {
    let (mut e, c) = file("x", Metadata::new(0o644, 0), b"");
    e.meta.mode = 0o100_644;
    refused(&one(e, c), WriteOptions::new(0), "x", "mode");
}

#[test]
fn refuses_times_outside_32_bits_unless_clamping() {
    for (t, stored) in [(-1_i64, 0_u32), (1 << 32, u32::MAX)] {
        let (e, c) = file("old-or-new", Metadata::new(0o644, t), b"x");
        let tree = one(e, c);
        refused(&tree, WriteOptions::new(0), "old-or-new", "mtime");
        let mut o = WriteOptions::new(0);
        o.clamp_times = true;
        let img = build(&tree, o).unwrap();
        let r = Reader::open(imgpipe_squashfs::Bytes(img)).unwrap();
        assert_eq!(r.lookup(b"old-or-new").unwrap().1.mtime, stored);
    }
    // A time that clamp_mtime lowers anyway is fine.
    let (e, c) = file("future", Metadata::new(0o644, 1 << 40), b"x");
    let mut o = WriteOptions::new(0);
    o.clamp_mtime = Some(1_700_000_000);
    let img = build(&one(e, c), o).unwrap();
    let r = Reader::open(imgpipe_squashfs::Bytes(img)).unwrap();
    assert_eq!(r.lookup(b"future").unwrap().1.mtime, 1_700_000_000);
}

#[test]
fn refuses_xattrs_it_cannot_store() {
    let mut m = Metadata::new(0o644, 0);
    m.xattrs = vec![(b"system.posix_acl_access".to_vec(), b"\x02".to_vec())];
    let (e, c) = file("acl", m, b"");
    refused(&one(e, c), WriteOptions::new(0), "acl", "xattr");
    // Unless xattrs are off altogether.
    let mut m = Metadata::new(0o644, 0);
    m.xattrs = vec![(b"system.posix_acl_access".to_vec(), b"\x02".to_vec())];
    let (e, c) = file("acl", m, b"");
    let mut o = WriteOptions::new(0);
    o.xattrs = false;
    assert!(build(&one(e, c), o).is_ok());
}

#[test]
fn refuses_device_numbers_beyond_12_and_20_bits_and_incomplete_entries() {
    let mut d = Entry::new("big-major", FileType::Block, Metadata::new(0o600, 0));
    d.rdev = Some((4096, 0));
    refused(
        &one(d, Content::None),
        WriteOptions::new(0),
        "big-major",
        "major",
    );
    let d = Entry::new("no-numbers", FileType::Char, Metadata::new(0o600, 0));
    refused(
        &one(d, Content::None),
        WriteOptions::new(0),
        "no-numbers",
        "device",
    );
    let l = Entry::new("no-target", FileType::Symlink, Metadata::new(0o777, 0));
    refused(
        &one(l, Content::None),
        WriteOptions::new(0),
        "no-target",
        "target",
    );
}

#[test]
fn refuses_more_than_65536_distinct_owners() {
    let mut t = Tree::new(Metadata::new(0o755, 0));
    for i in 0..65_537u32 {
        let mut m = Metadata::new(0o644, 0);
        m.uid = i + 1;
        let e = Entry::new(format!("f{i}"), FileType::Fifo, m);
        t.insert(e, Content::None).unwrap();
    }
    assert!(matches!(
        build(&t, WriteOptions::new(0)),
        Err(Error::LimitExceeded { .. })
    ));
}
