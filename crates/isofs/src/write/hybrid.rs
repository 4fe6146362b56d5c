//! The isohybrid system area: MBR boot code patched with the boot image address, and either
//! an isohybrid MBR partition table written here, or partition tables (a protective MBR and
//! a GPT) planned by the caller from [`SystemAreaLayout`] and given as byte regions.
//!
//! This crate writes no GPT of its own: one GPT writer (gptpart) and one GUID rule (repro's
//! seed) serve disks and hybrid ISOs alike; `imgpipe_repro::iso::build_hybrid` composes them.

use serde::Serialize;

use super::{HybridMbr, MbrFlavor};
use crate::error::{Error, Result};

/// Size of the system area (sectors 0-15).
pub const SYSTEM_AREA_SIZE: u64 = 32768;
/// Bytes reserved at the end of an image with a GPT for its backup (entries and header):
/// 9 blocks of 2048 bytes, at least the 33 sectors of 512 bytes a 128-entry backup takes.
pub const GPT_TAIL_SIZE: u64 = 9 * 2048;

/// Where the EFI boot image lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EfiPlacement {
    /// Its first 2048-byte block.
    pub block: u32,
    /// Its length in bytes.
    pub bytes: u64,
    /// Whether it is appended after the ISO9660 volume (its own partition) rather than a
    /// file inside the tree.
    pub appended: bool,
}

/// What partition tables in the system area need to know of a planned image
/// ([`crate::Builder::system_area_layout`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SystemAreaLayout {
    /// Block of the BIOS El Torito image.
    pub bios_block: Option<u32>,
    /// The EFI boot image.
    pub efi: Option<EfiPlacement>,
    /// Blocks of the ISO9660 volume.
    pub volume_blocks: u32,
    /// Bytes of the whole image (with an appended ESP and, with a GPT, [`GPT_TAIL_SIZE`]
    /// bytes reserved for the backup GPT).
    pub total_bytes: u64,
}

/// Inputs of the system area.
#[derive(Debug)]
pub(super) struct SystemAreaPlan<'a> {
    pub mbr: Option<&'a HybridMbr>,
    pub gpt: bool,
    /// Partition tables planned by the caller: (byte offset in the image, bytes).
    pub tables: &'a [(u64, Vec<u8>)],
    pub layout: SystemAreaLayout,
    pub disk_signature: u32,
}

/// CHS triple for an LBA with 64 heads and 32 sectors per track (isohybrid's geometry),
/// saturating at 1023/254/63 as MBRs do for large disks.
fn chs(lba: u64) -> [u8; 3] {
    let (heads, spt) = (64u64, 32u64);
    let c = lba / (heads * spt);
    if c > 1023 {
        return [0xFE, 0xFF, 0xFF];
    }
    let h = (lba / spt) % heads;
    let s = lba % spt + 1;
    [h as u8, (s as u8) | (((c >> 8) as u8) << 6), c as u8]
}

fn mbr_entry(status: u8, kind: u8, start: u64, sectors: u64) -> [u8; 16] {
    let mut e = [0u8; 16];
    let start32 = start.min(u64::from(u32::MAX));
    let count = sectors.min(u64::from(u32::MAX) - start32);
    e[0] = status;
    e[1..4].copy_from_slice(&chs(start32));
    e[4] = kind;
    e[5..8].copy_from_slice(&chs((start32 + count).saturating_sub(1)));
    e[8..12].copy_from_slice(&(start32 as u32).to_le_bytes());
    e[12..16].copy_from_slice(&(count as u32).to_le_bytes());
    e
}

fn gpt_needs_tables() -> Error {
    Error::InvalidInput {
        what: "GPT system area",
        path: String::new(),
        reason: "isofs writes no GPT itself: plan it from Builder::system_area_layout and \
                 give it with Builder::set_partition_tables (imgpipe_repro::iso::build_hybrid \
                 does both)",
    }
}

/// The 32 KiB system area and, with a GPT, the [`GPT_TAIL_SIZE`] bytes that end the image.
pub(super) fn system_area(p: &SystemAreaPlan<'_>) -> Result<(Vec<u8>, Option<Vec<u8>>)> {
    let l = &p.layout;
    let mut sa = vec![0u8; SYSTEM_AREA_SIZE as usize];
    if p.mbr.is_none() && !p.gpt && !l.efi.is_some_and(|e| e.appended) {
        return Ok((sa, None));
    }
    let mut tail = None;
    if p.gpt {
        if p.tables.is_empty() {
            return Err(gpt_needs_tables());
        }
        let tail_start = l
            .total_bytes
            .checked_sub(GPT_TAIL_SIZE)
            .ok_or_else(gpt_needs_tables)?;
        let mut t = vec![0u8; GPT_TAIL_SIZE as usize];
        for (at, bytes) in p.tables {
            let end = at.checked_add(bytes.len() as u64);
            let dest = match end {
                Some(end) if end <= SYSTEM_AREA_SIZE => sa.get_mut(*at as usize..end as usize),
                Some(end) if *at >= tail_start && end <= l.total_bytes => {
                    t.get_mut((at - tail_start) as usize..(end - tail_start) as usize)
                }
                _ => None,
            };
            dest.ok_or(Error::InvalidInput {
                what: "partition table region",
                path: String::new(),
                reason: "lies outside the system area and the reserved end of the image",
            })?
            .copy_from_slice(bytes);
        }
        tail = Some(t);
    }
    if let Some(m) = p.mbr {
        let n = m.boot_code.len().min(432);
        sa[..n].copy_from_slice(&m.boot_code[..n]);
        let lba = l.bios_block.ok_or(Error::InvalidInput {
            what: "isohybrid MBR",
            path: String::new(),
            reason: "needs a BIOS El Torito boot image",
        })?;
        let addr = u64::from(lba) * 4
            + match m.flavor {
                MbrFlavor::Isolinux => 0,
                MbrFlavor::Grub2 => 4,
            };
        sa[432..440].copy_from_slice(&addr.to_le_bytes());
    }
    if p.gpt {
        // The caller's protective MBR holds the partition entries and the disk signature.
        return Ok((sa, tail));
    }
    sa[440..444].copy_from_slice(&p.disk_signature.to_le_bytes());
    sa[510] = 0x55;
    sa[511] = 0xAA;
    let iso_sectors = u64::from(l.volume_blocks) * 4;
    let esp = l
        .efi
        .map(|e| (u64::from(e.block) * 4, e.bytes.div_ceil(512), e.appended));
    // isohybrid MBR: partition 1 is the ISO from sector 0; with an ESP it has type 0x00 so
    // UEFI firmware ignores it and sees the 0xEF partition 2 without an overlap.
    let iso_end = match esp {
        Some((start, _, true)) => start,
        _ => iso_sectors,
    };
    let kind = if esp.is_some() { 0x00 } else { 0x17 };
    sa[446..462].copy_from_slice(&mbr_entry(0x80, kind, 0, iso_end));
    if let Some((start, sectors, _)) = esp {
        sa[462..478].copy_from_slice(&mbr_entry(0, 0xEF, start, sectors));
    }
    Ok((sa, None))
}
