//! Reading a GPT disk: primary header and entries, falling back to the backup copy.

use std::io::{Read, Seek};

use serde::Serialize;

use super::{read_exact_at, stream_len};
use crate::error::{Error, Result};
use crate::raw::{GPT_SIGNATURE, GptEntry, GptHeader, Guid, Mbr, MbrPartition};
use crate::types::{attributes, type_alias};

/// Logical sector sizes probed for a GPT.
pub const SECTOR_SIZES: [u64; 2] = [512, 4096];
/// The most partition entries read.
pub const MAX_ENTRIES: u32 = 4096;
/// The largest partition entry size accepted.
const MAX_ENTRY_SIZE: u32 = 4096;

/// Which copy of the GPT a [`GptDisk`] was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GptCopy {
    /// The primary header at LBA 1.
    Primary,
    /// The backup header at the last LBA (the primary is damaged).
    Backup,
}

/// One used GPT partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GptPartition {
    /// 1-based index in the entry array.
    pub index: u32,
    /// Partition type GUID.
    pub type_guid: Guid,
    /// The type's alias ("esp", "root-x86-64", ...) when known.
    pub type_name: Option<&'static str>,
    /// Unique partition GUID.
    pub unique_guid: Guid,
    /// First LBA.
    pub first_lba: u64,
    /// Last LBA (inclusive).
    pub last_lba: u64,
    /// Size in bytes.
    pub size: u64,
    /// Attribute bits.
    pub attributes: u64,
    /// Names of the set attribute bits.
    pub flags: Vec<String>,
    /// Partition name.
    pub name: String,
}

/// A GPT disk as read: the header copy used, what is wrong with the other, and the partitions.
#[derive(Debug, Clone, Serialize)]
pub struct GptDisk {
    /// Logical sector size.
    pub sector_size: u64,
    /// Size of the image in bytes.
    pub disk_size: u64,
    /// Disk GUID.
    pub disk_guid: Guid,
    /// The copy the partitions were read from.
    pub source: GptCopy,
    /// Why the primary copy was rejected, if it was.
    pub primary_problem: Option<String>,
    /// Why the backup copy was rejected, if it was.
    pub backup_problem: Option<String>,
    /// Whether the entry array CRC of the copy used matches (always true: a mismatch rejects
    /// the copy).
    pub entries_crc_ok: bool,
    /// The header used.
    pub header: GptHeader,
    /// The MBR partitions (a protective 0xEE entry, plus others on a hybrid MBR).
    pub mbr_partitions: Vec<(usize, MbrPartition)>,
    /// Whether LBA 0 holds a valid protective MBR (alone or hybrid).
    pub protective_mbr: bool,
    /// The used partitions, in entry-array order.
    pub partitions: Vec<GptPartition>,
}

impl GptDisk {
    /// First usable LBA.
    pub fn first_usable_lba(&self) -> u64 {
        self.header.first_usable_lba
    }

    /// Last usable LBA.
    pub fn last_usable_lba(&self) -> u64 {
        self.header.last_usable_lba
    }

    /// The partition with 1-based `index`.
    pub fn partition(&self, index: u32) -> Option<&GptPartition> {
        self.partitions.iter().find(|p| p.index == index)
    }

    /// Byte offset and length of the partition with 1-based `index`.
    pub fn partition_range(&self, index: u32) -> Option<(u64, u64)> {
        let p = self.partition(index)?;
        Some((p.first_lba.checked_mul(self.sector_size)?, p.size))
    }

    /// Whether both copies are valid.
    pub fn is_clean(&self) -> bool {
        self.primary_problem.is_none() && self.backup_problem.is_none()
    }
}

/// The logical sector size at which `head` holds a GPT signature, if any.
pub fn detect_gpt(head: &[u8]) -> Option<u64> {
    SECTOR_SIZES
        .into_iter()
        .find(|&ss| head.get(ss as usize..ss as usize + 8) == Some(&GPT_SIGNATURE[..]))
}

/// Reads a GPT disk, validating CRCs and ranges of both copies; uses the backup when the
/// primary is damaged and says so in [`GptDisk::primary_problem`].
pub fn read_gpt<R: Read + Seek>(mut r: R) -> Result<GptDisk> {
    let disk_size = stream_len(&mut r)?;
    let head = read_exact_at(&mut r, 0, disk_size.min(8192) as usize, "GPT disk")?;
    // The sector size: where a primary signature is, else where a backup signature is.
    let mut ss = detect_gpt(&head);
    if ss.is_none() {
        for cand in SECTOR_SIZES {
            if disk_size >= 2 * cand && disk_size.is_multiple_of(cand) {
                let b = read_exact_at(&mut r, disk_size - cand, 8, "GPT backup header")?;
                if b == GPT_SIGNATURE {
                    ss = Some(cand);
                    break;
                }
            }
        }
    }
    let ss = ss.ok_or(Error::Malformed {
        structure: "GPT header",
        field: "signature",
        offset: 512,
        reason: "no \"EFI PART\" at LBA 1 or at the last LBA for 512- or 4096-byte sectors",
    })?;
    let disk_sectors = disk_size / ss;
    let primary = read_copy(&mut r, ss, 1, disk_sectors, GptCopy::Primary);
    let backup_lba = match &primary {
        Ok((h, _)) => h.alternate_lba,
        Err(_) => disk_sectors.saturating_sub(1),
    };
    let backup = read_copy(&mut r, ss, backup_lba, disk_sectors, GptCopy::Backup);
    let (header, entries, source, primary_problem, backup_problem) = match (primary, backup) {
        (Ok((h, e)), Ok((bh, _))) => {
            let problem = if bh.alternate_lba != 1 || bh.disk_guid != h.disk_guid {
                Some("backup header does not mirror the primary".to_string())
            } else if h.alternate_lba != disk_sectors - 1 {
                Some("backup header is not at the end of the disk (the image grew?)".to_string())
            } else {
                None
            };
            (h, e, GptCopy::Primary, None, problem)
        }
        (Ok((h, e)), Err(b)) => (h, e, GptCopy::Primary, None, Some(b.to_string())),
        (Err(p), Ok((h, e))) => (h, e, GptCopy::Backup, Some(p.to_string()), None),
        (Err(p), Err(b)) => {
            return Err(Error::NoValidGpt {
                primary: Box::new(p),
                backup: Box::new(b),
            });
        }
    };
    let mbr = Mbr::parse(&head).ok();
    let protective_mbr = mbr.as_ref().is_some_and(Mbr::is_protective);
    let mbr_partitions = mbr
        .map(|m| {
            m.partitions
                .iter()
                .enumerate()
                .filter(|(_, p)| !p.is_empty())
                .map(|(i, p)| (i + 1, *p))
                .collect()
        })
        .unwrap_or_default();
    let partitions = entries
        .into_iter()
        .map(|(index, e)| GptPartition {
            index,
            type_name: type_alias(e.type_guid),
            type_guid: e.type_guid,
            unique_guid: e.unique_guid,
            first_lba: e.first_lba,
            last_lba: e.last_lba,
            size: (e.last_lba - e.first_lba + 1) * ss,
            flags: attributes::names(e.attributes),
            attributes: e.attributes,
            name: e.name,
        })
        .collect();
    Ok(GptDisk {
        sector_size: ss,
        disk_size,
        disk_guid: header.disk_guid,
        source,
        primary_problem,
        backup_problem,
        entries_crc_ok: true,
        header,
        mbr_partitions,
        protective_mbr,
        partitions,
    })
}

/// Reads and validates one header copy at `lba` and its entry array; returns the used entries
/// with their 1-based indices.
fn read_copy<R: Read + Seek>(
    r: &mut R,
    ss: u64,
    lba: u64,
    disk_sectors: u64,
    copy: GptCopy,
) -> Result<(GptHeader, Vec<(u32, GptEntry)>)> {
    let structure = match copy {
        GptCopy::Primary => "primary GPT header",
        GptCopy::Backup => "backup GPT header",
    };
    let bad = |field, off: u64, reason| Error::Malformed {
        structure,
        field,
        offset: lba.saturating_mul(ss).saturating_add(off),
        reason,
    };
    if lba == 0 || lba >= disk_sectors {
        return Err(bad("my_lba", 24, "header LBA outside the disk"));
    }
    let at = lba * ss;
    let sector = read_exact_at(r, at, ss as usize, structure)?;
    let h = GptHeader::parse(&sector, at)?;
    if h.my_lba != lba {
        return Err(bad("my_lba", 24, "does not match where the header is"));
    }
    if h.alternate_lba == 0 || h.alternate_lba >= disk_sectors || h.alternate_lba == lba {
        return Err(bad("alternate_lba", 32, "outside the disk"));
    }
    if h.first_usable_lba < 2
        || h.first_usable_lba > h.last_usable_lba.saturating_add(1)
        || h.last_usable_lba >= disk_sectors - 1
    {
        return Err(bad(
            "first_usable_lba",
            40,
            "usable range is empty-inverted or outside the disk",
        ));
    }
    if h.num_partition_entries > MAX_ENTRIES {
        return Err(Error::LimitExceeded {
            what: "GPT partition entries",
            limit: u64::from(MAX_ENTRIES),
        });
    }
    if h.partition_entry_size > MAX_ENTRY_SIZE {
        return Err(bad("size_of_partition_entry", 84, "larger than 4096"));
    }
    let array_len = u64::from(h.partition_entry_size) * u64::from(h.num_partition_entries);
    let array_sectors = array_len.div_ceil(ss);
    let array_end = h.partition_entry_lba.checked_add(array_sectors).ok_or(bad(
        "partition_entry_lba",
        72,
        "overflows",
    ))?;
    let inside = match copy {
        GptCopy::Primary => h.partition_entry_lba >= 2 && array_end <= h.first_usable_lba,
        GptCopy::Backup => h.partition_entry_lba > h.last_usable_lba && array_end <= lba,
    };
    if !inside || array_end > disk_sectors {
        return Err(bad(
            "partition_entry_lba",
            72,
            "entry array overlaps the usable area or a header, or leaves the disk",
        ));
    }
    let array_at = h.partition_entry_lba * ss;
    let array = read_exact_at(r, array_at, array_len as usize, "GPT partition entry array")?;
    if crc32fast::hash(&array) != h.partition_entry_array_crc32 {
        return Err(bad(
            "partition_entry_array_crc32",
            88,
            "CRC32 of the entry array does not match",
        ));
    }
    let esz = h.partition_entry_size as usize;
    let mut used = Vec::new();
    for (i, chunk) in array.chunks_exact(esz).enumerate() {
        let entry_at = array_at + (i * esz) as u64;
        let e = GptEntry::parse(chunk, entry_at)?;
        if e.is_unused() {
            continue;
        }
        let ebad = |field, off: u64, reason| Error::Malformed {
            structure: "GPT partition entry",
            field,
            offset: entry_at + off,
            reason,
        };
        if e.first_lba > e.last_lba {
            return Err(ebad("ending_lba", 40, "before the starting LBA"));
        }
        if e.first_lba < h.first_usable_lba || e.last_lba > h.last_usable_lba {
            return Err(ebad("starting_lba", 32, "outside the usable range"));
        }
        used.push((i as u32 + 1, e));
    }
    let mut ranges: Vec<(u64, u64)> = used
        .iter()
        .map(|(_, e)| (e.first_lba, e.last_lba))
        .collect();
    ranges.sort_unstable();
    if ranges.windows(2).any(|w| w[1].0 <= w[0].1) {
        return Err(bad("partition_entry_lba", 72, "two partitions overlap"));
    }
    Ok((h, used))
}
