//! ISO9660 images in pure Rust: read and write, with Rock Ridge, Joliet, El Torito and hybrid
//! MBR system areas, byte-reproducibly (a hybrid GPT is planned by gptpart and placed by
//! [`Builder::set_partition_tables`]; `imgpipe_repro::iso::build_hybrid` composes both).
//!
//! Build an image in memory and read it back:
//!
//! ```
//! use std::io::Cursor;
//! use imgpipe_isofs::{Builder, EntryKind, Metadata, Options, Reader};
//!
//! let mut b = Builder::new(Options::new("LIVE", 1_700_000_000));
//! b.add_dir("boot", Metadata::directory(0o755))?;
//! b.add_file("boot/hello.txt", Metadata::file(0o644), b"hello\n".to_vec())?;
//! b.add_symlink("hello", Metadata::symlink(), "boot/hello.txt")?;
//! let mut image = Cursor::new(Vec::new());
//! let report = b.build(&mut image)?;
//! assert_eq!(report.size, image.get_ref().len() as u64);
//!
//! let mut r = Reader::open(Cursor::new(image.into_inner()))?;
//! assert_eq!(r.primary().volume_id, "LIVE");
//! let file = r.lookup("boot/hello.txt")?;
//! assert_eq!(r.read_to_vec(&file, 1 << 20)?, b"hello\n");
//! let link = r.lookup("hello")?;
//! assert_eq!(link.kind, EntryKind::Symlink);
//! assert_eq!(link.link_target.as_deref(), Some("boot/hello.txt"));
//!
//! // The same image in the shared vocabulary: walk, content and extents through FsRead.
//! use imgpipe_fstree::{FileType, FsRead};
//! let walked = FsRead::walk(&r)?;
//! let paths: Vec<String> = walked.iter().map(|(e, _)| e.display_path()).collect();
//! assert_eq!(paths, ["/", "/boot", "/boot/hello.txt", "/hello"]);
//! let (hello, node) = &walked[2];
//! assert_eq!((hello.file_type, hello.meta.mode, hello.size), (FileType::File, 0o644, 6));
//! assert_eq!(r.extents(node)?.map(|x| x.len()), Some(1));
//! # Ok::<(), imgpipe_isofs::Error>(())
//! ```
//!
//! [`Reader`] implements [`imgpipe_fstree::FsRead`]: entries come as
//! [`imgpipe_fstree::Entry`] (Rock Ridge mode, owner, times, link targets, devices, file
//! serial numbers as hard-link identity), with this crate's [`Entry`] as the node that keeps
//! what only ISO9660 has (extents, the hidden flag, zisofs, record offsets); listing,
//! extraction and diffing need no ISO-specific code.
//!
//! # Security
//! Images are untrusted. Every length and offset is checked against the image and the
//! structure holding it, both-endian fields must agree, [`Limits`] caps entries, depth,
//! directory sizes and continuation chains, directory loops are errors, and errors name the
//! structure, field and byte offset. [`Reader::extract`] goes through the one shared
//! extractor ([`imgpipe_fstree::extract`]), which never writes outside its destination:
//! unsafe names (`..`, `/`, NUL), duplicates, entries below anything but a directory it
//! created, and pre-existing files are refused.
//!
//! # Determinism
//! Every date in a written image comes from the explicit epoch in [`Options`] or from the
//! caller's metadata (clamped to the epoch when asked); directory records are sorted, inode
//! numbers are assigned in sorted walk order, padding is zeroed, and the MBR disk signature
//! derives from a seed. Nothing reads the clock, the environment or `read_dir` order.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod error;
#[doc(hidden)]
pub mod fuzzing;
mod inspect;
pub mod raw;
mod read;
mod write;

pub use error::{Error, Result};
pub use inspect::{DESCRIPTOR_START, DescriptorInfo, Inspection, MAX_DESCRIPTORS, detect, inspect};
pub use read::{
    Entry, EntryKind, Extent, ExtractOptions, ExtractReport, Limits, Namespace, Reader,
};
pub use write::{
    BiosBoot, BuildReport, Builder, EfiBoot, EfiPlacement, ExtraBoot, GPT_TAIL_SIZE, HybridMbr,
    MbrFlavor, Metadata, Options, PlacedFile, ReservedSlot, SYSTEM_AREA_SIZE, SlotSizeField,
    SystemAreaLayout,
};
