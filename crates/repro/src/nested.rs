//! Divergence diagnosis: which files inside which nested filesystem differ between two builds.
//!
//! [`diagnose_files`] recognises the outer image (ISO9660, GPT disk, squashfs, EROFS, FAT), lists
//! both sides, and compares entry by entry: presence, kind, mode, owner, mtime, size, link
//! target, xattrs (squashfs) and content (SHA-256, streamed). A differing file or partition
//! that is itself a filesystem stored contiguously (the squashfs inside a live ISO, the ESP
//! or root partition of a disk, an ISO inside a partition) is opened in place, at its offset
//! inside the outer file, and compared the same way, down to [`NestedOptions::max_depth`].
//!
//! Memory is bounded by the number of entries of one filesystem (their metadata, never
//! their content); nothing is extracted to disk. Every reader is the format crate's hardened
//! one, so a hostile image is an error for that layer, reported with the layer's name.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// How deep and how much [`diagnose_files`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct NestedOptions {
    /// Most filesystems nested inside each other that are opened (default 4).
    pub max_depth: usize,
    /// Most differences reported (the rest are counted; default 1000).
    pub max_differences: usize,
}

impl Default for NestedOptions {
    fn default() -> Self {
        Self {
            max_depth: 4,
            max_differences: 1000,
        }
    }
}

/// One difference at file level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileDifference {
    /// The filesystems holding it, outermost first: `iso9660`, then for instance
    /// `/LiveOS/squashfs.img (squashfs)`.
    pub within: Vec<String>,
    /// Path inside the innermost filesystem (`/` separated, starting with `/`; a partition
    /// is named `partition N (name)`).
    pub path: String,
    /// What differs, e.g. `content (1234 vs 1240 bytes)`, `mode 0644 -> 0755`, `only in A`.
    pub what: String,
}

/// What [`diagnose_files`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NestedDiff {
    /// Every filesystem compared, as its `within` chain joined with ` > `.
    pub compared: Vec<String>,
    /// The differences, in walk order.
    pub differences: Vec<FileDifference>,
    /// Differences beyond [`NestedOptions::max_differences`].
    pub omitted: u64,
}

/// The filesystems this module opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Iso,
    Squashfs,
    Erofs,
    Gpt,
    Fat,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Iso => "iso9660",
            Kind::Squashfs => "squashfs",
            Kind::Erofs => "erofs",
            Kind::Gpt => "gpt",
            Kind::Fat => "fat",
        }
    }
}

/// A byte range of an open file holding one filesystem.
#[derive(Debug, Clone, Copy)]
struct Src<'a> {
    file: &'a File,
    off: u64,
    len: u64,
}

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { what, source }
}

fn layer(within: &[String]) -> String {
    within.join(" > ")
}

fn layer_err(within: &[String], e: impl std::fmt::Display) -> Error {
    Error::Layer {
        layer: layer(within),
        message: e.to_string(),
    }
}

impl<'a> Src<'a> {
    fn window(&self) -> Result<imgpipe_gptpart::Window<File>> {
        let f = self.file.try_clone().map_err(io("reopening an image"))?;
        Ok(imgpipe_gptpart::Window::new(f, self.off, self.len))
    }

    fn head(&self, n: u64) -> Result<Vec<u8>> {
        let mut w = self.window()?;
        let mut buf = Vec::new();
        (&mut w)
            .take(n.min(self.len))
            .read_to_end(&mut buf)
            .map_err(io("reading an image head"))?;
        Ok(buf)
    }

    fn kind(&self) -> Result<Option<Kind>> {
        let h = self.head(40 * 1024)?;
        Ok(if h.starts_with(b"hsqs") {
            Some(Kind::Squashfs)
        } else if imgpipe_squashfs::detect_erofs(&h) {
            Some(Kind::Erofs)
        } else if h.get(32769..32774) == Some(b"CD001") {
            Some(Kind::Iso)
        } else if h.get(512..520) == Some(b"EFI PART") || h.get(4096..4104) == Some(b"EFI PART") {
            Some(Kind::Gpt)
        } else if imgpipe_gptpart::detect_fat(&h) {
            Some(Kind::Fat)
        } else {
            None
        })
    }

    fn sub(&self, off: u64, len: u64) -> Option<Src<'a>> {
        let end = off.checked_add(len)?;
        (end <= self.len).then_some(Src {
            file: self.file,
            off: self.off + off,
            len,
        })
    }

    fn digest(&self) -> Result<[u8; 32]> {
        let mut w = self.window()?;
        w.seek(SeekFrom::Start(0)).map_err(io("seeking"))?;
        let mut h = HashWriter(Sha256::new());
        std::io::copy(&mut (&mut w).take(self.len), &mut h).map_err(io("hashing a range"))?;
        Ok(h.0.finalize().into())
    }
}

struct HashWriter(Sha256);

/// SHA-256 of what `write` writes; its error is reported for the layer `within`.
fn sha256_of<T, E: std::fmt::Display>(
    within: &[String],
    write: impl FnOnce(&mut HashWriter) -> std::result::Result<T, E>,
) -> Result<[u8; 32]> {
    let mut h = HashWriter(Sha256::new());
    write(&mut h).map_err(|e| layer_err(within, e))?;
    Ok(h.0.finalize().into())
}

impl Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One entry's comparable state, whatever the format.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Meta {
    kind: char,
    mode: Option<u32>,
    owner: Option<(u32, u32)>,
    mtime: Option<i64>,
    size: u64,
    link: Option<Vec<u8>>,
    /// Device numbers.
    rdev: Option<(u32, u32)>,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// Where the content lies contiguously in the filesystem's own bytes, if it does.
    contiguous: Option<u64>,
}

struct Walker<'o> {
    opts: NestedOptions,
    out: &'o mut NestedDiff,
    /// Where the images may differ (from the byte diff): content elsewhere at the same
    /// offset in both is identical and not read.
    differing: Option<&'o crate::diff::Differing>,
}

/// Compares two image files at file level, descending into nested filesystems. `a` and `b`
/// are the two builds; see the [module docs](self).
pub fn diagnose_files(a: &File, b: &File, opts: NestedOptions) -> Result<NestedDiff> {
    diagnose(a, b, opts, None)
}

/// [`diagnose_files`] handed where the images may differ (the byte diff's ranges): a
/// partition or file at the same offset in both that no differing byte touches is taken as
/// identical without being read.
pub fn diagnose_files_within(
    a: &File,
    b: &File,
    opts: NestedOptions,
    differing: &crate::diff::Differing,
) -> Result<NestedDiff> {
    diagnose(a, b, opts, Some(differing))
}

fn diagnose(
    a: &File,
    b: &File,
    opts: NestedOptions,
    differing: Option<&crate::diff::Differing>,
) -> Result<NestedDiff> {
    let len = |f: &File| f.metadata().map(|m| m.len()).map_err(io("reading a size"));
    let (sa, sb) = (
        Src {
            file: a,
            off: 0,
            len: len(a)?,
        },
        Src {
            file: b,
            off: 0,
            len: len(b)?,
        },
    );
    let mut out = NestedDiff::default();
    let mut w = Walker {
        opts,
        out: &mut out,
        differing,
    };
    match (sa.kind()?, sb.kind()?) {
        (Some(ka), Some(kb)) if ka == kb => w.compare(ka, sa, sb, &[])?,
        (ka, kb) => w.push(
            &[],
            "/",
            format!(
                "format {} -> {}",
                ka.map_or("unknown", Kind::name),
                kb.map_or("unknown", Kind::name)
            ),
        ),
    }
    Ok(out)
}

impl Walker<'_> {
    /// Whether `len` bytes at `oa` in `a` and `ob` in `b` are known identical.
    fn unchanged(&self, a: Src<'_>, oa: u64, b: Src<'_>, ob: u64, len: u64) -> bool {
        let (Some(x), Some(y)) = (a.off.checked_add(oa), b.off.checked_add(ob)) else {
            return false;
        };
        self.differing.is_some_and(|d| d.unchanged(x, y, len))
    }

    fn push(&mut self, within: &[String], path: &str, what: String) {
        if self.out.differences.len() >= self.opts.max_differences {
            self.out.omitted += 1;
            return;
        }
        self.out.differences.push(FileDifference {
            within: within.to_vec(),
            path: path.to_owned(),
            what,
        });
    }

    fn compare(&mut self, kind: Kind, a: Src<'_>, b: Src<'_>, outer: &[String]) -> Result<()> {
        let mut within = outer.to_vec();
        if within.is_empty() {
            within.push(kind.name().to_owned());
        }
        self.out.compared.push(layer(&within));
        match kind {
            Kind::Gpt => self.compare_gpt(a, b, &within),
            Kind::Iso => {
                let (ma, mut ra) = iso_list(a, &within)?;
                let (mb, mut rb) = iso_list(b, &within)?;
                self.compare_maps(&ma, &mb, a, b, &within, &mut |side, path| {
                    let (r, m) = if side == 0 {
                        (&mut ra, &ma)
                    } else {
                        (&mut rb, &mb)
                    };
                    sha256_of(&within, |h| r.copy_to(&m[path].1, h))
                })
            }
            Kind::Squashfs => {
                let (ma, ra) = sqfs_list(a, &within)?;
                let (mb, rb) = sqfs_list(b, &within)?;
                self.compare_maps(&ma, &mb, a, b, &within, &mut |side, path| {
                    let (r, m) = if side == 0 { (&ra, &ma) } else { (&rb, &mb) };
                    sha256_of(&within, |h| r.read_file(&m[path].1, h))
                })
            }
            Kind::Erofs => {
                let (ma, ra) = erofs_list(a, &within)?;
                let (mb, rb) = erofs_list(b, &within)?;
                self.compare_maps(&ma, &mb, a, b, &within, &mut |side, path| {
                    let (r, m) = if side == 0 { (&ra, &ma) } else { (&rb, &mb) };
                    sha256_of(&within, |h| r.read_file(&m[path].1, h))
                })
            }
            Kind::Fat => {
                let (ma, mut ra) = fat_list(a, &within)?;
                let (mb, mut rb) = fat_list(b, &within)?;
                self.compare_maps(&ma, &mb, a, b, &within, &mut |side, path| {
                    let (r, m) = if side == 0 {
                        (&mut ra, &ma)
                    } else {
                        (&mut rb, &mb)
                    };
                    sha256_of(&within, |h| r.copy_file(&m[path].1, h))
                })
            }
        }
    }

    /// Compares two listings; `digest(side, path)` hashes one file's content.
    fn compare_maps<E>(
        &mut self,
        ma: &Listing<E>,
        mb: &Listing<E>,
        a: Src<'_>,
        b: Src<'_>,
        within: &[String],
        digest: &mut DigestFn<'_>,
    ) -> Result<()> {
        let paths: std::collections::BTreeSet<&String> = ma.keys().chain(mb.keys()).collect();
        for path in paths {
            let (x, y) = match (ma.get(path), mb.get(path)) {
                (Some((x, _)), Some((y, _))) => (x, y),
                (Some(_), None) => {
                    self.push(within, path, "only in A".into());
                    continue;
                }
                (None, _) => {
                    self.push(within, path, "only in B".into());
                    continue;
                }
            };
            if x.kind != y.kind {
                self.push(within, path, format!("type {} -> {}", x.kind, y.kind));
                continue;
            }
            if x.mode != y.mode {
                let m = |v: Option<u32>| v.map_or("-".to_owned(), |m| format!("{m:04o}"));
                self.push(within, path, format!("mode {} -> {}", m(x.mode), m(y.mode)));
            }
            if x.owner != y.owner {
                let o =
                    |v: Option<(u32, u32)>| v.map_or("-".to_owned(), |(u, g)| format!("{u}:{g}"));
                self.push(
                    within,
                    path,
                    format!("owner {} -> {}", o(x.owner), o(y.owner)),
                );
            }
            if x.mtime != y.mtime {
                let t = |v: Option<i64>| v.map_or("-".to_owned(), |t| t.to_string());
                self.push(
                    within,
                    path,
                    format!("mtime {} -> {}", t(x.mtime), t(y.mtime)),
                );
            }
            if x.link != y.link {
                self.push(within, path, "link target".into());
            }
            if x.rdev != y.rdev {
                self.push(within, path, "device numbers".into());
            }
            if x.xattrs != y.xattrs {
                self.push(within, path, "xattrs".into());
            }
            if x.kind != '-' {
                continue;
            }
            let known = match (x.contiguous, y.contiguous) {
                (Some(oa), Some(ob)) => x.size == y.size && self.unchanged(a, oa, b, ob, x.size),
                _ => false,
            };
            let same = known || (x.size == y.size && digest(0, path)? == digest(1, path)?);
            if same {
                continue;
            }
            let nested = match (x.contiguous, y.contiguous) {
                (Some(oa), Some(ob)) if within.len() < self.opts.max_depth => {
                    match (a.sub(oa, x.size), b.sub(ob, y.size)) {
                        (Some(na), Some(nb)) => match (na.kind()?, nb.kind()?) {
                            (Some(ka), Some(kb)) if ka == kb => Some((ka, na, nb)),
                            _ => None,
                        },
                        _ => None,
                    }
                }
                _ => None,
            };
            match nested {
                Some((k, na, nb)) => {
                    let mut inner = within.to_vec();
                    inner.push(format!("{path} ({})", k.name()));
                    self.descend(k, na, nb, &inner, path, within)?;
                }
                None => self.push(
                    within,
                    path,
                    format!("content ({} vs {} bytes)", x.size, y.size),
                ),
            }
        }
        Ok(())
    }

    /// Compares a nested filesystem; when its files all agree, the difference is in its
    /// own structures (superblock, tables, layout) and is reported on the container entry.
    fn descend(
        &mut self,
        k: Kind,
        a: Src<'_>,
        b: Src<'_>,
        inner: &[String],
        path: &str,
        within: &[String],
    ) -> Result<()> {
        let before = self.out.differences.len() as u64 + self.out.omitted;
        match self.compare(k, a, b, inner) {
            Ok(()) => {}
            // A nested layer that does not read is reported, not fatal for the outer one.
            Err(e) => self.push(within, path, format!("content; {e}")),
        }
        if self.out.differences.len() as u64 + self.out.omitted == before {
            self.push(
                within,
                path,
                format!(
                    "content ({} vs {} bytes): the {} file trees are identical, its own structures differ",
                    a.len,
                    b.len,
                    k.name()
                ),
            );
        }
        Ok(())
    }

    fn compare_gpt(&mut self, a: Src<'_>, b: Src<'_>, within: &[String]) -> Result<()> {
        let da = imgpipe_gptpart::read_gpt(a.window()?).map_err(|e| layer_err(within, e))?;
        let db = imgpipe_gptpart::read_gpt(b.window()?).map_err(|e| layer_err(within, e))?;
        if da.disk_guid != db.disk_guid {
            self.push(within, "/", "disk GUID".into());
        }
        let name =
            |p: &imgpipe_gptpart::GptPartition| format!("partition {} ({})", p.index, p.name);
        let pb: BTreeMap<u32, &imgpipe_gptpart::GptPartition> =
            db.partitions.iter().map(|p| (p.index, p)).collect();
        for x in &da.partitions {
            let Some(y) = pb.get(&x.index) else {
                self.push(within, &name(x), "only in A".into());
                continue;
            };
            let n = name(x);
            for (field, differs) in [
                ("type", x.type_guid != y.type_guid),
                ("unique GUID", x.unique_guid != y.unique_guid),
                ("name", x.name != y.name),
                ("attributes", x.attributes != y.attributes),
                (
                    "range",
                    (x.first_lba, x.last_lba) != (y.first_lba, y.last_lba),
                ),
            ] {
                if differs {
                    self.push(within, &n, field.into());
                }
            }
            let range = |d: &imgpipe_gptpart::GptDisk, p: &imgpipe_gptpart::GptPartition| {
                let start = p.first_lba.checked_mul(d.sector_size)?;
                let len = (p.last_lba.checked_sub(p.first_lba)? + 1).checked_mul(d.sector_size)?;
                Some((start, len))
            };
            let (Some((oa, la)), Some((ob, lb))) = (range(&da, x), range(&db, y)) else {
                continue;
            };
            let (Some(na), Some(nb)) = (a.sub(oa, la), b.sub(ob, lb)) else {
                self.push(within, &n, "extends past the end of the disk".into());
                continue;
            };
            let changed = self
                .differing
                .is_some_and(|d| d.changed(na.off, nb.off, la));
            if la == lb
                && (self.unchanged(a, oa, b, ob, la)
                    || (!changed && na.digest()? == nb.digest()?))
            {
                continue;
            }
            match (na.kind()?, nb.kind()?) {
                (Some(ka), Some(kb)) if ka == kb && within.len() < self.opts.max_depth => {
                    let mut inner = within.to_vec();
                    inner.push(format!("{n} ({})", ka.name()));
                    self.descend(ka, na, nb, &inner, &n, within)?;
                }
                _ => self.push(within, &n, format!("content ({la} vs {lb} bytes)")),
            }
        }
        for y in &db.partitions {
            if !da.partitions.iter().any(|x| x.index == y.index) {
                self.push(within, &name(y), "only in B".into());
            }
        }
        Ok(())
    }
}

/// Hashes the content of the file at a path, on side 0 (A) or 1 (B).
type DigestFn<'a> = dyn FnMut(usize, &str) -> Result<[u8; 32]> + 'a;

/// One filesystem's entries by path, with the reader's own handle for each.
type Listing<E> = BTreeMap<String, (Meta, E)>;

type IsoReader = imgpipe_isofs::Reader<imgpipe_gptpart::Window<File>>;

fn iso_list(s: Src<'_>, within: &[String]) -> Result<(Listing<imgpipe_isofs::Entry>, IsoReader)> {
    use imgpipe_isofs::EntryKind;
    let mut r = imgpipe_isofs::Reader::open(s.window()?).map_err(|e| layer_err(within, e))?;
    let mut map = BTreeMap::new();
    for (path, e) in r.entries().map_err(|e| layer_err(within, e))? {
        let kind = match e.kind {
            EntryKind::Directory => 'd',
            EntryKind::File => '-',
            EntryKind::Symlink => 'l',
            EntryKind::CharDevice => 'c',
            EntryKind::BlockDevice => 'b',
            EntryKind::Fifo => 'p',
            EntryKind::Socket => 's',
        };
        let contiguous = match e.extents.as_slice() {
            [one] => Some(u64::from(one.block) * 2048),
            _ => None,
        };
        let meta = Meta {
            kind,
            mode: Some(e.mode),
            owner: Some((e.uid, e.gid)),
            mtime: e.mtime,
            size: if kind == 'd' { 0 } else { e.size },
            link: e.link_target_bytes.clone(),
            rdev: e.device,
            xattrs: Vec::new(),
            contiguous,
        };
        let path = if path.starts_with('/') {
            path
        } else {
            format!("/{path}")
        };
        map.insert(path, (meta, e));
    }
    Ok((map, r))
}

/// `ls -l`'s type letter (`-` for a regular file).
fn letter(k: imgpipe_squashfs::raw::InodeKind) -> char {
    use imgpipe_squashfs::raw::InodeKind;
    match k {
        InodeKind::Dir => 'd',
        InodeKind::File => '-',
        InodeKind::Symlink => 'l',
        InodeKind::BlockDev => 'b',
        InodeKind::CharDev => 'c',
        InodeKind::Fifo => 'p',
        InodeKind::Socket => 's',
    }
}

type SqfsMap = Listing<imgpipe_squashfs::raw::Inode>;

fn sqfs_list(s: Src<'_>, within: &[String]) -> Result<(SqfsMap, imgpipe_squashfs::Reader)> {
    use imgpipe_squashfs::raw::InodeData;
    let f = s.file.try_clone().map_err(io("reopening an image"))?;
    let r = imgpipe_squashfs::Reader::open_at(f, s.off, imgpipe_squashfs::Limits::default())
        .map_err(|e| layer_err(within, e))?;
    let mut map = BTreeMap::new();
    for e in r.walk().map_err(|e| layer_err(within, e))? {
        let i = &e.inode;
        let (size, link, rdev) = match &i.data {
            InodeData::File(f) => (f.file_size, None, None),
            InodeData::Symlink(t) => (0, Some(t.clone()), None),
            InodeData::Device(d) => (0, None, Some(imgpipe_squashfs::raw::decode_dev(*d))),
            _ => (0, None, None),
        };
        let kind = letter(i.kind);
        let meta = Meta {
            kind,
            mode: Some(u32::from(i.mode)),
            owner: Some(r.owner(i).map_err(|e| layer_err(within, e))?),
            mtime: Some(i64::from(i.mtime)),
            size,
            link,
            rdev,
            xattrs: r.xattrs(i).map_err(|e| layer_err(within, e))?,
            contiguous: None, // blocks are compressed: nothing nested is opened in place
        };
        let path = format!("/{}", String::from_utf8_lossy(&e.path));
        map.insert(path, (meta, e.inode));
    }
    Ok((map, r))
}

type ErofsMap = Listing<imgpipe_squashfs::erofs::ErofsInode>;

fn erofs_list(
    s: Src<'_>,
    within: &[String],
) -> Result<(ErofsMap, imgpipe_squashfs::erofs::ErofsReader)> {
    let f = s.file.try_clone().map_err(io("reopening an image"))?;
    let r = imgpipe_squashfs::erofs::ErofsReader::open_at(
        f,
        s.off,
        imgpipe_squashfs::Limits::default(),
    )
    .map_err(|e| layer_err(within, e))?;
    let mut map = BTreeMap::new();
    for e in r.walk().map_err(|e| layer_err(within, e))? {
        let i = &e.inode;
        let kind = letter(i.kind);
        let link = if kind == 'l' {
            Some(r.read_link(i).map_err(|e| layer_err(within, e))?)
        } else {
            None
        };
        let meta = Meta {
            kind,
            mode: Some(u32::from(i.mode)),
            owner: Some((i.uid, i.gid)),
            mtime: i64::try_from(i.mtime).ok(),
            size: if kind == '-' { i.size } else { 0 },
            link,
            rdev: i.device,
            xattrs: r.xattrs(i).map_err(|e| layer_err(within, e))?,
            // Uncompressed data is often contiguous, but not always: not opened in place.
            contiguous: None,
        };
        map.insert(
            format!("/{}", String::from_utf8_lossy(&e.path)),
            (meta, e.inode),
        );
    }
    Ok((map, r))
}

const MAX_FAT_ENTRIES: usize = 1 << 20;
const MAX_FAT_DEPTH: usize = 64;

type FatReader = imgpipe_gptpart::FatVolume<imgpipe_gptpart::Window<File>>;

fn fat_list(
    s: Src<'_>,
    within: &[String],
) -> Result<(Listing<imgpipe_gptpart::FatEntry>, FatReader)> {
    let mut r = imgpipe_gptpart::FatVolume::open(s.window()?).map_err(|e| layer_err(within, e))?;
    let mut map = BTreeMap::new();
    let mut stack: Vec<(String, Vec<imgpipe_gptpart::FatEntry>)> =
        vec![(String::new(), r.root().map_err(|e| layer_err(within, e))?)];
    while let Some((dir, entries)) = stack.pop() {
        for e in entries {
            if e.name == "." || e.name == ".." {
                continue;
            }
            let path = format!("{dir}/{}", e.name);
            // A crafted volume can make a directory its own descendant.
            if map.len() >= MAX_FAT_ENTRIES || path.matches('/').count() > MAX_FAT_DEPTH {
                return Err(layer_err(
                    within,
                    "more entries or deeper than a FAT volume holds",
                ));
            }
            if e.is_dir {
                let children = r.read_dir(&e).map_err(|err| layer_err(within, err))?;
                stack.push((path.clone(), children));
            }
            let meta = Meta {
                kind: if e.is_dir { 'd' } else { '-' },
                mode: None,
                owner: None,
                mtime: e.modified.map(|t| t as i64),
                size: if e.is_dir { 0 } else { u64::from(e.size) },
                link: None,
                rdev: None,
                xattrs: Vec::new(),
                contiguous: None,
            };
            map.insert(path, (meta, e));
        }
    }
    Ok((map, r))
}
