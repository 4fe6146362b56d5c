//! The format registry: one detector for every format imgpipe reads, and one typed
//! inspection per format from which both the text and the JSON reports are rendered.
//!
//! [`detect`] looks at the first [`HEAD_LEN`] bytes only, so a caller holding a head (the
//! first bytes of a partition, a file inside an ISO) can recognise what it holds without
//! giving a reader. [`inspect`] reads the structures the format declares and says when the
//! image is shorter than what it declares ([`Report::truncated`]).

use std::io::{Read, Seek, SeekFrom};

use serde::Serialize;

use crate::error::{Error, Result};

/// How many leading bytes [`detect`] needs to recognise every format (the ISO9660 volume
/// descriptor at sector 16 is the deepest magic; 64 KiB leaves room for 4 KiB-sector GPTs).
pub const HEAD_LEN: u64 = 64 * 1024;

/// The formats imgpipe recognises, in the order [`detect`] tries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Format {
    /// LUKS2 volume.
    Luks2,
    /// squashfs 4.0 image.
    Squashfs,
    /// EROFS image.
    Erofs,
    /// ISO9660 image, hybrid or not.
    Iso9660,
    /// GPT disk.
    Gpt,
    /// FAT12/16/32 file system.
    Fat,
    /// MBR-partitioned disk.
    Mbr,
    /// Kickstart file.
    Kickstart,
}

impl Format {
    /// The name used in reports and JSON (`iso9660`, `squashfs`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Format::Luks2 => "luks2",
            Format::Squashfs => "squashfs",
            Format::Erofs => "erofs",
            Format::Iso9660 => "iso9660",
            Format::Gpt => "gpt",
            Format::Fat => "fat",
            Format::Mbr => "mbr",
            Format::Kickstart => "kickstart",
        }
    }

    /// Whether the format is a filesystem or disk that nested diffs can open.
    pub fn is_filesystem(self) -> bool {
        matches!(
            self,
            Format::Iso9660 | Format::Gpt | Format::Squashfs | Format::Erofs | Format::Fat
        )
    }

    /// Whether it holds a file tree (every filesystem but a partition table): any two such
    /// are compared file by file, whatever their formats.
    pub fn holds_tree(self) -> bool {
        self.is_filesystem() && self != Format::Gpt
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Recognises the format from the first bytes of an image (up to [`HEAD_LEN`] of them).
///
/// The order matters: LUKS2 and the filesystems whose magic is at a fixed place first; ISO
/// before GPT and MBR, because a hybrid ISO carries both in its system area; GPT before FAT
/// and FAT before MBR, because a FAT boot sector also ends in `0x55AA`; kickstart (text) last.
pub fn detect(head: &[u8]) -> Option<Format> {
    if imgpipe_luks::detect(head) {
        Some(Format::Luks2)
    } else if imgpipe_squashfs::detect_squashfs(head) {
        Some(Format::Squashfs)
    } else if imgpipe_squashfs::detect_erofs(head) {
        Some(Format::Erofs)
    } else if imgpipe_isofs::detect(head) {
        Some(Format::Iso9660)
    } else if imgpipe_gptpart::detect_gpt(head).is_some() {
        Some(Format::Gpt)
    } else if imgpipe_gptpart::detect_fat(head) {
        Some(Format::Fat)
    } else if imgpipe_gptpart::detect_mbr(head) {
        Some(Format::Mbr)
    } else if imgpipe_kickstart::detect(head) {
        Some(Format::Kickstart)
    } else {
        None
    }
}

/// The typed description of one image, per format (each crate's own inspection type).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum Inspection {
    /// A LUKS2 volume.
    Luks2(Box<imgpipe_luks::Inspection>),
    /// A squashfs image.
    Squashfs(Box<imgpipe_squashfs::SquashfsInspection>),
    /// An EROFS image.
    Erofs(Box<imgpipe_squashfs::ErofsInspection>),
    /// An ISO9660 image.
    Iso9660(Box<imgpipe_isofs::Inspection>),
    /// A GPT disk.
    Gpt(Box<imgpipe_gptpart::GptDisk>),
    /// A FAT file system.
    Fat(Box<imgpipe_gptpart::FatBootSector>),
    /// An MBR disk.
    Mbr(Box<imgpipe_gptpart::MbrInspection>),
    /// A kickstart file.
    Kickstart(Box<imgpipe_kickstart::Inspection>),
}

impl Inspection {
    /// The format described.
    pub fn format(&self) -> Format {
        match self {
            Inspection::Luks2(_) => Format::Luks2,
            Inspection::Squashfs(_) => Format::Squashfs,
            Inspection::Erofs(_) => Format::Erofs,
            Inspection::Iso9660(_) => Format::Iso9660,
            Inspection::Gpt(_) => Format::Gpt,
            Inspection::Fat(_) => Format::Fat,
            Inspection::Mbr(_) => Format::Mbr,
            Inspection::Kickstart(_) => Format::Kickstart,
        }
    }

    /// How many bytes the image says it occupies, where its structures say so.
    pub fn declared_size(&self) -> Option<u64> {
        match self {
            Inspection::Squashfs(s) => Some(s.bytes_used),
            Inspection::Erofs(e) => {
                Some(u64::from(e.blocks).saturating_mul(u64::from(e.block_size)))
            }
            Inspection::Iso9660(i) => {
                let volume = u64::from(i.primary.volume_space_size)
                    .saturating_mul(u64::from(i.primary.logical_block_size));
                // A hybrid image may append partitions (an ESP) after the ISO volume.
                let parts = i
                    .system_area
                    .partitions
                    .iter()
                    .filter(|p| p.partition_type != "0xee")
                    .map(|p| p.start.saturating_add(p.sectors).saturating_mul(512))
                    .max()
                    .unwrap_or(0);
                Some(volume.max(parts))
            }
            Inspection::Gpt(d) => {
                let last = d.header.my_lba.max(d.header.alternate_lba);
                let parts = d
                    .partitions
                    .iter()
                    .map(|p| p.last_lba.saturating_add(1))
                    .max()
                    .unwrap_or(0);
                Some(
                    last.saturating_add(1)
                        .max(parts)
                        .saturating_mul(d.sector_size),
                )
            }
            Inspection::Fat(b) => {
                Some(u64::from(b.total_sectors).saturating_mul(u64::from(b.bytes_per_sector)))
            }
            Inspection::Mbr(m) => m
                .partitions
                .iter()
                .map(|(_, p)| {
                    u64::from(p.first_lba)
                        .saturating_add(u64::from(p.sectors))
                        .saturating_mul(512)
                })
                .max(),
            Inspection::Luks2(l) => {
                let segments = l
                    .segment_details
                    .iter()
                    .map(|s| s.offset.saturating_add(s.size.unwrap_or(0)));
                let areas = l
                    .keyslot_details
                    .iter()
                    .map(|k| k.area_offset.saturating_add(k.area_size));
                segments
                    .chain(areas)
                    .chain([l.hdr_size.saturating_mul(2)])
                    .max()
            }
            Inspection::Kickstart(_) => None,
        }
    }
}

/// A named top-level region of an image (a GPT partition, the ISO9660 system area, a LUKS2
/// header copy), to which a differing byte range is attributed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Region {
    /// What it is, e.g. `gpt partition 2 (root)`.
    pub name: String,
    /// Where it is.
    #[serde(flatten)]
    pub range: crate::ByteRange,
    /// For a GPT partition, its 1-based index.
    #[serde(skip)]
    pub partition: Option<u32>,
}

impl Inspection {
    /// The top-level regions of the image, in byte order where the format orders them.
    pub fn regions(&self) -> Vec<Region> {
        let mut out = Vec::new();
        let mut add = |name: String, start: u64, len: u64, partition: Option<u32>| {
            out.push(Region {
                name,
                range: crate::ByteRange { start, len },
                partition,
            })
        };
        match self {
            Inspection::Gpt(d) => {
                let ss = d.sector_size;
                add(
                    "protective MBR and primary GPT".into(),
                    0,
                    34 * ss.min(512).max(ss),
                    None,
                );
                for p in &d.partitions {
                    add(
                        format!("gpt partition {} ({})", p.index, p.name),
                        p.first_lba.saturating_mul(ss),
                        p.last_lba
                            .saturating_sub(p.first_lba)
                            .saturating_add(1)
                            .saturating_mul(ss),
                        Some(p.index),
                    );
                }
            }
            Inspection::Iso9660(i) => {
                add("system area (MBR/GPT)".into(), 0, 32768, None);
                let n = i.descriptors.len().max(1) as u64;
                add("volume descriptors".into(), 32768, n * 2048, None);
            }
            Inspection::Luks2(l) => {
                let hdr = l.hdr_size;
                add("primary LUKS2 header".into(), 0, hdr, None);
                add("secondary LUKS2 header".into(), hdr, hdr, None);
                add(
                    "LUKS2 keyslots area".into(),
                    hdr.saturating_mul(2),
                    l.keyslots_size,
                    None,
                );
                for seg in &l.segment_details {
                    // A dynamic segment runs to the end of the image, whatever its size.
                    let len = seg.size.unwrap_or(u64::MAX - seg.offset);
                    add(
                        format!("LUKS2 {} segment {}", seg.kind, seg.id),
                        seg.offset,
                        len,
                        None,
                    );
                }
            }
            _ => {}
        }
        out
    }
}

/// The image is shorter than its structures declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Truncation {
    /// Bytes the image declares.
    pub declared: u64,
    /// Bytes there are.
    pub actual: u64,
}

/// What [`inspect`] found: the format, the size, the typed description, and whether the
/// image is truncated.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Which format.
    pub format: Format,
    /// Size of the source in bytes.
    pub size: u64,
    /// Set when the image declares more bytes than the source has.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated: Option<Truncation>,
    /// The format's own description.
    pub details: Inspection,
}

impl Report {
    /// The warning to print for a truncated image, if it is one.
    pub fn warning(&self) -> Option<String> {
        self.truncated.map(|t| {
            format!(
                "image is truncated: the {} declares {} bytes, the file has {} ({} missing)",
                self.format,
                t.declared,
                t.actual,
                t.declared - t.actual
            )
        })
    }
}

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { what, source }
}

fn layer(format: Format, e: impl std::fmt::Display) -> Error {
    Error::Layer {
        layer: format.name().to_owned(),
        message: e.to_string(),
    }
}

/// Reads up to [`HEAD_LEN`] bytes from the start of `r`.
pub fn read_head<R: Read + Seek>(r: &mut R) -> Result<Vec<u8>> {
    r.seek(SeekFrom::Start(0))
        .map_err(io("seeking to the start"))?;
    let mut head = Vec::new();
    r.take(HEAD_LEN)
        .read_to_end(&mut head)
        .map_err(io("reading the first bytes"))?;
    Ok(head)
}

/// Describes `r` as `format` (without detection).
pub fn inspect_as<R: Read + Seek>(format: Format, mut r: R) -> Result<Inspection> {
    r.seek(SeekFrom::Start(0))
        .map_err(io("seeking to the start"))?;
    Ok(match format {
        Format::Luks2 => Inspection::Luks2(Box::new(
            imgpipe_luks::inspect(r).map_err(|err| layer(format, err))?,
        )),
        Format::Squashfs => Inspection::Squashfs(Box::new(
            imgpipe_squashfs::inspect_squashfs(r).map_err(|err| layer(format, err))?,
        )),
        Format::Erofs => Inspection::Erofs(Box::new(
            imgpipe_squashfs::inspect_erofs(r).map_err(|err| layer(format, err))?,
        )),
        Format::Iso9660 => Inspection::Iso9660(Box::new(
            imgpipe_isofs::inspect(r).map_err(|err| layer(format, err))?,
        )),
        Format::Gpt => Inspection::Gpt(Box::new(inspect_gpt(r)?)),
        Format::Fat => Inspection::Fat(Box::new(
            imgpipe_gptpart::inspect_fat(r).map_err(|err| layer(format, err))?,
        )),
        Format::Mbr => Inspection::Mbr(Box::new(
            imgpipe_gptpart::inspect_mbr(r).map_err(|err| layer(format, err))?,
        )),
        Format::Kickstart => {
            // A kickstart is a small text file; refuse to read a huge one whole.
            const MAX: u64 = 16 << 20;
            let mut text = Vec::new();
            r.take(MAX + 1)
                .read_to_end(&mut text)
                .map_err(io("reading a kickstart file"))?;
            if text.len() as u64 > MAX {
                return Err(Error::Unsupported {
                    feature: "kickstart files larger than 16 MiB",
                });
            }
            Inspection::Kickstart(Box::new(imgpipe_kickstart::inspect(
                &String::from_utf8_lossy(&text),
            )))
        }
    })
}

/// Reads a GPT; when the image is cut short before the backup header the primary header
/// declares, reads it again as if it were zero-filled to that size, so the table is still
/// described (the missing backup is reported as its problem) and the truncation measured.
fn inspect_gpt<R: Read + Seek>(mut r: R) -> Result<imgpipe_gptpart::GptDisk> {
    let first = match imgpipe_gptpart::inspect_gpt(&mut r) {
        Ok(d) => return Ok(d),
        Err(e) => e,
    };
    let fail = || layer(Format::Gpt, &first);
    let actual = r.seek(SeekFrom::End(0)).map_err(io("sizing the image"))?;
    let head = read_head(&mut r)?;
    let ss = imgpipe_gptpart::detect_gpt(&head).ok_or_else(fail)?;
    let at = usize::try_from(ss + 32).map_err(|_| fail())?;
    let alternate = head
        .get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
        .ok_or_else(fail)?;
    let declared = alternate
        .checked_add(1)
        .and_then(|n| n.checked_mul(ss))
        .ok_or_else(fail)?;
    // Only a disk shorter than its header says is read this way, and never one claiming
    // more than 16 TiB beyond what exists.
    if declared <= actual || declared - actual > 1 << 44 {
        return Err(fail());
    }
    let padded = ZeroExtended {
        inner: r,
        inner_len: actual,
        len: declared,
        pos: 0,
    };
    imgpipe_gptpart::inspect_gpt(padded).map_err(|_| fail())
}

/// A reader that continues with zeros after its inner reader's end, up to `len`.
struct ZeroExtended<R> {
    inner: R,
    inner_len: u64,
    len: u64,
    pos: u64,
}

impl<R: Read + Seek> Read for ZeroExtended<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let Some(buf) = buf.get_mut(..want) else {
            return Ok(0);
        };
        let n = if self.pos < self.inner_len {
            let real = usize::try_from(self.inner_len - self.pos).unwrap_or(usize::MAX);
            let take = want.min(real);
            self.inner.seek(SeekFrom::Start(self.pos))?;
            self.inner.read(buf.get_mut(..take).unwrap_or_default())?
        } else {
            buf.fill(0);
            want
        };
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: Read + Seek> Seek for ZeroExtended<R> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = target.ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start")
        })?;
        Ok(self.pos)
    }
}

/// Recognises and describes an image: [`detect`] on its first bytes, then the format's own
/// inspection, then a comparison of the declared and the actual size.
///
/// Returns `Ok(None)` when the format is not recognised.
pub fn inspect<R: Read + Seek>(mut r: R) -> Result<Option<Report>> {
    // Seek to the end rather than trust metadata: block devices report size 0.
    let size = r.seek(SeekFrom::End(0)).map_err(io("sizing the image"))?;
    let head = read_head(&mut r)?;
    let Some(format) = detect(&head) else {
        return Ok(None);
    };
    let details = inspect_as(format, &mut r)?;
    let truncated = details
        .declared_size()
        .filter(|&d| d > size)
        .map(|declared| Truncation {
            declared,
            actual: size,
        });
    Ok(Some(Report {
        format,
        size,
        truncated,
        details,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_nothing_in_zeros_and_text() {
        assert_eq!(detect(&[0u8; 70000]), None);
        assert_eq!(detect(b"hello world\n"), None);
        assert_eq!(detect(b""), None);
    }

    #[test]
    fn detects_by_magic() {
        let mut sq = vec![0u8; 4096];
        sq[..4].copy_from_slice(b"hsqs");
        // A squashfs head needs a whole superblock.
        assert_eq!(detect(&sq), Some(Format::Squashfs));
        let mut iso = vec![0u8; 40000];
        iso[32769..32774].copy_from_slice(b"CD001");
        assert_eq!(detect(&iso), Some(Format::Iso9660));
        let mut gpt = vec![0u8; 8192];
        gpt[512..520].copy_from_slice(b"EFI PART");
        assert_eq!(detect(&gpt), Some(Format::Gpt));
        assert_eq!(
            detect(b"lang en_US.UTF-8\nrootpw --lock\n"),
            Some(Format::Kickstart)
        );
    }

    #[test]
    fn unrecognised_is_none_not_an_error() {
        let r = inspect(std::io::Cursor::new(vec![0u8; 1000])).unwrap();
        assert!(r.is_none());
    }
}
