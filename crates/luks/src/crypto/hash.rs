//! The hash functions LUKS2 names in `af.hash`, `kdf.hash` and `digests.*.hash`.

use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use crate::error::{Error, Result};

/// A hash algorithm as named in LUKS2 metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HashAlg {
    /// `sha1` (still used by old LUKS1-converted keyslots).
    Sha1,
    /// `sha256`, cryptsetup's default.
    Sha256,
    /// `sha512`.
    Sha512,
}

impl HashAlg {
    /// Parses a LUKS2 hash name; `field` names the JSON field in the error.
    pub fn from_name(name: &str, field: &'static str) -> Result<Self> {
        match name {
            "sha1" => Ok(Self::Sha1),
            "sha256" => Ok(Self::Sha256),
            "sha512" => Ok(Self::Sha512),
            _ => Err(Error::UnsupportedValue {
                field,
                value: name.chars().take(32).collect(),
            }),
        }
    }

    /// The name LUKS2 uses.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Sha512 => "sha512",
        }
    }

    /// Output length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha512 => 64,
        }
    }

    /// Hashes the concatenation of `parts` into `out` (truncated to `out.len()`).
    pub(crate) fn hash_into(self, parts: &[&[u8]], out: &mut [u8]) {
        fn run<D: Digest>(parts: &[&[u8]], out: &mut [u8]) {
            let mut h = D::new();
            for p in parts {
                h.update(p);
            }
            let sum = h.finalize();
            let n = out.len().min(sum.len());
            out[..n].copy_from_slice(&sum[..n]);
        }
        match self {
            Self::Sha1 => run::<Sha1>(parts, out),
            Self::Sha256 => run::<Sha256>(parts, out),
            Self::Sha512 => run::<Sha512>(parts, out),
        }
    }

    /// PBKDF2-HMAC with this hash.
    pub(crate) fn pbkdf2(self, password: &[u8], salt: &[u8], iterations: u32, out: &mut [u8]) {
        match self {
            Self::Sha1 => pbkdf2::pbkdf2_hmac::<Sha1>(password, salt, iterations, out),
            Self::Sha256 => pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, out),
            Self::Sha512 => pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, out),
        }
    }
}
