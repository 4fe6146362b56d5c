//! Creating a new LUKS2 volume: plan the layout, draw every random value from the injected
//! RNG in a fixed order, write the keyslot area, then both header copies.

use std::collections::BTreeMap;
use std::io::{Seek, SeekFrom, Write};

use rand_core::CryptoRng;
use serde_json::Map;

use crate::crypto::HashAlg;
use crate::error::{Error, Result, io};
use crate::header::{ALLOWED_HDR_SIZES, CopyReport, Luks2Header};
use crate::keyslot::{KeyslotParams, VolumeKey};
use crate::raw::{
    Config, CryptParams, DigestEntry, MAX_KEYSLOTS_SIZE, Metadata, Segment, SegmentSize,
};

/// Options of a new volume. `Default` is cryptsetup's `luksFormat --type luks2` layout:
/// 16 KiB headers, 16 MiB data offset, aes-xts-plain64 with a 512-bit key, 512-byte sectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatOptions {
    /// Header copy size: 16 KiB .. 4 MiB, a power of two.
    pub hdr_size: u64,
    /// Keyslots area size; `None`: up to the data offset (or 16 MiB minus the headers for a
    /// detached header with data offset 0). Multiple of 4096, at most 128 MiB.
    pub keyslots_size: Option<u64>,
    /// Byte offset of the data segment (multiple of 4096; 0 for a detached header).
    pub data_offset: u64,
    /// Data segment size; `Dynamic` means up to the end of the device.
    pub segment_size: SegmentSize,
    /// Encryption sector size: 512 or 4096 (1024 and 2048 also work).
    pub sector_size: u32,
    /// Volume key size in bytes: 32 (aes-xts 256-bit) or 64 (512-bit).
    pub key_size: usize,
    /// First keyslot's parameters.
    pub keyslot: KeyslotParams,
    /// Hash and iterations of the volume key digest (cryptsetup benchmarks the iterations;
    /// the minimum is 1000).
    pub digest_hash: HashAlg,
    /// Iterations of the volume key digest.
    pub digest_iterations: u32,
    /// Label, at most 47 bytes.
    pub label: String,
    /// Subsystem, at most 47 bytes.
    pub subsystem: String,
    /// UUID; `None` draws a random (version 4) one from the RNG.
    pub uuid: Option<String>,
    /// Use this volume key instead of drawing one (e.g. to re-create a volume).
    pub volume_key: Option<VolumeKey>,
}

impl Default for FormatOptions {
    fn default() -> Self {
        Self {
            hdr_size: 0x4000,
            keyslots_size: None,
            data_offset: 16 * 1024 * 1024,
            segment_size: SegmentSize::Dynamic,
            sector_size: 512,
            key_size: 64,
            keyslot: KeyslotParams::default(),
            digest_hash: HashAlg::Sha256,
            digest_iterations: 100_000,
            label: String::new(),
            subsystem: String::new(),
            uuid: None,
            volume_key: None,
        }
    }
}

fn invalid(option: &'static str, reason: &'static str) -> Error {
    Error::InvalidOption { option, reason }
}

/// Formats a UUID from 16 bytes as text, forcing version 4 / variant 1 bits.
fn uuid_v4(mut b: [u8; 16]) -> String {
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = crate::raw::hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn check_uuid(u: &str) -> Result<()> {
    let ok = u.len() == 36
        && u.bytes().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_hexdigit(),
        });
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "uuid",
            "must look like 01234567-89ab-cdef-0123-456789abcdef",
        ))
    }
}

impl Luks2Header {
    /// Writes a new LUKS2 volume onto `dev`: zeroes both header copies and the keyslots
    /// area, writes keyslot 0 for `passphrase`, then both headers (seqid 1).
    ///
    /// Random values come from `rng` in a fixed order (UUID, volume key, digest salt,
    /// header salts, keyslot salt, anti-forensic stripes), so a seeded RNG gives a
    /// byte-identical volume. The data area is not touched.
    pub fn format<D: Write + Seek, G: CryptoRng + ?Sized>(
        dev: &mut D,
        opts: &FormatOptions,
        passphrase: &[u8],
        rng: &mut G,
    ) -> Result<(Self, VolumeKey)> {
        if !ALLOWED_HDR_SIZES.contains(&opts.hdr_size) {
            return Err(invalid(
                "hdr_size",
                "must be 16 KiB .. 4 MiB, a power of two",
            ));
        }
        if !matches!(opts.sector_size, 512 | 1024 | 2048 | 4096) {
            return Err(invalid("sector_size", "must be 512, 1024, 2048 or 4096"));
        }
        if !matches!(opts.key_size, 32 | 64) {
            return Err(invalid(
                "key_size",
                "must be 32 or 64 bytes (256 or 512 bits)",
            ));
        }
        if !opts.data_offset.is_multiple_of(4096) {
            return Err(invalid("data_offset", "must be a multiple of 4096"));
        }
        if opts.digest_iterations < 1000 {
            return Err(invalid(
                "digest_iterations",
                "cryptsetup refuses fewer than 1000",
            ));
        }
        if let SegmentSize::Bytes(s) = opts.segment_size
            && (s == 0 || s % u64::from(opts.sector_size) != 0)
        {
            return Err(invalid(
                "segment_size",
                "must be a non-zero multiple of the sector size",
            ));
        }
        let headers = opts.hdr_size * 2;
        let keyslots_size = match opts.keyslots_size {
            Some(k) => k,
            None if opts.data_offset == 0 => 16 * 1024 * 1024 - headers,
            None => opts
                .data_offset
                .checked_sub(headers)
                .ok_or(invalid("data_offset", "smaller than both header copies"))?
                .min(MAX_KEYSLOTS_SIZE),
        };
        if keyslots_size % 4096 != 0 || keyslots_size > MAX_KEYSLOTS_SIZE {
            return Err(invalid(
                "keyslots_size",
                "must be a multiple of 4096, at most 128 MiB",
            ));
        }
        if opts.data_offset != 0 && opts.data_offset < headers + keyslots_size {
            return Err(invalid(
                "data_offset",
                "inside the headers and keyslots area",
            ));
        }
        if let Some(u) = &opts.uuid {
            check_uuid(u)?;
        }

        let mut uuid_bytes = [0u8; 16];
        rng.fill_bytes(&mut uuid_bytes);
        let uuid = opts.uuid.clone().unwrap_or_else(|| uuid_v4(uuid_bytes));
        let vk = match &opts.volume_key {
            Some(k) if k.as_bytes().len() != opts.key_size => {
                return Err(invalid("volume_key", "length differs from key_size"));
            }
            Some(k) => k.clone(),
            None => {
                let mut k = vec![0u8; opts.key_size];
                rng.fill_bytes(&mut k);
                VolumeKey::new(k)
            }
        };
        let mut digest_salt = vec![0u8; 32];
        rng.fill_bytes(&mut digest_salt);
        let mut digest = vec![0u8; opts.digest_hash.output_len()];
        opts.digest_hash.pbkdf2(
            vk.as_bytes(),
            &digest_salt,
            opts.digest_iterations,
            &mut digest,
        );
        let mut salts = [[0u8; 64]; 2];
        rng.fill_bytes(&mut salts[0]);
        rng.fill_bytes(&mut salts[1]);

        let mut segments = BTreeMap::new();
        segments.insert(
            0,
            Segment {
                kind: "crypt".into(),
                offset: opts.data_offset,
                size: opts.segment_size,
                flags: None,
                crypt: Some(CryptParams {
                    iv_tweak: 0,
                    encryption: "aes-xts-plain64".into(),
                    sector_size: opts.sector_size,
                }),
                extra: Map::new(),
            },
        );
        let mut digests = BTreeMap::new();
        digests.insert(
            0,
            DigestEntry {
                keyslots: Vec::new(),
                segments: vec![0],
                hash: opts.digest_hash,
                iterations: opts.digest_iterations,
                salt: digest_salt,
                digest,
                extra: Map::new(),
            },
        );
        let mut hdr = Self {
            hdr_size: opts.hdr_size,
            seqid: 0,
            label: opts.label.clone(),
            subsystem: opts.subsystem.clone(),
            uuid,
            metadata: Metadata {
                keyslots: BTreeMap::new(),
                tokens: BTreeMap::new(),
                segments,
                digests,
                config: Config {
                    json_size: opts.hdr_size - 4096,
                    keyslots_size,
                    flags: None,
                    requirements: None,
                    extra: Map::new(),
                },
                extra: Map::new(),
            },
            salts,
            limits: crate::raw::Limits::default(),
            copies: [
                CopyReport {
                    offset: 0,
                    seqid: None,
                    checksum_ok: false,
                    problem: None,
                },
                CopyReport {
                    offset: opts.hdr_size,
                    seqid: None,
                    checksum_ok: false,
                    problem: None,
                },
            ],
        };
        // Fail on bad labels before touching the device.
        hdr.encode()?;
        dev.seek(SeekFrom::Start(0))
            .map_err(io("seeking to the start of the volume"))?;
        let zeros = vec![0u8; 1 << 20];
        let mut left = headers + keyslots_size;
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            dev.write_all(&zeros[..n])
                .map_err(io("zeroing the LUKS2 metadata area"))?;
            left -= n as u64;
        }
        // add_keyslot commits with seqid + 1, so the first header on disk has seqid 1.
        hdr.add_keyslot(dev, &vk, passphrase, &opts.keyslot, Some(0), rng)?;
        Ok((hdr, vk))
    }
}
