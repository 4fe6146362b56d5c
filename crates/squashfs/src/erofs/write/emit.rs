//! Emitting a planned image: two sequential streams (the metadata area and the data area),
//! each buffered and written at its planned offset, then the superblock with its checksum.

use std::io::{self, Seek, SeekFrom, Write};

use imgpipe_fstree::{Content, FileType};

use super::plan::{FIRST_INODE_AT, Inode, Plan};
use super::{ErofsBuildReport, ErofsWriteOptions};
use crate::erofs::raw::{
    EROFS_SUPERBLOCK_OFFSET, ErofsSuperBlock, FEATURE_COMPAT_MTIME, FEATURE_COMPAT_SB_CHKSUM,
    FLAT_INLINE, FLAT_PLAIN, InodeHeader, encode_dir, superblock_checksum,
};
use crate::error::{Error, Result};
use crate::write::{Progress, ProgressFn};

/// Content bytes between two progress reports.
const PROGRESS_EVERY: u64 = 32 << 20;

/// Bytes a region buffers before it writes them out.
const FLUSH_AT: usize = 1 << 20;

/// The output: the writer, where the image starts in it, and a copy of block 0 (the
/// superblock checksum covers the inodes that share its block).
struct Out<'w, W> {
    w: &'w mut W,
    base: u64,
    block0: Vec<u8>,
}

/// A sequential stream of image bytes starting at `next`.
struct Region {
    next: u64,
    buf: Vec<u8>,
}

impl Region {
    fn new(at: u64) -> Self {
        Self {
            next: at,
            buf: Vec::new(),
        }
    }

    fn pos(&self) -> u64 {
        self.next + self.buf.len() as u64
    }

    fn push<W: Write + Seek>(&mut self, out: &mut Out<'_, W>, b: &[u8]) -> io::Result<()> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= FLUSH_AT {
            self.flush(out)?;
        }
        Ok(())
    }

    /// Zeros up to image offset `to` (the plan never asks to go back).
    fn pad_to<W: Write + Seek>(&mut self, out: &mut Out<'_, W>, to: u64) -> io::Result<()> {
        debug_assert!(to >= self.pos(), "plan goes back: {to} < {}", self.pos());
        let mut left = to.saturating_sub(self.pos());
        while left > 0 {
            let n = left.min(FLUSH_AT as u64) as usize;
            self.buf.resize(self.buf.len() + n, 0);
            left -= n as u64;
            if self.buf.len() >= FLUSH_AT {
                self.flush(out)?;
            }
        }
        Ok(())
    }

    fn flush<W: Write + Seek>(&mut self, out: &mut Out<'_, W>) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let len0 = out.block0.len() as u64;
        if self.next < len0 {
            let start = self.next as usize;
            let n = (out.block0.len() - start).min(self.buf.len());
            if let (Some(dst), Some(src)) =
                (out.block0.get_mut(start..start + n), self.buf.get(..n))
            {
                dst.copy_from_slice(src);
            }
        }
        out.w.seek(SeekFrom::Start(out.base + self.next))?;
        out.w.write_all(&self.buf)?;
        self.next += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }
}

/// Routes an inode's data: the first `to_data` bytes to the data area, the rest inline after
/// the inode (or, for flat plain, to the data area too). Refuses more than `size` bytes.
struct Split<'a, 'w, W> {
    out: &'a mut Out<'w, W>,
    meta: &'a mut Region,
    data: &'a mut Region,
    to_data: u64,
    inline: bool,
    size: u64,
    written: u64,
    overflow: bool,
    write_failed: Option<io::Error>,
}

impl<W: Write + Seek> Split<'_, '_, W> {
    fn route(&mut self, buf: &[u8]) -> io::Result<()> {
        let to_data = self
            .to_data
            .saturating_sub(self.written)
            .min(buf.len() as u64) as usize;
        let (head, rest) = buf.split_at(to_data);
        self.data.push(self.out, head)?;
        if !rest.is_empty() {
            let region = if self.inline {
                &mut *self.meta
            } else {
                &mut *self.data
            };
            region.push(self.out, rest)?;
        }
        Ok(())
    }
}

impl<W: Write + Seek> Write for Split<'_, '_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written + buf.len() as u64 > self.size {
            self.overflow = true;
            return Err(io::Error::other("content longer than the entry's size"));
        }
        if let Err(e) = self.route(buf) {
            self.write_failed = Some(e);
            return Err(io::Error::other("writing the image failed"));
        }
        self.written += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn write_err(source: io::Error) -> Error {
    Error::Io {
        what: "writing the image",
        source,
    }
}

fn bad(ino: &Inode<'_>, reason: &'static str) -> Error {
    Error::BadEntry {
        path: crate::read::lossy_path(&ino.entry.path),
        reason,
    }
}

/// The on-disk inode header of `ino`, the `index`-th inode.
pub(super) fn header(ino: &Inode<'_>, index: usize) -> InodeHeader {
    let e = ino.entry;
    let u = match e.file_type {
        FileType::Char | FileType::Block => ino.rdev,
        FileType::Fifo | FileType::Socket => 0,
        FileType::File | FileType::Dir | FileType::Symlink => ino.blkaddr,
    };
    InodeHeader {
        format: u16::from(ino.extended) | u16::from(ino.layout) << 1,
        xattr_icount: ino.xattr_icount,
        mode: e.st_mode() as u16,
        nlink: ino.nlink,
        size: ino.size,
        u,
        ino: index as u32,
        uid: ino.uid,
        gid: ino.gid,
        // The kernel reads the 64-bit time as signed: two's complement keeps times before 1970.
        mtime: ino.extended.then_some((ino.mtime as u64, ino.mtime_nsec)),
    }
}

pub(super) fn emit<W: Write + Seek>(
    plan: &Plan<'_>,
    opts: &ErofsWriteOptions,
    w: &mut W,
    mut progress: Option<&mut ProgressFn>,
) -> Result<ErofsBuildReport> {
    let total: u64 = plan
        .inodes
        .iter()
        .filter(|i| i.entry.file_type == FileType::File)
        .map(|i| i.size)
        .sum();
    let mut reported = 0u64;
    let blksz = plan.blksz;
    let base = w.stream_position().map_err(write_err)?;
    let mut out = Out {
        w,
        base,
        block0: vec![0; blksz as usize],
    };
    let mut meta = Region::new(FIRST_INODE_AT);
    let mut data = Region::new(plan.data_start * blksz);
    let mut report = ErofsBuildReport::default();
    for (index, ino) in plan.inodes.iter().enumerate() {
        meta.pad_to(&mut out, ino.nid * 32).map_err(write_err)?;
        meta.push(&mut out, &header(ino, index).to_bytes())
            .map_err(write_err)?;
        meta.push(&mut out, &ino.xattrs).map_err(write_err)?;
        if ino.blocks > 0 {
            data.pad_to(&mut out, u64::from(ino.blkaddr) * blksz)
                .map_err(write_err)?;
        }
        let inline = ino.layout == FLAT_INLINE;
        let mut sink = Split {
            out: &mut out,
            meta: &mut meta,
            data: &mut data,
            to_data: if inline {
                ino.size - ino.inline_len
            } else {
                ino.size
            },
            inline,
            size: ino.size,
            written: 0,
            overflow: false,
            write_failed: None,
        };
        let read = match ino.entry.file_type {
            FileType::File => ino.content.write_to(&mut sink).map(|_| ()),
            FileType::Dir => {
                let entries: Vec<(&[u8], u64, u8)> = ino
                    .children
                    .iter()
                    .map(|&(name, i, t)| (name, plan.inodes.get(i).map_or(0, |c| c.nid), t))
                    .collect();
                sink.write_all(&encode_dir(&entries, blksz as usize))
            }
            FileType::Symlink => sink.write_all(ino.target),
            _ => Ok(()),
        };
        if let Some(e) = sink.write_failed.take() {
            return Err(write_err(e));
        }
        if sink.overflow {
            return Err(bad(ino, "content is longer than the entry's size"));
        }
        if let Err(source) = read {
            return Err(match ino.content {
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
            });
        }
        if sink.written != ino.size {
            return Err(bad(ino, "content is shorter than the entry's size"));
        }
        if ino.layout == FLAT_PLAIN && ino.blocks > 0 {
            let end = (u64::from(ino.blkaddr) + ino.blocks) * blksz;
            data.pad_to(&mut out, end).map_err(write_err)?;
        }
        debug_assert_eq!(meta.pos(), ino.nid * 32 + ino.meta_len());

        report.inodes += 1;
        match ino.entry.file_type {
            FileType::File => {
                report.files += 1;
                report.content_bytes += ino.size;
                if let Some(f) = progress.as_mut()
                    && report.content_bytes - reported >= PROGRESS_EVERY
                {
                    reported = report.content_bytes;
                    f(Progress {
                        done: reported,
                        total,
                    });
                }
            }
            FileType::Dir => report.dirs += 1,
            _ => {}
        }
        if ino.extended {
            report.extended_inodes += 1;
        } else {
            report.compact_inodes += 1;
        }
        if ino.inline_len > 0 {
            report.inline_tails += 1;
        }
        report.data_blocks += ino.blocks;
    }
    if !plan.shared_xattrs.is_empty() {
        meta.pad_to(&mut out, u64::from(plan.xattr_blkaddr) * blksz)
            .map_err(write_err)?;
        meta.push(&mut out, &plan.shared_xattrs)
            .map_err(write_err)?;
    }
    meta.pad_to(&mut out, plan.data_start * blksz)
        .map_err(write_err)?;
    meta.flush(&mut out).map_err(write_err)?;
    data.pad_to(&mut out, u64::from(plan.blocks) * blksz)
        .map_err(write_err)?;
    data.flush(&mut out).map_err(write_err)?;

    let root_nid = plan.inodes.first().map_or(0, |r| r.nid);
    let mut volume_name = [0u8; 16];
    if let Some(dst) = volume_name.get_mut(..opts.volume_name.len()) {
        dst.copy_from_slice(&opts.volume_name);
    }
    let mut sb = ErofsSuperBlock {
        checksum: 0,
        feature_compat: FEATURE_COMPAT_SB_CHKSUM | FEATURE_COMPAT_MTIME,
        blkszbits: blksz.trailing_zeros() as u8,
        sb_extslots: 0,
        root_nid: root_nid as u16,
        inos: plan.inodes.len() as u64,
        build_time: opts.epoch,
        build_time_nsec: 0,
        blocks: plan.blocks,
        meta_blkaddr: 0,
        xattr_blkaddr: plan.xattr_blkaddr,
        uuid: opts.uuid,
        volume_name,
        feature_incompat: 0,
        ..ErofsSuperBlock::default()
    };
    let at = EROFS_SUPERBLOCK_OFFSET as usize;
    let mut head = vec![0u8; FIRST_INODE_AT as usize];
    if let Some(dst) = out.block0.get_mut(at..at + ErofsSuperBlock::SIZE) {
        dst.copy_from_slice(&sb.to_bytes());
    }
    sb.checksum = superblock_checksum(out.block0.get(at..).unwrap_or_default());
    if let Some(dst) = head.get_mut(at..) {
        dst.copy_from_slice(&sb.to_bytes());
    }
    out.w.seek(SeekFrom::Start(base)).map_err(write_err)?;
    out.w.write_all(&head).map_err(write_err)?;
    out.w
        .seek(SeekFrom::Start(base + u64::from(plan.blocks) * blksz))
        .map_err(write_err)?;
    out.w.flush().map_err(write_err)?;

    if let Some(f) = progress.as_mut() {
        f(Progress {
            done: report.content_bytes,
            total,
        });
    }
    report.meta_blocks = plan.data_start;
    report.shared_xattrs = plan.shared_xattr_count as u64;
    report.blocks = plan.blocks;
    report.image_size = u64::from(plan.blocks) * blksz;
    report.root_nid = root_nid;
    Ok(report)
}
