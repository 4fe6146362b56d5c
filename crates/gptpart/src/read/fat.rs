//! Reading a FAT12/16/32 volume: directories with long names, files, safe extraction.

use std::collections::BTreeSet;
use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::{Mutex, PoisonError};

use serde::Serialize;

use super::{read_exact_at, stream_len};
use crate::error::{Error, Result};
use crate::raw::{
    FatBootSector, FatType, ShortEntry, attr, parse_lfn, short_name_checksum, unix_from_dos,
};

/// Caps on what a reader allocates and walks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest FAT read into memory, in bytes.
    pub max_fat_bytes: u64,
    /// Deepest directory nesting walked.
    pub max_depth: usize,
    /// Most entries a walk returns.
    pub max_entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_fat_bytes: 256 << 20,
            max_depth: 64,
            max_entries: 1 << 20,
        }
    }
}

/// One file or directory of a FAT volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FatEntry {
    /// The long name, or the short name where there is none.
    pub name: String,
    /// The 8.3 name as stored (`BASE.EXT`).
    pub short_name: String,
    /// Whether it is a directory.
    pub is_dir: bool,
    /// Size in bytes (0 for directories).
    pub size: u32,
    /// First cluster (0 for empty files).
    pub first_cluster: u32,
    /// Attribute bits.
    pub attributes: u8,
    /// Last write time (Unix seconds, UTC), if the stored date is valid.
    pub modified: Option<u64>,
}

/// Long-name parts collected so far: checksum, expected count, units by sequence number.
type LfnParts = (u8, u8, Vec<Option<[u16; 13]>>);

/// A FAT volume opened for reading.
///
/// Reads go through a mutex around the stream, so a shared `&FatVolume` can serve several
/// callers (it implements [`imgpipe_fstree::FsRead`]).
#[derive(Debug)]
pub struct FatVolume<R> {
    r: Mutex<R>,
    pub(super) boot: FatBootSector,
    fat: Vec<u32>,
    label: Option<String>,
    limits: Limits,
}

impl<R: Read + Seek> FatVolume<R> {
    /// Opens a volume with default [`Limits`].
    pub fn open(r: R) -> Result<Self> {
        Self::open_with(r, Limits::default())
    }

    /// Opens a volume: parses the boot sector and reads the first FAT.
    pub fn open_with(mut r: R, limits: Limits) -> Result<Self> {
        let len = stream_len(&mut r)?;
        let b = read_exact_at(&mut r, 0, 512, "FAT boot sector")?;
        let boot = FatBootSector::parse(&b)?;
        let needed = u64::from(boot.total_sectors) * u64::from(boot.bytes_per_sector);
        if needed > len {
            return Err(Error::Truncated {
                structure: "FAT volume",
                offset: 0,
                needed,
                available: len,
            });
        }
        let entries = u64::from(boot.clusters) + 2;
        let fat_len = (entries * u64::from(boot.fat_type.bits())).div_ceil(8);
        if fat_len > limits.max_fat_bytes {
            return Err(Error::LimitExceeded {
                what: "FAT size",
                limit: limits.max_fat_bytes,
            });
        }
        let raw = read_exact_at(&mut r, boot.fat_offset(), fat_len as usize, "FAT")?;
        let fat: Vec<u32> = match boot.fat_type {
            FatType::Fat12 => (0..entries as usize)
                .map(|i| {
                    let o = i * 3 / 2;
                    let v = u16::from_le_bytes([raw[o], raw.get(o + 1).copied().unwrap_or(0)]);
                    u32::from(if i % 2 == 0 { v & 0x0FFF } else { v >> 4 })
                })
                .collect(),
            FatType::Fat16 => raw
                .chunks_exact(2)
                .map(|c| u32::from(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
            FatType::Fat32 => raw
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) & 0x0FFF_FFFF)
                .collect(),
        };
        let mut v = Self {
            r: Mutex::new(r),
            boot,
            fat,
            label: None,
            limits,
        };
        let (_, label) = v.read_dir_raw(None)?;
        v.label = label;
        Ok(v)
    }

    /// The boot sector.
    pub fn boot_sector(&self) -> &FatBootSector {
        &self.boot
    }

    /// The volume label from the root directory, if any (what mtools and Linux show).
    pub fn label(&self) -> Option<&str> {
        self.label.as_deref()
    }

    fn eoc(&self) -> u32 {
        match self.boot.fat_type {
            FatType::Fat12 => 0x0FF8,
            FatType::Fat16 => 0xFFF8,
            FatType::Fat32 => 0x0FFF_FFF8,
        }
    }

    /// The clusters of the chain starting at `first`, checked for range and loops.
    pub(super) fn chain(&self, first: u32) -> Result<Vec<u32>> {
        let bad = |reason| Error::Malformed {
            structure: "FAT",
            field: "cluster chain",
            offset: self.boot.fat_offset(),
            reason,
        };
        let max = self.boot.clusters + 2;
        let mut out = Vec::new();
        let mut c = first;
        loop {
            if c < 2 || c >= max {
                return Err(bad("points outside the data region"));
            }
            if out.len() as u32 >= self.boot.clusters {
                return Err(bad("loops"));
            }
            out.push(c);
            let next = self.fat.get(c as usize).copied().unwrap_or(0);
            if next >= self.eoc() {
                return Ok(out);
            }
            if next == 0 {
                return Err(bad("runs into a free cluster"));
            }
            c = next;
        }
    }

    pub(super) fn cluster_offset(&self, c: u32) -> u64 {
        self.boot.data_offset() + u64::from(c - 2) * self.boot.cluster_size()
    }

    /// Reads `len` bytes along a chain, coalescing contiguous clusters.
    fn read_chain(&self, chain: &[u32], mut len: u64, w: &mut dyn Write) -> Result<()> {
        let mut r = self.r.lock().unwrap_or_else(PoisonError::into_inner);
        let cs = self.boot.cluster_size();
        let mut i = 0;
        let mut buf = Vec::new();
        while len > 0 && i < chain.len() {
            let start = chain[i];
            let mut run = 1;
            while i + run < chain.len()
                && chain[i + run] == start + run as u32
                && (run as u64) * cs < (4 << 20)
            {
                run += 1;
            }
            let n = (run as u64 * cs).min(len);
            r.seek(SeekFrom::Start(self.cluster_offset(start)))
                .map_err(Error::io("seeking"))?;
            buf.resize(n as usize, 0);
            r.read_exact(&mut buf)
                .map_err(Error::io("reading FAT data"))?;
            w.write_all(&buf).map_err(Error::io("writing file data"))?;
            len -= n;
            i += run;
        }
        if len > 0 {
            return Err(Error::Malformed {
                structure: "FAT directory entry",
                field: "DIR_FileSize",
                offset: self.boot.fat_offset(),
                reason: "larger than the file's cluster chain",
            });
        }
        Ok(())
    }

    /// Raw entries of a directory (`None` = root) and, for the root, its volume label.
    fn read_dir_raw(&self, first_cluster: Option<u32>) -> Result<(Vec<FatEntry>, Option<String>)> {
        const MAX_DIR_BYTES: u64 = 65_536 * 32;
        let bytes = match (first_cluster, self.boot.fat_type) {
            (None, FatType::Fat12 | FatType::Fat16) => {
                let len = usize::from(self.boot.root_entries) * 32;
                read_exact_at(
                    &mut *self.r.lock().unwrap_or_else(PoisonError::into_inner),
                    self.boot.root_dir_offset(),
                    len,
                    "FAT root directory",
                )?
            }
            (c, _) => {
                let first = c.unwrap_or(self.boot.root_cluster);
                let chain = self.chain(first)?;
                let len = chain.len() as u64 * self.boot.cluster_size();
                if len > MAX_DIR_BYTES.max(self.boot.cluster_size()) {
                    return Err(Error::LimitExceeded {
                        what: "FAT directory size",
                        limit: MAX_DIR_BYTES,
                    });
                }
                let mut out = Vec::with_capacity(len as usize);
                self.read_chain(&chain, len, &mut out)?;
                out
            }
        };
        let mut entries = Vec::new();
        let mut label = None;
        // Long-name parts collected so far: checksum, expected count, units by sequence.
        let mut lfn: Option<LfnParts> = None;
        for chunk in bytes.chunks_exact(32) {
            let Ok(raw) = <&[u8; 32]>::try_from(chunk) else {
                break;
            };
            match raw[0] {
                0x00 => break,
                0xE5 => {
                    lfn = None;
                    continue;
                }
                _ => {}
            }
            if raw[11] & 0x3F == attr::LONG_NAME {
                let (seq, last, chk, units) = parse_lfn(raw);
                if seq == 0 || seq > 20 {
                    lfn = None;
                    continue;
                }
                if last {
                    let mut parts = vec![None; usize::from(seq)];
                    parts[usize::from(seq) - 1] = Some(units);
                    lfn = Some((chk, seq, parts));
                } else if let Some((c, _, parts)) = &mut lfn {
                    match parts.get_mut(usize::from(seq) - 1) {
                        Some(slot) if *c == chk => *slot = Some(units),
                        _ => lfn = None,
                    }
                }
                continue;
            }
            let e = ShortEntry::parse(raw);
            let long = lfn.take();
            if e.attr & attr::VOLUME_ID != 0 {
                if first_cluster.is_none() && e.attr & attr::DIRECTORY == 0 {
                    label = Some(String::from_utf8_lossy(&e.name).trim_end().to_string());
                }
                continue;
            }
            if e.name[0] == b'.' {
                continue;
            }
            let long_name = long.and_then(|(chk, _, parts)| {
                if chk != short_name_checksum(&e.name) {
                    return None;
                }
                let mut units = Vec::new();
                for p in parts {
                    units.extend_from_slice(&p?);
                }
                let end = units.iter().position(|&u| u == 0).unwrap_or(units.len());
                units.truncate(end);
                Some(String::from_utf16_lossy(&units))
            });
            let short_name = e.display_name();
            let is_dir = e.attr & attr::DIRECTORY != 0;
            entries.push(FatEntry {
                name: long_name.unwrap_or_else(|| short_name.clone()),
                short_name,
                is_dir,
                size: if is_dir { 0 } else { e.size },
                first_cluster: e.first_cluster,
                attributes: e.attr,
                modified: unix_from_dos(e.wrt_date, e.wrt_time),
            });
        }
        Ok((entries, label))
    }

    /// The entries of the root directory.
    pub fn root(&mut self) -> Result<Vec<FatEntry>> {
        Ok(self.read_dir_raw(None)?.0)
    }

    /// The entries of a directory.
    pub fn read_dir(&mut self, dir: &FatEntry) -> Result<Vec<FatEntry>> {
        self.dir_entries(dir)
    }

    /// [`read_dir`](Self::read_dir) through `&self`.
    fn dir_entries(&self, dir: &FatEntry) -> Result<Vec<FatEntry>> {
        if !dir.is_dir {
            return Err(Error::InvalidOption {
                what: "directory entry",
                reason: "is not a directory",
            });
        }
        if dir.first_cluster == 0 {
            return Ok(self.read_dir_raw(None)?.0);
        }
        Ok(self.read_dir_raw(Some(dir.first_cluster))?.0)
    }

    /// Finds a `/`-separated path (case-insensitive, long or short names).
    pub fn lookup(&mut self, path: &str) -> Result<FatEntry> {
        let mut entries = self.root()?;
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let not_found = || Error::NotFound {
            path: path.to_string(),
        };
        let mut found = None;
        for (i, part) in parts.iter().enumerate() {
            let e = entries
                .iter()
                .find(|e| {
                    e.name.to_uppercase() == part.to_uppercase()
                        || e.short_name.eq_ignore_ascii_case(part)
                })
                .cloned()
                .ok_or_else(not_found)?;
            if i + 1 < parts.len() {
                entries = self.read_dir(&e)?;
            }
            found = Some(e);
        }
        found.ok_or_else(not_found)
    }

    /// Copies a file's contents to `w`; returns the bytes copied.
    pub fn copy_file<W: Write>(&mut self, file: &FatEntry, mut w: W) -> Result<u64> {
        self.copy_data(file, &mut w)
    }

    /// [`copy_file`](Self::copy_file) through `&self`.
    pub(super) fn copy_data(&self, file: &FatEntry, w: &mut dyn Write) -> Result<u64> {
        if file.is_dir {
            return Err(Error::InvalidOption {
                what: "directory entry",
                reason: "is a directory, not a file",
            });
        }
        if file.size == 0 {
            return Ok(0);
        }
        let chain = self.chain(file.first_cluster)?;
        self.read_chain(&chain, u64::from(file.size), w)?;
        Ok(u64::from(file.size))
    }

    /// A file's contents.
    pub fn read_file(&mut self, file: &FatEntry) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.copy_file(file, &mut out)?;
        Ok(out)
    }

    /// Every entry below the root, depth first in directory order, with `/`-separated paths.
    /// Refuses directory loops, nesting beyond the depth limit and more entries than allowed.
    pub fn walk(&mut self) -> Result<Vec<(String, FatEntry)>> {
        self.walk_all()
    }

    /// [`walk`](Self::walk) through `&self`.
    pub(super) fn walk_all(&self) -> Result<Vec<(String, FatEntry)>> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        let root = self.read_dir_raw(None)?.0;
        self.walk_into(String::new(), root, 0, &mut seen, &mut out)?;
        Ok(out)
    }

    fn walk_into(
        &self,
        prefix: String,
        entries: Vec<FatEntry>,
        depth: usize,
        seen: &mut BTreeSet<u32>,
        out: &mut Vec<(String, FatEntry)>,
    ) -> Result<()> {
        if depth > self.limits.max_depth {
            return Err(Error::LimitExceeded {
                what: "FAT directory depth",
                limit: self.limits.max_depth as u64,
            });
        }
        for e in entries {
            if out.len() >= self.limits.max_entries {
                return Err(Error::LimitExceeded {
                    what: "FAT entries walked",
                    limit: self.limits.max_entries as u64,
                });
            }
            let path = format!("{prefix}{}", e.name);
            let sub = if e.is_dir {
                if e.first_cluster < 2 || !seen.insert(e.first_cluster) {
                    return Err(Error::Malformed {
                        structure: "FAT directory entry",
                        field: "DIR_FstClus",
                        offset: self.boot.data_offset(),
                        reason: "directory points at the root or at a directory already seen",
                    });
                }
                Some(self.dir_entries(&e)?)
            } else {
                None
            };
            out.push((path.clone(), e));
            if let Some(sub) = sub {
                self.walk_into(format!("{path}/"), sub, depth + 1, seen, out)?;
            }
        }
        Ok(())
    }
}
