//! Reading images over `Read + Seek`: descriptors, directories in the Rock Ridge, Joliet or
//! plain ISO9660 namespace, file data, the boot catalog, and safe extraction (through the
//! shared extractor, [`imgpipe_fstree::extract`]).

mod fsread;

use std::collections::BTreeSet;
use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::{Mutex, PoisonError};

use serde::Serialize;

pub use imgpipe_fstree::{ExtractOptions, ExtractReport};

use crate::error::{Error, Result};
use crate::raw::{
    BootCatalog, BootRecord, DirectoryRecord, FLAG_DIRECTORY, FLAG_HIDDEN, FLAG_MULTI_EXTENT,
    PathTableRecord, PrimaryVolumeDescriptor, RockRidge, SECTOR_SIZE, STANDARD_ID, SystemArea,
    VolumeDescriptorType, decode_device, mode, parse_dir_date, parse_entries,
};

const BLOCK: u64 = SECTOR_SIZE as u64;

/// Caps that keep a hostile image from exhausting memory or time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most entries a walk visits.
    pub max_entries: u64,
    /// Deepest directory nesting followed.
    pub max_depth: usize,
    /// Largest directory extent read, in bytes.
    pub max_directory_size: u32,
    /// Most SUSP continuation areas followed for one record.
    pub max_continuations: usize,
    /// Most extents of one multi-extent file.
    pub max_extents: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_entries: 10_000_000,
            max_depth: 1024,
            max_directory_size: 64 << 20,
            max_continuations: 32,
            max_extents: 1 << 16,
        }
    }
}

/// Which directory tree names and attributes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Namespace {
    /// The primary tree with Rock Ridge attributes.
    RockRidge,
    /// The Joliet supplementary tree.
    Joliet,
    /// The primary tree, plain ISO9660 names.
    Iso9660,
}

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// Regular file.
    File,
    /// Directory.
    Directory,
    /// Symbolic link.
    Symlink,
    /// Character device.
    CharDevice,
    /// Block device.
    BlockDevice,
    /// FIFO.
    Fifo,
    /// Socket.
    Socket,
}

impl EntryKind {
    /// One letter as `ls -l` prints it.
    pub fn letter(self) -> char {
        match self {
            Self::File => '-',
            Self::Directory => 'd',
            Self::Symlink => 'l',
            Self::CharDevice => 'c',
            Self::BlockDevice => 'b',
            Self::Fifo => 'p',
            Self::Socket => 's',
        }
    }
}

/// One contiguous piece of a file's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Extent {
    /// First logical block.
    pub block: u32,
    /// Length in bytes.
    pub length: u32,
}

/// A file, directory, link or special file in the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// Name (lossily decoded for display).
    pub name: String,
    /// Name as stored.
    #[serde(skip)]
    pub name_bytes: Vec<u8>,
    /// Kind.
    pub kind: EntryKind,
    /// Permission bits (with setuid, setgid and sticky).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Link count.
    pub nlink: u32,
    /// Rock Ridge file serial number.
    pub ino: Option<u32>,
    /// Size in bytes (sum of all extents).
    pub size: u64,
    /// Modification time, Unix seconds.
    pub mtime: Option<i64>,
    /// Access time.
    pub atime: Option<i64>,
    /// Attribute change time.
    pub ctime: Option<i64>,
    /// Symlink target (lossily decoded).
    pub link_target: Option<String>,
    /// Symlink target as stored.
    #[serde(skip)]
    pub link_target_bytes: Option<Vec<u8>>,
    /// (major, minor) of a device node.
    pub device: Option<(u32, u32)>,
    /// Data extents in order.
    pub extents: Vec<Extent>,
    /// Whether the hidden flag is set.
    pub hidden: bool,
    /// Whether the data is zisofs-compressed (reported, not decoded).
    pub zisofs: bool,
    /// Byte offset of the directory record.
    #[serde(skip)]
    pub record_offset: u64,
}

impl Entry {
    /// `ls -l` style mode string, e.g. `-rw-r--r--`.
    pub fn mode_string(&self) -> String {
        let m = self.mode;
        let mut s = String::with_capacity(10);
        s.push(self.kind.letter());
        let bit = |b: u32, c: char| if m & b != 0 { c } else { '-' };
        let special =
            |x: u32, special: u32, lower: char, upper: char| match (m & x != 0, m & special != 0) {
                (true, true) => lower,
                (false, true) => upper,
                (true, false) => 'x',
                (false, false) => '-',
            };
        s.push(bit(0o400, 'r'));
        s.push(bit(0o200, 'w'));
        s.push(special(0o100, 0o4000, 's', 'S'));
        s.push(bit(0o040, 'r'));
        s.push(bit(0o020, 'w'));
        s.push(special(0o010, 0o2000, 's', 'S'));
        s.push(bit(0o004, 'r'));
        s.push(bit(0o002, 'w'));
        s.push(special(0o001, 0o1000, 't', 'T'));
        s
    }
}

/// A reader over an image.
///
/// Reads go through a mutex around the stream, so a shared `&Reader` can serve several
/// callers (it implements [`imgpipe_fstree::FsRead`]); the `&mut self` methods are kept for
/// the callers written against them.
#[derive(Debug)]
pub struct Reader<R> {
    inner: Mutex<R>,
    len: u64,
    limits: Limits,
    primary: PrimaryVolumeDescriptor,
    joliet: Option<PrimaryVolumeDescriptor>,
    boot_record: Option<BootRecord>,
    system_area: SystemArea,
    namespace: Namespace,
    sp_skip: usize,
    root: Entry,
}

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { what, source }
}

fn strip_version(id: &[u8]) -> &[u8] {
    let id = match id.iter().rposition(|&c| c == b';') {
        Some(p) => &id[..p],
        None => id,
    };
    id.strip_suffix(b".").unwrap_or(id)
}

fn joliet_name(id: &[u8]) -> Vec<u8> {
    let units: Vec<u16> = id
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    let s = String::from_utf16_lossy(&units);
    let s = match s.rfind(';') {
        Some(p) if s[p + 1..].bytes().all(|c| c.is_ascii_digit()) => &s[..p],
        _ => &s[..],
    };
    s.strip_suffix('.').unwrap_or(s).as_bytes().to_vec()
}

impl<R: Read + Seek> Reader<R> {
    /// Opens an image with default [`Limits`], choosing Rock Ridge, then Joliet, then plain
    /// ISO9660 names.
    pub fn open(inner: R) -> Result<Self> {
        Self::open_with(inner, Limits::default(), None)
    }

    /// Opens an image with `limits`; `namespace` forces a tree (an error when absent).
    pub fn open_with(mut inner: R, limits: Limits, namespace: Option<Namespace>) -> Result<Self> {
        let len = inner
            .seek(SeekFrom::End(0))
            .map_err(io("seeking to the end of the image"))?;
        let mut head = vec![0u8; len.min(16 * BLOCK) as usize];
        inner
            .seek(SeekFrom::Start(0))
            .map_err(io("seeking to the system area"))?;
        inner
            .read_exact(&mut head)
            .map_err(io("reading the system area"))?;
        let system_area = SystemArea::parse(&head);
        let mut primary = None;
        let mut joliet = None;
        let mut boot_record = None;
        let mut buf = vec![0u8; SECTOR_SIZE];
        let mut terminated = false;
        for i in 0..crate::MAX_DESCRIPTORS {
            let at = crate::DESCRIPTOR_START + i * BLOCK;
            read_at(&mut inner, len, at, &mut buf, "volume descriptor")?;
            if buf[1..6] != STANDARD_ID {
                return Err(Error::Malformed {
                    structure: "volume descriptor",
                    field: "standard identifier",
                    offset: at + 1,
                    reason: "not CD001 before a set terminator",
                });
            }
            match VolumeDescriptorType::from_byte(buf[0]) {
                VolumeDescriptorType::Primary if primary.is_none() => {
                    primary = Some(PrimaryVolumeDescriptor::parse(&buf, at)?);
                }
                VolumeDescriptorType::Supplementary if joliet.is_none() => {
                    let d = PrimaryVolumeDescriptor::parse(&buf, at)?;
                    if d.joliet_level.is_some() {
                        joliet = Some(d);
                    }
                }
                VolumeDescriptorType::BootRecord => {
                    let br = BootRecord::parse(&buf, at)?;
                    if br.is_el_torito() {
                        boot_record = Some(br);
                    }
                }
                VolumeDescriptorType::Terminator => {
                    terminated = true;
                    break;
                }
                _ => {}
            }
        }
        if !terminated {
            return Err(Error::Malformed {
                structure: "volume descriptor set",
                field: "terminator",
                offset: crate::DESCRIPTOR_START,
                reason: "no set terminator within 64 descriptors",
            });
        }
        let primary = primary.ok_or(Error::Malformed {
            structure: "volume descriptor set",
            field: "primary volume descriptor",
            offset: crate::DESCRIPTOR_START,
            reason: "set terminated without a primary volume descriptor",
        })?;
        let volume_end = u64::from(primary.volume_space_size) * BLOCK;
        if volume_end > len {
            return Err(Error::Truncated {
                structure: "volume (volume space size)",
                offset: 0,
                needed: volume_end,
                available: len,
            });
        }
        let mut reader = Self {
            inner: Mutex::new(inner),
            len,
            limits,
            root: Entry {
                name: String::new(),
                name_bytes: Vec::new(),
                kind: EntryKind::Directory,
                mode: 0o555,
                uid: 0,
                gid: 0,
                nlink: 1,
                ino: None,
                size: primary.root_size.into(),
                mtime: parse_dir_date(&primary.root_recorded),
                atime: None,
                ctime: None,
                link_target: None,
                link_target_bytes: None,
                device: None,
                extents: vec![Extent {
                    block: primary.root_extent,
                    length: primary.root_size,
                }],
                hidden: false,
                zisofs: false,
                record_offset: crate::DESCRIPTOR_START + 156,
            },
            primary,
            joliet,
            boot_record,
            system_area,
            namespace: Namespace::Iso9660,
            sp_skip: 0,
        };
        // The root's "." record says whether SUSP (and so Rock Ridge) is in use.
        let dot = reader.dot_record(reader.primary.root_extent)?;
        let rr = {
            let mut rr = RockRidge::default();
            if let Ok(entries) = parse_entries(&dot.0.system_use, dot.1) {
                let _ = rr.absorb(&entries);
            }
            rr
        };
        let has_rr = rr.sp_skip.is_some();
        reader.sp_skip = rr.sp_skip.map_or(0, usize::from);
        let chosen = match namespace {
            Some(ns) => ns,
            None if has_rr => Namespace::RockRidge,
            None if reader.joliet.is_some() => Namespace::Joliet,
            None => Namespace::Iso9660,
        };
        match chosen {
            Namespace::RockRidge if !has_rr => {
                return Err(Error::Unsupported {
                    feature: "Rock Ridge namespace: the image has no SUSP SP entry",
                });
            }
            Namespace::Joliet => {
                let j = reader.joliet.as_ref().ok_or(Error::Unsupported {
                    feature: "Joliet namespace: the image has no Joliet descriptor",
                })?;
                reader.root.extents = vec![Extent {
                    block: j.root_extent,
                    length: j.root_size,
                }];
                reader.root.size = j.root_size.into();
            }
            Namespace::RockRidge => {
                let full = reader.rock_ridge(&dot.0, dot.1)?;
                reader.root = apply_rr(&reader.root, &full);
            }
            Namespace::Iso9660 => {}
        }
        reader.namespace = chosen;
        Ok(reader)
    }

    /// The namespace in use.
    pub fn namespace(&self) -> Namespace {
        self.namespace
    }

    /// The primary volume descriptor.
    pub fn primary(&self) -> &PrimaryVolumeDescriptor {
        &self.primary
    }

    /// The Joliet descriptor, if any.
    pub fn joliet(&self) -> Option<&PrimaryVolumeDescriptor> {
        self.joliet.as_ref()
    }

    /// The El Torito boot record, if any.
    pub fn boot_record(&self) -> Option<&BootRecord> {
        self.boot_record.as_ref()
    }

    /// The system area (MBR, GPT).
    pub fn system_area(&self) -> &SystemArea {
        &self.system_area
    }

    /// The root directory.
    pub fn root(&self) -> &Entry {
        &self.root
    }

    /// Size of the underlying image in bytes.
    pub fn image_len(&self) -> u64 {
        self.len
    }

    /// Gives the underlying reader back.
    pub fn into_inner(self) -> R {
        self.inner
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads exactly `buf.len()` bytes at `at` through the shared stream.
    fn read_image(&self, at: u64, buf: &mut [u8], structure: &'static str) -> Result<()> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        read_at(&mut *inner, self.len, at, buf, structure)
    }

    /// Reads and parses the El Torito boot catalog, if the image has a boot record.
    pub fn boot_catalog(&mut self) -> Result<Option<BootCatalog>> {
        let Some(br) = &self.boot_record else {
            return Ok(None);
        };
        let at = u64::from(br.catalog_lba) * BLOCK;
        let n = self.len.saturating_sub(at).min(4 * BLOCK) as usize;
        let mut buf = vec![0u8; n];
        self.read_image(at, &mut buf, "El Torito boot catalog")?;
        BootCatalog::parse(&buf, at).map(Some)
    }

    fn dot_record(&self, block: u32) -> Result<(DirectoryRecord, u64)> {
        let at = u64::from(block) * BLOCK;
        let mut buf = vec![0u8; SECTOR_SIZE];
        self.read_image(at, &mut buf, "directory")?;
        let (rec, _) = DirectoryRecord::parse(&buf, at)?;
        if rec.identifier != [0] {
            return Err(Error::Malformed {
                structure: "directory",
                field: "first record",
                offset: at + 33,
                reason: "not the \".\" record",
            });
        }
        Ok((rec, at))
    }

    /// Gathers Rock Ridge entries of a record, following continuation areas.
    fn rock_ridge(&self, rec: &DirectoryRecord, at: u64) -> Result<RockRidge> {
        let mut rr = RockRidge::default();
        let su_at = at + (rec.encoded_len() - rec.system_use.len()) as u64;
        let area = rec.system_use.get(self.sp_skip..).unwrap_or_default();
        let mut next = rr.absorb(&parse_entries(area, su_at + self.sp_skip as u64)?)?;
        let mut hops = 0;
        while let Some(ce) = next {
            hops += 1;
            if hops > self.limits.max_continuations {
                return Err(Error::LimitExceeded {
                    what: "SUSP continuation areas of one record",
                    limit: self.limits.max_continuations as u64,
                    offset: at,
                });
            }
            if ce.length > 64 * 1024 {
                return Err(Error::LimitExceeded {
                    what: "SUSP continuation area length",
                    limit: 64 * 1024,
                    offset: at,
                });
            }
            let pos = u64::from(ce.block) * BLOCK + u64::from(ce.offset);
            let mut buf = vec![0u8; ce.length as usize];
            self.read_image(pos, &mut buf, "SUSP continuation area")?;
            next = rr.absorb(&parse_entries(&buf, pos)?)?;
        }
        Ok(rr)
    }
}

/// Applies Rock Ridge attributes to an entry built from its directory record.
fn apply_rr(base: &Entry, rr: &RockRidge) -> Entry {
    {
        let mut e = base.clone();
        if let Some(px) = rr.px {
            e.mode = px.mode & 0o7777;
            e.uid = px.uid;
            e.gid = px.gid;
            e.nlink = px.nlink;
            e.ino = px.ino;
            e.kind = match px.mode & mode::S_IFMT {
                mode::S_IFDIR => EntryKind::Directory,
                mode::S_IFLNK => EntryKind::Symlink,
                mode::S_IFCHR => EntryKind::CharDevice,
                mode::S_IFBLK => EntryKind::BlockDevice,
                mode::S_IFIFO => EntryKind::Fifo,
                mode::S_IFSOCK => EntryKind::Socket,
                _ if e.kind == EntryKind::Directory => EntryKind::Directory,
                _ => EntryKind::File,
            };
        }
        if let Some(target) = &rr.symlink {
            if rr.px.is_none() {
                e.kind = EntryKind::Symlink;
            }
            e.link_target = Some(String::from_utf8_lossy(target).into_owned());
            e.link_target_bytes = Some(target.clone());
        }
        if e.kind == EntryKind::Symlink {
            e.size = 0;
            e.extents.clear();
        }
        if let Some((high, low)) = rr.pn
            && matches!(e.kind, EntryKind::CharDevice | EntryKind::BlockDevice)
        {
            e.device = Some(decode_device(high, low));
        }
        if let Some(name) = &rr.name
            && rr.name_flags & 0x06 == 0
        {
            e.name_bytes = name.clone();
            e.name = String::from_utf8_lossy(name).into_owned();
        }
        if rr.times.modify.is_some() {
            e.mtime = rr.times.modify;
        }
        e.atime = rr.times.access;
        e.ctime = rr.times.attributes;
        e.zisofs = rr.zisofs.is_some();
        e
    }
}

impl<R: Read + Seek> Reader<R> {
    /// Lists a directory's entries (without "." and ".."), sorted by name.
    pub fn read_dir(&mut self, dir: &Entry) -> Result<Vec<Entry>> {
        self.dir_entries(dir, self.namespace)
    }

    /// The entries of `dir` in namespace `ns`, sorted by name bytes.
    fn dir_entries(&self, dir: &Entry, ns: Namespace) -> Result<Vec<Entry>> {
        if dir.kind != EntryKind::Directory {
            return Err(Error::InvalidInput {
                what: "read_dir",
                path: dir.name.clone(),
                reason: "not a directory",
            });
        }
        let Some(ext) = dir.extents.first().copied() else {
            return Ok(Vec::new());
        };
        if ext.length > self.limits.max_directory_size {
            return Err(Error::LimitExceeded {
                what: "directory size",
                limit: self.limits.max_directory_size.into(),
                offset: dir.record_offset,
            });
        }
        let base = u64::from(ext.block) * BLOCK;
        // Check the extent lies in the image before allocating for it.
        if base + u64::from(ext.length) > self.len {
            return Err(Error::Truncated {
                structure: "directory",
                offset: base,
                needed: ext.length.into(),
                available: self.len.saturating_sub(base),
            });
        }
        let mut data = vec![0u8; ext.length as usize];
        self.read_image(base, &mut data, "directory")?;
        let mut out: Vec<Entry> = Vec::new();
        let mut pending: Option<Entry> = None;
        let mut pos = 0usize;
        while pos < data.len() {
            let sector_end = (pos / SECTOR_SIZE + 1) * SECTOR_SIZE;
            let sector_end = sector_end.min(data.len());
            if data[pos] == 0 {
                pos = sector_end;
                continue;
            }
            let at = base + pos as u64;
            let (rec, len) = DirectoryRecord::parse(&data[pos..sector_end], at)?;
            pos += len;
            if rec.identifier == [0] || rec.identifier == [1] {
                continue;
            }
            let multi = rec.flags & FLAG_MULTI_EXTENT != 0;
            if let Some(mut p) = pending.take() {
                if p.extents.len() >= self.limits.max_extents {
                    return Err(Error::LimitExceeded {
                        what: "extents of one file",
                        limit: self.limits.max_extents as u64,
                        offset: at,
                    });
                }
                // A continuation record of a multi-extent file.
                p.extents.push(Extent {
                    block: rec.extent,
                    length: rec.data_length,
                });
                p.size += u64::from(rec.data_length);
                if multi {
                    pending = Some(p);
                } else {
                    out.push(p);
                }
                continue;
            }
            let Some(e) = self.entry_from_record(&rec, at, ns)? else {
                continue;
            };
            if multi {
                pending = Some(e);
            } else {
                out.push(e);
            }
            if out.len() as u64 > self.limits.max_entries {
                return Err(Error::LimitExceeded {
                    what: "entries",
                    limit: self.limits.max_entries,
                    offset: at,
                });
            }
        }
        if let Some(p) = pending {
            return Err(Error::Malformed {
                structure: "directory record",
                field: "file flags",
                offset: p.record_offset + 25,
                reason: "multi-extent file without a final record",
            });
        }
        out.sort_by(|a, b| a.name_bytes.cmp(&b.name_bytes));
        Ok(out)
    }

    fn entry_from_record(
        &self,
        rec: &DirectoryRecord,
        at: u64,
        ns: Namespace,
    ) -> Result<Option<Entry>> {
        let is_dir = rec.flags & FLAG_DIRECTORY != 0;
        let name_bytes = match ns {
            Namespace::Joliet => joliet_name(&rec.identifier),
            _ if is_dir => rec.identifier.clone(),
            _ => strip_version(&rec.identifier).to_vec(),
        };
        let mut e = Entry {
            name: String::from_utf8_lossy(&name_bytes).into_owned(),
            name_bytes,
            kind: if is_dir {
                EntryKind::Directory
            } else {
                EntryKind::File
            },
            mode: if is_dir { 0o555 } else { 0o444 },
            uid: 0,
            gid: 0,
            nlink: 1,
            ino: None,
            size: rec.data_length.into(),
            mtime: parse_dir_date(&rec.recorded),
            atime: None,
            ctime: None,
            link_target: None,
            link_target_bytes: None,
            device: None,
            extents: vec![Extent {
                block: rec.extent,
                length: rec.data_length,
            }],
            hidden: rec.flags & FLAG_HIDDEN != 0,
            zisofs: false,
            record_offset: at,
        };
        if ns != Namespace::RockRidge {
            return Ok(Some(e));
        }
        let rr = self.rock_ridge(rec, at)?;
        if rr.relocated {
            // Shown where its CL placeholder stands instead.
            return Ok(None);
        }
        if let Some(block) = rr.child_link {
            let (dot, dot_at) = self.dot_record(block)?;
            let dot_rr = self.rock_ridge(&dot, dot_at)?;
            e.kind = EntryKind::Directory;
            e.extents = vec![Extent {
                block,
                length: dot.data_length,
            }];
            e.size = dot.data_length.into();
            let mut e = apply_rr(&e, &dot_rr);
            // The placeholder carries the name.
            if let Some(name) = &rr.name {
                e.name_bytes = name.clone();
                e.name = String::from_utf8_lossy(name).into_owned();
            }
            e.kind = EntryKind::Directory;
            return Ok(Some(e));
        }
        Ok(Some(apply_rr(&e, &rr)))
    }

    /// Walks the tree depth-first in name order, calling `f(path, entry)` for every entry
    /// below the root (paths are `/`-separated, relative, as stored bytes). Directory loops
    /// and the limits are errors.
    pub fn walk(&mut self, f: impl FnMut(&[u8], &Entry) -> Result<()>) -> Result<()> {
        self.walk_from(self.root.clone(), self.namespace, f)
    }

    /// [`walk`](Self::walk) from directory `root` in namespace `ns`, through `&self`.
    fn walk_from(
        &self,
        root: Entry,
        ns: Namespace,
        mut f: impl FnMut(&[u8], &Entry) -> Result<()>,
    ) -> Result<()> {
        let mut visited = BTreeSet::new();
        visited.insert(root.extents.first().map_or(0, |x| x.block));
        let mut count = 0u64;
        // Stack of (path, directory, depth); children pushed in reverse to visit in order.
        let mut stack: Vec<(Vec<u8>, Entry, usize)> = vec![(Vec::new(), root, 0)];
        while let Some((path, dir, depth)) = stack.pop() {
            if depth >= self.limits.max_depth {
                return Err(Error::LimitExceeded {
                    what: "directory depth",
                    limit: self.limits.max_depth as u64,
                    offset: dir.record_offset,
                });
            }
            let children = self.dir_entries(&dir, ns)?;
            let mut subdirs = Vec::new();
            for child in children {
                count += 1;
                if count > self.limits.max_entries {
                    return Err(Error::LimitExceeded {
                        what: "entries",
                        limit: self.limits.max_entries,
                        offset: child.record_offset,
                    });
                }
                let mut p = path.clone();
                if !p.is_empty() {
                    p.push(b'/');
                }
                p.extend_from_slice(&child.name_bytes);
                f(&p, &child)?;
                if child.kind == EntryKind::Directory {
                    let block = child.extents.first().map_or(0, |x| x.block);
                    if !visited.insert(block) {
                        return Err(Error::DirectoryLoop {
                            block,
                            path: String::from_utf8_lossy(&p).into_owned(),
                        });
                    }
                    subdirs.push((p, child, depth + 1));
                }
            }
            stack.extend(subdirs.into_iter().rev());
        }
        Ok(())
    }

    /// Every entry below the root with its path, in walk order.
    pub fn entries(&mut self) -> Result<Vec<(String, Entry)>> {
        let mut out = Vec::new();
        self.walk(|p, e| {
            out.push((String::from_utf8_lossy(p).into_owned(), e.clone()));
            Ok(())
        })?;
        Ok(out)
    }

    /// Finds the entry at a `/`-separated path (leading `/` optional).
    pub fn lookup(&mut self, path: &str) -> Result<Entry> {
        let mut cur = self.root.clone();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            let children = self.read_dir(&cur)?;
            cur = children
                .into_iter()
                .find(|c| c.name_bytes == part.as_bytes())
                .ok_or(Error::NotFound {
                    path: path.to_string(),
                })?;
        }
        Ok(cur)
    }

    /// Copies a file's data to `out`, extent by extent, in bounded memory. Returns the bytes
    /// written.
    pub fn copy_to(&mut self, e: &Entry, out: &mut impl Write) -> Result<u64> {
        self.copy_data(e, out)
    }

    /// [`copy_to`](Self::copy_to) through `&self`.
    fn copy_data(&self, e: &Entry, out: &mut dyn Write) -> Result<u64> {
        if e.kind != EntryKind::File {
            return Ok(0);
        }
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0u64;
        for ext in &e.extents {
            let start = u64::from(ext.block) * BLOCK;
            let len = u64::from(ext.length);
            if start.checked_add(len).is_none_or(|end| end > self.len) {
                return Err(Error::Truncated {
                    structure: "file extent",
                    offset: start,
                    needed: len,
                    available: self.len.saturating_sub(start),
                });
            }
            let mut done = 0u64;
            while done < len {
                let n = (len - done).min(buf.len() as u64) as usize;
                let chunk = buf.get_mut(..n).unwrap_or_default();
                self.read_image(start + done, chunk, "file data")?;
                out.write_all(chunk).map_err(io("writing extracted data"))?;
                done += n as u64;
                total += n as u64;
            }
        }
        Ok(total)
    }

    /// Reads a whole file into memory (for small files; refuses more than `cap` bytes).
    pub fn read_to_vec(&mut self, e: &Entry, cap: u64) -> Result<Vec<u8>> {
        if e.size > cap {
            return Err(Error::LimitExceeded {
                what: "file size read into memory",
                limit: cap,
                offset: e.record_offset,
            });
        }
        let mut v = Vec::with_capacity(e.size.min(self.len) as usize);
        self.copy_to(e, &mut v)?;
        Ok(v)
    }

    /// Checks the type L path table against the directory tree of the primary volume:
    /// the same set of directory extents, and each record's parent in range.
    pub fn check_path_table(&mut self) -> Result<usize> {
        let size = self.primary.path_table_size;
        if size > self.limits.max_directory_size {
            return Err(Error::LimitExceeded {
                what: "path table size",
                limit: self.limits.max_directory_size.into(),
                offset: crate::DESCRIPTOR_START + 132,
            });
        }
        let at = u64::from(self.primary.type_l_path_table) * BLOCK;
        if at + u64::from(size) > self.len {
            return Err(Error::Truncated {
                structure: "path table",
                offset: at,
                needed: size.into(),
                available: self.len.saturating_sub(at),
            });
        }
        let mut table = vec![0u8; size as usize];
        self.read_image(at, &mut table, "path table")?;
        let mut from_table = BTreeSet::new();
        let mut pos = 0usize;
        let mut n = 0usize;
        while pos < table.len() {
            let (rec, len) = PathTableRecord::parse(&table[pos..], false, at + pos as u64)?;
            n += 1;
            if rec.parent == 0 || usize::from(rec.parent) > n {
                return Err(Error::Malformed {
                    structure: "path table record",
                    field: "parent directory number",
                    offset: at + pos as u64 + 6,
                    reason: "not a preceding record",
                });
            }
            from_table.insert(rec.extent);
            pos += len;
        }
        // The physical ISO9660 tree (relocated directories where they really are).
        let mut plain_root = self.root.clone();
        plain_root.kind = EntryKind::Directory;
        plain_root.extents = vec![Extent {
            block: self.primary.root_extent,
            length: self.primary.root_size,
        }];
        let mut from_tree = BTreeSet::new();
        from_tree.insert(self.primary.root_extent);
        self.walk_from(plain_root, Namespace::Iso9660, |_, e| {
            if e.kind == EntryKind::Directory {
                from_tree.insert(e.extents.first().map_or(0, |x| x.block));
            }
            Ok(())
        })?;
        if from_table != from_tree {
            return Err(Error::Malformed {
                structure: "path table",
                field: "directory locations",
                offset: at,
                reason: "do not match the directory tree",
            });
        }
        Ok(n)
    }
}

/// Reads exactly `buf.len()` bytes at `at`, or a truncation error naming `structure`.
pub(crate) fn read_at<R: Read + Seek>(
    r: &mut R,
    len: u64,
    at: u64,
    buf: &mut [u8],
    structure: &'static str,
) -> Result<()> {
    let need = buf.len() as u64;
    if at.checked_add(need).is_none_or(|end| end > len) {
        return Err(Error::Truncated {
            structure,
            offset: at,
            needed: need,
            available: len.saturating_sub(at),
        });
    }
    r.seek(SeekFrom::Start(at))
        .map_err(io("seeking in the image"))?;
    r.read_exact(buf).map_err(io("reading the image"))
}
