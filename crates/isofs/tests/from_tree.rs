//! `Builder::add_fstree`: every kind of content is carried, and what ISO9660 cannot hold is
//! refused with an error naming the entry (or clamped when asked).

use std::io::Cursor;

use imgpipe_fstree::{Content, Entry, FileType, Metadata, Tree};
use imgpipe_isofs::{Builder, EntryKind, Error, Options, Reader};
use imgpipe_testsupport::{
    EVERY_KIND_CONTENTS, every_kind_tree, file_entry as file, one_entry_tree as one,
};

fn build(tree: &Tree, opts: Options) -> Result<Vec<u8>, Error> {
    let mut b = Builder::new(opts);
    b.add_fstree(tree)?;
    let mut out = Vec::new();
    b.build(&mut out)?;
    Ok(out)
}

fn refused(tree: &Tree, opts: Options, path: &str, words: &str) {
    match build(tree, opts) {
        Err(e @ Error::InvalidInput { .. }) => {
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
    let img = build(&t, Options::new("TREE", 1_700_000_000)).unwrap();
    let mut r = Reader::open(Cursor::new(img)).unwrap();
    for (p, want) in EVERY_KIND_CONTENTS {
        let e = r.lookup(p).unwrap();
        assert_eq!(r.read_to_vec(&e, 1 << 20).unwrap(), want, "{p}");
    }
    let h = r.lookup("d/host").unwrap();
    assert_eq!((h.mode & 0o7777, h.uid, h.gid), (0o600, 1000, 100));
    assert_eq!(h.mtime, Some(1_600_000_000));
    assert_eq!(r.lookup("d/link").unwrap().kind, EntryKind::Symlink);
    let (a1, a2) = (r.lookup("a1").unwrap(), r.lookup("a2").unwrap());
    assert_eq!(a2.nlink, 2);
    assert_eq!(a1.ino, a2.ino);
}

#[test]
fn refuses_names_that_are_not_utf8_or_too_long() {
    let (e, c) = file(&b"caf\xe9"[..], Metadata::new(0o644, 0), b"");
    refused(&one(e, c), Options::new("T", 0), "caf", "UTF-8");
    let long = "n".repeat(256);
    let (e, c) = file(long.clone(), Metadata::new(0o644, 0), b"");
    refused(&one(e, c), Options::new("T", 0), &long, "255");
}

#[test]
fn refuses_mode_bits_beyond_0o7777() {
    let (mut e, c) = file("x", Metadata::new(0o644, 0), b"");
    e.meta.mode = 0o100_644;
    refused(&one(e, c), Options::new("T", 0), "x", "mode");
}

#[test]
fn refuses_dates_outside_1900_to_2155_unless_clamping() {
    let before_1900 = -2_300_000_000;
    let after_2155 = 6_000_000_000;
    // The nearest dates a recording date holds: 1900-01-01 and 2155-12-31T23:59:59.
    for (t, stored) in [(before_1900, -2_208_988_800), (after_2155, 5_869_583_999)] {
        let (e, c) = file("when", Metadata::new(0o644, t), b"x");
        let tree = one(e, c);
        refused(&tree, Options::new("T", 0), "when", "1900");
        let mut o = Options::new("T", 0);
        o.clamp_times = true;
        let img = build(&tree, o).unwrap();
        let mut r = Reader::open(Cursor::new(img)).unwrap();
        assert_eq!(r.lookup("when").unwrap().mtime, Some(stored));
    }
    // A time that clamp_mtime lowers to the epoch anyway is fine.
    let (e, c) = file("future", Metadata::new(0o644, after_2155), b"x");
    let mut o = Options::new("T", 1_700_000_000);
    o.clamp_mtime = true;
    let img = build(&one(e, c), o).unwrap();
    let mut r = Reader::open(Cursor::new(img)).unwrap();
    assert_eq!(r.lookup("future").unwrap().mtime, Some(1_700_000_000));
}

#[test]
fn refuses_incomplete_entries() {
    let d = Entry::new("no-numbers", FileType::Block, Metadata::new(0o600, 0));
    refused(
        &one(d, Content::None),
        Options::new("T", 0),
        "no-numbers",
        "device",
    );
    let l = Entry::new("no-target", FileType::Symlink, Metadata::new(0o777, 0));
    refused(
        &one(l, Content::None),
        Options::new("T", 0),
        "no-target",
        "target",
    );
}

#[test]
fn add_tree_skips_an_excluded_output_inside_the_tree() {
    let t = imgpipe_testsupport::tempdir();
    std::fs::write(t.path().join("keep"), b"k").unwrap();
    std::fs::write(t.path().join("out.iso"), b"an older image").unwrap();
    let mut b = Builder::new(Options::new("T", 0));
    b.exclude_host_path(&t.path().join("out.iso")).unwrap();
    b.add_tree(t.path()).unwrap();
    let mut img = Vec::new();
    b.build(&mut img).unwrap();
    let mut r = Reader::open(Cursor::new(img)).unwrap();
    assert!(r.lookup("keep").is_ok());
    assert!(r.lookup("out.iso").is_err());
}

#[test]
fn refuses_special_files_without_rock_ridge() {
    let mut plain = Options::new("T", 0);
    plain.rock_ridge = false;
    let mut l = Entry::new("etc-link", FileType::Symlink, Metadata::new(0o777, 0));
    l.target = Some(b"etc".to_vec());
    refused(
        &one(l, Content::None),
        plain.clone(),
        "etc-link",
        "Rock Ridge",
    );
    let f = Entry::new("pipe", FileType::Fifo, Metadata::new(0o644, 0));
    refused(&one(f, Content::None), plain.clone(), "pipe", "Rock Ridge");
    // Files and directories are fine.
    let (e, c) = file("plain.txt", Metadata::new(0o644, 0), b"x");
    assert!(build(&one(e, c), plain).is_ok());
}
