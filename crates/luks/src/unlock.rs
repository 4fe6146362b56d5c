//! The unlock flow as a caller wants it: find the keyslot a passphrase opens (derive its key,
//! merge the anti-forensic split, check the digest) and get the volume key, with a wrong
//! passphrase as an answer rather than an error.

use std::io::{Read, Seek};

use crate::error::{Error, Result};
use crate::header::Luks2Header;
use crate::keyslot::VolumeKey;
use crate::payload::DataSegment;

/// What a passphrase opened: the keyslot and the volume key it holds.
#[derive(Debug)]
pub struct Unlocked {
    /// The keyslot id.
    pub keyslot: u32,
    /// The volume key (checked against the keyslot's digest).
    pub volume_key: VolumeKey,
}

impl Luks2Header {
    /// Opens the volume with `passphrase`: only keyslot `keyslot` when given, else every
    /// keyslot in [`unlock_order`](Self::unlock_order). `Ok(None)` when the passphrase opens
    /// none of them; an error for everything else (a missing keyslot, unsupported
    /// algorithms, unreadable areas, mandatory requirements).
    pub fn try_unlock<R: Read + Seek>(
        &self,
        dev: &mut R,
        passphrase: &[u8],
        keyslot: Option<u32>,
    ) -> Result<Option<Unlocked>> {
        let opened = match keyslot {
            Some(id) => self
                .unlock_keyslot(dev, id, passphrase)
                .map(|volume_key| (id, volume_key)),
            None => self.unlock(dev, passphrase),
        };
        match opened {
            Ok((keyslot, volume_key)) => Ok(Some(Unlocked {
                keyslot,
                volume_key,
            })),
            Err(Error::WrongPassphrase) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Opens the volume with `passphrase` and returns its data segment, ready to encrypt or
    /// decrypt; `Ok(None)` when the passphrase opens no keyslot.
    pub fn unlock_segment<R: Read + Seek>(
        &self,
        dev: &mut R,
        passphrase: &[u8],
    ) -> Result<Option<(Unlocked, DataSegment)>> {
        let Some(u) = self.try_unlock(dev, passphrase, None)? else {
            return Ok(None);
        };
        let seg = self.data_segment(&u.volume_key)?;
        Ok(Some((u, seg)))
    }

    /// Checks that keyslot `id` may be removed: it exists and, unless `allow_last`, it is not
    /// the last one (removing it would make the data unrecoverable).
    pub fn check_removable(&self, id: u32, allow_last: bool) -> Result<()> {
        if !self.metadata.keyslots.contains_key(&id) {
            return Err(Error::NoSuchKeyslot(id));
        }
        if self.metadata.keyslots.len() == 1 && !allow_last {
            return Err(Error::LastKeyslot(id));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;
    use crate::{FormatOptions, HashAlg, KdfParams, KeyslotParams};

    fn cheap() -> KeyslotParams {
        KeyslotParams {
            kdf: KdfParams::Pbkdf2 {
                hash: HashAlg::Sha256,
                iterations: 1000,
            },
            ..KeyslotParams::default()
        }
    }

    /// A volume with keyslot 0 under `zero` and keyslot 1 under `one`.
    fn volume() -> (Cursor<Vec<u8>>, Luks2Header, VolumeKey) {
        let opts = FormatOptions {
            data_offset: 1 << 20,
            keyslot: cheap(),
            digest_iterations: 1000,
            ..FormatOptions::default()
        };
        let mut dev = Cursor::new(vec![0u8; 2 << 20]);
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let (mut hdr, vk) = Luks2Header::format(&mut dev, &opts, b"zero", &mut rng).unwrap();
        hdr.add_keyslot(&mut dev, &vk, b"one", &cheap(), None, &mut rng)
            .unwrap();
        (dev, hdr, vk)
    }

    #[test]
    fn finds_the_keyslot_the_passphrase_opens() {
        let (mut dev, hdr, vk) = volume();
        let u = hdr.try_unlock(&mut dev, b"one", None).unwrap().unwrap();
        assert_eq!(u.keyslot, 1);
        assert_eq!(u.volume_key, vk);
        let u = hdr.try_unlock(&mut dev, b"zero", None).unwrap().unwrap();
        assert_eq!(u.keyslot, 0);
        // Asked for one keyslot, the other passphrase is wrong there.
        assert!(hdr.try_unlock(&mut dev, b"one", Some(0)).unwrap().is_none());
        assert_eq!(
            hdr.try_unlock(&mut dev, b"one", Some(1))
                .unwrap()
                .unwrap()
                .keyslot,
            1
        );
    }

    #[test]
    fn a_wrong_passphrase_is_an_answer_and_a_missing_keyslot_an_error() {
        let (mut dev, hdr, _) = volume();
        assert!(hdr.try_unlock(&mut dev, b"two", None).unwrap().is_none());
        assert!(hdr.unlock_segment(&mut dev, b"two").unwrap().is_none());
        assert!(matches!(
            hdr.try_unlock(&mut dev, b"one", Some(7)),
            Err(Error::NoSuchKeyslot(7))
        ));
    }

    #[test]
    fn the_segment_decrypts_what_the_volume_key_encrypted() {
        let (mut dev, hdr, vk) = volume();
        let mut sector = [0x42u8; 512];
        hdr.data_segment(&vk)
            .unwrap()
            .encrypt(&mut sector, 0)
            .unwrap();
        let (u, seg) = hdr.unlock_segment(&mut dev, b"zero").unwrap().unwrap();
        assert_eq!(u.keyslot, 0);
        seg.decrypt(&mut sector, 0).unwrap();
        assert_eq!(sector, [0x42; 512]);
    }

    #[test]
    fn the_last_keyslot_is_kept_unless_allowed() {
        let (mut dev, mut hdr, _) = volume();
        assert!(hdr.check_removable(0, false).is_ok());
        assert!(matches!(
            hdr.check_removable(5, true),
            Err(Error::NoSuchKeyslot(5))
        ));
        hdr.remove_keyslot(&mut dev, 0).unwrap();
        assert!(matches!(
            hdr.check_removable(1, false),
            Err(Error::LastKeyslot(1))
        ));
        assert!(hdr.check_removable(1, true).is_ok());
    }
}
