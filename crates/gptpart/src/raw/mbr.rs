//! The classic MBR: boot code, four 16-byte partition entries at byte 446, 0x55AA at 510.

use serde::Serialize;

use super::le_u32;
use crate::error::{Error, Result};

/// One MBR partition entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MbrPartition {
    /// 0x80 = active (bootable), 0x00 = inactive.
    pub status: u8,
    /// CHS address of the first sector, as stored.
    pub first_chs: [u8; 3],
    /// Partition type (0xEE GPT protective, 0xEF EFI system, 0x83 Linux, ...).
    pub partition_type: u8,
    /// CHS address of the last sector, as stored.
    pub last_chs: [u8; 3],
    /// First sector (LBA).
    pub first_lba: u32,
    /// Number of sectors.
    pub sectors: u32,
}

impl MbrPartition {
    /// Whether the slot is unused.
    pub fn is_empty(&self) -> bool {
        self.partition_type == 0 && self.sectors == 0
    }
}

/// A master boot record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mbr {
    /// Boot code, bytes 0..440.
    pub boot_code: [u8; 440],
    /// Disk signature, bytes 440..444.
    pub disk_signature: u32,
    /// The four partition entries.
    pub partitions: [MbrPartition; 4],
}

impl Mbr {
    /// Size of the MBR sector.
    pub const SIZE: usize = 512;

    /// Parses an MBR from the first 512 bytes of `b`.
    pub fn parse(b: &[u8]) -> Result<Self> {
        if b.len() < Self::SIZE {
            return Err(Error::Truncated {
                structure: "MBR",
                offset: 0,
                needed: Self::SIZE as u64,
                available: b.len() as u64,
            });
        }
        if b[510..512] != [0x55, 0xAA] {
            return Err(Error::Malformed {
                structure: "MBR",
                field: "boot signature",
                offset: 510,
                reason: "not 0x55 0xAA",
            });
        }
        let mut boot_code = [0u8; 440];
        boot_code.copy_from_slice(&b[..440]);
        let entry = |i: usize| {
            let e = &b[446 + 16 * i..446 + 16 * (i + 1)];
            MbrPartition {
                status: e[0],
                first_chs: [e[1], e[2], e[3]],
                partition_type: e[4],
                last_chs: [e[5], e[6], e[7]],
                first_lba: le_u32(e, 8),
                sectors: le_u32(e, 12),
            }
        };
        Ok(Self {
            boot_code,
            disk_signature: le_u32(b, 440),
            partitions: [entry(0), entry(1), entry(2), entry(3)],
        })
    }

    /// Encodes the MBR sector.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        b[..440].copy_from_slice(&self.boot_code);
        b[440..444].copy_from_slice(&self.disk_signature.to_le_bytes());
        for (i, p) in self.partitions.iter().enumerate() {
            let e = &mut b[446 + 16 * i..446 + 16 * (i + 1)];
            e[0] = p.status;
            e[1..4].copy_from_slice(&p.first_chs);
            e[4] = p.partition_type;
            e[5..8].copy_from_slice(&p.last_chs);
            e[8..12].copy_from_slice(&p.first_lba.to_le_bytes());
            e[12..16].copy_from_slice(&p.sectors.to_le_bytes());
        }
        b[510] = 0x55;
        b[511] = 0xAA;
        b
    }

    /// Whether this is a GPT protective MBR (a 0xEE partition present).
    pub fn is_protective(&self) -> bool {
        self.partitions.iter().any(|p| p.partition_type == 0xEE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_prefixes() {
        let mut m = Mbr {
            boot_code: [0; 440],
            disk_signature: 0xdead_beef,
            partitions: [MbrPartition {
                status: 0,
                first_chs: [0; 3],
                partition_type: 0,
                last_chs: [0; 3],
                first_lba: 0,
                sectors: 0,
            }; 4],
        };
        m.partitions[0] = MbrPartition {
            status: 0x80,
            first_chs: [0, 2, 0],
            partition_type: 0xEE,
            last_chs: [0xff, 0xff, 0xff],
            first_lba: 1,
            sectors: 2047,
        };
        let b = m.to_bytes();
        let back = Mbr::parse(&b).unwrap();
        assert_eq!(back, m);
        assert!(back.is_protective());
        for n in 0..Mbr::SIZE {
            assert!(Mbr::parse(&b[..n]).is_err());
        }
    }
}
