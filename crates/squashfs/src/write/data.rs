//! The data phase: file contents cut into blocks, tails packed into fragment blocks,
//! duplicates found (size, then hash, then a byte comparison), blocks compressed in parallel
//! batches and written in plan order, so the bytes never depend on the thread count.

use std::collections::BTreeMap;
use std::hash::Hasher;
use std::io::{Read, Write};

use rayon::prelude::*;

use super::WriteOptions;
use super::tree::Content;
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

enum Stored {
    Sparse,
    Raw,
    Compressed(Vec<u8>),
}

/// Batches bound memory: at most this many content bytes wait for compression.
const BATCH_BYTES: usize = 32 << 20;

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
    tx: std::sync::mpsc::SyncSender<Vec<Job>>,
}

/// Compresses batches in parallel and writes them in order, recording where blocks went.
struct Sink<'w> {
    out: &'w mut dyn Write,
    pos: u64,
    opts: WriteOptions,
    layouts: Vec<FileLayout>,
    started: Vec<bool>,
    fragments: Vec<FragmentEntry>,
}

struct Plan {
    frag_info: Vec<(u32, u32)>,
    dup_of: Vec<Option<usize>>,
    duplicates: u64,
    content_bytes: u64,
}

fn open<'a>(content: &'a Content, path: &[u8]) -> Result<Box<dyn Read + 'a>> {
    Ok(match content {
        Content::Bytes(b) => Box::new(&b[..]),
        Content::Host(p) => Box::new(std::fs::File::open(p).map_err(|source| Error::IoPath {
            what: "opening",
            path: crate::read::lossy_path(path),
            source,
        })?),
    })
}

fn read_full(r: &mut dyn Read, buf: &mut [u8], job: &FileJob<'_>) -> Result<()> {
    r.read_exact(buf).map_err(|source| Error::IoPath {
        what: "reading (did it shrink while building?)",
        path: crate::read::lossy_path(job.path),
        source,
    })
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

fn hash_content(job: &FileJob<'_>) -> Result<u64> {
    // SipHash with fixed keys: the same on every run; only used to pick candidates, which
    // are then compared byte by byte.
    let mut h = std::hash::DefaultHasher::new();
    let mut r = open(job.content, job.path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = job.size;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        read_full(&mut r, &mut buf[..n], job)?;
        h.write(&buf[..n]);
        left -= n as u64;
    }
    Ok(h.finish())
}

fn same_content(a: &FileJob<'_>, b: &FileJob<'_>) -> Result<bool> {
    let (mut ra, mut rb) = (open(a.content, a.path)?, open(b.content, b.path)?);
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut left = a.size;
    while left > 0 {
        let n = left.min(ba.len() as u64) as usize;
        read_full(&mut ra, &mut ba[..n], a)?;
        read_full(&mut rb, &mut bb[..n], b)?;
        if ba[..n] != bb[..n] {
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
    out: &mut dyn Write,
    pos: u64,
    opts: WriteOptions,
    files: &[FileJob<'_>],
) -> Result<(DataOut, u64)> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Job>>(1);
    let mut sink = Sink {
        out,
        pos,
        opts,
        layouts: vec![FileLayout::default(); files.len()],
        started: vec![false; files.len()],
        fragments: Vec::new(),
    };
    let (plan, written) = std::thread::scope(|s| {
        let producer = s.spawn(move || {
            let mut p = Producer {
                opts,
                jobs: Vec::new(),
                pending: 0,
                frag_buf: Vec::new(),
                frag_count: 0,
                frag_info: vec![(NO_FRAGMENT, 0); files.len()],
                tx,
            };
            p.run(files)
        });
        let mut written: Result<()> = Ok(());
        for batch in rx.iter() {
            written = sink.write_batch(batch);
            if written.is_err() {
                break; // dropping the receiver stops the producer
            }
        }
        drop(rx);
        let plan = match producer.join() {
            Ok(p) => p,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        (plan, written)
    });
    written?;
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
        let plan = |frag_info, dup_of, duplicates, content_bytes| Plan {
            frag_info,
            dup_of,
            duplicates,
            content_bytes,
        };
        for (i, f) in files.iter().enumerate() {
            content_bytes += f.size;
            if self.opts.dedup && f.size > 0 && size_count.get(&f.size).is_some_and(|&n| n > 1) {
                let h = hash_content(f)?;
                let cands = by_key.entry((f.size, h)).or_default();
                let mut found = None;
                for &c in cands.iter() {
                    if same_content(&files[c], f)? {
                        found = Some(c);
                        break;
                    }
                }
                if let Some(c) = found {
                    dup_of[i] = Some(c);
                    duplicates += 1;
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
        if jobs.is_empty() {
            return Ok(());
        }
        self.tx.send(jobs).map_err(|_| Stopped)
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
            let mut data = vec![0u8; n];
            read_full(&mut r, &mut data, f)?;
            self.pending += n;
            self.jobs.push(Job::Block { file: i, data });
            if self.pending >= BATCH_BYTES && self.send().is_err() {
                return Ok(Err(Stopped));
            }
        }
        if tail_in_fragment {
            let mut data = vec![0u8; tail as usize];
            read_full(&mut r, &mut data, f)?;
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
    fn write_batch(&mut self, jobs: Vec<Job>) -> Result<()> {
        let opts = self.opts;
        let stored: Vec<Result<Stored>> = jobs
            .par_iter()
            .map(|j| {
                let (data, may_be_sparse) = match j {
                    Job::Block { data, .. } => (data, opts.sparse),
                    Job::Frag { data } => (data, false),
                };
                if may_be_sparse && data.iter().all(|&b| b == 0) {
                    return Ok(Stored::Sparse);
                }
                if !opts.compress_data {
                    return Ok(Stored::Raw);
                }
                let z = compress::compress(opts.compression, opts.block_size, data)?;
                Ok(if z.len() < data.len() {
                    Stored::Compressed(z)
                } else {
                    Stored::Raw
                })
            })
            .collect();
        for (job, st) in jobs.iter().zip(stored) {
            let st = st?;
            let data = match job {
                Job::Block { data, .. } | Job::Frag { data } => data,
            };
            let (bytes, word) = match &st {
                Stored::Sparse => (&[][..], 0),
                Stored::Raw => (&data[..], encode_data_block_size(data.len() as u32, false)),
                Stored::Compressed(z) => (&z[..], encode_data_block_size(z.len() as u32, true)),
            };
            match job {
                Job::Block { file, data } => {
                    let l = &mut self.layouts[*file];
                    if !self.started[*file] {
                        self.started[*file] = true;
                        l.blocks_start = self.pos;
                    }
                    if word == 0 {
                        l.sparse += data.len() as u64;
                    }
                    l.block_sizes.push(word);
                }
                Job::Frag { .. } => self.fragments.push(FragmentEntry {
                    start: self.pos,
                    size: word,
                }),
            }
            self.out.write_all(bytes).map_err(|source| Error::Io {
                what: "writing data blocks",
                source,
            })?;
            self.pos += bytes.len() as u64;
        }
        Ok(())
    }
}
