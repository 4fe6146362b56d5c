//! The El Torito boot catalog (El Torito 1.0, section 2): validation entry, default entry,
//! section headers and section entries, 32 bytes each.

use serde::Serialize;

use crate::error::{Error, Result};

/// Platform id of x86 PC BIOS.
pub const PLATFORM_BIOS: u8 = 0;
/// Platform id of UEFI.
pub const PLATFORM_EFI: u8 = 0xEF;
/// Most catalog entries read (the catalog is capped at 64 sectors).
pub const MAX_CATALOG_ENTRIES: usize = 64 * 64;

/// Boot media emulation of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Emulation {
    /// 0: no emulation.
    NoEmulation,
    /// 1: 1.2 MB floppy.
    Floppy12,
    /// 2: 1.44 MB floppy.
    Floppy144,
    /// 3: 2.88 MB floppy.
    Floppy288,
    /// 4: hard disk.
    HardDisk,
    /// Anything else.
    Other(u8),
}

impl Emulation {
    fn from_byte(b: u8) -> Self {
        match b & 0x0F {
            0 => Self::NoEmulation,
            1 => Self::Floppy12,
            2 => Self::Floppy144,
            3 => Self::Floppy288,
            4 => Self::HardDisk,
            x => Self::Other(x),
        }
    }

    fn to_byte(self) -> u8 {
        match self {
            Self::NoEmulation => 0,
            Self::Floppy12 => 1,
            Self::Floppy144 => 2,
            Self::Floppy288 => 3,
            Self::HardDisk => 4,
            Self::Other(x) => x,
        }
    }
}

/// One bootable (or not) image entry of the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootEntry {
    /// Platform of the section (the validation entry's for the default entry).
    pub platform: u8,
    /// Boot indicator 0x88 (bootable) or 0x00.
    pub bootable: bool,
    /// Media emulation.
    pub emulation: Emulation,
    /// Load segment (0 means the traditional 0x7C0).
    pub load_segment: u16,
    /// System type (partition type byte for hard-disk emulation).
    pub system_type: u8,
    /// Sector count: 512-byte virtual sectors loaded by BIOS.
    pub sector_count: u16,
    /// Load RBA: the image's first 2048-byte block.
    pub load_rba: u32,
    /// Section identifier string of the section header (empty for the default entry).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub section_id: String,
}

/// The boot catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootCatalog {
    /// Platform id of the validation entry.
    pub platform: u8,
    /// Manufacturer/developer id string of the validation entry.
    pub id_string: String,
    /// The default entry first, then every section entry in catalog order.
    pub entries: Vec<BootEntry>,
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .trim_end_matches([' ', '\0'])
        .to_string()
}

fn parse_entry(e: &[u8], platform: u8, section_id: String, at: u64) -> Result<BootEntry> {
    let bootable = match e[0] {
        0x88 => true,
        0x00 => false,
        _ => {
            return Err(Error::Malformed {
                structure: "El Torito catalog entry",
                field: "boot indicator",
                offset: at,
                reason: "neither 0x88 nor 0x00",
            });
        }
    };
    Ok(BootEntry {
        platform,
        bootable,
        emulation: Emulation::from_byte(e[1]),
        load_segment: u16::from_le_bytes([e[2], e[3]]),
        system_type: e[4],
        sector_count: u16::from_le_bytes([e[6], e[7]]),
        load_rba: u32::from_le_bytes([e[8], e[9], e[10], e[11]]),
        section_id,
    })
}

impl BootCatalog {
    /// Parses a catalog from `b` (one or more sectors read at absolute offset `at`).
    pub fn parse(b: &[u8], at: u64) -> Result<Self> {
        const S: &str = "El Torito validation entry";
        if b.len() < 2048 {
            return Err(Error::Truncated {
                structure: "El Torito boot catalog",
                offset: at,
                needed: 2048,
                available: b.len() as u64,
            });
        }
        let v = &b[..32];
        if v[0] != 1 {
            return Err(Error::Malformed {
                structure: S,
                field: "header id",
                offset: at,
                reason: "not 1",
            });
        }
        if v[30..32] != [0x55, 0xAA] {
            return Err(Error::Malformed {
                structure: S,
                field: "key bytes",
                offset: at + 30,
                reason: "not 0x55 0xAA",
            });
        }
        let sum = v.chunks_exact(2).fold(0u16, |s, w| {
            s.wrapping_add(u16::from_le_bytes([w[0], w[1]]))
        });
        if sum != 0 {
            return Err(Error::Malformed {
                structure: S,
                field: "checksum",
                offset: at + 28,
                reason: "words do not sum to zero",
            });
        }
        let platform = v[1];
        let mut entries = Vec::new();
        entries.push(parse_entry(&b[32..64], platform, String::new(), at + 32)?);
        let mut pos = 64usize;
        let mut more = true;
        while more {
            let Some(h) = b.get(pos..pos + 32) else {
                break;
            };
            match h[0] {
                0x90 | 0x91 => {}
                // No section header: the catalog ends (unused entries are zero).
                _ => break,
            }
            more = h[0] == 0x90;
            let section_platform = h[1];
            let count = usize::from(u16::from_le_bytes([h[2], h[3]]));
            let id = text(&h[4..32]);
            pos += 32;
            let mut seen = 0;
            while seen < count {
                let Some(e) = b.get(pos..pos + 32) else {
                    return Err(Error::Truncated {
                        structure: "El Torito section entry",
                        offset: at + pos as u64,
                        needed: 32,
                        available: b.len().saturating_sub(pos) as u64,
                    });
                };
                // Section entry extensions (0x44) belong to the previous entry.
                if e[0] == 0x44 {
                    pos += 32;
                    continue;
                }
                if entries.len() >= MAX_CATALOG_ENTRIES {
                    return Err(Error::LimitExceeded {
                        what: "El Torito catalog entries",
                        limit: MAX_CATALOG_ENTRIES as u64,
                        offset: at + pos as u64,
                    });
                }
                entries.push(parse_entry(
                    e,
                    section_platform,
                    id.clone(),
                    at + pos as u64,
                )?);
                pos += 32;
                seen += 1;
            }
        }
        Ok(Self {
            platform,
            id_string: text(&v[4..28]),
            entries,
        })
    }

    /// Encodes the catalog: validation entry, default entry (`entries[0]`), then one section
    /// per run of consecutive entries with the same platform. The result fills whole sectors.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut v = [0u8; 32];
        v[0] = 1;
        v[1] = self.platform;
        let id = self.id_string.as_bytes();
        v[4..4 + id.len().min(24)].copy_from_slice(&id[..id.len().min(24)]);
        v[30] = 0x55;
        v[31] = 0xAA;
        let sum = v.chunks_exact(2).fold(0u16, |s, w| {
            s.wrapping_add(u16::from_le_bytes([w[0], w[1]]))
        });
        v[28..30].copy_from_slice(&0u16.wrapping_sub(sum).to_le_bytes());
        out.extend_from_slice(&v);
        let entry = |e: &BootEntry| {
            let mut b = [0u8; 32];
            b[0] = if e.bootable { 0x88 } else { 0 };
            b[1] = e.emulation.to_byte();
            b[2..4].copy_from_slice(&e.load_segment.to_le_bytes());
            b[4] = e.system_type;
            b[6..8].copy_from_slice(&e.sector_count.to_le_bytes());
            b[8..12].copy_from_slice(&e.load_rba.to_le_bytes());
            b
        };
        if let Some(first) = self.entries.first() {
            out.extend_from_slice(&entry(first));
        }
        let rest = self.entries.get(1..).unwrap_or_default();
        let mut sections: Vec<&[BootEntry]> = Vec::new();
        let mut start = 0;
        for i in 1..=rest.len() {
            if i == rest.len() || rest[i].platform != rest[start].platform {
                sections.push(&rest[start..i]);
                start = i;
            }
        }
        let n = sections.len();
        for (i, s) in sections.into_iter().enumerate() {
            let mut h = [0u8; 32];
            h[0] = if i + 1 < n { 0x90 } else { 0x91 };
            h[1] = s[0].platform;
            h[2..4].copy_from_slice(&(s.len() as u16).to_le_bytes());
            let id = s[0].section_id.as_bytes();
            h[4..4 + id.len().min(28)].copy_from_slice(&id[..id.len().min(28)]);
            out.extend_from_slice(&h);
            for e in s {
                out.extend_from_slice(&entry(e));
            }
        }
        let sectors = out.len().div_ceil(2048).max(1);
        out.resize(sectors * 2048, 0);
        out
    }
}

/// The 56-byte boot info table written at byte 8 of a no-emulation boot image
/// (`mkisofs -boot-info-table`): PVD block, image block, image length and the 32-bit sum of
/// the image's little-endian words from byte 64 on.
pub fn boot_info_table(image: &[u8], pvd_lba: u32, image_lba: u32) -> [u8; 56] {
    let mut t = [0u8; 56];
    let sum = image
        .get(64..)
        .unwrap_or_default()
        .chunks(4)
        .fold(0u32, |s, w| {
            let mut a = [0u8; 4];
            a[..w.len()].copy_from_slice(w);
            s.wrapping_add(u32::from_le_bytes(a))
        });
    t[0..4].copy_from_slice(&pvd_lba.to_le_bytes());
    t[4..8].copy_from_slice(&image_lba.to_le_bytes());
    t[8..12].copy_from_slice(&(image.len() as u32).to_le_bytes());
    t[12..16].copy_from_slice(&sum.to_le_bytes());
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_round_trip_and_prefixes() {
        let cat = BootCatalog {
            platform: PLATFORM_BIOS,
            id_string: String::new(),
            entries: vec![
                BootEntry {
                    platform: PLATFORM_BIOS,
                    bootable: true,
                    emulation: Emulation::NoEmulation,
                    load_segment: 0,
                    system_type: 0,
                    sector_count: 4,
                    load_rba: 40,
                    section_id: String::new(),
                },
                BootEntry {
                    platform: PLATFORM_EFI,
                    bootable: true,
                    emulation: Emulation::NoEmulation,
                    load_segment: 0,
                    system_type: 0,
                    sector_count: 2880,
                    load_rba: 50,
                    section_id: String::new(),
                },
            ],
        };
        let b = cat.to_bytes();
        assert_eq!(b.len(), 2048);
        assert_eq!(BootCatalog::parse(&b, 0).unwrap(), cat);
        for n in (0..2048).step_by(7) {
            assert!(BootCatalog::parse(&b[..n], 0).is_err(), "{n}");
        }
        let mut bad = b.clone();
        bad[4] = b'X';
        assert!(
            BootCatalog::parse(&bad, 0)
                .unwrap_err()
                .to_string()
                .contains("checksum")
        );
    }
}
