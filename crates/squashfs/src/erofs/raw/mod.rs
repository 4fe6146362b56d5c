//! Raw EROFS on-disk structures (the kernel's `erofs_fs.h`, erofs-utils), each parsed and
//! encoded side by side: the superblock, compact and extended inodes, directory entries,
//! xattr bodies and entries, compressed-inode maps and compression configs. Nothing here reads an image or decompresses: the reader
//! ([`super::ErofsReader`]) does that.

mod dirent;
mod inode;
mod superblock;
mod xattr;
mod zmap;

pub use dirent::{
    Dirent, dir_block_ranges, dir_size, dirent_file_type, encode_dir, parse_dir_block,
};
pub use inode::{
    CHUNK_BASED, CHUNK_FORMAT_INDEXES, COMPRESSED_COMPACT, COMPRESSED_FULL, FLAT_INLINE,
    FLAT_PLAIN, InodeHeader, NULL_ADDR, xattr_body_size,
};
pub use superblock::{
    EROFS_MAGIC, EROFS_SUPERBLOCK_OFFSET, ErofsSuperBlock, FEATURE_COMPAT_MTIME,
    FEATURE_COMPAT_SB_CHKSUM, FEATURE_COMPAT_XATTR_FILTER, FEATURE_INCOMPAT_BIG_PCLUSTER,
    FEATURE_INCOMPAT_CHUNKED_FILE, FEATURE_INCOMPAT_COMPR_CFGS, FEATURE_INCOMPAT_COMPR_HEAD2,
    FEATURE_INCOMPAT_DEDUPE, FEATURE_INCOMPAT_DEVICE_TABLE, FEATURE_INCOMPAT_FRAGMENTS,
    FEATURE_INCOMPAT_XATTR_PREFIXES, FEATURE_INCOMPAT_ZERO_PADDING, FEATURE_INCOMPAT_ZTAILPACKING,
    superblock_checksum,
};
pub use xattr::{
    LongPrefix, XATTR_BODY_HEADER_SIZE, XATTR_LONG_PREFIX, XattrEntry, xattr_index, xattr_prefix,
};
pub use zmap::{
    ADVISE_BIG_PCLUSTER_1, ADVISE_BIG_PCLUSTER_2, ADVISE_COMPACTED_2B, ADVISE_FRAGMENT_PCLUSTER,
    ADVISE_INLINE_PCLUSTER, ADVISE_INTERLACED_PCLUSTER, COMPRESSION_DEFLATE, COMPRESSION_LZ4,
    COMPRESSION_LZMA, COMPRESSION_ZSTD, CompactLayout, CompactSlot, CompressionConfig,
    FRAGMENT_INODE_BIT, LCLUSTER_TYPE_HEAD1, LCLUSTER_TYPE_HEAD2, LCLUSTER_TYPE_NONHEAD,
    LCLUSTER_TYPE_PLAIN, LI_D0_CBLKCNT, LI_PARTIAL_REF, Lcluster, LclusterIndex, MapHeader,
    PCLUSTER_MAX_DSIZE, PCLUSTER_MAX_SIZE, compact_index_offset, compression_name, decode_compact,
    encode_compact, full_index_offset, map_header_offset,
};

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
