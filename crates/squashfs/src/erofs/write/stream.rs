//! The data-first layout, for compressed images and images with reserved slots: file data is
//! streamed out first, in inode order, while later files are read and compressed ahead in
//! bounded batches; only each file's extent records stay in memory. Then come the shared
//! xattrs, the metadata area (`meta_blkaddr`: inodes with their indexes and inline tails, the
//! root first so its nid fits 16 bits), the directory and symlink blocks, and last block 0
//! (the superblock and the compression configurations).
//!
//! Files are cut into 16 MiB segments (as mkfs.erofs does when it compresses in parallel);
//! each segment is compressed on its own by a rayon worker, and segments are written in file
//! order, so the bytes do not depend on the number of threads.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::mpsc;

use imgpipe_fstree::{Content, FileType};

use super::emit::header;
use super::fitblk::{ErofsAlgorithm, Fitter};
use super::plan::{Inode, Plan};
use super::zdata::{ZConfig, ZUnit, compress_segment};
use super::zindex::{
    ADVISE_BIG_PCLUSTER_1, ADVISE_BIG_PCLUSTER_2, ADVISE_COMPACTED_2B, ADVISE_FRAGMENT_PCLUSTER,
    ADVISE_INLINE_PCLUSTER, ZExtent, compact_indexes, compact_len, lcluster_count, map_header,
    whole_fragment_header,
};
use super::{ErofsBuildReport, ErofsReservedSlot, ErofsWriteOptions};
use crate::erofs::raw::{
    COMPRESSED_COMPACT, COMPRESSED_FULL, EROFS_SUPERBLOCK_OFFSET, ErofsSuperBlock,
    FEATURE_COMPAT_MTIME, FEATURE_COMPAT_SB_CHKSUM, FLAT_INLINE, FLAT_PLAIN, InodeHeader,
    NULL_ADDR, encode_dir, superblock_checksum,
};
use crate::error::{Error, Result};
use crate::write::{Progress, ProgressFn};

/// Segment size: files are compressed in pieces of this size.
const SEGMENT: usize = 16 << 20;
/// Jobs per batch at most (many small files).
const BATCH_JOBS: usize = 4096;

const INCOMPAT_ZERO_PADDING: u32 = 0x1;
const INCOMPAT_COMPR_CFGS: u32 = 0x2;
const INCOMPAT_ZTAILPACKING: u32 = 0x10;
const INCOMPAT_FRAGMENTS: u32 = 0x20;

fn write_err(source: io::Error) -> Error {
    Error::Io {
        what: "writing the image",
        source,
    }
}

fn limit(what: &'static str) -> Error {
    Error::LimitExceeded {
        what,
        limit: u64::from(u32::MAX),
    }
}

fn bad(ino: &Inode<'_>, reason: &'static str) -> Error {
    Error::BadEntry {
        path: crate::read::lossy_path(&ino.entry.path),
        reason,
    }
}

fn read_err(ino: &Inode<'_>, source: io::Error) -> Error {
    match ino.content {
        Content::Host(p) => Error::IoPath {
            what: "reading",
            path: p.clone(),
            source,
        },
        _ => Error::IoPath {
            what: "reading the content of",
            path: crate::read::lossy_path(&ino.entry.path),
            source,
        },
    }
}

/// A sequential writer of image bytes from block 1 on.
struct Seq<'w, W> {
    w: &'w mut W,
    pos: u64,
    buf: Vec<u8>,
}

impl<W: Write + Seek> Seq<'_, W> {
    fn push(&mut self, b: &[u8]) -> Result<()> {
        self.buf.extend_from_slice(b);
        self.pos += b.len() as u64;
        if self.buf.len() >= 4 << 20 {
            self.flush()?;
        }
        Ok(())
    }

    fn pad_to(&mut self, to: u64) -> Result<()> {
        while self.pos < to {
            let n = (to - self.pos).min(1 << 20) as usize;
            self.buf.resize(self.buf.len() + n, 0);
            self.pos += n as u64;
            if self.buf.len() >= 4 << 20 {
                self.flush()?;
            }
        }
        Ok(())
    }

    fn pad_block(&mut self, blksz: u64) -> Result<()> {
        self.pad_to(self.pos.next_multiple_of(blksz))
    }

    fn block(&self, blksz: u64) -> Result<u32> {
        u32::try_from(self.pos / blksz).map_err(|_| limit("EROFS blocks (32-bit block addresses)"))
    }

    fn flush(&mut self) -> Result<()> {
        self.w.write_all(&self.buf).map_err(write_err)?;
        self.buf.clear();
        Ok(())
    }
}

/// A piece of a file's content to store.
struct Job {
    ino: usize,
    first: bool,
    last: bool,
    src: Vec<u8>,
}

struct Done {
    job: Job,
    unit: Option<ZUnit>,
    hash: Option<u128>,
}

/// Where a file's data went.
#[derive(Debug, Clone, Default)]
enum Stored {
    #[default]
    None,
    Flat {
        blkaddr: u32,
        blocks: u64,
        tail: Vec<u8>,
    },
    Z(ZFile),
}

#[derive(Debug, Clone, Default)]
struct ZFile {
    extents: Vec<ZExtent>,
    start: u32,
    blocks: u64,
    inline: Option<(Vec<u8>, bool)>,
    fragment: Option<u64>,
}

impl ZFile {
    fn whole_fragment(&self) -> bool {
        self.fragment.is_some() && self.extents.len() == 1
    }
}

/// The compressor settings of a build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ZKey {
    alg: ErofsAlgorithm,
    level: u32,
    dict: u32,
}

thread_local! {
    static FITTER: RefCell<Option<(ZKey, Fitter)>> = const { RefCell::new(None) };
}

fn with_fitter<T>(key: ZKey, f: impl FnOnce(&mut Fitter) -> T) -> T {
    FITTER.with(|slot| {
        let mut slot = slot.borrow_mut();
        if slot.as_ref().is_none_or(|(k, _)| *k != key) {
            *slot = Some((key, Fitter::new(key.alg, key.level, key.dict)));
        }
        match slot.as_mut() {
            Some((_, fitter)) => f(fitter),
            None => f(&mut Fitter::new(key.alg, key.level, key.dict)),
        }
    })
}

fn dict_size(alg: ErofsAlgorithm, pcluster: u32) -> u32 {
    match alg {
        ErofsAlgorithm::Lzma => (pcluster.saturating_mul(4)).clamp(32 << 10, 8 << 20),
        ErofsAlgorithm::Zstd => {
            let d = (pcluster.saturating_mul(8)).min(1 << 20);
            1 << (31 - d.leading_zeros())
        }
        ErofsAlgorithm::Deflate => 1 << 15,
        ErofsAlgorithm::Lz4 | ErofsAlgorithm::Lz4hc => 65535,
    }
}

/// Bytes of the inode with its xattrs: where the map header starts, rounded to 8.
fn map_at(ino_isize: u64, xattrs: u64) -> u64 {
    (ino_isize + xattrs).next_multiple_of(8)
}

/// The bytes after inode and xattrs of a compressed file, and its layout.
fn zmeta(
    z: &ZFile,
    isize_xattrs: (u64, u64),
    size: u64,
    opts: &ErofsWriteOptions,
    advise_base: u16,
    alg: u8,
) -> Result<(Vec<u8>, u8)> {
    let (isize, xsize) = isize_xattrs;
    let at = map_at(isize, xsize);
    let mut out = vec![0u8; (at - isize - xsize) as usize];
    if let (true, Some(off)) = (z.whole_fragment(), z.fragment) {
        out.extend_from_slice(&whole_fragment_header(off));
        out.extend_from_slice(&[0u8; 8]);
        return Ok((out, COMPRESSED_FULL));
    }
    let mut advise = advise_base | ADVISE_COMPACTED_2B;
    let mut idata = 0u16;
    if let Some((bytes, _)) = &z.inline {
        advise |= ADVISE_INLINE_PCLUSTER;
        idata = bytes.len() as u16;
    }
    let fragmentoff = match z.fragment {
        Some(off) => {
            advise |= ADVISE_FRAGMENT_PCLUSTER;
            Some(
                u32::try_from(off)
                    .map_err(|_| limit("EROFS packed inode (32-bit h_fragmentoff)"))?,
            )
        }
        None => None,
    };
    let big = opts.pcluster() > opts.block_size;
    let bbits = opts.block_size.trailing_zeros();
    out.extend_from_slice(&map_header(advise, alg, 0, idata, fragmentoff));
    let mpos = at + 8;
    let idx = compact_indexes(&z.extents, bbits, big, mpos, true, z.start);
    debug_assert_eq!(
        idx.len() as u64,
        compact_len(lcluster_count(size, bbits), mpos, true)
    );
    out.extend_from_slice(&idx);
    if let Some((bytes, _)) = &z.inline {
        out.extend_from_slice(bytes);
    }
    Ok((out, COMPRESSED_COMPACT))
}

/// Length of [`zmeta`]'s output (for the inline decision before the data is placed).
fn zmeta_len(isize: u64, xsize: u64, size: u64, bbits: u32, idata: u64) -> u64 {
    let at = map_at(isize, xsize);
    at - isize - xsize + 8 + compact_len(lcluster_count(size, bbits), at + 8, true) + idata
}

pub(super) fn emit<W: Write + Seek>(
    mut plan: Plan<'_>,
    opts: &ErofsWriteOptions,
    w: &mut W,
    mut progress: Option<&mut ProgressFn>,
) -> Result<ErofsBuildReport> {
    let blksz = plan.blksz;
    let bbits = opts.block_size.trailing_zeros();
    let zkey = opts.compression.map(|c| ZKey {
        alg: c.algorithm,
        level: c.level(),
        dict: dict_size(c.algorithm, opts.pcluster()),
    });
    let zcfg = ZConfig {
        blksz: opts.block_size,
        pcluster: opts.pcluster(),
        ztailpacking: opts.ztailpacking,
        fragments: opts.fragments,
    };
    let big = opts.pcluster() > opts.block_size;
    let advise_base = if big {
        ADVISE_BIG_PCLUSTER_1 | ADVISE_BIG_PCLUSTER_2
    } else {
        0
    };
    let alg_id = zkey.map_or(0, |k| k.alg.id());
    let total: u64 = plan
        .inodes
        .iter()
        .filter(|i| i.entry.file_type == FileType::File)
        .map(|i| i.size)
        .sum();
    let pool = match opts.threads {
        Some(n) => Some(
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .map_err(|_| Error::InvalidOption {
                    option: "threads",
                    reason: "cannot start the worker threads",
                })?,
        ),
        None => None,
    };
    let threads = pool
        .as_ref()
        .map_or_else(rayon::current_num_threads, |p| p.current_num_threads());
    let batch_bytes = (threads * 2).clamp(2, 16) * SEGMENT;

    let base = w.stream_position().map_err(write_err)?;
    w.seek(SeekFrom::Start(base + blksz)).map_err(write_err)?;
    let mut out = Seq {
        w,
        pos: blksz,
        buf: Vec::new(),
    };
    let mut stored: Vec<Stored> = vec![Stored::None; plan.inodes.len()];
    let mut report = ErofsBuildReport::default();
    // Fragments: the packed inode's content, compressed in segments as it grows (in the
    // background, on the same pool), written after every file.
    let mut packed: Vec<u8> = Vec::new();
    let mut packed_len = 0u64;
    let mut packed_pending: Vec<mpsc::Receiver<Result<ZUnit>>> = Vec::new();
    let pcfg = ZConfig {
        fragments: false,
        ztailpacking: false,
        ..zcfg
    };
    let spawn_packed = |seg: Vec<u8>| -> Option<mpsc::Receiver<Result<ZUnit>>> {
        let key = zkey?;
        let (tx, rx) = mpsc::channel();
        let job = move || {
            let r = with_fitter(key, |f| compress_segment(f, &pcfg, &seg, false));
            let _ = tx.send(r);
        };
        match &pool {
            Some(p) => p.spawn(job),
            None => rayon::spawn(job),
        }
        Some(rx)
    };
    let mut seen: HashMap<(u128, u64), usize> = HashMap::new();
    let mut done_bytes = 0u64;

    let compressible = |ino: &Inode<'_>| zkey.is_some() && ino.reserve.is_none();
    let inodes = &plan.inodes;
    let files: Vec<usize> = inodes
        .iter()
        .enumerate()
        .filter(|(_, i)| i.entry.file_type == FileType::File && (i.size > 0 || i.reserve.is_some()))
        .map(|(n, _)| n)
        .collect();

    std::thread::scope(|s| -> Result<()> {
        let (tx, rx) = mpsc::sync_channel::<Result<Vec<Job>>>(1);
        let files = &files;
        s.spawn(move || {
            let mut batch = Vec::new();
            let mut bytes = 0usize;
            for &n in files {
                let Some(ino) = inodes.get(n) else { continue };
                let mut r = match ino.content.open() {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = tx.send(Err(read_err(ino, e)));
                        return;
                    }
                };
                let mut left = ino.size;
                let mut first = true;
                loop {
                    let len = left.min(SEGMENT as u64) as usize;
                    let mut src = vec![0u8; len];
                    if let Err(e) = r.read_exact(&mut src) {
                        let err = if e.kind() == io::ErrorKind::UnexpectedEof {
                            bad(ino, "content is shorter than the entry's size")
                        } else {
                            read_err(ino, e)
                        };
                        let _ = tx.send(Err(err));
                        return;
                    }
                    left -= len as u64;
                    let last = left == 0;
                    if last {
                        let mut one = [0u8; 1];
                        match r.read(&mut one) {
                            Ok(0) => {}
                            Ok(_) => {
                                let _ = tx
                                    .send(Err(bad(ino, "content is longer than the entry's size")));
                                return;
                            }
                            Err(e) => {
                                let _ = tx.send(Err(read_err(ino, e)));
                                return;
                            }
                        }
                    }
                    bytes += len;
                    batch.push(Job {
                        ino: n,
                        first,
                        last,
                        src,
                    });
                    first = false;
                    if bytes >= batch_bytes || batch.len() >= BATCH_JOBS {
                        if tx.send(Ok(std::mem::take(&mut batch))).is_err() {
                            return;
                        }
                        bytes = 0;
                    }
                    if last {
                        break;
                    }
                }
            }
            if !batch.is_empty() {
                let _ = tx.send(Ok(batch));
            }
        });

        let mut acc: Option<ZFile> = None;
        for batch in rx {
            let batch = batch?;
            let work = |job: Job| -> Result<Done> {
                let ino = inodes.get(job.ino);
                let z = ino.is_some_and(compressible);
                let hash = (opts.dedupe && job.first && job.last)
                    .then(|| xxhash_rust::xxh3::xxh3_128(&job.src));
                let unit = match (z, zkey) {
                    (true, Some(key)) => Some(with_fitter(key, |f| {
                        compress_segment(f, &zcfg, &job.src, job.last)
                    })?),
                    _ => None,
                };
                Ok(Done { job, unit, hash })
            };
            let results: Vec<Result<Done>> = {
                use rayon::prelude::*;
                let run = || batch.into_par_iter().map(work).collect();
                match &pool {
                    Some(p) => p.install(run),
                    None => run(),
                }
            };
            for d in results {
                let d = d?;
                let n = d.job.ino;
                let Some(ino) = inodes.get(n) else { continue };
                done_bytes += d.job.src.len() as u64;
                let head = ino.inode_size() + ino.xattrs.len() as u64;
                // Whole-file dedupe: the same content stored once.
                if let Some(h) = d.hash
                    && let Some(&prev) = seen.get(&(h, ino.size))
                    && let Some(rec) = stored.get(prev).cloned()
                {
                    let fits = match &rec {
                        Stored::Flat { tail, .. } => {
                            tail.is_empty() || head + tail.len() as u64 <= blksz
                        }
                        Stored::Z(z) => z.inline.as_ref().is_none_or(|(b, _)| {
                            head + zmeta_len(
                                ino.inode_size(),
                                ino.xattrs.len() as u64,
                                ino.size,
                                bbits,
                                b.len() as u64,
                            ) <= blksz
                        }),
                        Stored::None => false,
                    };
                    if fits {
                        if matches!(rec, Stored::Z(_)) {
                            report.compressed_files += 1;
                        }
                        if let Some(slot) = stored.get_mut(n) {
                            *slot = rec;
                        }
                        report.deduplicated_files += 1;
                        continue;
                    }
                }
                let mut unit = d.unit;
                // A file of one segment is stored flat when compressing saves nothing.
                if let Some(u) = &unit
                    && d.job.first
                    && d.job.last
                    && u.fragment.is_none()
                {
                    let idata = u.inline.as_ref().map_or(0, |(b, _)| b.len() as u64);
                    let meta = 16 + 8 * lcluster_count(ino.size, bbits);
                    if u.data.len() as u64 + idata + meta >= ino.size {
                        unit = None;
                    }
                }
                match unit {
                    None => {
                        // Flat: full blocks out, the tail inline when it fits.
                        let start = out.block(blksz)?;
                        if d.job.first {
                            let blocks = if ino.reserve.is_some() {
                                0
                            } else {
                                ino.size / blksz
                            };
                            if let Some(slot) = stored.get_mut(n) {
                                *slot = Stored::Flat {
                                    blkaddr: start,
                                    blocks,
                                    tail: Vec::new(),
                                };
                            }
                        }
                        let src = &d.job.src;
                        if !d.job.last {
                            out.push(src)?;
                        } else {
                            let tail_len = (ino.size % blksz) as usize;
                            let inline = ino.reserve.is_none()
                                && tail_len > 0
                                && head + tail_len as u64 <= blksz;
                            let (body, tail) = src.split_at(if inline {
                                src.len() - tail_len
                            } else {
                                src.len()
                            });
                            out.push(body)?;
                            out.pad_block(blksz)?;
                            if let Some(Stored::Flat {
                                blkaddr,
                                blocks,
                                tail: t,
                            }) = stored.get_mut(n)
                            {
                                if let Some(cap) = ino.reserve {
                                    out.pad_to(u64::from(*blkaddr) * blksz + cap)?;
                                    *blocks = cap / blksz;
                                } else {
                                    *blocks = ino.size / blksz + u64::from(!inline && tail_len > 0);
                                }
                                if *blocks == 0 {
                                    *blkaddr = if inline { NULL_ADDR } else { 0 };
                                }
                                *t = tail.to_vec();
                            }
                        }
                    }
                    Some(u) => {
                        let base_blk = out.block(blksz)?;
                        let z = acc.get_or_insert_with(|| ZFile {
                            start: base_blk,
                            ..ZFile::default()
                        });
                        for mut e in u.extents {
                            e.blkaddr = base_blk.saturating_add(e.blkaddr);
                            z.extents.push(e);
                        }
                        out.push(&u.data)?;
                        z.blocks += u.data.len() as u64 / blksz;
                        if let Some(frag) = u.fragment {
                            z.fragment = Some(packed_len);
                            report.fragment_bytes += frag.len() as u64;
                            packed_len += frag.len() as u64;
                            packed.extend_from_slice(&frag);
                            while packed.len() >= SEGMENT {
                                let rest = packed.split_off(SEGMENT);
                                let seg = std::mem::replace(&mut packed, rest);
                                packed_pending.extend(spawn_packed(seg));
                            }
                        }
                        if let Some((bytes, compressed)) = u.inline {
                            let m = zmeta_len(
                                ino.inode_size(),
                                ino.xattrs.len() as u64,
                                ino.size,
                                bbits,
                                bytes.len() as u64,
                            );
                            if ino.inode_size() + ino.xattrs.len() as u64 + m <= blksz {
                                z.inline = Some((bytes, compressed));
                            } else {
                                // Too much metadata to keep it inline: its own block.
                                let mut blk = vec![0u8; blksz as usize];
                                let at = if compressed {
                                    blk.len() - bytes.len()
                                } else {
                                    0
                                };
                                if let Some(dst) = blk.get_mut(at..at + bytes.len()) {
                                    dst.copy_from_slice(&bytes);
                                }
                                out.push(&blk)?;
                                z.blocks += 1;
                            }
                        }
                        if d.job.last {
                            if let (Some(slot), Some(z)) = (stored.get_mut(n), acc.take()) {
                                *slot = Stored::Z(z);
                            }
                            report.compressed_files += 1;
                        }
                    }
                }
                if let Some(h) = d.hash {
                    seen.entry((h, ino.size)).or_insert(n);
                }
            }
            if let Some(f) = progress.as_mut() {
                f(Progress {
                    done: done_bytes,
                    total,
                });
            }
        }
        Ok(())
    })?;

    // The packed inode: every fragment, compressed like a file of its own.
    let mut packed_file: Option<ZFile> = None;
    if packed_len > 0 {
        if !packed.is_empty() {
            packed_pending.extend(spawn_packed(std::mem::take(&mut packed)));
        }
        let mut z = ZFile {
            start: out.block(blksz)?,
            ..ZFile::default()
        };
        for rx in packed_pending.drain(..) {
            let u = rx.recv().map_err(|_| Error::Compress {
                compressor: "packed inode",
                reason: "a compression worker stopped",
            })??;
            let base_blk = out.block(blksz)?;
            for mut e in u.extents {
                e.blkaddr = base_blk.saturating_add(e.blkaddr);
                z.extents.push(e);
            }
            out.push(&u.data)?;
            z.blocks += u.data.len() as u64 / blksz;
        }
        packed_file = Some(z);
    }

    // Shared xattrs.
    out.pad_block(blksz)?;
    let xattr_blkaddr = if plan.shared_xattrs.is_empty() {
        0
    } else {
        let a = out.block(blksz)?;
        out.push(&plan.shared_xattrs)?;
        out.pad_block(blksz)?;
        a
    };

    // The metadata area: layouts, what follows each inode, node ids.
    let meta_blk = out.block(blksz)?;
    let meta_start = u64::from(meta_blk) * blksz;
    let mut extras: Vec<Vec<u8>> = Vec::with_capacity(plan.inodes.len());
    for (n, ino) in plan.inodes.iter_mut().enumerate() {
        let isize = ino.inode_size();
        let xsize = ino.xattrs.len() as u64;
        let extra = match (ino.entry.file_type, stored.get(n)) {
            (
                FileType::File,
                Some(Stored::Flat {
                    blkaddr,
                    blocks,
                    tail,
                }),
            ) => {
                ino.layout = if tail.is_empty() {
                    FLAT_PLAIN
                } else {
                    FLAT_INLINE
                };
                ino.blkaddr = *blkaddr;
                ino.blocks = *blocks;
                ino.inline_len = tail.len() as u64;
                tail.clone()
            }
            (FileType::File, Some(Stored::Z(z))) => {
                let (bytes, layout) =
                    zmeta(z, (isize, xsize), ino.size, opts, advise_base, alg_id)?;
                ino.layout = layout;
                ino.blkaddr = u32::try_from(z.blocks).map_err(|_| limit("EROFS blocks"))?;
                ino.blocks = 0;
                bytes
            }
            (FileType::Dir | FileType::Symlink, _) => {
                Plan::layout(ino, blksz);
                Vec::new()
            }
            _ => Vec::new(),
        };
        extras.push(extra);
    }
    // Directory and symlink tails are inline (filled in once node ids are known).
    let mut at = meta_start;
    for (n, ino) in plan.inodes.iter_mut().enumerate() {
        at = at.next_multiple_of(32);
        let extra_len = match ino.entry.file_type {
            FileType::Dir | FileType::Symlink => ino.inline_len,
            _ => extras.get(n).map_or(0, |e| e.len() as u64),
        };
        let need = ino.inode_size() + ino.xattrs.len() as u64 + extra_len;
        if need <= blksz && at % blksz + need > blksz {
            at = at.next_multiple_of(blksz);
        }
        ino.nid = (at - meta_start) / 32;
        at += need;
    }
    let packed_meta = match &packed_file {
        Some(z) => {
            let size = packed_len;
            let extended = size > u64::from(u32::MAX);
            let isize = if extended { 64 } else { 32 };
            let (bytes, layout) = zmeta(z, (isize, 0), size, opts, advise_base, alg_id)?;
            at = at.next_multiple_of(32);
            let need = isize + bytes.len() as u64;
            if need <= blksz && at % blksz + need > blksz {
                at = at.next_multiple_of(blksz);
            }
            let nid = (at - meta_start) / 32;
            at += need;
            Some((nid, size, extended, bytes, layout, z.blocks))
        }
        None => None,
    };
    let packed_nid = packed_meta.as_ref().map(|p| p.0);
    let meta_end = at;
    if plan
        .inodes
        .first()
        .is_none_or(|r| r.nid > u64::from(u16::MAX))
    {
        return Err(Error::BadEntry {
            path: std::path::PathBuf::new(),
            reason: "root inode beyond nid 65535",
        });
    }
    // Directory and symlink blocks follow the metadata.
    let mut next = meta_end.div_ceil(blksz);
    for ino in plan.inodes.iter_mut() {
        if matches!(ino.entry.file_type, FileType::Dir | FileType::Symlink) {
            if ino.blocks > 0 {
                ino.blkaddr = u32::try_from(next).map_err(|_| limit("EROFS blocks"))?;
                next += ino.blocks;
            } else if ino.layout == FLAT_INLINE {
                ino.blkaddr = NULL_ADDR;
            }
        }
    }
    let blocks = u32::try_from(next).map_err(|_| limit("EROFS blocks (32-bit block count)"))?;

    // Emit the metadata area, then the directory and symlink blocks.
    let mut tails_blocks: Vec<u8> = Vec::new();
    for (n, ino) in plan.inodes.iter().enumerate() {
        out.pad_to(meta_start + ino.nid * 32)?;
        out.push(&header(ino, n).to_bytes())?;
        out.push(&ino.xattrs)?;
        let body: Vec<u8> = match ino.entry.file_type {
            FileType::Dir => {
                let entries: Vec<(&[u8], u64, u8)> = ino
                    .children
                    .iter()
                    .map(|&(name, i, t)| (name, plan.inodes.get(i).map_or(0, |c| c.nid), t))
                    .collect();
                encode_dir(&entries, blksz as usize)
            }
            FileType::Symlink => ino.target.to_vec(),
            _ => Vec::new(),
        };
        if matches!(ino.entry.file_type, FileType::Dir | FileType::Symlink) {
            let split = (ino.size - ino.inline_len) as usize;
            let (blk, tail) = body.split_at(split.min(body.len()));
            out.push(tail)?;
            if ino.blocks > 0 {
                tails_blocks.extend_from_slice(blk);
                tails_blocks.resize(tails_blocks.len().next_multiple_of(blksz as usize), 0);
            }
        } else if let Some(e) = extras.get(n) {
            out.push(e)?;
        }
        report.inodes += 1;
        match ino.entry.file_type {
            FileType::File => {
                report.files += 1;
                report.content_bytes += ino.size;
            }
            FileType::Dir => report.dirs += 1,
            _ => {}
        }
        if ino.extended {
            report.extended_inodes += 1;
        } else {
            report.compact_inodes += 1;
        }
        if ino.layout == FLAT_INLINE && ino.inline_len > 0 {
            report.inline_tails += 1;
        }
    }
    if let Some((nid, size, extended, bytes, layout, zblocks)) = &packed_meta {
        out.pad_to(meta_start + nid * 32)?;
        let h = InodeHeader {
            format: u16::from(*extended) | u16::from(*layout) << 1,
            xattr_icount: 0,
            mode: 0o100600,
            nlink: 1,
            size: *size,
            u: u32::try_from(*zblocks).map_err(|_| limit("EROFS blocks"))?,
            ino: plan.inodes.len() as u32,
            uid: 0,
            gid: 0,
            mtime: extended.then_some((opts.epoch, 0)),
        };
        out.push(&h.to_bytes())?;
        out.push(bytes)?;
    }
    out.pad_to(meta_end)?;
    out.pad_block(blksz)?;
    out.push(&tails_blocks)?;
    out.pad_to(u64::from(blocks) * blksz)?;
    out.flush()?;

    // Reserved slots.
    for (path, _) in &opts.reserve {
        if let Some(ino) = plan.inodes.iter().find(|i| i.entry.path == path.as_slice())
            && let Some(cap) = ino.reserve
        {
            report.slots.push(ErofsReservedSlot {
                path: String::from_utf8_lossy(path).into_owned(),
                offset: u64::from(ino.blkaddr) * blksz,
                capacity: cap,
                size: ino.size,
                size_offset: meta_start + ino.nid * 32 + 8,
                size_encoding: if ino.extended { "le64" } else { "le32" },
            });
        }
    }

    // Block 0: the superblock, the compression configurations after it.
    let mut feature_incompat = 0;
    let mut u1 = 0u16;
    let mut cfgs: Vec<u8> = Vec::new();
    if let Some(key) = zkey {
        feature_incompat |= INCOMPAT_ZERO_PADDING;
        if key.alg.id() != 0 || big {
            feature_incompat |= INCOMPAT_COMPR_CFGS;
            u1 = 1 << key.alg.id();
            let mut c = Vec::new();
            match key.alg {
                ErofsAlgorithm::Lz4 | ErofsAlgorithm::Lz4hc => {
                    c.extend_from_slice(&14u16.to_le_bytes());
                    c.extend_from_slice(&65535u16.to_le_bytes());
                    c.extend_from_slice(
                        &((opts.pcluster() / opts.block_size) as u16).to_le_bytes(),
                    );
                    c.resize(16, 0);
                }
                ErofsAlgorithm::Lzma => {
                    c.extend_from_slice(&14u16.to_le_bytes());
                    c.extend_from_slice(&key.dict.to_le_bytes());
                    c.resize(16, 0);
                }
                ErofsAlgorithm::Deflate => {
                    c.extend_from_slice(&6u16.to_le_bytes());
                    c.push(key.dict.trailing_zeros() as u8);
                    c.resize(8, 0);
                }
                ErofsAlgorithm::Zstd => {
                    c.extend_from_slice(&6u16.to_le_bytes());
                    c.push(0);
                    c.push((key.dict.trailing_zeros() - 10) as u8);
                    c.resize(8, 0);
                }
            }
            cfgs = c;
        } else {
            u1 = 65535;
        }
        if plan
            .inodes
            .iter()
            .zip(&stored)
            .any(|(_, s)| matches!(s, Stored::Z(z) if z.inline.is_some()))
        {
            feature_incompat |= INCOMPAT_ZTAILPACKING;
        }
        if packed_file.is_some() {
            feature_incompat |= INCOMPAT_FRAGMENTS;
        }
    }
    let root_nid = plan.inodes.first().map_or(0, |r| r.nid);
    let mut volume_name = [0u8; 16];
    if let Some(dst) = volume_name.get_mut(..opts.volume_name.len()) {
        dst.copy_from_slice(&opts.volume_name);
    }
    let sb = ErofsSuperBlock {
        checksum: 0,
        feature_compat: FEATURE_COMPAT_SB_CHKSUM | FEATURE_COMPAT_MTIME,
        blkszbits: bbits as u8,
        sb_extslots: 0,
        root_nid: root_nid as u16,
        inos: plan.inodes.len() as u64 + u64::from(packed_file.is_some()),
        build_time: opts.epoch,
        build_time_nsec: 0,
        blocks,
        meta_blkaddr: meta_blk,
        xattr_blkaddr,
        uuid: opts.uuid,
        volume_name,
        feature_incompat,
        available_compr_algs: u1,
        extra_devices: 0,
        devt_slotoff: 0,
        dirblkbits: 0,
        xattr_prefix_count: 0,
        xattr_prefix_start: 0,
        packed_nid: packed_nid.unwrap_or(0),
        xattr_filter_reserved: 0,
    };
    let mut block0 = vec![0u8; blksz as usize];
    let at = EROFS_SUPERBLOCK_OFFSET as usize;
    let sbb = sb.to_bytes();
    if let Some(dst) = block0.get_mut(at..at + ErofsSuperBlock::SIZE) {
        dst.copy_from_slice(&sbb);
    }
    let cat = at + ErofsSuperBlock::SIZE;
    if let Some(dst) = block0.get_mut(cat..cat + cfgs.len()) {
        dst.copy_from_slice(&cfgs);
    }
    let crc = superblock_checksum(block0.get(at..).unwrap_or_default());
    if let Some(dst) = block0.get_mut(at + 4..at + 8) {
        dst.copy_from_slice(&crc.to_le_bytes());
    }
    out.w.seek(SeekFrom::Start(base)).map_err(write_err)?;
    out.w.write_all(&block0).map_err(write_err)?;
    out.w
        .seek(SeekFrom::Start(base + u64::from(blocks) * blksz))
        .map_err(write_err)?;
    out.w.flush().map_err(write_err)?;

    if let Some(f) = progress.as_mut() {
        f(Progress { done: total, total });
    }
    report.meta_blocks = meta_end.div_ceil(blksz) - u64::from(meta_blk);
    report.data_blocks = u64::from(meta_blk);
    report.shared_xattrs = plan.shared_xattr_count as u64;
    report.blocks = blocks;
    report.image_size = u64::from(blocks) * blksz;
    report.root_nid = root_nid;
    Ok(report)
}
