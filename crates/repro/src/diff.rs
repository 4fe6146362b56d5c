//! Two builds compared in one pass over each: the byte diff, its ranges attributed to the
//! structures of the first image (from its typed [`Inspection`]), and the file-level
//! comparison handed the differing ranges ([`Differing`]) so that partitions and files lying
//! at the same place in both images and untouched by any differing byte are not read again.

use std::fs::File;
use std::io::{BufReader, Read};

use serde::Serialize;

use crate::compare::{ByteRange, DiffOptions, RangeDiff, diff_streams};
use crate::error::{Error, Result};
use crate::format::{Format, Inspection};
use crate::nested::{NestedDiff, NestedOptions, Passphrases};

/// Where two images may differ: a superset of the differing bytes
/// ([`RangeDiff::cover`]). A byte range at the same offset in both images that none of
/// these ranges touches is identical in both, without reading it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Differing {
    /// Sorted, disjoint.
    ranges: Vec<ByteRange>,
    /// The ranges were widened ([`Differing::window`]): their ends need not differ.
    widened: bool,
}

impl Differing {
    /// The cover of a byte diff.
    pub fn from_diff(d: &RangeDiff) -> Self {
        Self::from_ranges(d.cover.clone())
    }

    /// From ranges in any order (overlaps allowed).
    pub fn from_ranges(mut ranges: Vec<ByteRange>) -> Self {
        ranges.sort_by_key(|r| r.start);
        let mut out: Vec<ByteRange> = Vec::with_capacity(ranges.len());
        for r in ranges.into_iter().filter(|r| r.len > 0) {
            match out.last_mut() {
                Some(last) if r.start <= last.end() => {
                    last.len = last.end().max(r.end()) - last.start;
                }
                _ => out.push(r),
            }
        }
        Self {
            ranges: out,
            widened: false,
        }
    }

    /// The ranges inside `start..start + len`, moved to start at 0 and widened to whole
    /// `unit`-byte units of it: where a unit-wise transform of those bytes (a LUKS2 payload
    /// decrypted with one key on both sides, sector by sector) may differ. Only
    /// [`touches`](Self::touches) and [`unchanged`](Self::unchanged) answer for the result;
    /// which bytes inside a unit differ is not known, so [`changed`](Self::changed) never
    /// says yes.
    pub(crate) fn window(&self, start: u64, len: u64, unit: u64) -> Self {
        let unit = unit.max(1);
        let end = start.saturating_add(len);
        let i = self.ranges.partition_point(|r| r.end() <= start);
        let ranges = self
            .ranges
            .get(i..)
            .unwrap_or_default()
            .iter()
            .take_while(|r| r.start < end)
            .map(|r| {
                let from = r.start.max(start) - start;
                let to = r.end().min(end) - start;
                let from = from - from % unit;
                let to = to.div_ceil(unit).saturating_mul(unit);
                ByteRange {
                    start: from,
                    len: to - from,
                }
            })
            .collect();
        Self {
            widened: true,
            ..Self::from_ranges(ranges)
        }
    }

    /// The ranges, sorted and disjoint.
    pub(crate) fn ranges(&self) -> &[ByteRange] {
        &self.ranges
    }

    /// Whether any differing byte lies in `start..start + len`.
    pub fn touches(&self, start: u64, len: u64) -> bool {
        let end = start.saturating_add(len);
        // The first range ending after `start`; it touches if it begins before `end`.
        let i = self.ranges.partition_point(|r| r.end() <= start);
        self.ranges.get(i).is_some_and(|r| r.start < end)
    }

    /// Whether a differing byte is known to lie in `start..start + len`: a range begins or
    /// ends there (a range's first and last bytes differ; its inside may not).
    pub fn surely_touches(&self, start: u64, len: u64) -> bool {
        if self.widened {
            return false;
        }
        let end = start.saturating_add(len);
        let i = self.ranges.partition_point(|r| r.end() <= start);
        self.ranges
            .get(i..)
            .unwrap_or_default()
            .iter()
            .take_while(|r| r.start < end)
            .any(|r| r.start >= start || r.end() <= end)
    }

    /// Whether `len` bytes at `a_start` in A and at `b_start` in B are known to differ: the
    /// same offset, and a differing byte surely there.
    pub fn changed(&self, a_start: u64, b_start: u64, len: u64) -> bool {
        a_start == b_start && self.surely_touches(a_start, len)
    }

    /// Whether `len` bytes at `a_start` in A and at `b_start` in B are known identical: the
    /// same offset, and no differing byte there.
    pub fn unchanged(&self, a_start: u64, b_start: u64, len: u64) -> bool {
        a_start == b_start && !self.touches(a_start, len)
    }
}

/// One differing range and the regions of the first image it touches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// The bytes.
    #[serde(flatten)]
    pub range: ByteRange,
    /// Names of the regions of the first image that overlap it.
    pub regions: Vec<String>,
}

/// How [`diff_images`] compares.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ImageDiffOptions {
    /// The byte diff.
    pub bytes: DiffOptions,
    /// The file-level comparison; `None` compares bytes only.
    pub files: Option<NestedOptions>,
    /// What opens the LUKS2 volumes the file-level comparison meets (an image that is one,
    /// a partition or file holding one), so that their payloads are compared as nested
    /// layers; without, an encrypted payload that differs is reported with
    /// [`ENCRYPTED_HINT`](crate::nested::ENCRYPTED_HINT). A passphrase that opens no
    /// keyslot ends the diff with [`Error::WrongPassphrase`](crate::Error::WrongPassphrase).
    pub passphrases: Option<std::sync::Arc<Passphrases>>,
}

impl Default for ImageDiffOptions {
    fn default() -> Self {
        Self {
            bytes: DiffOptions::default(),
            files: Some(NestedOptions::default()),
            passphrases: None,
        }
    }
}

/// The version of the [`ImageDiff`] document: 2 added `schema` and each file difference's
/// `kind`, `a`, `b` and `noise`.
pub const DIFF_SCHEMA: u32 = 2;

/// What [`diff_images`] found (the `imgpipe diff --json` report).
#[derive(Debug, Clone, Serialize)]
pub struct ImageDiff {
    /// The version of this document's shape ([`DIFF_SCHEMA`]).
    pub schema: u32,
    /// Whether both files are byte-identical.
    pub identical: bool,
    /// Format of the first file, when recognised.
    pub format: Option<Format>,
    /// Size of the first file.
    pub len_a: u64,
    /// Size of the second file.
    pub len_b: u64,
    /// Total differing bytes.
    pub differing_bytes: u64,
    /// The differing ranges, attributed.
    pub differences: Vec<Difference>,
    /// Ranges beyond [`DiffOptions::max_ranges`].
    pub ranges_omitted: u64,
    /// File-level differences through nested filesystems, when the format allows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<NestedDiff>,
    /// Why the file-level comparison stopped, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files_error: Option<String>,
}

/// Attributes each range to the regions of `inspection` it overlaps.
pub fn attribute(ranges: &[ByteRange], inspection: Option<&Inspection>) -> Vec<Difference> {
    let regions = inspection.map(Inspection::regions).unwrap_or_default();
    ranges
        .iter()
        .map(|r| Difference {
            range: *r,
            regions: regions
                .iter()
                .filter(|k| k.range.start < r.end() && r.start < k.range.end())
                .map(|k| k.name.clone())
                .collect(),
        })
        .collect()
}

/// A reader that reports how many bytes it read.
struct Counted<'p, R> {
    inner: R,
    progress: &'p mut dyn FnMut(u64),
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.progress)(n as u64);
        Ok(n)
    }
}

/// Compares two images, each opened once by the caller: streams both (the only full read),
/// attributes the differing ranges to the first image's structures, then, when they differ
/// and are filesystems, compares them file by file, handed the differing ranges so that
/// what is known identical is not read again. `progress` is told the bytes of `a` streamed.
pub fn diff_images(
    a: &File,
    b: &File,
    opts: ImageDiffOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<ImageDiff> {
    diff_images_with(a, b, opts, progress, None)
}

/// [`diff_images`], handing both versions of each small differing file to `sink` (see
/// [`crate::nested::diagnose_files_with`]).
pub fn diff_images_with(
    a: &File,
    b: &File,
    opts: ImageDiffOptions,
    progress: &mut dyn FnMut(u64),
    sink: Option<crate::nested::ContentSink<'_>>,
) -> Result<ImageDiff> {
    let counted = Counted {
        inner: BufReader::with_capacity(1 << 20, a),
        progress,
    };
    let d = diff_streams(counted, BufReader::with_capacity(1 << 20, b), opts.bytes)?;
    // An unrecognised or unreadable first image is still compared byte by byte.
    let recognised = crate::format::inspect(a).ok().flatten();
    let differences = attribute(&d.ranges, recognised.as_ref().map(|r| &r.details));
    let format = recognised.as_ref().map(|r| r.format);
    let (mut files, mut files_error) = (None, None);
    if let Some(nested) = opts.files
        && !d.identical
        && format.is_some_and(|f| f.is_filesystem() || f == Format::Luks2)
    {
        let differing = Differing::from_diff(&d);
        let keys = opts.passphrases.as_deref();
        match crate::nested::diagnose(a, b, nested, Some(&differing), sink, keys) {
            Ok(n) => files = Some(n),
            // The caller's passphrase is wrong: an error of the input, not of an image.
            Err(e @ Error::WrongPassphrase { .. }) => return Err(e),
            Err(e) => files_error = Some(e.to_string()),
        }
    }
    Ok(ImageDiff {
        schema: DIFF_SCHEMA,
        identical: d.identical,
        format,
        len_a: d.len_a,
        len_b: d.len_b,
        differing_bytes: d.differing_bytes,
        differences,
        ranges_omitted: d.ranges_omitted,
        files,
        files_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: u64, len: u64) -> ByteRange {
        ByteRange { start, len }
    }

    #[test]
    fn touches_and_unchanged() {
        let d = Differing::from_ranges(vec![r(100, 10), r(50, 5), r(105, 20), r(0, 0)]);
        assert_eq!(d.ranges, vec![r(50, 5), r(100, 25)]);
        assert!(!d.touches(0, 50));
        assert!(d.touches(0, 51));
        assert!(!d.touches(55, 45));
        assert!(d.touches(124, 1));
        assert!(!d.touches(125, 1000));
        assert!(d.unchanged(0, 0, 50));
        assert!(!d.unchanged(0, 1, 10));
        assert!(Differing::default().unchanged(7, 7, u64::MAX));
        assert!(d.surely_touches(0, 51));
        assert!(d.surely_touches(120, 100));
        // Inside a range but away from its ends: maybe equal bytes.
        assert!(!d.surely_touches(110, 5));
        assert!(d.changed(50, 50, 1));
        assert!(!d.changed(50, 51, 1));
    }

    /// A payload's view of the ranges: moved, cut to the payload and widened to whole
    /// sectors, which it can say are untouched but never surely changed.
    #[test]
    fn windows_widen_to_units_and_never_claim_a_change() {
        let d = Differing::from_ranges(vec![r(1000, 2), r(5000, 600), r(9000, 10)]);
        let w = d.window(1024, 6000, 512);
        assert_eq!(w.ranges(), &[r(3584, 1024)]);
        assert!(w.unchanged(0, 0, 3584));
        assert!(w.touches(3584, 1));
        assert!(!w.changed(3584, 3584, 1024));
        assert!(!w.touches(4608, 1 << 20));
        // A range over the window's start is cut there.
        assert_eq!(d.window(1001, 100, 512).ranges(), &[r(0, 512)]);
        assert_eq!(d.window(0, 100, 0).ranges(), &[] as &[ByteRange]);
    }

    #[test]
    fn cover_contains_every_differing_byte_even_when_ranges_are_omitted() {
        let a = vec![0u8; 3 << 20];
        let mut b = a.clone();
        for i in (0..b.len()).step_by(100_000) {
            b[i] = 1;
        }
        let d = diff_streams(
            &a[..],
            &b[..],
            DiffOptions {
                merge_gap: 0,
                max_ranges: 2,
            },
        )
        .unwrap();
        assert!(d.ranges_omitted > 0);
        let cover = Differing::from_diff(&d);
        for i in (0..b.len()).step_by(100_000) {
            assert!(cover.touches(i as u64, 1), "{i}");
        }
        assert!(!cover.touches(1, 99_999));
    }
}
