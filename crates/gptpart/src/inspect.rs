//! What `imgpipe inspect` prints: detection and serde descriptions.

use std::io::{Read, Seek};

use serde::Serialize;

use crate::error::Result;
use crate::raw::{FatBootSector, Mbr, MbrPartition};
use crate::read::gpt::{GptDisk, read_gpt};
use crate::read::read_exact_at;

/// Whether `head` starts with a FAT boot sector whose BPB is consistent.
pub fn detect_fat(head: &[u8]) -> bool {
    FatBootSector::parse(head).is_ok()
}

/// Whether `head` starts with an MBR boot signature and at least one partition entry.
pub fn detect_mbr(head: &[u8]) -> bool {
    Mbr::parse(head).is_ok_and(|m| m.partitions.iter().any(|p| !p.is_empty()))
}

/// Summary of an MBR disk.
#[derive(Debug, Clone, Serialize)]
pub struct MbrInspection {
    /// Disk signature.
    pub disk_signature: u32,
    /// The used partition entries (index 1..=4).
    pub partitions: Vec<(usize, MbrPartition)>,
}

/// Reads a GPT disk (see [`read_gpt`]).
pub fn inspect_gpt<R: Read + Seek>(r: R) -> Result<GptDisk> {
    read_gpt(r)
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
