//! The EROFS superblock: 128 bytes, little-endian, at byte 1024 of the image.

use serde::Serialize;

use crate::error::{Error, Result};
use imgpipe_fstree::le::{le_u16, le_u32, le_u64};

/// EROFS superblock magic.
pub const EROFS_MAGIC: u32 = 0xE0F5_E1E2;
/// Where the superblock starts.
pub const EROFS_SUPERBLOCK_OFFSET: u64 = 1024;

/// The fields of the EROFS superblock this crate reads today.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErofsSuperBlock {
    /// crc32c of the superblock block when `feature_compat` bit 0 is set.
    pub checksum: u32,
    /// Compatible feature flags.
    pub feature_compat: u32,
    /// log2 of the block size (9..=16 accepted here, 12 usual).
    pub blkszbits: u8,
    /// Number of superblock extension slots.
    pub sb_extslots: u8,
    /// Node id of the root directory.
    pub root_nid: u16,
    /// Total inode count.
    pub inos: u64,
    /// Build time, seconds since the epoch.
    pub build_time: u64,
    /// Nanoseconds part of the build time.
    pub build_time_nsec: u32,
    /// Total blocks.
    pub blocks: u32,
    /// Start block of the metadata area.
    pub meta_blkaddr: u32,
    /// Start block of the shared xattr area.
    pub xattr_blkaddr: u32,
    /// Filesystem UUID.
    pub uuid: [u8; 16],
    /// Volume name, NUL-padded.
    pub volume_name: [u8; 16],
    /// Incompatible feature flags.
    pub feature_incompat: u32,
}

impl ErofsSuperBlock {
    /// Encoded size in bytes.
    pub const SIZE: usize = 128;

    /// Parses a superblock from `b`, read at absolute offset `at`.
    pub fn parse(b: &[u8], at: u64) -> Result<Self> {
        let structure = "EROFS superblock";
        if b.len() < Self::SIZE {
            return Err(Error::Truncated {
                structure,
                offset: at,
                needed: Self::SIZE as u64,
                available: b.len() as u64,
            });
        }
        if le_u32(b, 0) != EROFS_MAGIC {
            return Err(Error::Malformed {
                structure,
                field: "magic",
                offset: at,
                reason: "not 0xE0F5E1E2",
            });
        }
        let blkszbits = b[12];
        if !(9..=16).contains(&blkszbits) {
            return Err(Error::Malformed {
                structure,
                field: "blkszbits",
                offset: at + 12,
                reason: "block size outside 512 B .. 64 KiB",
            });
        }
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&b[48..64]);
        let mut volume_name = [0u8; 16];
        volume_name.copy_from_slice(&b[64..80]);
        Ok(Self {
            checksum: le_u32(b, 4),
            feature_compat: le_u32(b, 8),
            blkszbits,
            sb_extslots: b[13],
            root_nid: le_u16(b, 14),
            inos: le_u64(b, 16),
            build_time: le_u64(b, 24),
            build_time_nsec: le_u32(b, 32),
            blocks: le_u32(b, 36),
            meta_blkaddr: le_u32(b, 40),
            xattr_blkaddr: le_u32(b, 44),
            uuid,
            volume_name,
            feature_incompat: le_u32(b, 80),
        })
    }

    /// Encodes the superblock (fields this type does not model are zero).
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        let mut put = |off: usize, v: &[u8]| b[off..off + v.len()].copy_from_slice(v);
        put(0, &EROFS_MAGIC.to_le_bytes());
        put(4, &self.checksum.to_le_bytes());
        put(8, &self.feature_compat.to_le_bytes());
        put(12, &[self.blkszbits, self.sb_extslots]);
        put(14, &self.root_nid.to_le_bytes());
        put(16, &self.inos.to_le_bytes());
        put(24, &self.build_time.to_le_bytes());
        put(32, &self.build_time_nsec.to_le_bytes());
        put(36, &self.blocks.to_le_bytes());
        put(40, &self.meta_blkaddr.to_le_bytes());
        put(44, &self.xattr_blkaddr.to_le_bytes());
        put(48, &self.uuid);
        put(64, &self.volume_name);
        put(80, &self.feature_incompat.to_le_bytes());
        b
    }
}

/// `EROFS_FEATURE_COMPAT_SB_CHKSUM`: the superblock block carries a crc32c.
pub const FEATURE_COMPAT_SB_CHKSUM: u32 = 0x1;
/// `EROFS_FEATURE_COMPAT_MTIME`: inode times are modification times.
pub const FEATURE_COMPAT_MTIME: u32 = 0x2;

/// The superblock checksum as the kernel verifies it: crc32c (Castagnoli, seed `!0`, no
/// final inversion) of the superblock block from byte 1024 on (`block_tail`: the block's
/// bytes after the first 1024, with the checksum field zero).
pub fn superblock_checksum(block_tail: &[u8]) -> u32 {
    const POLY: u32 = 0x82F6_3B78;
    let table: [u32; 256] = std::array::from_fn(|n| {
        let mut c = n as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
        }
        c
    });
    block_tail.iter().fold(!0u32, |crc, &b| {
        table[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_prefixes() {
        let sb = ErofsSuperBlock {
            checksum: 0,
            feature_compat: 0,
            blkszbits: 12,
            sb_extslots: 0,
            root_nid: 36,
            inos: 5,
            build_time: 1_700_000_000,
            build_time_nsec: 0,
            blocks: 10,
            meta_blkaddr: 0,
            xattr_blkaddr: 0,
            uuid: [9; 16],
            volume_name: *b"root\0\0\0\0\0\0\0\0\0\0\0\0",
            feature_incompat: 0,
        };
        let b = sb.to_bytes();
        assert_eq!(ErofsSuperBlock::parse(&b, 1024).unwrap(), sb);
        // crc32c("123456789") is 0xE3069283; the kernel's form skips the final inversion.
        assert_eq!(!superblock_checksum(b"123456789"), 0xE306_9283);
        for n in 0..ErofsSuperBlock::SIZE {
            assert!(ErofsSuperBlock::parse(&b[..n], 1024).is_err());
        }
    }
}
