//! Keyslot key derivation: PBKDF2 (sha1/sha256/sha512) and Argon2i/Argon2id
//! (LUKS2 on-disk format, section 3.2 "kdf").

use serde::Serialize;

use super::HashAlg;
use crate::error::{Error, Result};

/// Which Argon2 variant a keyslot uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Argon2Variant {
    /// `argon2i`: data-independent memory access.
    Argon2i,
    /// `argon2id`: hybrid, cryptsetup's default.
    Argon2id,
}

impl Argon2Variant {
    /// The name LUKS2 uses in `kdf.type`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Argon2i => "argon2i",
            Self::Argon2id => "argon2id",
        }
    }
}

/// A keyslot's key derivation function with its costs and salt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Kdf {
    /// PBKDF2-HMAC.
    Pbkdf2 {
        /// The HMAC hash.
        hash: HashAlg,
        /// Iteration count.
        iterations: u32,
        /// Salt (32 bytes when cryptsetup or this crate writes it).
        #[serde(serialize_with = "crate::raw::serialize_hex")]
        salt: Vec<u8>,
    },
    /// Argon2i or Argon2id (version 0x13).
    Argon2 {
        /// The variant.
        variant: Argon2Variant,
        /// Time cost (passes).
        time: u32,
        /// Memory cost in KiB.
        memory: u32,
        /// Lanes (`cpus` in the JSON).
        cpus: u32,
        /// Salt (32 bytes when cryptsetup or this crate writes it).
        #[serde(serialize_with = "crate::raw::serialize_hex")]
        salt: Vec<u8>,
    },
}

impl Kdf {
    /// The `kdf.type` name.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Pbkdf2 { .. } => "pbkdf2",
            Self::Argon2 { variant, .. } => variant.name(),
        }
    }

    /// The salt.
    pub fn salt(&self) -> &[u8] {
        match self {
            Self::Pbkdf2 { salt, .. } | Self::Argon2 { salt, .. } => salt,
        }
    }
}

/// Derives `out.len()` bytes from `passphrase` with `kdf`.
///
/// `max_memory_kib` caps the Argon2 memory a header may demand (untrusted input).
pub fn derive_key(kdf: &Kdf, passphrase: &[u8], out: &mut [u8], max_memory_kib: u32) -> Result<()> {
    match kdf {
        Kdf::Pbkdf2 {
            hash,
            iterations,
            salt,
        } => {
            if *iterations == 0 {
                return Err(Error::InvalidOption {
                    option: "pbkdf2 iterations",
                    reason: "must be at least 1",
                });
            }
            hash.pbkdf2(passphrase, salt, *iterations, out);
            Ok(())
        }
        Kdf::Argon2 {
            variant,
            time,
            memory,
            cpus,
            salt,
        } => {
            if *memory > max_memory_kib {
                return Err(Error::LimitExceeded {
                    what: "argon2 memory cost (KiB)",
                    limit: u64::from(max_memory_kib),
                });
            }
            let params = argon2::Params::new(*memory, *time, *cpus, Some(out.len())).map_err(
                |_| Error::InvalidOption {
                    option: "argon2 parameters",
                    reason: "Argon2 needs time >= 1, 1 <= cpus <= 2^24-1 and memory >= 8 KiB per lane",
                },
            )?;
            let alg = match variant {
                Argon2Variant::Argon2i => argon2::Algorithm::Argon2i,
                Argon2Variant::Argon2id => argon2::Algorithm::Argon2id,
            };
            argon2::Argon2::new(alg, argon2::Version::V0x13, params)
                .hash_password_into(passphrase, salt, out)
                .map_err(|_| Error::InvalidOption {
                    option: "argon2 salt or passphrase",
                    reason: "Argon2 needs a salt of 8 bytes or more",
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pbkdf2_rfc6070_vector() {
        let kdf = Kdf::Pbkdf2 {
            hash: HashAlg::Sha1,
            iterations: 2,
            salt: b"salt".to_vec(),
        };
        let mut out = [0u8; 20];
        derive_key(&kdf, b"password", &mut out, 0).unwrap();
        assert_eq!(
            out,
            [
                0xea, 0x6c, 0x01, 0x4d, 0xc7, 0x2d, 0x6f, 0x8c, 0xcd, 0x1e, 0xd9, 0x2a, 0xce, 0x1d,
                0x41, 0xf0, 0xd8, 0xde, 0x89, 0x57
            ]
        );
    }

    #[test]
    fn argon2_memory_cap_is_enforced() {
        let kdf = Kdf::Argon2 {
            variant: Argon2Variant::Argon2id,
            time: 1,
            memory: 1 << 30,
            cpus: 1,
            salt: vec![0; 32],
        };
        let mut out = [0u8; 32];
        assert!(matches!(
            derive_key(&kdf, b"pw", &mut out, 1 << 20),
            Err(Error::LimitExceeded { .. })
        ));
    }
}
