//! The GPT header (UEFI 2.10, section 5.3.2) and partition entries (section 5.3.3).

use serde::Serialize;

use super::{Guid, le_u32, le_u64};
use crate::error::{Error, Result};

/// "EFI PART".
pub const GPT_SIGNATURE: [u8; 8] = *b"EFI PART";

/// A GPT header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GptHeader {
    /// Revision, 0x00010000 for 1.0.
    pub revision: u32,
    /// Header size in bytes (92 .. sector size).
    pub header_size: u32,
    /// CRC32 of the header with this field zeroed.
    pub header_crc32: u32,
    /// LBA of this header.
    pub my_lba: u64,
    /// LBA of the other header.
    pub alternate_lba: u64,
    /// First LBA usable by partitions.
    pub first_usable_lba: u64,
    /// Last LBA usable by partitions.
    pub last_usable_lba: u64,
    /// Disk GUID.
    pub disk_guid: Guid,
    /// Start LBA of the partition entry array.
    pub partition_entry_lba: u64,
    /// Number of entries in the array.
    pub num_partition_entries: u32,
    /// Size of each entry (128 * 2^n).
    pub partition_entry_size: u32,
    /// CRC32 of the entry array.
    pub partition_entry_array_crc32: u32,
}

impl GptHeader {
    /// Encoded size (the rest of the sector is zero).
    pub const SIZE: usize = 92;

    /// Parses a header read at byte offset `at`; checks signature, size and CRC.
    pub fn parse(b: &[u8], at: u64) -> Result<Self> {
        let structure = "GPT header";
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
        if b[..8] != GPT_SIGNATURE {
            return Err(bad("signature", 0, "not \"EFI PART\""));
        }
        let header_size = le_u32(b, 12);
        if (header_size as usize) < Self::SIZE || header_size as usize > b.len() {
            return Err(bad(
                "header_size",
                12,
                "smaller than 92 or larger than the sector",
            ));
        }
        let stored = le_u32(b, 16);
        let mut h = crc32fast::Hasher::new();
        h.update(&b[..16]);
        h.update(&[0; 4]);
        h.update(&b[20..header_size as usize]);
        if h.finalize() != stored {
            return Err(bad("header_crc32", 16, "CRC32 does not match"));
        }
        let entry_size = le_u32(b, 84);
        if entry_size < 128 || !entry_size.is_power_of_two() {
            return Err(bad("size_of_partition_entry", 84, "not 128 * 2^n"));
        }
        let mut guid = [0u8; 16];
        guid.copy_from_slice(&b[56..72]);
        Ok(Self {
            revision: le_u32(b, 8),
            header_size,
            header_crc32: stored,
            my_lba: le_u64(b, 24),
            alternate_lba: le_u64(b, 32),
            first_usable_lba: le_u64(b, 40),
            last_usable_lba: le_u64(b, 48),
            disk_guid: Guid(guid),
            partition_entry_lba: le_u64(b, 72),
            num_partition_entries: le_u32(b, 80),
            partition_entry_size: entry_size,
            partition_entry_array_crc32: le_u32(b, 88),
        })
    }

    /// Encodes the header (92 bytes) with a freshly computed CRC.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        b[..8].copy_from_slice(&GPT_SIGNATURE);
        b[8..12].copy_from_slice(&self.revision.to_le_bytes());
        b[12..16].copy_from_slice(&(Self::SIZE as u32).to_le_bytes());
        b[24..32].copy_from_slice(&self.my_lba.to_le_bytes());
        b[32..40].copy_from_slice(&self.alternate_lba.to_le_bytes());
        b[40..48].copy_from_slice(&self.first_usable_lba.to_le_bytes());
        b[48..56].copy_from_slice(&self.last_usable_lba.to_le_bytes());
        b[56..72].copy_from_slice(&self.disk_guid.0);
        b[72..80].copy_from_slice(&self.partition_entry_lba.to_le_bytes());
        b[80..84].copy_from_slice(&self.num_partition_entries.to_le_bytes());
        b[84..88].copy_from_slice(&self.partition_entry_size.to_le_bytes());
        b[88..92].copy_from_slice(&self.partition_entry_array_crc32.to_le_bytes());
        let crc = crc32fast::hash(&b);
        b[16..20].copy_from_slice(&crc.to_le_bytes());
        b
    }
}

/// A GPT partition entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GptEntry {
    /// Partition type GUID (nil = unused).
    pub type_guid: Guid,
    /// Unique partition GUID.
    pub unique_guid: Guid,
    /// First LBA.
    pub first_lba: u64,
    /// Last LBA (inclusive).
    pub last_lba: u64,
    /// Attribute bits.
    pub attributes: u64,
    /// Name (UTF-16LE on disk, up to 36 code units).
    pub name: String,
}

impl GptEntry {
    /// Size of an entry as this crate writes it.
    pub const SIZE: usize = 128;
    /// UTF-16 code units in the name field.
    pub const NAME_UNITS: usize = 36;

    /// Parses an entry of at least 128 bytes.
    pub fn parse(b: &[u8], at: u64) -> Result<Self> {
        if b.len() < 128 {
            return Err(Error::Truncated {
                structure: "GPT partition entry",
                offset: at,
                needed: 128,
                available: b.len() as u64,
            });
        }
        let guid = |off: usize| {
            let mut g = [0u8; 16];
            g.copy_from_slice(&b[off..off + 16]);
            Guid(g)
        };
        let units: Vec<u16> = b[56..128]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&u| u != 0)
            .collect();
        Ok(Self {
            type_guid: guid(0),
            unique_guid: guid(16),
            first_lba: le_u64(b, 32),
            last_lba: le_u64(b, 40),
            attributes: le_u64(b, 48),
            name: String::from_utf16_lossy(&units),
        })
    }

    /// Encodes the entry into 128 bytes; fails when the name needs more than 36 UTF-16 units.
    pub fn to_bytes(&self) -> Result<[u8; Self::SIZE]> {
        let mut b = [0u8; Self::SIZE];
        b[..16].copy_from_slice(&self.type_guid.0);
        b[16..32].copy_from_slice(&self.unique_guid.0);
        b[32..40].copy_from_slice(&self.first_lba.to_le_bytes());
        b[40..48].copy_from_slice(&self.last_lba.to_le_bytes());
        b[48..56].copy_from_slice(&self.attributes.to_le_bytes());
        let units: Vec<u16> = self.name.encode_utf16().collect();
        if units.len() > Self::NAME_UNITS {
            return Err(Error::InvalidName {
                name: self.name.clone(),
                reason: "a GPT partition name holds at most 36 UTF-16 code units",
            });
        }
        for (i, u) in units.iter().enumerate() {
            b[56 + 2 * i..58 + 2 * i].copy_from_slice(&u.to_le_bytes());
        }
        Ok(b)
    }

    /// Whether the entry is unused.
    pub fn is_unused(&self) -> bool {
        self.type_guid == Guid::NIL
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_round_trip_and_name_limit() {
        let mut e = GptEntry {
            type_guid: Guid([1; 16]),
            unique_guid: Guid([2; 16]),
            first_lba: 2048,
            last_lba: 4095,
            attributes: 1 << 60,
            name: "EFI system \u{e9}".into(),
        };
        let b = e.to_bytes().unwrap();
        assert_eq!(GptEntry::parse(&b, 0).unwrap(), e);
        e.name = "x".repeat(36);
        assert!(e.to_bytes().is_ok());
        e.name = "x".repeat(37);
        assert!(matches!(e.to_bytes(), Err(Error::InvalidName { .. })));
        for n in 0..128 {
            assert!(GptEntry::parse(&b[..n], 0).is_err());
        }
    }

    #[test]
    fn header_round_trip_and_crc() {
        let h = GptHeader {
            revision: 0x0001_0000,
            header_size: 92,
            header_crc32: 0,
            my_lba: 1,
            alternate_lba: 2047,
            first_usable_lba: 34,
            last_usable_lba: 2014,
            disk_guid: Guid([5; 16]),
            partition_entry_lba: 2,
            num_partition_entries: 128,
            partition_entry_size: 128,
            partition_entry_array_crc32: 0x1234,
        };
        let mut b = h.to_bytes().to_vec();
        b.resize(512, 0);
        let back = GptHeader::parse(&b, 512).unwrap();
        assert_eq!(back.disk_guid, h.disk_guid);
        assert_eq!(back.alternate_lba, 2047);
        b[40] ^= 1;
        let e = GptHeader::parse(&b, 512).unwrap_err().to_string();
        assert!(e.contains("header_crc32") && e.contains("528"), "{e}");
        for n in 0..GptHeader::SIZE {
            assert!(GptHeader::parse(&b[..n], 512).is_err());
        }
    }
}
