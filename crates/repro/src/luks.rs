//! LUKS2 volumes as the commands use them: formatting with the one seed rule, the keyslot
//! operations that start by unlocking with a passphrase, and decrypting the payload to an
//! output through the atomic writer ([`AtomicFile`]).
//!
//! A wrong passphrase is an answer, not an error: the operations that unlock return
//! `Ok(None)` when the passphrase opens no keyslot.
//!
//! ```
//! use std::io::Cursor;
//! use imgpipe_luks::{FormatOptions, HashAlg, KdfParams, KeyslotParams};
//! use imgpipe_repro::Seed;
//! use imgpipe_repro::luks::{KeySource, add_key, format};
//!
//! let cheap = KeyslotParams {
//!     kdf: KdfParams::Pbkdf2 { hash: HashAlg::Sha256, iterations: 1000 },
//!     ..KeyslotParams::default()
//! };
//! let opts = FormatOptions {
//!     data_offset: 1 << 20,
//!     keyslot: cheap.clone(),
//!     digest_iterations: 1000,
//!     ..FormatOptions::default()
//! };
//! let seed = Seed::from_material(b"build 7");
//! let mut dev = Cursor::new(vec![0u8; 2 << 20]);
//! let mut hdr = format(&mut dev, opts, b"old", KeySource::Seed(seed))?;
//! assert_eq!(hdr.uuid, seed.luks2_uuid());
//! // A wrong passphrase is an answer: nothing is added.
//! assert_eq!(add_key(&mut hdr, &mut dev, b"nope", b"new", &cheap, None, KeySource::Seed(seed))?, None);
//! assert_eq!(add_key(&mut hdr, &mut dev, b"old", b"new", &cheap, None, KeySource::Seed(seed))?, Some(1));
//! # Ok::<(), imgpipe_repro::Error>(())
//! ```
//!
//! # Determinism
//! Nothing here draws randomness on its own: the UUID, volume key, salts and anti-forensic
//! stripes come from a [`Seed`] (each from its own keyed stream, [`Seed::luks2_format`]) or
//! from the RNG the caller passes ([`KeySource::Rng`]).

use std::io::{BufWriter, Read, Seek, Write};
use std::path::Path;

use imgpipe_luks::{DataSegment, FormatOptions, KeyslotParams, Luks2Header};
use rand_core::CryptoRng;

use crate::error::{Error, Result};
use crate::output::AtomicFile;
use crate::seed::{Purpose, Seed};

/// Where the random values of a volume or keyslot come from.
pub enum KeySource<'a> {
    /// The seed rule: one keyed stream per purpose, a reproducible result.
    Seed(Seed),
    /// A cryptographic RNG (the OS source, in the binary).
    Rng(&'a mut dyn CryptoRng),
}

impl std::fmt::Debug for KeySource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Seed(s) => f.debug_tuple("Seed").field(s).finish(),
            Self::Rng(_) => f.write_str("Rng(..)"),
        }
    }
}

/// The step of a LUKS2 operation that failed ([`Error::Luks`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LuksStep {
    /// Opening a keyslot with the passphrase.
    Unlock,
    /// Writing the new header and keyslot 0.
    Format,
    /// Adding a keyslot.
    AddKeyslot,
    /// Rewriting a keyslot under a new passphrase.
    ChangeKeyslot,
    /// Checking that a keyslot may be removed (it exists, it is not the last one).
    CheckRemovable,
    /// Removing a keyslot.
    RemoveKeyslot,
    /// Setting up the data segment's cipher.
    DataSegment,
    /// Decrypting the payload.
    Decrypt,
}

impl std::fmt::Display for LuksStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Unlock => "unlocking the volume",
            Self::Format => "formatting the volume",
            Self::AddKeyslot => "adding the keyslot",
            Self::ChangeKeyslot => "changing the keyslot",
            Self::CheckRemovable => "choosing the keyslot to remove",
            Self::RemoveKeyslot => "removing the keyslot",
            Self::DataSegment => "using the data segment",
            Self::Decrypt => "decrypting the payload",
        })
    }
}

fn step(step: LuksStep) -> impl FnOnce(imgpipe_luks::Error) -> Error {
    move |source| Error::Luks { step, source }
}

/// Which keyslot to remove.
#[derive(Debug, Clone, Copy)]
pub enum KeyslotChoice<'a> {
    /// The keyslot with this id.
    Id(u32),
    /// The keyslot this passphrase opens.
    Passphrase(&'a [u8]),
}

/// Writes a new LUKS2 header and keyslot 0 for `passphrase` to `dev`. With a seed, what
/// `opts` leaves open (UUID, volume key) and the salts come from it ([`Seed::luks2_format`]);
/// with an RNG, from the RNG.
pub fn format<D: Write + Seek>(
    dev: &mut D,
    opts: FormatOptions,
    passphrase: &[u8],
    keys: KeySource<'_>,
) -> Result<Luks2Header> {
    let (hdr, _) = match keys {
        KeySource::Seed(seed) => {
            let (opts, mut rng) = seed.luks2_format(opts);
            Luks2Header::format(dev, &opts, passphrase, &mut rng)
        }
        KeySource::Rng(rng) => Luks2Header::format(dev, &opts, passphrase, rng),
    }
    .map_err(step(LuksStep::Format))?;
    Ok(hdr)
}

/// Runs `f` with the RNG of `keys`: the seed's salts stream, or the caller's RNG.
fn with_rng<T>(keys: KeySource<'_>, f: impl FnOnce(&mut dyn CryptoRng) -> T) -> T {
    match keys {
        KeySource::Seed(seed) => f(&mut seed.rng(&Purpose::Luks2Salts)),
        KeySource::Rng(rng) => f(rng),
    }
}

/// Unlocks with `passphrase`, then adds a keyslot for `new_passphrase` (in `slot`, or the
/// lowest free one) and commits the header. Returns the new keyslot's id, or `None` when
/// `passphrase` opens no keyslot.
#[allow(clippy::too_many_arguments)]
pub fn add_key<D: Read + Write + Seek>(
    hdr: &mut Luks2Header,
    dev: &mut D,
    passphrase: &[u8],
    new_passphrase: &[u8],
    params: &KeyslotParams,
    slot: Option<u32>,
    keys: KeySource<'_>,
) -> Result<Option<u32>> {
    let Some(u) = hdr
        .try_unlock(dev, passphrase, None)
        .map_err(step(LuksStep::Unlock))?
    else {
        return Ok(None);
    };
    let id = with_rng(keys, |rng| {
        hdr.add_keyslot(dev, &u.volume_key, new_passphrase, params, slot, rng)
    })
    .map_err(step(LuksStep::AddKeyslot))?;
    Ok(Some(id))
}

/// Rewrites the keyslot `passphrase` opens under `new_passphrase` and commits the header.
/// Returns the keyslot's id, or `None` when `passphrase` opens no keyslot.
pub fn change_key<D: Read + Write + Seek>(
    hdr: &mut Luks2Header,
    dev: &mut D,
    passphrase: &[u8],
    new_passphrase: &[u8],
    params: &KeyslotParams,
    keys: KeySource<'_>,
) -> Result<Option<u32>> {
    let Some(u) = hdr
        .try_unlock(dev, passphrase, None)
        .map_err(step(LuksStep::Unlock))?
    else {
        return Ok(None);
    };
    with_rng(keys, |rng| {
        hdr.change_keyslot(dev, u.keyslot, &u.volume_key, new_passphrase, params, rng)
    })
    .map_err(step(LuksStep::ChangeKeyslot))?;
    Ok(Some(u.keyslot))
}

/// Removes a keyslot (by id, or the one a passphrase opens) and wipes its area; the last
/// keyslot only when `allow_last`. Returns its id, or `None` when the passphrase opens no
/// keyslot.
pub fn remove_key<D: Read + Write + Seek>(
    hdr: &mut Luks2Header,
    dev: &mut D,
    which: KeyslotChoice<'_>,
    allow_last: bool,
) -> Result<Option<u32>> {
    let id = match which {
        KeyslotChoice::Id(id) => id,
        KeyslotChoice::Passphrase(p) => match hdr
            .try_unlock(dev, p, None)
            .map_err(step(LuksStep::Unlock))?
        {
            Some(u) => u.keyslot,
            None => return Ok(None),
        },
    };
    hdr.check_removable(id, allow_last)
        .map_err(step(LuksStep::CheckRemovable))?;
    hdr.remove_keyslot(dev, id)
        .map_err(step(LuksStep::RemoveKeyslot))?;
    Ok(Some(id))
}

/// Unlocks with `passphrase` and returns the data segment; `None` when the passphrase opens
/// no keyslot.
pub fn unlock_segment<R: Read + Seek>(
    hdr: &Luks2Header,
    dev: &mut R,
    passphrase: &[u8],
) -> Result<Option<DataSegment>> {
    let Some(u) = hdr
        .try_unlock(dev, passphrase, None)
        .map_err(step(LuksStep::Unlock))?
    else {
        return Ok(None);
    };
    let seg = hdr
        .data_segment(&u.volume_key)
        .map_err(step(LuksStep::DataSegment))?;
    Ok(Some(seg))
}

/// Decrypts `len` bytes of payload from `dev` into `out` through the atomic writer: `out`
/// appears complete, or not at all. `progress` gets the bytes written so far.
pub fn decrypt_to_file<R: Read + Seek>(
    seg: &DataSegment,
    dev: &mut R,
    len: u64,
    out: &Path,
    progress: &mut dyn FnMut(u64),
) -> Result<()> {
    let output = |action: &'static str| {
        move |e: Error| Error::OutputFile {
            action,
            path: out.to_path_buf(),
            source: Box::new(e),
        }
    };
    let file = AtomicFile::create(out).map_err(output("create"))?;
    let mut w = BufWriter::new(file.file());
    seg.decrypt_stream(dev, len, &mut w, progress)
        .map_err(step(LuksStep::Decrypt))?;
    w.flush().map_err(|source| Error::HostIo {
        what: "cannot write",
        path: out.to_path_buf(),
        source,
    })?;
    drop(w);
    file.commit().map_err(output("write"))
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use imgpipe_luks::{HashAlg, KdfParams};

    use super::*;

    fn cheap() -> KeyslotParams {
        KeyslotParams {
            kdf: KdfParams::Pbkdf2 {
                hash: HashAlg::Sha256,
                iterations: 1000,
            },
            ..KeyslotParams::default()
        }
    }

    fn opts() -> FormatOptions {
        FormatOptions {
            data_offset: 1 << 20,
            keyslot: cheap(),
            digest_iterations: 1000,
            ..FormatOptions::default()
        }
    }

    fn volume(seed: &[u8]) -> (Cursor<Vec<u8>>, Luks2Header) {
        let mut dev = Cursor::new(vec![0u8; 2 << 20]);
        let hdr = format(
            &mut dev,
            opts(),
            b"zero",
            KeySource::Seed(Seed::from_material(seed)),
        )
        .unwrap();
        (dev, hdr)
    }

    #[test]
    fn a_seeded_format_is_reproducible_and_takes_its_uuid_from_the_seed() {
        let (a, hdr) = volume(b"s");
        let (b, _) = volume(b"s");
        let (c, _) = volume(b"t");
        assert_eq!(a.get_ref(), b.get_ref());
        assert_ne!(a.get_ref(), c.get_ref());
        assert_eq!(hdr.uuid, Seed::from_material(b"s").luks2_uuid());
    }

    #[test]
    fn keyslot_operations_unlock_first_and_answer_a_wrong_passphrase() {
        let (mut dev, mut hdr) = volume(b"k");
        let seed = || KeySource::Seed(Seed::from_material(b"k"));
        let p = cheap();
        assert_eq!(
            add_key(&mut hdr, &mut dev, b"nope", b"one", &p, None, seed()).unwrap(),
            None
        );
        assert_eq!(
            add_key(&mut hdr, &mut dev, b"zero", b"one", &p, None, seed()).unwrap(),
            Some(1)
        );
        assert_eq!(
            change_key(&mut hdr, &mut dev, b"one", b"uno", &p, seed()).unwrap(),
            Some(1)
        );
        assert!(hdr.try_unlock(&mut dev, b"one", None).unwrap().is_none());
        let choice = KeyslotChoice::Passphrase(b"zero");
        assert_eq!(
            remove_key(&mut hdr, &mut dev, choice, false).unwrap(),
            Some(0)
        );
        assert!(matches!(
            remove_key(&mut hdr, &mut dev, KeyslotChoice::Id(1), false),
            Err(Error::Luks {
                step: LuksStep::CheckRemovable,
                source: imgpipe_luks::Error::LastKeyslot(1)
            })
        ));
        assert_eq!(
            remove_key(&mut hdr, &mut dev, KeyslotChoice::Id(1), true).unwrap(),
            Some(1)
        );
    }

    #[test]
    fn decrypts_the_payload_to_a_file_or_leaves_nothing() {
        let (mut dev, hdr) = volume(b"d");
        let seg = unlock_segment(&hdr, &mut dev, b"zero").unwrap().unwrap();
        assert!(unlock_segment(&hdr, &mut dev, b"x").unwrap().is_none());
        let plain = vec![7u8; 4096];
        seg.encrypt_stream(&plain[..], &mut dev, &mut |_| {})
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("plain.img");
        decrypt_to_file(&seg, &mut dev, 4096, &out, &mut |_| {}).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), plain);
        // A payload longer than the device fails, and leaves no file.
        let bad = dir.path().join("bad.img");
        assert!(decrypt_to_file(&seg, &mut dev, 4 << 20, &bad, &mut |_| {}).is_err());
        assert!(!bad.exists());
        assert!(!crate::output::temp_path(&bad).unwrap().exists());
    }
}
