//! The isohybrid system area: MBR boot code with the boot image address, an MBR partition
//! table, and optionally a GPT (protective MBR, ESP and ISO data partitions, backup at the
//! end).

use super::{HybridMbr, MbrFlavor};
use crate::error::{Error, Result};

/// EFI System partition type GUID C12A7328-F81F-11D2-BA4B-00A0C93EC93B, on-disk byte order.
const ESP_TYPE: [u8; 16] = [
    0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11, 0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B,
];
/// Basic data partition type GUID EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, on-disk byte order.
const BASIC_DATA_TYPE: [u8; 16] = [
    0xA2, 0xA0, 0xD0, 0xEB, 0xE5, 0xB9, 0x33, 0x44, 0x87, 0xC0, 0x68, 0xB6, 0xB7, 0x26, 0x99, 0xC7,
];
/// First 512-byte sector usable by GPT partitions (as xorriso: 64, i.e. 32 KiB).
const FIRST_USABLE: u64 = 64;

/// FNV-1a over bytes (seeds derived from the volume id).
pub(super) fn fnv1a(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325, |h, &c| {
        (h ^ u64::from(c)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A version-4-shaped GUID derived from the seed.
fn guid(state: &mut u64) -> [u8; 16] {
    let mut g = [0u8; 16];
    g[..8].copy_from_slice(&splitmix(state).to_le_bytes());
    g[8..].copy_from_slice(&splitmix(state).to_le_bytes());
    g[7] = (g[7] & 0x0F) | 0x40;
    g[8] = (g[8] & 0x3F) | 0x80;
    g
}

/// Inputs of the system area.
#[derive(Debug)]
pub(super) struct SystemAreaPlan<'a> {
    pub mbr: Option<&'a HybridMbr>,
    pub gpt: bool,
    /// Block of the BIOS El Torito image.
    pub bios_lba: Option<u32>,
    /// The ESP: (block, bytes, appended after the ISO data).
    pub efi: Option<(u32, u64, bool)>,
    pub volume_blocks: u32,
    pub total_bytes: u64,
    pub seed: u64,
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

/// The 32 KiB system area and, with a GPT, the backup GPT (entries then header) that ends
/// the image.
pub(super) fn system_area(p: &SystemAreaPlan<'_>) -> Result<(Vec<u8>, Option<Vec<u8>>)> {
    let mut sa = vec![0u8; 32768];
    if p.mbr.is_none() && !p.gpt && !p.efi.is_some_and(|e| e.2) {
        return Ok((sa, None));
    }
    let mut state = p.seed;
    if let Some(m) = p.mbr {
        let n = m.boot_code.len().min(432);
        sa[..n].copy_from_slice(&m.boot_code[..n]);
        let lba = p.bios_lba.ok_or(Error::InvalidInput {
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
    sa[440..444].copy_from_slice(&(splitmix(&mut state) as u32).to_le_bytes());
    sa[510] = 0x55;
    sa[511] = 0xAA;
    let total_sectors = p.total_bytes / 512;
    let iso_sectors = u64::from(p.volume_blocks) * 4;
    let esp = p
        .efi
        .map(|(lba, len, appended)| (u64::from(lba) * 4, len.div_ceil(512), appended));
    if !p.gpt {
        // isohybrid MBR: partition 1 is the ISO from sector 0; with an ESP it has type 0x00
        // so UEFI firmware ignores it and sees the 0xEF partition 2 without an overlap.
        let iso_end = match esp {
            Some((start, _, true)) => start,
            _ => iso_sectors,
        };
        let kind = if esp.is_some() { 0x00 } else { 0x17 };
        sa[446..462].copy_from_slice(&mbr_entry(0x80, kind, 0, iso_end));
        if let Some((start, sectors, _)) = esp {
            sa[462..478].copy_from_slice(&mbr_entry(0, 0xEF, start, sectors));
        }
        return Ok((sa, None));
    }
    // GPT with a protective MBR entry (what UEFI firmware looks for to read the GPT).
    sa[446..462].copy_from_slice(&mbr_entry(0, 0xEE, 1, total_sectors - 1));
    let last = total_sectors - 1;
    let last_usable = last - 33;
    let disk_guid = guid(&mut state);
    let mut entries = vec![0u8; 128 * 128];
    let mut k = 0;
    let mut add = |type_guid: &[u8; 16], first: u64, sectors: u64, name: &str, state: &mut u64| {
        let e = &mut entries[k * 128..(k + 1) * 128];
        e[..16].copy_from_slice(type_guid);
        e[16..32].copy_from_slice(&guid(state));
        e[32..40].copy_from_slice(&first.to_le_bytes());
        e[40..48].copy_from_slice(&(first + sectors - 1).to_le_bytes());
        for (i, u) in name.encode_utf16().take(36).enumerate() {
            e[56 + 2 * i..58 + 2 * i].copy_from_slice(&u.to_le_bytes());
        }
        k += 1;
    };
    match esp {
        Some((start, sectors, true)) => {
            add(
                &BASIC_DATA_TYPE,
                FIRST_USABLE,
                start - FIRST_USABLE,
                "ISO9660",
                &mut state,
            );
            add(&ESP_TYPE, start, sectors, "EFI boot partition", &mut state);
        }
        Some((start, sectors, false)) => {
            add(&ESP_TYPE, start, sectors, "EFI boot partition", &mut state);
        }
        None => {
            add(
                &BASIC_DATA_TYPE,
                FIRST_USABLE,
                iso_sectors - FIRST_USABLE,
                "ISO9660",
                &mut state,
            );
        }
    }
    let entries_crc = crc32fast::hash(&entries);
    let header = |my: u64, alt: u64, entries_lba: u64| {
        let mut h = [0u8; 512];
        h[..8].copy_from_slice(b"EFI PART");
        h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
        h[12..16].copy_from_slice(&92u32.to_le_bytes());
        h[24..32].copy_from_slice(&my.to_le_bytes());
        h[32..40].copy_from_slice(&alt.to_le_bytes());
        h[40..48].copy_from_slice(&FIRST_USABLE.to_le_bytes());
        h[48..56].copy_from_slice(&last_usable.to_le_bytes());
        h[56..72].copy_from_slice(&disk_guid);
        h[72..80].copy_from_slice(&entries_lba.to_le_bytes());
        h[80..84].copy_from_slice(&128u32.to_le_bytes());
        h[84..88].copy_from_slice(&128u32.to_le_bytes());
        h[88..92].copy_from_slice(&entries_crc.to_le_bytes());
        let crc = crc32fast::hash(&h[..92]);
        h[16..20].copy_from_slice(&crc.to_le_bytes());
        h
    };
    sa[512..1024].copy_from_slice(&header(1, last, 2));
    sa[1024..1024 + entries.len()].copy_from_slice(&entries);
    let mut backup = entries;
    backup.extend_from_slice(&header(last, 1, last - 32));
    Ok((sa, Some(backup)))
}
