//! squashfs and EROFS images in pure Rust: read, write, compress in parallel, byte-reproducibly.
//!
//! ```
//! use imgpipe_squashfs::raw::{Compressor, SuperBlock};
//!
//! let sb = SuperBlock {
//!     inode_count: 1, mod_time: 0, block_size: 131_072, frag_count: 0,
//!     compressor: Compressor::Gzip, block_log: 17, flags: 0, id_count: 1,
//!     version_major: 4, version_minor: 0, root_inode: 0, bytes_used: 96,
//!     id_table: 96, xattr_table: u64::MAX, inode_table: 96, dir_table: 96,
//!     frag_table: u64::MAX, export_table: u64::MAX,
//! };
//! let bytes = sb.to_bytes();
//! assert!(imgpipe_squashfs::detect_squashfs(&bytes));
//! let info = imgpipe_squashfs::inspect_squashfs(std::io::Cursor::new(&bytes[..]))?;
//! assert_eq!(info.block_size, 131_072);
//! # Ok::<(), imgpipe_squashfs::Error>(())
//! ```
//!
//! # Security
//! Images are untrusted input: lengths and offsets are checked before use, and errors name the
//! structure, field and byte offset.
//!
//! # Determinism
//! Writers take the epoch as an explicit option and never read the clock or the environment.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod error;
mod inspect;
pub mod raw;

pub use error::{Error, Result};
pub use inspect::{
    ErofsInspection, SquashfsInspection, detect_erofs, detect_squashfs, inspect_erofs,
    inspect_squashfs,
};
