//! The squashfs 4.0 superblock: 96 bytes, little-endian, at the start of the image.

use serde::Serialize;

use crate::error::{Error, Result};
use imgpipe_fstree::le::{le_u16, le_u32, le_u64};

/// `hsqs` read as a little-endian u32.
pub const SQUASHFS_MAGIC: u32 = 0x7371_7368;

/// Superblock `flags` bits (squashfs-tools `squashfs_fs.h`).
pub mod flags {
    /// Inodes are stored uncompressed.
    pub const UNCOMPRESSED_INODES: u16 = 0x0001;
    /// Data blocks are stored uncompressed.
    pub const UNCOMPRESSED_DATA: u16 = 0x0002;
    /// Fragment blocks are stored uncompressed.
    pub const UNCOMPRESSED_FRAGMENTS: u16 = 0x0008;
    /// No fragments were used.
    pub const NO_FRAGMENTS: u16 = 0x0010;
    /// Tail ends of large files are packed into fragments too.
    pub const ALWAYS_FRAGMENTS: u16 = 0x0020;
    /// Duplicate files were detected and stored once.
    pub const DUPLICATES: u16 = 0x0040;
    /// An export table (NFS) is present.
    pub const EXPORTABLE: u16 = 0x0080;
    /// Xattrs are stored uncompressed.
    pub const UNCOMPRESSED_XATTRS: u16 = 0x0100;
    /// No xattrs were stored.
    pub const NO_XATTRS: u16 = 0x0200;
    /// A compressor options block follows the superblock.
    pub const COMPRESSOR_OPTIONS: u16 = 0x0400;
    /// The id table is stored uncompressed.
    pub const UNCOMPRESSED_IDS: u16 = 0x0800;
}

/// Compression algorithm ids of the superblock's `compressor` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compressor {
    /// 1: zlib (gzip).
    Gzip,
    /// 2: LZMA (legacy).
    Lzma,
    /// 3: LZO.
    Lzo,
    /// 4: XZ.
    Xz,
    /// 5: LZ4.
    Lz4,
    /// 6: Zstandard.
    Zstd,
}

impl Compressor {
    /// The on-disk id.
    pub fn id(self) -> u16 {
        match self {
            Self::Gzip => 1,
            Self::Lzma => 2,
            Self::Lzo => 3,
            Self::Xz => 4,
            Self::Lz4 => 5,
            Self::Zstd => 6,
        }
    }

    /// The name squashfs-tools uses (`-comp NAME`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Gzip => "gzip",
            Self::Lzma => "lzma",
            Self::Lzo => "lzo",
            Self::Xz => "xz",
            Self::Lz4 => "lz4",
            Self::Zstd => "zstd",
        }
    }

    /// The compressor for a squashfs-tools name.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::Gzip,
            Self::Lzma,
            Self::Lzo,
            Self::Xz,
            Self::Lz4,
            Self::Zstd,
        ]
        .into_iter()
        .find(|c| c.name() == name)
    }

    /// The compressor for an on-disk id.
    pub fn from_id(id: u16) -> Option<Self> {
        Some(match id {
            1 => Self::Gzip,
            2 => Self::Lzma,
            3 => Self::Lzo,
            4 => Self::Xz,
            5 => Self::Lz4,
            6 => Self::Zstd,
            _ => return None,
        })
    }
}

/// The squashfs superblock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SuperBlock {
    /// Number of inodes.
    pub inode_count: u32,
    /// Modification time of the image (seconds since the epoch).
    pub mod_time: u32,
    /// Data block size (4 KiB .. 1 MiB, a power of two).
    pub block_size: u32,
    /// Number of fragment entries.
    pub frag_count: u32,
    /// Compressor.
    pub compressor: Compressor,
    /// log2(block_size); must agree with `block_size`.
    pub block_log: u16,
    /// Superblock flags.
    pub flags: u16,
    /// Number of entries in the id table.
    pub id_count: u16,
    /// Major version, 4.
    pub version_major: u16,
    /// Minor version, 0.
    pub version_minor: u16,
    /// Reference to the root directory inode.
    pub root_inode: u64,
    /// Bytes used by the image (not padded).
    pub bytes_used: u64,
    /// Start of the id table.
    pub id_table: u64,
    /// Start of the xattr id table, or `u64::MAX`.
    pub xattr_table: u64,
    /// Start of the inode table.
    pub inode_table: u64,
    /// Start of the directory table.
    pub dir_table: u64,
    /// Start of the fragment table, or `u64::MAX`.
    pub frag_table: u64,
    /// Start of the export table, or `u64::MAX`.
    pub export_table: u64,
}

impl SuperBlock {
    /// Encoded size in bytes.
    pub const SIZE: usize = 96;

    /// Parses and validates a superblock read at absolute offset `at`.
    pub fn parse(b: &[u8], at: u64) -> Result<Self> {
        let structure = "squashfs superblock";
        if b.len() < Self::SIZE {
            return Err(Error::Truncated {
                structure,
                offset: at,
                needed: Self::SIZE as u64,
                available: b.len() as u64,
            });
        }
        let bad = |field, off: usize, reason| Error::Malformed {
            structure,
            field,
            offset: at + off as u64,
            reason,
        };
        if le_u32(b, 0) != SQUASHFS_MAGIC {
            return Err(bad("s_magic", 0, "not hsqs"));
        }
        let (version_major, version_minor) = (le_u16(b, 28), le_u16(b, 30));
        if (version_major, version_minor) != (4, 0) {
            return Err(Error::Unsupported {
                feature: "squashfs version other than 4.0",
            });
        }
        let block_size = le_u32(b, 12);
        let block_log = le_u16(b, 22);
        if !(12..=20).contains(&block_log) || block_size != 1 << block_log {
            return Err(bad(
                "block_size",
                12,
                "not a power of two from 4 KiB to 1 MiB agreeing with block_log",
            ));
        }
        let compressor = Compressor::from_id(le_u16(b, 20))
            .ok_or_else(|| bad("compressor", 20, "unknown compressor id"))?;
        Ok(Self {
            inode_count: le_u32(b, 4),
            mod_time: le_u32(b, 8),
            block_size,
            frag_count: le_u32(b, 16),
            compressor,
            block_log,
            flags: le_u16(b, 24),
            id_count: le_u16(b, 26),
            version_major,
            version_minor,
            root_inode: le_u64(b, 32),
            bytes_used: le_u64(b, 40),
            id_table: le_u64(b, 48),
            xattr_table: le_u64(b, 56),
            inode_table: le_u64(b, 64),
            dir_table: le_u64(b, 72),
            frag_table: le_u64(b, 80),
            export_table: le_u64(b, 88),
        })
    }

    /// Encodes the superblock.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        let mut put = |off: usize, v: &[u8]| b[off..off + v.len()].copy_from_slice(v);
        put(0, &SQUASHFS_MAGIC.to_le_bytes());
        put(4, &self.inode_count.to_le_bytes());
        put(8, &self.mod_time.to_le_bytes());
        put(12, &self.block_size.to_le_bytes());
        put(16, &self.frag_count.to_le_bytes());
        put(20, &self.compressor.id().to_le_bytes());
        put(22, &self.block_log.to_le_bytes());
        put(24, &self.flags.to_le_bytes());
        put(26, &self.id_count.to_le_bytes());
        put(28, &self.version_major.to_le_bytes());
        put(30, &self.version_minor.to_le_bytes());
        put(32, &self.root_inode.to_le_bytes());
        put(40, &self.bytes_used.to_le_bytes());
        put(48, &self.id_table.to_le_bytes());
        put(56, &self.xattr_table.to_le_bytes());
        put(64, &self.inode_table.to_le_bytes());
        put(72, &self.dir_table.to_le_bytes());
        put(80, &self.frag_table.to_le_bytes());
        put(88, &self.export_table.to_le_bytes());
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> SuperBlock {
        SuperBlock {
            inode_count: 3,
            mod_time: 1_700_000_000,
            block_size: 131_072,
            frag_count: 1,
            compressor: Compressor::Zstd,
            block_log: 17,
            flags: 0x0c0,
            id_count: 1,
            version_major: 4,
            version_minor: 0,
            root_inode: 0x20,
            bytes_used: 4096,
            id_table: 4000,
            xattr_table: u64::MAX,
            inode_table: 96,
            dir_table: 200,
            frag_table: 300,
            export_table: u64::MAX,
        }
    }

    #[test]
    fn round_trip() {
        let sb = sample();
        assert_eq!(SuperBlock::parse(&sb.to_bytes(), 0).unwrap(), sb);
    }

    #[test]
    fn every_truncated_prefix_fails() {
        let b = sample().to_bytes();
        for n in 0..SuperBlock::SIZE {
            assert!(SuperBlock::parse(&b[..n], 0).is_err());
        }
    }

    #[test]
    fn block_log_must_agree() {
        let mut b = sample().to_bytes();
        b[22] = 16;
        let err = SuperBlock::parse(&b, 0).unwrap_err().to_string();
        assert!(err.contains("block_size"), "{err}");
    }
}
