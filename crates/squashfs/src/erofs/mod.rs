//! EROFS, laid out as the squashfs side is: [`raw`] on-disk structures, [`read`](ErofsReader)
//! (superblock, compact and extended inodes, directories, the uncompressed data layouts,
//! symlinks, device nodes, inline and shared xattrs) and [`inspect`](inspect_erofs). A writer
//! will live beside them in `write`.

mod inspect;
pub mod raw;
mod read;

pub use inspect::{ErofsInspection, detect_erofs, inspect_erofs};
pub use read::{ErofsEntry, ErofsInode, ErofsReader};
