//! Volume descriptors (ECMA-119, section 8): 2048-byte sectors from sector 16 on.

use serde::Serialize;

use crate::error::{Error, Result};

/// Logical sector size of the volume descriptor set.
pub const SECTOR_SIZE: usize = 2048;
/// Standard identifier of every volume descriptor.
pub const STANDARD_ID: [u8; 5] = *b"CD001";

/// The volume descriptor type byte (ECMA-119 8.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VolumeDescriptorType {
    /// 0: boot record (El Torito).
    BootRecord,
    /// 1: primary volume descriptor.
    Primary,
    /// 2: supplementary or enhanced (Joliet).
    Supplementary,
    /// 3: volume partition descriptor.
    Partition,
    /// 255: set terminator.
    Terminator,
    /// Any other value.
    Other(u8),
}

impl VolumeDescriptorType {
    /// From the on-disk byte.
    pub fn from_byte(b: u8) -> Self {
        match b {
            0 => Self::BootRecord,
            1 => Self::Primary,
            2 => Self::Supplementary,
            3 => Self::Partition,
            255 => Self::Terminator,
            x => Self::Other(x),
        }
    }
}

fn both_u32(b: &[u8], off: usize, at: u64, field: &'static str) -> Result<u32> {
    let le = u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]]);
    let be = u32::from_be_bytes([b[off + 4], b[off + 5], b[off + 6], b[off + 7]]);
    if le != be {
        return Err(Error::Malformed {
            structure: "primary volume descriptor",
            field,
            offset: at + off as u64,
            reason: "little- and big-endian copies disagree",
        });
    }
    Ok(le)
}

fn both_u16(b: &[u8], off: usize, at: u64, field: &'static str) -> Result<u16> {
    let le = u16::from_le_bytes([b[off], b[off + 1]]);
    let be = u16::from_be_bytes([b[off + 2], b[off + 3]]);
    if le != be {
        return Err(Error::Malformed {
            structure: "primary volume descriptor",
            field,
            offset: at + off as u64,
            reason: "little- and big-endian copies disagree",
        });
    }
    Ok(le)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .trim_end_matches([' ', '\0'])
        .to_string()
}

fn put_both_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
    b[off + 4..off + 8].copy_from_slice(&v.to_be_bytes());
}

fn put_both_u16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
    b[off + 2..off + 4].copy_from_slice(&v.to_be_bytes());
}

fn put_text(b: &mut [u8], off: usize, len: usize, s: &str) {
    let field = &mut b[off..off + len];
    field.fill(b' ');
    let n = s.len().min(len);
    field[..n].copy_from_slice(&s.as_bytes()[..n]);
}

/// The fields of the primary volume descriptor (ECMA-119 8.4) read today.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrimaryVolumeDescriptor {
    /// System identifier (a-characters).
    pub system_id: String,
    /// Volume identifier (d-characters).
    pub volume_id: String,
    /// Number of logical blocks in the volume.
    pub volume_space_size: u32,
    /// Logical block size (2048 in practice).
    pub logical_block_size: u16,
    /// Path table size in bytes.
    pub path_table_size: u32,
    /// Root directory record extent.
    pub root_extent: u32,
    /// Root directory record data length.
    pub root_size: u32,
    /// Application identifier.
    pub application_id: String,
}

impl PrimaryVolumeDescriptor {
    /// Parses a primary (or supplementary) volume descriptor sector read at offset `at`.
    pub fn parse(b: &[u8], at: u64) -> Result<Self> {
        let structure = "primary volume descriptor";
        if b.len() < SECTOR_SIZE {
            return Err(Error::Truncated {
                structure,
                offset: at,
                needed: SECTOR_SIZE as u64,
                available: b.len() as u64,
            });
        }
        if b[1..6] != STANDARD_ID {
            return Err(Error::Malformed {
                structure,
                field: "standard identifier",
                offset: at + 1,
                reason: "not CD001",
            });
        }
        let logical_block_size = both_u16(b, 128, at, "logical block size")?;
        if !matches!(logical_block_size, 512 | 1024 | 2048) {
            return Err(Error::Malformed {
                structure,
                field: "logical block size",
                offset: at + 128,
                reason: "not 512, 1024 or 2048",
            });
        }
        // Root directory record: 34 bytes at 156; extent at +2, data length at +10.
        Ok(Self {
            system_id: text(&b[8..40]),
            volume_id: text(&b[40..72]),
            volume_space_size: both_u32(b, 80, at, "volume space size")?,
            logical_block_size,
            path_table_size: both_u32(b, 132, at, "path table size")?,
            root_extent: both_u32(b, 158, at, "root directory extent")?,
            root_size: both_u32(b, 166, at, "root directory data length")?,
            application_id: text(&b[574..702]),
        })
    }

    /// Encodes the modelled fields into a descriptor sector (other fields zero or blank).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = vec![0u8; SECTOR_SIZE];
        b[0] = 1;
        b[1..6].copy_from_slice(&STANDARD_ID);
        b[6] = 1;
        put_text(&mut b, 8, 32, &self.system_id);
        put_text(&mut b, 40, 32, &self.volume_id);
        put_both_u32(&mut b, 80, self.volume_space_size);
        put_both_u16(&mut b, 120, 1);
        put_both_u16(&mut b, 124, 1);
        put_both_u16(&mut b, 128, self.logical_block_size);
        put_both_u32(&mut b, 132, self.path_table_size);
        b[156] = 34;
        put_both_u32(&mut b, 158, self.root_extent);
        put_both_u32(&mut b, 166, self.root_size);
        b[181] = 0x02;
        put_both_u16(&mut b, 184, 1);
        b[188] = 1;
        put_text(&mut b, 190, 128, "");
        put_text(&mut b, 318, 128, "");
        put_text(&mut b, 446, 128, "");
        put_text(&mut b, 574, 128, &self.application_id);
        put_text(&mut b, 702, 37 * 3, "");
        b[881] = 1;
        b
    }
}

/// The El Torito boot record volume descriptor (El Torito 1.0, section 2.0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootRecord {
    /// Boot system identifier ("EL TORITO SPECIFICATION" for El Torito).
    pub boot_system_id: String,
    /// Absolute sector of the boot catalog.
    pub catalog_lba: u32,
}

impl BootRecord {
    /// Parses a boot record sector.
    pub fn parse(b: &[u8], at: u64) -> Result<Self> {
        if b.len() < 75 {
            return Err(Error::Truncated {
                structure: "boot record volume descriptor",
                offset: at,
                needed: 75,
                available: b.len() as u64,
            });
        }
        Ok(Self {
            boot_system_id: text(&b[7..39]),
            catalog_lba: u32::from_le_bytes([b[71], b[72], b[73], b[74]]),
        })
    }

    /// Whether this is an El Torito boot record.
    pub fn is_el_torito(&self) -> bool {
        self.boot_system_id == "EL TORITO SPECIFICATION"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pvd_round_trip_and_prefixes() {
        let pvd = PrimaryVolumeDescriptor {
            system_id: "LINUX".into(),
            volume_id: "IMGPIPE".into(),
            volume_space_size: 200,
            logical_block_size: 2048,
            path_table_size: 10,
            root_extent: 20,
            root_size: 2048,
            application_id: "IMGPIPE".into(),
        };
        let b = pvd.to_bytes();
        assert_eq!(PrimaryVolumeDescriptor::parse(&b, 32768).unwrap(), pvd);
        for n in 0..SECTOR_SIZE {
            assert!(PrimaryVolumeDescriptor::parse(&b[..n], 32768).is_err());
        }
        let mut bad = b.clone();
        bad[84] = 9;
        let e = PrimaryVolumeDescriptor::parse(&bad, 32768)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("volume space size") && e.contains("32848"),
            "{e}"
        );
    }
}
