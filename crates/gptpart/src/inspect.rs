//! Serde-serializable descriptions of GPT disks, MBR disks and FAT volumes.

use std::io::{Read, Seek, SeekFrom};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::raw::{FatBootSector, GPT_SIGNATURE, GptEntry, GptHeader, Guid, Mbr, MbrPartition};

/// Logical sector sizes probed for a GPT.
pub const SECTOR_SIZES: [u64; 2] = [512, 4096];
/// The most partition entries read (the array is at most this many entries).
pub const MAX_ENTRIES: u32 = 1024;

/// The logical sector size at which `head` holds a GPT signature, if any.
pub fn detect_gpt(head: &[u8]) -> Option<u64> {
    SECTOR_SIZES
        .into_iter()
        .find(|&ss| head.get(ss as usize..ss as usize + 8) == Some(&GPT_SIGNATURE[..]))
}

/// Whether `head` starts with a FAT boot sector whose BPB is consistent.
pub fn detect_fat(head: &[u8]) -> bool {
    FatBootSector::parse(head).is_ok()
}

/// Whether `head` starts with an MBR boot signature and at least one partition entry.
pub fn detect_mbr(head: &[u8]) -> bool {
    Mbr::parse(head).is_ok_and(|m| m.partitions.iter().any(|p| !p.is_empty()))
}

/// One used GPT partition.
#[derive(Debug, Clone, Serialize)]
pub struct GptPartitionInfo {
    /// 1-based index in the entry array.
    pub index: u32,
    /// The entry.
    #[serde(flatten)]
    pub entry: GptEntry,
}

/// Summary of a GPT disk.
#[derive(Debug, Clone, Serialize)]
pub struct GptInspection {
    /// Logical sector size.
    pub sector_size: u64,
    /// Disk GUID.
    pub disk_guid: Guid,
    /// First and last usable LBA.
    pub first_usable_lba: u64,
    /// Last usable LBA.
    pub last_usable_lba: u64,
    /// Where the backup header claims to be.
    pub alternate_lba: u64,
    /// Whether the entry array CRC matches.
    pub entries_crc_ok: bool,
    /// The used partitions.
    pub partitions: Vec<GptPartitionInfo>,
}

/// Summary of an MBR disk.
#[derive(Debug, Clone, Serialize)]
pub struct MbrInspection {
    /// Disk signature.
    pub disk_signature: u32,
    /// The used partition entries (index 1..=4).
    pub partitions: Vec<(usize, MbrPartition)>,
}

fn read_exact_at<R: Read + Seek>(
    r: &mut R,
    at: u64,
    len: usize,
    structure: &'static str,
) -> Result<Vec<u8>> {
    r.seek(SeekFrom::Start(at)).map_err(|source| Error::Io {
        what: "seeking",
        source,
    })?;
    let mut buf = Vec::new();
    r.take(len as u64)
        .read_to_end(&mut buf)
        .map_err(|source| Error::Io {
            what: "reading",
            source,
        })?;
    if buf.len() < len {
        return Err(Error::Truncated {
            structure,
            offset: at,
            needed: len as u64,
            available: buf.len() as u64,
        });
    }
    Ok(buf)
}

/// Reads the primary GPT header and entry array.
pub fn inspect_gpt<R: Read + Seek>(mut r: R) -> Result<GptInspection> {
    let head = read_exact_at(&mut r, 0, 8192, "GPT header")
        .or_else(|_| read_exact_at(&mut r, 0, 1024, "GPT header"))?;
    let ss = detect_gpt(&head).ok_or(Error::Malformed {
        structure: "GPT header",
        field: "signature",
        offset: 512,
        reason: "no \"EFI PART\" at LBA 1 for 512- or 4096-byte sectors",
    })?;
    let hdr = GptHeader::parse(&head[ss as usize..], ss)?;
    if hdr.num_partition_entries > MAX_ENTRIES {
        return Err(Error::Malformed {
            structure: "GPT header",
            field: "number_of_partition_entries",
            offset: ss + 80,
            reason: "more than 1024 entries",
        });
    }
    let esz = hdr.partition_entry_size as usize;
    let total = esz * hdr.num_partition_entries as usize;
    let at = hdr
        .partition_entry_lba
        .checked_mul(ss)
        .ok_or(Error::Malformed {
            structure: "GPT header",
            field: "partition_entry_lba",
            offset: ss + 72,
            reason: "offset overflows",
        })?;
    let array = read_exact_at(&mut r, at, total, "GPT partition entry array")?;
    let entries_crc_ok = crc32fast::hash(&array) == hdr.partition_entry_array_crc32;
    let mut partitions = Vec::new();
    for (i, chunk) in array.chunks_exact(esz).enumerate() {
        let entry = GptEntry::parse(chunk, at + (i * esz) as u64)?;
        if !entry.is_unused() {
            partitions.push(GptPartitionInfo {
                index: i as u32 + 1,
                entry,
            });
        }
    }
    Ok(GptInspection {
        sector_size: ss,
        disk_guid: hdr.disk_guid,
        first_usable_lba: hdr.first_usable_lba,
        last_usable_lba: hdr.last_usable_lba,
        alternate_lba: hdr.alternate_lba,
        entries_crc_ok,
        partitions,
    })
}

/// Reads the MBR.
pub fn inspect_mbr<R: Read + Seek>(mut r: R) -> Result<MbrInspection> {
    let b = read_exact_at(&mut r, 0, Mbr::SIZE, "MBR")?;
    let mbr = Mbr::parse(&b)?;
    Ok(MbrInspection {
        disk_signature: mbr.disk_signature,
        partitions: mbr
            .partitions
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.is_empty())
            .map(|(i, p)| (i + 1, *p))
            .collect(),
    })
}

/// Reads the FAT boot sector.
pub fn inspect_fat<R: Read + Seek>(mut r: R) -> Result<FatBootSector> {
    let b = read_exact_at(&mut r, 0, 512, "FAT boot sector")?;
    FatBootSector::parse(&b)
}
