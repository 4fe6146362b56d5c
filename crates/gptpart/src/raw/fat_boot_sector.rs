//! The FAT boot sector and BIOS parameter block (Microsoft FAT specification, section 3), and
//! the FAT32 FSInfo sector (section 5).

use serde::Serialize;

use super::{le_u16, le_u32};
use crate::error::{Error, Result};

/// FAT variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum FatType {
    /// 12-bit FAT entries, fewer than 4085 clusters.
    Fat12,
    /// 16-bit FAT entries, 4085 to 65524 clusters.
    Fat16,
    /// 28-bit FAT entries (BPB_FATSz16 is zero).
    Fat32,
}

impl FatType {
    /// Bits per FAT entry.
    pub fn bits(self) -> u32 {
        match self {
            FatType::Fat12 => 12,
            FatType::Fat16 => 16,
            FatType::Fat32 => 32,
        }
    }
}

/// The BPB fields that decide the layout of a FAT volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FatBootSector {
    /// OEM name (8 bytes, informational).
    pub oem_name: String,
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
    /// Media descriptor (0xF8 fixed disk).
    pub media: u8,
    /// Sectors per FAT.
    pub fat_size: u32,
    /// Sectors per track (CHS geometry, informational).
    pub sectors_per_track: u16,
    /// Heads (CHS geometry, informational).
    pub heads: u16,
    /// Sectors before this volume on its disk.
    pub hidden_sectors: u32,
    /// First cluster of the root directory (FAT32; 0 otherwise).
    pub root_cluster: u32,
    /// Sector of the FSInfo structure (FAT32; 0 otherwise).
    pub fs_info_sector: u16,
    /// Sector of the boot sector copy (FAT32; 0 otherwise).
    pub backup_boot_sector: u16,
    /// Volume serial number.
    pub volume_id: u32,
    /// Volume label from the boot sector (11 bytes, space padded; trimmed here).
    pub volume_label: String,
    /// Variant.
    pub fat_type: FatType,
    /// Number of data clusters.
    pub clusters: u32,
}

/// Offsets of the extended BPB (BS_DrvNum) for FAT12/16 and FAT32.
const EXT_FAT16: usize = 36;
const EXT_FAT32: usize = 64;

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
        let fat_size16 = le_u16(b, 22);
        let fat_size = match fat_size16 {
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
        // As Linux and dosfstools decide: a zero 16-bit FAT size means FAT32, otherwise the
        // cluster count separates FAT12 from FAT16.
        let fat_type = if fat_size16 == 0 {
            FatType::Fat32
        } else if clusters < 4085 {
            FatType::Fat12
        } else if clusters < 65525 {
            FatType::Fat16
        } else {
            return Err(bad(
                "BPB_FATSz16",
                22,
                "too many clusters for FAT16 but not marked FAT32",
            ));
        };
        // Every cluster needs a FAT entry.
        let fat_bytes = u64::from(fat_size) * u64::from(bps);
        if (u64::from(clusters) + 2) * u64::from(fat_type.bits()) / 8 > fat_bytes {
            return Err(bad("BPB_FATSz", 22, "FAT too small for the cluster count"));
        }
        let (ext, root_cluster, fs_info_sector, backup_boot_sector) = if fat_type == FatType::Fat32
        {
            if root_entries != 0 {
                return Err(bad("BPB_RootEntCnt", 17, "not zero on FAT32"));
            }
            (EXT_FAT32, le_u32(b, 44), le_u16(b, 48), le_u16(b, 50))
        } else {
            if root_entries == 0 {
                return Err(bad("BPB_RootEntCnt", 17, "zero on FAT12/16"));
            }
            (EXT_FAT16, 0, 0, 0)
        };
        if fat_type == FatType::Fat32 && (root_cluster < 2 || root_cluster - 2 >= clusters) {
            return Err(bad("BPB_RootClus", 44, "not a data cluster"));
        }
        let (volume_id, volume_label) = if b[ext + 2] == 0x29 {
            let label = String::from_utf8_lossy(&b[ext + 7..ext + 18])
                .trim_end()
                .to_string();
            (le_u32(b, ext + 3), label)
        } else {
            (0, String::new())
        };
        Ok(Self {
            oem_name: String::from_utf8_lossy(&b[3..11]).trim_end().to_string(),
            bytes_per_sector,
            sectors_per_cluster,
            reserved_sectors,
            num_fats,
            root_entries,
            total_sectors,
            media: b[21],
            fat_size,
            sectors_per_track: le_u16(b, 24),
            heads: le_u16(b, 26),
            hidden_sectors: le_u32(b, 28),
            root_cluster,
            fs_info_sector,
            backup_boot_sector,
            volume_id,
            volume_label,
            fat_type,
            clusters,
        })
    }

    /// Byte offset of the first FAT.
    pub fn fat_offset(&self) -> u64 {
        u64::from(self.reserved_sectors) * u64::from(self.bytes_per_sector)
    }

    /// Byte offset of the FAT12/16 root directory region (the data region on FAT32).
    pub fn root_dir_offset(&self) -> u64 {
        self.fat_offset()
            + u64::from(self.num_fats) * u64::from(self.fat_size) * u64::from(self.bytes_per_sector)
    }

    /// Byte offset of cluster 2, the first data cluster.
    pub fn data_offset(&self) -> u64 {
        let bps = u64::from(self.bytes_per_sector);
        self.root_dir_offset() + (u64::from(self.root_entries) * 32).div_ceil(bps) * bps
    }

    /// Bytes per cluster.
    pub fn cluster_size(&self) -> u64 {
        u64::from(self.bytes_per_sector) * u64::from(self.sectors_per_cluster)
    }

    /// Encodes the boot sector (`bytes_per_sector` long) with a tiny boot program that hands
    /// control back to the BIOS (INT 18h), as a data volume should. `clusters` is ignored.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = vec![0u8; usize::from(self.bytes_per_sector).max(512)];
        let fat32 = self.fat_type == FatType::Fat32;
        let ext = if fat32 { EXT_FAT32 } else { EXT_FAT16 };
        let code = ext + 26;
        // JMP SHORT to the boot code, NOP.
        b[..3].copy_from_slice(&[0xEB, (code - 2) as u8, 0x90]);
        let mut oem = [b' '; 8];
        for (o, c) in oem.iter_mut().zip(self.oem_name.bytes()) {
            *o = c;
        }
        b[3..11].copy_from_slice(&oem);
        b[11..13].copy_from_slice(&self.bytes_per_sector.to_le_bytes());
        b[13] = self.sectors_per_cluster;
        b[14..16].copy_from_slice(&self.reserved_sectors.to_le_bytes());
        b[16] = self.num_fats;
        b[17..19].copy_from_slice(&self.root_entries.to_le_bytes());
        match u16::try_from(self.total_sectors) {
            Ok(n) if !fat32 => b[19..21].copy_from_slice(&n.to_le_bytes()),
            _ => b[32..36].copy_from_slice(&self.total_sectors.to_le_bytes()),
        }
        b[21] = self.media;
        if fat32 {
            b[36..40].copy_from_slice(&self.fat_size.to_le_bytes());
            b[44..48].copy_from_slice(&self.root_cluster.to_le_bytes());
            b[48..50].copy_from_slice(&self.fs_info_sector.to_le_bytes());
            b[50..52].copy_from_slice(&self.backup_boot_sector.to_le_bytes());
        } else {
            b[22..24].copy_from_slice(&(self.fat_size as u16).to_le_bytes());
        }
        b[24..26].copy_from_slice(&self.sectors_per_track.to_le_bytes());
        b[26..28].copy_from_slice(&self.heads.to_le_bytes());
        b[28..32].copy_from_slice(&self.hidden_sectors.to_le_bytes());
        b[ext] = 0x80;
        b[ext + 2] = 0x29;
        b[ext + 3..ext + 7].copy_from_slice(&self.volume_id.to_le_bytes());
        let mut label = [b' '; 11];
        let text = if self.volume_label.is_empty() {
            "NO NAME"
        } else {
            &self.volume_label
        };
        for (o, c) in label.iter_mut().zip(text.bytes()) {
            *o = c;
        }
        b[ext + 7..ext + 18].copy_from_slice(&label);
        let fs_type: &[u8; 8] = match self.fat_type {
            FatType::Fat12 => b"FAT12   ",
            FatType::Fat16 => b"FAT16   ",
            FatType::Fat32 => b"FAT32   ",
        };
        b[ext + 18..ext + 26].copy_from_slice(fs_type);
        // INT 18h (boot failure: try the next device), then halt forever.
        b[code..code + 5].copy_from_slice(&[0xCD, 0x18, 0xF4, 0xEB, 0xFD]);
        b[510] = 0x55;
        b[511] = 0xAA;
        b
    }
}

/// The FAT32 FSInfo sector: free cluster count and next free cluster hints.
pub fn fs_info_sector(bytes_per_sector: u16, free_count: u32, next_free: u32) -> Vec<u8> {
    let mut b = vec![0u8; usize::from(bytes_per_sector).max(512)];
    b[..4].copy_from_slice(&0x4161_5252u32.to_le_bytes());
    b[484..488].copy_from_slice(&0x6141_7272u32.to_le_bytes());
    b[488..492].copy_from_slice(&free_count.to_le_bytes());
    b[492..496].copy_from_slice(&next_free.to_le_bytes());
    b[508..512].copy_from_slice(&0xAA55_0000u32.to_le_bytes());
    b
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
        // Round trip through our encoder.
        let again = FatBootSector::parse(&bs.to_bytes()).unwrap();
        assert_eq!(again, bs);
    }

    #[test]
    fn fat32_round_trip() {
        let bs = FatBootSector {
            oem_name: "MSWIN4.1".into(),
            bytes_per_sector: 512,
            sectors_per_cluster: 1,
            reserved_sectors: 32,
            num_fats: 2,
            root_entries: 0,
            total_sectors: 131_072,
            media: 0xF8,
            fat_size: 1009,
            sectors_per_track: 63,
            heads: 255,
            hidden_sectors: 2048,
            root_cluster: 2,
            fs_info_sector: 1,
            backup_boot_sector: 6,
            volume_id: 0xdead_beef,
            volume_label: "EFI".into(),
            fat_type: FatType::Fat32,
            clusters: 131_072 - 32 - 2 * 1009,
        };
        let b = bs.to_bytes();
        assert_eq!(&b[82..90], b"FAT32   ");
        assert_eq!(FatBootSector::parse(&b).unwrap(), bs);
    }
}
