//! EROFS, laid out as the squashfs side is: [`raw`] on-disk structures, [`read`](ErofsReader)
//! (superblock, compact and extended inodes, directories, the uncompressed data layouts,
//! symlinks, device nodes, inline and shared xattrs), [`inspect`](inspect_erofs) and
//! [`write`](ErofsBuilder) (flat plain and inline layouts, or compressed with lz4, lz4hc,
//! lzma, deflate or zstd with big pclusters, fragments, ztailpacking and dedupe; compact and
//! extended inodes, inline and shared xattrs, hard links, special files, reserved slots).

mod decompress;
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
