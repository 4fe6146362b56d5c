//! A serde-serializable description of an ISO9660 image (what `imgpipe inspect` prints).

use std::io::{Read, Seek, SeekFrom};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::raw::{
    BootCatalog, BootRecord, DirectoryRecord, PrimaryVolumeDescriptor, SECTOR_SIZE, STANDARD_ID,
    SystemArea, VolumeDescriptorType,
};

/// Byte offset of the first volume descriptor (sector 16).
pub const DESCRIPTOR_START: u64 = 16 * SECTOR_SIZE as u64;
/// The most volume descriptors read before a terminator must have appeared.
pub const MAX_DESCRIPTORS: u64 = 64;

/// Whether `head` holds a volume descriptor with `CD001` at sector 16.
pub fn detect(head: &[u8]) -> bool {
    let at = DESCRIPTOR_START as usize;
    head.get(at + 1..at + 6) == Some(&STANDARD_ID[..])
}

/// One volume descriptor of the set.
#[derive(Debug, Clone, Serialize)]
pub struct DescriptorInfo {
    /// Sector number.
    pub sector: u64,
    /// Type.
    pub kind: VolumeDescriptorType,
    /// For a supplementary descriptor: whether its escape sequences declare Joliet.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub joliet: bool,
}

/// Summary of an ISO9660 image.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// The primary volume descriptor.
    pub primary: PrimaryVolumeDescriptor,
    /// Every descriptor of the set, in order.
    pub descriptors: Vec<DescriptorInfo>,
    /// The El Torito boot record, if present.
    pub el_torito: Option<BootRecord>,
    /// The El Torito boot catalog the boot record points at.
    pub boot_catalog: Option<BootCatalog>,
    /// The Joliet descriptor's volume identifier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub joliet_volume_id: Option<String>,
    /// Whether a Joliet supplementary descriptor is present.
    pub joliet: bool,
    /// The system area (hybrid MBR/GPT).
    pub system_area: SystemArea,
    /// Whether the root's "." record carries a SUSP `SP` entry, i.e. Rock Ridge is in use
    /// (not in the JSON, whose shape is fixed; the text report shows it).
    #[serde(skip)]
    pub rock_ridge: bool,
}

/// Reads the system area and the volume descriptor set.
pub fn inspect<R: Read + Seek>(mut r: R) -> Result<Inspection> {
    let io = |what| move |source| Error::Io { what, source };
    r.seek(SeekFrom::Start(0))
        .map_err(io("seeking to the system area"))?;
    let mut sa = Vec::new();
    (&mut r)
        .take(DESCRIPTOR_START)
        .read_to_end(&mut sa)
        .map_err(io("reading the system area"))?;
    let system_area = SystemArea::parse(&sa);
    let mut descriptors = Vec::new();
    let mut primary = None;
    let mut el_torito = None;
    let mut joliet = false;
    let mut joliet_volume_id = None;
    let mut buf = vec![0u8; SECTOR_SIZE];
    for i in 0..MAX_DESCRIPTORS {
        let at = DESCRIPTOR_START + i * SECTOR_SIZE as u64;
        r.seek(SeekFrom::Start(at))
            .map_err(io("seeking to a volume descriptor"))?;
        r.read_exact(&mut buf).map_err(|_| Error::Truncated {
            structure: "volume descriptor",
            offset: at,
            needed: SECTOR_SIZE as u64,
            available: 0,
        })?;
        if buf[1..6] != STANDARD_ID {
            return Err(Error::Malformed {
                structure: "volume descriptor",
                field: "standard identifier",
                offset: at + 1,
                reason: "not CD001 before a set terminator",
            });
        }
        let kind = VolumeDescriptorType::from_byte(buf[0]);
        let mut is_joliet = false;
        match kind {
            VolumeDescriptorType::Primary if primary.is_none() => {
                primary = Some(PrimaryVolumeDescriptor::parse(&buf, at)?);
            }
            VolumeDescriptorType::BootRecord => {
                let br = BootRecord::parse(&buf, at)?;
                if br.is_el_torito() {
                    el_torito = Some(br);
                }
            }
            VolumeDescriptorType::Supplementary => {
                is_joliet = crate::raw::joliet_level(&buf[88..91]).is_some();
                if is_joliet && !joliet {
                    joliet_volume_id = Some(PrimaryVolumeDescriptor::parse(&buf, at)?.volume_id);
                }
                joliet |= is_joliet;
            }
            _ => {}
        }
        descriptors.push(DescriptorInfo {
            sector: at / SECTOR_SIZE as u64,
            kind,
            joliet: is_joliet,
        });
        if kind == VolumeDescriptorType::Terminator {
            let primary = primary.ok_or(Error::Malformed {
                structure: "volume descriptor set",
                field: "primary volume descriptor",
                offset: DESCRIPTOR_START,
                reason: "set terminated without a primary volume descriptor",
            })?;
            let boot_catalog = match &el_torito {
                Some(br) => {
                    let at = u64::from(br.catalog_lba) * SECTOR_SIZE as u64;
                    r.seek(SeekFrom::Start(at))
                        .map_err(io("seeking to the boot catalog"))?;
                    let mut cat = Vec::new();
                    (&mut r)
                        .take(4 * SECTOR_SIZE as u64)
                        .read_to_end(&mut cat)
                        .map_err(io("reading the boot catalog"))?;
                    Some(BootCatalog::parse(&cat, at)?)
                }
                None => None,
            };
            let rock_ridge = has_susp(&mut r, &primary);
            return Ok(Inspection {
                rock_ridge,
                primary,
                descriptors,
                el_torito,
                boot_catalog,
                joliet,
                joliet_volume_id,
                system_area,
            });
        }
    }
    Err(Error::Malformed {
        structure: "volume descriptor set",
        field: "terminator",
        offset: DESCRIPTOR_START,
        reason: "no set terminator within 64 descriptors",
    })
}

/// Whether the root directory's "." record starts its system use area with a SUSP `SP`
/// entry (IEEE P1281 5.3), which Rock Ridge requires; `false` when the root cannot be read.
fn has_susp<R: Read + Seek>(r: &mut R, primary: &PrimaryVolumeDescriptor) -> bool {
    let at = u64::from(primary.root_extent) * u64::from(primary.logical_block_size);
    let mut buf = [0u8; 256];
    if r.seek(SeekFrom::Start(at)).is_err() || r.read_exact(&mut buf).is_err() {
        return false;
    }
    let Ok((rec, _)) = DirectoryRecord::parse(&buf, at) else {
        return false;
    };
    let su = &rec.system_use;
    rec.identifier == [0] && su.starts_with(b"SP") && su.get(4..6) == Some(&[0xBE, 0xEF][..])
}
