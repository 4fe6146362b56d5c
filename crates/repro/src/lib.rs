//! The composition layer of imgpipe: what sits between the format crates and the binary.
//!
//! - the format registry: one detector ([`detect`]) and a typed inspection per format
//!   ([`inspect`] → [`Report`] with [`Inspection`]), truncation included;
//! - one seed rule ([`Seed`], [`Purpose`]) for every GUID, UUID, volume id, salt and key;
//! - disk assembly ([`DiskRequest`], [`DiskPlan`]) and hybrid ISOs whose GPT comes from
//!   gptpart ([`iso::build_hybrid`]);
//! - LUKS2 volumes by the seed rule, keyslot operations that unlock first, payloads
//!   decrypted through the atomic writer ([`luks`]);
//! - two-build verification: [`diff_images`] (each image read once, ranges attributed,
//!   files compared through nested filesystems by [`diagnose_files_within`]);
//! - determinism primitives: the build epoch and the one seed rule.
//!
//! ```
//! use imgpipe_repro::{Epoch, Format, Seed, compare_streams, detect};
//!
//! let epoch = Epoch::from_source_date_epoch("1700000000")?;
//! assert_eq!(epoch.clamp(1_800_000_000), 1_700_000_000);
//! let seed = Seed::parse("0123456789abcdef0123456789abcdef").unwrap();
//! assert_eq!(seed.gpt().disk_guid().to_string(), "6913F4B6-6690-4A57-A202-F1B53C56DBDF");
//! let report = compare_streams(&b"build one"[..], &b"build two"[..])?;
//! assert_eq!(report.first_difference, Some(6));
//! assert_eq!(detect(b"lang en_US.UTF-8\n"), Some(Format::Kickstart));
//! # Ok::<(), imgpipe_repro::Error>(())
//! ```
//!
//! [`diagnose_files`] goes further when two builds differ: which files inside which nested
//! filesystem (the squashfs inside the ISO, the ESP inside the disk, with [`Passphrases`]
//! the root inside a LUKS2 volume) differ, and how.
//!
//! # Determinism
//! This crate is the only place the rules live: epochs are explicit, identifiers derive from
//! seeds.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod build;
mod compare;
mod derive;
mod diff;
pub mod disk;
mod epoch;
mod error;
mod format;
#[doc(hidden)]
pub mod fuzzing;
pub mod inject;
pub mod iso;
pub mod luks;
mod nested;
mod output;
pub mod reason;
pub mod seed;
pub mod serve;
mod source;
pub mod verify;

pub use compare::{ByteRange, Comparison, DiffOptions, RangeDiff, compare_streams, diff_streams};
pub use derive::{derive_uuid, hmac_sha256, uuid_text};
pub use diff::{
    DIFF_SCHEMA, Difference, Differing, ImageDiff, ImageDiffOptions, attribute, diff_images,
    diff_images_with,
};
pub use disk::{Contents, DiskPlan, DiskRequest, parse_hybrid, parse_part, parse_size};
pub use epoch::Epoch;
pub use error::{Error, Result};
pub use format::{
    Format, HEAD_LEN, Inspection, Region, Report, Truncation, detect, inspect, inspect_as,
    read_head,
};
pub use nested::{
    ContentSink, DiffKind, ENCRYPTED_HINT, FileDifference, MIN_WORK_BUDGET, NestedDiff,
    NestedOptions, Passphrases, REASON_MAX_FILE, diagnose_files, diagnose_files_with,
    diagnose_files_within,
};
pub use output::{
    AtomicFile, ChildGroup, TEMP_SUFFIX, WorkDir, check_output, discard_pending_outputs,
    running_child_groups, temp_path,
};
pub use seed::{Purpose, Seed};
pub use source::image_tree;
