//! Divergence diagnosis: which files inside which nested filesystem differ between two builds.
//!
//! [`diagnose_files`] recognises the outer image (ISO9660, GPT disk, squashfs, EROFS, FAT), walks
//! both sides through their readers' [`FsRead`] and compares the shared [`Entry`]s one by one:
//! presence, type, and wherever the format holds them ([`FsRead::holds`]) mode, owner, mtime,
//! link target, device numbers, xattrs, then content (SHA-256, streamed). A differing file or partition
//! that is itself a filesystem stored contiguously (the squashfs inside a live ISO, the ESP
//! or root partition of a disk, an ISO inside a partition) is opened in place, at its offset
//! inside the outer file, and compared the same way, down to [`NestedOptions::max_depth`].
//!
//! Memory is bounded by the number of entries of one filesystem (their metadata, never
//! their content); nothing is extracted to disk. Every reader is the format crate's hardened
//! one, so a hostile image is an error for that layer, reported with the layer's name.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Write;

use imgpipe_fstree::{Entry, FileType, FsRead, Holds, ReadAt, Slice, Window};
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
    /// The range as a positioned-read source.
    fn slice(&self) -> Slice<&'a File> {
        Slice::new(self.file, self.off, self.len)
    }

    /// The range as a stream of its own, for the readers written over `Read + Seek`.
    fn window(&self) -> Result<Window<File>> {
        let f = self.file.try_clone().map_err(io("reopening an image"))?;
        Ok(Window::new(f, self.off, self.len))
    }

    fn head(&self, n: u64) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; n.min(self.len) as usize];
        self.slice()
            .read_exact_at(&mut buf, 0)
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
        let slice = self.slice();
        let mut h = Sha256::new();
        let mut buf = vec![0u8; self.len.min(1 << 20) as usize];
        let mut at = 0u64;
        while at < self.len {
            let n = (self.len - at).min(buf.len() as u64) as usize;
            let chunk = buf.get_mut(..n).unwrap_or_default();
            slice
                .read_exact_at(chunk, at)
                .map_err(io("hashing a range"))?;
            h.update(&*chunk);
            at += n as u64;
        }
        Ok(h.finalize().into())
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

struct Walker<'o> {
    opts: NestedOptions,
    out: &'o mut NestedDiff,
}

/// Compares two image files at file level, descending into nested filesystems. `a` and `b`
/// are the two builds; see the [module docs](self).
pub fn diagnose_files(a: &File, b: &File, opts: NestedOptions) -> Result<NestedDiff> {
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

/// One filesystem's entries by display path (`/a/b`), with the reader's node for each.
type Listing<N> = BTreeMap<String, (Entry, N)>;

fn listing<R: FsRead>(r: &R, within: &[String]) -> Result<Listing<R::Node>> {
    let walked = r.walk().map_err(|e| layer_err(within, e))?;
    Ok(walked
        .into_iter()
        .map(|(e, n)| (e.display_path(), (e, n)))
        .collect())
}

/// Where a file's content lies in one piece, uncompressed, in its filesystem's bytes.
fn contiguous<R: FsRead>(
    r: &R,
    node: &R::Node,
    size: u64,
    within: &[String],
) -> Result<Option<u64>> {
    let extents = r.extents(node).map_err(|e| layer_err(within, e))?;
    Ok(match extents.as_deref() {
        Some([x]) if !x.compressed && x.file_offset == 0 && x.len == size => Some(x.image_offset),
        _ => None,
    })
}

/// The facts both sides hold.
fn both(a: Holds, b: Holds) -> Holds {
    Holds {
        mode: a.mode && b.mode,
        owner: a.owner && b.owner,
        mtime: a.mtime && b.mtime,
        mtime_nsec: a.mtime_nsec && b.mtime_nsec,
        xattrs: a.xattrs && b.xattrs,
        special_files: a.special_files && b.special_files,
        hard_links: a.hard_links && b.hard_links,
    }
}

impl Walker<'_> {
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
        let w = &within;
        match kind {
            Kind::Gpt => self.compare_gpt(a, b, w),
            Kind::Iso => {
                let open = |s: Src<'_>| {
                    imgpipe_isofs::Reader::open(s.window()?).map_err(|e| layer_err(w, e))
                };
                self.compare_fs(&open(a)?, &open(b)?, a, b, w)
            }
            Kind::Squashfs => {
                let open = |s: Src<'_>| {
                    let f = s.file.try_clone().map_err(io("reopening an image"))?;
                    imgpipe_squashfs::Reader::open_at(f, s.off, imgpipe_squashfs::Limits::default())
                        .map(SquashfsFs)
                        .map_err(|e| layer_err(w, e))
                };
                self.compare_fs(&open(a)?, &open(b)?, a, b, w)
            }
            Kind::Erofs => {
                let open = |s: Src<'_>| {
                    let f = s.file.try_clone().map_err(io("reopening an image"))?;
                    imgpipe_squashfs::erofs::ErofsReader::open_at(
                        f,
                        s.off,
                        imgpipe_squashfs::Limits::default(),
                    )
                    .map(ErofsFs)
                    .map_err(|e| layer_err(w, e))
                };
                self.compare_fs(&open(a)?, &open(b)?, a, b, w)
            }
            Kind::Fat => {
                let open = |s: Src<'_>| {
                    imgpipe_gptpart::FatVolume::open(s.window()?).map_err(|e| layer_err(w, e))
                };
                self.compare_fs(&open(a)?, &open(b)?, a, b, w)
            }
        }
    }

    /// Compares two filesystems of one format entry by entry, through [`FsRead`].
    fn compare_fs<R: FsRead>(
        &mut self,
        ra: &R,
        rb: &R,
        a: Src<'_>,
        b: Src<'_>,
        within: &[String],
    ) -> Result<()> {
        let (ma, mb) = (listing(ra, within)?, listing(rb, within)?);
        let held = both(ra.holds(), rb.holds());
        let paths: BTreeSet<&String> = ma.keys().chain(mb.keys()).collect();
        for path in paths {
            let ((x, nx), (y, ny)) = match (ma.get(path), mb.get(path)) {
                (Some(x), Some(y)) => (x, y),
                (Some(_), None) => {
                    self.push(within, path, "only in A".into());
                    continue;
                }
                (None, _) => {
                    self.push(within, path, "only in B".into());
                    continue;
                }
            };
            if x.file_type != y.file_type {
                self.push(
                    within,
                    path,
                    format!("type {} -> {}", x.file_type.letter(), y.file_type.letter()),
                );
                continue;
            }
            let (mx, my) = (&x.meta, &y.meta);
            if held.mode && mx.mode != my.mode {
                self.push(
                    within,
                    path,
                    format!("mode {:04o} -> {:04o}", mx.mode, my.mode),
                );
            }
            if held.owner && (mx.uid, mx.gid) != (my.uid, my.gid) {
                self.push(
                    within,
                    path,
                    format!("owner {}:{} -> {}:{}", mx.uid, mx.gid, my.uid, my.gid),
                );
            }
            if held.mtime && mx.mtime != my.mtime {
                self.push(within, path, format!("mtime {} -> {}", mx.mtime, my.mtime));
            }
            if x.target != y.target {
                self.push(within, path, "link target".into());
            }
            if x.rdev != y.rdev {
                self.push(within, path, "device numbers".into());
            }
            if held.xattrs && mx.xattrs != my.xattrs {
                self.push(within, path, "xattrs".into());
            }
            if x.file_type != FileType::File {
                continue;
            }
            let same = x.size == y.size
                && sha256_of(within, |h| ra.read_content(nx, h))?
                    == sha256_of(within, |h| rb.read_content(ny, h))?;
            if same {
                continue;
            }
            let nested = if within.len() < self.opts.max_depth {
                match (
                    contiguous(ra, nx, x.size, within)?,
                    contiguous(rb, ny, y.size, within)?,
                ) {
                    (Some(oa), Some(ob)) => match (a.sub(oa, x.size), b.sub(ob, y.size)) {
                        (Some(na), Some(nb)) => match (na.kind()?, nb.kind()?) {
                            (Some(ka), Some(kb)) if ka == kb => Some((ka, na, nb)),
                            _ => None,
                        },
                        _ => None,
                    },
                    _ => None,
                }
            } else {
                None
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
            if la == lb && na.digest()? == nb.digest()? {
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

/// The squashfs reader seen through [`FsRead`] (until `imgpipe-squashfs` implements it).
struct SquashfsFs(imgpipe_squashfs::Reader);

fn file_type(k: imgpipe_squashfs::raw::InodeKind) -> FileType {
    use imgpipe_squashfs::raw::InodeKind as K;
    match k {
        K::Dir => FileType::Dir,
        K::File => FileType::File,
        K::Symlink => FileType::Symlink,
        K::BlockDev => FileType::Block,
        K::CharDev => FileType::Char,
        K::Fifo => FileType::Fifo,
        K::Socket => FileType::Socket,
    }
}

impl FsRead for SquashfsFs {
    type Node = imgpipe_squashfs::raw::Inode;
    type Error = imgpipe_squashfs::Error;

    fn holds(&self) -> Holds {
        Holds {
            mtime_nsec: false,
            ..Holds::POSIX
        }
    }

    fn walk(&self) -> std::result::Result<Vec<(Entry, Self::Node)>, Self::Error> {
        use imgpipe_squashfs::raw::InodeData;
        let r = &self.0;
        let mut out = Vec::new();
        for w in r.walk()? {
            let i = w.inode;
            let (uid, gid) = r.owner(&i)?;
            let mut meta = imgpipe_fstree::Metadata::new(u32::from(i.mode), i64::from(i.mtime));
            (meta.uid, meta.gid) = (uid, gid);
            meta.xattrs = r.xattrs(&i)?;
            let mut e = Entry::new(w.path, file_type(i.kind), meta);
            match &i.data {
                InodeData::File(f) => e.size = f.file_size,
                InodeData::Symlink(t) => {
                    e.size = t.len() as u64;
                    e.target = Some(t.clone());
                }
                InodeData::Device(d) => e.rdev = Some(imgpipe_squashfs::raw::decode_dev(*d)),
                InodeData::Dir(_) | InodeData::Ipc => {}
            }
            out.push((e, i));
        }
        Ok(out)
    }

    fn read_content(
        &self,
        node: &Self::Node,
        out: &mut dyn Write,
    ) -> std::result::Result<u64, Self::Error> {
        self.0.read_file(node, out)
    }
}

/// The EROFS reader seen through [`FsRead`] (until `imgpipe-squashfs` implements it).
struct ErofsFs(imgpipe_squashfs::erofs::ErofsReader);

impl FsRead for ErofsFs {
    type Node = imgpipe_squashfs::erofs::ErofsInode;
    type Error = imgpipe_squashfs::Error;

    fn holds(&self) -> Holds {
        Holds {
            mtime_nsec: false,
            ..Holds::POSIX
        }
    }

    fn walk(&self) -> std::result::Result<Vec<(Entry, Self::Node)>, Self::Error> {
        use imgpipe_squashfs::raw::InodeKind;
        let r = &self.0;
        let mut out = Vec::new();
        for w in r.walk()? {
            let i = w.inode;
            let mtime = i64::try_from(i.mtime).unwrap_or(i64::MAX);
            let mut meta = imgpipe_fstree::Metadata::new(u32::from(i.mode), mtime);
            (meta.uid, meta.gid) = (i.uid, i.gid);
            meta.xattrs = r.xattrs(&i)?;
            let mut e = Entry::new(w.path, file_type(i.kind), meta);
            match i.kind {
                InodeKind::File => e.size = i.size,
                InodeKind::Symlink => {
                    let t = r.read_link(&i)?;
                    e.size = t.len() as u64;
                    e.target = Some(t);
                }
                InodeKind::CharDev | InodeKind::BlockDev => e.rdev = i.device,
                _ => {}
            }
            out.push((e, i));
        }
        Ok(out)
    }

    fn read_content(
        &self,
        node: &Self::Node,
        out: &mut dyn Write,
    ) -> std::result::Result<u64, Self::Error> {
        self.0.read_file(node, out)
    }
}
