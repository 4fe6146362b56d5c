//! EROFS reading: [`ErofsReader`] walks directories, reads the uncompressed data layouts
//! (flat plain, flat inline with the tail after the inode, chunk based with a block map or
//! chunk indexes), symlinks, device nodes and xattrs (inline and shared). Compressed files
//! (lz4, lzma, deflate, zstd layouts) are refused by name for now.
//!
//! An inode lives at `meta_blkaddr * block_size + 32 * nid` (see [`super::raw`] for the
//! structures). Every offset is checked against the image before it is read, sizes never
//! allocate more than one block at a time, walks are bounded by [`Limits`] and refuse
//! directory loops.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use serde::Serialize;

use super::raw::{
    CHUNK_BASED, CHUNK_FORMAT_INDEXES, COMPRESSED_COMPACT, COMPRESSED_FULL,
    EROFS_SUPERBLOCK_OFFSET, ErofsSuperBlock, FLAT_INLINE, FLAT_PLAIN, InodeHeader, NULL_ADDR,
    XATTR_BODY_HEADER_SIZE, XattrEntry, malformed, parse_dir_block, xattr_body_size,
};
use crate::error::{Error, Result};
use imgpipe_fstree::le::{le_u16, le_u32};
use imgpipe_fstree::{Entry, Extent, FsRead, Holds, Metadata, ReadAt};

use crate::raw::{InodeKind, decode_dev};
use crate::read::{ExtractOptions, ExtractReport, Limits, extract_error};

/// One inode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErofsInode {
    /// Node number (the inode's slot in the metadata area).
    pub nid: u64,
    /// Type.
    pub kind: InodeKind,
    /// Permission bits (`0o7777`).
    pub mode: u16,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time (seconds).
    pub mtime: u64,
    /// Nanoseconds of the modification time (a compact inode takes the build time's).
    pub mtime_nsec: u32,
    /// Link count.
    pub nlink: u32,
    /// Size in bytes.
    pub size: u64,
    /// Inode number for stat(2).
    pub ino: u32,
    /// Whether the 64-byte extended form is used.
    pub extended: bool,
    /// Data layout (0 flat plain, 1/3 compressed, 2 flat inline, 4 chunk based).
    pub layout: u8,
    /// Device numbers of a device node.
    pub device: Option<(u32, u32)>,
    raw_u: u32,
    xattr_icount: u16,
    /// Absolute offset of the inode.
    offset: u64,
}

impl ErofsInode {
    /// Byte offset of the on-disk inode, relative to the image start.
    pub fn position(&self) -> u64 {
        self.offset
    }

    fn inode_size(&self) -> u64 {
        if self.extended { 64 } else { 32 }
    }

    fn xattr_size(&self) -> u64 {
        xattr_body_size(self.xattr_icount)
    }

    /// Where inline data (tail, chunk map) starts: right after the inode and its xattrs.
    fn inline_at(&self) -> u64 {
        self.offset + self.inode_size() + self.xattr_size()
    }
}

/// The chunk map of a chunk-based inode.
#[derive(Debug, Clone, Copy)]
struct ChunkMap {
    /// Chunk size in bytes.
    chunk: u64,
    /// Number of chunks.
    count: u64,
    /// 8-byte chunk indexes rather than a 4-byte block map.
    indexes: bool,
    /// Where the map starts, relative to the image start.
    table: u64,
}

/// One entry of [`ErofsReader::walk`].
#[derive(Debug, Clone)]
pub struct ErofsEntry {
    /// Path below the root (`/`-separated, no leading slash; empty for the root).
    pub path: Vec<u8>,
    /// Its inode.
    pub inode: ErofsInode,
}

/// A reader over an EROFS image held by any [`ReadAt`], at any offset.
pub struct ErofsReader {
    src: Box<dyn ReadAt>,
    base: u64,
    len: u64,
    sb: ErofsSuperBlock,
    blksz: u64,
    limits: Limits,
}

impl std::fmt::Debug for ErofsReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ErofsReader")
            .field("base", &self.base)
            .field("sb", &self.sb)
            .finish_non_exhaustive()
    }
}

impl ErofsReader {
    /// Opens the image that starts `offset` bytes into `src`.
    pub fn open_at(src: impl ReadAt + 'static, offset: u64, limits: Limits) -> Result<Self> {
        let total = src.len().map_err(|source| Error::Io {
            what: "sizing the image",
            source,
        })?;
        let len = total.saturating_sub(offset);
        let need = EROFS_SUPERBLOCK_OFFSET + ErofsSuperBlock::SIZE as u64;
        if len < need {
            return Err(Error::Truncated {
                structure: "EROFS superblock",
                offset: offset + EROFS_SUPERBLOCK_OFFSET,
                needed: ErofsSuperBlock::SIZE as u64,
                available: len.saturating_sub(EROFS_SUPERBLOCK_OFFSET),
            });
        }
        let mut b = [0u8; ErofsSuperBlock::SIZE];
        src.read_exact_at(&mut b, offset + EROFS_SUPERBLOCK_OFFSET)
            .map_err(|source| Error::Io {
                what: "reading the image",
                source,
            })?;
        let sb = ErofsSuperBlock::parse(&b, offset + EROFS_SUPERBLOCK_OFFSET)?;
        let r = Self {
            src: Box::new(src),
            base: offset,
            len,
            blksz: 1u64 << sb.blkszbits,
            sb,
            limits,
        };
        if r.sb.extra_devices != 0 {
            return Err(Error::Unsupported {
                feature: "EROFS images spread over extra devices",
            });
        }
        Ok(r)
    }

    /// The superblock.
    pub fn superblock(&self) -> &ErofsSuperBlock {
        &self.sb
    }

    /// Reads `len` bytes at image offset `at` (relative to the image start).
    fn read(&self, at: u64, len: u64, structure: &'static str) -> Result<Vec<u8>> {
        let end = at.checked_add(len).filter(|&e| e <= self.len);
        if end.is_none() {
            return Err(Error::Truncated {
                structure,
                offset: self.base + at,
                needed: len,
                available: self.len.saturating_sub(at),
            });
        }
        let mut buf = vec![0u8; len as usize];
        self.src
            .read_exact_at(&mut buf, self.base + at)
            .map_err(|source| Error::Io {
                what: "reading the image",
                source,
            })?;
        Ok(buf)
    }

    fn block_at(&self, blkaddr: u32, field: &'static str, at: u64) -> Result<u64> {
        if blkaddr == NULL_ADDR {
            return Err(malformed("EROFS inode", field, at, "no block address"));
        }
        Ok(u64::from(blkaddr) * self.blksz)
    }

    /// The root directory.
    pub fn root(&self) -> Result<ErofsInode> {
        self.inode(u64::from(self.sb.root_nid))
    }

    /// The inode with node number `nid`.
    pub fn inode(&self, nid: u64) -> Result<ErofsInode> {
        let offset = nid
            .checked_mul(32)
            .and_then(|o| o.checked_add(u64::from(self.sb.meta_blkaddr) * self.blksz))
            .ok_or(malformed(
                "EROFS inode",
                "nid",
                self.base,
                "address overflows",
            ))?;
        let b = self.read(offset, 32, "EROFS inode")?;
        let at = self.base + offset;
        let b = if InodeHeader::is_extended_format(le_u16(&b, 0)) {
            self.read(offset, 64, "EROFS extended inode")?
        } else {
            b
        };
        let h = InodeHeader::parse(&b, at)?;
        let kind = match h.mode & 0o170000 {
            0o040000 => InodeKind::Dir,
            0o100000 => InodeKind::File,
            0o120000 => InodeKind::Symlink,
            0o060000 => InodeKind::BlockDev,
            0o020000 => InodeKind::CharDev,
            0o010000 => InodeKind::Fifo,
            0o140000 => InodeKind::Socket,
            _ => {
                return Err(malformed(
                    "EROFS inode",
                    "i_mode",
                    at + 4,
                    "unknown file type",
                ));
            }
        };
        let (mtime, mtime_nsec) = h
            .mtime
            .unwrap_or((self.sb.build_time, self.sb.build_time_nsec));
        let device =
            matches!(kind, InodeKind::BlockDev | InodeKind::CharDev).then(|| decode_dev(h.u));
        Ok(ErofsInode {
            nid,
            kind,
            mode: h.mode & 0o7777,
            uid: h.uid,
            gid: h.gid,
            mtime,
            mtime_nsec,
            nlink: h.nlink,
            size: h.size,
            ino: h.ino,
            extended: h.extended(),
            layout: h.layout(),
            device,
            raw_u: h.u,
            xattr_icount: h.xattr_icount,
            offset,
        })
    }

    /// Calls `emit` with the content in order, at most one block (or one 1 MiB run) at a time.
    fn content(&self, i: &ErofsInode, emit: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        let at = self.base + i.offset;
        let plain = |start: u64, len: u64, emit: &mut dyn FnMut(&[u8]) -> Result<()>| {
            let mut done = 0;
            while done < len {
                let n = (len - done).min(1 << 20);
                emit(&self.read(start + done, n, "EROFS file data")?)?;
                done += n;
            }
            Ok(())
        };
        match i.layout {
            FLAT_PLAIN => {
                if i.size == 0 {
                    return Ok(());
                }
                plain(
                    self.block_at(i.raw_u, "i_u (raw_blkaddr)", at)?,
                    i.size,
                    emit,
                )
            }
            FLAT_INLINE => {
                let tail = i.size % self.blksz;
                let full = i.size - tail;
                if full > 0 {
                    plain(self.block_at(i.raw_u, "i_u (raw_blkaddr)", at)?, full, emit)?;
                }
                if tail > 0 {
                    let start = i.inline_at();
                    if start % self.blksz + tail > self.blksz {
                        return Err(malformed(
                            "EROFS inode",
                            "i_size",
                            at,
                            "inline tail crosses a block boundary",
                        ));
                    }
                    emit(&self.read(start, tail, "EROFS inline tail")?)?;
                }
                Ok(())
            }
            CHUNK_BASED => {
                let m = self.chunk_map(i)?;
                let chunk = m.chunk;
                for k in 0..m.count {
                    let blkaddr = self.chunk_addr(&m, k)?;
                    let len = (i.size - k * chunk).min(chunk);
                    if blkaddr == NULL_ADDR {
                        let zeros = vec![0u8; len.min(1 << 20) as usize];
                        let mut left = len;
                        while left > 0 {
                            let n = left.min(zeros.len() as u64);
                            emit(&zeros[..n as usize])?;
                            left -= n;
                        }
                    } else {
                        plain(u64::from(blkaddr) * self.blksz, len, emit)?;
                    }
                }
                Ok(())
            }
            COMPRESSED_FULL | COMPRESSED_COMPACT => Err(Error::Unsupported {
                feature: "compressed EROFS files (lz4, lzma, deflate, zstd); only uncompressed images are read so far",
            }),
            _ => Err(malformed(
                "EROFS inode",
                "i_format",
                at,
                "unknown data layout",
            )),
        }
    }

    /// Where the chunk map of a chunk-based inode is and what it covers.
    fn chunk_map(&self, i: &ErofsInode) -> Result<ChunkMap> {
        let at = self.base + i.offset;
        let chunkbits = u32::from(self.sb.blkszbits) + (i.raw_u & 0x1f);
        if chunkbits > 40 {
            return Err(malformed(
                "EROFS inode",
                "i_u (chunk format)",
                at,
                "chunk size over 1 TiB",
            ));
        }
        let chunk = 1u64 << chunkbits;
        let count = i.size.div_ceil(chunk);
        // Holes cost nothing on disk: without a cap a few index bytes could declare
        // petabytes of zeros for a reader to produce.
        let cap = self.limits.max_file_blocks.saturating_mul(self.blksz);
        if count > self.limits.max_file_blocks || i.size > cap {
            return Err(Error::LimitExceeded {
                what: "EROFS chunk-based file size (Limits::max_file_blocks blocks)",
                limit: cap,
            });
        }
        let indexes = i.raw_u & CHUNK_FORMAT_INDEXES != 0;
        let unit = if indexes { 8 } else { 4 };
        Ok(ChunkMap {
            chunk,
            count,
            indexes,
            table: i.inline_at().next_multiple_of(unit),
        })
    }

    /// The start block of chunk `k` (`NULL_ADDR` for a hole).
    fn chunk_addr(&self, m: &ChunkMap, k: u64) -> Result<u32> {
        let unit = if m.indexes { 8 } else { 4 };
        let e = self.read(m.table + k * unit, unit, "EROFS chunk index")?;
        if m.indexes {
            if le_u16(&e, 2) != 0 {
                return Err(Error::Unsupported {
                    feature: "EROFS chunks on extra devices",
                });
            }
            Ok(le_u32(&e, 4))
        } else {
            Ok(le_u32(&e, 0))
        }
    }

    /// Writes a regular file's content to `w`; returns its size.
    pub fn read_file(&self, i: &ErofsInode, w: &mut dyn Write) -> Result<u64> {
        if i.kind != InodeKind::File {
            return Err(malformed(
                "EROFS inode",
                "i_mode",
                self.base + i.offset,
                "not a regular file",
            ));
        }
        let mut n = 0u64;
        self.content(i, &mut |b| {
            n += b.len() as u64;
            w.write_all(b).map_err(|source| Error::Io {
                what: "writing file content",
                source,
            })
        })?;
        Ok(n)
    }

    /// A symlink's target.
    pub fn read_link(&self, i: &ErofsInode) -> Result<Vec<u8>> {
        if i.kind != InodeKind::Symlink || i.size == 0 || i.size > 4096 {
            return Err(malformed(
                "EROFS inode",
                "i_size",
                self.base + i.offset,
                "not a symlink, or its target is empty or over 4096 bytes",
            ));
        }
        let mut t = Vec::new();
        self.content(i, &mut |b| {
            t.extend_from_slice(b);
            Ok(())
        })?;
        Ok(t)
    }

    /// A directory's entries (without `.` and `..`) as (name, nid), in stored (sorted) order.
    pub fn read_dir(&self, dir: &ErofsInode) -> Result<Vec<(Vec<u8>, u64)>> {
        let at = self.base + dir.offset;
        if dir.kind != InodeKind::Dir {
            return Err(malformed("EROFS inode", "i_mode", at, "not a directory"));
        }
        if dir.size / self.blksz > self.limits.max_entries {
            return Err(Error::LimitExceeded {
                what: "EROFS directory blocks",
                limit: self.limits.max_entries,
            });
        }
        let mut out: Vec<(Vec<u8>, u64)> = Vec::new();
        let mut pending: Vec<u8> = Vec::new();
        let blksz = self.blksz as usize;
        let mut fail = None;
        self.content(dir, &mut |chunk| {
            // Regroup what arrives into directory blocks.
            pending.extend_from_slice(chunk);
            while pending.len() >= blksz {
                let rest = pending.split_off(blksz);
                let block = std::mem::replace(&mut pending, rest);
                if let Err(e) = parse_dir_block(&block, at, &mut out) {
                    fail.get_or_insert(e);
                }
            }
            Ok(())
        })?;
        if !pending.is_empty() {
            parse_dir_block(&pending, at, &mut out)?;
        }
        if let Some(e) = fail {
            return Err(e);
        }
        if out.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(malformed(
                "EROFS directory",
                "names",
                at,
                "not strictly sorted",
            ));
        }
        Ok(out)
    }

    /// An inode's xattrs as (full name, value), inline ones then shared ones.
    pub fn xattrs(&self, i: &ErofsInode) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let size = i.xattr_size();
        if size == 0 {
            return Ok(Vec::new());
        }
        let start = i.offset + i.inode_size();
        let body = self.read(start, size, "EROFS xattr body")?;
        let at = self.base + start;
        let shared = usize::from(body[4]);
        if XATTR_BODY_HEADER_SIZE + 4 * shared > body.len() {
            return Err(malformed(
                "EROFS xattr body",
                "h_shared_count",
                at + 4,
                "more shared ids than fit",
            ));
        }
        let mut out = Vec::new();
        let mut p = XATTR_BODY_HEADER_SIZE + 4 * shared;
        while p + 4 <= body.len() {
            let (e, used) = XattrEntry::parse(&body[p..], at + p as u64)?;
            out.push((e.name, e.value));
            p += used;
            if out.len() as u64 > u64::from(self.limits.max_xattrs) {
                return Err(Error::LimitExceeded {
                    what: "EROFS xattrs on one inode",
                    limit: u64::from(self.limits.max_xattrs),
                });
            }
        }
        for k in 0..shared {
            let id = le_u32(&body, XATTR_BODY_HEADER_SIZE + 4 * k);
            let pos = u64::from(self.sb.xattr_blkaddr) * self.blksz + u64::from(id) * 4;
            let head = self.read(pos, 4, "EROFS shared xattr")?;
            let need = 4 + u64::from(head[0]) + u64::from(le_u16(&head, 2));
            let e = self.read(pos, need, "EROFS shared xattr")?;
            let (e, _) = XattrEntry::parse(&e, self.base + pos)?;
            out.push((e.name, e.value));
        }
        Ok(out)
    }

    /// Every entry in depth-first pre-order, names sorted: the root first (empty path), each
    /// directory immediately followed by its subtree (the order `Reader::walk` uses).
    pub fn walk(&self) -> Result<Vec<ErofsEntry>> {
        let root = self.root()?;
        if root.kind != InodeKind::Dir {
            return Err(malformed(
                "EROFS superblock",
                "root_nid",
                self.base + 1024,
                "root is not a directory",
            ));
        }
        let mut seen_dirs = BTreeSet::new();
        let mut out = Vec::new();
        // Entries still to emit, last one next: (path, inode, depth).
        let mut stack = vec![(Vec::new(), root, 0usize)];
        while let Some((path, inode, depth)) = stack.pop() {
            if out.len() as u64 >= self.limits.max_entries {
                return Err(Error::LimitExceeded {
                    what: "EROFS entries",
                    limit: self.limits.max_entries,
                });
            }
            if inode.kind == InodeKind::Dir {
                if depth > self.limits.max_depth {
                    return Err(Error::LimitExceeded {
                        what: "EROFS directory depth",
                        limit: self.limits.max_depth as u64,
                    });
                }
                if !seen_dirs.insert(inode.nid) {
                    return Err(malformed(
                        "EROFS directory",
                        "nid",
                        self.base + inode.offset,
                        "directory loop",
                    ));
                }
                let children = self.read_dir(&inode)?;
                for (name, nid) in children.into_iter().rev() {
                    let child = self.inode(nid)?;
                    let mut p = path.clone();
                    if !p.is_empty() {
                        p.push(b'/');
                    }
                    p.extend_from_slice(&name);
                    stack.push((p, child, depth + 1));
                }
            }
            out.push(ErofsEntry { path, inode });
        }
        Ok(out)
    }
}

impl ErofsReader {
    /// Extracts the whole image below `dest` with the one safe extractor,
    /// [`imgpipe_fstree::extract`], and the same guarantees as
    /// [`Reader::extract`](crate::Reader::extract): nothing is written outside `dest`.
    /// Compressed files make it fail by name.
    pub fn extract(&self, dest: &Path, opts: ExtractOptions) -> Result<ExtractReport> {
        imgpipe_fstree::extract(self, dest, opts).map_err(extract_error)
    }
}

impl ErofsReader {
    /// The shared [`Entry`] for `inode` at `path`: xattrs sorted by name, the mtime's
    /// nanoseconds, a hard-link identity (the nid) on files with more than one name.
    pub fn entry(&self, path: &[u8], i: &ErofsInode) -> Result<Entry> {
        let mut xattrs = self.xattrs(i)?;
        xattrs.sort();
        let meta = Metadata {
            mode: u32::from(i.mode & 0o7777),
            uid: i.uid,
            gid: i.gid,
            // The kernel reads the 64-bit field as a signed time64_t.
            mtime: i.mtime as i64,
            mtime_nsec: i.mtime_nsec,
            xattrs,
        };
        let mut e = Entry::new(path, crate::read::file_type(i.kind), meta);
        match i.kind {
            InodeKind::File => {
                e.size = i.size;
                if i.nlink > 1 {
                    e.link = Some(i.nid);
                }
            }
            InodeKind::Symlink => {
                let t = self.read_link(i)?;
                e.size = t.len() as u64;
                e.target = Some(t);
            }
            InodeKind::BlockDev | InodeKind::CharDev => e.rdev = i.device,
            InodeKind::Dir | InodeKind::Fifo | InodeKind::Socket => {}
        }
        Ok(e)
    }

    /// Where a regular file's bytes lie: its blocks, its inline tail, its chunks (holes left
    /// out, adjacent pieces merged). `None` for other types and compressed layouts.
    fn file_extents(&self, i: &ErofsInode) -> Result<Option<Vec<Extent>>> {
        if i.kind != InodeKind::File {
            return Ok(None);
        }
        let at = self.base + i.offset;
        let image_len = self.len;
        let mut out: Vec<Extent> = Vec::new();
        // Each piece must lie inside the image: an extent names bytes that exist.
        let mut push = |file_offset: u64, image_offset: u64, len: u64| -> Result<()> {
            if len == 0 {
                return Ok(());
            }
            if image_offset
                .checked_add(len)
                .is_none_or(|end| end > image_len)
            {
                return Err(Error::Truncated {
                    structure: "EROFS file data",
                    offset: self.base + image_offset,
                    needed: len,
                    available: image_len.saturating_sub(image_offset),
                });
            }
            if let Some(last) = out.last_mut()
                && last.file_offset + last.len == file_offset
                && last.image_offset + last.stored_len == image_offset
            {
                last.len += len;
                last.stored_len += len;
                return Ok(());
            }
            out.push(Extent {
                file_offset,
                len,
                image_offset,
                stored_len: len,
                compressed: false,
            });
            Ok(())
        };
        match i.layout {
            FLAT_PLAIN => {
                if i.size > 0 {
                    push(0, self.block_at(i.raw_u, "i_u (raw_blkaddr)", at)?, i.size)?;
                }
            }
            FLAT_INLINE => {
                let tail = i.size % self.blksz;
                let full = i.size - tail;
                if full > 0 {
                    push(0, self.block_at(i.raw_u, "i_u (raw_blkaddr)", at)?, full)?;
                }
                push(full, i.inline_at(), tail)?;
            }
            CHUNK_BASED => {
                let m = self.chunk_map(i)?;
                for k in 0..m.count {
                    let blkaddr = self.chunk_addr(&m, k)?;
                    if blkaddr != NULL_ADDR {
                        let len = (i.size - k * m.chunk).min(m.chunk);
                        push(k * m.chunk, u64::from(blkaddr) * self.blksz, len)?;
                    }
                }
            }
            _ => return Ok(None),
        }
        Ok(Some(out))
    }
}

impl FsRead for ErofsReader {
    type Node = ErofsInode;
    type Error = Error;

    /// EROFS keeps everything POSIX has; nanoseconds live in extended inodes (a compact
    /// inode takes the build time's).
    fn holds(&self) -> Holds {
        Holds::POSIX
    }

    fn walk(&self) -> Result<Vec<(Entry, ErofsInode)>> {
        ErofsReader::walk(self)?
            .into_iter()
            .map(|w| Ok((self.entry(&w.path, &w.inode)?, w.inode)))
            .collect()
    }

    fn read_content(&self, node: &ErofsInode, out: &mut dyn Write) -> Result<u64> {
        self.read_file(node, out)
    }

    fn extents(&self, node: &ErofsInode) -> Result<Option<Vec<Extent>>> {
        self.file_extents(node)
    }
}
