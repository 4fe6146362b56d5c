//! The EROFS superblock: 128 bytes, little-endian, at byte 1024 of the image.

use serde::Serialize;

use crate::error::{Error, Result};
use imgpipe_fstree::le::{le_u16, le_u32, le_u64};

/// EROFS superblock magic.
pub const EROFS_MAGIC: u32 = 0xE0F5_E1E2;
/// Where the superblock starts.
pub const EROFS_SUPERBLOCK_OFFSET: u64 = 1024;

/// The fields of the EROFS superblock this crate reads today.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
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
    /// `available_compr_algs`: with `COMPR_CFGS`, the bitmap of compression algorithms
    /// whose config records follow the superblock; without it the same 16 bits are
    /// `lz4_max_distance` (see [`ErofsSuperBlock::lz4_max_distance`]).
    pub available_compr_algs: u16,
    /// `extra_devices`: devices besides the primary one.
    pub extra_devices: u16,
    /// `devt_slotoff`: where the device table starts, in 128-byte slots.
    pub devt_slotoff: u16,
    /// `dirblkbits`: directory block size in bits beyond the block size (0 today).
    pub dirblkbits: u8,
    /// `xattr_prefix_count`: number of long xattr name prefixes.
    pub xattr_prefix_count: u8,
    /// `xattr_prefix_start`: where the long prefixes start, in 4-byte units (of the packed
    /// inode's content when there is one, else of the image).
    pub xattr_prefix_start: u32,
    /// `packed_nid`: the nid of the packed inode holding fragments (0: none).
    pub packed_nid: u64,
    /// `xattr_filter_reserved`: reserved for the xattr name filter.
    pub xattr_filter_reserved: u8,
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
            available_compr_algs: le_u16(b, 84),
            extra_devices: le_u16(b, 86),
            devt_slotoff: le_u16(b, 88),
            dirblkbits: b[90],
            xattr_prefix_count: b[91],
            xattr_prefix_start: le_u32(b, 92),
            packed_nid: le_u64(b, 96),
            xattr_filter_reserved: b[104],
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
        put(84, &self.available_compr_algs.to_le_bytes());
        put(86, &self.extra_devices.to_le_bytes());
        put(88, &self.devt_slotoff.to_le_bytes());
        put(90, &[self.dirblkbits, self.xattr_prefix_count]);
        put(92, &self.xattr_prefix_start.to_le_bytes());
        put(96, &self.packed_nid.to_le_bytes());
        put(104, &[self.xattr_filter_reserved]);
        b
    }

    /// `lz4_max_distance`: the LZ4 window of an image without `COMPR_CFGS` (the same field
    /// as `available_compr_algs`); 0 means the default 64 KiB.
    pub fn lz4_max_distance(&self) -> u16 {
        self.available_compr_algs
    }

    /// The size of the superblock with its extension slots (`128 + 16 * sb_extslots`):
    /// compression config records start this far after byte 1024.
    pub fn sb_size(&self) -> u64 {
        Self::SIZE as u64 + 16 * u64::from(self.sb_extslots)
    }

    /// Compression algorithms the image may use, as a bitmap of `COMPRESSION_*` ids: the
    /// config bitmap with `COMPR_CFGS`, else lz4 alone.
    pub fn compr_algs(&self) -> u16 {
        if self.feature_incompat & FEATURE_INCOMPAT_COMPR_CFGS != 0 {
            self.available_compr_algs
        } else {
            1
        }
    }

    /// The names of the feature flags set (compatible ones, then incompatible ones), and
    /// the bits this crate does not know.
    pub fn feature_names(&self) -> (Vec<&'static str>, u32, u32) {
        let pick = |v: u32, table: &[(u32, &'static str)]| {
            let mut names = Vec::new();
            let mut known = 0;
            for &(bit, name) in table {
                known |= bit;
                if v & bit != 0 {
                    names.push(name);
                }
            }
            (names, v & !known)
        };
        let (mut names, compat_unknown) = pick(self.feature_compat, FEATURE_COMPAT_NAMES);
        let (incompat, incompat_unknown) = pick(self.feature_incompat, FEATURE_INCOMPAT_NAMES);
        names.extend(incompat);
        (names, compat_unknown, incompat_unknown)
    }
}

/// `EROFS_FEATURE_COMPAT_XATTR_FILTER`: xattr bodies carry a name bloom filter.
pub const FEATURE_COMPAT_XATTR_FILTER: u32 = 0x4;
/// `EROFS_FEATURE_INCOMPAT_ZERO_PADDING` (`LZ4_0PADDING`): compressed data ends at its
/// pcluster's end, zeros before it.
pub const FEATURE_INCOMPAT_ZERO_PADDING: u32 = 0x1;
/// `EROFS_FEATURE_INCOMPAT_COMPR_CFGS`: compression config records follow the superblock.
pub const FEATURE_INCOMPAT_COMPR_CFGS: u32 = 0x2;
/// `EROFS_FEATURE_INCOMPAT_BIG_PCLUSTER` (the same bit as `COMPR_CFGS`).
pub const FEATURE_INCOMPAT_BIG_PCLUSTER: u32 = 0x2;
/// `EROFS_FEATURE_INCOMPAT_CHUNKED_FILE`: chunk-based files.
pub const FEATURE_INCOMPAT_CHUNKED_FILE: u32 = 0x4;
/// `EROFS_FEATURE_INCOMPAT_DEVICE_TABLE`: extra devices (the same bit as `COMPR_HEAD2`).
pub const FEATURE_INCOMPAT_DEVICE_TABLE: u32 = 0x8;
/// `EROFS_FEATURE_INCOMPAT_COMPR_HEAD2`: HEAD2 lclusters (a second algorithm).
pub const FEATURE_INCOMPAT_COMPR_HEAD2: u32 = 0x8;
/// `EROFS_FEATURE_INCOMPAT_ZTAILPACKING`: inline compressed tails.
pub const FEATURE_INCOMPAT_ZTAILPACKING: u32 = 0x10;
/// `EROFS_FEATURE_INCOMPAT_FRAGMENTS`: tails (or whole files) in the packed inode.
pub const FEATURE_INCOMPAT_FRAGMENTS: u32 = 0x20;
/// `EROFS_FEATURE_INCOMPAT_DEDUPE` (the same bit as `FRAGMENTS`).
pub const FEATURE_INCOMPAT_DEDUPE: u32 = 0x20;
/// `EROFS_FEATURE_INCOMPAT_XATTR_PREFIXES`: long xattr name prefixes.
pub const FEATURE_INCOMPAT_XATTR_PREFIXES: u32 = 0x40;

const FEATURE_COMPAT_NAMES: &[(u32, &str)] = &[
    (FEATURE_COMPAT_SB_CHKSUM, "sb_csum"),
    (FEATURE_COMPAT_MTIME, "mtime"),
    (FEATURE_COMPAT_XATTR_FILTER, "xattr_filter"),
];

// The names dump.erofs prints: a bit with two meanings gets both names (except
// device_table, which dump.erofs alone names).
const FEATURE_INCOMPAT_NAMES: &[(u32, &str)] = &[
    (FEATURE_INCOMPAT_ZERO_PADDING, "0padding"),
    (FEATURE_INCOMPAT_COMPR_CFGS, "compr_cfgs"),
    (FEATURE_INCOMPAT_BIG_PCLUSTER, "big_pcluster"),
    (FEATURE_INCOMPAT_CHUNKED_FILE, "chunked_file"),
    (FEATURE_INCOMPAT_DEVICE_TABLE, "device_table"),
    (FEATURE_INCOMPAT_ZTAILPACKING, "ztailpacking"),
    (FEATURE_INCOMPAT_FRAGMENTS, "fragments"),
    (FEATURE_INCOMPAT_DEDUPE, "dedupe"),
    (FEATURE_INCOMPAT_XATTR_PREFIXES, "xattr_prefixes"),
];

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
            feature_incompat: 0x7f,
            available_compr_algs: 0xf,
            extra_devices: 0,
            devt_slotoff: 0,
            dirblkbits: 0,
            xattr_prefix_count: 3,
            xattr_prefix_start: 0x1234,
            packed_nid: 77,
            xattr_filter_reserved: 0,
        };
        let b = sb.to_bytes();
        let (names, cu, iu) = sb.feature_names();
        assert_eq!(names.len(), 9);
        assert_eq!((cu, iu), (0, 0));
        assert_eq!(sb.compr_algs(), 0xf);
        assert_eq!(ErofsSuperBlock::parse(&b, 1024).unwrap(), sb);
        // crc32c("123456789") is 0xE3069283; the kernel's form skips the final inversion.
        assert_eq!(!superblock_checksum(b"123456789"), 0xE306_9283);
        for n in 0..ErofsSuperBlock::SIZE {
            assert!(ErofsSuperBlock::parse(&b[..n], 1024).is_err());
        }
    }
}
