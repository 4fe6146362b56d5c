//! Raw on-disk structures, each with `parse` and its encoder side by side.

mod directory_record;
mod el_torito;
pub(crate) mod field;
mod susp;
mod system_area;
mod volume_descriptor;

pub use directory_record::{
    DirectoryRecord, FLAG_DIRECTORY, FLAG_HIDDEN, FLAG_MULTI_EXTENT, PathTableRecord,
    RECORD_HEADER_LEN,
};
pub use el_torito::{
    BootCatalog, BootEntry, Emulation, MAX_CATALOG_ENTRIES, PLATFORM_BIOS, PLATFORM_EFI,
    boot_info_table,
};
pub use field::{both_u32_bytes, dec_date, dir_date, parse_dec_date, parse_dir_date};
pub use susp::{
    CE_LEN, ContinuationArea, PosixAttributes, RockRidge, SuspEntry, Timestamps, ZisofsParams,
    decode_device, encode_device, mode, nm_entries, parse_entries, pn, push_entry, px, sl_entries,
    tf,
};
pub use system_area::{SystemArea, SystemAreaPartition};
pub use volume_descriptor::{
    BootRecord, PrimaryVolumeDescriptor, SECTOR_SIZE, STANDARD_ID, VolumeDescriptorType,
    joliet_level, terminator,
};
