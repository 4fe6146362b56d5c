//! Metadata blocks: a `u16` header (bit 15 set = stored uncompressed, low 15 bits = stored
//! length) followed by at most 8 KiB of (compressed) data. Inode, directory, fragment, export,
//! id and xattr tables are sequences of these.

use crate::error::{Error, Result};

/// Uncompressed size of every metadata block but the last of a table.
pub const METADATA_SIZE: usize = 8192;

/// The header of one metadata block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetadataHeader {
    /// Stored (on-disk) length of the block's data, 1..=8192.
    pub stored_len: u16,
    /// Whether the data is compressed.
    pub compressed: bool,
}

impl MetadataHeader {
    /// Parses the header word found at absolute offset `at`.
    pub fn parse(word: u16, at: u64) -> Result<Self> {
        let stored_len = word & 0x7fff;
        if stored_len == 0 || usize::from(stored_len) > METADATA_SIZE {
            return Err(Error::Malformed {
                structure: "metadata block",
                field: "length",
                offset: at,
                reason: "stored length not in 1..=8192",
            });
        }
        Ok(Self {
            stored_len,
            compressed: word & 0x8000 == 0,
        })
    }

    /// The on-disk header word.
    pub fn to_word(self) -> u16 {
        self.stored_len | if self.compressed { 0 } else { 0x8000 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bounds() {
        for (len, c) in [(1u16, true), (8192, false), (300, true)] {
            let h = MetadataHeader {
                stored_len: len,
                compressed: c,
            };
            assert_eq!(MetadataHeader::parse(h.to_word(), 0).unwrap(), h);
        }
        assert!(MetadataHeader::parse(0, 0).is_err());
        assert!(MetadataHeader::parse(0x8000, 0).is_err());
        assert!(MetadataHeader::parse(8193, 0).is_err());
    }
}
