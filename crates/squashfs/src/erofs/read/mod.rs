//! EROFS reading: [`ErofsReader`] walks directories, reads every data layout (flat plain,
//! flat inline with the tail after the inode, chunk based with a block map or chunk
//! indexes, compressed with full or compact indexes: see [`zdata`]), symlinks, device nodes
//! and xattrs (inline and shared, long name prefixes too). Compressed content decodes with
//! lz4, lzma (MicroLZMA), deflate or zstd; decoded pclusters are kept in a small LRU cache
//! (bounded in entries and bytes) so fragments, deduplicated extents and sequential reads
//! do not decode a pcluster twice, and the pclusters of one file decode in parallel batches.
//!
//! An inode lives at `meta_blkaddr * block_size + 32 * nid` (see [`super::raw`] for the
//! structures). Every offset is checked against the image before it is read, sizes never
//! allocate more than one block at a time, walks are bounded by [`Limits`] and refuse
//! directory loops.

mod zdata;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use serde::Serialize;

use self::zdata::{Source, ZExtent, ZMap};
use super::decompress::{Codec, DecodeParams, decode_pcluster};
pub use super::raw::CompressionConfig;
use super::raw::{
    CHUNK_BASED, CHUNK_FORMAT_INDEXES, COMPRESSED_COMPACT, COMPRESSED_FULL,
    EROFS_SUPERBLOCK_OFFSET, ErofsSuperBlock, FEATURE_INCOMPAT_COMPR_CFGS,
    FEATURE_INCOMPAT_ZERO_PADDING, FLAT_INLINE, FLAT_PLAIN, InodeHeader, LongPrefix, NULL_ADDR,
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
///
/// Decoded pclusters are cached: at most [`Limits::fragment_cache_blocks`] of them and
/// 64 MiB in all, least recently used dropped first.
pub struct ErofsReader {
    src: Box<dyn ReadAt>,
    base: u64,
    len: u64,
    sb: ErofsSuperBlock,
    blksz: u64,
    limits: Limits,
    cfgs: Vec<CompressionConfig>,
    prefixes: Vec<LongPrefix>,
    packed: Option<ErofsInode>,
    cache: Mutex<PclusterCache>,
}

/// Decoded pclusters, least recently used first; bounded in entries and bytes.
#[derive(Default)]
struct PclusterCache {
    entries: Vec<(PclusterKey, Arc<Vec<u8>>)>,
    bytes: usize,
}

/// A pcluster and how it decodes (interlaced ones also by the extent's offset in a block).
type PclusterKey = (u64, u64, Codec, u64);

/// Most bytes of decoded pclusters kept.
const CACHE_BYTES: usize = 64 << 20;
/// Most decoded bytes one parallel batch of a file's pclusters holds.
const BATCH_BYTES: u64 = 16 << 20;

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
        let mut r = Self {
            src: Box::new(src),
            base: offset,
            len,
            blksz: 1u64 << sb.blkszbits,
            sb,
            limits,
            cfgs: Vec::new(),
            prefixes: Vec::new(),
            packed: None,
            cache: Mutex::new(PclusterCache::default()),
        };
        if r.sb.extra_devices != 0 {
            return Err(Error::Unsupported {
                feature: "EROFS images spread over extra devices",
            });
        }
        if r.sb.feature_incompat & FEATURE_INCOMPAT_COMPR_CFGS != 0 {
            let at = EROFS_SUPERBLOCK_OFFSET + r.sb.sb_size();
            let n = 512.min(r.len.saturating_sub(at));
            let b = r.read(at, n, "EROFS compression config")?;
            r.cfgs = CompressionConfig::parse_all(&b, r.sb.available_compr_algs, offset + at)?;
        }
        if r.sb.packed_nid != 0 {
            let p = r.inode(r.sb.packed_nid)?;
            if p.kind != InodeKind::File {
                return Err(malformed(
                    "EROFS superblock",
                    "packed_nid",
                    offset + EROFS_SUPERBLOCK_OFFSET + 96,
                    "the packed inode is not a regular file",
                ));
            }
            r.packed = Some(p);
        }
        if r.sb.xattr_prefix_count > 0 {
            r.prefixes = r.long_prefixes()?;
        }
        Ok(r)
    }

    /// The compression configs after the superblock (empty without `COMPR_CFGS`).
    pub fn compression_configs(&self) -> &[CompressionConfig] {
        &self.cfgs
    }

    /// The long xattr name prefixes, in table order.
    pub fn long_xattr_prefixes(&self) -> &[LongPrefix] {
        &self.prefixes
    }

    /// The packed inode (fragments, long xattr prefixes), when the image has one.
    pub fn packed_inode(&self) -> Option<&ErofsInode> {
        self.packed.as_ref()
    }

    fn long_prefixes(&self) -> Result<Vec<LongPrefix>> {
        let at = u64::from(self.sb.xattr_prefix_start) * 4;
        // Each record is at most 2 + 256 bytes and 4-byte aligned.
        let want = u64::from(self.sb.xattr_prefix_count) * 260;
        let field = self.base + EROFS_SUPERBLOCK_OFFSET + 92;
        let table = match &self.packed {
            Some(p) => {
                let n = want.min(p.size.saturating_sub(at));
                let mut t = Vec::new();
                self.content_range(p, at, n, 1, &mut |b| {
                    t.extend_from_slice(b);
                    Ok(())
                })?;
                t
            }
            None => self.read(
                at,
                want.min(self.len.saturating_sub(at)),
                "EROFS long xattr prefix",
            )?,
        };
        let mut out = Vec::new();
        let mut off = 0usize;
        for _ in 0..self.sb.xattr_prefix_count {
            let (p, used) = LongPrefix::parse(table.get(off..).unwrap_or_default(), field)?;
            out.push(p);
            off += used;
        }
        Ok(out)
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

    /// Calls `emit` with the whole content in order, in pieces of at most 1 MiB (or one
    /// decoded extent).
    fn content(&self, i: &ErofsInode, emit: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        self.content_range(i, 0, i.size, 0, emit)
    }

    /// Calls `emit` with content bytes `start..start + len` (clipped to the size) in order.
    /// `depth` counts packed-inode reads above this one: the packed inode's own content
    /// never refers to a fragment.
    fn content_range(
        &self,
        i: &ErofsInode,
        start: u64,
        len: u64,
        depth: u8,
        emit: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        let at = self.base + i.offset;
        let end = start.saturating_add(len).min(i.size);
        if start >= end {
            return Ok(());
        }
        let plain = |from: u64, n: u64, emit: &mut dyn FnMut(&[u8]) -> Result<()>| {
            let mut done = 0;
            while done < n {
                let k = (n - done).min(1 << 20);
                emit(&self.read(from + done, k, "EROFS file data")?)?;
                done += k;
            }
            Ok(())
        };
        match i.layout {
            FLAT_PLAIN => plain(
                self.block_at(i.raw_u, "i_u (raw_blkaddr)", at)? + start,
                end - start,
                emit,
            ),
            FLAT_INLINE => {
                let tail = i.size % self.blksz;
                let full = i.size - tail;
                if start < full {
                    let blk = self.block_at(i.raw_u, "i_u (raw_blkaddr)", at)?;
                    plain(blk + start, end.min(full) - start, emit)?;
                }
                if end > full {
                    let istart = i.inline_at();
                    if istart % self.blksz + tail > self.blksz {
                        return Err(malformed(
                            "EROFS inode",
                            "i_size",
                            at,
                            "inline tail crosses a block boundary",
                        ));
                    }
                    let from = start.max(full) - full;
                    emit(&self.read(istart + from, end - full - from, "EROFS inline tail")?)?;
                }
                Ok(())
            }
            CHUNK_BASED => {
                let m = self.chunk_map(i)?;
                let chunk = m.chunk;
                let zeros = vec![0u8; chunk.min(1 << 20) as usize];
                for k in start / chunk..end.div_ceil(chunk) {
                    let blkaddr = self.chunk_addr(&m, k)?;
                    let (cs, ce) = ((k * chunk).max(start), ((k + 1) * chunk).min(end));
                    if blkaddr == NULL_ADDR {
                        if i.kind == InodeKind::Dir {
                            // A directory is made of entries the image holds: a hole in
                            // one stops the read here, before any zeros are produced.
                            return Err(malformed(
                                "EROFS chunk index",
                                "blkaddr",
                                self.base + m.table,
                                "a directory chunk is a hole",
                            ));
                        }
                        let mut left = ce - cs;
                        while left > 0 {
                            let n = left.min(zeros.len() as u64);
                            emit(zeros.get(..n as usize).unwrap_or_default())?;
                            left -= n;
                        }
                    } else {
                        let from = u64::from(blkaddr) * self.blksz + (cs - k * chunk);
                        plain(from, ce - cs, emit)?;
                    }
                }
                Ok(())
            }
            COMPRESSED_FULL | COMPRESSED_COMPACT => {
                self.compressed_range(i, start, end, depth, emit)
            }
            _ => Err(malformed(
                "EROFS inode",
                "i_format",
                at,
                "unknown data layout",
            )),
        }
    }

    /// Content bytes `start..end` of a compressed inode.
    fn compressed_range(
        &self,
        i: &ErofsInode,
        start: u64,
        end: u64,
        depth: u8,
        emit: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        let at = self.base + i.offset;
        let cap = self.limits.max_file_blocks.saturating_mul(self.blksz);
        if i.size > cap {
            return Err(Error::LimitExceeded {
                what: "EROFS compressed file size (Limits::max_file_blocks blocks)",
                limit: cap,
            });
        }
        let mut z = ZMap::new(self, i)?;
        if let Some(off) = z.whole_fragment {
            return self.fragment(off.checked_add(start), end - start, depth, at, emit);
        }
        let mut pos = start;
        while pos < end {
            // A batch of consecutive pcluster extents, decoded in parallel.
            let mut batch: Vec<ZExtent> = Vec::new();
            let mut bytes = 0u64;
            let mut p = pos;
            while p < end && bytes < BATCH_BYTES && batch.len() < 64 {
                let e = z.extent_at(p)?;
                let frag = matches!(e.src, Source::Fragment(_));
                if frag && !batch.is_empty() {
                    break;
                }
                bytes += e.end - e.la;
                p = e.end.min(end);
                batch.push(e);
                if frag {
                    break;
                }
            }
            if let [e] = batch.as_slice()
                && let Source::Fragment(off) = e.src
            {
                let from = pos - e.la;
                let to = e.end.min(end);
                self.fragment(off.checked_add(from), to - pos, depth, at, emit)?;
                pos = to;
                continue;
            }
            let decoded: Vec<Result<Arc<Vec<u8>>>> = if batch.len() > 1 {
                batch.par_iter().map(|e| self.decoded(e)).collect()
            } else {
                batch.iter().map(|e| self.decoded(e)).collect()
            };
            for (e, d) in batch.iter().zip(decoded) {
                let d = d?;
                let from = (pos - e.la) as usize;
                let to = (e.end.min(end) - e.la) as usize;
                emit(d.get(from..to).ok_or(malformed(
                    "EROFS compressed inode",
                    "lcluster index",
                    at,
                    "extent outside its decoded pcluster",
                ))?)?;
                pos = e.end.min(end);
            }
        }
        Ok(())
    }

    /// `len` bytes of the packed inode from `off` (`None`: the offset overflowed).
    fn fragment(
        &self,
        off: Option<u64>,
        len: u64,
        depth: u8,
        at: u64,
        emit: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        let bad = |reason| malformed("EROFS compressed inode", "h_fragmentoff", at, reason);
        let p = self
            .packed
            .as_ref()
            .ok_or(bad("a fragment without a packed inode"))?;
        if depth > 0 {
            return Err(bad("the packed inode refers to a fragment itself"));
        }
        let off = off.ok_or(bad("fragment offset overflows"))?;
        if off.checked_add(len).is_none_or(|e| e > p.size) {
            return Err(bad("fragment past the end of the packed inode"));
        }
        self.content_range(p, off, len, depth + 1, emit)
    }

    /// The decoded content of a pcluster extent (`end - la` bytes), from the cache or
    /// decoded now (and then cached).
    fn decoded(&self, e: &ZExtent) -> Result<Arc<Vec<u8>>> {
        let Source::Pcluster { pa, plen, codec } = e.src else {
            return Err(malformed(
                "EROFS compressed inode",
                "h_fragmentoff",
                self.base,
                "not a pcluster",
            ));
        };
        let need = (e.end - e.la) as usize;
        let key: PclusterKey = (
            pa,
            plen,
            codec,
            if codec == Codec::Interlaced {
                e.la % self.blksz
            } else {
                0
            },
        );
        if let Ok(mut c) = self.cache.lock()
            && let Some(k) = c
                .entries
                .iter()
                .position(|(x, d)| *x == key && d.len() >= need)
        {
            let hit = c.entries.remove(k);
            let d = Arc::clone(&hit.1);
            c.entries.push(hit);
            return Ok(d);
        }
        let src = self.read(pa, plen, "EROFS pcluster")?;
        let params = DecodeParams {
            zero_padding: self.sb.feature_incompat & FEATURE_INCOMPAT_ZERO_PADDING != 0,
            blksz: self.blksz,
            la: e.la,
        };
        let d = Arc::new(decode_pcluster(codec, &src, need, params, self.base + pa)?);
        if let Ok(mut c) = self.cache.lock() {
            let max = self.limits.fragment_cache_blocks.max(1);
            if let Some(k) = c.entries.iter().position(|(x, _)| *x == key) {
                let old = c.entries.remove(k);
                c.bytes -= old.1.len();
            }
            c.bytes += d.len();
            c.entries.push((key, Arc::clone(&d)));
            while c.entries.len() > max || (c.bytes > CACHE_BYTES && c.entries.len() > 1) {
                let old = c.entries.remove(0);
                c.bytes -= old.1.len();
            }
        }
        Ok(d)
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
        // Uncompressed directory blocks are stored in the image: a larger size is a lie
        // found before reading anything.
        if !matches!(dir.layout, COMPRESSED_FULL | COMPRESSED_COMPACT) && dir.size > self.len {
            return Err(malformed(
                "EROFS inode",
                "i_size",
                at,
                "directory larger than the image",
            ));
        }
        let mut out: Vec<(Vec<u8>, u64)> = Vec::new();
        let mut pending: Vec<u8> = Vec::new();
        let blksz = self.blksz as usize;
        self.content(dir, &mut |chunk| {
            // Regroup what arrives into directory blocks; the first bad block stops the read.
            pending.extend_from_slice(chunk);
            while pending.len() >= blksz {
                let rest = pending.split_off(blksz);
                let block = std::mem::replace(&mut pending, rest);
                parse_dir_block(&block, at, &mut out)?;
                if out.len() as u64 > self.limits.max_entries {
                    return Err(Error::LimitExceeded {
                        what: "EROFS directory entries",
                        limit: self.limits.max_entries,
                    });
                }
            }
            Ok(())
        })?;
        if !pending.is_empty() {
            parse_dir_block(&pending, at, &mut out)?;
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
            let (e, used) =
                XattrEntry::parse_with_prefixes(&body[p..], at + p as u64, &self.prefixes)?;
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
            let (e, _) = XattrEntry::parse_with_prefixes(&e, self.base + pos, &self.prefixes)?;
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
    /// Files are written in parallel; runs of zero blocks (NULL chunks among them) become
    /// holes.
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
        if matches!(i.layout, COMPRESSED_FULL | COMPRESSED_COMPACT) {
            return self.compressed_extents(i);
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

    /// The pclusters of a compressed file, one extent per logical extent (deduplicated
    /// extents share stored bytes); `None` when a fragment holds part of the file, since no
    /// stored range holds those bytes alone.
    fn compressed_extents(&self, i: &ErofsInode) -> Result<Option<Vec<Extent>>> {
        if i.size / self.blksz > self.limits.max_file_blocks {
            return Err(Error::LimitExceeded {
                what: "EROFS compressed file size (Limits::max_file_blocks blocks)",
                limit: self.limits.max_file_blocks.saturating_mul(self.blksz),
            });
        }
        let mut z = ZMap::new(self, i)?;
        if z.whole_fragment.is_some() {
            return Ok(None);
        }
        let mut out: Vec<Extent> = Vec::new();
        let mut pos = 0;
        while pos < i.size {
            let e = z.extent_at(pos)?;
            let Source::Pcluster { pa, plen, codec } = e.src else {
                return Ok(None);
            };
            if pa.checked_add(plen).is_none_or(|end| end > self.len) {
                return Err(Error::Truncated {
                    structure: "EROFS pcluster",
                    offset: self.base + pa,
                    needed: plen,
                    available: self.len.saturating_sub(pa),
                });
            }
            let len = e.end - e.la;
            out.push(if codec == Codec::Shifted {
                Extent {
                    file_offset: e.la,
                    len,
                    image_offset: pa,
                    stored_len: len,
                    compressed: false,
                }
            } else {
                Extent {
                    file_offset: e.la,
                    len,
                    image_offset: pa,
                    stored_len: plen,
                    compressed: true,
                }
            });
            pos = e.end;
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
