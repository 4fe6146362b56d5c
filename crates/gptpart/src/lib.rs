//! GPT and MBR partition tables and FAT file systems in pure Rust, reproducible from a seed.
//!
//! ```
//! use imgpipe_gptpart::raw::{Mbr, MbrPartition};
//!
//! let empty = MbrPartition {
//!     status: 0, first_chs: [0; 3], partition_type: 0, last_chs: [0; 3], first_lba: 0, sectors: 0,
//! };
//! let mut mbr = Mbr { boot_code: [0; 440], disk_signature: 0, partitions: [empty; 4] };
//! mbr.partitions[0] = MbrPartition { partition_type: 0xEE, first_lba: 1, sectors: 2047, ..empty };
//! let bytes = mbr.to_bytes();
//! assert!(imgpipe_gptpart::detect_mbr(&bytes));
//! assert!(Mbr::parse(&bytes)?.is_protective());
//! # Ok::<(), imgpipe_gptpart::Error>(())
//! ```
//!
//! # Security
//! Tables are untrusted input: every length and offset is checked, entry counts are capped.
//!
//! # Determinism
//! GUIDs are parameters or derived from a seed; nothing reads the clock or a random source.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod error;
mod inspect;
pub mod raw;

pub use error::{Error, Result};
pub use inspect::{
    GptInspection, GptPartitionInfo, MAX_ENTRIES, MbrInspection, SECTOR_SIZES, detect_fat,
    detect_gpt, detect_mbr, inspect_fat, inspect_gpt, inspect_mbr,
};
pub use raw::Guid;
