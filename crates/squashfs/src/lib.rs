//! squashfs images in pure Rust: read, write, compress in parallel, byte-reproducibly; and
//! EROFS images read ([`erofs::ErofsReader`]) and written ([`erofs::ErofsBuilder`]),
//! uncompressed layouts today.
//!
//! Build an image in memory and read it back:
//!
//! ```
//! use imgpipe_squashfs::{Builder, Bytes, Compression, Compressor, EntryMeta, Reader, WriteOptions};
//!
//! let mut opts = WriteOptions::new(1_700_000_000); // the epoch is always explicit
//! opts.compression = Compression::new(Compressor::Zstd);
//! let mut b = Builder::new(opts)?;
//! b.add_dir("etc", EntryMeta::new(0o755, 1_700_000_000))?;
//! b.add_file("etc/hostname", EntryMeta::new(0o644, 1_700_000_000), b"live\n".to_vec())?;
//! b.add_symlink("hostname", EntryMeta::new(0o777, 1_700_000_000), "etc/hostname")?;
//! let mut image = std::io::Cursor::new(Vec::new());
//! let report = b.build(&mut image)?;
//! assert_eq!(report.inodes, 4);
//!
//! let r = Reader::open(Bytes(image.into_inner()))?;
//! let (_, inode) = r.lookup(b"/etc/hostname")?;
//! assert_eq!(r.read_file_to_vec(&inode)?, b"live\n");
//! let paths: Vec<_> = r.walk()?.into_iter().map(|e| e.path).collect();
//! assert_eq!(paths, [&b""[..], b"etc", b"etc/hostname", b"hostname"]);
//! # Ok::<(), imgpipe_squashfs::Error>(())
//! ```
//!
//! [`Builder::add_tree`] adds a host directory (owners, modes, times, xattrs, hard links,
//! device nodes, fifos, sockets); [`Reader::extract`] writes an image back to disk.
//!
//! Both readers implement [`imgpipe_fstree::FsRead`]: entries in the shared vocabulary
//! (owners resolved, xattrs sorted, hard-link identity), content, and where a file's bytes
//! lie in the image; extraction is [`imgpipe_fstree::extract`] over them.
//!
//! # Layout
//! `raw` (squashfs on-disk structures) and `erofs::raw` parse and encode and call nothing
//! else; `codec` holds the compressors both formats use; `read`, `write` and `inspect` (and
//! `erofs::{read, inspect}`) sit on top. Sources ([`ReadAt`], [`Bytes`], [`SeekSource`]) are
//! `imgpipe_fstree`'s.
//!
//! # Format coverage
//! Reading: squashfs 4.0 with gzip, xz (BCJ filters included), legacy lzma, lzo, lz4 and
//! zstd, compressor options, every inode type in basic and extended form, directory indexes,
//! fragments and tail ends, sparse blocks, id, export and xattr tables (out-of-line values
//! too), images at an offset inside a larger file. Writing: the same, choosing the compact
//! form of each inode, a directory index wherever a listing crosses a metadata block, an
//! export table, xattrs, hard links as shared inodes, whole-file dedup confirmed by a byte
//! comparison, sparse blocks.
//!
//! Compression backends (see also `codec/mod.rs`): gzip via `flate2` with the pure-Rust
//! `zlib-rs`; lz4 written by liblz4 (C, the encoder mksquashfs calls, so the blocks match its
//! byte for byte) and read by `lz4_flex` (pure Rust); lzo decoded by this crate's own checked LZO1X
//! decoder and encoded by `lzokay-native` (pure Rust); **xz and zstd are C-backed**
//! (`liblzma` and `zstd`, both built from their bundled sources) because they are the
//! reference implementations: the pure-Rust encoders available reach neither the ratio nor
//! the speed mksquashfs gets at xz level 6 or zstd level 15, which this crate has to beat.
//!
//! # Security
//! Images are untrusted input. Every table is bounded by the next one, every metadata block by
//! its table, every data block by `bytes_used`; decompression is capped at the block size;
//! names are checked (no `/`, `.`, `..`, NUL, duplicates, must be sorted); directory loops,
//! depth, entry counts and block lists are capped by [`Limits`]. Errors name the structure,
//! the field and the byte offset (relative to the image start). [`Reader::extract`] never
//! writes outside its destination and never follows a symlink it did not create as a
//! directory.
//!
//! # Determinism
//! The writer takes the epoch as an explicit option and never reads the clock, the
//! environment or `read_dir` order: entries are sorted bytewise, inode numbers follow a fixed
//! post-order walk, ids are sorted, and data blocks are compressed in parallel batches with
//! rayon but written in plan order, so the bytes are the same at any thread count.

#![deny(unsafe_code)]
#![deny(missing_docs)]
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod codec;
pub mod erofs;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod inspect;
pub mod raw;
mod read;
mod write;

/// The codecs under the name the writer uses.
pub(crate) use codec as compress;
pub use codec::{Compression, bcj, decompress_block};
pub use erofs::{ErofsInspection, detect_erofs, inspect_erofs};
pub use error::{Error, Result};
pub use imgpipe_fstree::{Bytes, ReadAt, SeekSource};
pub use inspect::{SquashfsInspection, detect_squashfs, inspect_squashfs};
pub use raw::Compressor;
pub use read::{ExtractOptions, ExtractReport, InodeHandle, Limits, Reader, WalkEntry};
pub use write::{BuildReport, Builder, EntryMeta, Progress, ProgressFn, WriteOptions};
