//! EROFS inodes: the 32-byte compact form and the 64-byte extended form
//! (`struct erofs_inode_compact` / `struct erofs_inode_extended` in `erofs_fs.h`).
//!
//! `i_format` bit 0 is the version (extended when set), bits 1..=3 the data layout. A compact
//! inode keeps a 32-bit size and 16-bit ids and has no time of its own: it takes the
//! image's build time. The xattr body that follows an inode is
//! `12 + 4 * (i_xattr_icount - 1)` bytes when `i_xattr_icount` is not zero.

use super::malformed;
use crate::error::{Error, Result};
use imgpipe_fstree::le::{le_u16, le_u32, le_u64};

/// Data layout: blocks from `i_u` on, the last one partial.
pub const FLAT_PLAIN: u8 = 0;
/// Data layout: compressed, full cluster indexes.
pub const COMPRESSED_FULL: u8 = 1;
/// Data layout: blocks from `i_u` on, the tail right after the inode.
pub const FLAT_INLINE: u8 = 2;
/// Data layout: compressed, compact cluster indexes.
pub const COMPRESSED_COMPACT: u8 = 3;
/// Data layout: chunks found through a block map or chunk indexes after the inode.
pub const CHUNK_BASED: u8 = 4;
/// `i_u` of a chunk-based inode: chunk indexes (8 bytes) rather than a block map (4 bytes).
pub const CHUNK_FORMAT_INDEXES: u32 = 0x20;
/// A block address meaning "no block" (a hole, or only an inline tail).
pub const NULL_ADDR: u32 = u32::MAX;

/// The fields of a compact or extended inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InodeHeader {
    /// `i_format`: version bit and data layout.
    pub format: u16,
    /// `i_xattr_icount`: size of the xattr body in 4-byte units (see [`xattr_body_size`]).
    pub xattr_icount: u16,
    /// `i_mode`: file type and permission bits.
    pub mode: u16,
    /// `i_nlink`.
    pub nlink: u32,
    /// `i_size`.
    pub size: u64,
    /// `i_u`: start block, device number or chunk format, by type and layout.
    pub u: u32,
    /// `i_ino`: the inode number for stat(2).
    pub ino: u32,
    /// `i_uid`.
    pub uid: u32,
    /// `i_gid`.
    pub gid: u32,
    /// `i_mtime` and `i_mtime_nsec` of an extended inode; `None` for a compact one.
    pub mtime: Option<(u64, u32)>,
}

impl InodeHeader {
    /// Size of a compact inode.
    pub const COMPACT_SIZE: usize = 32;
    /// Size of an extended inode.
    pub const EXTENDED_SIZE: usize = 64;

    /// Whether `i_format` (the first two bytes of any inode) says extended.
    pub fn is_extended_format(format: u16) -> bool {
        format & 1 != 0
    }

    /// Whether this is the 64-byte extended form.
    pub fn extended(&self) -> bool {
        Self::is_extended_format(self.format)
    }

    /// Encoded size: 32 or 64.
    pub fn encoded_len(&self) -> usize {
        if self.extended() {
            Self::EXTENDED_SIZE
        } else {
            Self::COMPACT_SIZE
        }
    }

    /// The data layout (`FLAT_PLAIN` .. `CHUNK_BASED`).
    pub fn layout(&self) -> u8 {
        ((self.format >> 1) & 7) as u8
    }

    /// Parses an inode from `b` (32 bytes for a compact one, 64 for an extended one), read at
    /// absolute offset `at`.
    pub fn parse(b: &[u8], at: u64) -> Result<Self> {
        let need = match b.get(..2) {
            Some(f) if Self::is_extended_format(u16::from_le_bytes([f[0], f[1]])) => {
                Self::EXTENDED_SIZE
            }
            _ => Self::COMPACT_SIZE,
        };
        if b.len() < need {
            return Err(Error::Truncated {
                structure: "EROFS inode",
                offset: at,
                needed: need as u64,
                available: b.len() as u64,
            });
        }
        let format = le_u16(b, 0);
        let h = if need == Self::EXTENDED_SIZE {
            Self {
                format,
                xattr_icount: le_u16(b, 2),
                mode: le_u16(b, 4),
                nlink: le_u32(b, 44),
                size: le_u64(b, 8),
                u: le_u32(b, 16),
                ino: le_u32(b, 20),
                uid: le_u32(b, 24),
                gid: le_u32(b, 28),
                mtime: Some((le_u64(b, 32), le_u32(b, 40))),
            }
        } else {
            Self {
                format,
                xattr_icount: le_u16(b, 2),
                mode: le_u16(b, 4),
                nlink: u32::from(le_u16(b, 6)),
                size: u64::from(le_u32(b, 8)),
                u: le_u32(b, 16),
                ino: le_u32(b, 20),
                uid: u32::from(le_u16(b, 24)),
                gid: u32::from(le_u16(b, 26)),
                mtime: None,
            }
        };
        if h.layout() > CHUNK_BASED {
            return Err(malformed(
                "EROFS inode",
                "i_format",
                at,
                "unknown data layout",
            ));
        }
        Ok(h)
    }

    /// Encodes the inode in the form its `format` says; fields the compact form cannot hold
    /// are truncated to its widths (the caller chooses the form).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = vec![0u8; self.encoded_len()];
        let mut put = |off: usize, v: &[u8]| b[off..off + v.len()].copy_from_slice(v);
        put(0, &self.format.to_le_bytes());
        put(2, &self.xattr_icount.to_le_bytes());
        put(4, &self.mode.to_le_bytes());
        put(16, &self.u.to_le_bytes());
        put(20, &self.ino.to_le_bytes());
        if self.extended() {
            let (mtime, nsec) = self.mtime.unwrap_or((0, 0));
            put(8, &self.size.to_le_bytes());
            put(24, &self.uid.to_le_bytes());
            put(28, &self.gid.to_le_bytes());
            put(32, &mtime.to_le_bytes());
            put(40, &nsec.to_le_bytes());
            put(44, &self.nlink.to_le_bytes());
        } else {
            put(6, &(self.nlink as u16).to_le_bytes());
            put(8, &(self.size as u32).to_le_bytes());
            put(24, &(self.uid as u16).to_le_bytes());
            put(26, &(self.gid as u16).to_le_bytes());
        }
        b
    }
}

/// Bytes of the xattr body after an inode with this `i_xattr_icount`.
pub fn xattr_body_size(xattr_icount: u16) -> u64 {
    if xattr_icount == 0 {
        0
    } else {
        12 + 4 * (u64::from(xattr_icount) - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_prefixes() {
        let compact = InodeHeader {
            format: u16::from(FLAT_INLINE) << 1,
            xattr_icount: 0,
            mode: 0o100644,
            nlink: 1,
            size: 5000,
            u: 7,
            ino: 3,
            uid: 1000,
            gid: 100,
            mtime: None,
        };
        let extended = InodeHeader {
            format: 1 | u16::from(CHUNK_BASED) << 1,
            size: 1 << 40,
            uid: 70_000,
            mtime: Some((1_700_000_000, 123_456_789)),
            nlink: 70_000,
            ..compact
        };
        for h in [compact, extended] {
            let b = h.to_bytes();
            assert_eq!(b.len(), h.encoded_len());
            assert_eq!(InodeHeader::parse(&b, 0).unwrap(), h);
            for n in 0..b.len() {
                assert!(InodeHeader::parse(&b[..n], 0).is_err(), "{n}");
            }
        }
        let mut bad = compact.to_bytes();
        bad[0] = 5 << 1;
        assert!(InodeHeader::parse(&bad, 0).is_err());
        assert_eq!(xattr_body_size(0), 0);
        assert_eq!(xattr_body_size(1), 12);
        assert_eq!(xattr_body_size(3), 20);
    }
}
