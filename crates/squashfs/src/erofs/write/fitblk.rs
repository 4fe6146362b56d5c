//! Destination-size ("fit block") compression: EROFS compresses to a fixed output size, each
//! physical cluster holding as much input as fits. Each algorithm reports how much of its
//! input it consumed:
//!
//! * lz4 and lz4hc: liblz4's `LZ4_compress_destSize` and `LZ4_compress_HC_destSize`;
//! * lzma: liblzma's MicroLZMA encoder (the format the kernel's lzma decompressor reads),
//!   run with `LZMA_FINISH` on an output buffer of the target size;
//! * deflate (raw, no zlib header; zlib-rs) and zstd (one frame): a search over input prefix
//!   lengths for a long one whose compressed form fits, as erofs-utils 1.8.6 does for
//!   libdeflate and libzstd (first guess from the ratio of the segment's last pcluster, then
//!   the ratio seen, then interpolation).
//!
//! This is the crate's one module with `unsafe`: the liblz4 and liblzma entry points above
//! are not wrapped by the `lz4` and `liblzma` crates.

#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_void};

use crate::error::{Error, Result};

/// An EROFS compression algorithm (`Z_EROFS_COMPRESSION_*`; lz4hc writes lz4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ErofsAlgorithm {
    /// LZ4 (liblz4's fast encoder; no level).
    Lz4,
    /// LZ4 written by liblz4's high-compression encoder (levels 1..=12, default 9).
    Lz4hc,
    /// MicroLZMA (presets 0..=9, or 100..=109 for the extreme variants; default 6).
    Lzma,
    /// Raw DEFLATE through zlib-rs (levels 0..=9, default 2).
    Deflate,
    /// Zstandard (levels 1..=22, default 3).
    Zstd,
}

impl ErofsAlgorithm {
    /// The on-disk algorithm id (`Z_EROFS_COMPRESSION_*`).
    pub fn id(self) -> u8 {
        match self {
            Self::Lz4 | Self::Lz4hc => 0,
            Self::Lzma => 1,
            Self::Deflate => 2,
            Self::Zstd => 3,
        }
    }

    /// The name mkfs.erofs uses for it (`-z NAME`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Lz4 => "lz4",
            Self::Lz4hc => "lz4hc",
            Self::Lzma => "lzma",
            Self::Deflate => "deflate",
            Self::Zstd => "zstd",
        }
    }

    /// The algorithm called `name` (as mkfs.erofs names them).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "lz4" => Self::Lz4,
            "lz4hc" => Self::Lz4hc,
            "lzma" => Self::Lzma,
            "deflate" => Self::Deflate,
            "zstd" => Self::Zstd,
            _ => return None,
        })
    }

    /// The level used when none is given.
    pub fn default_level(self) -> u32 {
        match self {
            Self::Lz4 => 0,
            Self::Lz4hc => 9,
            Self::Lzma => 6,
            // mkfs.erofs 1.8.6 defaults to its own encoder's level 1; zlib-rs's level 1 is
            // far weaker (static codes only: 13 % larger on a /usr tree), its level 2 takes
            // about mkfs.erofs's time for a 4 % smaller image.
            Self::Deflate => 2,
            Self::Zstd => 3,
        }
    }

    /// Whether `level` is one this algorithm takes.
    pub fn level_ok(self, level: u32) -> bool {
        match self {
            Self::Lz4 => level == 0,
            Self::Lz4hc => (1..=12).contains(&level),
            Self::Lzma => level <= 9 || (100..=109).contains(&level),
            Self::Deflate => level <= 9,
            Self::Zstd => (1..=22).contains(&level),
        }
    }
}

unsafe extern "C" {
    fn LZ4_compress_destSize(
        src: *const c_char,
        dst: *mut c_char,
        src_size: *mut c_int,
        target_dst_size: c_int,
    ) -> c_int;
    fn LZ4_sizeofStateHC() -> c_int;
    fn LZ4_compress_HC_destSize(
        state: *mut c_void,
        src: *const c_char,
        dst: *mut c_char,
        src_size: *mut c_int,
        target_dst_size: c_int,
        level: c_int,
    ) -> c_int;
}

// The crates link these libraries; naming them keeps the link lines.
use liblzma_sys as _;
use lz4_sys as _;

fn fail(compressor: &'static str, reason: &'static str) -> Error {
    Error::Compress { compressor, reason }
}

/// One compression of a whole prefix into the whole of a buffer: `Some(compressed length)`
/// when it fit.
type TryOne = fn(&mut Fitter, &[u8], &mut [u8]) -> Result<Option<usize>>;

/// A per-thread compressor: keeps its library state between calls.
pub(super) struct Fitter {
    alg: ErofsAlgorithm,
    level: u32,
    dict_size: u32,
    hc_state: Vec<u64>,
    lzma: Option<Box<liblzma_sys::lzma_stream>>,
    zstd: Option<zstd::bulk::Compressor<'static>>,
    deflate: Option<flate2::Compress>,
    scratch: Vec<u8>,
    /// The last fit of this segment (input, output bytes): the first guess of the next
    /// (zstd, deflate). Reset for each segment, so the bytes never depend on which thread ran what.
    last_fit: Option<(usize, usize)>,
}

impl std::fmt::Debug for Fitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fitter").field("alg", &self.alg).finish()
    }
}

impl Drop for Fitter {
    fn drop(&mut self) {
        if let Some(s) = self.lzma.as_mut() {
            // SAFETY: the stream was zero-initialised (LZMA_STREAM_INIT) and only ever passed
            // to liblzma; lzma_end accepts a stream in any state.
            unsafe { liblzma_sys::lzma_end(&mut **s) };
        }
    }
}

impl Fitter {
    pub(super) fn new(alg: ErofsAlgorithm, level: u32, dict_size: u32) -> Self {
        Self {
            alg,
            level,
            dict_size,
            hc_state: Vec::new(),
            lzma: None,
            zstd: None,
            deflate: None,
            scratch: Vec::new(),
            last_fit: None,
        }
    }

    /// Forgets what earlier calls learnt: called at the start of each segment.
    pub(super) fn start_segment(&mut self) {
        self.last_fit = None;
    }

    /// Compresses the longest prefix of `src` whose compressed form fits in `cap` bytes into
    /// `dst` (replacing its contents). Returns the input bytes consumed (0 when nothing fits).
    pub(super) fn compress(&mut self, src: &[u8], cap: usize, dst: &mut Vec<u8>) -> Result<usize> {
        dst.clear();
        if src.is_empty() || cap == 0 {
            return Ok(0);
        }
        match self.alg {
            ErofsAlgorithm::Lz4 | ErofsAlgorithm::Lz4hc => self.lz4(src, cap, dst),
            ErofsAlgorithm::Lzma => self.microlzma(src, cap, dst),
            ErofsAlgorithm::Deflate => {
                let n = self.fit(src, cap, dst, Self::deflate_try)?;
                // EROFS finds the start of compressed data by skipping leading zeros: a
                // stream that starts with a non-final stored block (first byte 0) gets an
                // unused bit set instead.
                if let Some(b) = dst.first_mut()
                    && *b == 0
                {
                    *b = 1 << 3;
                }
                Ok(n)
            }
            ErofsAlgorithm::Zstd => self.fit(src, cap, dst, Self::zstd_try),
        }
    }

    fn lz4(&mut self, src: &[u8], cap: usize, dst: &mut Vec<u8>) -> Result<usize> {
        let name = self.alg.name();
        let src = src.get(..src.len().min(1 << 30)).unwrap_or(src);
        let cap = cap.min(1 << 30);
        dst.resize(cap, 0);
        // liblz4's fast encoder runs first (for lz4hc too: about a twentieth of HC's cost).
        let mut consumed = src.len() as c_int;
        // SAFETY: `src` holds `consumed` readable bytes and `dst` `cap` writable ones;
        // liblz4 writes at most `cap` bytes and stores the consumed length through the pointer.
        let mut n = unsafe {
            LZ4_compress_destSize(
                src.as_ptr().cast(),
                dst.as_mut_ptr().cast(),
                &mut consumed,
                cap as c_int,
            )
        };
        // lz4hc: where the fast encoder cannot fit more input than the capacity (data
        // already compressed: gzip, PNG, xz), HC would not gain a block either; its result
        // stands and the caller stores the input as it is, without spending HC's time.
        let gains = usize::try_from(consumed).is_ok_and(|c| c > cap);
        if self.alg == ErofsAlgorithm::Lz4hc && (gains || n <= 0) {
            if self.hc_state.is_empty() {
                // SAFETY: a pure function of the library build.
                let size = unsafe { LZ4_sizeofStateHC() };
                let words = usize::try_from(size).unwrap_or(0).div_ceil(8);
                self.hc_state = vec![0u64; words];
            }
            consumed = src.len() as c_int;
            // SAFETY: `hc_state` holds LZ4_sizeofStateHC() bytes, 8-byte aligned; `src` holds
            // `consumed` readable bytes and `dst` `cap` writable ones; liblz4 writes at most
            // `cap` bytes and stores the consumed length through the pointer.
            n = unsafe {
                LZ4_compress_HC_destSize(
                    self.hc_state.as_mut_ptr().cast(),
                    src.as_ptr().cast(),
                    dst.as_mut_ptr().cast(),
                    &mut consumed,
                    cap as c_int,
                    self.level as c_int,
                )
            };
        }
        let (Ok(n), Ok(consumed)) = (usize::try_from(n), usize::try_from(consumed)) else {
            return Err(fail(name, "liblz4 failed"));
        };
        if n > cap || consumed > src.len() {
            return Err(fail(name, "liblz4 reported more than it was given"));
        }
        dst.truncate(n);
        Ok(if n == 0 { 0 } else { consumed })
    }

    fn microlzma(&mut self, src: &[u8], cap: usize, dst: &mut Vec<u8>) -> Result<usize> {
        let name = "lzma";
        let strm = match &mut self.lzma {
            Some(s) => s,
            None => {
                // SAFETY: LZMA_STREAM_INIT is the all-zero lzma_stream.
                let s: liblzma_sys::lzma_stream = unsafe { std::mem::zeroed() };
                self.lzma.insert(Box::new(s))
            }
        };
        // SAFETY: lzma_options_lzma is plain data; lzma_lzma_preset fills it.
        let mut opt: liblzma_sys::lzma_options_lzma = unsafe { std::mem::zeroed() };
        let preset = if self.level >= 100 {
            (self.level - 100) | 0x8000_0000
        } else {
            self.level
        };
        // SAFETY: `opt` is a valid, writable options struct.
        if unsafe { liblzma_sys::lzma_lzma_preset(&mut opt, preset) } != 0 {
            return Err(fail(name, "unknown preset"));
        }
        opt.dict_size = self.dict_size;
        // SAFETY: `strm` is a live stream owned by this Fitter; the encoder (re)initialises it.
        if unsafe { liblzma_sys::lzma_microlzma_encoder(&mut **strm, &opt) } != liblzma_sys::LZMA_OK
        {
            return Err(fail(name, "cannot start the MicroLZMA encoder"));
        }
        dst.resize(cap, 0);
        strm.next_in = src.as_ptr();
        strm.avail_in = src.len();
        strm.next_out = dst.as_mut_ptr();
        strm.avail_out = cap;
        // SAFETY: the in and out pointers cover `src` and `dst` for the lengths given, and
        // both outlive the call; the stream is not used again until re-initialised.
        let ret = unsafe { liblzma_sys::lzma_code(&mut **strm, liblzma_sys::LZMA_FINISH) };
        let (total_in, total_out) = (strm.total_in, strm.total_out);
        strm.next_in = std::ptr::null();
        strm.avail_in = 0;
        strm.next_out = std::ptr::null_mut();
        strm.avail_out = 0;
        if ret != liblzma_sys::LZMA_STREAM_END {
            return Err(fail(name, "the MicroLZMA encoder failed"));
        }
        let (Ok(consumed), Ok(n)) = (usize::try_from(total_in), usize::try_from(total_out)) else {
            return Err(fail(name, "MicroLZMA sizes out of range"));
        };
        if n > cap || consumed > src.len() {
            return Err(fail(name, "MicroLZMA reported more than it was given"));
        }
        dst.truncate(n);
        Ok(consumed)
    }

    fn deflate_try(&mut self, src: &[u8], out: &mut [u8]) -> Result<Option<usize>> {
        let c = self.deflate.get_or_insert_with(|| {
            flate2::Compress::new(flate2::Compression::new(self.level), false)
        });
        c.reset();
        match c.compress(src, out, flate2::FlushCompress::Finish) {
            Ok(flate2::Status::StreamEnd) => Ok(usize::try_from(c.total_out()).ok()),
            Ok(_) => {
                // A zlib-rs 0.6.8 stream that ran out of room is not reset cleanly: its next
                // use can panic or end a stream that does not inflate. A new one is made.
                self.deflate = None;
                Ok(None)
            }
            Err(_) => Err(fail("deflate", "zlib-rs failed")),
        }
    }

    fn zstd_try(&mut self, src: &[u8], out: &mut [u8]) -> Result<Option<usize>> {
        let z = match &mut self.zstd {
            Some(z) => z,
            None => {
                let mut z = zstd::bulk::Compressor::new(self.level as i32)
                    .map_err(|_| fail("zstd", "context init"))?;
                z.set_parameter(zstd::zstd_safe::CParameter::WindowLog(
                    self.dict_size.trailing_zeros(),
                ))
                .map_err(|_| fail("zstd", "window log"))?;
                self.zstd.insert(z)
            }
        };
        match z.compress_to_buffer(src, out) {
            Ok(n) => Ok(Some(n)),
            // Too small a buffer is the only error a valid context gives.
            Err(_) => Ok(None),
        }
    }

    /// A long prefix whose compressed form (`try_one`: a zstd frame, a raw deflate stream)
    /// fits in `cap`: erofs-utils' search (first guess from the segment's last pcluster,
    /// else four times the target, then the ratio seen), except that the size of a prefix
    /// that did not fit is known too (the output buffer holds twice the target), so the
    /// next guess interpolates between the two, and the search stops once the prefixes that
    /// fit and that do not are within 1/64 of each other. Each guess is a full compression:
    /// a bisection down to the byte costs three times as many for about 1 % of the input.
    fn fit(&mut self, src: &[u8], cap: usize, dst: &mut Vec<u8>, try_one: TryOne) -> Result<usize> {
        let mut scratch = std::mem::take(&mut self.scratch);
        let (mut l, mut nl) = (0usize, 0usize); // longest prefix known to fit, its size
        let mut r = src.len() + 1; // shortest prefix known not to fit
        let mut nr: Option<usize> = None; // its size, when known
        // A frame of `full` bytes fills the pcluster well enough; guesses aim at `aim`.
        let (full, aim) = (cap - cap / 128, cap - cap / 256);
        // The first guess: the ratio of the segment's last pcluster, else four times.
        let mut m = match self.last_fit {
            Some((i, o)) if o > 0 => aim.saturating_mul(i) / o,
            _ => cap.saturating_mul(4),
        };
        let mut rounds = 0u32;
        loop {
            m = m.max(l + 1).min(r - 1);
            // Exactly this much room, whatever the buffer held before: what fits must not
            // depend on which thread ran what.
            let room = 2 * cap + 64;
            scratch.resize(room, 0);
            let prefix = src.get(..m).unwrap_or(src);
            let got = match try_one(self, prefix, &mut scratch[..room]) {
                Ok(n) => n.filter(|&n| n > 0),
                Err(e) => {
                    self.scratch = scratch;
                    return Err(e);
                }
            };
            rounds += 1;
            match got {
                Some(n) if n <= cap => {
                    dst.clear();
                    dst.extend_from_slice(scratch.get(..n).unwrap_or_default());
                    (l, nl) = (m, n);
                    if r <= l + 1 || n >= full {
                        break;
                    }
                }
                _ => {
                    (r, nr) = (m, got);
                    if r <= l + 1 {
                        break;
                    }
                }
            }
            if r - l <= (l >> 6).max(1) || rounds >= 16 {
                break;
            }
            m = match (r > src.len(), nr) {
                // No upper bound yet: the ratio seen so far.
                (true, _) => aim.saturating_mul(l) / nl.max(1),
                // Both sizes known: interpolate between them.
                (false, Some(nr)) if nr > nl => {
                    l + (r - l).saturating_mul(aim.saturating_sub(nl)) / (nr - nl)
                }
                _ => (l + r) / 2,
            };
            // Never creep along one end of the bracket.
            if r <= src.len() {
                let g = ((r - l) / 8).max(1);
                m = m.clamp(l + g, r - g);
            }
        }
        self.scratch = scratch;
        // Only a full pcluster tells the ratio (a file's short end does not).
        if l > 0 && l < src.len() {
            self.last_fit = Some((l, nl));
        }
        Ok(l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Noise from a fixed xorshift: incompressible.
    fn noise(len: usize) -> Vec<u8> {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    /// Every fit inflates back to the prefix it says it consumed, through many prefixes
    /// that did not fit (each leaves a deflate stream that ran out of room).
    #[test]
    fn deflate_fits_inflate_to_what_they_consumed() {
        let mut src: Vec<u8> = (0..60_000u32)
            .flat_map(|i| format!("line {i} of {}\n", i % 977).into_bytes())
            .collect();
        src.extend(noise(300_000));
        for level in [1, 6, 9] {
            let mut f = Fitter::new(ErofsAlgorithm::Deflate, level, 0);
            let mut dst = Vec::new();
            for cap in [4096, 16384, 65536] {
                f.start_segment();
                let mut at = 0;
                while at < src.len() {
                    let n = f.compress(&src[at..], cap, &mut dst).unwrap();
                    assert!(n > 0 && dst.len() <= cap, "level {level} cap {cap} at {at}");
                    let mut back = vec![0u8; n + 1];
                    let mut d = flate2::Decompress::new(false);
                    // The unused bit set in place of a leading zero is still a valid stream.
                    let r = d.decompress(&dst, &mut back, flate2::FlushDecompress::Finish);
                    assert!(r.is_ok(), "level {level} cap {cap} at {at}");
                    assert_eq!(d.total_out() as usize, n, "level {level} cap {cap} at {at}");
                    assert!(
                        back[..n] == src[at..at + n],
                        "level {level} cap {cap} at {at}"
                    );
                    at += n;
                }
            }
        }
    }

    #[test]
    fn lz4hc_skips_hc_on_incompressible_input_and_compresses_the_rest_with_it() {
        let mut hc = Fitter::new(ErofsAlgorithm::Lz4hc, 9, 0);
        let mut fast = Fitter::new(ErofsAlgorithm::Lz4, 0, 0);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        // Incompressible: no gain, so no HC state is ever made; the input is stored as is.
        let n = noise(64 << 10);
        let consumed = hc.compress(&n, 4096, &mut a).unwrap();
        assert!(consumed <= 4096, "{consumed}");
        assert!(hc.hc_state.is_empty(), "HC ran on noise");
        // Compressible text: HC runs, and packs more input into the block than lz4 does.
        let text: Vec<u8> = (0..20_000u32)
            .flat_map(|i| format!("line {} of {}\n", i % 97, i % 13).into_bytes())
            .collect();
        let by_hc = hc.compress(&text, 4096, &mut a).unwrap();
        let by_fast = fast.compress(&text, 4096, &mut b).unwrap();
        assert!(!hc.hc_state.is_empty());
        assert!(by_hc > by_fast && by_fast > 4096, "{by_hc} vs {by_fast}");
        assert!(a.len() <= 4096);
    }
}
