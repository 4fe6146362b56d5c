//! Writing images: collect entries in a [`Builder`], then [`Builder::build`] plans the order,
//! compresses data blocks in parallel and emits the image.

mod build;
mod data;
mod meta;
mod tree;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::compress::Compression;
use crate::error::{Error, Result};
use crate::raw::{InodeKind, XattrKey, encode_dev, valid_name};
use tree::{Content, Node, NodeKind};

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
    /// Host paths [`add_tree`](Self::add_tree) skips (canonical parent + name).
    exclude: Vec<PathBuf>,
}

fn bad(path: &[u8], reason: &'static str) -> Error {
    Error::BadEntry {
        path: crate::read::lossy_path(path),
        reason,
    }
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::IoPath {
        what,
        path: path.to_path_buf(),
        source,
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
            exclude: Vec::new(),
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
        let abs = absolute(path)?;
        self.exclude.push(abs);
        Ok(())
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
    /// root's metadata from `dir`). Names are visited in byte order, so the result does not
    /// depend on `read_dir` order; hard links are detected by device and inode number.
    ///
    /// Directories are listed and their entries `lstat`ed in parallel on the current rayon
    /// pool, a breadth-first frontier at a time (so depth costs no stack); the entries are
    /// then added in one fixed depth-first order, whatever the timing.
    pub fn add_tree(&mut self, dir: &Path) -> Result<()> {
        let m = fs::symlink_metadata(dir).map_err(io("reading", dir))?;
        if !m.is_dir() {
            return Err(Error::IoPath {
                what: "adding a tree from",
                path: dir.to_path_buf(),
                source: std::io::ErrorKind::NotADirectory.into(),
            });
        }
        let xattrs = if self.opts.xattrs {
            host_xattrs(dir)?
        } else {
            Vec::new()
        };
        self.set_root(host_meta(&m, xattrs))?;
        // Excluded paths are compared against the walk's paths from the canonical root.
        let base = if self.exclude.is_empty() {
            dir.to_path_buf()
        } else {
            fs::canonicalize(dir).map_err(io("resolving", dir))?
        };
        let listings = scan(base, self.opts.xattrs, &self.exclude)?;
        let mut links: BTreeMap<(u64, u64), Vec<u8>> = BTreeMap::new();
        let mut listings: Vec<Option<Vec<Listed>>> = listings.into_iter().map(Some).collect();
        let mut stack: Vec<(usize, Vec<u8>)> = vec![(0, Vec::new())];
        while let Some((id, image)) = stack.pop() {
            let entries = listings
                .get_mut(id)
                .and_then(Option::take)
                .unwrap_or_default();
            let mut subdirs = Vec::new();
            for e in entries {
                let mut ip = image.clone();
                if !ip.is_empty() {
                    ip.push(b'/');
                }
                ip.extend_from_slice(&e.name);
                let m = &e.meta;
                let ft = m.file_type();
                if !ft.is_dir() && m.nlink() > 1 {
                    if let Some(first) = links.get(&(m.dev(), m.ino())) {
                        let first = first.clone();
                        self.add_hard_link(&ip, &first)?;
                        continue;
                    }
                    links.insert((m.dev(), m.ino()), ip.clone());
                }
                let meta = host_meta(m, e.xattrs);
                if ft.is_dir() {
                    self.add_dir(&ip, meta)?;
                    if let Some(d) = e.dir {
                        subdirs.push((d, ip));
                    }
                } else if ft.is_file() {
                    self.add_host_file(&ip, meta, e.host, m.len())?;
                } else if ft.is_symlink() {
                    self.add_symlink(&ip, meta, e.link.unwrap_or_default())?;
                } else if ft.is_block_device() || ft.is_char_device() {
                    let kind = if ft.is_block_device() {
                        InodeKind::BlockDev
                    } else {
                        InodeKind::CharDev
                    };
                    let r = m.rdev();
                    let major = ((r >> 8) & 0xfff) as u32 | ((r >> 32) & !0xfff) as u32;
                    let minor = (r & 0xff) as u32 | ((r >> 12) & !0xff) as u32;
                    self.add_device(&ip, meta, kind, major, minor)?;
                } else if ft.is_fifo() {
                    self.add_special(&ip, meta, InodeKind::Fifo)?;
                } else if ft.is_socket() {
                    self.add_special(&ip, meta, InodeKind::Socket)?;
                }
            }
            // Reverse so the smallest name is expanded first (any order gives the same tree).
            stack.extend(subdirs.into_iter().rev());
        }
        Ok(())
    }
}

/// One host directory entry, read by [`scan`].
struct Listed {
    name: Vec<u8>,
    host: PathBuf,
    meta: fs::Metadata,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    link: Option<Vec<u8>>,
    /// Listing id, for directories.
    dir: Option<usize>,
}

/// Lists `root` and everything below it: listing 0 is `root`'s, sorted by name; a directory
/// entry's `dir` is the id of its own listing.
fn scan(root: PathBuf, xattrs: bool, exclude: &[PathBuf]) -> Result<Vec<Vec<Listed>>> {
    use rayon::prelude::*;
    let mut listings: Vec<Vec<Listed>> = vec![Vec::new()];
    let mut frontier: Vec<(usize, PathBuf)> = vec![(0, root)];
    while !frontier.is_empty() {
        let listed: Vec<Result<Vec<Listed>>> = frontier
            .par_iter()
            .map(|(_, host)| list_dir(host, xattrs, exclude))
            .collect();
        let mut next = Vec::new();
        for ((id, _), entries) in frontier.iter().zip(listed) {
            let mut entries = entries?;
            for e in entries.iter_mut().filter(|e| e.meta.is_dir()) {
                e.dir = Some(listings.len());
                listings.push(Vec::new());
                next.push((listings.len() - 1, e.host.clone()));
            }
            listings[*id] = entries;
        }
        frontier = next;
    }
    Ok(listings)
}

/// One directory's entries, sorted by name, each `lstat`ed (in parallel).
fn list_dir(host: &Path, xattrs: bool, exclude: &[PathBuf]) -> Result<Vec<Listed>> {
    use rayon::prelude::*;
    let mut names: Vec<Vec<u8>> = Vec::new();
    for e in fs::read_dir(host).map_err(io("listing", host))? {
        let e = e.map_err(io("listing", host))?;
        names.push(e.file_name().as_bytes().to_vec());
    }
    names.sort();
    names.retain(|n| !exclude.contains(&host.join(OsStr::from_bytes(n))));
    names
        .into_par_iter()
        .map(|name| {
            let hp = host.join(OsStr::from_bytes(&name));
            let meta = fs::symlink_metadata(&hp).map_err(io("reading", &hp))?;
            let link = if meta.file_type().is_symlink() {
                let t = fs::read_link(&hp).map_err(io("reading link", &hp))?;
                Some(t.into_os_string().into_vec())
            } else {
                None
            };
            let xattrs = if xattrs {
                host_xattrs(&hp)?
            } else {
                Vec::new()
            };
            Ok(Listed {
                name,
                host: hp,
                meta,
                xattrs,
                link,
                dir: None,
            })
        })
        .collect()
}

fn host_meta(m: &fs::Metadata, xattrs: Vec<(Vec<u8>, Vec<u8>)>) -> EntryMeta {
    EntryMeta {
        mode: (m.mode() & 0o7777) as u16,
        uid: m.uid(),
        gid: m.gid(),
        mtime: m.mtime().clamp(0, i64::from(u32::MAX)) as u32,
        xattrs,
    }
}

/// `path` with its parent directory resolved (the last component may not exist yet).
fn absolute(path: &Path) -> Result<PathBuf> {
    let name = path.file_name().ok_or_else(|| Error::IoPath {
        what: "excluding",
        path: path.to_path_buf(),
        source: std::io::ErrorKind::InvalidInput.into(),
    })?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let parent = fs::canonicalize(parent).map_err(io("resolving", parent))?;
    Ok(parent.join(name))
}

/// The storable xattrs of a host path (not following symlinks), sorted by name.
fn host_xattrs(p: &Path) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    use rustix::io::Errno;
    let err = |e: Errno| Error::IoPath {
        what: "reading xattrs of",
        path: p.to_path_buf(),
        source: e.into(),
    };
    let mut list = vec![0u8; 4096];
    let n = loop {
        match rustix::fs::llistxattr(p, &mut list[..]) {
            Ok(n) => break n,
            Err(Errno::RANGE) if list.len() < 1 << 20 => list.resize(list.len() * 4, 0),
            Err(Errno::NOTSUP | Errno::NOSYS) => return Ok(Vec::new()),
            Err(e) => return Err(err(e)),
        }
    };
    let mut out = Vec::new();
    for name in list[..n].split(|&c| c == 0).filter(|n| !n.is_empty()) {
        if XattrKey::from_full_name(name).is_none() {
            continue; // system.* (ACLs) has no squashfs encoding
        }
        let mut v = vec![0u8; 65_536];
        let len = match rustix::fs::lgetxattr(p, OsStr::from_bytes(name), &mut v[..]) {
            Ok(l) => l,
            Err(Errno::NODATA) => continue,
            Err(e) => return Err(err(e)),
        };
        v.truncate(len);
        out.push((name.to_vec(), v));
    }
    out.sort();
    Ok(out)
}
