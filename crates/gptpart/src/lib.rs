//! GPT and MBR partition tables and FAT12/16/32 file systems in pure Rust, byte-reproducible
//! from a seed and an epoch.
//!
//! Build a disk whose GUIDs derive from a seed exactly as systemd-repart derives them, put a
//! FAT EFI system partition in it, and read both back:
//!
//! ```
//! use std::io::{Cursor, Seek, SeekFrom};
//! use imgpipe_gptpart::{
//!     FatBuilder, FatVolume, GptBuilder, PartitionSize, PartitionSpec, Seed, Window,
//!     partition_type, read_gpt,
//! };
//!
//! let seed = Seed::parse("0123456789abcdef0123456789abcdef").unwrap();
//! let layout = GptBuilder::new(16 << 20, seed)
//!     .partition(PartitionSpec::new(partition_type("esp").unwrap(), PartitionSize::Bytes(8 << 20)).name("ESP"))
//!     .partition(PartitionSpec::new(partition_type("root-x86-64").unwrap(), PartitionSize::Rest))
//!     .plan()?;
//! let (esp_offset, esp_size) = layout.partition_range(1).unwrap();
//!
//! let mut esp = FatBuilder::new(esp_size).label("ESP").volume_id(0x1234_5678).epoch(1_700_000_000);
//! esp.add_file("EFI/BOOT/BOOTX64.EFI", b"MZ...".to_vec())?;
//! esp.add_file("loader/entries/Fedora Linux.conf", b"title Fedora\n".to_vec())?;
//!
//! let mut disk = Cursor::new(vec![0u8; 16 << 20]);
//! layout.write_table(&mut disk)?;
//! disk.seek(SeekFrom::Start(esp_offset)).unwrap();
//! esp.build(&mut disk)?;
//!
//! let gpt = read_gpt(&mut disk)?;
//! assert_eq!(gpt.disk_guid.to_string(), "6913F4B6-6690-4A57-A202-F1B53C56DBDF");
//! assert_eq!(gpt.partitions[0].name, "ESP");
//! assert_eq!(gpt.partitions[0].first_lba, 2048);
//!
//! let mut fat = FatVolume::open(Window::new(&mut disk, esp_offset, esp_size))?;
//! assert_eq!(fat.label(), Some("ESP"));
//! let entry = fat.lookup("loader/entries/Fedora Linux.conf")?;
//! assert_eq!(fat.read_file(&entry)?, b"title Fedora\n");
//! assert_eq!(entry.modified, Some(1_700_000_000));
//! # Ok::<(), imgpipe_gptpart::Error>(())
//! ```
//!
//! What is here: [`GptBuilder`] / [`GptLayout`] and [`read_gpt`] (both header copies, CRCs,
//! ranges, fallback to the backup, [`relocate_backup`] after growing an image), [`Seed`] for
//! systemd-repart's GUID derivation, [`partition_type`] aliases and [`attributes`] flags,
//! [`MbrBuilder`] and [`raw::Mbr`] for classic, protective and hybrid MBRs, [`FatBuilder`] and
//! [`FatVolume`] for FAT (it implements [`imgpipe_fstree::FsRead`]: shared entries in name
//! order, cluster runs as extents, [`FatEntry`] as the node keeping short names and
//! attributes; [`FatBuilder::reserve_file`] gives a file a contiguous run of clusters whose
//! content and size can be rewritten in place, [`FatReservedFile`] naming every byte that
//! changes), and [`Window`] to read a partition inside a disk image.
//!
//! # Security
//! Tables and file systems are untrusted input: every length and offset is checked, entry
//! counts and FAT sizes are capped ([`Limits`]), cluster chains are bounded and loop-checked,
//! directory walks refuse cycles and excessive depth, and nothing panics on malformed bytes.
//! [`FatVolume::extract`] refuses names that could escape the destination and does not follow
//! symlinks already there.
//!
//! # Determinism
//! GUIDs are parameters or derived from a seed exactly as systemd-repart derives them
//! ([`Seed`]); FAT timestamps all come from one explicit epoch, directory entries are written
//! in byte order of names, and every padding byte is zero. Nothing reads the clock, the
//! environment or a random source.
//!
//! # Why not the `gpt` and `fatfs` crates
//! The `gpt` crate generates random GUIDs unless told otherwise, exposes its own error type,
//! and writes through a device abstraction; a GPT is a few hundred bytes of well-specified
//! structure, so this crate plans the table and emits it itself, which is what lets one seed
//! give identical bytes. `fatfs` 0.3.6 writes subdirectories that `fsck.vfat -n` rejects
//! (long-name entries for `.` and `..`, rust-fatfs issue 117), and an incremental
//! file-system writer takes its timestamps from a clock. [`FatBuilder`] instead knows the
//! whole tree up front: it chooses the geometry, gives every directory and file a contiguous
//! cluster run, then writes the volume front to back in one pass, so output depends only on
//! the tree, the options and the epoch, and large images stream without seeking.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod error;
#[doc(hidden)]
pub mod fuzzing;
mod inspect;
pub mod raw;
mod read;
mod seed;
mod types;
mod write;

pub use error::{Error, Result};
pub use inspect::{MbrInspection, detect_fat, detect_mbr, inspect_fat, inspect_gpt, inspect_mbr};
pub use raw::{FatBootSector, FatType, Guid};
pub use read::fat::{FatEntry, FatVolume, Limits};
pub use read::gpt::{
    GptCopy, GptDisk, GptPartition, MAX_ENTRIES, SECTOR_SIZES, detect_gpt, read_gpt,
};
pub use read::window::Window;
pub use seed::Seed;
pub use types::{PARTITION_TYPES, attributes, partition_type, type_alias};
pub use write::fat::{FatBuilder, FatReservedFile, FatSummary};
pub use write::gpt::{
    GptBuilder, GptLayout, HybridEntry, PartitionSize, PartitionSpec, PlannedPartition,
    relocate_backup,
};
pub use write::mbr::{MbrBuilder, MbrPartitionSpec};
