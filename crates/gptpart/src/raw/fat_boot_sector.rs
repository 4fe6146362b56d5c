//! The FAT boot sector and BIOS parameter block (Microsoft FAT specification, section 3).

use serde::Serialize;

use super::{le_u16, le_u32};
use crate::error::{Error, Result};

/// FAT variant, decided by the cluster count as the specification requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum FatType {
    /// Fewer than 4085 clusters.
    Fat12,
    /// Fewer than 65525 clusters.
    Fat16,
    /// 65525 clusters or more.
    Fat32,
}

/// The BPB fields that decide the layout of a FAT volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FatBootSector {
    /// Bytes per sector (512, 1024, 2048 or 4096).
    pub bytes_per_sector: u16,
    /// Sectors per cluster (a power of two up to 128).
    pub sectors_per_cluster: u8,
    /// Reserved sectors before the first FAT.
    pub reserved_sectors: u16,
    /// Number of FATs.
    pub num_fats: u8,
    /// Root directory entries (FAT12/16; 0 on FAT32).
    pub root_entries: u16,
    /// Total sectors.
    pub total_sectors: u32,
    /// Sectors per FAT.
    pub fat_size: u32,
    /// Volume serial number.
    pub volume_id: u32,
    /// Volume label from the boot sector (11 bytes, space padded).
    pub volume_label: String,
    /// Variant by cluster count.
    pub fat_type: FatType,
    /// Number of data clusters.
    pub clusters: u32,
}

impl FatBootSector {
    /// Parses and validates the boot sector at the start of `b`.
    pub fn parse(b: &[u8]) -> Result<Self> {
        let structure = "FAT boot sector";
        if b.len() < 512 {
            return Err(Error::Truncated {
                structure,
                offset: 0,
                needed: 512,
                available: b.len() as u64,
            });
        }
        let bad = |field, offset, reason| Error::Malformed {
            structure,
            field,
            offset,
            reason,
        };
        if !(b[0] == 0xEB && b[2] == 0x90) && b[0] != 0xE9 {
            return Err(bad("BS_jmpBoot", 0, "not a jump instruction"));
        }
        let bytes_per_sector = le_u16(b, 11);
        if !matches!(bytes_per_sector, 512 | 1024 | 2048 | 4096) {
            return Err(bad("BPB_BytsPerSec", 11, "not 512, 1024, 2048 or 4096"));
        }
        let sectors_per_cluster = b[13];
        if !sectors_per_cluster.is_power_of_two() {
            return Err(bad("BPB_SecPerClus", 13, "not a power of two"));
        }
        let reserved_sectors = le_u16(b, 14);
        if reserved_sectors == 0 {
            return Err(bad("BPB_RsvdSecCnt", 14, "zero"));
        }
        let num_fats = b[16];
        if num_fats == 0 {
            return Err(bad("BPB_NumFATs", 16, "zero"));
        }
        let root_entries = le_u16(b, 17);
        let total_sectors = match le_u16(b, 19) {
            0 => le_u32(b, 32),
            n => u32::from(n),
        };
        let fat_size = match le_u16(b, 22) {
            0 => le_u32(b, 36),
            n => u32::from(n),
        };
        if fat_size == 0 || total_sectors == 0 {
            return Err(bad("BPB_FATSz", 22, "FAT size or total sectors is zero"));
        }
        let bps = u32::from(bytes_per_sector);
        let root_dir_sectors = (u32::from(root_entries) * 32).div_ceil(bps);
        let meta = u64::from(reserved_sectors)
            + u64::from(num_fats) * u64::from(fat_size)
            + u64::from(root_dir_sectors);
        let data = u64::from(total_sectors)
            .checked_sub(meta)
            .ok_or_else(|| bad("BPB_TotSec", 19, "smaller than the metadata it must hold"))?;
        let clusters = (data / u64::from(sectors_per_cluster)) as u32;
        let fat_type = if clusters < 4085 {
            FatType::Fat12
        } else if clusters < 65525 {
            FatType::Fat16
        } else {
            FatType::Fat32
        };
        let ext = if fat_type == FatType::Fat32 { 64 } else { 36 };
        let (volume_id, volume_label) = if b[ext + 2] == 0x29 {
            let label = String::from_utf8_lossy(&b[ext + 7..ext + 18])
                .trim_end()
                .to_string();
            (le_u32(b, ext + 3), label)
        } else {
            (0, String::new())
        };
        Ok(Self {
            bytes_per_sector,
            sectors_per_cluster,
            reserved_sectors,
            num_fats,
            root_entries,
            total_sectors,
            fat_size,
            volume_id,
            volume_label,
            fat_type,
            clusters,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A FAT16 boot sector as mkfs.vfat would write it for a 16 MiB volume.
    pub(crate) fn fat16_sector() -> Vec<u8> {
        let mut b = vec![0u8; 512];
        b[..3].copy_from_slice(&[0xEB, 0x3C, 0x90]);
        b[3..11].copy_from_slice(b"mkfs.fat");
        b[11..13].copy_from_slice(&512u16.to_le_bytes());
        b[13] = 4;
        b[14..16].copy_from_slice(&4u16.to_le_bytes());
        b[16] = 2;
        b[17..19].copy_from_slice(&512u16.to_le_bytes());
        b[19..21].copy_from_slice(&32768u16.to_le_bytes());
        b[21] = 0xF8;
        b[22..24].copy_from_slice(&32u16.to_le_bytes());
        b[38] = 0x29;
        b[39..43].copy_from_slice(&0x1234_5678u32.to_le_bytes());
        b[43..54].copy_from_slice(b"ESP        ");
        b[54..62].copy_from_slice(b"FAT16   ");
        b[510] = 0x55;
        b[511] = 0xAA;
        b
    }

    #[test]
    fn parses_fat16() {
        let bs = FatBootSector::parse(&fat16_sector()).unwrap();
        assert_eq!(bs.fat_type, FatType::Fat16);
        assert_eq!(bs.volume_label, "ESP");
        assert_eq!(bs.volume_id, 0x1234_5678);
        let b = fat16_sector();
        for n in 0..512 {
            assert!(FatBootSector::parse(&b[..n]).is_err());
        }
    }
}
