//! Table entries: fragment entries, xattr id entries and key/value pairs, compressor options,
//! and the size words of data blocks.

use serde::Serialize;

use super::superblock::Compressor;
use super::{Input, SliceInput};
use crate::error::{Error, Result};

/// Bit of a data block size word meaning "stored uncompressed".
const DATA_UNCOMPRESSED: u32 = 1 << 24;

/// Splits a data (or fragment) block size word into stored length and "is compressed".
/// A word of 0 is a sparse block (nothing stored, all zeros).
pub fn data_block_size(word: u32) -> (u32, bool) {
    (
        word & (DATA_UNCOMPRESSED - 1),
        word & DATA_UNCOMPRESSED == 0,
    )
}

/// The size word for a stored block.
pub fn encode_data_block_size(stored_len: u32, compressed: bool) -> u32 {
    stored_len | if compressed { 0 } else { DATA_UNCOMPRESSED }
}

/// One fragment table entry (16 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentEntry {
    /// Absolute position of the fragment block.
    pub start: u64,
    /// Size word (as for data blocks).
    pub size: u32,
}

impl FragmentEntry {
    /// Encoded size.
    pub const SIZE: usize = 16;

    /// Parses an entry.
    pub fn parse(b: &[u8; 16]) -> Self {
        let mut s = [0; 8];
        s.copy_from_slice(&b[..8]);
        Self {
            start: u64::from_le_bytes(s),
            size: u32::from_le_bytes([b[8], b[9], b[10], b[11]]),
        }
    }

    /// Appends the encoded entry (the unused word is zero).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.start.to_le_bytes());
        out.extend_from_slice(&self.size.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
    }
}

/// The header the superblock's `xattr_table` points at, followed by the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XattrIdTableHeader {
    /// Position of the first key/value metadata block.
    pub kv_start: u64,
    /// Number of xattr id entries.
    pub ids: u32,
}

impl XattrIdTableHeader {
    /// Encoded size.
    pub const SIZE: usize = 16;

    /// Parses the header.
    pub fn parse(b: &[u8; 16]) -> Self {
        let mut s = [0; 8];
        s.copy_from_slice(&b[..8]);
        Self {
            kv_start: u64::from_le_bytes(s),
            ids: u32::from_le_bytes([b[8], b[9], b[10], b[11]]),
        }
    }

    /// Appends the encoded header.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.kv_start.to_le_bytes());
        out.extend_from_slice(&self.ids.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
    }
}

/// One xattr id entry (16 bytes): where an inode's key/value pairs are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XattrIdEntry {
    /// Reference into the key/value metadata: block << 16 | offset.
    pub xattr_ref: u64,
    /// Number of pairs.
    pub count: u32,
    /// Total encoded size of the pairs.
    pub size: u32,
}

impl XattrIdEntry {
    /// Encoded size.
    pub const SIZE: usize = 16;

    /// Parses an entry.
    pub fn parse(b: &[u8; 16]) -> Self {
        let mut s = [0; 8];
        s.copy_from_slice(&b[..8]);
        Self {
            xattr_ref: u64::from_le_bytes(s),
            count: u32::from_le_bytes([b[8], b[9], b[10], b[11]]),
            size: u32::from_le_bytes([b[12], b[13], b[14], b[15]]),
        }
    }

    /// Appends the encoded entry.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.xattr_ref.to_le_bytes());
        out.extend_from_slice(&self.count.to_le_bytes());
        out.extend_from_slice(&self.size.to_le_bytes());
    }
}

/// Name prefixes by xattr key type.
pub(crate) const XATTR_PREFIXES: [&[u8]; 3] = [b"user.", b"trusted.", b"security."];
/// Key type bit: the value is a `u64` reference to a value stored elsewhere.
pub(crate) const XATTR_VALUE_OOL: u16 = 0x100;

/// An xattr key: prefix type and the name without its prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XattrKey {
    /// 0 `user.`, 1 `trusted.`, 2 `security.`, optionally | 0x100 (value out of line).
    pub kind: u16,
    /// Name without the prefix.
    pub name: Vec<u8>,
}

impl XattrKey {
    /// Splits a full name (`security.selinux`) into a key; `None` for prefixes squashfs
    /// cannot store (`system.*`).
    pub fn from_full_name(full: &[u8]) -> Option<Self> {
        XATTR_PREFIXES.iter().enumerate().find_map(|(i, p)| {
            full.strip_prefix(*p).map(|rest| Self {
                kind: i as u16,
                name: rest.to_vec(),
            })
        })
    }

    /// The full name with its prefix.
    pub fn full_name(&self) -> Option<Vec<u8>> {
        let p = XATTR_PREFIXES.get(usize::from(self.kind & 0xff))?;
        Some([*p, &self.name[..]].concat())
    }

    pub(crate) fn read(input: &mut impl Input) -> Result<Self> {
        const S: &str = "xattr key";
        let at = input.offset();
        let kind = input.u16(S)?;
        let n = input.u16(S)?;
        if kind & !XATTR_VALUE_OOL > 2 {
            return Err(Error::Malformed {
                structure: S,
                field: "type",
                offset: at,
                reason: "unknown prefix",
            });
        }
        let name = input.bytes(usize::from(n), S)?;
        Ok(Self { kind, name })
    }

    /// Appends the encoded key.
    pub fn write_to(&self, out: &mut Vec<u8>) -> Result<()> {
        let n = u16::try_from(self.name.len()).map_err(|_| Error::InvalidOption {
            option: "xattr",
            reason: "name longer than 65535",
        })?;
        out.extend_from_slice(&self.kind.to_le_bytes());
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&self.name);
        Ok(())
    }
}

/// The compressor options block (present when the superblock flag says so).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "compressor", rename_all = "lowercase")]
pub enum CompressorOptions {
    /// zlib: level 1..=9, window bits 8..=15, strategy bit mask.
    Gzip {
        /// Compression level.
        level: u32,
        /// Window bits.
        window_size: u16,
        /// Strategy bit mask.
        strategies: u16,
    },
    /// xz: dictionary size and BCJ filter bit mask.
    Xz {
        /// Dictionary size.
        dictionary_size: u32,
        /// Filter bit mask.
        filters: u32,
    },
    /// lz4: format version (1) and flags (1 = high compression).
    Lz4 {
        /// Format version.
        version: u32,
        /// Flags.
        flags: u32,
    },
    /// zstd: level.
    Zstd {
        /// Compression level.
        level: u32,
    },
    /// lzo: algorithm and level.
    Lzo {
        /// Algorithm (0..=4; 4 is lzo1x_999).
        algorithm: u32,
        /// Level (lzo1x_999 only).
        level: u32,
    },
}

impl CompressorOptions {
    /// Parses the (decompressed) options block for `compressor`.
    pub fn parse(compressor: Compressor, b: &[u8], at: u64) -> Result<Self> {
        let mut i = SliceInput::new(b, at);
        const S: &str = "compressor options";
        Ok(match compressor {
            Compressor::Gzip => Self::Gzip {
                level: i.u32(S)?,
                window_size: i.u16(S)?,
                strategies: i.u16(S)?,
            },
            Compressor::Xz => Self::Xz {
                dictionary_size: i.u32(S)?,
                filters: i.u32(S)?,
            },
            Compressor::Lz4 => Self::Lz4 {
                version: i.u32(S)?,
                flags: i.u32(S)?,
            },
            Compressor::Zstd => Self::Zstd { level: i.u32(S)? },
            Compressor::Lzo => Self::Lzo {
                algorithm: i.u32(S)?,
                level: i.u32(S)?,
            },
            Compressor::Lzma => {
                return Err(Error::Unsupported {
                    feature: "compressor options for legacy lzma",
                });
            }
        })
    }

    /// Encodes the options.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        match *self {
            Self::Gzip {
                level,
                window_size,
                strategies,
            } => {
                v.extend_from_slice(&level.to_le_bytes());
                v.extend_from_slice(&window_size.to_le_bytes());
                v.extend_from_slice(&strategies.to_le_bytes());
            }
            Self::Xz {
                dictionary_size: a,
                filters: b,
            }
            | Self::Lz4 {
                version: a,
                flags: b,
            }
            | Self::Lzo {
                algorithm: a,
                level: b,
            } => {
                v.extend_from_slice(&a.to_le_bytes());
                v.extend_from_slice(&b.to_le_bytes());
            }
            Self::Zstd { level } => v.extend_from_slice(&level.to_le_bytes()),
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_round_trip() {
        let all = [
            (
                Compressor::Gzip,
                CompressorOptions::Gzip {
                    level: 6,
                    window_size: 15,
                    strategies: 0,
                },
            ),
            (
                Compressor::Xz,
                CompressorOptions::Xz {
                    dictionary_size: 1 << 17,
                    filters: 1,
                },
            ),
            (
                Compressor::Lz4,
                CompressorOptions::Lz4 {
                    version: 1,
                    flags: 0,
                },
            ),
            (Compressor::Zstd, CompressorOptions::Zstd { level: 19 }),
            (
                Compressor::Lzo,
                CompressorOptions::Lzo {
                    algorithm: 4,
                    level: 8,
                },
            ),
        ];
        for (c, o) in all {
            let b = o.to_bytes();
            assert_eq!(CompressorOptions::parse(c, &b, 0).unwrap(), o);
            assert!(CompressorOptions::parse(c, &b[..b.len() - 1], 0).is_err());
        }
    }

    #[test]
    fn xattr_names() {
        let k = XattrKey::from_full_name(b"security.selinux").unwrap();
        assert_eq!((k.kind, &k.name[..]), (2, &b"selinux"[..]));
        assert_eq!(k.full_name().unwrap(), b"security.selinux");
        assert!(XattrKey::from_full_name(b"system.posix_acl_access").is_none());
    }

    #[test]
    fn size_words() {
        assert_eq!(
            data_block_size(encode_data_block_size(1000, false)),
            (1000, false)
        );
        assert_eq!(
            data_block_size(encode_data_block_size(1000, true)),
            (1000, true)
        );
    }
}
