//! LUKS2 volumes in pure Rust: headers, keyslots and payload encryption, compatible with
//! cryptsetup in both directions.
//!
//! The layout follows cryptsetup's *LUKS2 On-Disk Format Specification*: a 4096-byte binary
//! header followed by a JSON area, stored twice, then the keyslot areas, then the encrypted
//! data segment.
//!
//! ```
//! use std::io::Cursor;
//! use imgpipe_luks::{FormatOptions, HashAlg, KdfParams, KeyslotParams, Luks2Header};
//! use rand_chacha::ChaCha20Rng;
//! use rand_core::SeedableRng;
//!
//! // A small volume in memory, with cheap KDF costs so the example runs fast.
//! let opts = FormatOptions {
//!     data_offset: 1 << 20,
//!     keyslot: KeyslotParams {
//!         kdf: KdfParams::Pbkdf2 { hash: HashAlg::Sha256, iterations: 1000 },
//!         ..KeyslotParams::default()
//!     },
//!     digest_iterations: 1000,
//!     label: "demo".into(),
//!     ..FormatOptions::default()
//! };
//! let mut dev = Cursor::new(vec![0u8; 2 << 20]);
//! let mut rng = ChaCha20Rng::seed_from_u64(7);
//! let (_, key) = Luks2Header::format(&mut dev, &opts, b"secret", &mut rng)?;
//!
//! // Encrypt a sector of payload, read the header back, unlock, decrypt.
//! let hdr = Luks2Header::read(&mut dev)?;
//! let seg = hdr.data_segment(&key)?;
//! let mut sector = [0x5a_u8; 512];
//! seg.encrypt(&mut sector, 0)?;
//! let (slot, unlocked) = hdr.unlock(&mut dev, b"secret")?;
//! assert_eq!((slot, &unlocked), (0, &key));
//! hdr.data_segment(&unlocked)?.decrypt(&mut sector, 0)?;
//! assert_eq!(sector, [0x5a; 512]);
//! assert!(matches!(hdr.unlock(&mut dev, b"wrong"), Err(imgpipe_luks::Error::WrongPassphrase)));
//! // The same answer as a value: `None` when the passphrase opens no keyslot.
//! assert!(hdr.try_unlock(&mut dev, b"wrong", None)?.is_none());
//! assert_eq!(hdr.try_unlock(&mut dev, b"secret", None)?.map(|u| u.keyslot), Some(0));
//! # Ok::<(), imgpipe_luks::Error>(())
//! ```
//!
//! # Security
//! Headers are untrusted input: every length and offset is checked before use, object
//! counts, array lengths and the Argon2 memory a keyslot may demand are capped
//! ([`Limits`]), and errors name the structure, field (a JSON path for metadata) and byte
//! offset. The metadata is validated as cryptsetup validates it (header sizes, JSON and
//! keyslots area sizes, keyslot areas inside the keyslots area and not overlapping, aligned
//! segments, digests referring to existing keyslots and segments, every crypt segment
//! covered by a digest, numeric object names, nothing after the JSON terminator), and
//! `cipher_null` keyslots are refused. Volumes with `requirements.mandatory` flags (a
//! reencryption in progress, or unknown features) are refused for unlock and rewrite.
//! Key material ([`VolumeKey`], derived keys, split keys) is zeroized on drop and the
//! digest comparison is constant time.
//!
//! # Determinism
//! Nothing here reads the clock or a random source on its own: every random value comes
//! from the RNG passed in, in a fixed order, so a seeded RNG (as above) gives a
//! byte-identical volume. Metadata JSON is written compact with sorted keys.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod crypto;
mod error;
mod format;
#[doc(hidden)]
pub mod fuzzing;
mod header;
mod inspect;
mod keyslot;
mod payload;
mod plaintext;
pub mod raw;
mod unlock;

pub use crypto::{
    Argon2Variant, HashAlg, Kdf, Xts, XtsKeySize, af_merge, af_split, derive_key, kdf_work,
};
pub use error::{Error, Result};
pub use format::FormatOptions;
pub use header::{ALLOWED_HDR_SIZES, CopyReport, Luks2Header};
pub use inspect::{Inspection, detect, inspect};
pub use keyslot::{KdfParams, KeyslotParams, VolumeKey};
pub use payload::DataSegment;
pub use plaintext::Plaintext;
pub use raw::{BinaryHeader, HeaderKind, Limits, Metadata};
pub use unlock::Unlocked;
