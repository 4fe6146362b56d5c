//! Building a FAT12/16/32 volume in memory: collect a tree, plan geometry and clusters, emit
//! sequentially.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use imgpipe_fstree::{Content, FileType, ScanOptions, Tree};

use crate::error::{Error, Result};
use crate::raw::{
    FatBootSector, FatType, NT_LOWER_BASE, NT_LOWER_EXT, ShortEntry, attr, dos_datetime,
    fs_info_sector, lfn_entries, short_name_checksum,
};

/// Most entries in one directory (FAT specification: a directory is at most 2 MiB).
pub const MAX_DIR_ENTRIES: usize = 65_536;
/// Longest name, in UTF-16 code units.
pub const MAX_NAME_UNITS: usize = 255;
/// Largest file FAT can store.
pub const MAX_FILE_SIZE: u64 = u32::MAX as u64;

#[derive(Debug, Clone)]
enum Node {
    File {
        content: Content,
        size: u64,
        /// A reserved file's capacity: its run of clusters holds this much.
        capacity: Option<u64>,
    },
    Dir(Dir),
}

#[derive(Debug, Clone, Default)]
struct Dir {
    /// Entries by name; byte order makes the output deterministic.
    entries: BTreeMap<String, Node>,
    /// Upper-cased names, to refuse two names FAT considers equal.
    folded: BTreeSet<String>,
}

impl Dir {
    fn get_or_create_dir(&mut self, name: &str) -> Result<&mut Dir> {
        if !self.entries.contains_key(name) {
            validate_name(name)?;
            if !self.folded.insert(name.to_uppercase()) {
                return Err(Error::InvalidName {
                    name: name.to_string(),
                    reason: "differs only in case from another name in the directory",
                });
            }
            self.entries
                .insert(name.to_string(), Node::Dir(Dir::default()));
        }
        match self.entries.get_mut(name) {
            Some(Node::Dir(d)) => Ok(d),
            _ => Err(Error::InvalidName {
                name: name.to_string(),
                reason: "is a file, not a directory",
            }),
        }
    }
}

/// What the builder planned and wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FatSummary {
    /// The boot sector written.
    pub boot_sector: FatBootSector,
    /// Clusters in use (directories and files).
    pub used_clusters: u32,
    /// Files written.
    pub files: u64,
    /// Directories written (without the root).
    pub directories: u64,
    /// Where each reserved file ([`FatBuilder::reserve_file`]) landed, in path order.
    pub reserved: Vec<FatReservedFile>,
}

/// A reserved file as written: one contiguous run of clusters of at least its capacity,
/// and every field that changes with its size, so that its content can be replaced later by
/// plain byte writes ([`FatReservedFile::size_patches`]). Offsets are bytes from the start
/// of the volume.
///
/// A FAT reader trusts the cluster chain, not only the size: fsck.fat truncates a file whose
/// chain is longer than its size needs. So the chain covers the size (the rest of the run is
/// free in the FAT and counted free in FSInfo), and a new size rewrites the run's FAT entries,
/// the free count and, between empty and not, the entry's first cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FatReservedFile {
    /// Its path, `/`-separated, without a leading `/`.
    pub path: String,
    /// Where its data starts (the run's first cluster).
    pub offset: u64,
    /// Bytes it may hold.
    pub capacity: u64,
    /// Its size as written.
    pub size: u64,
    /// DIR_FileSize of its short directory entry (after any long-name entries): 32-bit
    /// little-endian.
    pub size_offset: u64,
    /// Bytes per cluster.
    pub cluster_size: u64,
    /// The run's first cluster.
    pub first_cluster: u32,
    /// Clusters in the run.
    pub clusters: u32,
    /// DIR_FstClusLO and (when not 0) DIR_FstClusHI of the short entry: 16-bit little-endian,
    /// each holding its half of `first_cluster` while the file is not empty, 0 when it is.
    pub first_cluster_fields: Vec<(u64, u16)>,
    /// The run's first entry in each FAT. One entry per cluster of the run: the next
    /// cluster while the file goes on, `end_of_chain` in its last cluster, 0 (free) past it.
    pub fat_entries: Vec<u64>,
    /// Bytes per FAT entry: 2 (FAT16) or 4 (FAT32).
    pub fat_entry_bytes: u8,
    /// The end-of-chain mark.
    pub end_of_chain: u32,
    /// FAT32: FSI_Free_Count of the FSInfo sector and of its backup (32-bit little-endian).
    pub free_count_fields: Vec<u64>,
    /// The free cluster count with the file empty; each cluster it uses takes one off.
    pub free_count_empty: u32,
}

impl FatReservedFile {
    /// Clusters a file of `size` bytes uses.
    pub fn clusters_for(&self, size: u64) -> u64 {
        size.div_ceil(self.cluster_size.max(1))
    }

    /// The byte writes that give the file a new size (its content aside): the size field,
    /// the first-cluster fields, the run's entries in every FAT and the free counts. Each is
    /// `(offset, bytes)`.
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] when `size` is above the capacity.
    pub fn size_patches(&self, size: u64) -> Result<Vec<(u64, Vec<u8>)>> {
        if size > self.capacity {
            return Err(Error::LimitExceeded {
                what: "reserved FAT file size",
                limit: self.capacity,
            });
        }
        let used = self.clusters_for(size);
        let size32 = u32::try_from(size).map_err(|_| Error::LimitExceeded {
            what: "FAT file size",
            limit: MAX_FILE_SIZE,
        })?;
        let mut out = vec![(self.size_offset, size32.to_le_bytes().to_vec())];
        for (at, v) in &self.first_cluster_fields {
            let v = if size > 0 { *v } else { 0 };
            out.push((*at, v.to_le_bytes().to_vec()));
        }
        let mut links = Vec::with_capacity(self.clusters as usize * 4);
        for i in 0..u64::from(self.clusters) {
            let v = if i + 1 < used {
                u64::from(self.first_cluster) + i + 1
            } else if i + 1 == used {
                u64::from(self.end_of_chain)
            } else {
                0
            };
            match self.fat_entry_bytes {
                2 => links.extend_from_slice(&(v as u16).to_le_bytes()),
                _ => links.extend_from_slice(&(v as u32).to_le_bytes()),
            }
        }
        for at in &self.fat_entries {
            out.push((*at, links.clone()));
        }
        let free = u64::from(self.free_count_empty).saturating_sub(used) as u32;
        for at in &self.free_count_fields {
            out.push((*at, free.to_le_bytes().to_vec()));
        }
        Ok(out)
    }
}

/// Collects files and directories, then writes a FAT volume of a fixed size.
///
/// Geometry follows the FAT specification and mkfs.fat's conventions: two FATs, 512 root
/// entries on FAT12/16, 32 reserved sectors with FSInfo at 1 and a boot sector copy at 6 on
/// FAT32, the data region aligned to the cluster size. Without an explicit type, volumes of
/// 512 MiB and more get FAT32, smaller ones FAT16, and those too small for FAT16 FAT12; the
/// cluster size is the smallest that keeps the count in the type's range.
///
/// Names that are valid upper-case 8.3 names are stored as such; all-lower-case 8.3 names
/// use the NT case flags as Windows and Linux do; every other name gets long-name entries and
/// a `~N` short alias unique in its directory. Every timestamp is the epoch given.
#[derive(Debug, Clone)]
pub struct FatBuilder {
    size: u64,
    sector_size: u16,
    fat_type: Option<FatType>,
    label: Option<String>,
    volume_id: u32,
    epoch: u64,
    hidden_sectors: u32,
    root: Dir,
    /// How [`FatBuilder::add_tree`] scans (the host paths it skips).
    scan: ScanOptions,
}

impl FatBuilder {
    /// A volume of `size` bytes (rounded down to whole sectors), with volume id 0, no label and
    /// every timestamp at 1980-01-01 until [`FatBuilder::epoch`] says otherwise.
    pub fn new(size: u64) -> Self {
        Self {
            size,
            sector_size: 512,
            fat_type: None,
            label: None,
            volume_id: 0,
            epoch: 0,
            hidden_sectors: 0,
            root: Dir::default(),
            scan: ScanOptions::default(),
        }
    }

    /// Makes [`FatBuilder::add_tree`] skip the host path `path` (which need not exist yet):
    /// give it the image being written when that lies inside the tree, so the volume
    /// neither packs itself nor an older copy of itself.
    pub fn exclude_host_path(&mut self, path: &Path) -> Result<()> {
        self.scan.exclude(path).map_err(|e| match e {
            imgpipe_fstree::Error::Io { source, .. } => Error::Io {
                what: "resolving an excluded path",
                source,
            },
            e => Error::Io {
                what: "resolving an excluded path",
                source: std::io::Error::other(e),
            },
        })
    }

    /// Bytes per sector: 512 (default), 1024, 2048 or 4096 (for 4Kn disks).
    pub fn sector_size(mut self, bytes: u16) -> Self {
        self.sector_size = bytes;
        self
    }

    /// Forces FAT12, FAT16 or FAT32.
    pub fn fat_type(mut self, t: FatType) -> Self {
        self.fat_type = Some(t);
        self
    }

    /// The volume label (up to 11 characters; stored upper-case).
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// The volume serial number.
    pub fn volume_id(mut self, id: u32) -> Self {
        self.volume_id = id;
        self
    }

    /// The Unix time every timestamp gets (clamped to what FAT can store: 1980..2107).
    pub fn epoch(mut self, unix_seconds: u64) -> Self {
        self.epoch = unix_seconds;
        self
    }

    /// Sectors before the volume on its disk (the partition's start), recorded in the BPB.
    pub fn hidden_sectors(mut self, sectors: u32) -> Self {
        self.hidden_sectors = sectors;
        self
    }

    /// Adds a directory (and its parents) at a `/`-separated path.
    pub fn add_dir(&mut self, path: &str) -> Result<()> {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        check_depth(parts.len())?;
        let mut dir = &mut self.root;
        for part in parts {
            dir = dir.get_or_create_dir(part)?;
        }
        Ok(())
    }

    /// Adds a file (creating parent directories) at a `/`-separated path.
    pub fn add_file(&mut self, path: &str, data: Vec<u8>) -> Result<()> {
        let size = data.len() as u64;
        self.add_content(path, Content::Bytes(data.into()), size)
    }

    /// Adds a file whose content (`size` bytes) comes from memory, the host, a range of
    /// another image or a reader's stream, read when the volume is written.
    pub fn add_content(&mut self, path: &str, content: Content, size: u64) -> Result<()> {
        self.insert_file(path, content, size, None)
    }

    /// Reserves a file at a `/`-separated path (creating parent directories): it gets one
    /// contiguous run of clusters holding at least `capacity` bytes, its content is `data`
    /// (its size; empty for an empty file) and zeros after it. The written volume's
    /// [`FatSummary::reserved`] says where the data and every size-dependent field are, so
    /// the content can be replaced in place later. FAT16 and FAT32 only (FAT12 entries
    /// share bytes).
    pub fn reserve_file(&mut self, path: &str, capacity: u64, data: Vec<u8>) -> Result<()> {
        let size = data.len() as u64;
        self.reserve_content(path, capacity, Content::Bytes(data.into()), size)
    }

    /// Like [`FatBuilder::reserve_file`], with content (`size` bytes) read when the volume
    /// is written.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] for a capacity of 0 or below `size`;
    /// [`Error::LimitExceeded`] for a capacity of 4 GiB or more; the errors of
    /// [`FatBuilder::add_content`].
    pub fn reserve_content(
        &mut self,
        path: &str,
        capacity: u64,
        content: Content,
        size: u64,
    ) -> Result<()> {
        if capacity == 0 || size > capacity {
            return Err(Error::InvalidOption {
                what: "reserved FAT file capacity",
                reason: "must be above 0 and at least the content's size",
            });
        }
        if capacity > MAX_FILE_SIZE {
            return Err(Error::LimitExceeded {
                what: "FAT file size",
                limit: MAX_FILE_SIZE,
            });
        }
        self.insert_file(path, content, size, Some(capacity))
    }

    fn insert_file(
        &mut self,
        path: &str,
        content: Content,
        size: u64,
        capacity: Option<u64>,
    ) -> Result<()> {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let Some((name, parents)) = parts.split_last() else {
            return Err(Error::InvalidName {
                name: path.to_string(),
                reason: "empty path",
            });
        };
        if size > MAX_FILE_SIZE {
            return Err(Error::LimitExceeded {
                what: "FAT file size",
                limit: MAX_FILE_SIZE,
            });
        }
        check_depth(parents.len())?;
        let mut dir = &mut self.root;
        for part in parents {
            dir = dir.get_or_create_dir(part)?;
        }
        validate_name(name)?;
        if dir.entries.contains_key(*name) || !dir.folded.insert(name.to_uppercase()) {
            return Err(Error::InvalidName {
                name: (*name).to_string(),
                reason: "already exists (FAT names are case-insensitive)",
            });
        }
        dir.entries.insert(
            (*name).to_string(),
            Node::File {
                content,
                size,
                capacity,
            },
        );
        Ok(())
    }

    /// Adds everything below the host directory `src` at the volume root, as
    /// [`imgpipe_fstree::scan`] finds it following symlinks (FAT has none), in byte order of
    /// names. Files are read when the volume is written. Regular files and directories
    /// only: other special files are refused.
    pub fn add_tree(&mut self, src: &Path) -> Result<()> {
        let mut scan = self.scan.clone();
        scan.xattrs = false;
        scan.follow_symlinks = true;
        scan.max_depth = 65;
        let tree = imgpipe_fstree::scan(src, &scan).map_err(|e| match e {
            imgpipe_fstree::Error::Io { source, .. } => Error::Io {
                what: "reading a source directory",
                source,
            },
            imgpipe_fstree::Error::LimitExceeded { what, limit } => {
                Error::LimitExceeded { what, limit }
            }
            e => Error::Io {
                what: "reading a source directory",
                source: std::io::Error::other(e),
            },
        })?;
        self.add_fstree(&tree)
    }

    /// Adds every entry of `tree` at the volume root: directories and regular files (each
    /// name of a hard-linked file gets its own copy; FAT has no hard links). Owners,
    /// modes, xattrs and times are not kept: every timestamp is the epoch.
    ///
    /// # Errors
    /// [`Error::InvalidName`] naming the entry for what FAT cannot hold: a symlink, device,
    /// FIFO or socket, a name that is not UTF-8 or not a valid FAT long name, two names
    /// that differ only in case; [`Error::LimitExceeded`] for a file of 4 GiB or more.
    pub fn add_fstree(&mut self, tree: &Tree) -> Result<()> {
        for node in tree.iter().skip(1) {
            let e = &node.entry;
            let Ok(path) = std::str::from_utf8(&e.path) else {
                return Err(Error::InvalidName {
                    name: e.display_path(),
                    reason: "not valid UTF-8",
                });
            };
            match e.file_type {
                FileType::Dir => self.add_dir(path)?,
                FileType::File => self.add_content(path, node.content.clone(), e.size)?,
                FileType::Symlink => {
                    return Err(Error::InvalidName {
                        name: e.display_path(),
                        reason: "is a symlink (FAT has none)",
                    });
                }
                _ => {
                    return Err(Error::InvalidName {
                        name: e.display_path(),
                        reason: "neither a regular file nor a directory (FAT has no devices, FIFOs or sockets)",
                    });
                }
            }
        }
        Ok(())
    }

    /// Builds the volume in memory.
    pub fn build_vec(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(usize::try_from(self.size).unwrap_or(0));
        self.build(&mut out)?;
        Ok(out)
    }

    /// Plans the volume and writes exactly `size` bytes (whole sectors) to `w`, front to back.
    pub fn build<W: Write>(&self, mut w: W) -> Result<FatSummary> {
        self.emit(&mut w, &mut |w: &mut W, n| write_zeros(w, n))
    }

    /// Like [`FatBuilder::build`], but seeks over long runs of zeros (free space) instead of
    /// writing them, which leaves holes in a sparse file. The target must already read as
    /// zeros there and be long enough: a fresh file given its length with `set_len`, or a
    /// zeroed buffer. The stream ends positioned after the volume.
    pub fn build_sparse<W: Write + Seek>(&self, mut w: W) -> Result<FatSummary> {
        self.emit(&mut w, &mut |w: &mut W, n| {
            if n < 1 << 20 {
                return write_zeros(w, n);
            }
            let d = i64::try_from(n).map_err(|_| Error::LimitExceeded {
                what: "seek distance",
                limit: i64::MAX as u64,
            })?;
            w.seek(SeekFrom::Current(d))
                .map(drop)
                .map_err(Error::io("seeking over free space"))
        })
    }

    fn emit<W: Write>(
        &self,
        w: &mut W,
        zeros: &mut dyn FnMut(&mut W, u64) -> Result<()>,
    ) -> Result<FatSummary> {
        let label = self.label.as_deref().map(normalize_label).transpose()?;
        let geo = Geometry::choose(self.size, self.sector_size, self.fat_type)?;
        let stamp = Stamp::new(self.epoch);
        // Phase 1: flatten the tree and give every directory and file its clusters.
        let mut plan = Plan {
            dirs: Vec::new(),
            extents: Vec::new(),
            next_cluster: 2,
            cluster_size: geo.cluster_size(),
            files: 0,
            reserved: Vec::new(),
        };
        plan.add_dir(&self.root, None, "", geo.fat_type, label.is_some())?;
        let used = plan.next_cluster - 2;
        if !plan.reserved.is_empty() && geo.fat_type == FatType::Fat12 {
            return Err(Error::Unsupported {
                feature: "reserved files on FAT12 (its 12-bit FAT entries share bytes): make the volume larger or choose FAT16",
            });
        }
        // Clusters in FAT chains: a reserved run counts only what its file's size needs.
        let chained: u32 = plan.extents.iter().map(|e| e.chained).sum();
        let free = geo.clusters.saturating_sub(chained);
        // The free count is one field for the volume: it follows one reserved file's size,
        // not two (then it is 0xFFFFFFFF, "unknown", which the specification allows).
        let free_tracks_size = plan.reserved.len() <= 1;
        if used > geo.clusters {
            return Err(Error::DoesNotFit {
                index: 0,
                needed: u64::from(used) * geo.cluster_size() + geo.data_offset(),
                available: geo.total_sectors as u64 * u64::from(geo.bps),
            });
        }
        if geo.fat_type != FatType::Fat32 {
            let root_entries = plan.dirs[0].entry_count;
            if root_entries > usize::from(geo.root_entries) {
                return Err(Error::LimitExceeded {
                    what: "FAT12/16 root directory entries",
                    limit: u64::from(geo.root_entries),
                });
            }
        }
        // Phase 2: emit reserved sectors, FATs, the fixed root, then clusters in order.
        let boot = FatBootSector {
            oem_name: "MSWIN4.1".into(),
            bytes_per_sector: geo.bps,
            sectors_per_cluster: geo.spc,
            reserved_sectors: geo.reserved,
            num_fats: 2,
            root_entries: geo.root_entries,
            total_sectors: geo.total_sectors,
            media: 0xF8,
            fat_size: geo.fat_size,
            sectors_per_track: 63,
            heads: 255,
            hidden_sectors: self.hidden_sectors,
            root_cluster: if geo.fat_type == FatType::Fat32 { 2 } else { 0 },
            fs_info_sector: if geo.fat_type == FatType::Fat32 { 1 } else { 0 },
            backup_boot_sector: if geo.fat_type == FatType::Fat32 { 6 } else { 0 },
            volume_id: self.volume_id,
            volume_label: label
                .map(|l| String::from_utf8_lossy(&l).trim_end().to_string())
                .unwrap_or_default(),
            fat_type: geo.fat_type,
            clusters: geo.clusters,
        };
        let bps = usize::from(geo.bps);
        let mut head = vec![0u8; usize::from(geo.reserved) * bps];
        let bs = boot.to_bytes();
        head[..bps].copy_from_slice(&bs);
        if geo.fat_type == FatType::Fat32 {
            let next = if used < geo.clusters {
                plan.next_cluster
            } else {
                u32::MAX
            };
            let count = if free_tracks_size { free } else { u32::MAX };
            let info = fs_info_sector(geo.bps, count, next);
            head[bps..2 * bps].copy_from_slice(&info);
            head[6 * bps..7 * bps].copy_from_slice(&bs);
            head[7 * bps..8 * bps].copy_from_slice(&info);
        }
        write(w, &head)?;
        let fat = plan.fat_bytes(&geo);
        write(w, &fat)?;
        write(w, &fat)?;
        if geo.fat_type != FatType::Fat32 {
            let mut root = plan.dir_bytes(0, &stamp, label.as_ref());
            root.resize(geo.root_sectors() as usize * bps, 0);
            write(w, &root)?;
        }
        let cs = geo.cluster_size() as usize;
        for extent in &plan.extents {
            let len = extent.clusters as usize * cs;
            match extent.source {
                ExtentSource::Dir(i) => {
                    let mut b = plan.dir_bytes(i, &stamp, label.as_ref());
                    b.resize(len, 0);
                    write(w, &b)?;
                }
                ExtentSource::File(content, size) => {
                    copy_content(w, content, size)?;
                    write_zeros(w, len as u64 - size)?;
                }
            }
        }
        let written = geo.data_offset() + u64::from(used) * geo.cluster_size();
        let total = u64::from(geo.total_sectors) * u64::from(geo.bps);
        zeros(w, total - written)?;
        let reserved = plan
            .reserved
            .iter()
            .map(|r| plan.reserved_file(r, &geo, &stamp, label.as_ref(), free, free_tracks_size))
            .collect::<Result<Vec<_>>>()?;
        Ok(FatSummary {
            boot_sector: boot,
            used_clusters: chained,
            files: plan.files,
            directories: plan.dirs.len() as u64 - 1,
            reserved,
        })
    }
}

fn write<W: Write>(w: &mut W, b: &[u8]) -> Result<()> {
    w.write_all(b).map_err(Error::io("writing the FAT volume"))
}

/// Writes exactly `size` bytes of `content`.
fn copy_content<W: Write>(w: &mut W, content: &Content, size: u64) -> Result<()> {
    let r = content
        .open()
        .map_err(Error::io("opening a file's content"))?;
    let n = std::io::copy(&mut r.take(size), w).map_err(Error::io("copying a file's content"))?;
    if n != size {
        return Err(Error::Io {
            what: "reading a file's content (did it shrink?)",
            source: std::io::ErrorKind::UnexpectedEof.into(),
        });
    }
    Ok(())
}

fn write_zeros<W: Write>(w: &mut W, mut n: u64) -> Result<()> {
    let zeros = [0u8; 65_536];
    while n > 0 {
        let k = n.min(zeros.len() as u64) as usize;
        write(w, &zeros[..k])?;
        n -= k as u64;
    }
    Ok(())
}

/// Refuses names FAT cannot store or that would be ambiguous.
fn validate_name(name: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() || name == "." || name == ".." {
        return bad("empty, `.` or `..`");
    }
    if name.encode_utf16().count() > MAX_NAME_UNITS {
        return bad("longer than 255 UTF-16 code units");
    }
    if name
        .chars()
        .any(|c| c < ' ' || c == '\u{7f}' || "\"*/:<>?\\|".contains(c))
    {
        return bad("contains a control character or one of \" * / : < > ? \\ |");
    }
    if name.ends_with('.') || name.ends_with(' ') {
        return bad("ends with a dot or a space, which FAT drops");
    }
    Ok(())
}

/// Characters allowed in a short name besides A-Z and 0-9.
const SHORT_SPECIALS: &[u8] = b"!#$%&'()-@^_`{}~";

fn short_char_ok(c: u8) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit() || SHORT_SPECIALS.contains(&c)
}

fn normalize_label(label: &str) -> Result<[u8; 11]> {
    let up = label.to_ascii_uppercase();
    let b = up.as_bytes();
    if b.is_empty()
        || b.len() > 11
        || b[0] == b' '
        || !b.iter().all(|&c| short_char_ok(c) || c == b' ')
    {
        return Err(Error::InvalidOption {
            what: "volume label",
            reason: "1 to 11 characters from A-Z 0-9 space ! # $ % & ' ( ) - @ ^ _ ` { } ~",
        });
    }
    let mut out = [b' '; 11];
    out[..b.len()].copy_from_slice(b);
    Ok(out)
}

/// The 8.3 form of `name` if it needs no long name: the 11-byte name and NT case flags.
fn exact_short_name(name: &str) -> Option<([u8; 11], u8)> {
    if !name.is_ascii() {
        return None;
    }
    let (base, ext) = match name.rsplit_once('.') {
        Some((b, e)) => (b, e),
        None => (name, ""),
    };
    if base.is_empty() || base.len() > 8 || ext.len() > 3 || base.contains('.') {
        return None;
    }
    let case = |part: &str, flag: u8| -> Option<u8> {
        let has_lower = part.bytes().any(|c| c.is_ascii_lowercase());
        let has_upper = part.bytes().any(|c| c.is_ascii_uppercase());
        match (has_lower, has_upper) {
            (true, true) => None,
            (true, false) => Some(flag),
            _ => Some(0),
        }
    };
    let flags = case(base, NT_LOWER_BASE)? | case(ext, NT_LOWER_EXT)?;
    let mut out = [b' '; 11];
    for (i, c) in base.bytes().enumerate() {
        let c = c.to_ascii_uppercase();
        if !short_char_ok(c) {
            return None;
        }
        out[i] = c;
    }
    for (i, c) in ext.bytes().enumerate() {
        let c = c.to_ascii_uppercase();
        if !short_char_ok(c) {
            return None;
        }
        out[8 + i] = c;
    }
    Some((out, flags))
}

/// A `BASE~N.EXT` alias for a long name, unique among `taken`.
fn alias_short_name(name: &str, taken: &BTreeSet<[u8; 11]>) -> Result<[u8; 11]> {
    let clean = |s: &str| -> Vec<u8> {
        s.chars()
            .filter(|&c| c != ' ' && c != '.')
            .map(|c| {
                let u = c.to_ascii_uppercase();
                if u.is_ascii() && short_char_ok(u as u8) {
                    u as u8
                } else {
                    b'_'
                }
            })
            .collect()
    };
    let trimmed = name.trim_start_matches('.');
    let (base, ext) = match trimmed.rsplit_once('.') {
        Some((b, e)) => (clean(b), clean(e)),
        None => (clean(trimmed), Vec::new()),
    };
    let base = if base.is_empty() { b"_".to_vec() } else { base };
    for n in 1..=999_999u32 {
        let tail = format!("~{n}");
        let keep = (8 - tail.len()).min(base.len());
        let mut out = [b' '; 11];
        out[..keep].copy_from_slice(&base[..keep]);
        out[keep..keep + tail.len()].copy_from_slice(tail.as_bytes());
        for (i, &c) in ext.iter().take(3).enumerate() {
            out[8 + i] = c;
        }
        if !taken.contains(&out) {
            return Ok(out);
        }
    }
    Err(Error::LimitExceeded {
        what: "short name aliases in one directory",
        limit: 999_999,
    })
}

/// The chosen layout of the volume.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    fat_type: FatType,
    bps: u16,
    spc: u8,
    reserved: u16,
    root_entries: u16,
    fat_size: u32,
    total_sectors: u32,
    clusters: u32,
}

impl Geometry {
    fn cluster_size(&self) -> u64 {
        u64::from(self.bps) * u64::from(self.spc)
    }

    fn root_sectors(&self) -> u32 {
        (u32::from(self.root_entries) * 32).div_ceil(u32::from(self.bps))
    }

    /// Where the FAT12/16 root directory starts.
    fn root_offset(&self) -> u64 {
        (u64::from(self.reserved) + 2 * u64::from(self.fat_size)) * u64::from(self.bps)
    }

    fn data_offset(&self) -> u64 {
        (u64::from(self.reserved) + 2 * u64::from(self.fat_size) + u64::from(self.root_sectors()))
            * u64::from(self.bps)
    }

    fn choose(size: u64, bps: u16, requested: Option<FatType>) -> Result<Self> {
        if !matches!(bps, 512 | 1024 | 2048 | 4096) {
            return Err(Error::InvalidOption {
                what: "FAT sector size",
                reason: "must be 512, 1024, 2048 or 4096",
            });
        }
        let total = u32::try_from(size / u64::from(bps)).map_err(|_| Error::InvalidOption {
            what: "FAT volume size",
            reason: "more than 2^32 sectors",
        })?;
        let spcs = || {
            (0..8)
                .map(|s| 1u8 << s)
                .filter(|&spc| u32::from(spc) * u32::from(bps) <= 32_768)
        };
        let first = |t: FatType, min_clusters: u32| {
            spcs().find_map(|spc| {
                Self::try_new(t, bps, spc, total).filter(|g| g.clusters >= min_clusters)
            })
        };
        let found = match requested {
            Some(t) => first(t, 0),
            None if size >= 512 << 20 => {
                let target: u32 = match size >> 30 {
                    0..=7 => 4096,
                    8..=15 => 8192,
                    16..=31 => 16_384,
                    _ => 32_768,
                };
                let spc = (target / u32::from(bps)).max(1) as u8;
                Self::try_new(FatType::Fat32, bps, spc, total).or_else(|| first(FatType::Fat32, 0))
            }
            // Stay clear of cluster counts just above 4085, which some readers misjudge.
            None => first(FatType::Fat16, 4096).or_else(|| first(FatType::Fat12, 0)),
        };
        found.ok_or(Error::InvalidOption {
            what: "FAT volume size",
            reason: "no cluster size gives a cluster count valid for this FAT type",
        })
    }

    fn try_new(t: FatType, bps: u16, spc: u8, total: u32) -> Option<Self> {
        let (base_reserved, root_entries) = match t {
            FatType::Fat32 => (32u32, 0u16),
            _ => (1, 512),
        };
        let root_sectors = (u32::from(root_entries) * 32).div_ceil(u32::from(bps));
        let spc32 = u32::from(spc);
        let mut fat_size = 1u32;
        let mut reserved;
        let mut clusters;
        loop {
            let meta = base_reserved + 2 * fat_size + root_sectors;
            // Align the data region to the cluster size.
            reserved = base_reserved + (spc32 - meta % spc32) % spc32;
            let meta = reserved + 2 * fat_size + root_sectors;
            clusters = total.checked_sub(meta)? / spc32;
            let fat_bytes = (u64::from(clusters) + 2) * u64::from(t.bits()) / 8 + 1;
            let need = u32::try_from(fat_bytes.div_ceil(u64::from(bps))).ok()?;
            if need <= fat_size {
                break;
            }
            fat_size = need;
        }
        let ok = match t {
            FatType::Fat12 => (1..=4084).contains(&clusters),
            FatType::Fat16 => (4085..=65_524).contains(&clusters),
            FatType::Fat32 => (65_525..=0x0FFF_FFF4).contains(&clusters),
        };
        let fat_size_ok = t == FatType::Fat32 || fat_size <= u32::from(u16::MAX);
        (ok && fat_size_ok).then_some(Self {
            fat_type: t,
            bps,
            spc,
            reserved: u16::try_from(reserved).ok()?,
            root_entries,
            fat_size,
            total_sectors: total,
            clusters,
        })
    }
}

/// Timestamps every entry gets.
struct Stamp {
    date: u16,
    time: u16,
    tenth: u8,
}

impl Stamp {
    fn new(epoch: u64) -> Self {
        let (date, time, tenth) = dos_datetime(epoch);
        Self { date, time, tenth }
    }

    fn entry(&self, name: [u8; 11], attr: u8, nt_res: u8, cluster: u32, size: u32) -> ShortEntry {
        ShortEntry {
            name,
            attr,
            nt_res,
            crt_time_tenth: self.tenth,
            crt_time: self.time,
            crt_date: self.date,
            acc_date: self.date,
            first_cluster: cluster,
            wrt_time: self.time,
            wrt_date: self.date,
            size,
        }
    }
}

#[derive(Debug)]
enum ExtentSource<'a> {
    Dir(usize),
    File(&'a Content, u64),
}

#[derive(Debug)]
struct Extent<'a> {
    first_cluster: u32,
    clusters: u32,
    /// Clusters linked in the FAT: all of them, but for a reserved file what its size needs.
    chained: u32,
    source: ExtentSource<'a>,
}

/// A reserved file in the plan.
#[derive(Debug)]
struct PlannedReserve {
    path: String,
    dir: usize,
    entry: usize,
    extent: usize,
    capacity: u64,
    size: u64,
}

#[derive(Debug)]
struct PlannedEntry {
    long_name: Option<Vec<u16>>,
    short: [u8; 11],
    nt_res: u8,
    is_dir: bool,
    first_cluster: u32,
    size: u32,
}

#[derive(Debug)]
struct PlannedDir {
    /// 0 for the FAT12/16 root, which lives outside the data region.
    first_cluster: u32,
    parent_cluster: u32,
    is_root: bool,
    entries: Vec<PlannedEntry>,
    entry_count: usize,
}

struct Plan<'a> {
    dirs: Vec<PlannedDir>,
    extents: Vec<Extent<'a>>,
    next_cluster: u32,
    cluster_size: u64,
    files: u64,
    reserved: Vec<PlannedReserve>,
}

impl<'a> Plan<'a> {
    fn alloc(&mut self, bytes: u64, source: ExtentSource<'a>) -> Result<u32> {
        if bytes == 0 {
            return Ok(0);
        }
        let n =
            u32::try_from(bytes.div_ceil(self.cluster_size)).map_err(|_| Error::LimitExceeded {
                what: "clusters",
                limit: u64::from(u32::MAX),
            })?;
        let first = self.next_cluster;
        self.next_cluster = first.checked_add(n).ok_or(Error::LimitExceeded {
            what: "clusters",
            limit: u64::from(u32::MAX),
        })?;
        self.extents.push(Extent {
            first_cluster: first,
            clusters: n,
            chained: n,
            source,
        });
        Ok(first)
    }

    /// Plans `dir` and, depth first in name order, everything below it; returns its index.
    fn add_dir(
        &mut self,
        dir: &'a Dir,
        parent: Option<u32>,
        path: &str,
        fat_type: FatType,
        has_label: bool,
    ) -> Result<usize> {
        let is_root = parent.is_none();
        // Short names first: exact 8.3 names claim theirs before aliases are made up.
        let mut taken = BTreeSet::new();
        let mut names: Vec<(Option<Vec<u16>>, [u8; 11], u8)> =
            Vec::with_capacity(dir.entries.len());
        for name in dir.entries.keys() {
            match exact_short_name(name) {
                Some((short, flags)) if taken.insert(short) => names.push((None, short, flags)),
                _ => names.push((Some(name.encode_utf16().collect()), [0; 11], 0)),
            }
        }
        for (long, short, _) in &mut names {
            if long.is_some() {
                let alias = alias_short_name(
                    &String::from_utf16_lossy(long.as_deref().unwrap_or_default()),
                    &taken,
                )?;
                taken.insert(alias);
                *short = alias;
            }
        }
        let mut count = usize::from(!is_root) * 2 + usize::from(is_root && has_label);
        for (long, _, _) in &names {
            count += 1 + long
                .as_ref()
                .map_or(0, |u| u.len().div_ceil(crate::raw::LFN_UNITS));
        }
        if count > MAX_DIR_ENTRIES {
            return Err(Error::LimitExceeded {
                what: "entries in one FAT directory",
                limit: MAX_DIR_ENTRIES as u64,
            });
        }
        let index = self.dirs.len();
        let fixed_root = is_root && fat_type != FatType::Fat32;
        let first_cluster = if fixed_root {
            0
        } else {
            // A directory always has at least one cluster.
            self.alloc((count as u64 * 32).max(1), ExtentSource::Dir(index))?
        };
        self.dirs.push(PlannedDir {
            first_cluster,
            parent_cluster: parent.unwrap_or(0),
            is_root,
            entries: Vec::with_capacity(names.len()),
            entry_count: count,
        });
        // The root cluster of FAT32 is written as 0 in `..` entries.
        let self_ref = if is_root { 0 } else { first_cluster };
        for ((long, short, nt_res), (name, node)) in names.into_iter().zip(dir.entries.iter()) {
            let child = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}/{name}")
            };
            let (is_dir, first, size) = match node {
                Node::File {
                    content,
                    size,
                    capacity,
                } => {
                    self.files += 1;
                    let source = ExtentSource::File(content, *size);
                    let first = match capacity {
                        None => self.alloc(*size, source)?,
                        Some(cap) => {
                            // The whole run up front; the chain covers what the size needs,
                            // and an empty file has no first cluster.
                            let first = self.alloc(*cap, source)?;
                            let extent = self.extents.len() - 1;
                            let chained = size.div_ceil(self.cluster_size);
                            self.extents[extent].chained =
                                u32::try_from(chained).unwrap_or(u32::MAX);
                            self.reserved.push(PlannedReserve {
                                path: child,
                                dir: index,
                                entry: self.dirs[index].entries.len(),
                                extent,
                                capacity: *cap,
                                size: *size,
                            });
                            if *size == 0 { 0 } else { first }
                        }
                    };
                    let size = u32::try_from(*size).map_err(|_| Error::LimitExceeded {
                        what: "FAT file size",
                        limit: MAX_FILE_SIZE,
                    })?;
                    (false, first, size)
                }
                Node::Dir(sub) => {
                    let sub_index = self.add_dir(sub, Some(self_ref), &child, fat_type, false)?;
                    (true, self.dirs[sub_index].first_cluster, 0)
                }
            };
            self.dirs[index].entries.push(PlannedEntry {
                long_name: long,
                short,
                nt_res,
                is_dir,
                first_cluster: first,
                size,
            });
        }
        Ok(index)
    }

    fn dir_bytes(&self, index: usize, stamp: &Stamp, label: Option<&[u8; 11]>) -> Vec<u8> {
        self.dir_layout(index, stamp, label).0
    }

    /// A directory's bytes, and where each entry's short entry starts in them.
    fn dir_layout(
        &self,
        index: usize,
        stamp: &Stamp,
        label: Option<&[u8; 11]>,
    ) -> (Vec<u8>, Vec<usize>) {
        let d = &self.dirs[index];
        let mut at = Vec::with_capacity(d.entries.len());
        let mut out = Vec::with_capacity(d.entry_count * 32);
        if d.is_root {
            if let Some(l) = label {
                out.extend_from_slice(&stamp.entry(*l, attr::VOLUME_ID, 0, 0, 0).to_bytes());
            }
        } else {
            let dot = *b".          ";
            let dotdot = *b"..         ";
            out.extend_from_slice(
                &stamp
                    .entry(dot, attr::DIRECTORY, 0, d.first_cluster, 0)
                    .to_bytes(),
            );
            out.extend_from_slice(
                &stamp
                    .entry(dotdot, attr::DIRECTORY, 0, d.parent_cluster, 0)
                    .to_bytes(),
            );
        }
        for e in &d.entries {
            if let Some(units) = &e.long_name {
                for lfn in lfn_entries(units, short_name_checksum(&e.short)) {
                    out.extend_from_slice(&lfn);
                }
            }
            let a = if e.is_dir {
                attr::DIRECTORY
            } else {
                attr::ARCHIVE
            };
            at.push(out.len());
            out.extend_from_slice(
                &stamp
                    .entry(e.short, a, e.nt_res, e.first_cluster, e.size)
                    .to_bytes(),
            );
        }
        (out, at)
    }

    /// Where a reserved file and its size-dependent fields landed.
    fn reserved_file(
        &self,
        r: &PlannedReserve,
        geo: &Geometry,
        stamp: &Stamp,
        label: Option<&[u8; 11]>,
        free: u32,
        free_tracks_size: bool,
    ) -> Result<FatReservedFile> {
        let cs = geo.cluster_size();
        let cluster_at = |c: u32| geo.data_offset() + u64::from(c.saturating_sub(2)) * cs;
        let d = &self.dirs[r.dir];
        let (_, at) = self.dir_layout(r.dir, stamp, label);
        let base = if d.first_cluster == 0 {
            geo.root_offset()
        } else {
            cluster_at(d.first_cluster)
        };
        let entry = base
            + at.get(r.entry).copied().ok_or(Error::InvalidOption {
                what: "reserved FAT file",
                reason: "its directory entry went missing while planning",
            })? as u64;
        let e = &self.extents[r.extent];
        let first = e.first_cluster;
        let mut first_cluster_fields = Vec::new();
        for (offset, half) in [(26, first as u16), (20, (first >> 16) as u16)] {
            if half != 0 {
                first_cluster_fields.push((entry + offset, half));
            }
        }
        let width: u8 = if geo.fat_type == FatType::Fat32 { 4 } else { 2 };
        let fat_entries = (0..2u64)
            .map(|i| {
                (u64::from(geo.reserved) + i * u64::from(geo.fat_size)) * u64::from(geo.bps)
                    + u64::from(first) * u64::from(width)
            })
            .collect();
        let bps = u64::from(geo.bps);
        let free_count_fields = if geo.fat_type == FatType::Fat32 && free_tracks_size {
            vec![bps + 488, 7 * bps + 488]
        } else {
            Vec::new()
        };
        Ok(FatReservedFile {
            path: r.path.clone(),
            offset: cluster_at(first),
            capacity: r.capacity,
            size: r.size,
            size_offset: entry + 28,
            cluster_size: cs,
            first_cluster: first,
            clusters: e.clusters,
            first_cluster_fields,
            fat_entries,
            fat_entry_bytes: width,
            end_of_chain: if width == 4 { 0x0FFF_FFFF } else { 0xFFFF },
            free_count_fields,
            free_count_empty: free.saturating_add(e.chained),
        })
    }

    fn fat_bytes(&self, geo: &Geometry) -> Vec<u8> {
        let entries = geo.clusters as usize + 2;
        let mut fat = vec![0u32; entries];
        let eoc = match geo.fat_type {
            FatType::Fat12 => 0x0FFF,
            FatType::Fat16 => 0xFFFF,
            FatType::Fat32 => 0x0FFF_FFFF,
        };
        fat[0] = (eoc & !0xFF) | 0xF8;
        fat[1] = eoc;
        for e in &self.extents {
            for k in 0..e.chained {
                let c = (e.first_cluster + k) as usize;
                fat[c] = if k + 1 == e.chained {
                    eoc
                } else {
                    e.first_cluster + k + 1
                };
            }
        }
        let mut out = vec![0u8; geo.fat_size as usize * usize::from(geo.bps)];
        match geo.fat_type {
            FatType::Fat12 => {
                for (i, pair) in fat.chunks(2).enumerate() {
                    let a = pair[0];
                    let b = pair.get(1).copied().unwrap_or(0);
                    let v = a | (b << 12);
                    out[3 * i..3 * i + 3].copy_from_slice(&v.to_le_bytes()[..3]);
                }
            }
            FatType::Fat16 => {
                for (i, v) in fat.iter().enumerate() {
                    out[2 * i..2 * i + 2].copy_from_slice(&(*v as u16).to_le_bytes());
                }
            }
            FatType::Fat32 => {
                for (i, v) in fat.iter().enumerate() {
                    out[4 * i..4 * i + 4].copy_from_slice(&v.to_le_bytes());
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names() {
        assert_eq!(exact_short_name("BOOTX64.EFI"), Some((*b"BOOTX64 EFI", 0)));
        assert_eq!(
            exact_short_name("grub.cfg"),
            Some((*b"GRUB    CFG", NT_LOWER_BASE | NT_LOWER_EXT))
        );
        assert_eq!(exact_short_name("EFI"), Some((*b"EFI        ", 0)));
        assert_eq!(exact_short_name("Grub.cfg"), None);
        assert_eq!(exact_short_name("a.b.c"), None);
        assert_eq!(exact_short_name("toolongname"), None);
        assert_eq!(exact_short_name("a+b"), None);
        let mut taken = BTreeSet::new();
        let a = alias_short_name("A long file name.text", &taken).unwrap();
        assert_eq!(&a, b"ALONGF~1TEX");
        taken.insert(a);
        assert_eq!(
            &alias_short_name("A long file name.text", &taken).unwrap(),
            b"ALONGF~2TEX"
        );
        assert_eq!(
            &alias_short_name(".bashrc", &BTreeSet::new()).unwrap(),
            b"BASHRC~1   "
        );
        assert_eq!(
            &alias_short_name("日本", &BTreeSet::new()).unwrap(),
            b"__~1       "
        );
    }

    #[test]
    fn geometry_choices() {
        let g = Geometry::choose(64 << 20, 512, None).unwrap();
        assert_eq!(g.fat_type, FatType::Fat16);
        let g = Geometry::choose(1 << 20, 512, None).unwrap();
        assert_eq!(g.fat_type, FatType::Fat12);
        let g = Geometry::choose(600 << 20, 512, None).unwrap();
        assert_eq!(g.fat_type, FatType::Fat32);
        assert_eq!(g.spc, 8);
        assert_eq!(g.data_offset() % g.cluster_size(), 0);
        let g = Geometry::choose(64 << 20, 512, Some(FatType::Fat32)).unwrap();
        assert_eq!(g.fat_type, FatType::Fat32);
        assert!(Geometry::choose(8 << 20, 512, Some(FatType::Fat32)).is_err());
        assert!(Geometry::choose(4096, 512, None).is_err());
        assert!(Geometry::choose(64 << 20, 500, None).is_err());
    }

    #[test]
    fn names_refused() {
        let mut b = FatBuilder::new(4 << 20);
        assert!(b.add_file("a/b:c", vec![]).is_err());
        assert!(b.add_file("trailing.", vec![]).is_err());
        assert!(b.add_file("", vec![]).is_err());
        b.add_file("Readme", vec![1]).unwrap();
        assert!(b.add_file("README", vec![2]).is_err());
        assert!(b.add_dir("Readme").is_err());
        assert!(b.add_file(&"x".repeat(256), vec![]).is_err());
        assert!(
            FatBuilder::new(4 << 20)
                .label("bad/label")
                .build_vec()
                .is_err()
        );
        assert!(
            FatBuilder::new(4 << 20)
                .label("twelve chars")
                .build_vec()
                .is_err()
        );
    }
}

/// The deepest directory nesting written: the reader's default limit
/// (`read::fat::Limits::max_depth`), so every volume built here reads back.
const MAX_DEPTH: usize = 64;

fn check_depth(dirs: usize) -> Result<()> {
    if dirs > MAX_DEPTH {
        return Err(Error::LimitExceeded {
            what: "FAT directory depth",
            limit: MAX_DEPTH as u64,
        });
    }
    Ok(())
}

#[cfg(test)]
mod depth_tests {
    use super::*;

    #[test]
    fn nesting_is_bounded_by_what_reads_back() {
        let mut b = FatBuilder::new(4 << 20);
        let deep = vec!["d"; MAX_DEPTH].join("/");
        b.add_file(&format!("{deep}/f"), b"x".to_vec()).unwrap();
        b.add_dir(&deep).unwrap();
        let e = b
            .add_file(&format!("{deep}/d/f"), b"x".to_vec())
            .unwrap_err();
        assert!(e.to_string().contains("FAT directory depth"), "{e}");
        assert!(b.add_dir(&format!("{deep}/d")).is_err());
        let img = b.build_vec().unwrap();
        let mut v = crate::FatVolume::open(std::io::Cursor::new(img)).unwrap();
        assert_eq!(
            v.walk().unwrap().iter().filter(|(_, e)| !e.is_dir).count(),
            1
        );
    }
}

#[cfg(test)]
mod reserve_tests {
    use super::*;

    fn builder(size: u64, t: FatType, piece: &[u8]) -> FatBuilder {
        let mut b = FatBuilder::new(size)
            .fat_type(t)
            .epoch(1_700_000_000)
            .label("ESP");
        b.add_file("EFI/BOOT/BOOTX64.EFI", vec![7; 3000]).unwrap();
        b.reserve_file("srv/A Piece.html", 20_000, piece.to_vec())
            .unwrap();
        b.add_file("zz-after", vec![9; 100]).unwrap();
        b
    }

    fn patched(base: &[u8], r: &FatReservedFile, piece: &[u8]) -> Vec<u8> {
        let mut img = base.to_vec();
        let at = r.offset as usize;
        img[at..at + r.capacity as usize].fill(0);
        img[at..at + piece.len()].copy_from_slice(piece);
        for (offset, bytes) in r.size_patches(piece.len() as u64).unwrap() {
            img[offset as usize..offset as usize + bytes.len()].copy_from_slice(&bytes);
        }
        img
    }

    #[test]
    fn a_reserved_file_rewritten_in_place_equals_a_fresh_build() {
        for t in [FatType::Fat16, FatType::Fat32] {
            let size = if t == FatType::Fat32 {
                40 << 20
            } else {
                8 << 20
            };
            let mut out = Vec::new();
            let s = builder(size, t, b"").build(&mut out).unwrap();
            assert_eq!(s.reserved.len(), 1);
            let r = &s.reserved[0];
            assert_eq!(r.path, "srv/A Piece.html");
            assert_eq!((r.size, r.capacity), (0, 20_000));
            assert!(u64::from(r.clusters) * r.cluster_size >= 20_000);
            assert_eq!(r.offset % r.cluster_size, 0);
            // The size field is the one the short entry (after the long name) holds.
            assert_eq!(&out[r.size_offset as usize - 28..][..8], b"APIECE~1");
            for piece in [
                b"<html>1</html>".to_vec(),
                vec![5u8; 20_000],
                vec![6u8; r.cluster_size as usize],
                Vec::new(),
            ] {
                let mut fresh = Vec::new();
                let s2 = builder(size, t, &piece).build(&mut fresh).unwrap();
                assert_eq!(s2.reserved[0].size, piece.len() as u64);
                assert_eq!(s2.reserved[0].offset, r.offset);
                let img = patched(&out, r, &piece);
                assert!(img == fresh, "{t:?}: {} bytes", piece.len());
                let mut v = crate::FatVolume::open(std::io::Cursor::new(img)).unwrap();
                let e = v.lookup("srv/A Piece.html").unwrap();
                assert_eq!(v.read_file(&e).unwrap(), piece);
                let e = v.lookup("zz-after").unwrap();
                assert_eq!(v.read_file(&e).unwrap(), vec![9; 100]);
            }
            assert!(r.size_patches(20_001).is_err());
        }
    }

    #[test]
    fn reservations_refused() {
        let mut b = FatBuilder::new(8 << 20);
        assert!(b.reserve_file("a", 0, vec![]).is_err());
        assert!(b.reserve_file("a", 2, vec![1, 2, 3]).is_err());
        assert!(b.reserve_file("a", 1 << 32, vec![]).is_err());
        b.add_file("b", vec![]).unwrap();
        assert!(b.reserve_file("B", 10, vec![]).is_err());
        // FAT12 entries share bytes: no plain patch rewrites one.
        let mut b = FatBuilder::new(1 << 20);
        b.reserve_file("a", 10, vec![]).unwrap();
        let e = b.build_vec().unwrap_err().to_string();
        assert!(e.contains("FAT12"), "{e}");
    }

    #[test]
    fn two_reserved_files_leave_the_free_count_unknown() {
        let mut b = FatBuilder::new(40 << 20).fat_type(FatType::Fat32);
        b.reserve_file("a", 5000, vec![1; 10]).unwrap();
        b.reserve_file("b", 5000, vec![]).unwrap();
        let mut out = Vec::new();
        let s = b.build(&mut out).unwrap();
        assert_eq!(s.reserved.len(), 2);
        assert!(s.reserved.iter().all(|r| r.free_count_fields.is_empty()));
        assert_eq!(&out[512 + 488..512 + 492], &u32::MAX.to_le_bytes());
        // Each file's patches touch its own bytes only.
        let p: Vec<_> = s.reserved[0].size_patches(5000).unwrap();
        let q: Vec<_> = s.reserved[1].size_patches(5000).unwrap();
        for (a, x) in &p {
            for (b, y) in &q {
                assert!(a + x.len() as u64 <= *b || b + y.len() as u64 <= *a);
            }
        }
    }
}
