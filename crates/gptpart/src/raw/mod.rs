//! Raw on-disk structures, each with `parse` and `to_bytes` side by side.

mod fat_boot_sector;
mod fat_dir;
mod gpt_header;
pub(crate) mod guid;
mod mbr;

pub(crate) use imgpipe_fstree::le::{le_u16, le_u32, le_u64};

pub use fat_boot_sector::{FatBootSector, FatType, fs_info_sector};
pub use fat_dir::{
    LFN_UNITS, NT_LOWER_BASE, NT_LOWER_EXT, ShortEntry, attr, dos_datetime, lfn_entries, parse_lfn,
    short_name_checksum, unix_from_dos,
};
pub use gpt_header::{GPT_SIGNATURE, GptEntry, GptHeader};
pub use guid::Guid;
pub use mbr::{Mbr, MbrPartition, lba_to_chs};
