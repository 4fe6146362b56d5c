//! Determinism primitives for reproducible OS images: the build epoch, identifiers derived
//! from a seed, byte-ordered directory walks, and two-build verification.
//!
//! ```
//! use imgpipe_repro::{Epoch, compare_streams, derive_uuid, uuid_text};
//!
//! let epoch = Epoch::from_source_date_epoch("1700000000")?;
//! assert_eq!(epoch.clamp(1_800_000_000), 1_700_000_000);
//! let disk = derive_uuid(b"my-seed", b"disk-uuid");
//! assert_eq!(uuid_text(&disk), uuid_text(&derive_uuid(b"my-seed", b"disk-uuid")));
//! let report = compare_streams(&b"build one"[..], &b"build two"[..])?;
//! assert_eq!(report.first_difference, Some(6));
//! # Ok::<(), imgpipe_repro::Error>(())
//! ```
//!
//! [`diagnose_files`] goes further when two builds differ: which files inside which nested
//! filesystem (the squashfs inside the ISO, the ESP inside the disk) differ, and how.
//!
//! # Determinism
//! This crate is the only place the rules live: epochs are explicit, identifiers derive from
//! seeds, walks are sorted by bytes.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod compare;
mod derive;
mod disk;
mod epoch;
mod error;
mod format;
#[doc(hidden)]
pub mod fuzzing;
pub mod iso;
mod nested;
mod output;
mod seed;
mod walk;

pub use compare::{ByteRange, Comparison, DiffOptions, RangeDiff, compare_streams, diff_streams};
pub use derive::{derive_uuid, hmac_sha256, uuid_text};
pub use disk::{Contents, DiskPlan, DiskRequest, parse_hybrid, parse_part, parse_size};
pub use epoch::Epoch;
pub use error::{Error, Result};
pub use format::{
    Format, HEAD_LEN, Inspection, Region, Report, Truncation, detect, inspect, inspect_as,
    read_head,
};
pub use nested::{FileDifference, NestedDiff, NestedOptions, diagnose_files};
pub use output::{AtomicFile, TEMP_SUFFIX, check_output, discard_pending_outputs, temp_path};
pub use seed::{Purpose, Seed};
pub use walk::{WalkEntry, walk_sorted};
