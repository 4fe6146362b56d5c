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
}

/// Compressor and level used by the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Compression {
    /// The algorithm.
    pub compressor: Compressor,
    /// The level; `None` = squashfs-tools' default (gzip 9, xz 6, zstd 15).
    pub level: Option<u32>,
    /// xz only: the [`bcj`] filters to try on each block (bit mask; 0 = none, the default).
    pub xz_bcj: u32,
    /// lz4 only: LZ4HC at its maximum level, as mksquashfs `-Xhc` (slower, smaller).
    pub lz4_hc: bool,
}

impl Compression {
    /// Compression with the default level.
    pub fn new(compressor: Compressor) -> Self {
        Self {
            compressor,
            level: None,
            xz_bcj: 0,
            lz4_hc: false,
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
    static LZ4_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Compresses `src`; `block_size` bounds the xz dictionary (the kernel's decoder has no more).
/// `None` when the result would not be smaller than `src` (the block is then stored as is).
pub(crate) fn compress(c: Compression, block_size: u32, src: &[u8]) -> Result<Option<Vec<u8>>> {
    let level = c.effective_level();
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
                if c.xz_bcj & f != 0 {
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
        let n = lz4::block::compress_to_buffer(src, Some(mode), false, &mut buf[..src.len() - 1])
            .ok()?;
        Some(buf[..n].to_vec())
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
}
