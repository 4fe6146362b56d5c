//! Writing a GPT disk: plan every range first, then emit the tables.

use std::io::{Read, Seek, SeekFrom, Write};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::raw::{GptEntry, GptHeader, Guid, Mbr, MbrPartition};
use crate::read::gpt::{GptDisk, read_gpt};
use crate::seed::Seed;

/// How large a partition is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionSize {
    /// Exactly this many bytes (rounded up to whole sectors).
    Bytes(u64),
    /// What remains of the disk (at most one partition).
    Rest,
}

/// One partition to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionSpec {
    /// Partition type GUID (see [`crate::partition_type`] for aliases).
    pub type_guid: Guid,
    /// Size.
    pub size: PartitionSize,
    /// Name (at most 36 UTF-16 code units).
    pub name: String,
    /// Unique GUID; derived from the seed when `None`.
    pub unique_guid: Option<Guid>,
    /// Attribute bits (see [`crate::attributes`]).
    pub attributes: u64,
    /// Byte offset where the partition starts, instead of the next alignment boundary (a
    /// multiple of the sector size, not before the previous partition's end).
    pub start: Option<u64>,
}

impl PartitionSpec {
    /// A partition of `type_guid` and `size`, unnamed, with a derived GUID and no attributes.
    pub fn new(type_guid: Guid, size: PartitionSize) -> Self {
        Self {
            type_guid,
            size,
            name: String::new(),
            unique_guid: None,
            attributes: 0,
            start: None,
        }
    }

    /// Places the partition at byte `offset` instead of the next alignment boundary (as an
    /// isohybrid image places its partitions over the ISO9660 data).
    pub fn start(mut self, offset: u64) -> Self {
        self.start = Some(offset);
        self
    }

    /// Sets the name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets the attribute bits.
    pub fn attributes(mut self, attributes: u64) -> Self {
        self.attributes = attributes;
        self
    }

    /// Sets an explicit unique GUID.
    pub fn unique_guid(mut self, guid: Guid) -> Self {
        self.unique_guid = Some(guid);
        self
    }
}

/// A GPT partition mirrored into a hybrid MBR slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HybridEntry {
    /// 1-based GPT partition index.
    pub partition: u32,
    /// MBR partition type (0xEF EFI system, 0x83 Linux, 0x0C FAT32 LBA, ...).
    pub mbr_type: u8,
    /// Whether the MBR entry is marked active.
    pub bootable: bool,
}

/// Collects a disk layout; [`GptBuilder::plan`] places every partition.
///
/// Partitions are placed in order, each starting on the alignment boundary (1 MiB by
/// default) after the previous one, as sgdisk, sfdisk and systemd-repart do.
#[derive(Debug, Clone)]
pub struct GptBuilder {
    disk_size: u64,
    sector_size: u64,
    alignment: u64,
    seed: Seed,
    disk_guid: Option<Guid>,
    entries: u32,
    partitions: Vec<PartitionSpec>,
    hybrid: Vec<HybridEntry>,
    mbr_signature: u32,
}

impl GptBuilder {
    /// A disk of `disk_size` bytes whose GUIDs derive from `seed`.
    pub fn new(disk_size: u64, seed: Seed) -> Self {
        Self {
            disk_size,
            sector_size: 512,
            alignment: 1 << 20,
            seed,
            disk_guid: None,
            entries: 128,
            partitions: Vec::new(),
            hybrid: Vec::new(),
            mbr_signature: 0,
        }
    }

    /// Logical sector size: 512 (default) or 4096.
    pub fn sector_size(mut self, sector_size: u64) -> Self {
        self.sector_size = sector_size;
        self
    }

    /// Partition start alignment in bytes (a multiple of the sector size; default 1 MiB).
    pub fn alignment(mut self, alignment: u64) -> Self {
        self.alignment = alignment;
        self
    }

    /// An explicit disk GUID instead of the derived one.
    pub fn disk_guid(mut self, guid: Guid) -> Self {
        self.disk_guid = Some(guid);
        self
    }

    /// Number of entries in the partition entry array (default 128, at least 128).
    pub fn entries(mut self, entries: u32) -> Self {
        self.entries = entries;
        self
    }

    /// Adds a partition.
    pub fn partition(mut self, spec: PartitionSpec) -> Self {
        self.partitions.push(spec);
        self
    }

    /// Mirrors GPT partitions into the MBR (a hybrid MBR, as isohybrid images carry); at most 3.
    pub fn hybrid_mbr(mut self, entries: Vec<HybridEntry>) -> Self {
        self.hybrid = entries;
        self
    }

    /// The MBR disk signature (default 0, as sgdisk and systemd-repart leave it).
    pub fn mbr_disk_signature(mut self, signature: u32) -> Self {
        self.mbr_signature = signature;
        self
    }

    /// Places every partition and computes both headers and the MBR.
    pub fn plan(&self) -> Result<GptLayout> {
        let ss = self.sector_size;
        if ss != 512 && ss != 4096 {
            return Err(Error::InvalidOption {
                what: "sector size",
                reason: "must be 512 or 4096",
            });
        }
        if self.alignment == 0 || !self.alignment.is_multiple_of(ss) {
            return Err(Error::InvalidOption {
                what: "alignment",
                reason: "must be a non-zero multiple of the sector size",
            });
        }
        if !self.disk_size.is_multiple_of(ss) {
            return Err(Error::InvalidOption {
                what: "disk size",
                reason: "must be a multiple of the sector size",
            });
        }
        if self.entries < 128 || self.entries > crate::read::gpt::MAX_ENTRIES {
            return Err(Error::InvalidOption {
                what: "partition entry count",
                reason: "must be between 128 and 4096",
            });
        }
        if self.partitions.len() > self.entries as usize {
            return Err(Error::LimitExceeded {
                what: "partitions",
                limit: u64::from(self.entries),
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
        let sectors = self.disk_size / ss;
        let array_sectors = (u64::from(self.entries) * 128).div_ceil(ss);
        let first_usable = 2 + array_sectors;
        let min_sectors = 2 * first_usable + 1;
        if sectors < min_sectors {
            return Err(Error::DoesNotFit {
                index: 0,
                needed: min_sectors * ss,
                available: self.disk_size,
            });
        }
        let last_usable = sectors - 2 - array_sectors;
        let align = self.alignment / ss;
        let size_sectors = |p: &PartitionSpec, rest: u64| match p.size {
            PartitionSize::Bytes(b) => b.div_ceil(ss),
            PartitionSize::Rest => rest,
        };
        let place = |rest: u64| -> Result<Vec<(u64, u64)>> {
            let mut cursor = first_usable;
            let mut out = Vec::with_capacity(self.partitions.len());
            for (i, p) in self.partitions.iter().enumerate() {
                let n = size_sectors(p, rest);
                let start = match p.start {
                    None => cursor.div_ceil(align).checked_mul(align),
                    Some(at) if at.is_multiple_of(ss) && at / ss >= cursor => Some(at / ss),
                    Some(_) => {
                        return Err(Error::InvalidOption {
                            what: "partition start",
                            reason: "must be a multiple of the sector size, after the GPT \
                                     and the previous partition",
                        });
                    }
                };
                let end = start.and_then(|s| s.checked_add(n));
                let (Some(start), Some(end)) = (start, end) else {
                    return Err(Error::InvalidOption {
                        what: "partition size",
                        reason: "overflows",
                    });
                };
                if n == 0 && p.size != PartitionSize::Rest {
                    return Err(Error::InvalidOption {
                        what: "partition size",
                        reason: "must not be zero",
                    });
                }
                out.push((start, end));
                cursor = end;
                if end > last_usable + 1 {
                    return Err(Error::DoesNotFit {
                        index: i as u32 + 1,
                        needed: (end - first_usable) * ss,
                        available: (last_usable + 1 - first_usable) * ss,
                    });
                }
            }
            Ok(out)
        };
        let mut ranges = place(0)?;
        if let Some(ri) = self
            .partitions
            .iter()
            .position(|p| p.size == PartitionSize::Rest)
        {
            let end = ranges.last().map_or(first_usable, |r| r.1);
            let free = last_usable + 1 - end;
            // The last partition fills the disk; one in the middle keeps later ones aligned.
            let rest = if ri + 1 == self.partitions.len() {
                free
            } else {
                free / align * align
            };
            if rest == 0 {
                return Err(Error::DoesNotFit {
                    index: ri as u32 + 1,
                    needed: ss,
                    available: 0,
                });
            }
            ranges = place(rest)?;
        }
        let mut entries = Vec::with_capacity(self.partitions.len());
        for (i, (p, &(start, end))) in self.partitions.iter().zip(&ranges).enumerate() {
            let instance = self.partitions[..i]
                .iter()
                .filter(|q| q.type_guid == p.type_guid)
                .count() as u64;
            if p.type_guid == Guid::NIL {
                return Err(Error::InvalidOption {
                    what: "partition type",
                    reason: "the nil GUID marks an unused entry",
                });
            }
            let entry = GptEntry {
                type_guid: p.type_guid,
                unique_guid: p
                    .unique_guid
                    .unwrap_or_else(|| self.seed.partition_guid(p.type_guid, instance)),
                first_lba: start,
                last_lba: end - 1,
                attributes: p.attributes,
                name: p.name.clone(),
            };
            entry.to_bytes()?;
            entries.push(entry);
        }
        let mut array = vec![0u8; self.entries as usize * 128];
        for (e, slot) in entries.iter().zip(array.chunks_exact_mut(128)) {
            slot.copy_from_slice(&e.to_bytes()?);
        }
        let primary = GptHeader {
            revision: 0x0001_0000,
            header_size: GptHeader::SIZE as u32,
            header_crc32: 0,
            my_lba: 1,
            alternate_lba: sectors - 1,
            first_usable_lba: first_usable,
            last_usable_lba: last_usable,
            disk_guid: self.disk_guid.unwrap_or_else(|| self.seed.disk_guid()),
            partition_entry_lba: 2,
            num_partition_entries: self.entries,
            partition_entry_size: 128,
            partition_entry_array_crc32: crc32fast::hash(&array),
        };
        let mut mbr = self.mbr(sectors, &entries)?;
        mbr.disk_signature = self.mbr_signature;
        Ok(GptLayout {
            sector_size: ss,
            disk_size: self.disk_size,
            primary,
            entries,
            array,
            mbr,
        })
    }

    fn mbr(&self, sectors: u64, entries: &[GptEntry]) -> Result<Mbr> {
        if self.hybrid.is_empty() {
            return Ok(Mbr::protective(sectors));
        }
        if self.hybrid.len() > 3 {
            return Err(Error::InvalidOption {
                what: "hybrid MBR",
                reason: "at most 3 partitions besides the 0xEE entry",
            });
        }
        let mut mbr = Mbr::empty(0);
        let mut lowest = u64::MAX;
        for (slot, h) in self.hybrid.iter().enumerate() {
            let e = (h.partition as usize)
                .checked_sub(1)
                .and_then(|i| entries.get(i))
                .ok_or(Error::InvalidOption {
                    what: "hybrid MBR",
                    reason: "names a partition that does not exist",
                })?;
            let (Ok(first), Ok(count)) = (
                u32::try_from(e.first_lba),
                u32::try_from(e.last_lba - e.first_lba + 1),
            ) else {
                return Err(Error::InvalidOption {
                    what: "hybrid MBR",
                    reason: "partition lies beyond what an MBR can address",
                });
            };
            lowest = lowest.min(e.first_lba);
            mbr.partitions[slot] = MbrPartition::new(h.mbr_type, first, count, h.bootable);
        }
        // The 0xEE entry covers the GPT structures before the first mirrored partition.
        let ee = u32::try_from(lowest.saturating_sub(1)).unwrap_or(u32::MAX);
        mbr.partitions[self.hybrid.len()] = MbrPartition::new(0xEE, 1, ee, false);
        Ok(mbr)
    }
}

/// A planned GPT disk: every range decided, ready to emit.
#[derive(Debug, Clone)]
pub struct GptLayout {
    sector_size: u64,
    disk_size: u64,
    primary: GptHeader,
    entries: Vec<GptEntry>,
    array: Vec<u8>,
    mbr: Mbr,
}

/// Where a planned partition lies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedPartition {
    /// 1-based index.
    pub index: u32,
    /// Byte offset in the disk.
    pub offset: u64,
    /// Length in bytes.
    pub size: u64,
    /// The entry as written.
    pub entry: GptEntry,
}

impl GptLayout {
    /// Logical sector size.
    pub fn sector_size(&self) -> u64 {
        self.sector_size
    }

    /// Disk size in bytes.
    pub fn disk_size(&self) -> u64 {
        self.disk_size
    }

    /// The disk GUID.
    pub fn disk_guid(&self) -> Guid {
        self.primary.disk_guid
    }

    /// The primary header.
    pub fn primary_header(&self) -> &GptHeader {
        &self.primary
    }

    /// The protective (or hybrid) MBR.
    pub fn mbr(&self) -> &Mbr {
        &self.mbr
    }

    /// The planned partitions in order.
    pub fn partitions(&self) -> Vec<PlannedPartition> {
        self.entries
            .iter()
            .enumerate()
            .map(|(i, e)| PlannedPartition {
                index: i as u32 + 1,
                offset: e.first_lba * self.sector_size,
                size: (e.last_lba - e.first_lba + 1) * self.sector_size,
                entry: e.clone(),
            })
            .collect()
    }

    /// Byte offset and length of the partition with 1-based `index`.
    pub fn partition_range(&self, index: u32) -> Option<(u64, u64)> {
        let e = self.entries.get((index as usize).checked_sub(1)?)?;
        Some((
            e.first_lba * self.sector_size,
            (e.last_lba - e.first_lba + 1) * self.sector_size,
        ))
    }

    /// The table bytes and where they go: MBR, primary header, primary entries, backup
    /// entries, backup header (each padded to whole sectors).
    pub fn table_regions(&self) -> Vec<(u64, Vec<u8>)> {
        let ss = self.sector_size;
        let sector = |bytes: &[u8]| {
            let mut v = bytes.to_vec();
            v.resize(ss as usize, 0);
            v
        };
        let mut array = self.array.clone();
        array.resize((array.len() as u64).div_ceil(ss) as usize * ss as usize, 0);
        let array_sectors = array.len() as u64 / ss;
        let last = self.disk_size / ss - 1;
        let backup = GptHeader {
            my_lba: last,
            alternate_lba: 1,
            partition_entry_lba: last - array_sectors,
            ..self.primary.clone()
        };
        vec![
            (0, sector(&self.mbr.to_bytes())),
            (ss, sector(&self.primary.to_bytes())),
            (2 * ss, array.clone()),
            ((last - array_sectors) * ss, array),
            (last * ss, sector(&backup.to_bytes())),
        ]
    }

    /// Writes the MBR and both GPT copies; the stream ends up at least `disk_size` long.
    /// Partition contents are not touched (see [`GptLayout::write_partition`]).
    pub fn write_table<W: Write + Seek>(&self, mut w: W) -> Result<()> {
        for (at, bytes) in self.table_regions() {
            w.seek(SeekFrom::Start(at)).map_err(Error::io("seeking"))?;
            w.write_all(&bytes)
                .map_err(Error::io("writing the partition table"))?;
        }
        Ok(())
    }

    /// Copies `data` into the partition with 1-based `index`; fails before writing past it.
    /// Returns the bytes copied.
    pub fn write_partition<R: Read, W: Write + Seek>(
        &self,
        mut w: W,
        index: u32,
        data: R,
    ) -> Result<u64> {
        let (offset, size) = self.partition_range(index).ok_or(Error::InvalidOption {
            what: "partition index",
            reason: "no such partition",
        })?;
        w.seek(SeekFrom::Start(offset))
            .map_err(Error::io("seeking"))?;
        let mut limited = data.take(size + 1);
        let mut buf = vec![0u8; 1 << 20];
        let mut copied = 0u64;
        loop {
            let n = limited
                .read(&mut buf)
                .map_err(Error::io("reading partition contents"))?;
            if n == 0 {
                return Ok(copied);
            }
            if copied + n as u64 > size {
                return Err(Error::DoesNotFit {
                    index,
                    needed: copied + n as u64,
                    available: size,
                });
            }
            w.write_all(&buf[..n])
                .map_err(Error::io("writing partition contents"))?;
            copied += n as u64;
        }
    }
}

/// Moves the backup GPT to the end of a disk grown to `new_size` bytes (sgdisk `-e`,
/// systemd-repart's growing): rewrites the backup entries and header at the new end, the
/// primary header's alternate and last usable LBAs, and the protective MBR's size.
/// The stream is extended by writing the last sector. Returns the disk as read back.
pub fn relocate_backup<F: Read + Write + Seek>(mut f: F, new_size: u64) -> Result<GptDisk> {
    let disk = read_gpt(&mut f)?;
    let ss = disk.sector_size;
    if !new_size.is_multiple_of(ss) || new_size < disk.disk_size {
        return Err(Error::InvalidOption {
            what: "new disk size",
            reason: "must be a multiple of the sector size and not smaller than the disk",
        });
    }
    let h = &disk.header;
    let array_len = u64::from(h.num_partition_entries) * u64::from(h.partition_entry_size);
    let array_at = h.partition_entry_lba * ss;
    let array = crate::read::read_exact_at(&mut f, array_at, array_len as usize, "GPT entries")?;
    let array_sectors = array_len.div_ceil(ss);
    let last = new_size / ss - 1;
    let primary = GptHeader {
        my_lba: 1,
        alternate_lba: last,
        partition_entry_lba: 2,
        last_usable_lba: last - 1 - array_sectors,
        ..h.clone()
    };
    let backup = GptHeader {
        my_lba: last,
        alternate_lba: 1,
        partition_entry_lba: last - array_sectors,
        ..primary.clone()
    };
    let mut mbr = crate::read::read_exact_at(&mut f, 0, 512, "MBR")
        .ok()
        .and_then(|b| Mbr::parse(&b).ok())
        .unwrap_or_else(|| Mbr::protective(new_size / ss));
    let full = Mbr::protective(new_size / ss).partitions[0];
    for p in &mut mbr.partitions {
        // Only a whole-disk protective entry grows; a hybrid 0xEE entry keeps its range.
        if p.partition_type == 0xEE && u64::from(p.sectors) + 1 >= disk.disk_size / ss {
            *p = full;
        }
    }
    if !mbr.is_protective() {
        mbr = Mbr::protective(new_size / ss);
    }
    let mut padded_array = array;
    padded_array.resize((array_sectors * ss) as usize, 0);
    let pad = |b: &[u8]| {
        let mut v = b.to_vec();
        v.resize(ss as usize, 0);
        v
    };
    let old_backup = match disk.source {
        crate::read::gpt::GptCopy::Primary => disk.header.alternate_lba,
        crate::read::gpt::GptCopy::Backup => disk.header.my_lba,
    };
    if old_backup != last {
        // Wipe the stale backup header first so no tool mistakes it for a live one; the
        // writes below may cover the same sector again.
        f.seek(SeekFrom::Start(old_backup * ss))
            .map_err(Error::io("seeking"))?;
        f.write_all(&vec![0u8; ss as usize])
            .map_err(Error::io("writing"))?;
    }
    let writes = [
        (0, pad(&mbr.to_bytes())),
        (ss, pad(&primary.to_bytes())),
        (2 * ss, padded_array.clone()),
        ((last - array_sectors) * ss, padded_array),
        (last * ss, pad(&backup.to_bytes())),
    ];
    for (at, bytes) in writes {
        f.seek(SeekFrom::Start(at)).map_err(Error::io("seeking"))?;
        f.write_all(&bytes).map_err(Error::io("writing"))?;
    }
    f.flush().map_err(Error::io("flushing"))?;
    read_gpt(&mut f)
}
