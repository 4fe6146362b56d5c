//! Two-build verification: are two images byte-identical, and which byte ranges differ.
//!
//! Both inputs are streamed in 1 MiB chunks, so memory stays bounded whatever their size; the
//! list of differing ranges is capped by [`DiffOptions::max_ranges`].

use std::io::Read;

use serde::Serialize;

use crate::error::{Error, Result};

const CHUNK: usize = 1 << 20;
const BLOCK: usize = 4096;

/// The outcome of comparing two byte streams.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Comparison {
    /// Whether both streams are identical.
    pub identical: bool,
    /// Offset of the first differing byte (or of the shorter stream's end).
    pub first_difference: Option<u64>,
    /// Length of the first stream.
    pub len_a: u64,
    /// Length of the second stream.
    pub len_b: u64,
}

/// A half-open byte range `[start, start + len)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// Number of bytes.
    pub len: u64,
}

impl ByteRange {
    /// One past the last byte.
    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.len)
    }
}

/// How [`diff_streams`] groups and caps what it reports.
#[derive(Debug, Clone, Copy)]
pub struct DiffOptions {
    /// Differing runs separated by fewer equal bytes than this are reported as one range.
    pub merge_gap: u64,
    /// At most this many ranges are kept; the rest are only counted.
    pub max_ranges: usize,
}

impl Default for DiffOptions {
    fn default() -> Self {
        Self {
            merge_gap: 512,
            max_ranges: 1000,
        }
    }
}

/// Which byte ranges of two streams differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RangeDiff {
    /// Whether both streams are identical.
    pub identical: bool,
    /// Length of the first stream.
    pub len_a: u64,
    /// Length of the second stream.
    pub len_b: u64,
    /// Bytes that differ, counting the longer stream's tail.
    pub differing_bytes: u64,
    /// The differing ranges, in order, merged across small gaps (at most `max_ranges`).
    pub ranges: Vec<ByteRange>,
    /// Ranges found beyond `max_ranges`.
    pub ranges_omitted: u64,
    /// Every differing byte lies in one of these ranges (sorted, disjoint, merged across
    /// gaps of up to 64 KiB and never more than `MAX_COVER` of them, however many ranges
    /// were omitted): what the file comparison is handed so that it does not read again
    /// what is known to be identical.
    #[serde(skip)]
    pub cover: Vec<ByteRange>,
}

/// Most ranges in [`RangeDiff::cover`]; beyond, the last one grows to cover the rest.
pub const MAX_COVER: usize = 1 << 16;
/// Gap across which [`RangeDiff::cover`] merges ranges.
const COVER_GAP: u64 = 64 * 1024;

struct RangeSink {
    opts: DiffOptions,
    current: Option<ByteRange>,
    ranges: Vec<ByteRange>,
    omitted: u64,
    differing: u64,
    cover: Vec<ByteRange>,
}

impl RangeSink {
    fn push(&mut self, start: u64, len: u64) {
        self.differing += len;
        let full = self.cover.len() >= MAX_COVER;
        match self.cover.last_mut() {
            Some(c) if full || start <= c.end().saturating_add(COVER_GAP) => {
                c.len = (start + len).max(c.end()) - c.start;
            }
            _ => self.cover.push(ByteRange { start, len }),
        }
        match &mut self.current {
            Some(cur) if start <= cur.end().saturating_add(self.opts.merge_gap) => {
                cur.len = start + len - cur.start;
            }
            cur => {
                if let Some(done) = cur.replace(ByteRange { start, len }) {
                    self.finish_range(done);
                }
            }
        }
    }

    fn finish_range(&mut self, r: ByteRange) {
        if self.ranges.len() < self.opts.max_ranges {
            self.ranges.push(r);
        } else {
            self.omitted += 1;
        }
    }

    fn finish(mut self, len_a: u64, len_b: u64) -> RangeDiff {
        if let Some(r) = self.current.take() {
            self.finish_range(r);
        }
        RangeDiff {
            identical: self.differing == 0,
            len_a,
            len_b,
            differing_bytes: self.differing,
            ranges: self.ranges,
            ranges_omitted: self.omitted,
            cover: self.cover,
        }
    }
}

fn fill<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(Error::Io {
                    what: "reading an image to compare",
                    source,
                });
            }
        }
    }
    Ok(n)
}

/// Reports the differing runs of `a` and `b` (both `pos`-based) into `sink`.
fn diff_chunk(a: &[u8], b: &[u8], pos: u64, sink: &mut RangeSink) {
    for (i, (ba, bb)) in a.chunks(BLOCK).zip(b.chunks(BLOCK)).enumerate() {
        if ba == bb {
            continue;
        }
        let base = pos + (i * BLOCK) as u64;
        let mut j = 0;
        while j < ba.len() {
            if ba[j] == bb[j] {
                j += 1;
                continue;
            }
            let start = j;
            while j < ba.len() && ba[j] != bb[j] {
                j += 1;
            }
            sink.push(base + start as u64, (j - start) as u64);
        }
    }
}

/// Streams both readers and reports which byte ranges differ, in bounded memory.
pub fn diff_streams<A: Read, B: Read>(mut a: A, mut b: B, opts: DiffOptions) -> Result<RangeDiff> {
    let (mut ba, mut bb) = (vec![0u8; CHUNK], vec![0u8; CHUNK]);
    let mut sink = RangeSink {
        opts,
        current: None,
        ranges: Vec::new(),
        omitted: 0,
        differing: 0,
        cover: Vec::new(),
    };
    let (mut len_a, mut len_b) = (0u64, 0u64);
    loop {
        let na = fill(&mut a, &mut ba)?;
        let nb = fill(&mut b, &mut bb)?;
        let common = na.min(nb);
        diff_chunk(&ba[..common], &bb[..common], len_a.max(len_b), &mut sink);
        if na != nb {
            // One stream has ended: the rest of the longer one differs. The loop goes on
            // until both are exhausted, so the tail streams too.
            sink.push(
                len_a.max(len_b) + common as u64,
                (na.max(nb) - common) as u64,
            );
        }
        len_a += na as u64;
        len_b += nb as u64;
        if na < CHUNK && nb < CHUNK {
            break;
        }
    }
    Ok(sink.finish(len_a, len_b))
}

/// Streams both readers in 1 MiB chunks (bounded memory) and reports the first difference.
pub fn compare_streams<A: Read, B: Read>(a: A, b: B) -> Result<Comparison> {
    let d = diff_streams(
        a,
        b,
        DiffOptions {
            merge_gap: 0,
            max_ranges: 1,
        },
    )?;
    Ok(Comparison {
        identical: d.identical,
        first_difference: d.ranges.first().map(|r| r.start),
        len_a: d.len_a,
        len_b: d.len_b,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn finds_first_difference() {
        let a = vec![1u8; 3 << 20];
        let mut b = a.clone();
        assert!(compare_streams(&a[..], &b[..]).unwrap().identical);
        b[(2 << 20) + 5] = 0;
        let c = compare_streams(&a[..], &b[..]).unwrap();
        assert_eq!(c.first_difference, Some((2 << 20) + 5));
        let c = compare_streams(&a[..10], &a[..12]).unwrap();
        assert_eq!((c.identical, c.first_difference), (false, Some(10)));
    }

    #[test]
    fn merges_nearby_runs_and_caps() {
        let a = vec![0u8; (1 << 20) + 100];
        let mut b = a.clone();
        b[10] = 1;
        b[12] = 1; // within merge_gap of 10: one range 10..13
        b[5000] = 1;
        b[(1 << 20) - 1] = 1; // spans the chunk boundary with the next one
        b[1 << 20] = 1;
        let d = diff_streams(
            &a[..],
            &b[..],
            DiffOptions {
                merge_gap: 4,
                max_ranges: 10,
            },
        )
        .unwrap();
        assert_eq!(d.differing_bytes, 5);
        assert_eq!(
            d.ranges,
            [
                ByteRange { start: 10, len: 3 },
                ByteRange {
                    start: 5000,
                    len: 1
                },
                ByteRange {
                    start: (1 << 20) - 1,
                    len: 2
                },
            ]
        );
        let d = diff_streams(
            &a[..],
            &b[..],
            DiffOptions {
                merge_gap: 0,
                max_ranges: 2,
            },
        )
        .unwrap();
        // Adjacent runs still merge at gap 0: four ranges, two kept.
        assert_eq!((d.ranges.len(), d.ranges_omitted), (2, 2));
    }

    #[test]
    fn longer_tail_counts_across_chunks() {
        let a = [7u8; 100];
        let b = vec![7u8; (2 << 20) + 3];
        let d = diff_streams(&a[..], &b[..], DiffOptions::default()).unwrap();
        assert_eq!((d.len_a, d.len_b), (100, (2 << 20) + 3));
        assert_eq!(d.differing_bytes, (2 << 20) + 3 - 100);
        assert_eq!(
            d.ranges,
            [ByteRange {
                start: 100,
                len: (2 << 20) + 3 - 100
            }]
        );
        let d = diff_streams(&b[..], &a[..], DiffOptions::default()).unwrap();
        assert_eq!(
            d.ranges,
            [ByteRange {
                start: 100,
                len: (2 << 20) + 3 - 100
            }]
        );
    }

    proptest! {
        #[test]
        fn ranges_cover_exactly_the_differing_bytes(
            a in proptest::collection::vec(0u8..3, 0..20_000),
            b in proptest::collection::vec(0u8..3, 0..20_000),
        ) {
            let d = diff_streams(&a[..], &b[..], DiffOptions { merge_gap: 0, max_ranges: usize::MAX }).unwrap();
            let n = a.len().max(b.len());
            let expected: Vec<bool> = (0..n).map(|i| a.get(i) != b.get(i)).collect();
            let mut got = vec![false; n];
            for r in &d.ranges {
                for i in r.start..r.end() {
                    got[i as usize] = true;
                }
            }
            prop_assert_eq!(got, expected.clone());
            prop_assert_eq!(d.differing_bytes, expected.iter().filter(|&&x| x).count() as u64);
            prop_assert_eq!(d.identical, a == b);
        }
    }
}
