//! Writing a classic MBR partition table (512-byte sectors, up to four primary partitions).

use crate::error::{Error, Result};
use crate::raw::{Mbr, MbrPartition};
use crate::write::gpt::PartitionSize;

/// One primary partition to create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MbrPartitionSpec {
    /// Partition type byte (0x83 Linux, 0xEF EFI system, 0x0C FAT32 LBA, 0x82 swap, ...).
    pub partition_type: u8,
    /// Size.
    pub size: PartitionSize,
    /// Whether the partition is marked active.
    pub bootable: bool,
}

/// Collects primary partitions and places them, each aligned (1 MiB by default), as fdisk
/// and sfdisk do.
#[derive(Debug, Clone)]
pub struct MbrBuilder {
    disk_size: u64,
    disk_signature: u32,
    alignment: u64,
    partitions: Vec<MbrPartitionSpec>,
}

impl MbrBuilder {
    /// A disk of `disk_size` bytes with the given disk signature (see [`crate::Seed::volume_id`]
    /// to derive one).
    pub fn new(disk_size: u64, disk_signature: u32) -> Self {
        Self {
            disk_size,
            disk_signature,
            alignment: 1 << 20,
            partitions: Vec::new(),
        }
    }

    /// Partition start alignment in bytes (a multiple of 512).
    pub fn alignment(mut self, bytes: u64) -> Self {
        self.alignment = bytes;
        self
    }

    /// Adds a primary partition.
    pub fn partition(mut self, spec: MbrPartitionSpec) -> Self {
        self.partitions.push(spec);
        self
    }

    /// Places the partitions and returns the MBR.
    pub fn plan(&self) -> Result<Mbr> {
        const SS: u64 = 512;
        if self.partitions.len() > 4 {
            return Err(Error::LimitExceeded {
                what: "MBR primary partitions",
                limit: 4,
            });
        }
        if self.alignment == 0 || !self.alignment.is_multiple_of(SS) {
            return Err(Error::InvalidOption {
                what: "alignment",
                reason: "must be a non-zero multiple of 512",
            });
        }
        if self
            .partitions
            .iter()
            .filter(|p| p.size == PartitionSize::Rest)
            .count()
            > 1
        {
            return Err(Error::InvalidOption {
                what: "partition size",
                reason: "only one partition may take the rest of the disk",
            });
        }
        let sectors = (self.disk_size / SS).min(u64::from(u32::MAX));
        let align = self.alignment / SS;
        let place = |rest: u64| -> Result<Vec<(u64, u64)>> {
            let mut cursor = 1u64;
            let mut out = Vec::new();
            for (i, p) in self.partitions.iter().enumerate() {
                let n = match p.size {
                    PartitionSize::Bytes(b) => b.div_ceil(SS),
                    PartitionSize::Rest => rest,
                };
                let start = cursor.div_ceil(align).saturating_mul(align);
                let end = start.saturating_add(n);
                if (n == 0 && p.size != PartitionSize::Rest) || end > sectors {
                    return Err(Error::DoesNotFit {
                        index: i as u32 + 1,
                        needed: end.saturating_mul(SS),
                        available: sectors * SS,
                    });
                }
                out.push((start, n));
                cursor = end;
            }
            Ok(out)
        };
        let mut ranges = place(0)?;
        if let Some(ri) = self
            .partitions
            .iter()
            .position(|p| p.size == PartitionSize::Rest)
        {
            let end = ranges.last().map_or(1, |r| r.0 + r.1);
            let free = sectors - end;
            let rest = if ri + 1 == self.partitions.len() {
                free
            } else {
                free / align * align
            };
            ranges = place(rest)?;
        }
        let mut mbr = Mbr::empty(self.disk_signature);
        for (slot, (p, (start, n))) in self.partitions.iter().zip(ranges).enumerate() {
            if n == 0 {
                return Err(Error::DoesNotFit {
                    index: slot as u32 + 1,
                    needed: SS,
                    available: 0,
                });
            }
            // Both fit in u32: `sectors` is capped there.
            mbr.partitions[slot] =
                MbrPartition::new(p.partition_type, start as u32, n as u32, p.bootable);
        }
        Ok(mbr)
    }
}
