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
    /// An unused slot.
    pub const EMPTY: Self = Self {
        status: 0,
        first_chs: [0; 3],
        partition_type: 0,
        last_chs: [0; 3],
        first_lba: 0,
        sectors: 0,
    };

    /// A partition covering `sectors` sectors from `first_lba`, with CHS fields computed for
    /// the customary 255 heads and 63 sectors per track.
    pub fn new(partition_type: u8, first_lba: u32, sectors: u32, bootable: bool) -> Self {
        let last = u64::from(first_lba) + u64::from(sectors.max(1)) - 1;
        Self {
            status: if bootable { 0x80 } else { 0 },
            first_chs: lba_to_chs(u64::from(first_lba)),
            partition_type,
            last_chs: lba_to_chs(last),
            first_lba,
            sectors,
        }
    }

    /// Whether the slot is unused.
    pub fn is_empty(&self) -> bool {
        self.partition_type == 0 && self.sectors == 0
    }
}

/// The CHS triple (head, sector | cylinder high bits, cylinder low byte) of `lba` for 255
/// heads and 63 sectors per track; addresses beyond cylinder 1023 saturate to `FE FF FF` as
/// fdisk writes them.
pub fn lba_to_chs(lba: u64) -> [u8; 3] {
    let cylinder = lba / (255 * 63);
    if cylinder > 1023 {
        return [0xFE, 0xFF, 0xFF];
    }
    let head = (lba / 63) % 255;
    let sector = lba % 63 + 1;
    [
        head as u8,
        (sector as u8 & 0x3F) | ((cylinder >> 2) as u8 & 0xC0),
        cylinder as u8,
    ]
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

    /// An MBR with no partitions, no boot code and the given disk signature.
    pub fn empty(disk_signature: u32) -> Self {
        Self {
            boot_code: [0; 440],
            disk_signature,
            partitions: [MbrPartition::EMPTY; 4],
        }
    }

    /// The protective MBR of a GPT disk of `disk_sectors` logical sectors (UEFI 2.10, 5.2.3):
    /// one 0xEE partition from LBA 1 to the end of the disk, or 0xFFFFFFFF sectors if larger.
    pub fn protective(disk_sectors: u64) -> Self {
        let sectors = u32::try_from(disk_sectors.saturating_sub(1)).unwrap_or(u32::MAX);
        let mut p = MbrPartition::new(0xEE, 1, sectors, false);
        if disk_sectors.saturating_sub(1) > u64::from(u32::MAX) || p.last_chs == [0xFE, 0xFF, 0xFF]
        {
            p.last_chs = [0xFF; 3];
        }
        let mut mbr = Self::empty(0);
        mbr.partitions[0] = p;
        mbr
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
    fn chs() {
        assert_eq!(lba_to_chs(0), [0, 1, 0]);
        assert_eq!(lba_to_chs(1), [0, 2, 0]);
        assert_eq!(lba_to_chs(2048), [32, 33, 0]);
        assert_eq!(lba_to_chs(16_450_559), [254, 0xFF, 0xFF]);
        assert_eq!(lba_to_chs(16_450_560), [0xFE, 0xFF, 0xFF]);
        let p = Mbr::protective(204_800);
        assert_eq!(p.partitions[0].sectors, 204_799);
        assert_eq!(p.partitions[0].first_chs, [0, 2, 0]);
        assert!(Mbr::protective(1 << 40).partitions[0].sectors == u32::MAX);
    }

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
