//! Volume descriptors (ECMA-119 section 8): 2048-byte sectors from sector 16 on.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::raw::directory_record::DirectoryRecord;
use crate::raw::field::{
    both_u16, both_u32, dec_date, parse_dec_date, put_both_u16, put_both_u32, put_text,
    put_ucs2_text, text, ucs2_text,
};

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

/// Joliet level from a supplementary descriptor's escape sequences (`%/@`, `%/C`, `%/E`).
pub fn joliet_level(escape_sequences: &[u8]) -> Option<u8> {
    match escape_sequences.get(..3)? {
        b"%/@" => Some(1),
        b"%/C" => Some(2),
        b"%/E" => Some(3),
        _ => None,
    }
}

/// A primary (ECMA-119 8.4) or Joliet supplementary (8.5) volume descriptor: the two share a
/// layout; a Joliet descriptor stores its text fields in UCS-2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrimaryVolumeDescriptor {
    /// Joliet level (1-3) for a Joliet supplementary descriptor, `None` for the primary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub joliet_level: Option<u8>,
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
    /// Location of the type L (little-endian) path table.
    pub type_l_path_table: u32,
    /// Location of the type M (big-endian) path table.
    pub type_m_path_table: u32,
    /// Root directory record extent.
    pub root_extent: u32,
    /// Root directory record data length.
    pub root_size: u32,
    /// Root directory record date (7-byte form).
    #[serde(skip)]
    pub root_recorded: [u8; 7],
    /// Volume set identifier.
    pub volume_set_id: String,
    /// Publisher identifier.
    pub publisher_id: String,
    /// Data preparer identifier.
    pub data_preparer_id: String,
    /// Application identifier.
    pub application_id: String,
    /// Volume creation date, Unix seconds.
    pub creation: Option<i64>,
    /// Volume modification date, Unix seconds.
    pub modification: Option<i64>,
    /// Volume effective date, Unix seconds.
    pub effective: Option<i64>,
}

impl PrimaryVolumeDescriptor {
    /// Parses a primary or supplementary volume descriptor sector read at offset `at`.
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
        let joliet = if b[0] == 2 {
            joliet_level(&b[88..120])
        } else {
            None
        };
        let logical_block_size = both_u16(b, 128, structure, "logical block size", at)?;
        if logical_block_size != 2048 {
            return Err(Error::Malformed {
                structure,
                field: "logical block size",
                offset: at + 128,
                reason: "not 2048",
            });
        }
        let (root, _) = DirectoryRecord::parse(&b[156..190], at + 156)?;
        let t = |r: std::ops::Range<usize>| {
            if joliet.is_some() {
                ucs2_text(&b[r])
            } else {
                text(&b[r])
            }
        };
        Ok(Self {
            joliet_level: joliet,
            system_id: t(8..40),
            volume_id: t(40..72),
            volume_space_size: both_u32(b, 80, structure, "volume space size", at)?,
            logical_block_size,
            path_table_size: both_u32(b, 132, structure, "path table size", at)?,
            type_l_path_table: u32::from_le_bytes([b[140], b[141], b[142], b[143]]),
            type_m_path_table: u32::from_be_bytes([b[148], b[149], b[150], b[151]]),
            root_extent: root.extent,
            root_size: root.data_length,
            root_recorded: root.recorded,
            volume_set_id: t(190..318),
            publisher_id: t(318..446),
            data_preparer_id: t(446..574),
            application_id: t(574..702),
            creation: parse_dec_date(&b[813..830]),
            modification: parse_dec_date(&b[830..847]),
            effective: parse_dec_date(&b[864..881]),
        })
    }

    /// Encodes the descriptor sector (type 1, or type 2 with Joliet escape sequences).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = vec![0u8; SECTOR_SIZE];
        b[0] = if self.joliet_level.is_some() { 2 } else { 1 };
        b[1..6].copy_from_slice(&STANDARD_ID);
        b[6] = 1;
        let put = |b: &mut Vec<u8>, off, len, s: &str| {
            if self.joliet_level.is_some() {
                put_ucs2_text(b, off, len, s);
            } else {
                put_text(b, off, len, s);
            }
        };
        put(&mut b, 8, 32, &self.system_id);
        put(&mut b, 40, 32, &self.volume_id);
        put_both_u32(&mut b, 80, self.volume_space_size);
        if let Some(level) = self.joliet_level {
            b[88..91].copy_from_slice(match level {
                1 => b"%/@",
                2 => b"%/C",
                _ => b"%/E",
            });
        }
        put_both_u16(&mut b, 120, 1);
        put_both_u16(&mut b, 124, 1);
        put_both_u16(&mut b, 128, self.logical_block_size);
        put_both_u32(&mut b, 132, self.path_table_size);
        b[140..144].copy_from_slice(&self.type_l_path_table.to_le_bytes());
        b[148..152].copy_from_slice(&self.type_m_path_table.to_be_bytes());
        let root = DirectoryRecord {
            extended_attribute_len: 0,
            extent: self.root_extent,
            data_length: self.root_size,
            recorded: self.root_recorded,
            flags: crate::raw::FLAG_DIRECTORY,
            file_unit_size: 0,
            interleave_gap: 0,
            volume_sequence: 1,
            identifier: vec![0],
            system_use: Vec::new(),
        };
        let mut rec = Vec::with_capacity(34);
        root.write_to(&mut rec);
        b[156..190].copy_from_slice(&rec);
        put(&mut b, 190, 128, &self.volume_set_id);
        put(&mut b, 318, 128, &self.publisher_id);
        put(&mut b, 446, 128, &self.data_preparer_id);
        put(&mut b, 574, 128, &self.application_id);
        put(&mut b, 702, 37, "");
        put(&mut b, 739, 37, "");
        put(&mut b, 776, 37, "");
        let unset = *b"0000000000000000\0";
        for (off, date) in [
            (813, self.creation),
            (830, self.modification),
            (847, None),
            (864, self.effective),
        ] {
            b[off..off + 17].copy_from_slice(&date.map_or(unset, dec_date));
        }
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

    /// Encodes the boot record sector (identifier NUL-padded as the spec asks).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = vec![0u8; SECTOR_SIZE];
        b[1..6].copy_from_slice(&STANDARD_ID);
        b[6] = 1;
        let id = self.boot_system_id.as_bytes();
        let n = id.len().min(32);
        b[7..7 + n].copy_from_slice(&id[..n]);
        b[71..75].copy_from_slice(&self.catalog_lba.to_le_bytes());
        b
    }
}

/// The volume descriptor set terminator sector (8.3).
pub fn terminator() -> Vec<u8> {
    let mut b = vec![0u8; SECTOR_SIZE];
    b[0] = 255;
    b[1..6].copy_from_slice(&STANDARD_ID);
    b[6] = 1;
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(joliet: Option<u8>) -> PrimaryVolumeDescriptor {
        PrimaryVolumeDescriptor {
            joliet_level: joliet,
            system_id: "LINUX".into(),
            volume_id: "IMGPIPE".into(),
            volume_space_size: 200,
            logical_block_size: 2048,
            path_table_size: 10,
            type_l_path_table: 19,
            type_m_path_table: 20,
            root_extent: 21,
            root_size: 2048,
            root_recorded: [123, 11, 14, 22, 13, 20, 0],
            volume_set_id: "SET".into(),
            publisher_id: String::new(),
            data_preparer_id: "IMGPIPE".into(),
            application_id: "IMGPIPE".into(),
            creation: Some(1_700_000_000),
            modification: Some(1_700_000_000),
            effective: None,
        }
    }

    #[test]
    fn pvd_round_trip_and_prefixes() {
        for joliet in [None, Some(3)] {
            let pvd = sample(joliet);
            let b = pvd.to_bytes();
            assert_eq!(PrimaryVolumeDescriptor::parse(&b, 32768).unwrap(), pvd);
            for n in 0..SECTOR_SIZE {
                assert!(PrimaryVolumeDescriptor::parse(&b[..n], 32768).is_err());
            }
        }
        let mut bad = sample(None).to_bytes();
        bad[84] = 9;
        let e = PrimaryVolumeDescriptor::parse(&bad, 32768)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("volume space size") && e.contains("32848"),
            "{e}"
        );
        let br = BootRecord {
            boot_system_id: "EL TORITO SPECIFICATION".into(),
            catalog_lba: 33,
        };
        assert_eq!(BootRecord::parse(&br.to_bytes(), 0).unwrap(), br);
    }
}
