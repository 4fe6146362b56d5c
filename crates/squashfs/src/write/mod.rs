//! Writing images: collect entries in a [`Builder`], then [`Builder::build`] plans the order,
//! compresses data blocks in parallel and emits the image.

mod build;
mod data;
mod meta;
mod tree;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use imgpipe_fstree::{Content, FileType, ScanOptions, Tree};

use serde::Serialize;

use crate::compress::Compression;
use crate::error::{Error, Result};
use crate::raw::{InodeKind, XattrKey, encode_dev, valid_name};
use tree::{Node, NodeKind};

/// How to write an image. Built with [`WriteOptions::new`], which takes the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteOptions {
    /// Compressor and level.
    pub compression: Compression,
    /// Data block size: a power of two from 4 KiB to 1 MiB (default 128 KiB).
    pub block_size: u32,
    /// Pack files smaller than a block into shared fragment blocks (default on).
    pub fragments: bool,
    /// Pack the tail ends of larger files into fragments too (default on).
    pub tail_ends: bool,
    /// Store identical files once; candidates are compared byte by byte (default on).
    pub dedup: bool,
    /// Store xattrs (default on).
    pub xattrs: bool,
    /// Make every owner root (uid and gid 0).
    pub all_root: bool,
    /// The superblock's modification time.
    pub mod_time: u32,
    /// When set, file times later than this are lowered to it.
    pub clamp_mtime: Option<u32>,
    /// Store a time squashfs cannot hold (before 1970, after 2106-02-07) as the nearest one
    /// it can, instead of refusing the entry (default off).
    pub clamp_times: bool,
    /// Write the export table (NFS export; default on).
    pub exportable: bool,
    /// Compress inode, directory, id, fragment and xattr tables (default on).
    pub compress_metadata: bool,
    /// Compress data and fragment blocks (default on).
    pub compress_data: bool,
    /// Store all-zero blocks as sparse (nothing on disk; default on).
    pub sparse: bool,
}

impl WriteOptions {
    /// Defaults matching mksquashfs (gzip level 9, 128 KiB blocks, fragments, dedup, xattrs,
    /// export table), with tail ends packed, and `epoch` as the superblock time.
    pub fn new(epoch: u32) -> Self {
        Self {
            compression: Compression::new(crate::raw::Compressor::Gzip),
            block_size: 128 * 1024,
            fragments: true,
            tail_ends: true,
            dedup: true,
            xattrs: true,
            all_root: false,
            mod_time: epoch,
            clamp_mtime: None,
            clamp_times: false,
            exportable: true,
            compress_metadata: true,
            compress_data: true,
            sparse: true,
        }
    }

    fn validate(&self) -> Result<()> {
        self.compression.validate()?;
        if !self.block_size.is_power_of_two() || !(4096..=1 << 20).contains(&self.block_size) {
            return Err(Error::InvalidOption {
                option: "block_size",
                reason: "must be a power of two from 4096 to 1048576",
            });
        }
        Ok(())
    }
}

/// Metadata of one entry added by hand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryMeta {
    /// Permission bits (`0o7777`).
    pub mode: u16,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time.
    pub mtime: u32,
    /// Xattrs as (full name, value); names must start with `user.`, `trusted.` or `security.`.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl EntryMeta {
    /// Mode `mode`, owned by root, at time `mtime`, no xattrs.
    pub fn new(mode: u16, mtime: u32) -> Self {
        Self {
            mode,
            uid: 0,
            gid: 0,
            mtime,
            xattrs: Vec::new(),
        }
    }
}

/// What [`Builder::build`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BuildReport {
    /// Inodes (hard links share one).
    pub inodes: u32,
    /// Regular files (inodes).
    pub files: u64,
    /// Files stored as duplicates of an earlier one.
    pub duplicates: u64,
    /// Fragment blocks.
    pub fragments: u32,
    /// Uncompressed content bytes.
    pub content_bytes: u64,
    /// Image size before padding (`bytes_used`).
    pub bytes_used: u64,
    /// Image size with padding to 4 KiB.
    pub image_size: u64,
}

/// How far [`Builder::build`] has got, reported after each batch of data blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// File content bytes handled so far (compressed and written, or found duplicate).
    pub done: u64,
    /// File content bytes in all.
    pub total: u64,
}

/// A callback that receives [`Progress`].
pub type ProgressFn = Box<dyn FnMut(Progress) + Send>;

struct ProgressSlot(Option<ProgressFn>);

impl std::fmt::Debug for ProgressSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Some(..)" } else { "None" })
    }
}

/// Collects entries, then writes a squashfs image. See the crate docs for an example.
#[derive(Debug)]
pub struct Builder {
    opts: WriteOptions,
    nodes: Vec<Node>,
    progress: ProgressSlot,
    /// How [`add_tree`](Self::add_tree) scans (the host paths it skips).
    scan: ScanOptions,
}

fn bad(path: &[u8], reason: &'static str) -> Error {
    Error::BadEntry {
        path: crate::read::lossy_path(path),
        reason,
    }
}

impl Builder {
    /// A builder whose root directory has mode 0755, owner root and time `opts.mod_time`.
    pub fn new(opts: WriteOptions) -> Result<Self> {
        opts.validate()?;
        let root = Node {
            mode: 0o755,
            uid: 0,
            gid: 0,
            mtime: opts.mod_time,
            xattrs: Vec::new(),
            kind: NodeKind::Dir(BTreeMap::new()),
            path: Vec::new(),
        };
        Ok(Self {
            opts,
            nodes: vec![root],
            progress: ProgressSlot(None),
            scan: ScanOptions::default(),
        })
    }

    /// Calls `f` as data is written (after each batch of about 32 MiB, and once at the end),
    /// on the thread that runs [`build`](Self::build).
    pub fn on_progress(&mut self, f: impl FnMut(Progress) + Send + 'static) {
        self.progress = ProgressSlot(Some(Box::new(f)));
    }

    /// Makes [`add_tree`](Self::add_tree) skip the host path `path` (which need not exist
    /// yet): give it the image being written when that lies inside the tree, as mksquashfs
    /// skips its own output, so the image neither packs itself nor an older copy of itself.
    pub fn exclude_host_path(&mut self, path: &Path) -> Result<()> {
        self.scan.exclude(path).map_err(tree_error)
    }

    /// The options.
    pub fn options(&self) -> &WriteOptions {
        &self.opts
    }

    /// Sets the root directory's metadata.
    pub fn set_root(&mut self, meta: EntryMeta) -> Result<()> {
        let (mode, uid, gid, mtime, xattrs) = self.apply_meta(b"", meta)?;
        let root = &mut self.nodes[0];
        (root.mode, root.uid, root.gid, root.mtime, root.xattrs) = (mode, uid, gid, mtime, xattrs);
        Ok(())
    }

    #[allow(clippy::type_complexity)]
    fn apply_meta(
        &self,
        path: &[u8],
        meta: EntryMeta,
    ) -> Result<(u16, u32, u32, u32, Vec<(Vec<u8>, Vec<u8>)>)> {
        let (uid, gid) = if self.opts.all_root {
            (0, 0)
        } else {
            (meta.uid, meta.gid)
        };
        let mtime = match self.opts.clamp_mtime {
            Some(c) => meta.mtime.min(c),
            None => meta.mtime,
        };
        let mut xattrs = Vec::new();
        if self.opts.xattrs {
            for (name, value) in meta.xattrs {
                if XattrKey::from_full_name(&name).is_none() {
                    return Err(bad(path, "xattr name not user.*, trusted.* or security.*"));
                }
                if value.len() > 65_536 {
                    return Err(bad(path, "xattr value larger than 64 KiB"));
                }
                xattrs.push((name, value));
            }
            xattrs.sort();
            xattrs.dedup_by(|a, b| a.0 == b.0);
        }
        Ok((meta.mode & 0o7777, uid, gid, mtime, xattrs))
    }

    fn insert(&mut self, path: &[u8], meta: EntryMeta, kind: NodeKind) -> Result<usize> {
        let mut comps: Vec<&[u8]> = path
            .split(|&c| c == b'/')
            .filter(|c| !c.is_empty())
            .collect();
        let name = comps
            .pop()
            .ok_or_else(|| bad(path, "empty path (the root exists)"))?;
        if !valid_name(name) || comps.iter().any(|c| !valid_name(c)) {
            return Err(bad(
                path,
                "a component is `.`, `..`, longer than 256 or has NUL",
            ));
        }
        let mut dir = 0usize;
        for c in comps {
            let NodeKind::Dir(children) = &self.nodes[dir].kind else {
                return Err(bad(path, "a parent is not a directory"));
            };
            dir = *children
                .get(c)
                .ok_or_else(|| bad(path, "parent directory not added"))?;
        }
        if !matches!(self.nodes[dir].kind, NodeKind::Dir(_)) {
            return Err(bad(path, "a parent is not a directory"));
        }
        let (mode, uid, gid, mtime, xattrs) = self.apply_meta(path, meta)?;
        let idx = self.nodes.len();
        let clean: Vec<u8> = {
            let mut p = self.nodes[dir].path.clone();
            if !p.is_empty() {
                p.push(b'/');
            }
            p.extend_from_slice(name);
            p
        };
        let NodeKind::Dir(children) = &mut self.nodes[dir].kind else {
            return Err(bad(path, "a parent is not a directory"));
        };
        if children.contains_key(name) {
            return Err(bad(path, "already added"));
        }
        children.insert(name.to_vec(), idx);
        self.nodes.push(Node {
            mode,
            uid,
            gid,
            mtime,
            xattrs,
            kind,
            path: clean,
        });
        Ok(idx)
    }

    /// Adds a directory (its parent must exist).
    pub fn add_dir(&mut self, path: impl AsRef<[u8]>, meta: EntryMeta) -> Result<()> {
        self.insert(path.as_ref(), meta, NodeKind::Dir(BTreeMap::new()))
            .map(drop)
    }

    /// Adds a regular file with in-memory content.
    pub fn add_file(
        &mut self,
        path: impl AsRef<[u8]>,
        meta: EntryMeta,
        data: impl Into<Arc<[u8]>>,
    ) -> Result<()> {
        let data: Arc<[u8]> = data.into();
        let size = data.len() as u64;
        self.insert(
            path.as_ref(),
            meta,
            NodeKind::File {
                content: Content::Bytes(data),
                size,
            },
        )
        .map(drop)
    }

    /// Adds a regular file whose content is read from `host` during [`build`](Self::build)
    /// (it must then still be `size` bytes long).
    pub fn add_host_file(
        &mut self,
        path: impl AsRef<[u8]>,
        meta: EntryMeta,
        host: impl Into<PathBuf>,
        size: u64,
    ) -> Result<()> {
        self.insert(
            path.as_ref(),
            meta,
            NodeKind::File {
                content: Content::Host(host.into()),
                size,
            },
        )
        .map(drop)
    }

    /// Adds a symlink.
    pub fn add_symlink(
        &mut self,
        path: impl AsRef<[u8]>,
        meta: EntryMeta,
        target: impl AsRef<[u8]>,
    ) -> Result<()> {
        let t = target.as_ref();
        if t.is_empty() || t.len() > crate::raw::MAX_SYMLINK as usize || t.contains(&0) {
            return Err(bad(
                path.as_ref(),
                "symlink target empty, over 4096 bytes or has NUL",
            ));
        }
        self.insert(path.as_ref(), meta, NodeKind::Symlink(t.to_vec()))
            .map(drop)
    }

    /// Adds a block or character device.
    pub fn add_device(
        &mut self,
        path: impl AsRef<[u8]>,
        meta: EntryMeta,
        kind: InodeKind,
        major: u32,
        minor: u32,
    ) -> Result<()> {
        if !matches!(kind, InodeKind::BlockDev | InodeKind::CharDev)
            || major > 0xfff
            || minor > 0xf_ffff
        {
            return Err(bad(
                path.as_ref(),
                "not a device kind, or major/minor out of range",
            ));
        }
        let rdev = encode_dev(major, minor);
        self.insert(path.as_ref(), meta, NodeKind::Device { kind, rdev })
            .map(drop)
    }

    /// Adds a fifo or socket.
    pub fn add_special(
        &mut self,
        path: impl AsRef<[u8]>,
        meta: EntryMeta,
        kind: InodeKind,
    ) -> Result<()> {
        if !matches!(kind, InodeKind::Fifo | InodeKind::Socket) {
            return Err(bad(path.as_ref(), "not a fifo or socket"));
        }
        self.insert(path.as_ref(), meta, NodeKind::Ipc(kind))
            .map(drop)
    }

    /// Adds `path` as a further name (hard link) of the non-directory `target` added before.
    pub fn add_hard_link(
        &mut self,
        path: impl AsRef<[u8]>,
        target: impl AsRef<[u8]>,
    ) -> Result<()> {
        let t = self
            .find(target.as_ref())
            .ok_or_else(|| bad(target.as_ref(), "link target not added"))?;
        let t = match self.nodes[t].kind {
            NodeKind::Link(x) => x,
            NodeKind::Dir(_) => return Err(bad(path.as_ref(), "hard links to directories")),
            _ => t,
        };
        let meta = EntryMeta::new(0, 0);
        self.insert(path.as_ref(), meta, NodeKind::Link(t))
            .map(drop)
    }

    fn find(&self, path: &[u8]) -> Option<usize> {
        let mut n = 0usize;
        for c in path.split(|&c| c == b'/').filter(|c| !c.is_empty()) {
            let NodeKind::Dir(ch) = &self.nodes[n].kind else {
                return None;
            };
            n = *ch.get(c)?;
        }
        Some(n)
    }

    /// Adds everything below the host directory `dir` under the image root (and takes the
    /// root's metadata from `dir`), as [`imgpipe_fstree::scan`] finds it: names in byte
    /// order, so the result does not depend on `read_dir` order; hard links by device and
    /// inode number; xattrs that squashfs cannot store (`system.*`, ACLs) are left out, as
    /// mksquashfs leaves them out.
    ///
    /// # Errors
    /// As [`add_fstree`](Self::add_fstree), and [`Error::IoPath`] for a host path that
    /// cannot be read.
    pub fn add_tree(&mut self, dir: &Path) -> Result<()> {
        let mut scan = self.scan.clone();
        scan.xattrs = self.opts.xattrs;
        let tree = imgpipe_fstree::scan(dir, &scan).map_err(tree_error)?;
        self.add_entries(&tree, true)
    }

    /// Adds every entry of `tree` under the image root (and takes the root's metadata from
    /// the tree's root), with content from memory, the host, a range of another image or a
    /// reader's stream. Entries sharing an [`Entry::link`](imgpipe_fstree::Entry) value
    /// become hard links of the first of them.
    ///
    /// # Errors
    /// [`Error::BadEntry`] naming the entry when squashfs cannot hold a value: permission
    /// bits beyond `0o7777` (the mode is 16 bits with the type), a time before 1970 or after
    /// 2106 (32-bit seconds; [`WriteOptions::clamp_times`] stores the nearest instead), an
    /// xattr outside `user.`/`trusted.`/`security.`, device numbers beyond 12/20 bits, a
    /// symlink without a target, a device without numbers.
    pub fn add_fstree(&mut self, tree: &Tree) -> Result<()> {
        self.add_entries(tree, false)
    }

    /// `host`: the tree comes from the host scanner, whose unstorable xattrs are dropped.
    fn add_entries(&mut self, tree: &Tree, host: bool) -> Result<()> {
        let root = self.entry_meta(tree.root(), host)?;
        self.set_root(root)?;
        let mut links: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
        let mut stack: Vec<Vec<u8>> = vec![Vec::new()];
        // A directory's entries are all added before any of its subdirectories' (the order
        // the builder numbered nodes in before trees existed; the bytes depend on it).
        while let Some(dir) = stack.pop() {
            let mut subdirs = Vec::new();
            for node in tree.children(&dir) {
                let e = &node.entry;
                if let (Some(l), false) = (e.link, e.file_type == FileType::Dir) {
                    if let Some(first) = links.get(&l) {
                        let first = first.clone();
                        self.add_hard_link(&e.path, &first)?;
                        continue;
                    }
                    links.insert(l, e.path.clone());
                }
                let meta = self.entry_meta(e, host)?;
                match e.file_type {
                    FileType::Dir => {
                        self.add_dir(&e.path, meta)?;
                        subdirs.push(e.path.clone());
                    }
                    FileType::File => {
                        let kind = NodeKind::File {
                            content: node.content.clone(),
                            size: e.size,
                        };
                        self.insert(&e.path, meta, kind)?;
                    }
                    FileType::Symlink => {
                        let t = e
                            .target
                            .as_deref()
                            .ok_or_else(|| bad(&e.path, "symlink without a target"))?;
                        self.add_symlink(&e.path, meta, t)?;
                    }
                    FileType::Char | FileType::Block => {
                        let (major, minor) = e
                            .rdev
                            .ok_or_else(|| bad(&e.path, "device without device numbers"))?;
                        let kind = if e.file_type == FileType::Block {
                            InodeKind::BlockDev
                        } else {
                            InodeKind::CharDev
                        };
                        self.add_device(&e.path, meta, kind, major, minor)?;
                    }
                    FileType::Fifo => self.add_special(&e.path, meta, InodeKind::Fifo)?,
                    FileType::Socket => self.add_special(&e.path, meta, InodeKind::Socket)?,
                }
            }
            // Reverse so the smallest name is expanded first.
            stack.extend(subdirs.into_iter().rev());
        }
        Ok(())
    }

    /// An entry's metadata as squashfs holds it, or an error naming what it cannot hold.
    fn entry_meta(&self, e: &imgpipe_fstree::Entry, host: bool) -> Result<EntryMeta> {
        let m = &e.meta;
        let mode = u16::try_from(m.mode)
            .ok()
            .filter(|mode| mode & !0o7777 == 0)
            .ok_or_else(|| bad(&e.path, "mode has bits beyond 0o7777"))?;
        // A time the clamp lowers anyway is not out of range.
        let high = self
            .opts
            .clamp_mtime
            .map_or(i64::from(u32::MAX), |_| i64::MAX);
        let mtime = if (0..=high).contains(&m.mtime) || self.opts.clamp_times {
            m.mtime.clamp(0, i64::from(u32::MAX)) as u32
        } else {
            return Err(bad(
                &e.path,
                "mtime before 1970 or after 2106 (squashfs stores 32-bit seconds)",
            ));
        };
        let xattrs = if host {
            m.xattrs
                .iter()
                .filter(|(name, _)| XattrKey::from_full_name(name).is_some())
                .cloned()
                .collect()
        } else {
            m.xattrs.clone()
        };
        Ok(EntryMeta {
            mode,
            uid: m.uid,
            gid: m.gid,
            mtime,
            xattrs,
        })
    }
}

/// The host scanner's errors in this crate's terms.
fn tree_error(e: imgpipe_fstree::Error) -> Error {
    match e {
        imgpipe_fstree::Error::Io { what, path, source } => Error::IoPath { what, path, source },
        imgpipe_fstree::Error::LimitExceeded { what, limit } => {
            Error::LimitExceeded { what, limit }
        }
        imgpipe_fstree::Error::Duplicate { path } => bad(&path, "duplicate entry"),
        imgpipe_fstree::Error::NoParent { path } => bad(&path, "parent is not a directory"),
        imgpipe_fstree::Error::InvalidPath { path } => bad(&path, "invalid path component"),
        imgpipe_fstree::Error::Escape { path, reason } => bad(&path, reason),
        _ => Error::Io {
            what: "scanning the host tree",
            source: std::io::Error::other(e),
        },
    }
}
