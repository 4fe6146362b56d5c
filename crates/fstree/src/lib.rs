//! The shared vocabulary of imgpipe: one entry type, one tree, positioned-read sources, and
//! the one reading trait every format reader implements.
//!
//! ```
//! use std::sync::Arc;
//! use imgpipe_fstree::{Content, Entry, FileType, Listing, Metadata, Tree};
//!
//! let mut tree = Tree::new(Metadata::new(0o755, 1_700_000_000));
//! let mut hello = Entry::new("etc/hostname", FileType::File, Metadata::new(0o644, 1_700_000_000));
//! hello.size = 6;
//! tree.insert_with_parents(hello, Content::Bytes(Arc::from(&b"kiosk\n"[..])), &Metadata::new(0o755, 0))?;
//!
//! let paths: Vec<String> = tree.iter().map(|n| n.entry.display_path()).collect();
//! assert_eq!(paths, ["/", "/etc", "/etc/hostname"]);
//!
//! let mut body = Vec::new();
//! tree.get(b"/etc/hostname").unwrap().content.write_to(&mut body)?;
//! assert_eq!(body, b"kiosk\n");
//!
//! let listing = Listing::new("squashfs", tree.iter().map(|n| &n.entry));
//! assert_eq!(listing.entries[2].text_line(),
//!            "-rw-r--r--     0     0          6 2023-11-14 22:13:20 /etc/hostname");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Format crates (ISO9660, squashfs and EROFS, FAT) depend on this crate, never on each
//! other: a reader's tree ([`Tree::from_reader`]) feeds any writer without an adapter.
//!
//! # Security
//! Paths inserted into a [`Tree`] are checked: no empty, `.` or `..` component, no NUL. Sources
//! ([`Slice`], [`Window`]) never read outside their range.
//!
//! # Determinism
//! A [`Tree`] iterates in one order whatever the order of insertion: depth-first, each
//! directory before its contents, siblings in byte order of their names.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod civil;
mod entry;
mod error;
mod extract;
pub mod le;
mod listing;
mod read;
mod scan;
mod source;
mod tree;

pub use entry::{Entry, FileType, Metadata, Xattr, join_dev, mode_string, split_dev};
pub use error::{Error, Result};
pub use extract::{
    ExtractOptions, ExtractReport, MIN_OUTPUT_BUDGET, extract, extract_in_sandbox,
    extract_with_progress, link_escapes,
};
pub use listing::{LISTING_SCHEMA, Listed, ListedXattr, Listing};
pub use read::{Extent, FsRead, Holds, HoleWrite, StoredPiece};
pub use scan::{ScanOptions, scan};
pub use source::{Bytes, Cursor, ReadAt, SeekSource, Slice, Window};
pub use tree::{Content, Node, StreamFn, Tree};
