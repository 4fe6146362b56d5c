//! Keyslot key derivation: PBKDF2 (sha1/sha256/sha512) and Argon2i/Argon2id
//! (LUKS2 on-disk format, section 3.2 "kdf").

use serde::Serialize;

use super::HashAlg;
use crate::error::{Error, Result};
use crate::raw::Limits;

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

/// The work `kdf` asks for, in the unit of [`Limits::max_unlock_work`]: Argon2 memory KiB
/// times passes, or PBKDF2 iterations.
pub fn kdf_work(kdf: &Kdf) -> u64 {
    match kdf {
        Kdf::Pbkdf2 { iterations, .. } => u64::from(*iterations),
        Kdf::Argon2 { time, memory, .. } => u64::from(*memory) * u64::from(*time),
    }
}

/// Refuses costs of `kdf` beyond `limits` (untrusted input), before any work.
pub fn check_kdf_limits(kdf: &Kdf, limits: &Limits) -> Result<()> {
    match kdf {
        Kdf::Pbkdf2 { iterations, .. } => {
            if *iterations > limits.max_pbkdf2_iterations {
                return Err(Error::LimitExceeded {
                    what: "pbkdf2 iterations",
                    limit: u64::from(limits.max_pbkdf2_iterations),
                });
            }
        }
        Kdf::Argon2 { time, memory, .. } => {
            if *memory > limits.max_argon2_memory_kib {
                return Err(Error::LimitExceeded {
                    what: "argon2 memory cost (KiB)",
                    limit: u64::from(limits.max_argon2_memory_kib),
                });
            }
            if u64::from(*memory) * u64::from(*time) > limits.max_argon2_work {
                return Err(Error::LimitExceeded {
                    what: "argon2 work (memory KiB x time passes)",
                    limit: limits.max_argon2_work,
                });
            }
        }
    }
    Ok(())
}

/// Derives `out` from `passphrase` with `kdf`; refuses costs beyond `limits` (untrusted
/// input) before doing any work.
pub fn derive_key(kdf: &Kdf, passphrase: &[u8], out: &mut [u8], limits: &Limits) -> Result<()> {
    check_kdf_limits(kdf, limits)?;
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
                .map_err(|e| argon2_error(e, *memory))
        }
    }
}

/// This crate's error for what Argon2 refused: a memory failure is reported as one.
fn argon2_error(e: argon2::Error, memory_kib: u32) -> Error {
    match e {
        argon2::Error::OutOfMemory | argon2::Error::MemoryTooMuch => Error::OutOfMemory {
            what: "argon2 memory cost",
            bytes: u64::from(memory_kib) * 1024,
        },
        argon2::Error::SaltTooShort | argon2::Error::SaltTooLong => Error::InvalidOption {
            option: "argon2 salt",
            reason: "Argon2 needs a salt of 8 bytes or more (and fewer than 2^32)",
        },
        argon2::Error::PwdTooLong => Error::InvalidOption {
            option: "passphrase",
            reason: "longer than Argon2 accepts",
        },
        _ => Error::InvalidOption {
            option: "argon2 parameters",
            reason: "rejected by Argon2",
        },
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
        derive_key(&kdf, b"password", &mut out, &Limits::default()).unwrap();
        assert_eq!(
            out,
            [
                0xea, 0x6c, 0x01, 0x4d, 0xc7, 0x2d, 0x6f, 0x8c, 0xcd, 0x1e, 0xd9, 0x2a, 0xce, 0x1d,
                0x41, 0xf0, 0xd8, 0xde, 0x89, 0x57
            ]
        );
    }

    #[test]
    fn a_memory_failure_is_reported_as_one() {
        let e = argon2_error(argon2::Error::OutOfMemory, 1 << 20);
        assert!(
            matches!(e, Error::OutOfMemory { bytes, .. } if bytes == 1 << 30),
            "{e}"
        );
        assert!(e.to_string().contains("out of memory"), "{e}");
        let e = argon2_error(argon2::Error::SaltTooShort, 1 << 20);
        assert!(e.to_string().contains("salt"), "{e}");
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
        let limits = Limits {
            max_argon2_memory_kib: 1 << 20,
            ..Limits::default()
        };
        assert!(matches!(
            derive_key(&kdf, b"pw", &mut out, &limits),
            Err(Error::LimitExceeded { .. })
        ));
    }

    /// A hostile header asking for 2^32 - 1 passes or iterations is refused at once instead
    /// of keeping the caller busy for hours.
    #[test]
    fn work_caps_refuse_hostile_costs_before_any_work() {
        let mut out = [0u8; 32];
        let argon = Kdf::Argon2 {
            variant: Argon2Variant::Argon2id,
            time: u32::MAX,
            memory: 32,
            cpus: 1,
            salt: vec![0; 32],
        };
        let err = derive_key(&argon, b"pw", &mut out, &Limits::default()).unwrap_err();
        assert!(err.to_string().contains("argon2 work"), "{err}");
        let pbkdf2 = Kdf::Pbkdf2 {
            hash: HashAlg::Sha256,
            iterations: u32::MAX,
            salt: vec![0; 32],
        };
        let err = derive_key(&pbkdf2, b"pw", &mut out, &Limits::default()).unwrap_err();
        assert!(err.to_string().contains("pbkdf2 iterations"), "{err}");
        // At the cap it would run; one past it does not.
        let limits = Limits {
            max_pbkdf2_iterations: 2,
            ..Limits::default()
        };
        let ok = Kdf::Pbkdf2 {
            hash: HashAlg::Sha1,
            iterations: 2,
            salt: b"salt".to_vec(),
        };
        derive_key(&ok, b"password", &mut out[..20], &limits).unwrap();
        let over = Kdf::Pbkdf2 {
            hash: HashAlg::Sha1,
            iterations: 3,
            salt: b"salt".to_vec(),
        };
        assert!(derive_key(&over, b"password", &mut out[..20], &limits).is_err());
    }
}
