//! Raw EROFS on-disk structures (the kernel's `erofs_fs.h`, erofs-utils), each parsed and
//! encoded side by side: the superblock, compact and extended inodes, directory entries,
//! xattr bodies and entries. Nothing here reads an image or decompresses: the reader
//! ([`super::ErofsReader`]) does that.

mod dirent;
mod inode;
mod superblock;
mod xattr;

pub use dirent::{
    Dirent, dir_block_ranges, dir_size, dirent_file_type, encode_dir, parse_dir_block,
};
pub use inode::{
    CHUNK_BASED, CHUNK_FORMAT_INDEXES, COMPRESSED_COMPACT, COMPRESSED_FULL, FLAT_INLINE,
    FLAT_PLAIN, InodeHeader, NULL_ADDR, xattr_body_size,
};
pub use superblock::{
    EROFS_MAGIC, EROFS_SUPERBLOCK_OFFSET, ErofsSuperBlock, FEATURE_COMPAT_MTIME,
    FEATURE_COMPAT_SB_CHKSUM, superblock_checksum,
};
pub use xattr::{XATTR_BODY_HEADER_SIZE, XattrEntry, xattr_index, xattr_prefix};

use crate::error::Error;

pub(crate) fn malformed(
    structure: &'static str,
    field: &'static str,
    offset: u64,
    reason: &'static str,
) -> Error {
    Error::Malformed {
        structure,
        field,
        offset,
        reason,
    }
}
