//! Decoding one EROFS physical cluster as the kernel does: lz4 (a checked block decoder of
//! this module that stops once the wanted output is there, as `LZ4_decompress_safe_partial`
//! does), lzma (MicroLZMA: raw LZMA1 whose first range-coder byte, always zero, is replaced
//! by the inverted `lc/lp/pb` byte), raw DEFLATE and zstd frames; and the two uncompressed
//! forms, shifted and interlaced.
//!
//! Every decoder gets the exact output length wanted (an extent may use only a prefix of
//! what its pcluster holds: deduplicated extents, and the last extent of a file) and never
//! produces more; input that ends before that length is an error. With `ZERO_PADDING`
//! (required for every algorithm but lz4) compressed data ends at the end of its pcluster
//! and zeros precede it.

use crate::erofs::raw::{
    COMPRESSION_DEFLATE, COMPRESSION_LZ4, COMPRESSION_LZMA, COMPRESSION_ZSTD, compression_name,
};
use crate::error::{Error, Result};

/// How a pcluster's bytes become content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Codec {
    /// A `COMPRESSION_*` algorithm.
    Compressed(u8),
    /// Uncompressed, content from the pcluster's start.
    Shifted,
    /// Uncompressed, rotated so the extent's first byte sits at its offset in the block.
    Interlaced,
}

impl Codec {
    /// The name errors use.
    pub fn name(self) -> &'static str {
        match self {
            Self::Compressed(a) => compression_name(a).unwrap_or("unknown"),
            Self::Shifted => "plain",
            Self::Interlaced => "interlaced",
        }
    }
}

/// What a decoder needs besides the bytes.
#[derive(Debug, Clone, Copy)]
pub struct DecodeParams {
    /// The image has `ZERO_PADDING`: strip leading zeros (lz4 too).
    pub zero_padding: bool,
    /// Block size.
    pub blksz: u64,
    /// The extent's logical start (for interlaced pclusters).
    pub la: u64,
}

fn fail(codec: Codec, at: u64, reason: &'static str) -> Error {
    Error::Decompress {
        structure: "EROFS pcluster",
        offset: at,
        compressor: codec.name(),
        reason,
    }
}

/// Decodes `src` (the whole pcluster, read at absolute offset `at`) into exactly `out_len`
/// bytes of content.
pub fn decode_pcluster(
    codec: Codec,
    src: &[u8],
    out_len: usize,
    p: DecodeParams,
    at: u64,
) -> Result<Vec<u8>> {
    match codec {
        Codec::Shifted => src.get(..out_len).map(<[u8]>::to_vec).ok_or(fail(
            codec,
            at,
            "extent longer than its uncompressed pcluster",
        )),
        Codec::Interlaced => {
            let bs = p.blksz as usize;
            let o = (p.la % p.blksz) as usize;
            let start = src.len().checked_sub(bs - o).ok_or(fail(
                codec,
                at,
                "pcluster shorter than a block",
            ))?;
            if out_len > src.len() {
                return Err(fail(
                    codec,
                    at,
                    "extent longer than its uncompressed pcluster",
                ));
            }
            let first = (bs - o).min(out_len);
            let mut out = Vec::with_capacity(out_len);
            out.extend_from_slice(src.get(start..start + first).unwrap_or_default());
            out.extend_from_slice(src.get(..out_len - first).unwrap_or_default());
            if out.len() != out_len {
                return Err(fail(
                    codec,
                    at,
                    "extent longer than its uncompressed pcluster",
                ));
            }
            Ok(out)
        }
        Codec::Compressed(alg) => {
            let data = if p.zero_padding || alg != COMPRESSION_LZ4 {
                let z = src.iter().position(|&b| b != 0).ok_or(fail(
                    codec,
                    at,
                    "pcluster is all zeros",
                ))?;
                src.get(z..).unwrap_or_default()
            } else {
                src
            };
            let out = match alg {
                COMPRESSION_LZ4 => lz4_partial(data, out_len),
                COMPRESSION_LZMA => microlzma(data, out_len),
                COMPRESSION_DEFLATE => deflate(data, out_len),
                COMPRESSION_ZSTD => zstd(data, out_len),
                _ => Err("unknown algorithm"),
            }
            .map_err(|reason| fail(codec, at, reason))?;
            if out.len() != out_len {
                return Err(fail(
                    codec,
                    at,
                    "pcluster holds less than its extent claims",
                ));
            }
            Ok(out)
        }
    }
}

/// An LZ4 block decoder that stops once `out_len` bytes are out (the rest of the input, a
/// longer pcluster or padding, is not looked at).
pub fn lz4_partial(src: &[u8], out_len: usize) -> std::result::Result<Vec<u8>, &'static str> {
    const SHORT: &str = "input ends inside a sequence";
    let mut out: Vec<u8> = Vec::with_capacity(out_len);
    let mut i = 0usize;
    let length = |i: &mut usize, mut n: usize| -> std::result::Result<usize, &'static str> {
        if n == 15 {
            loop {
                let b = *src.get(*i).ok_or(SHORT)?;
                *i += 1;
                n = n.checked_add(usize::from(b)).ok_or(SHORT)?;
                if b != 255 {
                    break;
                }
            }
        }
        Ok(n)
    };
    while out.len() < out_len {
        let token = *src.get(i).ok_or("input ends before the output does")?;
        i += 1;
        let lit = length(&mut i, usize::from(token >> 4))?;
        let take = lit.min(out_len - out.len());
        out.extend_from_slice(src.get(i..i + take).ok_or(SHORT)?);
        if out.len() == out_len {
            break;
        }
        i += lit;
        let off = src
            .get(i..i + 2)
            .map(|b| usize::from(u16::from_le_bytes([b[0], b[1]])))
            .ok_or("input ends before the output does")?;
        i += 2;
        if off == 0 || off > out.len() {
            return Err("match offset outside the output");
        }
        let ml = length(&mut i, usize::from(token & 15))?.saturating_add(4);
        let ml = ml.min(out_len - out.len());
        let start = out.len() - off;
        if off >= ml {
            out.extend_from_within(start..start + ml);
        } else {
            for k in 0..ml {
                let b = out[start + k];
                out.push(b);
            }
        }
    }
    Ok(out)
}

fn microlzma(src: &[u8], out_len: usize) -> std::result::Result<Vec<u8>, &'static str> {
    use liblzma::stream::{Action, Filters, Status, Stream};
    let (&first, rest) = src.split_first().ok_or("empty input")?;
    let props = !first;
    // lc + lp <= 4 as the kernel's MicroLZMA decoder demands; pb <= 4.
    let (lc, lp) = (props % 9, props / 9 % 5);
    if props >= 9 * 5 * 5 || lc + lp > 4 {
        return Err("bad MicroLZMA properties byte");
    }
    let dict = (out_len as u32).clamp(4096, 1 << 30);
    let mut p = [0u8; 5];
    p[0] = props;
    p[1..].copy_from_slice(&dict.to_le_bytes());
    let mut filters = Filters::new();
    filters
        .lzma1_properties(&p)
        .map_err(|_| "bad MicroLZMA properties byte")?;
    let mut s = Stream::new_raw_decoder(&filters).map_err(|_| "cannot start the decoder")?;
    // The range coder's first byte, replaced on disk by the properties, is always zero.
    let mut input = Vec::with_capacity(src.len());
    input.push(0u8);
    input.extend_from_slice(rest);
    let mut out = vec![0u8; out_len];
    let (mut done, mut used) = (0usize, 0usize);
    while done < out_len {
        let (bi, bo) = (s.total_in(), s.total_out());
        let r = s.process(
            input.get(used..).unwrap_or_default(),
            out.get_mut(done..).unwrap_or_default(),
            Action::Run,
        );
        let (ui, uo) = ((s.total_in() - bi) as usize, (s.total_out() - bo) as usize);
        used += ui;
        done += uo;
        match r {
            Ok(Status::StreamEnd) => break,
            Ok(_) if ui == 0 && uo == 0 => break,
            Ok(_) => {}
            // No end marker: a decoder may complain once the input is spent.
            Err(_) if done == out_len => break,
            Err(_) => return Err("corrupt LZMA data"),
        }
    }
    out.truncate(done);
    Ok(out)
}

fn deflate(src: &[u8], out_len: usize) -> std::result::Result<Vec<u8>, &'static str> {
    use flate2::{Decompress, FlushDecompress, Status};
    let mut d = Decompress::new(false);
    let mut out = vec![0u8; out_len];
    let mut done = 0usize;
    let mut used = 0usize;
    while done < out_len {
        let (bi, bo) = (d.total_in(), d.total_out());
        let st = d
            .decompress(
                src.get(used..).unwrap_or_default(),
                out.get_mut(done..).unwrap_or_default(),
                FlushDecompress::Finish,
            )
            .map_err(|_| "corrupt DEFLATE data")?;
        let (ui, uo) = ((d.total_in() - bi) as usize, (d.total_out() - bo) as usize);
        used += ui;
        done += uo;
        if matches!(st, Status::StreamEnd) || (ui == 0 && uo == 0) {
            break;
        }
    }
    out.truncate(done);
    Ok(out)
}

fn zstd(src: &[u8], out_len: usize) -> std::result::Result<Vec<u8>, &'static str> {
    use zstd::stream::raw::{DParameter, Decoder, InBuffer, Operation, OutBuffer};
    let mut d = Decoder::new().map_err(|_| "cannot start the decoder")?;
    // Windows beyond a decoded pcluster's bound are refused, not allocated.
    d.set_parameter(DParameter::WindowLogMax(24))
        .map_err(|_| "cannot start the decoder")?;
    let mut out = vec![0u8; out_len];
    let mut input = InBuffer::around(src);
    let mut done = 0usize;
    while done < out_len {
        let before = input.pos();
        let mut o = OutBuffer::around(out.get_mut(done..).unwrap_or_default());
        let hint = d.run(&mut input, &mut o).map_err(|_| "corrupt zstd data")?;
        let made = o.pos();
        done += made;
        if made == 0 && (input.pos() == before || hint == 0) {
            break;
        }
    }
    out.truncate(done);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> DecodeParams {
        DecodeParams {
            zero_padding: true,
            blksz: 4096,
            la: 0,
        }
    }

    #[test]
    fn lz4_partial_decodes_prefixes_and_refuses_short_input() {
        let data: Vec<u8> = (0..20_000u32).map(|k| (k * 7 % 251) as u8 / 3).collect();
        let c = lz4_flex::block::compress(&data);
        assert_eq!(lz4_partial(&c, data.len()).unwrap(), data);
        for n in [0, 1, 100, 4096, 19_999] {
            assert_eq!(lz4_partial(&c, n).unwrap(), &data[..n]);
        }
        assert!(lz4_partial(&c, data.len() + 1).is_err());
        for cut in [0, 1, c.len() / 2, c.len() - 1] {
            assert!(lz4_partial(&c[..cut], data.len()).is_err(), "{cut}");
        }
        // Zero padding before the data is stripped.
        let mut padded = vec![0u8; 300];
        padded.extend_from_slice(&c);
        let got = decode_pcluster(
            Codec::Compressed(COMPRESSION_LZ4),
            &padded,
            5000,
            params(),
            0,
        );
        assert_eq!(got.unwrap(), &data[..5000]);
        assert!(lz4_partial(&[0x0f, 1, 0, 0], 100).is_err());
    }

    #[test]
    fn other_codecs_decode_prefixes() {
        let data: Vec<u8> = (0..70_000u32)
            .map(|k| (k % 13) as u8 ^ (k / 1000) as u8)
            .collect();
        let z = zstd::bulk::compress(&data, 3).unwrap();
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut e, &data).unwrap();
        let d = e.finish().unwrap();
        for (alg, c) in [(COMPRESSION_ZSTD, z), (COMPRESSION_DEFLATE, d)] {
            let codec = Codec::Compressed(alg);
            for n in [1, 4096, data.len()] {
                let got = decode_pcluster(codec, &c, n, params(), 0).unwrap();
                assert_eq!(got, &data[..n]);
            }
            assert!(decode_pcluster(codec, &c, data.len() + 10, params(), 0).is_err());
            assert!(decode_pcluster(codec, &c[..c.len() / 2], data.len(), params(), 0).is_err());
        }
        let lzma = Codec::Compressed(COMPRESSION_LZMA);
        assert!(microlzma(&[0x00, 1, 2, 3], 100).is_err());
        assert!(decode_pcluster(lzma, &[0xff, 0, 0, 0, 0], 100, params(), 0).is_err());
        assert!(decode_pcluster(lzma, &[0, 0], 100, params(), 0).is_err());
        assert!(microlzma(&[], 100).is_err());
    }

    /// MicroLZMA as mkfs.erofs writes it: raw LZMA1 whose first byte becomes the inverted
    /// properties byte; prefixes decode, more output than the data holds does not.
    #[test]
    fn microlzma_prefixes_and_overclaims() {
        use liblzma::stream::{Action, Filters, LzmaOptions, Stream};
        let data: Vec<u8> = (0..50_000u32)
            .map(|k| (k % 251) as u8 ^ (k / 3000) as u8)
            .collect();
        let mut opts = LzmaOptions::new_preset(6).unwrap();
        opts.dict_size(1 << 16);
        let mut f = Filters::new();
        f.lzma1(&opts);
        let mut s = Stream::new_raw_encoder(&f).unwrap();
        let mut c = Vec::with_capacity(60_000);
        s.process_vec(&data, &mut c, Action::Finish).unwrap();
        assert_eq!(c[0], 0);
        // lc 3, lp 0, pb 2.
        c[0] = !93u8;
        let lzma = Codec::Compressed(COMPRESSION_LZMA);
        let mut padded = vec![0u8; 100];
        padded.extend_from_slice(&c);
        for n in [1, 4096, 33_333, data.len()] {
            let got = decode_pcluster(lzma, &padded, n, params(), 0).unwrap();
            assert_eq!(got, &data[..n]);
        }
        assert!(decode_pcluster(lzma, &padded, data.len() + 1, params(), 0).is_err());
        assert!(
            decode_pcluster(lzma, &padded[..padded.len() / 2], data.len(), params(), 0).is_err()
        );
    }

    #[test]
    fn plain_forms() {
        let src: Vec<u8> = (0..4096u32).map(|k| k as u8).collect();
        let mut p = params();
        assert_eq!(
            decode_pcluster(Codec::Shifted, &src, 10, p, 0).unwrap(),
            &src[..10]
        );
        assert!(decode_pcluster(Codec::Shifted, &src, 4097, p, 0).is_err());
        p.la = 4096 + 100;
        let got = decode_pcluster(Codec::Interlaced, &src, 4096, p, 0).unwrap();
        assert_eq!(&got[..3996], &src[100..]);
        assert_eq!(&got[3996..], &src[..100]);
    }
}
