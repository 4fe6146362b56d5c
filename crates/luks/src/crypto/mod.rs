//! The cryptographic building blocks LUKS2 composes: hashes, PBKDF2/Argon2, the LUKS1
//! anti-forensic splitter and AES-XTS with `plain64` IVs.

mod af;
mod hash;
mod kdf;
mod xts;

pub use af::{af_merge, af_split, af_split_size};
pub use hash::HashAlg;
pub use kdf::{Argon2Variant, Kdf, check_kdf_limits, derive_key, kdf_work};
pub use xts::{Xts, XtsKeySize};
