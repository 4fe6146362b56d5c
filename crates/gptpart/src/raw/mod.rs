//! Raw on-disk structures, each with `parse` and `to_bytes` side by side.

mod fat_boot_sector;
mod fat_dir;
mod gpt_header;
pub(crate) mod guid;
mod mbr;

pub(crate) fn le_u16(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

pub(crate) fn le_u32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

pub(crate) fn le_u64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

pub use fat_boot_sector::{FatBootSector, FatType, fs_info_sector};
pub use fat_dir::{
    LFN_UNITS, NT_LOWER_BASE, NT_LOWER_EXT, ShortEntry, attr, dos_datetime, lfn_entries, parse_lfn,
    short_name_checksum, unix_from_dos,
};
pub use gpt_header::{GPT_SIGNATURE, GptEntry, GptHeader};
pub use guid::Guid;
pub use mbr::{Mbr, MbrPartition, lba_to_chs};
