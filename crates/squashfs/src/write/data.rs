//! The data phase: file contents cut into blocks, tails packed into fragment blocks,
//! duplicates found (size, then hash, then a byte comparison), blocks compressed in parallel
//! batches and written in plan order, so the bytes never depend on the thread count.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use rayon::prelude::*;

use super::tree::Content;
use super::{Progress, ProgressFn, WriteOptions};
use crate::compress;
use crate::error::{Error, Result};
use crate::raw::{FragmentEntry, NO_FRAGMENT, encode_data_block_size};

/// Where one file's content ended up.
#[derive(Debug, Clone, Default)]
pub(crate) struct FileLayout {
    pub(crate) blocks_start: u64,
    pub(crate) sparse: u64,
    pub(crate) block_sizes: Vec<u32>,
    pub(crate) fragment: u32,
    pub(crate) frag_offset: u32,
}

/// One file to store: its content and declared size; `path` for errors.
pub(crate) struct FileJob<'a> {
    pub(crate) content: &'a Content,
    pub(crate) size: u64,
    pub(crate) path: &'a [u8],
}

enum Job {
    Block { file: usize, data: Vec<u8> },
    Frag { data: Vec<u8> },
}

/// A job after compression: only the bytes that will be written are kept.
struct Stored {
    /// The file a block belongs to; `None` for a fragment block.
    file: Option<usize>,
    /// Uncompressed length.
    len: usize,
    form: Form,
}

enum Form {
    Sparse,
    Raw(Vec<u8>),
    Compressed(Vec<u8>),
}

/// Batches bound memory: at most this many content bytes wait for compression.
const BATCH_BYTES: usize = 16 << 20;

pub(crate) struct DataOut {
    pub(crate) layouts: Vec<FileLayout>,
    pub(crate) fragments: Vec<FragmentEntry>,
    pub(crate) duplicates: u64,
    pub(crate) content_bytes: u64,
}

/// Reads, dedups and cuts files into jobs on its own thread, handing batches over a channel.
struct Producer {
    opts: WriteOptions,
    jobs: Vec<Job>,
    pending: usize,
    frag_buf: Vec<u8>,
    frag_count: u32,
    /// (fragment, offset) per file.
    frag_info: Vec<(u32, u32)>,
    /// Duplicate content bytes since the last batch (for progress).
    skipped: u64,
    tx: std::sync::mpsc::SyncSender<(Vec<Job>, u64)>,
}

/// Compresses batches in parallel and writes them in order, recording where blocks went.
struct Sink<'w> {
    out: &'w mut (dyn Write + Send),
    pos: u64,
    layouts: Vec<FileLayout>,
    started: Vec<bool>,
    fragments: Vec<FragmentEntry>,
    progress: Option<ProgressFn>,
    done: u64,
    total: u64,
}

struct Plan {
    frag_info: Vec<(u32, u32)>,
    dup_of: Vec<Option<usize>>,
    duplicates: u64,
    content_bytes: u64,
}

fn open<'a>(content: &'a Content, path: &[u8]) -> Result<Box<dyn Read + 'a>> {
    let err = |source| Error::IoPath {
        what: "opening",
        path: crate::read::lossy_path(path),
        source,
    };
    Ok(match content {
        Content::Bytes(b) => Box::new(&b[..]),
        Content::Host(p) => Box::new(std::fs::File::open(p).map_err(err)?),
        // Ranges of another image and readers' streams.
        _ => content.open().map_err(err)?,
    })
}

fn read_full(r: &mut dyn Read, buf: &mut [u8], job: &FileJob<'_>) -> Result<()> {
    r.read_exact(buf).map_err(|source| shrunk(job, source))
}

fn shrunk(job: &FileJob<'_>, source: std::io::Error) -> Error {
    Error::IoPath {
        what: "reading (did it shrink while building?)",
        path: crate::read::lossy_path(job.path),
        source,
    }
}

/// The next `n` bytes of `r` in a new vector (not zero-filled first: at a gigabyte of content
/// the memset showed up in profiles).
fn read_block(r: &mut dyn Read, n: usize, job: &FileJob<'_>) -> Result<Vec<u8>> {
    let mut data = Vec::with_capacity(n);
    r.take(n as u64)
        .read_to_end(&mut data)
        .map_err(|source| shrunk(job, source))?;
    if data.len() != n {
        return Err(shrunk(job, std::io::ErrorKind::UnexpectedEof.into()));
    }
    Ok(data)
}

fn check_eof(r: &mut dyn Read, job: &FileJob<'_>) -> Result<()> {
    let mut one = [0u8; 1];
    match r.read(&mut one) {
        Ok(0) => Ok(()),
        Ok(_) => Err(Error::BadEntry {
            path: crate::read::lossy_path(job.path),
            reason: "file grew while building the image",
        }),
        Err(source) => Err(Error::IoPath {
            what: "reading",
            path: crate::read::lossy_path(job.path),
            source,
        }),
    }
}

/// Reusable buffers for hashing and comparing candidates (allocated once, not per file).
struct Scratch {
    a: Vec<u8>,
    b: Vec<u8>,
}

const SCRATCH: usize = 1 << 20;

fn hash_content(job: &FileJob<'_>, s: &mut Scratch) -> Result<u64> {
    // xxh3: fixed seed, the same on every run; it only picks candidates, which are then
    // compared byte by byte.
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    let mut r = open(job.content, job.path)?;
    let mut left = job.size;
    while left > 0 {
        let n = left.min(SCRATCH as u64) as usize;
        read_full(&mut r, &mut s.a[..n], job)?;
        h.update(&s.a[..n]);
        left -= n as u64;
    }
    Ok(h.digest())
}

fn same_content(a: &FileJob<'_>, b: &FileJob<'_>, s: &mut Scratch) -> Result<bool> {
    let (mut ra, mut rb) = (open(a.content, a.path)?, open(b.content, b.path)?);
    let mut left = a.size;
    while left > 0 {
        let n = left.min(SCRATCH as u64) as usize;
        read_full(&mut ra, &mut s.a[..n], a)?;
        read_full(&mut rb, &mut s.b[..n], b)?;
        if s.a[..n] != s.b[..n] {
            return Ok(false);
        }
        left -= n as u64;
    }
    Ok(true)
}

/// Writes all file data starting at image position `pos`; returns the layouts (indexed like
/// `files`) and the fragment table. Reading overlaps compression: one thread reads the next
/// batch while the caller's rayon pool compresses the current one; the output order is the
/// plan order, whatever the timing.
pub(crate) fn write_data(
    out: &mut (dyn Write + Send),
    pos: u64,
    opts: WriteOptions,
    files: &[FileJob<'_>],
    progress: Option<ProgressFn>,
) -> Result<(DataOut, u64)> {
    // Three stages overlap: a reader thread cuts files into jobs, the caller's rayon pool
    // compresses a batch, a writer thread writes the previous one. Channels of one batch
    // bound the memory; the writer sees batches in plan order, so timing never shows.
    let (tx, rx) = std::sync::mpsc::sync_channel::<(Vec<Job>, u64)>(1);
    let (ztx, zrx) = std::sync::mpsc::sync_channel::<Compressed>(1);
    let mut sink = Sink {
        out,
        pos,
        layouts: vec![FileLayout::default(); files.len()],
        started: vec![false; files.len()],
        fragments: Vec::new(),
        progress,
        done: 0,
        total: files.iter().map(|f| f.size).sum(),
    };
    let (plan, compressed, sink, written) = std::thread::scope(|s| {
        let producer = s.spawn(move || {
            let mut p = Producer {
                opts,
                jobs: Vec::new(),
                pending: 0,
                frag_buf: Vec::new(),
                frag_count: 0,
                frag_info: vec![(NO_FRAGMENT, 0); files.len()],
                skipped: 0,
                tx,
            };
            p.run(files)
        });
        let writer = s.spawn(move || {
            for c in zrx.iter() {
                if let Err(e) = sink.write_batch(c) {
                    return (sink, Err(e)); // dropping the receiver stops compression
                }
            }
            (sink, Ok(()))
        });
        let mut compressed: Result<()> = Ok(());
        for (jobs, skipped) in rx.iter() {
            let c = match compress_batch(opts, jobs, skipped) {
                Ok(c) => c,
                Err(e) => {
                    compressed = Err(e);
                    break;
                }
            };
            if ztx.send(c).is_err() {
                break; // the writer failed; its error is reported
            }
        }
        drop(rx); // stops the producer if we left early
        drop(ztx);
        let (sink, written) = writer
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        let plan = producer
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (plan, compressed, sink, written)
    });
    written?;
    compressed?;
    let plan = plan?;
    let mut layouts = sink.layouts;
    for (l, &(fragment, frag_offset)) in layouts.iter_mut().zip(&plan.frag_info) {
        l.fragment = fragment;
        l.frag_offset = frag_offset;
    }
    for i in 0..files.len() {
        if let Some(c) = plan.dup_of[i] {
            layouts[i] = layouts[c].clone();
        }
    }
    Ok((
        DataOut {
            layouts,
            fragments: sink.fragments,
            duplicates: plan.duplicates,
            content_bytes: plan.content_bytes,
        },
        sink.pos,
    ))
}

/// A batch in stored form.
struct Compressed {
    stored: Vec<Stored>,
    skipped: u64,
}

fn compress_batch(opts: WriteOptions, jobs: Vec<Job>, skipped: u64) -> Result<Compressed> {
    // One task per block: rayon otherwise runs a quarter of the batch as one sequential
    // piece, and at the end of a batch one thread idled while the other finished its piece
    // (5 % of the cores' time with xz, whose blocks take 0.1 s each).
    let stored = jobs
        .into_par_iter()
        .with_max_len(1)
        .map(|j| {
            let (file, data, may_be_sparse) = match j {
                Job::Block { file, data } => (Some(file), data, opts.sparse),
                Job::Frag { data } => (None, data, false),
            };
            let len = data.len();
            let form = if may_be_sparse && data.iter().all(|&b| b == 0) {
                Form::Sparse
            } else if !opts.compress_data {
                Form::Raw(data)
            } else {
                match compress::compress(opts.compression, opts.block_size, &data)? {
                    Some(z) => Form::Compressed(z),
                    None => Form::Raw(data),
                }
            };
            Ok(Stored { file, len, form })
        })
        .collect::<Result<Vec<Stored>>>()?;
    Ok(Compressed { stored, skipped })
}

/// The consumer went away (it failed; its error is the one reported).
struct Stopped;

impl Producer {
    fn run(&mut self, files: &[FileJob<'_>]) -> Result<Plan> {
        let mut size_count: BTreeMap<u64, u32> = BTreeMap::new();
        if self.opts.dedup {
            for f in files {
                *size_count.entry(f.size).or_default() += 1;
            }
        }
        let mut by_key: BTreeMap<(u64, u64), Vec<usize>> = BTreeMap::new();
        let mut dup_of: Vec<Option<usize>> = vec![None; files.len()];
        let mut duplicates = 0;
        let mut content_bytes = 0;
        let mut scratch = Scratch {
            a: Vec::new(),
            b: Vec::new(),
        };
        let plan = |frag_info, dup_of, duplicates, content_bytes| Plan {
            frag_info,
            dup_of,
            duplicates,
            content_bytes,
        };
        for (i, f) in files.iter().enumerate() {
            content_bytes += f.size;
            if self.opts.dedup && f.size > 0 && size_count.get(&f.size).is_some_and(|&n| n > 1) {
                if scratch.a.is_empty() {
                    scratch.a = vec![0u8; SCRATCH];
                    scratch.b = vec![0u8; SCRATCH];
                }
                let h = hash_content(f, &mut scratch)?;
                let cands = by_key.entry((f.size, h)).or_default();
                let mut found = None;
                for &c in cands.iter() {
                    if same_content(&files[c], f, &mut scratch)? {
                        found = Some(c);
                        break;
                    }
                }
                if let Some(c) = found {
                    dup_of[i] = Some(c);
                    duplicates += 1;
                    self.skipped += f.size;
                    continue;
                }
                cands.push(i);
            }
            if self.add_file(i, f)?.is_err() {
                return Ok(plan(Vec::new(), dup_of, duplicates, content_bytes));
            }
        }
        if !self.frag_buf.is_empty() {
            let data = std::mem::take(&mut self.frag_buf);
            self.jobs.push(Job::Frag { data });
        }
        let _ = self.send();
        Ok(plan(
            std::mem::take(&mut self.frag_info),
            dup_of,
            duplicates,
            content_bytes,
        ))
    }

    fn send(&mut self) -> std::result::Result<(), Stopped> {
        self.pending = 0;
        let jobs = std::mem::take(&mut self.jobs);
        let skipped = std::mem::take(&mut self.skipped);
        if jobs.is_empty() && skipped == 0 {
            return Ok(());
        }
        self.tx.send((jobs, skipped)).map_err(|_| Stopped)
    }

    fn add_file(&mut self, i: usize, f: &FileJob<'_>) -> Result<std::result::Result<(), Stopped>> {
        let bs = u64::from(self.opts.block_size);
        if f.size == 0 {
            return Ok(Ok(()));
        }
        let mut r = open(f.content, f.path)?;
        let full = f.size / bs;
        let tail = f.size % bs;
        let tail_in_fragment =
            tail > 0 && self.opts.fragments && (full == 0 || self.opts.tail_ends);
        let blocks = if tail > 0 && !tail_in_fragment {
            full + 1
        } else {
            full
        };
        for b in 0..blocks {
            let n = (f.size - b * bs).min(bs) as usize;
            let data = read_block(&mut r, n, f)?;
            self.pending += n;
            self.jobs.push(Job::Block { file: i, data });
            if self.pending >= BATCH_BYTES && self.send().is_err() {
                return Ok(Err(Stopped));
            }
        }
        if tail_in_fragment {
            let data = read_block(&mut r, tail as usize, f)?;
            if self.frag_buf.len() + data.len() > bs as usize {
                let full = std::mem::take(&mut self.frag_buf);
                self.pending += full.len();
                self.jobs.push(Job::Frag { data: full });
                self.frag_count += 1;
            }
            self.frag_info[i] = (self.frag_count, self.frag_buf.len() as u32);
            self.frag_buf.extend_from_slice(&data);
        }
        check_eof(&mut r, f)?;
        if self.pending >= BATCH_BYTES && self.send().is_err() {
            return Ok(Err(Stopped));
        }
        Ok(Ok(()))
    }
}

impl Sink<'_> {
    fn report(&mut self, skipped: u64) {
        self.done = (self.done + skipped).min(self.total);
        if let Some(f) = self.progress.as_mut() {
            f(Progress {
                done: self.done,
                total: self.total,
            });
        }
    }

    fn write_batch(&mut self, c: Compressed) -> Result<()> {
        let Compressed { stored, skipped } = c;
        for st in stored {
            let (bytes, word) = match &st.form {
                Form::Sparse => (&[][..], 0),
                Form::Raw(d) => (&d[..], encode_data_block_size(d.len() as u32, false)),
                Form::Compressed(z) => (&z[..], encode_data_block_size(z.len() as u32, true)),
            };
            match st.file {
                Some(file) => {
                    let l = &mut self.layouts[file];
                    if !self.started[file] {
                        self.started[file] = true;
                        l.blocks_start = self.pos;
                    }
                    if word == 0 {
                        l.sparse += st.len as u64;
                    }
                    l.block_sizes.push(word);
                }
                None => self.fragments.push(FragmentEntry {
                    start: self.pos,
                    size: word,
                }),
            }
            self.out.write_all(bytes).map_err(|source| Error::Io {
                what: "writing data blocks",
                source,
            })?;
            self.pos += bytes.len() as u64;
            self.done += st.len as u64;
        }
        self.report(skipped);
        Ok(())
    }
}
