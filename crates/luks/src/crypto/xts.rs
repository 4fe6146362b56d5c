//! AES-XTS with `plain64` IVs, as dm-crypt and cryptsetup use it (IEEE 1619).
//!
//! The IV of a sector is its number as a little-endian 64-bit value, zero-extended to
//! 16 bytes, and encrypted with the second half of the key into the initial tweak. Every
//! sector is a whole number of AES blocks, so ciphertext stealing never applies.
//!
//! Speed: per sector we compute all tweaks first, XOR them in, then hand the whole sector to
//! the block cipher's multi-block routine (which pipelines AES-NI rounds over 8 blocks), and
//! XOR the tweaks again. This batching is what makes the loop competitive with OpenSSL.

use aes::cipher::{Array, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use aes::{Aes128, Aes256};

use crate::error::{Error, Result};

/// Largest sector size supported (LUKS2 allows 512..4096).
const MAX_SECTOR: usize = 4096;
const BLOCK: usize = 16;

/// XTS key sizes: two AES keys, one for data and one for tweaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XtsKeySize {
    /// 256-bit XTS key: AES-128 twice.
    Bits256,
    /// 512-bit XTS key: AES-256 twice.
    Bits512,
}

enum Ciphers {
    Aes128(Box<(Aes128, Aes128)>),
    Aes256(Box<(Aes256, Aes256)>),
}

/// An AES-XTS-plain64 cipher keyed for one volume key or keyslot key.
pub struct Xts {
    ciphers: Ciphers,
}

impl std::fmt::Debug for Xts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Xts { .. }")
    }
}

fn mul_alpha(t: u128) -> u128 {
    // Multiplication by x in GF(2^128) with the XTS (little-endian) bit order; branch-free.
    let carry = ((t >> 127) as u64).wrapping_neg() & 0x87;
    (t << 1) ^ u128::from(carry)
}

fn xor_tweaks(sector: &mut [u8], tweaks: &[u128]) {
    for (chunk, t) in sector.chunks_exact_mut(BLOCK).zip(tweaks) {
        let mut b = [0u8; BLOCK];
        b.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u128::from_le_bytes(b) ^ t).to_le_bytes());
    }
}

fn process<E: BlockCipherEncrypt<BlockSize = aes::cipher::consts::U16>>(
    tweak_cipher: &E,
    iv: u64,
    sector: &mut [u8],
    run: impl FnOnce(&mut [Array<u8, aes::cipher::consts::U16>]),
) {
    let mut t = Array::<u8, aes::cipher::consts::U16>::default();
    t[..8].copy_from_slice(&iv.to_le_bytes());
    tweak_cipher.encrypt_block(&mut t);
    let mut tweak = u128::from_le_bytes(t.into());
    let mut tweaks = [0u128; MAX_SECTOR / BLOCK];
    let n = (sector.len() / BLOCK).min(tweaks.len());
    for slot in &mut tweaks[..n] {
        *slot = tweak;
        tweak = mul_alpha(tweak);
    }
    let tweaks = &tweaks[..n];
    xor_tweaks(sector, tweaks);
    let (blocks, _) = Array::<u8, aes::cipher::consts::U16>::slice_as_chunks_mut(sector);
    let m = blocks.len().min(n);
    run(&mut blocks[..m]);
    xor_tweaks(sector, tweaks);
}

impl Xts {
    /// Keys the cipher; the key is 32 (AES-128-XTS) or 64 (AES-256-XTS) bytes.
    pub fn new(key: &[u8]) -> Result<Self> {
        let ciphers = match key.len() {
            32 => {
                let (a, b) = key.split_at(16);
                Ciphers::Aes128(Box::new((
                    Aes128::new_from_slice(a).map_err(|_| bad_key())?,
                    Aes128::new_from_slice(b).map_err(|_| bad_key())?,
                )))
            }
            64 => {
                let (a, b) = key.split_at(32);
                Ciphers::Aes256(Box::new((
                    Aes256::new_from_slice(a).map_err(|_| bad_key())?,
                    Aes256::new_from_slice(b).map_err(|_| bad_key())?,
                )))
            }
            _ => return Err(bad_key()),
        };
        Ok(Self { ciphers })
    }

    /// The key size.
    pub fn key_size(&self) -> XtsKeySize {
        match self.ciphers {
            Ciphers::Aes128(_) => XtsKeySize::Bits256,
            Ciphers::Aes256(_) => XtsKeySize::Bits512,
        }
    }

    /// Encrypts one sector in place; `sector.len()` must be a multiple of 16, at most 4096.
    pub fn encrypt_sector(&self, iv: u64, sector: &mut [u8]) {
        debug_assert!(sector.len().is_multiple_of(BLOCK) && sector.len() <= MAX_SECTOR);
        match &self.ciphers {
            Ciphers::Aes128(c) => process(&c.1, iv, sector, |b| c.0.encrypt_blocks(b)),
            Ciphers::Aes256(c) => process(&c.1, iv, sector, |b| c.0.encrypt_blocks(b)),
        }
    }

    /// Decrypts one sector in place; `sector.len()` must be a multiple of 16, at most 4096.
    pub fn decrypt_sector(&self, iv: u64, sector: &mut [u8]) {
        debug_assert!(sector.len().is_multiple_of(BLOCK) && sector.len() <= MAX_SECTOR);
        match &self.ciphers {
            Ciphers::Aes128(c) => process(&c.1, iv, sector, |b| c.0.decrypt_blocks(b)),
            Ciphers::Aes256(c) => process(&c.1, iv, sector, |b| c.0.decrypt_blocks(b)),
        }
    }

    /// Encrypts consecutive sectors of `sector_size` bytes; the IV of sector `i` is
    /// `first_iv + i * iv_step` (LUKS2 counts IVs in 512-byte units, so `iv_step` is
    /// `sector_size / 512` for the data segment).
    pub fn encrypt_sectors(&self, buf: &mut [u8], sector_size: usize, first_iv: u64, iv_step: u64) {
        let mut iv = first_iv;
        for s in buf.chunks_mut(sector_size) {
            self.encrypt_sector(iv, s);
            iv = iv.wrapping_add(iv_step);
        }
    }

    /// Decrypts consecutive sectors; see [`Xts::encrypt_sectors`] for the IVs.
    pub fn decrypt_sectors(&self, buf: &mut [u8], sector_size: usize, first_iv: u64, iv_step: u64) {
        let mut iv = first_iv;
        for s in buf.chunks_mut(sector_size) {
            self.decrypt_sector(iv, s);
            iv = iv.wrapping_add(iv_step);
        }
    }
}

fn bad_key() -> Error {
    Error::InvalidOption {
        option: "aes-xts key",
        reason: "must be 32 or 64 bytes (256- or 512-bit XTS key)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// IEEE 1619-2007 test vector 4 (AES-128-XTS, data unit sequence number 0).
    #[test]
    fn ieee1619_vector_4() {
        let mut key = hex("2718281828459045235360287471352631415926535897932384626433832795");
        assert_eq!(key.len(), 32);
        let xts = Xts::new(&key).unwrap();
        let mut data: Vec<u8> = (0..=255u8).chain(0..=255u8).collect();
        xts.encrypt_sector(0, &mut data);
        assert_eq!(
            &data[..32],
            &hex("27a7479befa1d476489f308cd4cfa6e2a96e4bbe3208ff25287dd3819616e89c")[..]
        );
        xts.decrypt_sector(0, &mut data);
        assert_eq!(data, (0..=255u8).chain(0..=255u8).collect::<Vec<_>>());
        key.push(0);
        assert!(Xts::new(&key).is_err());
    }

    /// IEEE 1619-2007 test vector 10 (AES-256-XTS, data unit sequence number 0xff).
    #[test]
    fn ieee1619_vector_10() {
        let key = hex(concat!(
            "2718281828459045235360287471352662497757247093699959574966967627",
            "3141592653589793238462643383279502884197169399375105820974944592"
        ));
        let xts = Xts::new(&key).unwrap();
        let mut data: Vec<u8> = (0..=255u8).chain(0..=255u8).collect();
        xts.encrypt_sector(0xff, &mut data);
        assert_eq!(
            &data[..32],
            &hex("1c3b3a102f770386e4836c99e370cf9bea00803f5e482357a4ae12d414a3e63b")[..]
        );
    }
}
