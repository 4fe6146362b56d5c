//! Raw on-disk structures, each with `parse` and `to_bytes` side by side.

mod system_area;
mod volume_descriptor;

pub use system_area::{SystemArea, SystemAreaPartition};
pub use volume_descriptor::{
    BootRecord, PrimaryVolumeDescriptor, SECTOR_SIZE, STANDARD_ID, VolumeDescriptorType,
};
