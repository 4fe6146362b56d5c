//! The data segment: encrypt and decrypt the payload with aes-xts-plain64, in parallel
//! across sectors.
//!
//! The IV of a sector is its byte offset inside the segment divided by 512, plus
//! `iv_tweak` — also for 4096-byte sectors, where consecutive sectors' IVs step by 8
//! (dm-crypt's `iv_large_sectors` is not used by LUKS2).

use std::io::{Read, Seek, SeekFrom, Write};

use rayon::prelude::*;

use crate::crypto::Xts;
use crate::error::{Error, Result, io};
use crate::header::Luks2Header;
use crate::keyslot::VolumeKey;
use crate::raw::SegmentSize;

/// Bytes handed to the worker threads at a time by the streaming functions.
const CHUNK: usize = 8 << 20;
/// Bytes one rayon task encrypts (a run of whole sectors).
const TASK: usize = 64 << 10;

/// The crypt segment of a volume, keyed.
#[derive(Debug)]
pub struct DataSegment {
    /// Absolute byte offset of the segment on the data device.
    pub offset: u64,
    /// Segment size.
    pub size: SegmentSize,
    /// Encryption sector size.
    pub sector_size: u32,
    /// IV offset in 512-byte units.
    pub iv_tweak: u64,
    xts: Xts,
}

impl Luks2Header {
    /// The volume's crypt segment keyed with `vk` (which must match its digest).
    pub fn data_segment(&self, vk: &VolumeKey) -> Result<DataSegment> {
        self.check_requirements()?;
        let mut crypt = self
            .metadata
            .segments
            .values()
            .filter(|s| s.kind == "crypt");
        let seg = crypt.next().ok_or(Error::Unsupported {
            feature: "volume without a crypt segment",
        })?;
        if crypt.next().is_some() {
            return Err(Error::Unsupported {
                feature: "volume with more than one crypt segment",
            });
        }
        if seg.extra.contains_key("integrity") {
            return Err(Error::Unsupported {
                feature: "authenticated encryption (dm-integrity segment)",
            });
        }
        let Some(params) = &seg.crypt else {
            return Err(Error::Unsupported {
                feature: "crypt segment without cipher parameters",
            });
        };
        if params.encryption != "aes-xts-plain64" {
            return Err(Error::UnsupportedValue {
                field: "segment encryption",
                value: params.encryption.chars().take(32).collect(),
            });
        }
        if !self.verify_volume_key(vk) {
            return Err(Error::InvalidOption {
                option: "volume key",
                reason: "does not match the volume's digest",
            });
        }
        Ok(DataSegment {
            offset: seg.offset,
            size: seg.size,
            sector_size: params.sector_size,
            iv_tweak: params.iv_tweak,
            xts: Xts::new(vk.as_bytes())?,
        })
    }
}

impl DataSegment {
    /// A segment from raw parameters (for payloads whose header lives elsewhere): `key` is
    /// the 32- or 64-byte aes-xts-plain64 key, `offset` the segment's byte offset on the
    /// data device.
    pub fn from_key(key: &VolumeKey, offset: u64, sector_size: u32, iv_tweak: u64) -> Result<Self> {
        if !matches!(sector_size, 512 | 1024 | 2048 | 4096) {
            return Err(Error::InvalidOption {
                option: "sector_size",
                reason: "must be 512, 1024, 2048 or 4096",
            });
        }
        Ok(Self {
            offset,
            size: SegmentSize::Dynamic,
            sector_size,
            iv_tweak,
            xts: Xts::new(key.as_bytes())?,
        })
    }

    fn check(&self, buf: &[u8], at: u64) -> Result<u64> {
        let ss = u64::from(self.sector_size);
        if !at.is_multiple_of(ss) || !(buf.len() as u64).is_multiple_of(ss) {
            return Err(Error::InvalidOption {
                option: "payload range",
                reason: "offset and length must be whole sectors",
            });
        }
        Ok(ss)
    }

    fn run(&self, buf: &mut [u8], at: u64, encrypt: bool) -> Result<()> {
        let ss = self.check(buf, at)?;
        let step = ss / 512;
        let first = (at / 512).wrapping_add(self.iv_tweak);
        let per_task = (TASK / ss as usize).max(1);
        buf.par_chunks_mut(per_task * ss as usize)
            .enumerate()
            .for_each(|(i, chunk)| {
                let iv = first.wrapping_add((i * per_task) as u64 * step);
                if encrypt {
                    self.xts.encrypt_sectors(chunk, ss as usize, iv, step);
                } else {
                    self.xts.decrypt_sectors(chunk, ss as usize, iv, step);
                }
            });
        Ok(())
    }

    /// Encrypts `buf` in place; `at` is its byte offset inside the segment. Both must be
    /// whole sectors.
    pub fn encrypt(&self, buf: &mut [u8], at: u64) -> Result<()> {
        self.run(buf, at, true)
    }

    /// Decrypts `buf` in place; see [`DataSegment::encrypt`].
    pub fn decrypt(&self, buf: &mut [u8], at: u64) -> Result<()> {
        self.run(buf, at, false)
    }

    /// Reads plaintext from `input` to its end, encrypts it and writes it at the segment
    /// offset of `dev`. A final partial sector is padded with zeros. Returns the bytes
    /// written; `progress` is told the plaintext bytes done so far.
    pub fn encrypt_stream<R: Read, W: Write + Seek>(
        &self,
        mut input: R,
        dev: &mut W,
        progress: &mut dyn FnMut(u64),
    ) -> Result<u64> {
        dev.seek(SeekFrom::Start(self.offset))
            .map_err(io("seeking to the data segment"))?;
        let ss = self.sector_size as usize;
        let limit = match self.size {
            SegmentSize::Dynamic => u64::MAX,
            SegmentSize::Bytes(b) => b,
        };
        let mut buf = vec![0u8; CHUNK];
        let mut done = 0u64;
        loop {
            let mut filled = 0;
            while filled < buf.len() {
                let n = input
                    .read(&mut buf[filled..])
                    .map_err(io("reading the plaintext"))?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            if filled == 0 {
                break;
            }
            let padded = filled.div_ceil(ss) * ss;
            buf[filled..padded].fill(0);
            if done.saturating_add(padded as u64) > limit {
                return Err(Error::LimitExceeded {
                    what: "plaintext size for the fixed-size data segment",
                    limit,
                });
            }
            self.encrypt(&mut buf[..padded], done)?;
            dev.write_all(&buf[..padded])
                .map_err(io("writing the encrypted payload"))?;
            done += padded as u64;
            progress(done);
            if filled < buf.len() {
                break;
            }
        }
        dev.flush().map_err(io("flushing the encrypted payload"))?;
        Ok(done)
    }

    /// Decrypts `len` bytes (whole sectors) of the segment from `dev` into `out`.
    pub fn decrypt_stream<R: Read + Seek, W: Write>(
        &self,
        dev: &mut R,
        len: u64,
        mut out: W,
        progress: &mut dyn FnMut(u64),
    ) -> Result<u64> {
        if !len.is_multiple_of(u64::from(self.sector_size)) {
            return Err(Error::InvalidOption {
                option: "payload length",
                reason: "must be whole sectors",
            });
        }
        dev.seek(SeekFrom::Start(self.offset))
            .map_err(io("seeking to the data segment"))?;
        let mut buf = vec![0u8; CHUNK];
        let mut done = 0u64;
        while done < len {
            let n = (len - done).min(CHUNK as u64) as usize;
            dev.read_exact(&mut buf[..n])
                .map_err(io("reading the encrypted payload"))?;
            self.decrypt(&mut buf[..n], done)?;
            out.write_all(&buf[..n])
                .map_err(io("writing the plaintext"))?;
            done += n as u64;
            progress(done);
        }
        out.flush().map_err(io("flushing the plaintext"))?;
        Ok(done)
    }

    /// Payload bytes available on a data device of `device_size` bytes.
    pub fn payload_len(&self, device_size: u64) -> u64 {
        let avail = device_size.saturating_sub(self.offset);
        let len = match self.size {
            SegmentSize::Dynamic => avail,
            SegmentSize::Bytes(b) => b.min(avail),
        };
        len - len % u64::from(self.sector_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// LUKS2 counts IVs in 512-byte units: the second 4096-byte sector uses IV 8 (+ tweak),
    /// not 1.
    #[test]
    fn iv_counts_512_byte_units_for_4096_sectors() {
        let vk = VolumeKey::new((0..64).collect());
        let seg = DataSegment::from_key(&vk, 0, 4096, 5).unwrap();
        let mut buf = vec![0xa5u8; 3 * 4096];
        seg.encrypt(&mut buf, 4096).unwrap();
        let xts = Xts::new(vk.as_bytes()).unwrap();
        for (i, s) in buf.chunks(4096).enumerate() {
            let mut want = vec![0xa5u8; 4096];
            xts.encrypt_sector(5 + 8 * (i as u64 + 1), &mut want);
            assert_eq!(s, &want[..], "sector {i}");
        }
        // Parallel chunking does not change the result.
        let mut big = vec![0x3cu8; 1 << 20];
        let mut serial = big.clone();
        seg.encrypt(&mut big, 0).unwrap();
        xts.encrypt_sectors(&mut serial, 4096, 5, 8);
        assert!(big == serial);
        assert!(seg.encrypt(&mut buf[..100], 0).is_err());
        assert!(seg.encrypt(&mut buf[..4096], 512).is_err());
    }
}
