//! Small `imgpipe_fstree::Tree`s for the writers' `add_fstree` tests.

use std::io::Write;
use std::sync::Arc;

use imgpipe_fstree::{Content, Entry, FileType, Metadata, ReadAt, Tree};

/// A regular file at `path` holding `body` in memory.
pub fn file_entry(path: impl Into<Vec<u8>>, meta: Metadata, body: &[u8]) -> (Entry, Content) {
    let mut e = Entry::new(path, FileType::File, meta);
    e.size = body.len() as u64;
    (e, Content::Bytes(Arc::from(body)))
}

/// A tree (root `0o755`, time 1,700,000,000) holding only `entry`.
pub fn one_entry_tree(entry: Entry, content: Content) -> Tree {
    let mut t = Tree::new(Metadata::new(0o755, 1_700_000_000));
    t.insert(entry, content).unwrap();
    t
}

/// The file contents [`every_kind_tree`] holds, by path.
pub const EVERY_KIND_CONTENTS: [(&str, &[u8]); 5] = [
    ("d/bytes", b"in memory"),
    ("d/host", b"from the host"),
    ("d/range", b"a range"),
    ("d/stream", b"stream"),
    ("a2", b"shared"),
];

/// A tree with every kind of content (bytes, a host file, a range of another source, a
/// stream) and entry (directory, symlink `d/link -> bytes`, character device `null` 1:3, two
/// names `a1`/`a2` of one file), each with the metadata `meta(mode)` gives. The host file lives
/// in the returned directory, which must outlive the tree's use.
pub fn every_kind_tree(meta: impl Fn(u32) -> Metadata) -> (Tree, tempfile::TempDir) {
    let mut t = Tree::new(meta(0o750));
    t.insert(Entry::new("d", FileType::Dir, meta(0o755)), Content::None)
        .unwrap();
    let (e, c) = file_entry("d/bytes", meta(0o644), b"in memory");
    t.insert(e, c).unwrap();
    let host = crate::tempdir();
    std::fs::write(host.path().join("h"), b"from the host").unwrap();
    let mut e = Entry::new("d/host", FileType::File, meta(0o600));
    e.size = 13;
    t.insert(e, Content::Host(host.path().join("h"))).unwrap();
    let backing: Arc<dyn ReadAt> = Arc::new(imgpipe_fstree::Bytes(b"..a range..".to_vec()));
    let mut e = Entry::new("d/range", FileType::File, meta(0o644));
    e.size = 7;
    let range = Content::Range {
        source: backing,
        offset: 2,
        len: 7,
    };
    t.insert(e, range).unwrap();
    let mut e = Entry::new("d/stream", FileType::File, meta(0o644));
    e.size = 6;
    let stream = Content::Stream(Arc::new(|w: &mut dyn Write| {
        w.write_all(b"stream")?;
        Ok(6)
    }));
    t.insert(e, stream).unwrap();
    let mut l = Entry::new("d/link", FileType::Symlink, meta(0o777));
    l.target = Some(b"bytes".to_vec());
    t.insert(l, Content::None).unwrap();
    let mut dev = Entry::new("null", FileType::Char, meta(0o666));
    dev.rdev = Some((1, 3));
    t.insert(dev, Content::None).unwrap();
    for p in ["a1", "a2"] {
        let (mut e, c) = file_entry(p, meta(0o644), b"shared");
        e.link = Some(1);
        t.insert(e, c).unwrap();
    }
    (t, host)
}
