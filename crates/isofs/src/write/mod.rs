//! Building images: collect entries (from a directory or in memory), plan every block, then
//! emit the image front to back.

mod hybrid;

pub use hybrid::{EfiPlacement, GPT_TAIL_SIZE, SYSTEM_AREA_SIZE, SystemAreaLayout};
mod layout;
mod names;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};

/// Largest extent of one directory record: 4 GiB minus one block (bigger files are written
/// as several records, ECMA-119 multi-extent).
pub const MAX_EXTENT: u32 = 0xFFFF_F800;

/// Owner, permissions and time of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metadata {
    /// Permission bits incl. setuid, setgid, sticky.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time in Unix seconds; `None` means the build epoch.
    pub mtime: Option<i64>,
}

impl Metadata {
    /// A file owned by root with `mode`, dated at the epoch.
    pub fn file(mode: u32) -> Self {
        Self {
            mode,
            uid: 0,
            gid: 0,
            mtime: None,
        }
    }

    /// A directory owned by root with `mode`, dated at the epoch.
    pub fn directory(mode: u32) -> Self {
        Self::file(mode)
    }

    /// A symlink (mode 0777) owned by root, dated at the epoch.
    pub fn symlink() -> Self {
        Self::file(0o777)
    }
}

/// The MBR boot code family, which decides the boot image address patched at byte 432.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MbrFlavor {
    /// syslinux `isohdpfx.bin`: the El Torito image's block * 4.
    Isolinux,
    /// GRUB `boot_hybrid.img`: block * 4 + 4 (the part after GRUB's 2 KiB cdboot).
    Grub2,
}

/// Caller-supplied MBR boot code for an isohybrid system area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HybridMbr {
    /// Boot code: the first 432 bytes are used.
    pub boot_code: Vec<u8>,
    /// Which loader it is.
    pub flavor: MbrFlavor,
}

impl HybridMbr {
    /// Recognises GRUB's `boot_hybrid.img` by its "GRUB" string, else assumes isolinux.
    pub fn detect(boot_code: Vec<u8>) -> Self {
        let flavor = if boot_code.windows(4).any(|w| w == b"GRUB") {
            MbrFlavor::Grub2
        } else {
            MbrFlavor::Isolinux
        };
        Self { boot_code, flavor }
    }
}

/// A BIOS no-emulation El Torito entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BiosBoot {
    /// Path of the boot image inside the tree.
    pub path: String,
    /// 512-byte sectors the BIOS loads; `None` loads the whole image (capped at 65535).
    pub load_size: Option<u16>,
    /// Patch the 56-byte boot info table at byte 8 (`-boot-info-table`).
    pub boot_info_table: bool,
    /// Patch GRUB's own address at byte 2548 (`--grub2-boot-info`): block * 4 + 5.
    pub grub2_boot_info: bool,
}

/// The UEFI El Torito entry: a FAT ESP image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EfiBoot {
    /// An image file inside the tree.
    InTree {
        /// Its path in the tree.
        path: String,
    },
    /// An image appended after the ISO data as its own partition.
    Appended {
        /// The image file on the host.
        file: PathBuf,
    },
}

/// A further no-emulation El Torito entry for an image inside the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraBoot {
    /// Path of the image in the tree.
    pub path: String,
    /// Platform id: 0 BIOS, 0xEF UEFI (others as the firmware defines).
    pub platform: u8,
    /// 512-byte sectors to load; `None` loads the whole image (capped at 65535).
    pub load_size: Option<u16>,
}

/// Image-wide options. The epoch is required: it dates the volume and every entry whose
/// metadata has no time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Volume identifier (up to 32 d-characters; Joliet keeps up to 16 characters).
    pub volume_id: String,
    /// Build time in Unix seconds.
    pub epoch: i64,
    /// Clamp every mtime to at most the epoch (the SOURCE_DATE_EPOCH convention).
    pub clamp_mtime: bool,
    /// Write Rock Ridge (POSIX names, modes, owners, times, links, devices).
    pub rock_ridge: bool,
    /// Write a Joliet tree.
    pub joliet: bool,
    /// System identifier.
    pub system_id: String,
    /// Application identifier.
    pub application_id: String,
    /// Publisher identifier.
    pub publisher_id: String,
    /// Data preparer identifier.
    pub data_preparer_id: String,
    /// BIOS El Torito entry.
    pub bios_boot: Option<BiosBoot>,
    /// UEFI El Torito entry.
    pub efi_boot: Option<EfiBoot>,
    /// Further El Torito entries, after the BIOS and UEFI ones (one section per run of
    /// equal platforms).
    pub extra_boot: Vec<ExtraBoot>,
    /// Path of the boot catalog file in the tree.
    pub boot_catalog: String,
    /// isohybrid MBR boot code.
    pub hybrid_mbr: Option<HybridMbr>,
    /// Reserve the end of the image for a backup GPT and write the partition tables of
    /// [`Options::partition_tables`] (a protective MBR and a GPT planned by gptpart; see
    /// `imgpipe_repro::iso::build_hybrid`) into the system area. Without it, a hybrid image
    /// gets an isohybrid MBR partition table.
    pub gpt: bool,
    /// With [`Options::gpt`]: the partition tables, as (byte offset in the image, bytes),
    /// each inside the 32 KiB system area or the [`GPT_TAIL_SIZE`] bytes ending the image.
    /// MBR boot code (bytes 0..440) is patched over them from [`Options::hybrid_mbr`].
    pub partition_tables: Vec<(u64, Vec<u8>)>,
    /// Disk signature of the isohybrid MBR (bytes 440..444; 0 means none). A parameter, not
    /// invented here: `imgpipe_repro::iso::build_hybrid` derives it from the one seed rule.
    pub mbr_disk_signature: u32,
    /// Largest extent per directory record (a multiple of 2048, at most [`MAX_EXTENT`]).
    pub max_extent: u32,
    /// Store a time a recording date cannot hold (before 1900, after 2155) as the nearest
    /// one it can, instead of refusing the entry (default off).
    pub clamp_times: bool,
    /// Relocate directories deeper than ECMA-119's 8 levels to `/rr_moved` with Rock Ridge
    /// CL/PL/RE entries, as genisoimage does (Rock Ridge readers show them in place). Off by
    /// default, like xorriso, whose deep trees every Rock Ridge reader accepts.
    pub relocate_deep: bool,
}

impl Options {
    /// Defaults: Rock Ridge and Joliet on, no boot, dated at `epoch`.
    pub fn new(volume_id: &str, epoch: i64) -> Self {
        Self {
            volume_id: volume_id.to_string(),
            epoch,
            clamp_mtime: false,
            rock_ridge: true,
            joliet: true,
            system_id: "LINUX".into(),
            application_id: "IMGPIPE".into(),
            publisher_id: String::new(),
            data_preparer_id: String::new(),
            bios_boot: None,
            efi_boot: None,
            extra_boot: Vec::new(),
            boot_catalog: "boot.catalog".into(),
            hybrid_mbr: None,
            gpt: false,
            partition_tables: Vec::new(),
            mbr_disk_signature: 0,
            max_extent: MAX_EXTENT,
            relocate_deep: false,
            clamp_times: false,
        }
    }
}

/// Where a file's data comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// Shared so planning can copy the tree without copying file data.
    Bytes(std::sync::Arc<[u8]>),
    Path(PathBuf),
    Zeros,
    /// A range of another image or a reader's stream, from a tree.
    Tree(TreeContent),
}

/// Tree content in the builder's comparable tree (equal only to itself).
#[derive(Debug, Clone)]
pub(crate) struct TreeContent(pub(crate) imgpipe_fstree::Content);

impl PartialEq for TreeContent {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Eq for TreeContent {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    Dir(BTreeMap<Vec<u8>, usize>),
    File {
        source: Source,
        size: u64,
    },
    Symlink(Vec<u8>),
    Device {
        block: bool,
        major: u32,
        minor: u32,
    },
    Fifo,
    Socket,
    /// A second name of the file at this node.
    HardLink(usize),
    BootCatalog,
}

#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub name: Vec<u8>,
    pub parent: usize,
    pub kind: Kind,
    pub meta: Metadata,
    pub weight: i32,
    pub slot: Option<(u64, u64)>,
}

/// A file placed at a known byte offset (boot images, reserved slots).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlacedFile {
    /// Path in the tree.
    pub path: String,
    /// Byte offset of the data in the image.
    pub offset: u64,
    /// Bytes of data.
    pub size: u64,
}

/// A reserved fixed-size slot: its content may be replaced in place later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReservedSlot {
    /// Path in the tree.
    pub path: String,
    /// Byte offset in the image (aligned as asked).
    pub offset: u64,
    /// The file's recorded size (its content's length).
    pub size: u64,
    /// The bytes its extent may hold (at least `size`).
    pub capacity: u64,
    /// Every data-length field of the directory records that list the file (the primary
    /// tree, then Joliet): ISO 9660 stores it both-endian, a little-endian 32-bit copy at
    /// record byte 10 and a big-endian one at byte 14 (ECMA-119 9.1.4). Rock Ridge keeps
    /// no size of its own.
    pub size_fields: Vec<SlotSizeField>,
}

/// One 32-bit size field of a slot's directory records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SlotSizeField {
    /// Byte offset in the image.
    pub offset: u64,
    /// Big-endian (else little-endian).
    pub big_endian: bool,
}

/// What [`Builder::build`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildReport {
    /// Bytes written.
    pub size: u64,
    /// Blocks of the ISO9660 volume (the appended partition and backup GPT follow).
    pub volume_blocks: u32,
    /// Entries in the tree (without the root).
    pub entries: u64,
    /// Bytes of file data.
    pub data_bytes: u64,
    /// Reserved slots.
    pub slots: Vec<ReservedSlot>,
    /// Boot images and the catalog, where they landed.
    pub boot_files: Vec<PlacedFile>,
}

/// Collects a tree, then writes the image with [`Builder::build`].
#[derive(Debug, Clone)]
pub struct Builder {
    pub(crate) options: Options,
    pub(crate) nodes: Vec<Node>,
    /// How [`Builder::add_tree`] scans (the host paths it skips).
    scan: imgpipe_fstree::ScanOptions,
}

fn invalid(what: &'static str, path: &str, reason: &'static str) -> Error {
    Error::InvalidInput {
        what,
        path: path.to_string(),
        reason,
    }
}

impl Builder {
    /// An empty tree (the root directory is mode 0755, owned by root, dated at the epoch).
    pub fn new(options: Options) -> Self {
        Self {
            options,
            nodes: vec![Node {
                name: Vec::new(),
                parent: 0,
                kind: Kind::Dir(BTreeMap::new()),
                meta: Metadata::directory(0o755),
                weight: 0,
                slot: None,
            }],
            scan: imgpipe_fstree::ScanOptions::default(),
        }
    }

    /// Makes [`add_tree`](Self::add_tree) skip the host path `path` (which need not exist
    /// yet): give it the image being written when that lies inside the tree, so the image
    /// neither packs itself nor an older copy of itself.
    pub fn exclude_host_path(&mut self, path: &Path) -> Result<()> {
        self.scan.exclude(path).map_err(tree_error)
    }

    /// The options.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Plans the image (without writing it) and says where the boot images, the ISO9660
    /// volume and the image end lie: what partition tables are planned from.
    pub fn system_area_layout(&self) -> Result<SystemAreaLayout> {
        layout::system_area_layout(self)
    }

    /// Sets [`Options::mbr_disk_signature`].
    pub fn set_mbr_disk_signature(&mut self, signature: u32) {
        self.options.mbr_disk_signature = signature;
    }

    /// Sets [`Options::partition_tables`].
    pub fn set_partition_tables(&mut self, tables: Vec<(u64, Vec<u8>)>) {
        self.options.partition_tables = tables;
    }

    /// Sets the root directory's metadata.
    pub fn set_root_metadata(&mut self, meta: Metadata) {
        self.nodes[0].meta = meta;
    }

    fn split(path: &str) -> Result<(Vec<&str>, &str)> {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let Some((last, dirs)) = parts.split_last() else {
            return Err(invalid("entry path", path, "empty path"));
        };
        if parts.iter().any(|p| *p == "." || *p == "..") {
            return Err(invalid("entry path", path, "`.` or `..` component"));
        }
        if last.len() > 255 {
            return Err(invalid("entry path", path, "name longer than 255 bytes"));
        }
        Ok((dirs.to_vec(), last))
    }

    fn dir_node(&mut self, dirs: &[&str], path: &str) -> Result<usize> {
        let mut cur = 0;
        for d in dirs {
            let Kind::Dir(children) = &self.nodes[cur].kind else {
                return Err(invalid("entry path", path, "a parent is not a directory"));
            };
            cur = match children.get(d.as_bytes()) {
                Some(&i) => i,
                None => self.insert(cur, d.as_bytes(), Kind::Dir(BTreeMap::new()), {
                    Metadata::directory(0o755)
                }),
            };
        }
        if !matches!(self.nodes[cur].kind, Kind::Dir(_)) {
            return Err(invalid("entry path", path, "a parent is not a directory"));
        }
        Ok(cur)
    }

    fn insert(&mut self, parent: usize, name: &[u8], kind: Kind, meta: Metadata) -> usize {
        let i = self.nodes.len();
        self.nodes.push(Node {
            name: name.to_vec(),
            parent,
            kind,
            meta,
            weight: 0,
            slot: None,
        });
        if let Kind::Dir(children) = &mut self.nodes[parent].kind {
            children.insert(name.to_vec(), i);
        }
        i
    }

    fn add(&mut self, path: &str, kind: Kind, meta: Metadata) -> Result<usize> {
        let (dirs, name) = Self::split(path)?;
        let parent = self.dir_node(&dirs, path)?;
        if let Kind::Dir(children) = &self.nodes[parent].kind
            && let Some(&existing) = children.get(name.as_bytes())
        {
            if matches!(kind, Kind::Dir(_)) && matches!(self.nodes[existing].kind, Kind::Dir(_)) {
                self.nodes[existing].meta = meta;
                return Ok(existing);
            }
            return Err(invalid("entry path", path, "already exists"));
        }
        Ok(self.insert(parent, name.as_bytes(), kind, meta))
    }

    fn find(&self, path: &str) -> Option<usize> {
        let mut cur = 0;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            let Kind::Dir(children) = &self.nodes[cur].kind else {
                return None;
            };
            cur = *children.get(part.as_bytes())?;
        }
        Some(cur)
    }

    /// Adds a directory (parents are created as needed, mode 0755).
    pub fn add_dir(&mut self, path: &str, meta: Metadata) -> Result<()> {
        self.add(path, Kind::Dir(BTreeMap::new()), meta).map(drop)
    }

    /// Adds a file with in-memory content.
    pub fn add_file(&mut self, path: &str, meta: Metadata, data: Vec<u8>) -> Result<()> {
        let size = data.len() as u64;
        self.add(
            path,
            Kind::File {
                source: Source::Bytes(data.into()),
                size,
            },
            meta,
        )
        .map(drop)
    }

    /// Adds a file whose content is read from `source` when the image is written; `size`
    /// must still be its size then.
    pub fn add_file_from_path(
        &mut self,
        path: &str,
        meta: Metadata,
        source: PathBuf,
        size: u64,
    ) -> Result<()> {
        self.add(
            path,
            Kind::File {
                source: Source::Path(source),
                size,
            },
            meta,
        )
        .map(drop)
    }

    /// Adds a file of `size` zero bytes (written without reading anything).
    pub fn add_zero_file(&mut self, path: &str, meta: Metadata, size: u64) -> Result<()> {
        self.add(
            path,
            Kind::File {
                source: Source::Zeros,
                size,
            },
            meta,
        )
        .map(drop)
    }

    /// Adds a symbolic link.
    pub fn add_symlink(&mut self, path: &str, meta: Metadata, target: &str) -> Result<()> {
        self.add_symlink_bytes(path, meta, target.as_bytes())
    }

    /// Adds a symbolic link whose target is not UTF-8.
    pub fn add_symlink_bytes(&mut self, path: &str, meta: Metadata, target: &[u8]) -> Result<()> {
        if target.is_empty() {
            return Err(invalid("symlink", path, "empty target"));
        }
        self.add(path, Kind::Symlink(target.to_vec()), meta)
            .map(drop)
    }

    /// Adds a character (`block == false`) or block device node.
    pub fn add_device(
        &mut self,
        path: &str,
        meta: Metadata,
        block: bool,
        major: u32,
        minor: u32,
    ) -> Result<()> {
        self.add(
            path,
            Kind::Device {
                block,
                major,
                minor,
            },
            meta,
        )
        .map(drop)
    }

    /// Adds a FIFO.
    pub fn add_fifo(&mut self, path: &str, meta: Metadata) -> Result<()> {
        self.add(path, Kind::Fifo, meta).map(drop)
    }

    /// Adds a socket.
    pub fn add_socket(&mut self, path: &str, meta: Metadata) -> Result<()> {
        self.add(path, Kind::Socket, meta).map(drop)
    }

    /// Adds `path` as a hard link to the regular file already at `target`.
    pub fn add_hard_link(&mut self, path: &str, target: &str) -> Result<()> {
        let t = self
            .find(target)
            .ok_or(invalid("hard link", target, "target not in the tree"))?;
        let t = match self.nodes[t].kind {
            Kind::HardLink(first) => first,
            _ => t,
        };
        if !matches!(self.nodes[t].kind, Kind::File { .. }) {
            return Err(invalid("hard link", target, "target is not a regular file"));
        }
        let meta = self.nodes[t].meta;
        self.add(path, Kind::HardLink(t), meta).map(drop)
    }

    /// Places file data in `mkisofs -sort` fashion: higher weights come first (default 0).
    /// A directory's weight applies to every file below it that has none of its own.
    pub fn set_sort_weight(&mut self, path: &str, weight: i32) -> Result<()> {
        let i = self
            .find(path)
            .ok_or(invalid("sort weight", path, "not in the tree"))?;
        self.nodes[i].weight = weight;
        Ok(())
    }

    /// Adds a file whose data occupies a fixed-size slot of `size` bytes at an offset aligned
    /// to `align` bytes (a power of two, at least 2048), so its content can be replaced in
    /// place later. `data` (at most `size` bytes) is zero-padded to `size`, the recorded size.
    pub fn add_reserved(
        &mut self,
        path: &str,
        meta: Metadata,
        data: Vec<u8>,
        size: u64,
        align: u64,
    ) -> Result<()> {
        if data.len() as u64 > size {
            return Err(invalid(
                "reserved slot",
                path,
                "content larger than the slot",
            ));
        }
        if !align.is_power_of_two() || align < 2048 {
            return Err(invalid(
                "reserved slot",
                path,
                "alignment not a power of two of at least 2048",
            ));
        }
        let mut data = data;
        data.resize(size as usize, 0);
        let i = self.add(
            path,
            Kind::File {
                source: Source::Bytes(data.into()),
                size,
            },
            meta,
        )?;
        self.nodes[i].slot = Some((size, align));
        Ok(())
    }

    /// Adds everything below the host directory `root` into the tree at its root, as
    /// [`imgpipe_fstree::scan`] finds it, in sorted name order: files (read when the image is
    /// written), directories, symlinks, hard links (by device and inode), device nodes, FIFOs
    /// and sockets, with their modes, owners and mtimes. The root directory takes `root`'s
    /// metadata.
    ///
    /// # Errors
    /// As [`add_fstree`](Self::add_fstree), and [`Error::IoPath`] for a host path that
    /// cannot be read.
    pub fn add_tree(&mut self, root: &Path) -> Result<()> {
        let mut scan = self.scan.clone();
        scan.xattrs = false; // ISO9660 has no xattrs
        let tree = imgpipe_fstree::scan(root, &scan).map_err(tree_error)?;
        self.add_fstree(&tree)
    }

    /// Adds every entry of `tree` at the image root (and takes the root's metadata from the
    /// tree's root), with content from memory, the host, a range of another image or a
    /// reader's stream. Regular files sharing an [`Entry::link`](imgpipe_fstree::Entry)
    /// value become hard links of the first of them. Xattrs and nanoseconds are not kept
    /// (ISO9660 has neither).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the entry when ISO9660 cannot hold a value: a name that
    /// is not UTF-8 or longer than 255 bytes, permission bits beyond `0o7777`, a time outside
    /// 1900..=2155 (the 7-byte recording date; [`Options::clamp_times`] stores the nearest
    /// instead), a symlink without a target, a device without numbers, and without Rock
    /// Ridge any symlink, device, FIFO or socket.
    pub fn add_fstree(&mut self, tree: &imgpipe_fstree::Tree) -> Result<()> {
        use imgpipe_fstree::FileType;
        self.nodes[0].meta = self.tree_meta(tree.root(), "")?;
        let mut links: BTreeMap<u64, String> = BTreeMap::new();
        let mut stack: Vec<Vec<u8>> = vec![Vec::new()];
        // A directory's entries are all added before any of its subdirectories' (the order
        // the builder numbered nodes in before trees existed).
        while let Some(dir) = stack.pop() {
            let mut subdirs = Vec::new();
            for node in tree.children(&dir) {
                let e = &node.entry;
                let Ok(path) = std::str::from_utf8(&e.path) else {
                    return Err(invalid(
                        "source tree",
                        &e.display_path(),
                        "name is not UTF-8",
                    ));
                };
                let meta = self.tree_meta(e, path)?;
                let special = !matches!(e.file_type, FileType::Dir | FileType::File);
                if special && !self.options.rock_ridge {
                    return Err(invalid(
                        "source tree",
                        path,
                        "symlinks, devices, FIFOs and sockets need Rock Ridge",
                    ));
                }
                match e.file_type {
                    FileType::Dir => {
                        self.add_dir(path, meta)?;
                        subdirs.push(e.path.clone());
                    }
                    FileType::File => {
                        if let Some(l) = e.link {
                            if let Some(first) = links.get(&l) {
                                let first = first.clone();
                                self.add_hard_link(path, &first)?;
                                continue;
                            }
                            links.insert(l, path.to_string());
                        }
                        let source = match &node.content {
                            imgpipe_fstree::Content::Bytes(b) => Source::Bytes(b.clone()),
                            imgpipe_fstree::Content::Host(p) => Source::Path(p.clone()),
                            c => Source::Tree(TreeContent(c.clone())),
                        };
                        let kind = Kind::File {
                            source,
                            size: e.size,
                        };
                        self.add(path, kind, meta)?;
                    }
                    FileType::Symlink => {
                        let t = e.target.as_deref().ok_or_else(|| {
                            invalid("source tree", path, "symlink without a target")
                        })?;
                        self.add_symlink_bytes(path, meta, t)?;
                    }
                    FileType::Char | FileType::Block => {
                        let (major, minor) = e.rdev.ok_or_else(|| {
                            invalid("source tree", path, "device without device numbers")
                        })?;
                        let block = e.file_type == FileType::Block;
                        self.add_device(path, meta, block, major, minor)?;
                    }
                    FileType::Fifo => self.add_fifo(path, meta)?,
                    FileType::Socket => self.add_socket(path, meta)?,
                }
            }
            // Reverse so the smallest name is expanded first.
            stack.extend(subdirs.into_iter().rev());
        }
        Ok(())
    }

    /// An entry's metadata as ISO9660 holds it, or an error naming what it cannot hold.
    fn tree_meta(&self, e: &imgpipe_fstree::Entry, path: &str) -> Result<Metadata> {
        /// The range of a 7-byte recording date (ECMA-119 9.1.5): 1900-01-01 .. 2155-12-31.
        const DATES: std::ops::RangeInclusive<i64> = -2_208_988_800..=5_869_583_999;
        let m = &e.meta;
        if m.mode & !0o7777 != 0 {
            return Err(invalid("source tree", path, "mode has bits beyond 0o7777"));
        }
        let o = &self.options;
        let lowered = o.clamp_mtime && m.mtime > o.epoch;
        if !DATES.contains(&m.mtime) && !lowered && !o.clamp_times {
            return Err(invalid(
                "source tree",
                path,
                "mtime outside the years 1900..=2155 that ISO9660 dates hold",
            ));
        }
        Ok(Metadata {
            mode: m.mode,
            uid: m.uid,
            gid: m.gid,
            mtime: Some(m.mtime),
        })
    }

    /// Turns the file at `path` (or a new empty one) into a reserved slot of `size` bytes
    /// aligned to `align` (see [`Builder::add_reserved`]); a file read from the host is read
    /// now and must fit.
    pub fn reserve_slot(&mut self, path: &str, size: u64, align: u64) -> Result<()> {
        let Some(i) = self.find(path) else {
            return self.add_reserved(path, Metadata::file(0o644), Vec::new(), size, align);
        };
        let data = match &self.nodes[i].kind {
            Kind::File {
                source: Source::Bytes(b),
                ..
            } => b.to_vec(),
            Kind::File {
                source: Source::Path(p),
                size: len,
            } => {
                if *len > size {
                    return Err(invalid(
                        "reserved slot",
                        path,
                        "content larger than the slot",
                    ));
                }
                std::fs::read(p).map_err(|source| Error::IoPath {
                    what: "reading",
                    path: p.clone(),
                    source,
                })?
            }
            _ => return Err(invalid("reserved slot", path, "not a regular file")),
        };
        if self
            .nodes
            .iter()
            .any(|n| matches!(n.kind, Kind::HardLink(t) if t == i))
        {
            return Err(invalid("reserved slot", path, "file has hard links"));
        }
        if data.len() as u64 > size {
            return Err(invalid(
                "reserved slot",
                path,
                "content larger than the slot",
            ));
        }
        if !align.is_power_of_two() || align < 2048 {
            return Err(invalid(
                "reserved slot",
                path,
                "alignment not a power of two of at least 2048",
            ));
        }
        let mut data = data;
        data.resize(size as usize, 0);
        self.nodes[i].kind = Kind::File {
            source: Source::Bytes(data.into()),
            size,
        };
        self.nodes[i].slot = Some((size, align));
        Ok(())
    }

    /// Turns the file at `path` (or a new empty one) into a slot whose extent holds
    /// `capacity` bytes aligned to `align`, keeping the file's content and its recorded size
    /// (unlike [`Builder::reserve_slot`], which records the whole slot as the file's size):
    /// a later content of up to `capacity` bytes is written over the extent and its length
    /// into the [`ReservedSlot::size_fields`], and the image equals one built with that
    /// content here. The content of a host file is read now and must fit.
    pub fn reserve_extent(&mut self, path: &str, capacity: u64, align: u64) -> Result<()> {
        if capacity > u64::from(MAX_EXTENT) {
            return Err(invalid(
                "reserved slot",
                path,
                "capacity larger than one extent (4 GiB - 2 KiB)",
            ));
        }
        let Some(i) = self.find(path) else {
            return self.add_reserved_extent(
                path,
                Metadata::file(0o644),
                Vec::new(),
                capacity,
                align,
            );
        };
        let data = match &self.nodes[i].kind {
            Kind::File {
                source: Source::Bytes(b),
                ..
            } => b.to_vec(),
            Kind::File {
                source: Source::Path(p),
                size: len,
            } => {
                if *len > capacity {
                    return Err(invalid(
                        "reserved slot",
                        path,
                        "content larger than the slot",
                    ));
                }
                std::fs::read(p).map_err(|source| Error::IoPath {
                    what: "reading",
                    path: p.clone(),
                    source,
                })?
            }
            _ => return Err(invalid("reserved slot", path, "not a regular file")),
        };
        if self
            .nodes
            .iter()
            .any(|n| matches!(n.kind, Kind::HardLink(t) if t == i))
        {
            return Err(invalid("reserved slot", path, "file has hard links"));
        }
        check_slot(path, data.len() as u64, capacity, align)?;
        self.nodes[i].kind = Kind::File {
            size: data.len() as u64,
            source: Source::Bytes(data.into()),
        };
        self.nodes[i].slot = Some((capacity, align));
        Ok(())
    }

    /// [`Builder::add_reserved`] keeping `data`'s length as the file's size (see
    /// [`Builder::reserve_extent`]).
    pub fn add_reserved_extent(
        &mut self,
        path: &str,
        meta: Metadata,
        data: Vec<u8>,
        capacity: u64,
        align: u64,
    ) -> Result<()> {
        check_slot(path, data.len() as u64, capacity, align)?;
        let i = self.add(
            path,
            Kind::File {
                size: data.len() as u64,
                source: Source::Bytes(data.into()),
            },
            meta,
        )?;
        self.nodes[i].slot = Some((capacity, align));
        Ok(())
    }

    /// Bytes of file data the image will hold (for progress reports).
    pub fn data_bytes(&self) -> u64 {
        self.nodes
            .iter()
            .map(|n| match n.kind {
                Kind::File { size, .. } => size,
                _ => 0,
            })
            .sum()
    }

    /// Plans the layout and writes the image to `out`, front to back.
    pub fn build<W: std::io::Write>(&self, out: W) -> Result<BuildReport> {
        layout::build(self, out)
    }
}

/// A slot's content fits, its capacity fits one extent, its alignment is whole blocks.
fn check_slot(path: &str, len: u64, capacity: u64, align: u64) -> Result<()> {
    if len > capacity {
        return Err(invalid(
            "reserved slot",
            path,
            "content larger than the slot",
        ));
    }
    if capacity > u64::from(MAX_EXTENT) {
        return Err(invalid(
            "reserved slot",
            path,
            "capacity larger than one extent (4 GiB - 2 KiB)",
        ));
    }
    if !align.is_power_of_two() || align < 2048 {
        return Err(invalid(
            "reserved slot",
            path,
            "alignment not a power of two of at least 2048",
        ));
    }
    Ok(())
}

/// The host scanner's errors in this crate's terms.
fn tree_error(e: imgpipe_fstree::Error) -> Error {
    match e {
        imgpipe_fstree::Error::Io { what, path, source } => Error::IoPath { what, path, source },
        imgpipe_fstree::Error::LimitExceeded { what, limit } => Error::LimitExceeded {
            what,
            limit,
            offset: 0,
        },
        e => Error::Io {
            what: "scanning the host tree",
            source: std::io::Error::other(e),
        },
    }
}
