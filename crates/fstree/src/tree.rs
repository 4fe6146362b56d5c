//! A tree of entries with their content: what every writer takes and every reader can give.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

use crate::entry::{Entry, FileType, Metadata};
use crate::error::{Error, Result};
use crate::read::FsRead;
use crate::source::ReadAt;

/// Streams a file's content into a writer; returns the bytes written.
pub type StreamFn = dyn Fn(&mut dyn Write) -> std::io::Result<u64> + Send + Sync;

/// Where a regular file's content comes from.
#[derive(Clone, Default)]
pub enum Content {
    /// No content: directories, links, special files, empty files.
    #[default]
    None,
    /// Bytes held in memory.
    Bytes(Arc<[u8]>),
    /// A host file, read when the image is written (its size was taken at scan time).
    Host(PathBuf),
    /// A byte range of another image, read through a positioned-read source (an ISO can
    /// carry a squashfs being written; an injected file is addressed by its bytes).
    Range {
        /// The source.
        source: Arc<dyn ReadAt>,
        /// Where the content starts in it.
        offset: u64,
        /// Its length.
        len: u64,
    },
    /// Content that a reader decodes on demand (a compressed file of another image).
    Stream(Arc<StreamFn>),
}

impl std::fmt::Debug for Content {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            Self::Host(p) => f.debug_tuple("Host").field(p).finish(),
            Self::Range { offset, len, .. } => {
                write!(f, "Range {{ offset: {offset}, len: {len} }}")
            }
            Self::Stream(_) => f.write_str("Stream"),
        }
    }
}

impl Content {
    /// Writes the content to `out`; returns the bytes written.
    pub fn write_to(&self, out: &mut dyn Write) -> std::io::Result<u64> {
        match self {
            Self::None => Ok(0),
            Self::Bytes(b) => {
                out.write_all(b)?;
                Ok(b.len() as u64)
            }
            Self::Host(p) => {
                let mut f = std::fs::File::open(p)?;
                std::io::copy(&mut f, out)
            }
            Self::Range {
                source,
                offset,
                len,
            } => {
                let mut buf = vec![0u8; (*len).min(1 << 20) as usize];
                let mut done = 0u64;
                while done < *len {
                    let n = (*len - done).min(buf.len() as u64) as usize;
                    let chunk = buf.get_mut(..n).unwrap_or_default();
                    let at = offset
                        .checked_add(done)
                        .ok_or(std::io::ErrorKind::UnexpectedEof)?;
                    source.read_exact_at(chunk, at)?;
                    out.write_all(chunk)?;
                    done += n as u64;
                }
                Ok(done)
            }
            Self::Stream(f) => f(out),
        }
    }

    /// The content as a reader (host files are opened; other kinds are read into memory
    /// only when they are streamed).
    pub fn open(&self) -> std::io::Result<Box<dyn Read + Send>> {
        match self {
            Self::None => Ok(Box::new(std::io::empty())),
            Self::Bytes(b) => Ok(Box::new(std::io::Cursor::new(b.clone()))),
            Self::Host(p) => Ok(Box::new(std::fs::File::open(p)?)),
            Self::Range {
                source,
                offset,
                len,
            } => Ok(Box::new(
                crate::source::Cursor::new(crate::source::Slice::new(
                    source.clone(),
                    *offset,
                    *len,
                ))
                .take(*len),
            )),
            Self::Stream(f) => Ok(Box::new(StreamReader::spawn(f.clone())?)),
        }
    }
}

/// A [`Content::Stream`] read through a pipe from a thread that runs the stream, so a large
/// decoded file is never held in memory; the thread's error is returned at the end.
struct StreamReader {
    pipe: std::io::PipeReader,
    worker: Option<std::thread::JoinHandle<std::io::Result<u64>>>,
}

impl StreamReader {
    fn spawn(f: Arc<StreamFn>) -> std::io::Result<Self> {
        let (pipe, mut w) = std::io::pipe()?;
        let worker = std::thread::Builder::new()
            .name("content-stream".into())
            .spawn(move || f(&mut w))?;
        Ok(Self {
            pipe,
            worker: Some(worker),
        })
    }
}

impl Read for StreamReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.pipe.read(buf)?;
        if n == 0 && !buf.is_empty() {
            // End of the pipe: the stream finished or failed; say which.
            if let Some(worker) = self.worker.take() {
                worker
                    .join()
                    .map_err(|_| std::io::Error::other("content stream panicked"))??;
            }
        }
        Ok(n)
    }
}

/// One entry of a [`Tree`] and its content.
#[derive(Debug, Clone)]
pub struct Node {
    /// The entry.
    pub entry: Entry,
    /// Its content (regular files only).
    pub content: Content,
}

/// A filesystem tree: entries keyed by their path components, so iteration is depth-first,
/// each directory before its contents, siblings in byte order of their names, whatever the
/// order of insertion.
#[derive(Debug, Clone)]
pub struct Tree {
    root: Node,
    /// Every other node, keyed by its path components joined with NUL ([`key`]).
    nodes: BTreeMap<Vec<u8>, Node>,
}

/// A node's map key: its path's components joined with NUL. Names hold no NUL, which sorts
/// below every other byte, so the keys sort as their component lists do (a directory
/// right before its contents, siblings by name bytes), with one allocation a node where a
/// list of components took one per component.
fn key(path: &[u8]) -> Result<Vec<u8>> {
    let path = path.strip_prefix(b"/").unwrap_or(path);
    let mut out = Vec::with_capacity(path.len());
    if path.is_empty() {
        return Ok(out);
    }
    for c in path.split(|&b| b == b'/') {
        if c.is_empty() || c == b"." || c == b".." || c.contains(&0) {
            return Err(Error::InvalidPath {
                path: path.to_vec(),
            });
        }
        if !out.is_empty() {
            out.push(0);
        }
        out.extend_from_slice(c);
    }
    Ok(out)
}

/// The key of a key's parent (empty for the root's children).
fn parent_key(key: &[u8]) -> &[u8] {
    key.iter()
        .rposition(|&b| b == 0)
        .and_then(|i| key.get(..i))
        .unwrap_or_default()
}

/// Whether `k` is `dir`'s key or below it.
fn at_or_below(k: &[u8], dir: &[u8]) -> bool {
    k.strip_prefix(dir)
        .is_some_and(|rest| rest.is_empty() || rest.first() == Some(&0))
}

impl Tree {
    /// A tree holding only its root directory, with metadata `root`.
    pub fn new(root: Metadata) -> Self {
        Self {
            root: Node {
                entry: Entry::new(Vec::new(), FileType::Dir, root),
                content: Content::None,
            },
            nodes: BTreeMap::new(),
        }
    }

    /// The root directory.
    pub fn root(&self) -> &Entry {
        &self.root.entry
    }

    /// Replaces the root directory's metadata.
    pub fn set_root_meta(&mut self, meta: Metadata) {
        self.root.entry.meta = meta;
    }

    /// Adds an entry; its parent must be a directory of the tree and its path new. The
    /// entry's path is normalised (no leading `/`).
    pub fn insert(&mut self, mut entry: Entry, content: Content) -> Result<()> {
        let key = key(&entry.path)?;
        if key.is_empty() {
            return Err(Error::Duplicate { path: Vec::new() });
        }
        let parent = parent_key(&key);
        let parent_is_dir = parent.is_empty()
            || self
                .nodes
                .get(parent)
                .is_some_and(|p| p.entry.file_type == FileType::Dir);
        if !parent_is_dir {
            return Err(Error::NoParent { path: entry.path });
        }
        if self.nodes.contains_key(&key) {
            return Err(Error::Duplicate { path: entry.path });
        }
        entry.path = key.iter().map(|&b| if b == 0 { b'/' } else { b }).collect();
        self.nodes.insert(key, Node { entry, content });
        Ok(())
    }

    /// Adds an entry, creating missing parent directories with `dir_meta`.
    pub fn insert_with_parents(
        &mut self,
        entry: Entry,
        content: Content,
        dir_meta: &Metadata,
    ) -> Result<()> {
        let key = key(&entry.path)?;
        let ends = key
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == 0)
            .map(|(i, _)| i);
        for i in ends {
            let parent = key.get(..i).unwrap_or_default();
            if !self.nodes.contains_key(parent) {
                let path: Vec<u8> = parent
                    .iter()
                    .map(|&b| if b == 0 { b'/' } else { b })
                    .collect();
                self.insert(
                    Entry::new(path, FileType::Dir, dir_meta.clone()),
                    Content::None,
                )?;
            }
        }
        self.insert(entry, content)
    }

    /// The node at `path` (with or without a leading `/`).
    pub fn get(&self, path: &[u8]) -> Option<&Node> {
        let key = key(path).ok()?;
        if key.is_empty() {
            return Some(&self.root);
        }
        self.nodes.get(&key)
    }

    /// The node at `path`, mutably (its path must not be changed).
    pub fn get_mut(&mut self, path: &[u8]) -> Option<&mut Node> {
        let key = key(path).ok()?;
        if key.is_empty() {
            return Some(&mut self.root);
        }
        self.nodes.get_mut(&key)
    }

    /// Removes the entry at `path` and everything below it; returns how many were removed.
    pub fn remove(&mut self, path: &[u8]) -> usize {
        let Ok(key) = key(path) else { return 0 };
        if key.is_empty() {
            return 0;
        }
        let below: Vec<_> = self
            .nodes
            .range(key.clone()..)
            .take_while(|(k, _)| at_or_below(k, &key))
            .map(|(k, _)| k.clone())
            .collect();
        for k in &below {
            self.nodes.remove(k);
        }
        below.len()
    }

    /// Every node: root first, each directory before its contents, siblings by name bytes.
    pub fn iter(&self) -> impl Iterator<Item = &Node> {
        std::iter::once(&self.root).chain(self.nodes.values())
    }

    /// Every node, mutably, in [`Tree::iter`]'s order (paths must not be changed).
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Node> {
        std::iter::once(&mut self.root).chain(self.nodes.values_mut())
    }

    /// The direct children of the directory at `path`, by name bytes.
    ///
    /// Each step is one map lookup that jumps over the previous child's subtree, so listing
    /// every directory of a tree costs its size, not its size times its depth.
    pub fn children<'a>(&'a self, path: &[u8]) -> impl Iterator<Item = &'a Node> + 'a {
        let key = key(path).ok();
        // The smallest possible child key: the directory's key and a separator (none for
        // the root's children).
        let mut from = key.clone().map(|mut k| {
            if !k.is_empty() {
                k.push(0);
            }
            k
        });
        std::iter::from_fn(move || {
            let key = key.as_ref()?;
            let (k, n) = self.nodes.range(from.take()?..).next()?;
            // Parents always exist, so the first key below `key` is a direct child.
            let name = if key.is_empty() {
                Some(k.as_slice())
            } else {
                k.strip_prefix(key.as_slice())
                    .and_then(|rest| rest.strip_prefix(&[0u8][..]))
            };
            if name.is_none_or(|name| name.is_empty() || name.contains(&0)) {
                return None;
            }
            // Every descendant of `name` is `name`, NUL, more, which sorts before
            // `name` + 0x01; every later sibling sorts at or after it.
            let mut next = k.clone();
            next.push(1);
            from = Some(next);
            Some(n)
        })
    }

    /// Number of entries, the root included.
    pub fn len(&self) -> usize {
        self.nodes.len() + 1
    }

    /// Whether the tree holds only its root.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The tree of an image opened by any [`FsRead`] reader: every entry with its metadata;
    /// file content is decoded from the image when a writer streams it.
    pub fn from_reader<R>(reader: Arc<R>) -> Result<Self>
    where
        R: FsRead + Send + Sync + 'static,
        R::Node: 'static,
    {
        let walked = reader.walk().map_err(Error::reader)?;
        let mut it = walked.into_iter();
        let root_meta = match it.next() {
            Some((e, _)) if e.file_type == FileType::Dir && e.path.is_empty() => e.meta,
            _ => Metadata::new(0o755, 0),
        };
        let mut tree = Self::new(root_meta);
        for (entry, node) in it {
            let content = if entry.file_type == FileType::File && entry.size > 0 {
                let r = reader.clone();
                Content::Stream(Arc::new(move |out: &mut dyn Write| {
                    r.read_content(&node, out).map_err(std::io::Error::other)
                }))
            } else {
                Content::None
            };
            tree.insert(entry, content)?;
        }
        Ok(tree)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, body: &[u8]) -> (Entry, Content) {
        let mut e = Entry::new(path, FileType::File, Metadata::new(0o644, 0));
        e.size = body.len() as u64;
        (e, Content::Bytes(body.into()))
    }

    proptest::proptest! {
        /// Iteration, children, get and remove agree with the component lists the keys
        /// stand for, names with low bytes (0x01, '-', '.') included.
        #[test]
        fn keys_order_and_find_as_component_lists(
            paths in proptest::collection::vec(
                proptest::collection::vec(
                    proptest::sample::select(vec!["a", "a\u{1}", "a-b", "a.b", "ab", "b", "\u{1}"]),
                    1..4,
                ),
                1..12,
            ),
            drop in 0usize..12,
        ) {
            let dm = Metadata::new(0o755, 0);
            let mut t = Tree::new(dm.clone());
            for p in &paths {
                let path = p.join("/");
                if t.get(path.as_bytes()).is_none() {
                    let e = Entry::new(path.as_str(), FileType::Dir, dm.clone());
                    t.insert_with_parents(e, Content::None, &dm).unwrap();
                }
            }
            let comps = |path: &[u8]| -> Vec<Vec<u8>> {
                if path.is_empty() {
                    Vec::new()
                } else {
                    path.split(|&b| b == b'/').map(<[u8]>::to_vec).collect()
                }
            };
            let order: Vec<Vec<Vec<u8>>> = t.iter().map(|n| comps(&n.entry.path)).collect();
            let mut sorted = order.clone();
            sorted.sort();
            sorted.dedup();
            proptest::prop_assert_eq!(&order, &sorted);
            for dir in &order {
                let path = dir.join(&b'/');
                let got: Vec<Vec<Vec<u8>>> =
                    t.children(&path).map(|n| comps(&n.entry.path)).collect();
                let want: Vec<Vec<Vec<u8>>> = order
                    .iter()
                    .filter(|k| k.len() == dir.len() + 1 && k.starts_with(dir))
                    .cloned()
                    .collect();
                proptest::prop_assert_eq!(got, want);
                proptest::prop_assert!(t.get(&path).is_some());
            }
            if let Some(gone) = order.get(1 + drop % order.len().max(1)) {
                let n = t.remove(&gone.join(&b'/'));
                let below = order.iter().filter(|k| k.starts_with(gone)).count();
                proptest::prop_assert_eq!(n, below);
                proptest::prop_assert_eq!(t.len(), order.len() - below);
            }
        }
    }

    #[test]
    fn iterates_in_tree_order_whatever_the_insertion_order() {
        let dm = Metadata::new(0o755, 0);
        let mut a = Tree::new(dm.clone());
        let mut b = Tree::new(dm.clone());
        let items = ["a/b", "a.b", "a/c", "z", "a/b/x"];
        for p in items {
            let (e, c) = file(&format!("{p}/f"), b"x");
            a.insert_with_parents(e, c, &dm).unwrap();
        }
        for p in items.iter().rev() {
            let (e, c) = file(&format!("{p}/f"), b"x");
            b.insert_with_parents(e, c, &dm).unwrap();
        }
        let pa: Vec<_> = a.iter().map(|n| n.entry.display_path()).collect();
        let pb: Vec<_> = b.iter().map(|n| n.entry.display_path()).collect();
        assert_eq!(pa, pb);
        assert_eq!(
            pa,
            [
                "/", "/a", "/a/b", "/a/b/f", "/a/b/x", "/a/b/x/f", "/a/c", "/a/c/f", "/a.b",
                "/a.b/f", "/z", "/z/f"
            ]
        );
        let kids: Vec<_> = a.children(b"a").map(|n| n.entry.display_path()).collect();
        assert_eq!(kids, ["/a/b", "/a/c"]);
        let top: Vec<_> = a.children(b"").map(|n| n.entry.display_path()).collect();
        assert_eq!(top, ["/a", "/a.b", "/z"]);
        assert_eq!(a.children(b"a/b/f").count(), 0);
        assert_eq!(a.children(b"missing").count(), 0);
        assert_eq!(a.remove(b"/a/b"), 4);
        assert_eq!(a.len(), 8);
    }

    #[test]
    fn refuses_bad_paths_duplicates_and_orphans() {
        let mut t = Tree::new(Metadata::new(0o755, 0));
        let (e, c) = file("x", b"1");
        t.insert(e.clone(), c.clone()).unwrap();
        assert!(matches!(
            t.insert(e, c.clone()),
            Err(Error::Duplicate { .. })
        ));
        let (e, _) = file("x/y", b"1");
        assert!(matches!(
            t.insert(e, c.clone()),
            Err(Error::NoParent { .. })
        ));
        for bad in ["a//b", "a/../b", "./a", "a\0b"] {
            let (e, _) = file(bad, b"");
            assert!(
                matches!(t.insert(e, c.clone()), Err(Error::InvalidPath { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn content_streams_from_every_kind_of_source() {
        let backing: Arc<dyn ReadAt> = Arc::new(crate::source::Bytes(b"0123456789".to_vec()));
        let range = Content::Range {
            source: backing,
            offset: 3,
            len: 4,
        };
        let mut out = Vec::new();
        assert_eq!(range.write_to(&mut out).unwrap(), 4);
        assert_eq!(out, b"3456");
        let mut via_read = Vec::new();
        range.open().unwrap().read_to_end(&mut via_read).unwrap();
        assert_eq!(via_read, b"3456");
        let stream = Content::Stream(Arc::new(|w: &mut dyn Write| {
            w.write_all(b"abc")?;
            Ok(3)
        }));
        let mut s = Vec::new();
        stream.open().unwrap().read_to_end(&mut s).unwrap();
        assert_eq!(s, b"abc");
        // A stream larger than a pipe's buffer, and one that fails halfway.
        let big = Content::Stream(Arc::new(|w: &mut dyn Write| {
            for _ in 0..64 {
                w.write_all(&[7u8; 16 * 1024])?;
            }
            Ok(1 << 20)
        }));
        let mut s = Vec::new();
        big.open().unwrap().read_to_end(&mut s).unwrap();
        assert_eq!(s.len(), 1 << 20);
        let failing = Content::Stream(Arc::new(|w: &mut dyn Write| {
            w.write_all(b"partial")?;
            Err(std::io::Error::other("decode failed"))
        }));
        let mut s = Vec::new();
        let err = failing.open().unwrap().read_to_end(&mut s).unwrap_err();
        assert!(err.to_string().contains("decode failed"), "{err}");
    }
}
