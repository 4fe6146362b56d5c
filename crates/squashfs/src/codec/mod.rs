//! The compression codecs, one module for squashfs and EROFS: the compressor id selects the
//! codec. Codecs sit above the raw structures (they take [`Compressor`], the on-disk id);
//! raw code never calls a codec, so parsing stays free of decompression.
//!
//! | compressor | crate | backend |
//! |---|---|---|
//! | gzip (zlib) | `flate2` with `zlib-rs` | pure Rust |
//! | xz, legacy lzma (read) | `liblzma` | C (liblzma, built from source): no pure-Rust xz encoder matches its ratio, and the kernel reads what liblzma writes |
//! | zstd | `zstd` | C (libzstd, built from source): the reference implementation; pure-Rust encoders lag far behind at level 15 |
//! | lz4 | `lz4` (liblz4, built from source) to write, `lz4_flex` to read | C encoder: the same `LZ4_compress_default` / `LZ4_compress_HC` mksquashfs calls, so blocks come out byte-identical to its and twice as fast as `lz4_flex`'s safe encoder (measured on a 1.2 GB /usr copy, where `lz4_flex` made the image 0.2 % larger too); untrusted blocks are decoded by `lz4_flex`'s safe Rust decoder |
//! | lzo | own decoder, `lzokay-native` encoder | pure Rust |

mod lzo;

use std::cell::RefCell;

use crate::error::{Error, Result};
use crate::raw::Compressor;

/// xz branch/call/jump filters as squashfs-tools numbers them in the xz options block
/// (`-Xbcj`): each selected filter is tried on every block and the smallest result is kept.
pub mod bcj {
    /// x86 (32 and 64 bit).
    pub const X86: u32 = 1;
    /// PowerPC (big endian).
    pub const POWERPC: u32 = 2;
    /// IA-64.
    pub const IA64: u32 = 4;
    /// ARM.
    pub const ARM: u32 = 8;
    /// ARM Thumb.
    pub const ARMTHUMB: u32 = 16;
    /// SPARC.
    pub const SPARC: u32 = 32;
    /// Every filter squashfs-tools 4.5 knows, with the names its `-Xbcj` takes.
    pub const ALL: [(&str, u32); 6] = [
        ("x86", X86),
        ("powerpc", POWERPC),
        ("ia64", IA64),
        ("arm", ARM),
        ("armthumb", ARMTHUMB),
        ("sparc", SPARC),
    ];

    /// The filter mksquashfs's `-Xbcj` calls `name`.
    pub fn from_name(name: &str) -> Option<u32> {
        ALL.iter().find(|(n, _)| *n == name).map(|(_, bit)| *bit)
    }

    /// The names of the filters in `mask`, in mksquashfs's order.
    pub fn names(mask: u32) -> impl Iterator<Item = &'static str> {
        ALL.iter()
            .filter(move |(_, bit)| mask & bit != 0)
            .map(|(n, _)| *n)
    }
}

/// Compressor and level used by the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Compression {
    /// The algorithm.
    pub compressor: Compressor,
    /// The level; `None` = squashfs-tools' default (gzip 9, xz 6, zstd 15).
    pub level: Option<u32>,
    /// xz only: the [`bcj`] filters to try on each block beside plain xz, the smallest
    /// result kept (bit mask; 0 = none, the default). A block the x86 filter cannot change
    /// (text) is not tried with it: the plain result would win or tie, so the bytes are the
    /// same as trying.
    pub xz_bcj: u32,
    /// lz4 only: LZ4HC at its maximum level, as mksquashfs `-Xhc` (slower, smaller).
    pub lz4_hc: bool,
    /// xz only: early abort (the default), as OpenZFS does before its slower compressors:
    /// a block that neither lz4 nor zstd level 1 can make any smaller (data already
    /// compressed: gzip, PNG, xz) is stored as it is, without running xz on it. On a /usr
    /// tree those blocks take 8 % of xz's time and the probes 1 %, for 0.02 % more image.
    /// `false` compresses every block, as mksquashfs does. (Before gzip and zstd the probes
    /// cost about what they save, so they do not run.)
    pub early_abort: bool,
}

impl Compression {
    /// Compression with the default level.
    pub fn new(compressor: Compressor) -> Self {
        Self {
            compressor,
            level: None,
            xz_bcj: 0,
            lz4_hc: false,
            early_abort: true,
        }
    }

    /// Compression at `level` (see [`validate`](Self::validate) for the ranges).
    pub fn with_level(compressor: Compressor, level: Option<u32>) -> Self {
        Self {
            level,
            ..Self::new(compressor)
        }
    }

    /// The level actually used.
    pub fn effective_level(&self) -> u32 {
        self.level.unwrap_or(match self.compressor {
            Compressor::Gzip => 9,
            Compressor::Xz | Compressor::Lzma => 6,
            Compressor::Zstd => 15,
            Compressor::Lzo | Compressor::Lz4 => 0,
        })
    }

    /// Checks the level range for the compressor.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason| {
            Err(Error::InvalidOption {
                option: "level",
                reason,
            })
        };
        match (self.compressor, self.level) {
            (Compressor::Lzma, _) => Err(Error::Unsupported {
                feature: "writing legacy lzma (the kernel cannot read it; use xz)",
            }),
            (_, None) => Ok(()),
            (Compressor::Gzip, Some(1..=9)) => Ok(()),
            (Compressor::Gzip, _) => bad("gzip levels are 1..=9"),
            (Compressor::Xz, Some(0..=9)) => Ok(()),
            (Compressor::Xz, _) => bad("xz levels are 0..=9"),
            (Compressor::Zstd, Some(1..=22)) => Ok(()),
            (Compressor::Zstd, _) => bad("zstd levels are 1..=22"),
            (Compressor::Lz4 | Compressor::Lzo, Some(_)) => bad("lz4 and lzo take no level here"),
        }?;
        if self.xz_bcj != 0 && (self.compressor != Compressor::Xz || self.xz_bcj & !63 != 0) {
            return Err(Error::InvalidOption {
                option: "xz_bcj",
                reason: "BCJ filters are an xz option, bits 0..=5",
            });
        }
        if self.lz4_hc && self.compressor != Compressor::Lz4 {
            return Err(Error::InvalidOption {
                option: "lz4_hc",
                reason: "high compression is an lz4 option",
            });
        }
        Ok(())
    }
}

thread_local! {
    static ZSTD_C: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { RefCell::new(None) };
    static ZSTD_D: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
    static ZSTD_PROBE: RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { RefCell::new(None) };
    static LZ4_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Whether early abort runs before `c`: only before xz, where the probes cost a small part
/// of what they save. Measured on a /usr tree (965 MB): before zstd level 15 and gzip level
/// 9 they cost about what they save, before zstd level 3 half again its time.
fn probes_first(c: Compression) -> bool {
    c.early_abort && c.compressor == Compressor::Xz
}

/// Whether lz4 or, where lz4 cannot, zstd level 1 makes `src` smaller: OpenZFS's early
/// abort. lz4 is the cheap test (a few percent of xz's time); zstd level 1 catches what
/// only entropy coding shrinks (skewed bytes with few repeats), which lz4 cannot see. Both
/// are deterministic, so the bytes written never depend on timing.
pub(crate) fn fast_codecs_shrink(src: &[u8]) -> bool {
    if src.len() < 2 || lz4_len(false, src).is_some() {
        return true;
    }
    LZ4_BUF.with(|cell| {
        let mut buf = cell.borrow_mut();
        ZSTD_PROBE.with(|z| {
            let mut z = z.borrow_mut();
            if z.is_none() {
                *z = zstd::bulk::Compressor::new(1).ok();
            }
            // Without a context the answer is "compress it": never a wrong image.
            z.as_mut()
                .is_none_or(|z| z.compress_to_buffer(src, &mut buf[..src.len() - 1]).is_ok())
        })
    })
}

/// Compresses `src`; `block_size` bounds the xz dictionary (the kernel's decoder has no more).
/// `None` when the result would not be smaller than `src` (the block is then stored as is).
pub(crate) fn compress(c: Compression, block_size: u32, src: &[u8]) -> Result<Option<Vec<u8>>> {
    let level = c.effective_level();
    if probes_first(c) && !fast_codecs_shrink(src) {
        return Ok(None);
    }
    let fail = |reason| Error::Compress {
        compressor: c.compressor.name(),
        reason,
    };
    let z = match c.compressor {
        Compressor::Gzip => {
            use std::io::Write;
            let mut e = flate2::write::ZlibEncoder::new(
                Vec::with_capacity(src.len() / 2),
                flate2::Compression::new(level),
            );
            e.write_all(src).map_err(|_| fail("zlib stream error"))?;
            e.finish().map_err(|_| fail("zlib stream error"))?
        }
        Compressor::Xz => {
            let mut best = xz(level, block_size, None, src).map_err(fail)?;
            for (_, f) in bcj::ALL {
                if c.xz_bcj & f != 0 && !(f == bcj::X86 && x86_bcj_leaves_unchanged(src)) {
                    let z = xz(level, block_size, Some(f), src).map_err(fail)?;
                    // Ties keep the earlier (plainer) result, as mksquashfs does.
                    if z.len() < best.len() {
                        best = z;
                    }
                }
            }
            best
        }
        Compressor::Zstd => ZSTD_C.with(|cell| {
            let mut slot = cell.borrow_mut();
            let lvl = level as i32;
            if slot.as_ref().is_none_or(|(l, _)| *l != lvl) {
                let z = zstd::bulk::Compressor::new(lvl).map_err(|_| fail("context init"))?;
                *slot = Some((lvl, z));
            }
            match slot.as_mut() {
                Some((_, z)) => z.compress(src).map_err(|_| fail("compress error")),
                None => Err(fail("context init")),
            }
        })?,
        Compressor::Lz4 => return Ok(lz4(c.lz4_hc, src)),
        Compressor::Lzo => lzokay_native::compress(src).map_err(|_| fail("compress error"))?,
        Compressor::Lzma => {
            return Err(Error::Unsupported {
                feature: "writing legacy lzma",
            });
        }
    };
    Ok((z.len() < src.len()).then_some(z))
}

/// Whether xz's x86 BCJ filter is sure to pass `src` through unchanged, so that the x86
/// chain cannot win: LZMA2 then sees the same bytes and writes the same payload, and the
/// x86 chain's block header is never shorter than the plain one's (equal lengths keep the
/// plain result, here and in mksquashfs). The filter only rewrites the four bytes after an
/// `E8` (call) or `E9` (jmp) whose fourth byte, the address's top byte, is `00` or `FF`, and
/// leaves the last four bytes of the input as they are; a block with no such five bytes
/// (text, in practice: `FF` never occurs in UTF-8, nor `00` in text) is compressed once.
/// Blocks with candidates are tried with the filter even when its other rules would skip
/// them: the test is sufficient, never required for the right answer.
fn x86_bcj_leaves_unchanged(src: &[u8]) -> bool {
    !src.windows(5)
        .any(|w| matches!(w[0], 0xE8 | 0xE9) && matches!(w[4], 0x00 | 0xFF))
}

/// One xz stream (CRC32 check, as the kernel wants) with an optional BCJ filter first.
fn xz(level: u32, block_size: u32, bcj: Option<u32>, src: &[u8]) -> Result<Vec<u8>, &'static str> {
    use liblzma::stream::{Action, Check, Filters, LzmaOptions, Status, Stream};
    let mut opts = LzmaOptions::new_preset(level).map_err(|_| "bad preset")?;
    opts.dict_size(block_size.max(8192));
    let mut filters = Filters::new();
    match bcj {
        Some(bcj::X86) => filters.x86(),
        Some(bcj::POWERPC) => filters.powerpc(),
        Some(bcj::IA64) => filters.ia64(),
        Some(bcj::ARM) => filters.arm(),
        Some(bcj::ARMTHUMB) => filters.arm_thumb(),
        Some(bcj::SPARC) => filters.sparc(),
        _ => &mut filters,
    };
    filters.lzma2(&opts);
    let mut s = Stream::new_stream_encoder(&filters, Check::Crc32).map_err(|_| "encoder init")?;
    let mut out = Vec::with_capacity(src.len() + src.len() / 2 + 256);
    let st = s
        .process_vec(src, &mut out, Action::Finish)
        .map_err(|_| "encoder error")?;
    if st != Status::StreamEnd {
        return Err("encoder did not finish");
    }
    Ok(out)
}

/// liblz4 into a reused per-thread buffer one byte smaller than `src`: a block that does not
/// fit there is not worth compressing (`None`), exactly mksquashfs's rule.
fn lz4(hc: bool, src: &[u8]) -> Option<Vec<u8>> {
    let n = lz4_len(hc, src)?;
    LZ4_BUF.with(|cell| cell.borrow().get(..n).map(<[u8]>::to_vec))
}

/// [`lz4`] without the copy: the compressed length, left in `LZ4_BUF`. The buffer is then
/// at least `src.len() - 1` bytes long.
fn lz4_len(hc: bool, src: &[u8]) -> Option<usize> {
    use lz4::block::CompressionMode;
    /// LZ4HC_CLEVEL_MAX, the level mksquashfs `-Xhc` uses.
    const HC_LEVEL: i32 = 12;
    if src.len() < 2 {
        return None;
    }
    LZ4_BUF.with(|cell| {
        let mut buf = cell.borrow_mut();
        if buf.len() < src.len() - 1 {
            buf.resize(src.len() - 1, 0);
        }
        let mode = if hc {
            CompressionMode::HIGHCOMPRESSION(HC_LEVEL)
        } else {
            CompressionMode::DEFAULT
        };
        lz4::block::compress_to_buffer(src, Some(mode), false, &mut buf[..src.len() - 1]).ok()
    })
}

/// Decompresses one block into at most `cap` bytes; errors name nothing (the caller knows
/// where the block is).
pub(crate) fn decompress(
    compressor: Compressor,
    src: &[u8],
    cap: usize,
) -> Result<Vec<u8>, &'static str> {
    match compressor {
        Compressor::Gzip => {
            let mut d = flate2::Decompress::new(true);
            let mut out = vec![0u8; cap + 1];
            let st = d
                .decompress(src, &mut out, flate2::FlushDecompress::Finish)
                .map_err(|_| "corrupt zlib stream")?;
            let n = d.total_out() as usize;
            if n > cap {
                return Err("output larger than the block");
            }
            if st != flate2::Status::StreamEnd {
                return Err("truncated zlib stream");
            }
            out.truncate(n);
            Ok(out)
        }
        Compressor::Xz | Compressor::Lzma => {
            use liblzma::stream::{Action, Status, Stream};
            // The dictionary a hostile header may claim is capped; squashfs uses <= 1 MiB.
            const MEMLIMIT: u64 = 64 << 20;
            let mut s = if compressor == Compressor::Xz {
                Stream::new_stream_decoder(MEMLIMIT, 0)
            } else {
                Stream::new_lzma_decoder(MEMLIMIT)
            }
            .map_err(|_| "decoder init")?;
            let mut out = vec![0u8; cap + 1];
            let st = s
                .process(src, &mut out, Action::Finish)
                .map_err(|_| "corrupt xz stream")?;
            let n = s.total_out() as usize;
            if n > cap {
                return Err("output larger than the block");
            }
            if st != Status::StreamEnd {
                return Err("truncated xz stream");
            }
            out.truncate(n);
            Ok(out)
        }
        Compressor::Zstd => ZSTD_D.with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.is_none() {
                *slot = Some(zstd::bulk::Decompressor::new().map_err(|_| "context init")?);
            }
            let d = slot.as_mut().ok_or("context init")?;
            let mut out = vec![0u8; cap];
            let n = d
                .decompress_to_buffer(src, &mut out[..])
                .map_err(|_| "corrupt zstd frame or output larger than the block")?;
            out.truncate(n);
            Ok(out)
        }),
        Compressor::Lz4 => {
            let mut out = vec![0u8; cap];
            let n = lz4_flex::block::decompress_into(src, &mut out)
                .map_err(|_| "corrupt lz4 block or output larger than the block")?;
            out.truncate(n);
            Ok(out)
        }
        Compressor::Lzo => lzo::decompress(src, cap),
    }
}

/// Decompresses one block (data or metadata) of `compressor` into at most `cap` bytes: what
/// the readers run on every block, exposed for fuzzing and tools.
pub fn decompress_block(compressor: Compressor, src: &[u8], cap: usize) -> Result<Vec<u8>> {
    decompress(compressor, src, cap).map_err(|reason| Error::Decompress {
        structure: "block",
        offset: 0,
        compressor: compressor.name(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_round_trips_and_respects_the_cap() {
        let mut data = imgpipe_testsupport::pattern(50_000);
        data.extend(std::iter::repeat_n(b'x', 50_000));
        for c in [
            Compressor::Gzip,
            Compressor::Xz,
            Compressor::Zstd,
            Compressor::Lz4,
            Compressor::Lzo,
        ] {
            let z = compress(Compression::new(c), 131_072, &data)
                .unwrap()
                .unwrap();
            assert!(z.len() < data.len(), "{c:?}");
            assert_eq!(decompress(c, &z, data.len()).unwrap(), data, "{c:?}");
            assert!(decompress(c, &z, data.len() - 1).is_err(), "{c:?}");
            assert!(
                decompress(c, &z[..z.len() / 2], data.len()).is_err(),
                "{c:?}"
            );
        }
    }

    /// Early abort stores what neither fast codec shrinks and changes nothing else: data
    /// that only an entropy coder shrinks (lz4 fails on it) goes on to zstd level 1 and then
    /// to the real compressor, with the bytes it gives without early abort.
    #[test]
    fn early_abort_skips_only_what_lz4_and_zstd_cannot_shrink() {
        let noise = imgpipe_testsupport::noise(131_072, 1);
        // Six random bits a byte: no repeats for lz4, a quarter saved by Huffman coding.
        let skewed: Vec<u8> = imgpipe_testsupport::noise(131_072, 2)
            .iter()
            .map(|b| 0x40 | (b & 0x3f))
            .collect();
        let text: Vec<u8> = (0..10_000u32)
            .flat_map(|i| format!("line {i} {}\n", i % 13).into_bytes())
            .take(131_072)
            .collect();
        assert!(!fast_codecs_shrink(&noise));
        assert!(lz4_len(false, &skewed).is_none());
        assert!(fast_codecs_shrink(&skewed));
        assert!(fast_codecs_shrink(&text));
        for level in [0, 6, 9] {
            let on = Compression::with_level(Compressor::Xz, Some(level));
            assert!(on.early_abort && probes_first(on));
            let off = Compression {
                early_abort: false,
                ..on
            };
            assert!(!probes_first(off));
            assert_eq!(compress(on, 131_072, &noise).unwrap(), None);
            for data in [&skewed, &text] {
                let z = compress(on, 131_072, data).unwrap();
                assert!(z.is_some());
                assert_eq!(z, compress(off, 131_072, data).unwrap());
            }
        }
        // Not where the probes cost about what they save.
        for c in [
            Compressor::Gzip,
            Compressor::Zstd,
            Compressor::Lz4,
            Compressor::Lzo,
        ] {
            assert!(!probes_first(Compression::new(c)), "{c:?}");
        }
    }

    /// The x86 filter's own code (liblzma's raw encoder) is the oracle: every block the
    /// shortcut calls unchanged comes out of it unchanged, among blocks of an x86-64
    /// executable (this test's), text, noise and calls placed at the last positions.
    #[test]
    #[allow(unsafe_code)]
    fn x86_bcj_shortcut_agrees_with_liblzmas_filter() {
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let mut blocks: Vec<Vec<u8>> = exe.chunks(4096).take(2000).map(<[u8]>::to_vec).collect();
        blocks.extend(
            imgpipe_testsupport::noise(1 << 20, 3)
                .chunks(1000)
                .map(<[u8]>::to_vec),
        );
        let text = b"plain text, no call opcodes at all\n".repeat(100);
        // An opcode at each of the last nine positions: the last four are never filtered.
        for pos in text.len() - 9..text.len() {
            for (op, top) in [(0xE8, 0x00), (0xE9, 0xFF), (0xE8, 0x12)] {
                let mut b = text.clone();
                b[pos] = op;
                if let Some(t) = b.get_mut(pos + 4) {
                    *t = top;
                }
                blocks.push(b);
            }
        }
        blocks.push(text);
        let (mut unchanged, mut changed) = (0, 0);
        for b in &blocks {
            let mut f = b.clone();
            unsafe { liblzma_sys::lzma_bcj_x86_encode(0, f.as_mut_ptr(), f.len()) };
            if x86_bcj_leaves_unchanged(b) {
                assert_eq!(
                    &f, b,
                    "the shortcut called a block unchanged that the filter changes"
                );
                unchanged += 1;
            } else if &f != b {
                changed += 1;
            }
        }
        assert!(unchanged > 100 && changed > 100, "{unchanged} {changed}");
    }

    /// With `xz_bcj`, every block comes out as trying every filter on it gives (ties keep
    /// the plain result), whether or not the x86 try was skipped; and on machine code the
    /// x86 filter does win, so the comparison is not between two plain results.
    #[test]
    fn skipping_the_x86_try_never_changes_a_block() {
        fn every_filter(c: Compression, src: &[u8]) -> Option<Vec<u8>> {
            let mut best = xz(c.effective_level(), 131_072, None, src).unwrap();
            for (_, f) in bcj::ALL {
                if c.xz_bcj & f != 0 {
                    let z = xz(c.effective_level(), 131_072, Some(f), src).unwrap();
                    if z.len() < best.len() {
                        best = z;
                    }
                }
            }
            (best.len() < src.len()).then_some(best)
        }
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let text: Vec<u8> = (0..20_000u32)
            .flat_map(|i| format!("{i} \u{8a9e}\u{9577} {}\n", i % 7).into_bytes())
            .take(131_072)
            .collect();
        assert!(
            x86_bcj_leaves_unchanged(&text),
            "CJK text (E8, E9 lead bytes)"
        );
        let mut blocks: Vec<&[u8]> = exe.chunks(131_072).skip(1).step_by(7).take(6).collect();
        blocks.push(&text);
        let mut x86_won = 0;
        for bcj in [bcj::X86, bcj::X86 | bcj::ARM] {
            let c = Compression {
                xz_bcj: bcj,
                early_abort: false,
                ..Compression::with_level(Compressor::Xz, Some(1))
            };
            for b in &blocks {
                let got = compress(c, 131_072, b).unwrap();
                assert_eq!(got, every_filter(c, b));
                let plain = compress(Compression { xz_bcj: 0, ..c }, 131_072, b).unwrap();
                x86_won += usize::from(got != plain);
            }
        }
        assert!(x86_won > 0);
    }
}
