//! The data-first layout, for compressed images and images with reserved slots: file data is
//! streamed out first, in inode order, while later files are read and compressed ahead in
//! bounded batches; only each file's extent records stay in memory. Then come the shared
//! xattrs, the metadata area (`meta_blkaddr`: inodes with their indexes and inline tails, the
//! root first so its nid fits 16 bits), the directory and symlink blocks, and last block 0
//! (the superblock and the compression configurations).
//!
//! Files are cut into 16 MiB segments (as mkfs.erofs does when it compresses in parallel);
//! each segment is compressed on its own by a worker of the build's own rayon pool, and
//! segments are written in file order, so the bytes do not depend on the number of threads.
//! The packed inode (fragments) is compressed in segments too, each written between two
//! files at a point fixed by the fragments' order. With fragments or dedupe, a pcluster whose
//! stored bytes equal one already written points at it (the file then takes full indexes).

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::mpsc;

use imgpipe_fstree::{Content, FileType};

use super::emit::header;
use super::fitblk::{ErofsAlgorithm, Fitter};
use super::plan::{Inode, Plan, image_blocks};
use super::zdata::{ZConfig, ZUnit, compress_segment};
use super::zindex::{
    ADVISE_BIG_PCLUSTER_1, ADVISE_BIG_PCLUSTER_2, ADVISE_COMPACTED_2B, ADVISE_FRAGMENT_PCLUSTER,
    ADVISE_INLINE_PCLUSTER, ZExtent, compact_form, compact_indexes, compact_len, full_indexes,
    full_len, lcluster_count, map_header, whole_fragment_header,
};
use super::{ErofsBuildReport, ErofsReservedSlot, ErofsWriteOptions};
use crate::erofs::raw::{
    COMPRESSED_COMPACT, COMPRESSED_FULL, EROFS_SUPERBLOCK_OFFSET, ErofsSuperBlock,
    FEATURE_COMPAT_MTIME, FEATURE_COMPAT_SB_CHKSUM, FLAT_INLINE, FLAT_PLAIN, InodeHeader,
    NULL_ADDR, encode_dir, superblock_checksum,
};
use crate::error::{Error, Result};
use crate::write::{Progress, ProgressFn};

/// What a job costs in the content budget at least.
const JOB_OVERHEAD: usize = 16 << 10;
/// Segment size: files are compressed in pieces of this size.
const SEGMENT: usize = 16 << 20;

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
        self.pos += b.len() as u64;
        if self.buf.len() + b.len() < 4 << 20 {
            self.buf.extend_from_slice(b);
            return Ok(());
        }
        // Large pieces go out directly, not through the buffer.
        self.flush()?;
        self.w.write_all(b).map_err(write_err)
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
    /// Its length in bytes (`src` is emptied once the piece is compressed).
    len: usize,
    src: Vec<u8>,
}

struct Done {
    job: Job,
    unit: Option<ZUnit>,
    /// The content's digest (whole-file dedupe).
    hash: Option<Digest>,
    /// The digest of each extent's stored bytes (on-disk ones), and of the fragment.
    extent_digests: Vec<Option<Digest>>,
    fragment_digest: Option<Digest>,
}

/// What dedupe compares: SHA-256, so crafted content cannot make two different pieces
/// look equal (one file's bytes would stand in for another's).
type Digest = [u8; 32];

fn digest(b: &[u8]) -> Digest {
    use sha2::Digest as _;
    sha2::Sha256::digest(b).into()
}

/// The tail of a flat file kept inline after its inode.
#[derive(Debug, Clone, Default)]
enum Tail {
    /// None.
    #[default]
    None,
    /// The last `len` bytes of inode `ino`'s content, read again when the metadata is
    /// written (so tails are not held for the whole build).
    Source { ino: usize, len: usize },
    /// The bytes (content that cannot be read again cheaply: a decoded stream).
    Held(Vec<u8>),
}

impl Tail {
    fn len(&self) -> usize {
        match self {
            Self::None => 0,
            Self::Source { len, .. } => *len,
            Self::Held(b) => b.len(),
        }
    }
}

/// Where a file's data went.
#[derive(Debug, Clone, Default)]
enum Stored {
    #[default]
    None,
    Flat {
        blkaddr: u32,
        blocks: u64,
        tail: Tail,
    },
    Z(ZFile),
}

/// Bytes of file content between being read and being written: the reader waits while
/// the budget is spent, so memory stays bounded whatever the tree's size.
struct Budget {
    cap: usize,
    state: std::sync::Mutex<(usize, bool)>,
    cv: std::sync::Condvar,
}

impl Budget {
    fn new(cap: usize) -> Self {
        Self {
            cap,
            state: std::sync::Mutex::new((0, false)),
            cv: std::sync::Condvar::new(),
        }
    }

    /// Takes `n` bytes (alone when more than the budget); false once closed.
    fn acquire(&self, n: usize) -> bool {
        let Ok(mut g) = self.state.lock() else {
            return false;
        };
        loop {
            if g.1 {
                return false;
            }
            if g.0 == 0 || g.0 + n <= self.cap {
                g.0 += n;
                return true;
            }
            g = match self.cv.wait(g) {
                Ok(g) => g,
                Err(_) => return false,
            };
        }
    }

    fn release(&self, n: usize) {
        if let Ok(mut g) = self.state.lock() {
            g.0 = g.0.saturating_sub(n);
            self.cv.notify_all();
        }
    }

    fn close(&self) {
        if let Ok(mut g) = self.state.lock() {
            g.1 = true;
            self.cv.notify_all();
        }
    }
}

/// Closes the budget when the writing side stops, so a waiting reader stops too.
struct CloseOnDrop<'a>(&'a Budget);

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// The last `len` bytes of `ino`'s content, read again.
fn read_tail(ino: &Inode<'_>, len: usize) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let at = ino.size.saturating_sub(len as u64);
    let r = match ino.content {
        Content::Bytes(b) => {
            let src = usize::try_from(at)
                .ok()
                .and_then(|a| b.get(a..a.checked_add(len)?));
            match src {
                Some(s) => {
                    buf.copy_from_slice(s);
                    Ok(())
                }
                None => Err(io::ErrorKind::UnexpectedEof.into()),
            }
        }
        Content::Host(p) => std::fs::File::open(p)
            .and_then(|f| imgpipe_fstree::ReadAt::read_exact_at(&f, &mut buf, at)),
        Content::Range {
            source,
            offset,
            len: clen,
        } => {
            if at + len as u64 > *clen {
                Err(io::ErrorKind::UnexpectedEof.into())
            } else {
                source.read_exact_at(&mut buf, offset + at)
            }
        }
        _ => Err(io::ErrorKind::Unsupported.into()),
    };
    r.map_err(|e| read_err(ino, e))?;
    Ok(buf)
}

/// Inodes whose tails are read again together.
const TAIL_CHUNK: usize = 1024;

/// The tails to read again of the inodes `chunk`, read in parallel.
fn read_tails(
    chunk: &[usize],
    extras: &[(Vec<u8>, Tail)],
    inodes: &[Inode<'_>],
    pool: &rayon::ThreadPool,
) -> Result<HashMap<usize, Vec<u8>>> {
    use rayon::prelude::*;
    let want: Vec<(usize, usize, usize)> = chunk
        .iter()
        .filter_map(|&n| match extras.get(n) {
            Some((_, Tail::Source { ino, len })) => Some((n, *ino, *len)),
            _ => None,
        })
        .collect();
    if want.is_empty() {
        return Ok(HashMap::new());
    }
    let run = || {
        want.par_iter()
            .map(|&(n, src, len)| match inodes.get(src) {
                Some(ino) => read_tail(ino, len).map(|b| (n, b)),
                None => Err(Error::LimitExceeded {
                    what: "EROFS inode index",
                    limit: inodes.len() as u64,
                }),
            })
            .collect::<Result<HashMap<_, _>>>()
    };
    pool.install(run)
}

/// Whether a tail of `ino` can be read again cheaply at metadata time.
fn rereadable(ino: &Inode<'_>) -> bool {
    matches!(
        ino.content,
        Content::Bytes(_) | Content::Host(_) | Content::Range { .. }
    )
}

#[derive(Debug, Clone, Default)]
struct ZFile {
    extents: Vec<ZExtent>,
    start: u32,
    blocks: u64,
    inline: Option<(Vec<u8>, bool)>,
    fragment: Option<u64>,
    /// Some pcluster is shared with an earlier file: full indexes (compact ones derive
    /// addresses from their neighbours').
    full: bool,
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

/// The packed inode as placed: nid, size, extended, bytes after the inode, layout, blocks.
type PackedMeta = Option<(u64, u64, bool, Vec<u8>, u8, u64)>;

fn write_packed<W: Write + Seek>(
    out: &mut Seq<'_, W>,
    meta_start: u64,
    packed: &PackedMeta,
    ino: usize,
    opts: &ErofsWriteOptions,
) -> Result<()> {
    let Some((nid, size, extended, bytes, layout, zblocks)) = packed else {
        return Ok(());
    };
    out.pad_to(meta_start + nid * 32)?;
    let h = InodeHeader {
        format: u16::from(*extended) | u16::from(*layout) << 1,
        xattr_icount: 0,
        mode: 0o100600,
        nlink: 1,
        size: *size,
        u: u32::try_from(*zblocks).map_err(|_| limit("EROFS blocks"))?,
        ino: ino as u32,
        uid: 0,
        gid: 0,
        mtime: extended.then_some((opts.epoch, 0)),
    };
    out.push(&h.to_bytes())?;
    out.push(bytes)
}

/// Places metadata items: one that fits a block goes into the open block with the least
/// room that holds it (never across a block end), else at the start of a new block.
struct MetaAlloc {
    blksz: u64,
    /// Bytes used from the start of the metadata area (whole blocks).
    end: u64,
    /// Open blocks by (room left, block).
    open: std::collections::BTreeSet<(u64, u64)>,
}

impl MetaAlloc {
    fn new(blksz: u64) -> Self {
        Self {
            blksz,
            end: 0,
            open: std::collections::BTreeSet::new(),
        }
    }

    /// Offset (32-aligned, from the area start) for `need` bytes.
    fn alloc(&mut self, need: u64) -> u64 {
        let b = self.blksz;
        if need <= b
            && let Some(&(room, blk)) = self.open.range((need, 0)..).next()
        {
            self.open.remove(&(room, blk));
            let at = blk * b + (b - room);
            let left = room - need.next_multiple_of(32).min(room);
            if left >= 32 {
                self.open.insert((left, blk));
            }
            return at;
        }
        let at = self.end;
        let blocks = need.div_ceil(b).max(1);
        self.end += blocks * b;
        let used = (need - (blocks - 1) * b).next_multiple_of(32);
        if used < b {
            self.open.insert((b - used, at / b + blocks - 1));
        }
        at
    }
}

/// Waits for a background compression (on the build's own pool, which the writer is not
/// part of).
fn wait<T>(rx: &mpsc::Receiver<Result<T>>) -> Result<T> {
    rx.recv().unwrap_or_else(|_| {
        Err(Error::Compress {
            compressor: "erofs",
            reason: "a compression worker stopped",
        })
    })
}

/// Writes one compressed segment of the packed inode at the current block.
fn place_packed<W: Write + Seek>(
    out: &mut Seq<'_, W>,
    packed: &mut Option<ZFile>,
    u: ZUnit,
    blksz: u64,
) -> Result<()> {
    let base_blk = out.block(blksz)?;
    let z = packed.get_or_insert_with(|| ZFile {
        start: base_blk,
        ..ZFile::default()
    });
    for mut e in u.extents {
        e.blkaddr = base_blk.saturating_add(e.blkaddr);
        z.extents.push(e);
    }
    out.push(&u.data)?;
    z.blocks += u.data.len() as u64 / blksz;
    Ok(())
}

/// The logical clusters before the packed inode's first sixteen-entry index pack (its map
/// header always ends 8 bytes past a 32-byte boundary): its first segment is longer by
/// these, so that every later segment starts a pack of its own. Four-byte packs alone
/// (8 and 16 KiB blocks) start at every even cluster: none.
fn packed_lead(bbits: u32) -> u64 {
    match compact_form(bbits) {
        Some(true) => super::zindex::compact_split(u64::MAX / 2, map_at(32, 0) + 8, true).0,
        _ => 0,
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
    let mut idata = 0u16;
    let mut advise = 0u16;
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
    let mpos = at + 8;
    let two_byte = compact_form(bbits).filter(|_| !z.full);
    let compact =
        two_byte.and_then(|two| compact_indexes(&z.extents, bbits, big, mpos, two, z.start));
    let layout = match (compact, two_byte) {
        (Some(idx), Some(two)) => {
            debug_assert_eq!(
                idx.len() as u64,
                compact_len(lcluster_count(size, bbits), mpos, two)
            );
            advise |= advise_base;
            if two {
                advise |= ADVISE_COMPACTED_2B;
            }
            out.extend_from_slice(&map_header(advise, alg, 0, idata, fragmentoff));
            out.extend_from_slice(&idx);
            COMPRESSED_COMPACT
        }
        _ => {
            // Full indexes say big pclusters with the first advise bit alone (as
            // mkfs.erofs writes them), after 8 reserved bytes.
            advise |= advise_base & ADVISE_BIG_PCLUSTER_1;
            out.extend_from_slice(&map_header(advise, alg, 0, idata, fragmentoff));
            out.extend_from_slice(&[0u8; 8]);
            let idx = full_indexes(&z.extents, bbits, big);
            debug_assert_eq!(idx.len() as u64, full_len(lcluster_count(size, bbits)));
            out.extend_from_slice(&idx);
            COMPRESSED_FULL
        }
    };
    if let Some((bytes, _)) = &z.inline {
        out.extend_from_slice(bytes);
    }
    Ok((out, layout))
}

/// Length of [`zmeta`]'s output (for the inline decision before the data is placed), with
/// compact or (`full`) full indexes.
fn zmeta_len(isize: u64, xsize: u64, size: u64, bbits: u32, idata: u64, full: bool) -> u64 {
    let at = map_at(isize, xsize);
    let n = lcluster_count(size, bbits);
    let idx = match compact_form(bbits) {
        Some(two_byte) if !full => compact_len(n, at + 8, two_byte),
        _ => 8 + full_len(n),
    };
    at - isize - xsize + 8 + idx + idata
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
        early_abort: opts.compression.is_some_and(|c| c.probes_first()),
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
    // The build's own pool: as many threads as asked, else as the pool the build runs in
    // (rayon's global one outside any). Every job goes to it, the reader thread's too (a
    // bare `rayon::spawn` from that thread would reach the global pool whatever was asked).
    let threads = opts
        .threads
        .unwrap_or_else(rayon::current_num_threads)
        .max(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|_| Error::InvalidOption {
            option: "threads",
            reason: "cannot start the worker threads",
        })?;

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
    // background, on the same pool). Each segment is written among the files' data once
    // the next one is queued (holding them all until the end was the largest thing in
    // memory); each starts a compact index pack, which says the jump to its blocks.
    let mut packed: Vec<u8> = Vec::new();
    let mut packed_len = 0u64;
    let mut packed_pending: std::collections::VecDeque<mpsc::Receiver<Result<ZUnit>>> =
        std::collections::VecDeque::new();
    let mut packed_file: Option<ZFile> = None;
    let mut packed_target = SEGMENT + packed_lead(bbits) as usize * blksz as usize;
    let pcfg = ZConfig {
        fragments: false,
        ztailpacking: false,
        ..zcfg
    };
    let dedupe = opts.dedupe;
    // Pclusters whose stored bytes equal an earlier one's are shared (as mkfs.erofs 1.8
    // does with fragments or dedupe on): files that differ only near their ends.
    let dedupe_extents = opts.dedupe || opts.fragments;
    let spawn_job = |mut job: Job, z: bool, size: u64| -> mpsc::Receiver<Result<Done>> {
        // One result: a one-slot channel (an unbounded one allocates a block of slots).
        let (tx, rx) = mpsc::sync_channel(1);
        let run = move || {
            let hash = (dedupe && job.first && job.last).then(|| digest(&job.src));
            let mut unit = match (z, zkey) {
                (true, Some(key)) => {
                    with_fitter(key, |f| compress_segment(f, &zcfg, &job.src, job.last)).map(Some)
                }
                _ => Ok(None),
            };
            // A file of one segment is stored flat when compressing saves nothing.
            if let Ok(Some(u)) = &unit
                && job.first
                && job.last
                && u.fragment.is_none()
            {
                let idata = u.inline.as_ref().map_or(0, |(b, _)| b.len() as u64);
                let meta = 16 + 8 * lcluster_count(size, bbits);
                if u.data.len() as u64 + idata + meta >= size {
                    unit = Ok(None);
                }
            }
            // Compressed: the source is not needed any more.
            if let Ok(Some(_)) = &unit {
                job.src = Vec::new();
            }
            let (mut extent_digests, mut fragment_digest) = (Vec::new(), None);
            if let Ok(Some(u)) = &unit {
                if dedupe_extents {
                    extent_digests = u
                        .extents
                        .iter()
                        .map(|e| {
                            let at = e.blkaddr as usize * blksz as usize;
                            e.on_disk
                                .then(|| u.data.get(at..at + e.plen as usize).map(digest))
                                .flatten()
                        })
                        .collect();
                }
                fragment_digest = u.fragment.as_deref().map(digest);
            }
            let _ = tx.send(unit.map(|unit| Done {
                job,
                unit,
                hash,
                extent_digests,
                fragment_digest,
            }));
        };
        pool.spawn_fifo(run);
        rx
    };
    let spawn_packed = |seg: Vec<u8>| -> Option<mpsc::Receiver<Result<ZUnit>>> {
        let key = zkey?;
        // One result: a one-slot channel (an unbounded one allocates a block of slots).
        let (tx, rx) = mpsc::sync_channel(1);
        let job = move || {
            let r = with_fitter(key, |f| compress_segment(f, &pcfg, &seg, false));
            let _ = tx.send(r);
        };
        pool.spawn_fifo(job);
        Some(rx)
    };
    let mut seen: HashMap<(Digest, u64), usize> = HashMap::new();
    // Fragments packed so far: (digest, length) to their offset in the packed inode.
    let mut packed_seen: HashMap<(Digest, usize), u64> = HashMap::new();
    // Pclusters written so far: (digest, length, stored raw) to their block.
    let mut extent_seen: HashMap<(Digest, u32, bool), u32> = HashMap::new();
    let mut done_bytes = 0u64;

    let compressible = |ino: &Inode<'_>| zkey.is_some() && ino.reserve.is_none();
    let inodes = &plan.inodes;
    let files: Vec<usize> = inodes
        .iter()
        .enumerate()
        .filter(|(_, i)| i.entry.file_type == FileType::File && (i.size > 0 || i.reserve.is_some()))
        .map(|(n, _)| n)
        .collect();

    // File content in flight (read, queued, being compressed, waiting to be written) is
    // bounded, whatever the tree's size: a segment per worker (their compressed forms come
    // on top), so every worker has a large file's segment of its own while the writer waits
    // for the one before (half that left one of two workers idle: 0.89x mkfs.erofs's wall
    // time against 0.72x, for 25 MiB more at the peak).
    let budget = Budget::new(threads.clamp(1, 16) * SEGMENT);
    std::thread::scope(|s| -> Result<()> {
        let _close = CloseOnDrop(&budget);
        type Pending = (mpsc::Receiver<Result<Done>>, usize);
        let (tx, rx) = mpsc::channel::<Result<Pending>>();
        let files = &files;
        let (budget, spawn_job) = (&budget, &spawn_job);
        // The reader reads each piece once the budget allows and hands it to the pool at
        // once; the writer below takes the results in order.
        s.spawn(move || {
            for &n in files {
                let Some(ino) = inodes.get(n) else { continue };
                let mut r = match ino.content.open() {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = tx.send(Err(read_err(ino, e)));
                        return;
                    }
                };
                let z = compressible(ino);
                let mut left = ino.size;
                let mut first = true;
                loop {
                    let len = left.min(SEGMENT as u64) as usize;
                    // A piece costs its bytes, and at least what a small file's job holds
                    // besides them (its channel, result, compression buffers).
                    let cost = len.max(JOB_OVERHEAD);
                    if !budget.acquire(cost) {
                        return;
                    }
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
                    let job = Job {
                        ino: n,
                        first,
                        last,
                        len,
                        src,
                    };
                    if tx.send(Ok((spawn_job(job, z, ino.size), cost))).is_err() {
                        return;
                    }
                    first = false;
                    if last {
                        break;
                    }
                }
            }
        });

        let mut acc: Option<ZFile> = None;
        let mut reported = 0u64;
        for pending in rx {
            let (rx, cost) = pending?;
            let d = wait(&rx)?;
            budget.release(cost);
            let n = d.job.ino;
            let Some(ino) = inodes.get(n) else { continue };
            done_bytes += d.job.len as u64;
            let head = ino.inode_size() + ino.xattrs.len() as u64;
            // Whole-file dedupe: the same content stored once.
            if let Some(h) = d.hash
                && let Some(&prev) = seen.get(&(h, ino.size))
                && let Some(rec) = stored.get(prev).cloned()
            {
                let fits = match &rec {
                    Stored::Flat { tail, .. } => {
                        tail.len() == 0 || head + tail.len() as u64 <= blksz
                    }
                    Stored::Z(z) => z.inline.as_ref().is_none_or(|(b, _)| {
                        head + zmeta_len(
                            ino.inode_size(),
                            ino.xattrs.len() as u64,
                            ino.size,
                            bbits,
                            b.len() as u64,
                            z.full,
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
            match d.unit {
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
                                tail: Tail::None,
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
                            *t = if tail.is_empty() {
                                Tail::None
                            } else if rereadable(ino) {
                                Tail::Source {
                                    ino: n,
                                    len: tail.len(),
                                }
                            } else {
                                Tail::Held(tail.to_vec())
                            };
                        }
                    }
                }
                Some(u) => {
                    let base_blk = out.block(blksz)?;
                    let z = acc.get_or_insert_with(|| ZFile {
                        start: base_blk,
                        ..ZFile::default()
                    });
                    for (k, mut e) in u.extents.into_iter().enumerate() {
                        if !e.on_disk {
                            // A fragment or inline tail: after this unit's blocks.
                            e.blkaddr = out.block(blksz)?;
                            z.extents.push(e);
                            continue;
                        }
                        let at = e.blkaddr as usize * blksz as usize;
                        let bytes = u.data.get(at..at + e.plen as usize).unwrap_or_default();
                        let key = d
                            .extent_digests
                            .get(k)
                            .copied()
                            .flatten()
                            .map(|h| (h, e.plen, e.raw));
                        if let Some(&blk) = key.as_ref().and_then(|k| extent_seen.get(k)) {
                            e.blkaddr = blk;
                            z.full = true;
                            report.deduplicated_pclusters += 1;
                        } else {
                            e.blkaddr = out.block(blksz)?;
                            out.push(bytes)?;
                            z.blocks += u64::from(e.plen) / blksz;
                            if let Some(key) = key {
                                extent_seen.insert(key, e.blkaddr);
                            }
                        }
                        z.extents.push(e);
                    }
                    if let Some(frag) = u.fragment {
                        // A fragment equal to one already packed points at it (as mkfs.erofs
                        // dedupes fragments): identical small files and tails stored once.
                        let key = (
                            d.fragment_digest.unwrap_or_else(|| digest(&frag)),
                            frag.len(),
                        );
                        if let Some(&at) = packed_seen.get(&key) {
                            z.fragment = Some(at);
                            report.deduplicated_fragments += 1;
                        } else {
                            packed_seen.insert(key, packed_len);
                            z.fragment = Some(packed_len);
                            report.fragment_bytes += frag.len() as u64;
                            packed_len += frag.len() as u64;
                            // Segments end at exact offsets (a fragment may span two).
                            let mut rest: &[u8] = &frag;
                            while !rest.is_empty() {
                                let room = packed_target - packed.len();
                                let (now, later) = rest.split_at(room.min(rest.len()));
                                packed.extend_from_slice(now);
                                rest = later;
                                if packed.len() == packed_target {
                                    let seg = std::mem::take(&mut packed);
                                    packed_pending.extend(spawn_packed(seg));
                                    packed_target = SEGMENT;
                                }
                            }
                        }
                    }
                    if let Some((bytes, compressed)) = u.inline {
                        let m = zmeta_len(
                            ino.inode_size(),
                            ino.xattrs.len() as u64,
                            ino.size,
                            bbits,
                            bytes.len() as u64,
                            z.full,
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
                            if let Some(e) = z.extents.last_mut() {
                                e.blkaddr = out.block(blksz)?;
                                e.on_disk = true;
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
                        // Packed segments go out between files, one compressing while the
                        // one before is written.
                        while packed_pending.len() > 1 {
                            if let Some(rx) = packed_pending.pop_front() {
                                place_packed(&mut out, &mut packed_file, wait(&rx)?, blksz)?;
                            }
                        }
                    }
                }
            }
            if let Some(h) = d.hash {
                seen.entry((h, ino.size)).or_insert(n);
            }
            if let Some(f) = progress.as_mut()
                && done_bytes - reported >= 32 << 20
            {
                reported = done_bytes;
                f(Progress {
                    done: done_bytes,
                    total,
                });
            }
        }
        Ok(())
    })?;

    // The rest of the packed inode: every fragment, compressed like a file of its own.
    if !packed.is_empty() {
        packed_pending.extend(spawn_packed(std::mem::take(&mut packed)));
    }
    for rx in packed_pending.drain(..) {
        place_packed(&mut out, &mut packed_file, wait(&rx)?, blksz)?;
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
    let any_inline = stored
        .iter()
        .any(|s| matches!(s, Stored::Z(z) if z.inline.is_some()));
    // What follows each inode: index bytes, and a flat file's tail (read when written).
    let mut extras: Vec<(Vec<u8>, Tail)> = Vec::with_capacity(plan.inodes.len());
    for (n, ino) in plan.inodes.iter_mut().enumerate() {
        let isize = ino.inode_size();
        let xsize = ino.xattrs.len() as u64;
        let extra = match (ino.entry.file_type, stored.get_mut(n).map(std::mem::take)) {
            (
                FileType::File,
                Some(Stored::Flat {
                    blkaddr,
                    blocks,
                    tail,
                }),
            ) => {
                ino.layout = if tail.len() == 0 {
                    FLAT_PLAIN
                } else {
                    FLAT_INLINE
                };
                ino.blkaddr = blkaddr;
                ino.blocks = blocks;
                ino.inline_len = tail.len() as u64;
                (Vec::new(), tail)
            }
            (FileType::File, Some(Stored::Z(z))) => {
                let (bytes, layout) =
                    zmeta(&z, (isize, xsize), ino.size, opts, advise_base, alg_id)?;
                ino.layout = layout;
                ino.blkaddr = u32::try_from(z.blocks).map_err(|_| limit("EROFS blocks"))?;
                ino.blocks = 0;
                (bytes, Tail::None)
            }
            (FileType::Dir | FileType::Symlink, _) => {
                Plan::layout(ino, blksz);
                (Vec::new(), Tail::None)
            }
            _ => (Vec::new(), Tail::None),
        };
        extras.push(extra);
    }
    // Node ids: each inode (with its xattrs and inline bytes) in the fullest metadata block
    // it fits in without crossing a block end, else in a new block.
    let mut alloc = MetaAlloc::new(blksz);
    for (n, ino) in plan.inodes.iter_mut().enumerate() {
        let extra_len = match ino.entry.file_type {
            FileType::Dir | FileType::Symlink => ino.inline_len,
            _ => extras.get(n).map_or(0, |(b, t)| (b.len() + t.len()) as u64),
        };
        let need = ino.inode_size() + ino.xattrs.len() as u64 + extra_len;
        ino.nid = alloc.alloc(need) / 32;
    }
    let packed_meta = match &packed_file {
        Some(z) => {
            let size = packed_len;
            let extended = size > u64::from(u32::MAX);
            let isize = if extended { 64 } else { 32 };
            let (bytes, layout) = zmeta(z, (isize, 0), size, opts, advise_base, alg_id)?;
            let nid = alloc.alloc(isize + bytes.len() as u64) / 32;
            Some((nid, size, extended, bytes, layout, z.blocks))
        }
        None => None,
    };
    let packed_nid = packed_meta.as_ref().map(|p| p.0);
    let meta_end = meta_start + alloc.end;
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
    let blocks = u32::try_from(image_blocks(meta_end, next, blksz))
        .map_err(|_| limit("EROFS blocks (32-bit block count)"))?;

    // Emit the metadata area, then the directory and symlink blocks.
    let mut dir_blocks: Vec<(u32, Vec<u8>)> = Vec::new();
    let mut order: Vec<usize> = (0..plan.inodes.len()).collect();
    order.sort_by_key(|&n| plan.inodes.get(n).map_or(0, |i| i.nid));
    let packed_at = packed_meta.as_ref().map_or(u64::MAX, |p| p.0);
    let mut packed_done = false;
    // Tails are read again a chunk of inodes at a time, in parallel.
    let mut tails: HashMap<usize, Vec<u8>> = HashMap::new();
    for (k, &n) in order.iter().enumerate() {
        if k % TAIL_CHUNK == 0 {
            let chunk = order
                .get(k..order.len().min(k + TAIL_CHUNK))
                .unwrap_or_default();
            tails = read_tails(chunk, &extras, &plan.inodes, &pool)?;
        }
        let Some(ino) = plan.inodes.get(n) else {
            continue;
        };
        if !packed_done && packed_at < ino.nid {
            write_packed(&mut out, meta_start, &packed_meta, plan.inodes.len(), opts)?;
            packed_done = true;
        }
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
                dir_blocks.push((ino.blkaddr, blk.to_vec()));
            }
        } else if let Some((e, t)) = extras.get(n) {
            out.push(e)?;
            match t {
                Tail::None => {}
                Tail::Held(b) => out.push(b)?,
                Tail::Source { .. } => match tails.get(&n) {
                    Some(b) => out.push(b)?,
                    None => return Err(bad(ino, "tail not read")),
                },
            }
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
    if !packed_done {
        write_packed(&mut out, meta_start, &packed_meta, plan.inodes.len(), opts)?;
    }
    out.pad_to(meta_end)?;
    out.pad_block(blksz)?;
    dir_blocks.sort_by_key(|d| d.0);
    for (blkaddr, data) in dir_blocks {
        out.pad_to(u64::from(blkaddr) * blksz)?;
        out.push(&data)?;
    }
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
        if any_inline {
            feature_incompat |= INCOMPAT_ZTAILPACKING;
        }
        // Shared pclusters set the same bit (`EROFS_FEATURE_INCOMPAT_DEDUPE`).
        if packed_file.is_some() || report.deduplicated_pclusters > 0 {
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
    // `available_compr_algs` doubles as `lz4_max_distance` without COMPR_CFGS (erofs_fs.h).
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
