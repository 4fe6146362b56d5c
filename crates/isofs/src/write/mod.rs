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
    /// Seed of the GPT GUIDs and the MBR disk signature (else derived from the volume id
    /// and the epoch).
    pub seed: Option<u64>,
    /// Largest extent per directory record (a multiple of 2048, at most [`MAX_EXTENT`]).
    pub max_extent: u32,
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
            seed: None,
            max_extent: MAX_EXTENT,
            relocate_deep: false,
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
}

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
    /// Size of the slot (the file's recorded size).
    pub size: u64,
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
        }
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

    /// Adds everything below the host directory `root` into the tree at its root, in sorted
    /// name order: files (read when the image is written), directories, symlinks, hard links
    /// (by device and inode), device nodes, FIFOs and sockets, with their modes, owners and
    /// mtimes. The root directory takes `root`'s metadata.
    pub fn add_tree(&mut self, root: &Path) -> Result<()> {
        use std::os::unix::ffi::OsStrExt;
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let meta_of = |m: &std::fs::Metadata| Metadata {
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
            mtime: Some(m.mtime()),
        };
        let io = |what: &'static str, p: &Path| {
            let path = p.to_path_buf();
            move |source| Error::IoPath { what, path, source }
        };
        let rm = std::fs::metadata(root).map_err(io("reading", root))?;
        self.nodes[0].meta = meta_of(&rm);
        let mut links: BTreeMap<(u64, u64), String> = BTreeMap::new();
        let mut stack: Vec<(PathBuf, String)> = vec![(root.to_path_buf(), String::new())];
        while let Some((dir, prefix)) = stack.pop() {
            let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(&dir)
                .map_err(io("listing", &dir))?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<std::io::Result<_>>()
                .map_err(io("listing", &dir))?;
            names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            let mut subdirs = Vec::new();
            for name in names {
                let host = dir.join(&name);
                let Ok(name_str) = std::str::from_utf8(name.as_bytes()) else {
                    return Err(Error::InvalidInput {
                        what: "source tree",
                        path: host.display().to_string(),
                        reason: "name is not UTF-8",
                    });
                };
                let path = if prefix.is_empty() {
                    name_str.to_string()
                } else {
                    format!("{prefix}/{name_str}")
                };
                let m = std::fs::symlink_metadata(&host).map_err(io("reading", &host))?;
                let ft = m.file_type();
                let meta = meta_of(&m);
                if ft.is_dir() {
                    self.add_dir(&path, meta)?;
                    subdirs.push((host, path));
                } else if ft.is_symlink() {
                    let t = std::fs::read_link(&host).map_err(io("reading link", &host))?;
                    self.add_symlink_bytes(&path, meta, t.as_os_str().as_bytes())?;
                } else if ft.is_file() {
                    if m.nlink() > 1 {
                        if let Some(first) = links.get(&(m.dev(), m.ino())) {
                            self.add_hard_link(&path, &first.clone())?;
                            continue;
                        }
                        links.insert((m.dev(), m.ino()), path.clone());
                    }
                    self.add_file_from_path(&path, meta, host, m.len())?;
                } else if ft.is_fifo() {
                    self.add_fifo(&path, meta)?;
                } else if ft.is_socket() {
                    self.add_socket(&path, meta)?;
                } else if ft.is_char_device() || ft.is_block_device() {
                    let (major, minor) = (rustix::fs::major(m.rdev()), rustix::fs::minor(m.rdev()));
                    self.add_device(&path, meta, ft.is_block_device(), major, minor)?;
                }
            }
            stack.extend(subdirs.into_iter().rev());
        }
        Ok(())
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
