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
//! A pair of LUKS2 volumes (the image itself, an encrypted partition or file) is a layer too
//! when [`Passphrases`] are given ([`crate::ImageDiffOptions::passphrases`]): both are
//! unlocked and their payloads opened in place as `payload (FORMAT)`, decrypted sector by
//! sector as they are read ([`imgpipe_luks::Plaintext`]), never written anywhere. Two
//! volumes with one volume key and geometry at one place (one seed) have equal plaintext
//! where their ciphertext is equal (XTS works per sector), so the byte diff's ranges still
//! say what need not be read inside. Without passphrases a differing payload is reported
//! with [`ENCRYPTED_HINT`].
//!
//! Memory is bounded by the number of entries of one filesystem (their metadata, never
//! their content); nothing is extracted to disk. Every reader is the format crate's hardened
//! one, so a hostile image is an error for that layer, reported with the layer's name.
//!
//! Work is bounded by the images, not only by the depth: a region equal to or containing
//! one of the filesystems it lies in is never opened (an ISO whose files are the image
//! itself), a pair of regions is compared once however many entries point at it, content
//! at one place is hashed once, and the bytes hashed stop at
//! [`NestedOptions::max_work_ratio`] times the two images' sizes.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Write;
use std::sync::Arc;

use imgpipe_fstree::{Cursor, Entry, FileType, FsRead, Holds, ReadAt, Slice};
use imgpipe_luks::{Luks2Header, Plaintext};
use serde::Serialize;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::format::{Format, HEAD_LEN, detect};

/// How deep and how much [`diagnose_files`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct NestedOptions {
    /// Most filesystems nested inside each other that are opened (default 4).
    pub max_depth: usize,
    /// Most differences reported (the rest are counted; default 1000).
    pub max_differences: usize,
    /// Most bytes hashed, as a multiple of the two images' sizes together (default 64; at
    /// least [`MIN_WORK_BUDGET`]): beyond it the diagnosis stops with
    /// [`Error::LimitExceeded`].
    pub max_work_ratio: u64,
    /// Also report what the default ignores as noise, marked [`FileDifference::noise`]: where
    /// identical content is stored and sub-second mtimes (they depend on how and when a
    /// writer packed the tree, not on what it holds).
    pub strict: bool,
}

/// The largest file whose two versions are read into memory to say why they differ.
pub const REASON_MAX_FILE: u64 = 16 << 20;

/// The least work budget of a diagnosis, in bytes hashed, whatever the images' sizes.
pub const MIN_WORK_BUDGET: u64 = 1 << 30;

impl Default for NestedOptions {
    fn default() -> Self {
        Self {
            max_depth: 4,
            max_differences: 1000,
            max_work_ratio: 64,
            strict: false,
        }
    }
}

/// What a [`FileDifference`] is about (`kind` in the JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DiffKind {
    /// Same size, other bytes; `a` and `b` are the SHA-256 digests when they were computed.
    Content,
    /// Another size (so other content too); `a` and `b` are the sizes.
    Size,
    /// Permission bits; `a` and `b` are octal strings such as `"0644"`.
    Mode,
    /// Owner; `a` and `b` are `"uid:gid"`.
    Owner,
    /// Modification time; `a` and `b` are seconds since 1970.
    Mtime,
    /// Extended attributes; `a` and `b` are the attribute names.
    Xattr,
    /// A symbolic link's target; `a` and `b` are the targets.
    LinkTarget,
    /// A device's numbers; `a` and `b` are `"major:minor"`.
    Rdev,
    /// The entry's type; `a` and `b` are `ls -l`'s letters (`-`, `d`, `l`, `c`, `b`, `p`, `s`).
    Type,
    /// Only the first image has it.
    OnlyInA,
    /// Only the second image has it.
    OnlyInB,
    /// A GPT header or partition entry field (named in `what`); `a` and `b` its values.
    Partition,
    /// A nested filesystem whose files all agree: its own structures (superblock, tables,
    /// layout) differ.
    Structure,
    /// The entry could not be compared (a nested layer that does not read); `what` says why.
    Unreadable,
    /// Noise ([`NestedOptions::strict`] only): the same content stored at another place in
    /// the filesystem (files packed in another order); `a` and `b` are the byte offsets of
    /// its first extent.
    Placement,
    /// Noise ([`NestedOptions::strict`] only): the same mtime second, other nanoseconds;
    /// `a` and `b` are the nanoseconds.
    MtimeNsec,
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
    /// What differs.
    pub kind: DiffKind,
    /// The first image's value (see [`DiffKind`]; `null` when there is none to show).
    pub a: serde_json::Value,
    /// The second image's value.
    pub b: serde_json::Value,
    /// A difference the default comparison ignores as noise (reported with
    /// [`NestedOptions::strict`] only), e.g. where identical content is stored.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub noise: bool,
    /// Why the content differs, for the usual culprits (a gzip header, ELF sections, a
    /// `.pyc` header, archive member times, text lines): see [`crate::reason`]. Looked for in
    /// files of at most [`REASON_MAX_FILE`] bytes on both sides.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<crate::reason::Reason>,
    /// The same in words, e.g. `content (1234 vs 1240 bytes)`, `mode 0644 -> 0755`, `only in A`.
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
    /// Bytes read to compare content: hashed (decompressed where stored compressed), or
    /// stored bytes compared as they lie in the images. What the byte diff already proved
    /// identical is not read again.
    pub bytes_read: u64,
}

/// The passphrases that open the LUKS2 volumes a comparison meets, one for the volumes of
/// each image, and the [`imgpipe_luks::Limits`] their headers are read and unlocked with
/// (the key-derivation work one unlock may do).
pub struct Passphrases {
    a: Zeroizing<Vec<u8>>,
    b: Zeroizing<Vec<u8>>,
    /// The limits of reading and unlocking each header.
    pub limits: imgpipe_luks::Limits,
}

impl Passphrases {
    /// One passphrase for the volumes of both images.
    pub fn same(passphrase: Vec<u8>) -> Self {
        Self::new(passphrase.clone(), passphrase)
    }

    /// A passphrase for the first image's volumes and one for the second's.
    pub fn new(a: Vec<u8>, b: Vec<u8>) -> Self {
        Self {
            a: Zeroizing::new(a),
            b: Zeroizing::new(b),
            limits: imgpipe_luks::Limits::default(),
        }
    }

    /// With other limits (`max_unlock_work` is what `--max-kdf-work` sets).
    pub fn with_limits(mut self, limits: imgpipe_luks::Limits) -> Self {
        self.limits = limits;
        self
    }

    fn of(&self, second: bool) -> &[u8] {
        if second { &self.b } else { &self.a }
    }
}

impl std::fmt::Debug for Passphrases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passphrases")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// What a layer pair without passphrases says about an encrypted payload.
pub const ENCRYPTED_HINT: &str =
    "encrypted (LUKS2): give --passphrase-file to compare the contents";

/// Where a layer's bytes come from: an image file, or a LUKS2 payload decrypted as it is read
/// (from a range of another source).
#[derive(Debug)]
enum Data {
    File(File),
    Plain(Plaintext<Slice<Base>>),
}

/// A source of layers and the number of its address space: offsets (of the byte diff's
/// ranges, of content already hashed, of regions already open) compare only within one.
/// Space 0 is the first image, 1 the second, then two per pair of payloads decrypted.
#[derive(Debug, Clone)]
struct Base {
    space: u32,
    data: Arc<Data>,
}

impl ReadAt for Base {
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> std::io::Result<()> {
        match &*self.data {
            Data::File(f) => ReadAt::read_exact_at(f, buf, pos),
            Data::Plain(p) => p.read_exact_at(buf, pos),
        }
    }
    fn len(&self) -> std::io::Result<u64> {
        match &*self.data {
            Data::File(f) => ReadAt::len(f),
            Data::Plain(p) => p.len(),
        }
    }
}

/// A byte range of a source ([`Base`]) holding one filesystem.
#[derive(Debug, Clone, Copy)]
struct Src<'a> {
    base: &'a Base,
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
    fn slice(&self) -> Slice<&'a Base> {
        Slice::new(self.base, self.off, self.len)
    }

    /// The range as a stream of its own, for the readers written over `Read + Seek`.
    fn stream(&self) -> Cursor<Slice<Base>> {
        Cursor::new(Slice::new(self.base.clone(), self.off, self.len))
    }

    /// The address space of its offsets.
    fn space(&self) -> u32 {
        self.base.space
    }

    fn head(&self, n: u64) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; n.min(self.len) as usize];
        self.slice()
            .read_exact_at(&mut buf, 0)
            .map_err(io("reading an image head"))?;
        Ok(buf)
    }

    /// The filesystem, disk or LUKS2 volume the range holds, by the one detector ([`detect`]).
    fn kind(&self) -> Result<Option<Format>> {
        let h = self.head(HEAD_LEN)?;
        Ok(detect(&h).filter(|f| f.is_filesystem() || *f == Format::Luks2))
    }

    fn sub(&self, off: u64, len: u64) -> Option<Src<'a>> {
        let end = off.checked_add(len)?;
        (end <= self.len).then_some(Src {
            base: self.base,
            off: self.off + off,
            len,
        })
    }

    fn digest(&self, left: &mut u64) -> Result<Option<[u8; 32]>> {
        if self.len > *left {
            return Ok(None);
        }
        *left -= self.len;
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
        Ok(Some(h.finalize().into()))
    }
}

/// A SHA-256 sink that refuses to hash more than `left` bytes.
struct HashWriter {
    h: Sha256,
    left: u64,
    over: bool,
}

impl Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = buf.len() as u64;
        if n > self.left {
            self.over = true;
            return Err(std::io::Error::other("diff work budget exhausted"));
        }
        self.left -= n;
        self.h.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A `Vec` sink that refuses to take more than `left` bytes (what an entry claims).
struct Capped<'b> {
    buf: &'b mut Vec<u8>,
    left: &'b mut u64,
}

impl Write for Capped<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = data.len() as u64;
        if n > *self.left {
            return Err(std::io::Error::other("more content than the entry's size"));
        }
        *self.left -= n;
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Where content is held, so it is hashed once: (side B?, address space, absolute offset,
/// length) of a file stored in one piece, or (side B?, address space, its filesystem's
/// offset, hard-link identity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Held {
    Place(bool, u32, u64, u64),
    Link(bool, u32, u64, u64),
}

/// A pair of regions, one of each image: address space, absolute offset and length in A,
/// then in B.
type Region = (u32, u64, u64, u32, u64, u64);

fn region(a: Src<'_>, b: Src<'_>) -> Region {
    (a.space(), a.off, a.len, b.space(), b.off, b.len)
}

/// A difference before it is placed ([`Walker::push`]).
struct Found {
    kind: DiffKind,
    a: serde_json::Value,
    b: serde_json::Value,
    noise: bool,
    reason: Option<crate::reason::Reason>,
    what: String,
}

impl Found {
    fn new(kind: DiffKind, what: impl Into<String>) -> Self {
        Self {
            kind,
            a: serde_json::Value::Null,
            b: serde_json::Value::Null,
            noise: false,
            reason: None,
            what: what.into(),
        }
    }

    fn values(mut self, a: impl Into<serde_json::Value>, b: impl Into<serde_json::Value>) -> Self {
        self.a = a.into();
        self.b = b.into();
        self
    }

    fn noise(mut self) -> Self {
        self.noise = true;
        self
    }
}

fn hex(d: &[u8; 32]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The `content`/`size` difference of two files of `sa` and `sb` bytes (`digests` when the
/// content was hashed), with `why` added to the words.
fn content(sa: u64, sb: u64, digests: Option<([u8; 32], [u8; 32])>, why: Option<&str>) -> Found {
    let mut what = format!("content ({sa} vs {sb} bytes)");
    if let Some(w) = why {
        what.push_str(": ");
        what.push_str(w);
    }
    match (sa == sb, digests) {
        (false, _) => Found::new(DiffKind::Size, what).values(sa, sb),
        (true, Some((da, db))) => Found::new(DiffKind::Content, what).values(hex(&da), hex(&db)),
        (true, None) => Found::new(DiffKind::Content, what),
    }
}

struct Walker<'o> {
    opts: NestedOptions,
    out: &'o mut NestedDiff,
    /// Where the images may differ (from the byte diff): content elsewhere at the same
    /// offset in both is identical and not read.
    differing: Option<&'o crate::diff::Differing>,
    /// The same for pairs of decrypted payloads (by their address spaces) whose ciphertext
    /// sectors correspond one to one (one volume key, one geometry, one place).
    plain_differing: BTreeMap<(u32, u32), crate::diff::Differing>,
    /// What opens LUKS2 volumes, if anything.
    keys: Option<&'o Passphrases>,
    /// The next address space for a decrypted payload.
    next_space: u32,
    /// The filesystems open around the one being compared, outermost first.
    ancestors: Vec<Region>,
    /// Region pairs already compared, with the layer that compared them.
    compared: BTreeMap<Region, String>,
    /// Content digests of files already hashed.
    digests: BTreeMap<Held, [u8; 32]>,
    /// Stored pieces already compared, by address space and absolute offset in A and in B
    /// and stored length: a squashfs fragment block shared by many files' tails is read once.
    stored_equal: BTreeMap<(u32, u64, u32, u64, u64), bool>,
    /// Bytes that may still be hashed, and the budget they come from.
    work_left: u64,
    budget: u64,
    /// Where both versions of each small differing file go, if anywhere.
    sink: Option<ContentSink<'o>>,
}

/// Compares two image files at file level, descending into nested filesystems. `a` and `b`
/// are the two builds.
///
/// Both sides are walked through their readers' [`imgpipe_fstree::FsRead`]; entries are
/// compared on the facts both hold (presence, type, mode, owner, mtime, link target, device
/// numbers, xattrs), then content by SHA-256. A differing file or partition that holds a
/// filesystem in one uncompressed piece (the squashfs inside a live ISO, a partition of a
/// disk) is opened in place and compared the same way, down to
/// [`NestedOptions::max_depth`]. Memory is bounded by the entries of one filesystem;
/// nothing is extracted.
pub fn diagnose_files(a: &File, b: &File, opts: NestedOptions) -> Result<NestedDiff> {
    diagnose(a, b, opts, None, None, None)
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
    diagnose(a, b, opts, Some(differing), None, None)
}

/// What [`diagnose_files_with`] hands over for a file whose content differs and that is at
/// most [`REASON_MAX_FILE`] bytes on both sides: the difference (as reported) and both
/// versions.
pub type ContentSink<'s> = &'s mut dyn FnMut(&FileDifference, &[u8], &[u8]);

/// [`diagnose_files_within`], handing both versions of each differing file of at most
/// [`REASON_MAX_FILE`] bytes to `sink` (for `diff --report-dir`).
pub fn diagnose_files_with(
    a: &File,
    b: &File,
    opts: NestedOptions,
    differing: Option<&crate::diff::Differing>,
    sink: ContentSink<'_>,
) -> Result<NestedDiff> {
    diagnose(a, b, opts, differing, Some(sink), None)
}

/// The comparison behind every `diagnose_files*` and [`crate::diff_images`]: `keys` open the
/// LUKS2 volumes it meets (without them, an encrypted payload is reported as such, not
/// opened).
pub(crate) fn diagnose(
    a: &File,
    b: &File,
    opts: NestedOptions,
    differing: Option<&crate::diff::Differing>,
    mut sink: Option<ContentSink<'_>>,
    keys: Option<&Passphrases>,
) -> Result<NestedDiff> {
    let len = |f: &File| f.metadata().map(|m| m.len()).map_err(io("reading a size"));
    let base = |f: &File, space: u32| -> Result<Base> {
        let f = f.try_clone().map_err(io("reopening an image"))?;
        Ok(Base {
            space,
            data: Arc::new(Data::File(f)),
        })
    };
    let (ba, bb) = (base(a, 0)?, base(b, 1)?);
    let (sa, sb) = (
        Src {
            base: &ba,
            off: 0,
            len: len(a)?,
        },
        Src {
            base: &bb,
            off: 0,
            len: len(b)?,
        },
    );
    let mut out = NestedDiff::default();
    let budget = sa
        .len
        .saturating_add(sb.len)
        .saturating_mul(opts.max_work_ratio)
        .max(MIN_WORK_BUDGET);
    let mut w = Walker {
        opts,
        out: &mut out,
        differing,
        plain_differing: BTreeMap::new(),
        keys,
        next_space: 2,
        ancestors: vec![region(sa, sb)],
        compared: BTreeMap::new(),
        digests: BTreeMap::new(),
        stored_equal: BTreeMap::new(),
        work_left: budget,
        budget,
        sink: sink.as_mut().map(|s| &mut **s as ContentSink<'_>),
    };
    let r = match (sa.kind()?, sb.kind()?) {
        (Some(ka), Some(kb)) if ka == kb => w.compare(ka, sa, sb, &[]),
        // A root encrypted in one image only: its payload against the other's tree.
        (Some(ka), Some(kb)) if one_encrypted(ka, kb) => {
            w.descend_formats(ka, kb, sa, sb, "/", "", &[])
        }
        (ka, kb) => {
            let (na, nb) = (
                ka.map_or("unknown", Format::name),
                kb.map_or("unknown", Format::name),
            );
            let f = Found::new(DiffKind::Type, format!("format {na} -> {nb}"));
            w.push(&[], "/", f.values(na, nb));
            // Two formats of one kind of tree (a squashfs root and its EROFS repack): their
            // files are compared too.
            match (ka, kb) {
                (Some(ka), Some(kb)) if trees_comparable(ka, kb) => {
                    let within = [format!("{na} -> {nb}")];
                    w.out.compared.push(layer(&within));
                    w.compare_trees(ka, kb, sa, sb, &within)
                }
                _ => Ok(()),
            }
        }
    };
    w.out.bytes_read = budget - w.work_left;
    r?;
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

/// Where a file's content starts in its filesystem's bytes, when the reader says.
fn first_offset<R: FsRead>(r: &R, node: &R::Node, within: &[String]) -> Result<Option<u64>> {
    let e = r.extents(node).map_err(|e| layer_err(within, e))?;
    Ok(e.and_then(|e| e.first().map(|x| x.image_offset)))
}

/// Whether two formats hold trees [`Walker::compare_trees`] compares: the same format, or
/// two of ISO9660, squashfs, EROFS and FAT.
fn trees_comparable(ka: Format, kb: Format) -> bool {
    ka == kb || (ka.holds_tree() && kb.holds_tree())
}

/// One side's filesystem, opened by its detected format.
enum AnyFs {
    Iso(Box<imgpipe_isofs::Reader<Cursor<Slice<Base>>>>),
    Squashfs(Box<imgpipe_squashfs::Reader>),
    Erofs(Box<imgpipe_squashfs::erofs::ErofsReader>),
    Fat(Box<imgpipe_gptpart::FatVolume<Cursor<Slice<Base>>>>),
}

impl AnyFs {
    fn open(k: Format, s: Src<'_>, w: &[String]) -> Result<Self> {
        let limits = imgpipe_squashfs::Limits::default;
        Ok(match k {
            Format::Iso9660 => Self::Iso(Box::new(
                imgpipe_isofs::Reader::open(s.stream()).map_err(|e| layer_err(w, e))?,
            )),
            Format::Squashfs => Self::Squashfs(Box::new(
                imgpipe_squashfs::Reader::open_at(s.base.clone(), s.off, limits())
                    .map_err(|e| layer_err(w, e))?,
            )),
            Format::Erofs => Self::Erofs(Box::new(
                imgpipe_squashfs::erofs::ErofsReader::open_at(s.base.clone(), s.off, limits())
                    .map_err(|e| layer_err(w, e))?,
            )),
            Format::Fat => Self::Fat(Box::new(
                imgpipe_gptpart::FatVolume::open(s.stream()).map_err(|e| layer_err(w, e))?,
            )),
            other => return Err(layer_err(w, format!("{other} holds no file tree"))),
        })
    }
}

/// Where `e`'s content is held on side `b_side` of the filesystem `fs`: its place when
/// stored in one piece at `contiguous`, else its hard-link identity.
fn held_at(b_side: bool, fs: Src<'_>, contiguous: Option<u64>, e: &Entry) -> Option<Held> {
    let (space, fs_off) = (fs.space(), fs.off);
    match (contiguous, e.link) {
        (Some(o), _) => Some(Held::Place(b_side, space, fs_off.saturating_add(o), e.size)),
        (None, Some(l)) => Some(Held::Link(b_side, space, fs_off, l)),
        (None, None) => None,
    }
}

/// The ciphertext of a LUKS2 volume's payload (its crypt segment) in the volume `vol`, and
/// its offset there, from the header alone (no key needed).
/// The LUKS2 header of `s`, read within the limits that come with the passphrases.
fn luks_header(s: Src<'_>, keys: Option<&Passphrases>, within: &[String]) -> Result<Luks2Header> {
    let limits = keys.map_or_else(imgpipe_luks::Limits::default, |k| k.limits);
    Luks2Header::read_with_limits(&mut s.stream(), limits).map_err(|e| layer_err(within, e))
}

/// Unlocks the volume `s` (the second image's when `second`) with that image's passphrase.
fn luks_unlock(
    s: Src<'_>,
    h: &Luks2Header,
    keys: &Passphrases,
    second: bool,
    within: &[String],
) -> Result<(imgpipe_luks::Unlocked, imgpipe_luks::DataSegment)> {
    match h.unlock_segment(&mut s.stream(), keys.of(second)) {
        Ok(Some(x)) => Ok(x),
        Ok(None) => Err(Error::WrongPassphrase {
            second,
            layer: layer(within),
        }),
        Err(e) => Err(layer_err(within, e)),
    }
}

/// The payload of the volume `s` as a source of its own (address space `space`), decrypted
/// as it is read.
fn luks_plain(s: Src<'_>, seg: imgpipe_luks::DataSegment, space: u32) -> Result<Base> {
    let dev = Slice::new(s.base.clone(), s.off, s.len);
    let p = Plaintext::new(dev, seg).map_err(io("sizing a LUKS2 payload"))?;
    Ok(Base {
        space,
        data: Arc::new(Data::Plain(p)),
    })
}

/// One of two formats a LUKS2 volume and the other a filesystem holding a tree (a root
/// encrypted by one build and not by the other).
fn one_encrypted(ka: Format, kb: Format) -> bool {
    (ka == Format::Luks2 && kb.holds_tree()) || (kb == Format::Luks2 && ka.holds_tree())
}

fn payload<'a>(h: &Luks2Header, vol: Src<'a>) -> Option<(u64, Src<'a>)> {
    let seg = h.metadata.segments.values().find(|s| s.kind == "crypt")?;
    let avail = vol.len.checked_sub(seg.offset)?;
    let len = match seg.size {
        imgpipe_luks::raw::SegmentSize::Dynamic => avail,
        imgpipe_luks::raw::SegmentSize::Bytes(n) => n.min(avail),
    };
    Some((seg.offset, vol.sub(seg.offset, len)?))
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
    /// SHA-256 of what `write` writes, counted against the work budget; its error is
    /// reported for the layer `within`. `at` says where the content is held, so that it is
    /// hashed once however many entries hold it.
    fn sha256_of<T, E: std::fmt::Display>(
        &mut self,
        within: &[String],
        at: Option<Held>,
        write: impl FnOnce(&mut HashWriter) -> std::result::Result<T, E>,
    ) -> Result<[u8; 32]> {
        if let Some(d) = at.and_then(|k| self.digests.get(&k)) {
            return Ok(*d);
        }
        let mut h = HashWriter {
            h: Sha256::new(),
            left: self.work_left,
            over: false,
        };
        let r = write(&mut h);
        self.work_left = h.left;
        if h.over {
            return Err(self.over_budget());
        }
        r.map_err(|e| layer_err(within, e))?;
        let d: [u8; 32] = h.h.finalize().into();
        if let Some(k) = at {
            self.digests.insert(k, d);
        }
        Ok(d)
    }

    fn over_budget(&self) -> Error {
        Error::LimitExceeded {
            what: "bytes hashed by the file comparison (max_work_ratio x the images' sizes)",
            limit: self.budget,
        }
    }

    /// Why the regions `na`/`nb` must not be opened as nested filesystems, if they must not:
    /// one equals or contains a filesystem it lies in, or the pair was compared already.
    fn refuse_nested(&self, na: Src<'_>, nb: Src<'_>) -> Option<String> {
        let contains = |off: u64, len: u64, o: u64, l: u64| {
            off <= o && off.saturating_add(len) >= o.saturating_add(l)
        };
        if self.ancestors.iter().any(|&(sa, ao, al, sb, bo, bl)| {
            (sa == na.space() && contains(na.off, na.len, ao, al))
                || (sb == nb.space() && contains(nb.off, nb.len, bo, bl))
        }) {
            return Some("holds a filesystem it lies in; not opened".into());
        }
        self.compared
            .get(&region(na, nb))
            .map(|first| format!("the same bytes as {first}, compared there"))
    }

    /// Whether `len` bytes at `oa` in `a` and `ob` in `b` are known identical.
    fn unchanged(&self, a: Src<'_>, oa: u64, b: Src<'_>, ob: u64, len: u64) -> bool {
        let (Some(x), Some(y)) = (a.off.checked_add(oa), b.off.checked_add(ob)) else {
            return false;
        };
        self.differing_for(a, b)
            .is_some_and(|d| d.unchanged(x, y, len))
    }

    /// Whether `len` bytes at `oa` in `a` and `ob` in `b` are known to differ.
    fn changed(&self, a: Src<'_>, oa: u64, b: Src<'_>, ob: u64, len: u64) -> bool {
        let (Some(x), Some(y)) = (a.off.checked_add(oa), b.off.checked_add(ob)) else {
            return false;
        };
        self.differing_for(a, b)
            .is_some_and(|d| d.changed(x, y, len))
    }

    /// Where the sources of `a` and `b` may differ, when that is known.
    fn differing_for(&self, a: Src<'_>, b: Src<'_>) -> Option<&crate::diff::Differing> {
        match (a.space(), b.space()) {
            (0, 1) => self.differing,
            pair => self.plain_differing.get(&pair),
        }
    }

    /// Why a pair of LUKS2 volumes is not opened: no passphrase was given.
    fn locked(&self, ka: Format, kb: Format) -> Option<String> {
        (ka == Format::Luks2 && kb == Format::Luks2 && self.keys.is_none())
            .then(|| ENCRYPTED_HINT.to_owned())
    }

    fn push(&mut self, within: &[String], path: &str, d: Found) {
        if self.out.differences.len() >= self.opts.max_differences {
            self.out.omitted += 1;
            return;
        }
        self.out.differences.push(FileDifference {
            within: within.to_vec(),
            path: path.to_owned(),
            kind: d.kind,
            a: d.a,
            b: d.b,
            noise: d.noise,
            reason: d.reason,
            what: d.what,
        });
    }

    fn compare(&mut self, kind: Format, a: Src<'_>, b: Src<'_>, outer: &[String]) -> Result<()> {
        let mut within = outer.to_vec();
        if within.is_empty() {
            within.push(kind.name().to_owned());
        }
        self.out.compared.push(layer(&within));
        let w = &within;
        match kind {
            Format::Gpt => self.compare_gpt(a, b, w),
            k if k.holds_tree() => self.compare_trees(k, k, a, b, w),
            Format::Luks2 => self.compare_luks(a, b, w),
            // `kind` only yields filesystems, disks and LUKS2 volumes.
            other => Err(layer_err(w, format!("{other} is not a filesystem"))),
        }
    }

    /// Compares the file trees of two filesystems of kinds `ka` and `kb` (the same, or two
    /// formats holding the same kind of tree: a squashfs root and its EROFS repack).
    fn compare_trees(
        &mut self,
        ka: Format,
        kb: Format,
        a: Src<'_>,
        b: Src<'_>,
        w: &[String],
    ) -> Result<()> {
        let fb = AnyFs::open(kb, b, w)?;
        match AnyFs::open(ka, a, w)? {
            AnyFs::Iso(r) => self.compare_with(r.as_ref(), &fb, a, b, w),
            AnyFs::Squashfs(r) => self.compare_with(r.as_ref(), &fb, a, b, w),
            AnyFs::Erofs(r) => self.compare_with(r.as_ref(), &fb, a, b, w),
            AnyFs::Fat(r) => self.compare_with(r.as_ref(), &fb, a, b, w),
        }
    }

    fn compare_with<RA: FsRead>(
        &mut self,
        ra: &RA,
        fb: &AnyFs,
        a: Src<'_>,
        b: Src<'_>,
        w: &[String],
    ) -> Result<()> {
        match fb {
            AnyFs::Iso(r) => self.compare_fs(ra, r.as_ref(), a, b, w),
            AnyFs::Squashfs(r) => self.compare_fs(ra, r.as_ref(), a, b, w),
            AnyFs::Erofs(r) => self.compare_fs(ra, r.as_ref(), a, b, w),
            AnyFs::Fat(r) => self.compare_fs(ra, r.as_ref(), a, b, w),
        }
    }

    /// Compares two filesystems entry by entry, through [`FsRead`].
    fn compare_fs<RA: FsRead, RB: FsRead>(
        &mut self,
        ra: &RA,
        rb: &RB,
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
                    self.push(within, path, Found::new(DiffKind::OnlyInA, "only in A"));
                    continue;
                }
                (None, _) => {
                    self.push(within, path, Found::new(DiffKind::OnlyInB, "only in B"));
                    continue;
                }
            };
            if x.file_type != y.file_type {
                let (ta, tb) = (x.file_type.letter(), y.file_type.letter());
                let f = Found::new(DiffKind::Type, format!("type {ta} -> {tb}"));
                self.push(within, path, f.values(ta.to_string(), tb.to_string()));
                continue;
            }
            let (mx, my) = (&x.meta, &y.meta);
            if held.mode && mx.mode != my.mode {
                let (ma, mb) = (format!("{:04o}", mx.mode), format!("{:04o}", my.mode));
                let f = Found::new(DiffKind::Mode, format!("mode {ma} -> {mb}"));
                self.push(within, path, f.values(ma, mb));
            }
            if held.owner && (mx.uid, mx.gid) != (my.uid, my.gid) {
                let (oa, ob) = (
                    format!("{}:{}", mx.uid, mx.gid),
                    format!("{}:{}", my.uid, my.gid),
                );
                let f = Found::new(DiffKind::Owner, format!("owner {oa} -> {ob}"));
                self.push(within, path, f.values(oa, ob));
            }
            if held.mtime && mx.mtime != my.mtime {
                let f = Found::new(
                    DiffKind::Mtime,
                    format!("mtime {} -> {}", mx.mtime, my.mtime),
                );
                self.push(within, path, f.values(mx.mtime, my.mtime));
            } else if self.opts.strict && held.mtime_nsec && mx.mtime_nsec != my.mtime_nsec {
                let what = format!(
                    "mtime nanoseconds {} -> {} (noise)",
                    mx.mtime_nsec, my.mtime_nsec
                );
                let f = Found::new(DiffKind::MtimeNsec, what);
                self.push(within, path, f.values(mx.mtime_nsec, my.mtime_nsec).noise());
            }
            if x.target != y.target {
                let t = |e: &Entry| e.target.as_deref().map(text);
                let f = Found::new(DiffKind::LinkTarget, "link target");
                self.push(within, path, f.values(t(x), t(y)));
            }
            if x.rdev != y.rdev {
                let r = |e: &Entry| e.rdev.map(|(ma, mi)| format!("{ma}:{mi}"));
                let f = Found::new(DiffKind::Rdev, "device numbers");
                self.push(within, path, f.values(r(x), r(y)));
            }
            if held.xattrs && mx.xattrs != my.xattrs {
                let names = |m: &imgpipe_fstree::Metadata| -> Vec<String> {
                    m.xattrs.iter().map(|(name, _)| text(name)).collect()
                };
                let f = Found::new(DiffKind::Xattr, "xattrs");
                self.push(within, path, f.values(names(mx), names(my)));
            }
            if x.file_type != FileType::File {
                continue;
            }
            let (ca, cb) = (
                contiguous(ra, nx, x.size, within)?,
                contiguous(rb, ny, y.size, within)?,
            );
            // Contents at the same offsets that no differing byte touches are the same.
            let known = match (ca, cb) {
                (Some(oa), Some(ob)) => x.size == y.size && self.unchanged(a, oa, b, ob, x.size),
                _ => false,
            };
            // Content at the same offsets where the byte diff surely saw a difference differs.
            let known_changed = match (ca, cb) {
                (Some(oa), Some(ob)) => x.size == y.size && self.changed(a, oa, b, ob, x.size),
                _ => false,
            };
            // Equal stored bytes (compressed blocks included) lying the same way in both
            // files mean equal content, without decompressing.
            let known = known
                || (!known_changed
                    && x.size == y.size
                    && self.same_stored(ra, nx, rb, ny, a, b)?);
            let digests = if known || known_changed || x.size != y.size {
                None
            } else {
                Some((
                    self.sha256_of(within, held_at(false, a, ca, x), |h| ra.read_content(nx, h))?,
                    self.sha256_of(within, held_at(true, b, cb, y), |h| rb.read_content(ny, h))?,
                ))
            };
            if known || digests.is_some_and(|(p, q)| p == q) {
                if self.opts.strict {
                    self.push_placement(ra, nx, rb, ny, within, path)?;
                }
                continue;
            }
            let nested = if within.len() < self.opts.max_depth {
                match (ca, cb) {
                    (Some(oa), Some(ob)) => match (a.sub(oa, x.size), b.sub(ob, y.size)) {
                        (Some(na), Some(nb)) => match (na.kind()?, nb.kind()?) {
                            (Some(ka), Some(kb))
                                if trees_comparable(ka, kb) || one_encrypted(ka, kb) =>
                            {
                                Some((ka, kb, na, nb))
                            }
                            _ => None,
                        },
                        _ => None,
                    },
                    _ => None,
                }
            } else {
                None
            };
            let refused = nested.and_then(|(ka, kb, na, nb)| {
                self.refuse_nested(na, nb).or_else(|| self.locked(ka, kb))
            });
            match (nested, refused) {
                (Some(_), Some(why)) => {
                    self.push(within, path, content(x.size, y.size, digests, Some(&why)));
                }
                (Some((k, kb, na, nb)), None) if k == kb => {
                    let mut inner = within.to_vec();
                    inner.push(format!("{path} ({})", k.name()));
                    self.descend(k, na, nb, &inner, path, within)?;
                }
                (Some((ka, kb, na, nb)), None) => {
                    self.descend_formats(ka, kb, na, nb, path, path, within)?;
                }
                (None, _) => {
                    let both = (
                        self.read_small(ra, nx, x.size),
                        self.read_small(rb, ny, y.size),
                    );
                    let mut f = content(x.size, y.size, digests, None);
                    if let (Some(da), Some(db)) = &both {
                        f.reason = crate::reason::explain(da, db);
                    }
                    let before = self.out.differences.len();
                    self.push(within, path, f);
                    if let (Some(da), Some(db), Some(sink), Some(d)) = (
                        &both.0,
                        &both.1,
                        self.sink.as_mut(),
                        self.out.differences.get(before),
                    ) {
                        sink(d, da, db);
                    }
                }
            }
        }
        Ok(())
    }

    /// A file's content in memory, when it is at most [`REASON_MAX_FILE`] bytes (counted
    /// against the work budget; `None` when larger, over budget or unreadable).
    fn read_small<R: FsRead>(&mut self, r: &R, node: &R::Node, size: u64) -> Option<Vec<u8>> {
        if size > REASON_MAX_FILE || size > self.work_left {
            return None;
        }
        let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        let mut left = size;
        let mut sink = Capped {
            buf: &mut buf,
            left: &mut left,
        };
        self.work_left -= size;
        r.read_content(node, &mut sink).ok().map(|_| buf)
    }

    /// Whether two files' stored pieces ([`FsRead::stored_pieces`]) match one to one (same
    /// content offsets and lengths, same stored lengths, compression and offset inside a
    /// shared piece) with equal stored bytes:
    /// then the content is equal. Pieces the byte diff proved identical are not read; the
    /// others are compared as stored, counted against the work budget. `false` when either
    /// side has no stored pieces (inline data) or they do not match.
    #[allow(clippy::too_many_arguments)]
    fn same_stored<RA: FsRead, RB: FsRead>(
        &mut self,
        ra: &RA,
        nx: &RA::Node,
        rb: &RB,
        ny: &RB::Node,
        a: Src<'_>,
        b: Src<'_>,
    ) -> Result<bool> {
        let (Ok(Some(ea)), Ok(Some(eb))) = (ra.stored_pieces(nx), rb.stored_pieces(ny)) else {
            return Ok(false);
        };
        let shape = |x: &imgpipe_fstree::StoredPiece, y: &imgpipe_fstree::StoredPiece| {
            (
                x.file_offset,
                x.len,
                x.stored_len,
                x.compressed,
                x.inner_offset,
            ) == (
                y.file_offset,
                y.len,
                y.stored_len,
                y.compressed,
                y.inner_offset,
            )
        };
        if ea.is_empty() || ea.len() != eb.len() || !ea.iter().zip(&eb).all(|(x, y)| shape(x, y)) {
            return Ok(false);
        }
        // Equal compressed bytes are equal content only when one codec decodes both sides.
        if ea.iter().any(|x| x.compressed)
            && (ra.stored_codec().is_none() || ra.stored_codec() != rb.stored_codec())
        {
            return Ok(false);
        }
        let key = |x: &imgpipe_fstree::StoredPiece, y: &imgpipe_fstree::StoredPiece| {
            (
                a.space(),
                a.off.saturating_add(x.image_offset),
                b.space(),
                b.off.saturating_add(y.image_offset),
                x.stored_len,
            )
        };
        // The pairs still to compare: not known equal, not proved identical in place.
        let mut pending = Vec::new();
        for (x, y) in ea.iter().zip(&eb) {
            match self.stored_equal.get(&key(x, y)) {
                Some(false) => return Ok(false),
                Some(true) => {}
                None if self.unchanged(a, x.image_offset, b, y.image_offset, x.stored_len) => {}
                None => pending.push((x, y)),
            }
        }
        let to_read = pending.iter().fold(0u64, |t, (x, _)| {
            t.saturating_add(x.stored_len.saturating_mul(2))
        });
        if to_read > self.work_left {
            return Ok(false);
        }
        let mut bufs = (Vec::new(), Vec::new());
        for (x, y) in pending {
            let (Some(pa), Some(pb)) = (
                a.sub(x.image_offset, x.stored_len),
                b.sub(y.image_offset, y.stored_len),
            ) else {
                return Ok(false);
            };
            let mut at = 0u64;
            while at < x.stored_len {
                let n = (x.stored_len - at).min(1 << 20) as usize;
                bufs.0.resize(n, 0);
                bufs.1.resize(n, 0);
                let read = pa
                    .slice()
                    .read_exact_at(&mut bufs.0, at)
                    .and_then(|()| pb.slice().read_exact_at(&mut bufs.1, at));
                if read.is_err() {
                    return Ok(false);
                }
                self.work_left -= 2 * n as u64;
                if bufs.0 != bufs.1 {
                    self.stored_equal.insert(key(x, y), false);
                    return Ok(false);
                }
                at += n as u64;
            }
            self.stored_equal.insert(key(x, y), true);
        }
        Ok(true)
    }

    /// Identical content stored at other offsets of the two filesystems (noise).
    fn push_placement<RA: FsRead, RB: FsRead>(
        &mut self,
        ra: &RA,
        nx: &RA::Node,
        rb: &RB,
        ny: &RB::Node,
        within: &[String],
        path: &str,
    ) -> Result<()> {
        if let (Some(oa), Some(ob)) = (first_offset(ra, nx, within)?, first_offset(rb, ny, within)?)
            && oa != ob
        {
            let what = format!("same content stored at {oa:#x} -> {ob:#x} (noise)");
            let f = Found::new(DiffKind::Placement, what);
            self.push(within, path, f.values(oa, ob).noise());
        }
        Ok(())
    }

    /// Compares a nested filesystem; when its files all agree, the difference is in its
    /// own structures (superblock, tables, layout) and is reported on the container entry.
    fn descend(
        &mut self,
        k: Format,
        a: Src<'_>,
        b: Src<'_>,
        inner: &[String],
        path: &str,
        within: &[String],
    ) -> Result<()> {
        if !self.descend_quiet(k, k, a, b, inner, path, within)? {
            self.push_structure(k, a, b, path, within);
        }
        Ok(())
    }

    /// [`descend`](Self::descend) without the conclusion when no file differs; returns
    /// whether anything was reported.
    #[allow(clippy::too_many_arguments)]
    fn descend_quiet(
        &mut self,
        k: Format,
        kb: Format,
        a: Src<'_>,
        b: Src<'_>,
        inner: &[String],
        path: &str,
        within: &[String],
    ) -> Result<bool> {
        let before = self.out.differences.len() as u64 + self.out.omitted;
        self.compared.insert(region(a, b), layer(inner));
        self.ancestors.push(region(a, b));
        let r = if k == kb {
            self.compare(k, a, b, inner)
        } else {
            self.out.compared.push(layer(inner));
            self.compare_trees(k, kb, a, b, inner)
        };
        self.ancestors.pop();
        match r {
            Ok(()) => {}
            // The work budget and a wrong passphrase end the whole diagnosis.
            Err(e @ (Error::LimitExceeded { .. } | Error::WrongPassphrase { .. })) => {
                return Err(e);
            }
            // A nested layer that does not read is reported, not fatal for the outer one.
            Err(e) => self.push(
                within,
                path,
                Found::new(DiffKind::Unreadable, format!("content; {e}")),
            ),
        }
        Ok(self.out.differences.len() as u64 + self.out.omitted != before)
    }

    /// Two filesystems at `path` in two formats: the change of format (`format A -> B`),
    /// then their files. Two formats of one kind of tree (a squashfs root and its EROFS
    /// repack, as a file, a partition or a LUKS2 payload) are compared under the layer
    /// `PATH (A -> B)`. A filesystem against a LUKS2 volume (a root encrypted by one build
    /// only) is compared, with passphrases, with the volume's payload, under
    /// `PATH (squashfs -> luks2 > payload (squashfs))` (or the other way round). The layers
    /// are named after `label` (`path` inside a filesystem; the two images themselves, at
    /// path `/`, have no label: `squashfs -> erofs`).
    #[allow(clippy::too_many_arguments)]
    fn descend_formats(
        &mut self,
        ka: Format,
        kb: Format,
        a: Src<'_>,
        b: Src<'_>,
        path: &str,
        label: &str,
        within: &[String],
    ) -> Result<()> {
        let named = |what: String| match label {
            "" => what,
            l => format!("{l} ({what})"),
        };
        let (fa, fb) = (ka.name(), kb.name());
        let f = Found::new(DiffKind::Type, format!("format {fa} -> {fb}"));
        self.push(within, path, f.values(fa, fb));
        if !one_encrypted(ka, kb) {
            let mut inner = within.to_vec();
            inner.push(named(format!("{fa} -> {fb}")));
            return self
                .descend_quiet(ka, kb, a, b, &inner, path, within)
                .map(|_| ());
        }
        let Some(keys) = self.keys else {
            return Ok(());
        };
        let second = kb == Format::Luks2;
        let vol = if second { b } else { a };
        let mut at = within.to_vec();
        at.push(named("luks2".to_owned()));
        let h = luks_header(vol, Some(keys), &at)?;
        let (_, seg) = luks_unlock(vol, &h, keys, second, &at)?;
        let space = self.next_space;
        self.next_space = self.next_space.saturating_add(2);
        let base = luks_plain(vol, seg, space)?;
        let p = Src {
            base: &base,
            off: 0,
            len: base.len().unwrap_or(0),
        };
        let plain = if second { ka } else { kb };
        let Some(pk) = p.kind()? else {
            return Ok(());
        };
        if !trees_comparable(plain, pk) {
            return Ok(());
        }
        let inside = format!("luks2 > payload ({})", pk.name());
        let mut inner = within.to_vec();
        let r = if second {
            inner.push(named(format!("{fa} -> {inside}")));
            self.descend_quiet(ka, pk, a, p, &inner, path, within)
        } else {
            inner.push(named(format!("{inside} -> {fb}")));
            self.descend_quiet(pk, kb, p, b, &inner, path, within)
        };
        r.map(|_| ())
    }

    /// Two nested filesystems whose files all agree: their own structures differ.
    fn push_structure(&mut self, k: Format, a: Src<'_>, b: Src<'_>, path: &str, within: &[String]) {
        let what = format!(
            "content ({} vs {} bytes): the {} file trees are identical, its own structures differ",
            a.len,
            b.len,
            k.name()
        );
        self.push(
            within,
            path,
            Found::new(DiffKind::Structure, what).values(a.len, b.len),
        );
    }

    /// Compares two LUKS2 volumes: with [`Passphrases`], both are unlocked and their
    /// payloads compared as the nested layer `payload (FORMAT)` (`payload (A -> B)` after a
    /// `format A -> B` line when they are two formats of one kind of tree), decrypted as
    /// they are read;
    /// without, the payloads' ciphertext is compared and a difference reported as encrypted.
    /// When both volumes share one volume key and geometry at one place, equal ciphertext
    /// sectors are equal plaintext sectors (XTS works sector by sector): only the byte diff's
    /// ranges are read again inside. Payloads equal byte for byte leave the headers as the
    /// difference (`header`).
    fn compare_luks(&mut self, a: Src<'_>, b: Src<'_>, within: &[String]) -> Result<()> {
        let (ha, hb) = (
            luks_header(a, self.keys, within)?,
            luks_header(b, self.keys, within)?,
        );
        let Some(keys) = self.keys else {
            let (Some((oa, pa)), Some((ob, pb))) = (payload(&ha, a), payload(&hb, b)) else {
                let f = Found::new(DiffKind::Unreadable, "no crypt segment inside the volume");
                self.push(within, "payload", f);
                return Ok(());
            };
            let (la, lb) = (pa.len, pb.len);
            if la == lb
                && (self.unchanged(a, oa, b, ob, la)
                    || (!self.changed(a, oa, b, ob, la) && self.digest(pa)? == self.digest(pb)?))
            {
                self.push_headers_differ(within, la);
            } else {
                self.push(
                    within,
                    "payload",
                    content(la, lb, None, Some(ENCRYPTED_HINT)),
                );
            }
            return Ok(());
        };
        let (ua, sega) = luks_unlock(a, &ha, keys, false, within)?;
        let (ub, segb) = luks_unlock(b, &hb, keys, true, within)?;
        // One key, one geometry, one place: ciphertext and plaintext sectors correspond.
        let aligned = ua.volume_key == ub.volume_key
            && (sega.offset, sega.sector_size, sega.iv_tweak)
                == (segb.offset, segb.sector_size, segb.iv_tweak)
            && a.off == b.off;
        let (oa, ob, sector) = (sega.offset, segb.offset, u64::from(sega.sector_size));
        let spaces = (self.next_space, self.next_space.saturating_add(1));
        self.next_space = self.next_space.saturating_add(2);
        let (ba, bb) = (
            luks_plain(a, sega, spaces.0)?,
            luks_plain(b, segb, spaces.1)?,
        );
        let (la, lb) = (ba.len().unwrap_or(0), bb.len().unwrap_or(0));
        let (pa, pb) = (
            Src {
                base: &ba,
                off: 0,
                len: la,
            },
            Src {
                base: &bb,
                off: 0,
                len: lb,
            },
        );
        if aligned && let Some(d) = self.differing_for(a, b) {
            let start = a.off.saturating_add(oa);
            let inside = d.window(start, la.min(lb), sector);
            let exact = self.exact(inside, pa, pb)?;
            self.plain_differing.insert(spaces, exact);
        }
        // Aligned, the ciphertext answers without reading: untouched by the byte diff is
        // equal, surely touched differs.
        if la == lb && aligned && self.unchanged(a, oa, b, ob, la) {
            self.push_headers_differ(within, la);
            return Ok(());
        }
        let differ = la != lb || (aligned && self.changed(a, oa, b, ob, la));
        // Otherwise whether the payloads are equal byte for byte is asked only when no file
        // inside differs (it reads them whole): the ciphertext's digests when aligned, else
        // the plaintext's.
        let ciphertext = (a.sub(oa, la), b.sub(ob, lb));
        let same = |w: &mut Self| -> Result<bool> {
            if differ {
                return Ok(false);
            }
            Ok(match ciphertext {
                (Some(ca), Some(cb)) if aligned => w.digest(ca)? == w.digest(cb)?,
                _ => w.digest(pa)? == w.digest(pb)?,
            })
        };
        let kinds = match (pa.kind()?, pb.kind()?) {
            (Some(ka), Some(kb))
                if trees_comparable(ka, kb) && within.len() < self.opts.max_depth =>
            {
                Some((ka, kb))
            }
            _ => None,
        };
        let Some((k, kb)) = kinds else {
            if same(self)? {
                self.push_headers_differ(within, la);
            } else {
                self.push(within, "payload", content(la, lb, None, None));
            }
            return Ok(());
        };
        if k != kb {
            // A squashfs root re-encrypted as EROFS.
            return self.descend_formats(k, kb, pa, pb, "payload", "payload", within);
        }
        let mut inner = within.to_vec();
        inner.push(format!("payload ({})", k.name()));
        if !self.descend_quiet(k, k, pa, pb, &inner, "payload", within)? {
            if same(self)? {
                self.push_headers_differ(within, la);
            } else {
                self.push_structure(k, pa, pb, "payload", within);
            }
        }
        Ok(())
    }

    /// Where `a` and `b` differ exactly inside the ranges of `coarse` (whole sectors of two
    /// payloads), found by reading both there (decrypting only those sectors), so that
    /// content beside a differing byte in the same sector is not read again. Worth it for a
    /// few small ranges (a changed file), not when they cover much of the payloads (a
    /// squashfs whose blocks all moved): beyond a sixteenth of them, or past the work
    /// budget, `coarse` stays as it is.
    fn exact(
        &mut self,
        coarse: crate::diff::Differing,
        a: Src<'_>,
        b: Src<'_>,
    ) -> Result<crate::diff::Differing> {
        /// Differing runs closer than this are one range (each range's ends still differ).
        const GAP: u64 = 64;
        let total = coarse
            .ranges()
            .iter()
            .fold(0u64, |t, r| t.saturating_add(r.len));
        if total.saturating_mul(2) > self.work_left || total > a.len.min(b.len) / 16 {
            return Ok(coarse);
        }
        self.work_left -= 2 * total;
        let mut out: Vec<crate::compare::ByteRange> = Vec::new();
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for r in coarse.ranges() {
            let mut at = r.start;
            while at < r.end() {
                let n = (r.end() - at).min(1 << 20) as usize;
                x.resize(n, 0);
                y.resize(n, 0);
                a.slice()
                    .read_exact_at(&mut x, at)
                    .and_then(|()| b.slice().read_exact_at(&mut y, at))
                    .map_err(io("decrypting a LUKS2 payload"))?;
                for (i, _) in x.iter().zip(&y).enumerate().filter(|(_, (p, q))| p != q) {
                    let pos = at + i as u64;
                    match out.last_mut() {
                        Some(last) if last.end().saturating_add(GAP) > pos => {
                            last.len = pos + 1 - last.start;
                        }
                        _ => out.push(crate::compare::ByteRange { start: pos, len: 1 }),
                    }
                }
                at += n as u64;
            }
        }
        Ok(crate::diff::Differing::from_ranges(out))
    }

    /// Two LUKS2 volumes whose payloads are equal: what differs is in their headers.
    fn push_headers_differ(&mut self, within: &[String], payload_len: u64) {
        let what = format!(
            "the payloads are identical ({payload_len} bytes); the LUKS2 headers differ (keyslots, salts, UUID, ...)"
        );
        self.push(within, "header", Found::new(DiffKind::Structure, what));
    }

    /// The SHA-256 of a whole region, counted against the work budget.
    fn digest(&mut self, s: Src<'_>) -> Result<[u8; 32]> {
        match s.digest(&mut self.work_left)? {
            Some(d) => Ok(d),
            None => Err(self.over_budget()),
        }
    }

    fn compare_gpt(&mut self, a: Src<'_>, b: Src<'_>, within: &[String]) -> Result<()> {
        let da = imgpipe_gptpart::read_gpt(a.stream()).map_err(|e| layer_err(within, e))?;
        let db = imgpipe_gptpart::read_gpt(b.stream()).map_err(|e| layer_err(within, e))?;
        if da.disk_guid != db.disk_guid {
            let f = Found::new(DiffKind::Partition, "disk GUID");
            self.push(
                within,
                "/",
                f.values(da.disk_guid.to_string(), db.disk_guid.to_string()),
            );
        }
        let name =
            |p: &imgpipe_gptpart::GptPartition| format!("partition {} ({})", p.index, p.name);
        let pb: BTreeMap<u32, &imgpipe_gptpart::GptPartition> =
            db.partitions.iter().map(|p| (p.index, p)).collect();
        for x in &da.partitions {
            let Some(y) = pb.get(&x.index) else {
                self.push(within, &name(x), Found::new(DiffKind::OnlyInA, "only in A"));
                continue;
            };
            let n = name(x);
            let range =
                |p: &imgpipe_gptpart::GptPartition| format!("{}-{}", p.first_lba, p.last_lba);
            for (field, va, vb) in [
                ("type", x.type_guid.to_string(), y.type_guid.to_string()),
                (
                    "unique GUID",
                    x.unique_guid.to_string(),
                    y.unique_guid.to_string(),
                ),
                ("name", x.name.clone(), y.name.clone()),
                (
                    "attributes",
                    format!("{:#x}", x.attributes),
                    format!("{:#x}", y.attributes),
                ),
                ("range", range(x), range(y)),
            ] {
                if va != vb {
                    self.push(
                        within,
                        &n,
                        Found::new(DiffKind::Partition, field).values(va, vb),
                    );
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
                let f = Found::new(DiffKind::Unreadable, "extends past the end of the disk");
                self.push(within, &n, f);
                continue;
            };
            let changed = self.changed(a, oa, b, ob, la);
            if la == lb
                && (self.unchanged(a, oa, b, ob, la)
                    || (!changed && self.digest(na)? == self.digest(nb)?))
            {
                continue;
            }
            let kinds = (na.kind()?, nb.kind()?);
            let refused = match kinds {
                (Some(ka), Some(kb)) => self.refuse_nested(na, nb).or_else(|| self.locked(ka, kb)),
                _ => None,
            };
            if let Some(why) = refused {
                self.push(within, &n, content(la, lb, None, Some(&why)));
                continue;
            }
            match kinds {
                (Some(ka), Some(kb)) if ka == kb && within.len() < self.opts.max_depth => {
                    let mut inner = within.to_vec();
                    inner.push(format!("{n} ({})", ka.name()));
                    self.descend(ka, na, nb, &inner, &n, within)?;
                }
                // A disk whose root partition went from squashfs to EROFS.
                (Some(ka), Some(kb))
                    if (trees_comparable(ka, kb) || one_encrypted(ka, kb))
                        && within.len() < self.opts.max_depth =>
                {
                    self.descend_formats(ka, kb, na, nb, &n, &n, within)?;
                }
                _ => self.push(within, &n, content(la, lb, None, None)),
            }
        }
        for y in &db.partitions {
            if !da.partitions.iter().any(|x| x.index == y.index) {
                self.push(within, &name(y), Found::new(DiffKind::OnlyInB, "only in B"));
            }
        }
        Ok(())
    }
}
