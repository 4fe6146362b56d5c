//! EROFS, laid out as the squashfs side is: [`raw`] on-disk structures, [`read`](ErofsReader)
//! (superblock, compact and extended inodes, directories, every data layout: flat, chunk
//! based, and compressed with lz4, lzma, deflate or zstd through full or compact indexes,
//! big pclusters, inline tails, fragments and deduplicated extents; symlinks, device nodes,
//! inline and shared xattrs with long name prefixes), [`inspect`](inspect_erofs) and
//! [`write`](ErofsBuilder) (flat plain and inline layouts, or compressed with lz4, lz4hc,
//! lzma, deflate or zstd with big pclusters, fragments, ztailpacking and dedupe; compact and
//! extended inodes, inline and shared xattrs, hard links, special files, reserved slots).

pub(crate) mod decompress;
mod inspect;
pub mod raw;
mod read;
mod write;

pub use inspect::{ErofsInspection, detect_erofs, inspect_erofs};
pub use read::{ErofsEntry, ErofsInode, ErofsReader};
pub use write::{
    ErofsAlgorithm, ErofsBuildReport, ErofsBuilder, ErofsCompression, ErofsReservedSlot,
    ErofsWriteOptions,
};

/// [`ErofsBuilder`] under the short name.
pub type Builder = ErofsBuilder;
