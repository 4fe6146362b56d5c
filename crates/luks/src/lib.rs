//! LUKS2 volumes in pure Rust: headers, keyslots and payload encryption, compatible with
//! cryptsetup in both directions.
//!
//! The layout follows cryptsetup's *LUKS2 On-Disk Format Specification*: a 4096-byte binary
//! header followed by a JSON area, stored twice, then keyslot areas, then the encrypted
//! data segment.
//!
//! ```
//! use imgpipe_luks::{BinaryHeader, HeaderKind};
//!
//! // Build a header in memory, checksum it, and read it back.
//! let mut area = vec![0u8; 16384];
//! let mut hdr = BinaryHeader {
//!     kind: HeaderKind::Primary,
//!     version: 2,
//!     hdr_size: 16384,
//!     seqid: 1,
//!     label: [0; 48],
//!     csum_alg: [0; 32],
//!     salt: [0; 64],
//!     uuid: [0; 40],
//!     subsystem: [0; 48],
//!     hdr_offset: 0,
//!     csum: [0; 64],
//! };
//! hdr.csum_alg[..6].copy_from_slice(b"sha256");
//! area[..4096].copy_from_slice(&hdr.to_bytes());
//! let sum = hdr.compute_checksum(&area).unwrap();
//! hdr.csum[..32].copy_from_slice(&sum);
//! area[..4096].copy_from_slice(&hdr.to_bytes());
//!
//! assert!(imgpipe_luks::detect(&area));
//! let back = BinaryHeader::parse(&area, 0)?;
//! assert!(back.checksum_matches(&area));
//! # Ok::<(), imgpipe_luks::Error>(())
//! ```
//!
//! # Security
//! Headers are untrusted input: every length and offset is checked before use and errors
//! name the structure, field and byte offset.
//!
//! # Determinism
//! Nothing here reads the clock or a random source on its own; randomness is injected.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod error;
mod inspect;
pub mod raw;

pub use error::{Error, Result};
pub use inspect::{ALLOWED_HDR_SIZES, HeaderCopy, Inspection, detect, inspect};
pub use raw::{BinaryHeader, HeaderKind};
