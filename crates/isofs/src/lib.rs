//! ISO9660 images in pure Rust: read and write, with Rock Ridge, Joliet, El Torito and hybrid
//! MBR/GPT system areas, byte-reproducibly.
//!
//! ```
//! use imgpipe_isofs::raw::PrimaryVolumeDescriptor;
//!
//! let pvd = PrimaryVolumeDescriptor {
//!     system_id: "LINUX".into(), volume_id: "LIVE".into(), volume_space_size: 19,
//!     logical_block_size: 2048, path_table_size: 10, root_extent: 18, root_size: 2048,
//!     application_id: String::new(),
//! };
//! let mut image = vec![0u8; 16 * 2048];
//! image.extend(pvd.to_bytes());
//! let mut term = vec![0u8; 2048];
//! term[0] = 255;
//! term[1..6].copy_from_slice(b"CD001");
//! term[6] = 1;
//! image.extend(term);
//! assert!(imgpipe_isofs::detect(&image));
//! let info = imgpipe_isofs::inspect(std::io::Cursor::new(&image))?;
//! assert_eq!(info.primary.volume_id, "LIVE");
//! # Ok::<(), imgpipe_isofs::Error>(())
//! ```
//!
//! # Security
//! Images are untrusted: descriptor counts are capped, lengths and offsets checked, both-endian
//! fields must agree, and errors name the structure, field and byte offset.
//!
//! # Determinism
//! Every date comes from an explicit epoch; nothing reads the clock or the environment.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod error;
mod inspect;
pub mod raw;

pub use error::{Error, Result};
pub use inspect::{DESCRIPTOR_START, DescriptorInfo, Inspection, MAX_DESCRIPTORS, detect, inspect};
