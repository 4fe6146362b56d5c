//! Per-download images: the slot table an image carries, and injection of a piece into a
//! slot by plain byte patches (no format knowledge needed), in place, into a copy, or as a
//! positioned-read overlay any server can stream.
//!
//! ```no_run
//! use imgpipe_repro::inject::{Hashing, Overlay, SlotTable};
//!
//! let base = std::fs::File::open("kiosk.iso")?;
//! let table = SlotTable::read(&base)?;
//! let piece = std::fs::read("piece.html")?;
//! let patches = table.patches(&[("srv/piece.html", &piece[..])])?;
//! let image = Overlay::new(base, patches)?; // Read + Seek: the base with the piece in
//! let mut hashed = Hashing::new(image); // optional: its SHA-256 on the way
//! std::io::copy(&mut hashed, &mut std::io::stdout())?;
//! let (sha256, _) = hashed.finish();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The slot table
//! At byte [`TABLE_OFFSET`] (inside the first 32 KiB, which an ISO keeps for its system area
//! and a GPT disk leaves free before its first partition): the magic [`MAGIC`], then a JSON
//! document, then zeros up to [`TABLE_LEN`] bytes:
//! `{"version": 1, "image_len", "slots": [{"name", "within", "offset", "capacity", "size",
//! "size_fields": [{"offset", "encoding": "le32|le64|be32"}]}]}`. Offsets are bytes from the
//! start of the image; `image_len` is its length as built ([`SlotTable::read`] refuses a
//! shorter image as truncated). An ISO 9660 tree's slot (`within` is `iso9660`) lists a `le32` and a `be32` field
//! for each directory record of the file (primary, Joliet): the format stores sizes
//! both-endian.
//! A FAT file's slot (`within` ends in `(fat)`) also lists the fields a FAT reader checks
//! against the size, each a plain function of the piece's length `n` with `u` =
//! ceil(n / `unit`) units: `le16-if-any` (`value` when `n` > 0, else 0: the first cluster),
//! `le16-chain`/`le32-chain` (`count` entries, one per unit: entry i is `value` + i + 1
//! while the piece goes on past unit i + 1, `end` in the unit where it ends, 0 after: the
//! cluster chain), `le32-free` (`value` - `u`: the free cluster count).
//! Injecting a piece writes it at `offset`, zeros the rest of `capacity`, and writes its
//! length into every size field and into the table's own record of the slot.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Where the table starts.
pub const TABLE_OFFSET: u64 = 0x7000;
/// The bytes it may take (magic, JSON and zero padding).
pub const TABLE_LEN: usize = 4096;
/// What it starts with.
pub const MAGIC: &[u8; 16] = b"IMGPIPE-SLOTS-1\n";

/// A size field a slot's injection rewrites.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SizeField {
    /// Byte offset in the image.
    pub offset: u64,
    /// `le32`, `le64` or `be32` (the piece's length); `le16-if-any`, `le16-chain`,
    /// `le32-chain` or `le32-free` (functions of it; see the module's documentation).
    pub encoding: String,
    /// Bytes per unit (`*-chain`, `le32-free`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unit: u64,
    /// Entries (`*-chain`): the capacity's units.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub count: u64,
    /// The value the encoding starts from (`le16-if-any`, `*-chain`, `le32-free`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub value: u64,
    /// The last entry's value (`*-chain`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub end: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl SizeField {
    /// The field's width and range checks: `None` when it makes no sense for a slot of
    /// `capacity` bytes.
    fn check(&self, capacity: u64) -> Option<()> {
        let fits = |v: u64, bytes: u32| v < 1u64.checked_shl(8 * bytes).unwrap_or(u64::MAX);
        match self.encoding.as_str() {
            "le32" | "be32" | "le64" => Some(()),
            "le16-if-any" => fits(self.value, 2).then_some(()),
            "le32-free" => (self.unit > 0 && fits(self.value, 4)).then_some(()),
            "le16-chain" | "le32-chain" => {
                let width = if self.encoding == "le16-chain" { 2 } else { 4 };
                let last = self.value.checked_add(self.count)?;
                (self.unit > 0
                    && self.count == capacity.div_ceil(self.unit)
                    && fits(last, width)
                    && fits(self.end, width))
                .then_some(())
            }
            _ => None,
        }
    }

    /// The bytes the field holds for a piece of `len` bytes (a chain's zeros past the
    /// piece left out), and the bytes it covers.
    fn bytes(&self, len: u64) -> Result<(Vec<u8>, u64)> {
        let len32 = |v: u64| {
            u32::try_from(v).map_err(|_| {
                malformed(
                    "size_fields",
                    TABLE_OFFSET,
                    "a 32-bit size field cannot hold the piece's size",
                )
            })
        };
        let units = len.div_ceil(self.unit.max(1));
        Ok(match self.encoding.as_str() {
            "le32" => (len32(len)?.to_le_bytes().to_vec(), 4),
            "be32" => (len32(len)?.to_be_bytes().to_vec(), 4),
            "le16-if-any" => {
                let v = if len > 0 { self.value as u16 } else { 0 };
                (v.to_le_bytes().to_vec(), 2)
            }
            "le32-free" => {
                let v = self.value.saturating_sub(units) as u32;
                (v.to_le_bytes().to_vec(), 4)
            }
            "le16-chain" | "le32-chain" => {
                let width = if self.encoding == "le16-chain" { 2 } else { 4 };
                let used = units.min(self.count);
                let mut out = Vec::with_capacity((used * width) as usize);
                for i in 0..used {
                    let v = if i + 1 < used {
                        self.value + i + 1
                    } else {
                        self.end
                    };
                    out.extend_from_slice(&v.to_le_bytes()[..width as usize]);
                }
                (out, self.count * width)
            }
            _ => (len.to_le_bytes().to_vec(), 8),
        })
    }
}

/// One slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    /// Its name: the file's path in its file system, without a leading `/`.
    pub name: String,
    /// Which file system holds it (`iso9660 > /LiveOS/squashfs.img (erofs)`).
    pub within: String,
    /// Where the content goes.
    pub offset: u64,
    /// How many bytes it may hold.
    pub capacity: u64,
    /// The size as built.
    pub size: u64,
    /// The size fields to rewrite.
    pub size_fields: Vec<SizeField>,
}

/// The table of an image's slots.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotTable {
    /// Its version (1).
    pub version: u32,
    /// The image's length as built (0: not recorded): an image shorter than this was cut
    /// short, and is refused before anything is written.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub image_len: u64,
    /// The slots.
    pub slots: Vec<Slot>,
}

/// One byte patch of an injection: `len` bytes at `offset`, from `data` (zeros past its end).
#[derive(Debug, Clone)]
pub struct Patch {
    /// Where in the image.
    pub offset: u64,
    /// How many bytes it covers.
    pub len: u64,
    /// Its bytes (shorter than `len`: the rest are zeros).
    pub data: PieceData,
}

/// The bytes of a piece: in memory, or in an open file read as the image is streamed (so a
/// server holds no copy of each download's piece).
#[derive(Debug, Clone)]
pub enum PieceData {
    /// Bytes in memory.
    Bytes(Arc<[u8]>),
    /// A file's bytes, read when needed.
    File(Arc<PieceFile>),
}

impl From<&[u8]> for PieceData {
    fn from(b: &[u8]) -> Self {
        Self::Bytes(Arc::from(b))
    }
}

impl From<Vec<u8>> for PieceData {
    fn from(b: Vec<u8>) -> Self {
        Self::Bytes(Arc::from(b))
    }
}

impl PieceData {
    /// Its length.
    pub fn len(&self) -> u64 {
        match self {
            Self::Bytes(b) => b.len() as u64,
            Self::File(f) => f.len,
        }
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fills `buf` from byte `at` (zeros past the end); a piece file that changed since it
    /// was opened is an error.
    fn fill(&self, buf: &mut [u8], at: u64) -> std::io::Result<()> {
        let have = self.len().saturating_sub(at).min(buf.len() as u64) as usize;
        let (data, zeros) = buf.split_at_mut(have);
        zeros.fill(0);
        if data.is_empty() {
            return Ok(());
        }
        match self {
            Self::Bytes(b) => {
                let from = usize::try_from(at).unwrap_or(usize::MAX);
                let src = b
                    .get(from..from.saturating_add(have))
                    .ok_or(std::io::ErrorKind::UnexpectedEof)?;
                data.copy_from_slice(src);
                Ok(())
            }
            Self::File(f) => f.read_exact_at(data, at),
        }
    }
}

/// A piece in a file, opened once: its length and modification time are taken at open, and
/// every read checks they still hold, so a piece rewritten or truncated while a download
/// is under way stops that download with an error instead of mixing two pieces. A piece
/// removed from its directory keeps its bytes (the file stays open) and is served whole.
#[derive(Debug)]
pub struct PieceFile {
    file: File,
    len: u64,
    stamp: (i64, i64),
}

impl PieceFile {
    /// Opens a regular file as a piece.
    pub fn open(path: &std::path::Path) -> std::io::Result<Self> {
        use std::os::unix::fs::MetadataExt;
        let file = File::open(path)?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a regular file",
            ));
        }
        Ok(Self {
            file,
            len: meta.len(),
            stamp: (meta.mtime(), meta.mtime_nsec()),
        })
    }

    /// Its length when opened.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it was empty when opened.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Reads `buf.len()` bytes at `at`, after checking the file is as it was opened.
    pub fn read_exact_at(&self, buf: &mut [u8], at: u64) -> std::io::Result<()> {
        use std::os::unix::fs::MetadataExt;
        self.file.read_exact_at(buf, at)?;
        let meta = self.file.metadata()?;
        if meta.len() != self.len || (meta.mtime(), meta.mtime_nsec()) != self.stamp {
            return Err(std::io::Error::other(
                "the piece changed while it was being served",
            ));
        }
        Ok(())
    }

    /// Feeds its whole content to `sink` (in 1 MiB reads), checking it did not change.
    pub fn for_each_chunk(&self, mut sink: impl FnMut(&[u8])) -> std::io::Result<()> {
        let mut buf = vec![0u8; self.len.min(1 << 20) as usize];
        let mut at = 0u64;
        while at < self.len {
            let n = (self.len - at).min(buf.len() as u64) as usize;
            let chunk = buf.get_mut(..n).unwrap_or_default();
            self.read_exact_at(chunk, at)?;
            sink(chunk);
            at += n as u64;
        }
        Ok(())
    }
}

/// An open image's length.
fn image_len(f: &File) -> Result<u64> {
    f.metadata().map(|m| m.len()).map_err(|source| Error::Io {
        what: "reading the image's size",
        source,
    })
}

fn malformed(field: &'static str, offset: u64, reason: &'static str) -> Error {
    Error::Malformed {
        structure: "slot table",
        field,
        offset,
        reason,
    }
}

impl SlotTable {
    /// The table's bytes: magic, JSON, zeros to [`TABLE_LEN`].
    pub fn encode(&self) -> Result<Vec<u8>> {
        let json = serde_json::to_vec(self).map_err(|e| Error::Step {
            step: "writing the slot table".into(),
            message: e.to_string(),
        })?;
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&json);
        if out.len() > TABLE_LEN {
            return Err(Error::LimitExceeded {
                what: "the slot table",
                limit: TABLE_LEN as u64,
            });
        }
        out.resize(TABLE_LEN, 0);
        Ok(out)
    }

    /// Reads the table of an image; an image without one, or with a damaged one, is an error
    /// that says so.
    pub fn read(image: &File) -> Result<Self> {
        let len = image_len(image)?;
        let mut buf = vec![0u8; TABLE_LEN];
        let n = image
            .read_at(&mut buf, TABLE_OFFSET)
            .map_err(|source| Error::Io {
                what: "reading the slot table",
                source,
            })?;
        buf.truncate(n);
        let t = Self::parse(&buf)?;
        if len < t.image_len {
            return Err(Error::Truncated {
                structure: "image (the length its slot table records)",
                offset: 0,
                needed: t.image_len,
                available: len,
            });
        }
        Ok(t)
    }

    /// Parses the table's bytes (from [`TABLE_OFFSET`]).
    pub fn parse(buf: &[u8]) -> Result<Self> {
        let Some(rest) = buf.strip_prefix(&MAGIC[..]) else {
            return Err(malformed(
                "magic",
                TABLE_OFFSET,
                "no slot table: the image was built without --reserve",
            ));
        };
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        let json = rest.get(..end).unwrap_or_default();
        let t: SlotTable = serde_json::from_slice(json).map_err(|_| {
            malformed(
                "json",
                TABLE_OFFSET + MAGIC.len() as u64,
                "not a slot table document",
            )
        })?;
        if t.version != 1 {
            return Err(malformed(
                "version",
                TABLE_OFFSET,
                "unknown slot table version",
            ));
        }
        for s in &t.slots {
            if s.size > s.capacity || s.offset.checked_add(s.capacity).is_none() {
                return Err(malformed(
                    "slots",
                    TABLE_OFFSET,
                    "a slot's size or range is impossible",
                ));
            }
            for f in &s.size_fields {
                if f.check(s.capacity).is_none() {
                    return Err(malformed(
                        "size_fields",
                        TABLE_OFFSET,
                        "unknown size encoding, or parameters that do not fit it",
                    ));
                }
            }
        }
        Ok(t)
    }

    /// The slot called `name` (a leading `/` is ignored).
    pub fn slot(&self, name: &str) -> Result<&Slot> {
        let want = name.trim_start_matches('/');
        self.slots
            .iter()
            .find(|s| s.name == want)
            .ok_or_else(|| Error::Argument {
                flag: "--put",
                value: name.to_owned(),
                reason: format!(
                    "no such slot; the image has {}",
                    if self.slots.is_empty() {
                        "none".to_owned()
                    } else {
                        self.slots
                            .iter()
                            .map(|s| s.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ),
            })
    }

    /// The patches that put each `(slot, piece)` in: the piece and zeros over the capacity,
    /// and the piece's length in every size field. A piece larger than its slot is refused
    /// with both sizes.
    pub fn patches(&self, puts: &[(&str, &[u8])]) -> Result<Vec<Patch>> {
        let puts: Vec<(&str, PieceData)> = puts
            .iter()
            .map(|(n, b)| (*n, PieceData::from(*b)))
            .collect();
        self.patches_of(&puts)
    }

    /// [`SlotTable::patches`] for pieces in memory or in files ([`PieceData`]), which the
    /// patches share rather than copy.
    pub fn patches_of(&self, puts: &[(&str, PieceData)]) -> Result<Vec<Patch>> {
        let mut out = Vec::new();
        for (name, piece) in puts {
            let s = self.slot(name)?;
            let len = piece.len();
            if len > s.capacity {
                return Err(Error::Argument {
                    flag: "--put",
                    value: (*name).to_owned(),
                    reason: format!(
                        "the piece is {len} bytes; the slot holds at most {}",
                        s.capacity
                    ),
                });
            }
            out.push(Patch {
                offset: s.offset,
                len: s.capacity,
                data: piece.clone(),
            });
            for f in &s.size_fields {
                let (bytes, covers) = f.bytes(len)?;
                out.push(Patch {
                    offset: f.offset,
                    len: covers,
                    data: bytes.into(),
                });
            }
        }
        // The table itself records each slot's size: it changes with the piece.
        let mut table = self.clone();
        for (name, piece) in puts {
            let want = name.trim_start_matches('/');
            if let Some(s) = table.slots.iter_mut().find(|s| s.name == want) {
                s.size = piece.len();
            }
        }
        let bytes = table.encode()?;
        out.push(Patch {
            offset: TABLE_OFFSET,
            len: bytes.len() as u64,
            data: bytes.into(),
        });
        out.sort_by_key(|p| p.offset);
        if out.windows(2).any(|w| w[0].offset + w[0].len > w[1].offset) {
            return Err(malformed("slots", TABLE_OFFSET, "two patches overlap"));
        }
        Ok(out)
    }
}

/// Applies patches to a file in place (the bytes outside them are untouched).
pub fn apply(file: &File, patches: &[Patch]) -> Result<()> {
    let size = image_len(file)?;
    for p in patches {
        if p.offset.saturating_add(p.len) > size {
            return Err(malformed(
                "slots",
                TABLE_OFFSET,
                "a slot lies past the end of the image",
            ));
        }
    }
    // In pieces of at most 1 MiB: a large slot is not held in memory.
    let mut buf = Vec::new();
    for p in patches {
        let mut at = 0u64;
        while at < p.len {
            let n = (p.len - at).min(1 << 20) as usize;
            buf.resize(n, 0);
            p.data.fill(&mut buf, at).map_err(|source| Error::Io {
                what: "reading a piece",
                source,
            })?;
            file.write_all_at(&buf, p.offset + at)
                .map_err(|source| Error::Io {
                    what: "writing a slot",
                    source,
                })?;
            at += n as u64;
        }
    }
    Ok(())
}

/// The base image with patches over it, as `Read + Seek` and positioned reads: what a
/// server streams per request without writing a copy.
#[derive(Debug)]
pub struct Overlay {
    base: File,
    len: u64,
    patches: Vec<Patch>,
    pos: u64,
}

impl Overlay {
    /// The overlay of `patches` (from [`SlotTable::patches`]) on `base`.
    pub fn new(base: File, patches: Vec<Patch>) -> Result<Self> {
        let len = image_len(&base)?;
        if patches.iter().any(|p| p.offset.saturating_add(p.len) > len) {
            return Err(malformed(
                "slots",
                TABLE_OFFSET,
                "a slot lies past the end of the image",
            ));
        }
        Ok(Self {
            base,
            len,
            patches,
            pos: 0,
        })
    }

    /// The image's length.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the image is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Reads at `offset` without moving the cursor; returns the bytes read (0 at the end).
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        if offset >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(self.len - offset) as usize;
        let buf = &mut buf[..want];
        // The first patch that ends after `offset`.
        let i = self.patches.partition_point(|p| p.offset + p.len <= offset);
        match self.patches.get(i) {
            Some(p) if p.offset <= offset => {
                let n = ((p.offset + p.len - offset) as usize).min(want);
                p.data.fill(&mut buf[..n], offset - p.offset)?;
                Ok(n)
            }
            next => {
                let n = next.map_or(want, |p| ((p.offset - offset) as usize).min(want));
                self.base.read_exact_at(&mut buf[..n], offset)?;
                Ok(n)
            }
        }
    }
}

impl Read for Overlay {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Overlay {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        let to = match pos {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
        };
        self.pos = to.ok_or(std::io::ErrorKind::InvalidInput)?;
        Ok(self.pos)
    }
}

/// A reader that hashes (SHA-256) what passes through it: an [`Overlay`] streamed through
/// it gives the image's digest on the way, without a second read.
#[derive(Debug)]
pub struct Hashing<R> {
    inner: R,
    hash: sha2::Sha256,
    bytes: u64,
}

impl<R: Read> Hashing<R> {
    /// Hashes what is read from `inner`.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            hash: sha2::Digest::new(),
            bytes: 0,
        }
    }

    /// The bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }

    /// The SHA-256 of what was read, and the reader.
    pub fn finish(self) -> ([u8; 32], R) {
        (sha2::Digest::finalize(self.hash).into(), self.inner)
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let done = buf.get(..n).unwrap_or_default();
        sha2::Digest::update(&mut self.hash, done);
        self.bytes += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    fn table() -> SlotTable {
        SlotTable {
            version: 1,
            image_len: 0,
            slots: vec![Slot {
                name: "srv/piece".into(),
                within: "test".into(),
                offset: 100,
                capacity: 50,
                size: 3,
                size_fields: vec![
                    SizeField {
                        offset: 10,
                        encoding: "le32".into(),
                        ..SizeField::default()
                    },
                    SizeField {
                        offset: 14,
                        encoding: "be32".into(),
                        ..SizeField::default()
                    },
                ],
            }],
        }
    }

    #[test]
    fn round_trip_patches_and_overlay() {
        let t = table();
        let bytes = t.encode().unwrap();
        assert_eq!(SlotTable::parse(&bytes).unwrap(), t);
        assert!(
            SlotTable::parse(&[0u8; 64])
                .unwrap_err()
                .to_string()
                .contains("without --reserve")
        );
        let e = t
            .patches(&[("srv/piece", &[1u8; 51][..])])
            .unwrap_err()
            .to_string();
        assert!(e.contains("51 bytes") && e.contains("at most 50"), "{e}");
        assert!(
            t.patches(&[("nope", &b""[..])])
                .unwrap_err()
                .to_string()
                .contains("srv/piece")
        );

        // An unknown encoding is refused.
        let mut bad = t.clone();
        bad.slots[0].size_fields[0].encoding = "be64".into();
        assert!(
            SlotTable::parse(&bad.encode().unwrap())
                .unwrap_err()
                .to_string()
                .contains("unknown size encoding")
        );

        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("img");
        std::fs::write(&p, vec![7u8; TABLE_OFFSET as usize + TABLE_LEN + 200]).unwrap();
        let patches = t.patches(&[("/srv/piece", &b"hello"[..])]).unwrap();
        // The overlay and the in-place application give the same bytes, read in any pieces.
        let mut o = Overlay::new(File::open(&p).unwrap(), patches.clone()).unwrap();
        let mut via_overlay = Vec::new();
        let mut chunk = [0u8; 7];
        loop {
            let n = o.read(&mut chunk).unwrap();
            if n == 0 {
                break;
            }
            via_overlay.extend_from_slice(&chunk[..n]);
        }
        // Hashed on the way, as a server would.
        let mut hashing =
            Hashing::new(Overlay::new(File::open(&p).unwrap(), patches.clone()).unwrap());
        std::io::copy(&mut hashing, &mut std::io::sink()).unwrap();
        assert_eq!(hashing.bytes_read(), via_overlay.len() as u64);
        let (digest, _) = hashing.finish();
        let f = File::options().read(true).write(true).open(&p).unwrap();
        apply(&f, &patches).unwrap();
        let applied = std::fs::read(&p).unwrap();
        assert_eq!(via_overlay, applied);
        assert_eq!(digest, <[u8; 32]>::from(sha2::Sha256::digest(&applied)));
        assert_eq!(&applied[10..14], &5u32.to_le_bytes());
        assert_eq!(&applied[14..18], &5u32.to_be_bytes());
        assert_eq!(&applied[100..105], b"hello");
        assert!(applied[105..150].iter().all(|&b| b == 0));
        assert_eq!(applied[150], 7);
        // The table records the new size.
        let t2 = SlotTable::parse(&applied[TABLE_OFFSET as usize..]).unwrap();
        assert_eq!(t2.slots[0].size, 5);
    }

    #[test]
    fn piece_files_are_read_when_streamed_and_refused_once_changed() {
        let t = table();
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("img");
        std::fs::write(&img, vec![7u8; TABLE_OFFSET as usize + TABLE_LEN + 200]).unwrap();
        let piece = dir.path().join("piece");
        std::fs::write(&piece, b"from a file").unwrap();
        let data = PieceData::File(Arc::new(PieceFile::open(&piece).unwrap()));
        let patches = t.patches_of(&[("srv/piece", data)]).unwrap();
        let in_memory = t.patches(&[("srv/piece", &b"from a file"[..])]).unwrap();
        let read = |patches: &[Patch]| {
            let mut o = Overlay::new(File::open(&img).unwrap(), patches.to_vec()).unwrap();
            let mut v = Vec::new();
            o.read_to_end(&mut v).map(|_| v)
        };
        assert_eq!(read(&patches).unwrap(), read(&in_memory).unwrap());

        // Removed from its directory: still served whole from the open file.
        std::fs::remove_file(&piece).unwrap();
        assert_eq!(read(&patches).unwrap(), read(&in_memory).unwrap());

        // Rewritten (another size, or another time): an error, not a mix of two pieces.
        std::fs::write(&piece, b"from a file").unwrap();
        let data = PieceData::File(Arc::new(PieceFile::open(&piece).unwrap()));
        let patches = t.patches_of(&[("srv/piece", data)]).unwrap();
        std::fs::write(&piece, b"another one").unwrap();
        let f = File::options().write(true).open(&piece).unwrap();
        f.set_times(std::fs::FileTimes::new().set_modified(std::time::UNIX_EPOCH))
            .unwrap();
        let e = read(&patches).unwrap_err();
        assert!(e.to_string().contains("changed while"), "{e}");
        std::fs::write(&piece, b"short").unwrap();
        assert!(read(&patches).is_err());
        // A directory is not a piece.
        assert!(PieceFile::open(dir.path()).is_err());
    }

    /// A FAT file's slot, applied as plain patches, gives the bytes the FAT writer gives
    /// with the piece in place: the generic encodings say what the FAT fields need.
    #[test]
    fn fat_slot_patches_equal_a_fresh_fat_build() {
        use imgpipe_gptpart::{FatBuilder, FatType};
        let at = 0x10000u64;
        for (t, size) in [(FatType::Fat16, 8u64 << 20), (FatType::Fat32, 40 << 20)] {
            let volume = |piece: &[u8]| {
                let mut b = FatBuilder::new(size).fat_type(t).epoch(1_700_000_000);
                b.add_file("EFI/BOOT/BOOTX64.EFI", vec![1; 5000]).unwrap();
                b.reserve_file("srv/kiosk piece.html", 30_000, piece.to_vec())
                    .unwrap();
                let mut out = Vec::new();
                let s = b.build(&mut out).unwrap();
                (out, s.reserved)
            };
            let (base, reserved) = volume(b"");
            let slot = crate::build::fat_slot(&reserved[0], at, "test (fat)");
            let table = SlotTable {
                version: 1,
                image_len: 0,
                slots: vec![slot],
            };
            // The table survives its own encoding and checks.
            assert_eq!(SlotTable::parse(&table.encode().unwrap()).unwrap(), table);
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("img");
            let mut img = vec![0u8; at as usize];
            img.extend_from_slice(&base);
            for piece in [
                vec![3u8; 30_000],
                b"<p>x</p>".to_vec(),
                Vec::new(),
                vec![4; 513],
            ] {
                std::fs::write(&p, &img).unwrap();
                let f = File::options().read(true).write(true).open(&p).unwrap();
                apply(
                    &f,
                    &table.patches(&[("srv/kiosk piece.html", &piece)]).unwrap(),
                )
                .unwrap();
                let got = std::fs::read(&p).unwrap();
                let (fresh, _) = volume(&piece);
                assert!(
                    got[at as usize..] == fresh[..],
                    "{t:?}: {} bytes",
                    piece.len()
                );
            }
        }
        // Chain parameters that do not fit the capacity are refused.
        let mut bad = table();
        bad.slots[0].size_fields[0] = SizeField {
            offset: 10,
            encoding: "le16-chain".into(),
            unit: 512,
            count: 1 << 40,
            value: 2,
            end: 0xFFFF,
        };
        assert!(SlotTable::parse(&bad.encode().unwrap()).is_err());
    }
}
