//! EROFS writing: [`ErofsBuilder`] takes a [`Tree`], plans every inode, every directory
//! block and every data block, then emits the image in one pass over the tree.
//!
//! Compressed images and images with reserved slots take the data-first layout of
//! `stream` (file data streamed out first, compressed in parallel in 16 MiB segments, the
//! metadata after it). Uncompressed images keep the layout below.
//!
//! Layout (as mkfs.erofs lays out an uncompressed image): block 0 holds the superblock at
//! byte 1024 and the first inodes after it (`meta_blkaddr` 0, so the root is nid 36); the
//! inodes follow in breadth-first order, each directory's children together, each inode with
//! its inline xattrs and, where they fit in the same block, its inline data (the tail of a
//! file, a small directory, a symlink target); then the shared xattr area (xattrs found on
//! more than two inodes); then the data blocks, in inode order.
//!
//! * An inode is compact (32 bytes) when its owner fits 16 bits, its size 32 bits, its link
//!   count 16 bits and its mtime equals the build time; extended (64 bytes) otherwise.
//! * Data is flat inline (full blocks, then the tail after the inode) when the tail fits in
//!   the inode's metadata block, else flat plain (every block, the last one zero-padded).
//! * Directories hold `.` and `..`, entries sorted by name bytes, as many per block as fit.
//! * Hard links are one inode with its link count; devices, fifos and sockets carry no data.
//!
//! What EROFS cannot hold is refused with [`Error::BadEntry`] naming the entry; nothing is
//! truncated. The same tree and options give the same bytes: no clock, no randomness, all
//! padding zero.

mod emit;
mod fitblk;
mod plan;
mod stream;
mod zdata;
mod zindex;

pub use fitblk::ErofsAlgorithm;

use std::io::{Seek, Write};

use imgpipe_fstree::Tree;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::write::{Progress, ProgressFn};

/// How to write an EROFS image. [`ErofsWriteOptions::new`] takes the build time and the UUID:
/// neither is ever taken from the clock or a random source.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ErofsWriteOptions {
    /// Block size: a power of two from 4096 to 65536 (default 4096). Linux and erofs-utils
    /// 1.5 mount and check only block sizes up to the page size: 4096 on x86-64.
    pub block_size: u32,
    /// Build time (seconds since the epoch): the superblock's, and the time of every compact
    /// inode.
    pub epoch: u64,
    /// The filesystem UUID.
    pub uuid: [u8; 16],
    /// Volume name, at most 16 bytes (default empty).
    pub volume_name: Vec<u8>,
    /// Make every owner root (uid and gid 0).
    pub all_root: bool,
    /// Lower times later than `epoch` to `epoch` (default off).
    pub clamp_mtime: bool,
    /// Store an xattr (name and value) found on more than two inodes once, in the shared
    /// xattr area, as mkfs.erofs does by default (default on).
    pub shared_xattrs: bool,
    /// Compress file data (default off: flat layouts only).
    pub compression: Option<ErofsCompression>,
    /// Largest physical cluster in bytes: a multiple of the block size up to 1 MiB, or 0
    /// for one block (the default). Above one block the image uses big pclusters.
    pub pcluster_size: u32,
    /// Store the tail of each compressed file (and small files whole) in the packed inode
    /// (`-Efragments`).
    pub fragments: bool,
    /// Keep a compressed tail smaller than a block inline after its inode
    /// (`-Eztailpacking`).
    pub ztailpacking: bool,
    /// Store files with equal content once (their data and indexes are shared).
    pub dedupe: bool,
    /// Worker threads for compression (`None`: rayon's global pool). The image bytes do not
    /// depend on it.
    pub threads: Option<usize>,
    /// Reserved slots: (path in the tree, capacity in bytes). The file's data becomes one
    /// uncompressed, block-aligned extent of the capacity (rounded up to a block), reported
    /// in [`ErofsBuildReport::slots`].
    pub reserve: Vec<(Vec<u8>, u64)>,
}

/// A compression algorithm and level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ErofsCompression {
    /// The algorithm.
    pub algorithm: ErofsAlgorithm,
    /// The level (`None`: [`ErofsAlgorithm::default_level`]).
    pub level: Option<u32>,
    /// lzma only: early abort (the default), as
    /// [`Compression::early_abort`](crate::Compression::early_abort) for squashfs xz: a
    /// pcluster's worth of input that neither lz4 nor zstd level 1 can make any smaller
    /// (data already compressed) is stored without running lzma on it (7 % less time on a
    /// /usr tree, 0.015 % more image). `false` tries every pcluster, as mkfs.erofs does.
    /// (Before deflate and zstd the probes cost more than they save; lz4hc always skips
    /// its slow encoder where the fast one gains nothing.)
    pub early_abort: bool,
}

impl ErofsCompression {
    /// `algorithm` at its default level.
    pub fn new(algorithm: ErofsAlgorithm) -> Self {
        Self {
            algorithm,
            level: None,
            early_abort: true,
        }
    }

    /// `algorithm` at `level`.
    pub fn with_level(algorithm: ErofsAlgorithm, level: u32) -> Self {
        Self {
            level: Some(level),
            ..Self::new(algorithm)
        }
    }

    fn level(&self) -> u32 {
        self.level.unwrap_or_else(|| self.algorithm.default_level())
    }

    /// Whether early abort runs: asked for, before lzma (measured on a /usr tree, the
    /// probes made deflate at level 2 5 % slower and zstd at level 3 12 %).
    fn probes_first(&self) -> bool {
        self.early_abort && self.algorithm == ErofsAlgorithm::Lzma
    }
}

/// A reserved slot as built: where a later tool writes new content (up to `capacity` bytes
/// at `offset`) and the new size (at `size_offset`, as `size_encoding` says), all offsets in
/// bytes from the start of the image. No checksum covers either (the inodes of an image with
/// slots lie outside block 0, the superblock checksum's block).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ErofsReservedSlot {
    /// The file's path in the tree.
    pub path: String,
    /// Byte offset of the slot (block-aligned).
    pub offset: u64,
    /// Its capacity in bytes (whole blocks).
    pub capacity: u64,
    /// The file's size as built.
    pub size: u64,
    /// Byte offset of the inode's `i_size` field.
    pub size_offset: u64,
    /// How `i_size` is stored: `"le32"` (compact inode) or `"le64"` (extended inode, chosen
    /// when the capacity needs 64 bits).
    pub size_encoding: &'static str,
}

impl ErofsWriteOptions {
    /// 4 KiB blocks, build time `epoch`, UUID `uuid`, no volume name, owners kept.
    pub fn new(epoch: u64, uuid: [u8; 16]) -> Self {
        Self {
            block_size: 4096,
            epoch,
            uuid,
            volume_name: Vec::new(),
            all_root: false,
            clamp_mtime: false,
            shared_xattrs: true,
            compression: None,
            pcluster_size: 0,
            fragments: false,
            ztailpacking: false,
            dedupe: false,
            threads: None,
            reserve: Vec::new(),
        }
    }

    fn pcluster(&self) -> u32 {
        if self.pcluster_size == 0 {
            self.block_size
        } else {
            self.pcluster_size
        }
    }

    fn validate(&self) -> Result<()> {
        if !self.block_size.is_power_of_two() || !(4096..=65_536).contains(&self.block_size) {
            return Err(Error::InvalidOption {
                option: "block_size",
                reason: "must be a power of two from 4096 to 65536",
            });
        }
        if self.volume_name.len() > 16 {
            return Err(Error::InvalidOption {
                option: "volume_name",
                reason: "longer than 16 bytes",
            });
        }
        let pcluster = self.pcluster();
        if !pcluster.is_multiple_of(self.block_size) || pcluster > 1 << 20 {
            return Err(Error::InvalidOption {
                option: "pcluster_size",
                reason: "must be a multiple of the block size up to 1 MiB",
            });
        }
        if let Some(c) = &self.compression
            && !c.algorithm.level_ok(c.level())
        {
            return Err(Error::InvalidOption {
                option: "compression",
                reason: "level out of range for the algorithm",
            });
        }
        if self.threads == Some(0) {
            return Err(Error::InvalidOption {
                option: "threads",
                reason: "must be at least 1",
            });
        }
        Ok(())
    }
}

/// What [`ErofsBuilder::build`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ErofsBuildReport {
    /// Inodes (hard links share one).
    pub inodes: u64,
    /// Regular files (inodes).
    pub files: u64,
    /// Directories.
    pub dirs: u64,
    /// Inodes in the 32-byte compact form.
    pub compact_inodes: u64,
    /// Inodes in the 64-byte extended form.
    pub extended_inodes: u64,
    /// Distinct xattrs stored in the shared area.
    pub shared_xattrs: u64,
    /// Inodes whose data (or data tail) is inline after the inode.
    pub inline_tails: u64,
    /// Regular file content bytes.
    pub content_bytes: u64,
    /// Blocks of the metadata area (block 0 with the superblock included).
    pub meta_blocks: u64,
    /// Data blocks.
    pub data_blocks: u64,
    /// Total blocks (the superblock's `blocks`).
    pub blocks: u32,
    /// Image size in bytes (`blocks` times the block size).
    pub image_size: u64,
    /// Node id of the root directory.
    pub root_nid: u64,
    /// Files stored compressed.
    pub compressed_files: u64,
    /// Files whose content was found equal to an earlier file's and shared (dedupe).
    pub deduplicated_files: u64,
    /// Bytes stored in the packed inode (fragments).
    pub fragment_bytes: u64,
    /// Fragments equal to one already in the packed inode, stored once.
    pub deduplicated_fragments: u64,
    /// Pclusters whose stored bytes equal an earlier one's, shared (with fragments or
    /// dedupe on).
    pub deduplicated_pclusters: u64,
    /// Reserved slots, in the order given (`iso create` reports its slots the same way).
    pub slots: Vec<ErofsReservedSlot>,
}

/// Collects a tree, then writes an uncompressed EROFS image.
///
/// ```
/// use std::sync::Arc;
/// use imgpipe_fstree::{Content, Entry, FileType, FsRead, Metadata, Tree};
/// use imgpipe_squashfs::Bytes;
/// use imgpipe_squashfs::erofs::{ErofsBuilder, ErofsReader, ErofsWriteOptions};
///
/// let mut tree = Tree::new(Metadata::new(0o755, 1_700_000_000));
/// let mut hello = Entry::new("etc/hostname", FileType::File, Metadata::new(0o644, 1_700_000_000));
/// hello.size = 6;
/// tree.insert_with_parents(hello, Content::Bytes(Arc::from(&b"kiosk\n"[..])), &Metadata::new(0o755, 1_700_000_000))?;
///
/// let mut b = ErofsBuilder::new(ErofsWriteOptions::new(1_700_000_000, [7; 16]))?;
/// b.add_fstree(&tree)?;
/// let mut image = std::io::Cursor::new(Vec::new());
/// let report = b.build(&mut image)?;
/// assert_eq!(report.inodes, 3);
///
/// let r = ErofsReader::open_at(Bytes(image.into_inner()), 0, Default::default())?;
/// let walked = FsRead::walk(&r)?;
/// let (entry, inode) = &walked[2];
/// assert_eq!(entry.path, b"etc/hostname");
/// let mut body = Vec::new();
/// r.read_file(inode, &mut body)?;
/// assert_eq!(body, b"kiosk\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ErofsBuilder {
    opts: ErofsWriteOptions,
    tree: Option<Tree>,
    progress: ProgressSlot,
}

struct ProgressSlot(Option<ProgressFn>);

impl std::fmt::Debug for ProgressSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Some(..)" } else { "None" })
    }
}

impl ErofsBuilder {
    /// A builder with options `opts` (checked now).
    pub fn new(opts: ErofsWriteOptions) -> Result<Self> {
        opts.validate()?;
        Ok(Self {
            opts,
            tree: None,
            progress: ProgressSlot(None),
        })
    }

    /// Calls `f` as file content is written (after about every 32 MiB, and once at the end),
    /// on the thread that runs [`build`](Self::build).
    pub fn on_progress(&mut self, f: impl FnMut(Progress) + Send + 'static) {
        self.progress = ProgressSlot(Some(Box::new(f)));
    }

    /// Takes `tree` (its root's metadata becomes the image root's). Content is read when the
    /// image is built. A builder takes one tree.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] when a tree was already added.
    pub fn add_fstree(&mut self, tree: &Tree) -> Result<()> {
        if self.tree.is_some() {
            return Err(Error::InvalidOption {
                option: "add_fstree",
                reason: "an EROFS builder takes one tree",
            });
        }
        self.add_tree(tree.clone())
    }

    /// Takes `tree` by value, as [`add_fstree`](Self::add_fstree) does, without a copy of
    /// it (a large tree's entries are held once).
    ///
    /// # Errors
    /// [`Error::InvalidOption`] when a tree was already added.
    pub fn add_tree(&mut self, tree: Tree) -> Result<()> {
        if self.tree.is_some() {
            return Err(Error::InvalidOption {
                option: "add_fstree",
                reason: "an EROFS builder takes one tree",
            });
        }
        self.tree = Some(tree);
        Ok(())
    }

    /// Plans the layout, then writes the image to `w` from its current position on (an image
    /// can start inside a larger file). Writes every byte of the image, padding included, so
    /// `w` need not be zeroed; it is not truncated.
    ///
    /// # Errors
    /// [`Error::BadEntry`] naming the entry that EROFS cannot hold (a name over 255 bytes,
    /// mode bits beyond `0o7777`, an xattr without an EROFS prefix or too large, device
    /// numbers beyond 12/20 bits, a symlink target empty or over 4095 bytes, content that is
    /// not as long as the entry's size), [`Error::LimitExceeded`] beyond 2^32 blocks or
    /// inodes, [`Error::IoPath`] when a host file cannot be read, [`Error::Io`] when `w`
    /// cannot be written.
    pub fn build<W: Write + Seek>(&mut self, w: &mut W) -> Result<ErofsBuildReport> {
        let empty;
        let tree = match &self.tree {
            Some(t) => t,
            None => {
                empty = Tree::new(imgpipe_fstree::Metadata::new(0o755, 0));
                &empty
            }
        };
        if self.opts.compression.is_some() || !self.opts.reserve.is_empty() {
            let plan = plan::Plan::structure(tree, &self.opts)?;
            return stream::emit(plan, &self.opts, w, self.progress.0.as_mut());
        }
        let plan = plan::Plan::new(tree, &self.opts)?;
        emit::emit(&plan, &self.opts, w, self.progress.0.as_mut())
    }
}
