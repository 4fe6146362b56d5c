//! The one seed rule: every identifier, salt and key of an image derives from one 128-bit
//! [`Seed`], each purpose through its own keyed stream.
//!
//! A purpose ([`Purpose`]) is a label and an index, encoded into a message; its stream is
//! HMAC-SHA256 keyed by the seed: block 0 is `HMAC(seed, message)`, block n (n ≥ 1) is
//! `HMAC(seed, message || 0xFF || "block" || le64(n))`. An identifier is the start of its
//! purpose's stream; a UUID additionally gets the version-4 and variant bits.
//!
//! The messages of the GPT purposes are the ones systemd-repart uses (`repart.c`,
//! `derive_uuid()` and `partition_acquire_uuid()`), so a disk built here with
//! `--seed=MACHINE-ID` has the GUIDs systemd-repart gives it:
//!
//! | purpose | message |
//! |---|---|
//! | GPT disk GUID | `disk-uuid` |
//! | k-th partition of a type | the type UUID (text byte order), then `le64(k)` when k > 0 |
//! | FAT volume id of partition i | `fat-volume-id:` `le32(i)` (first 4 bytes, little-endian) |
//! | filesystem UUID | `fs-uuid:` label `:` `le64(index)` |
//! | LUKS2 UUID | `luks2-uuid` |
//! | LUKS2 volume key | `luks2-volume-key` |
//! | LUKS2 salts and anti-forensic stripes | `luks2-salts` (a ChaCha20 stream keyed by block 0) |
//! | anything else | label `:` `le64(index)` |
//!
//! ```
//! use imgpipe_repro::{Purpose, Seed};
//!
//! let seed = Seed::parse("0123456789abcdef0123456789abcdef").unwrap();
//! // systemd-repart's disk GUID for this seed.
//! assert_eq!(seed.gpt().disk_guid().to_string(), "6913F4B6-6690-4A57-A202-F1B53C56DBDF");
//! assert_eq!(imgpipe_repro::uuid_text(&seed.uuid(&Purpose::DiskGuid)),
//!            "6913f4b6-6690-4a57-a202-f1b53c56dbdf");
//! // Each purpose has its own stream.
//! assert_ne!(seed.uuid(&Purpose::Luks2Uuid), seed.uuid(&Purpose::DiskGuid));
//! ```

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sha2::{Digest, Sha256};

use crate::derive::{hmac_sha256, uuid_text};

/// What a derived value is for; each purpose has its own keyed stream.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Purpose {
    /// The GPT disk GUID.
    DiskGuid,
    /// The GUID of the `instance`-th (0-based, counted in table order) partition of a type.
    PartitionGuid {
        /// The type UUID in text (RFC 9562) byte order.
        type_uuid: [u8; 16],
        /// Which partition of that type.
        instance: u64,
    },
    /// The FAT volume serial number of the file system in GPT partition `partition` (1-based).
    FatVolumeId {
        /// The partition's 1-based index.
        partition: u32,
    },
    /// A filesystem or volume UUID (EROFS, an ISO's volume set, ...), by label and index.
    FilesystemUuid {
        /// What it is for, e.g. `erofs`.
        label: &'static str,
        /// Which one, when there are several.
        index: u64,
    },
    /// The LUKS2 volume UUID.
    Luks2Uuid,
    /// The LUKS2 volume key.
    Luks2VolumeKey,
    /// The LUKS2 salts and anti-forensic stripes.
    Luks2Salts,
    /// Anything else: a label and an index.
    Other {
        /// The label.
        label: &'static str,
        /// The index.
        index: u64,
    },
}

impl Purpose {
    /// The message HMAC'd for this purpose (see [`Seed`]).
    pub fn message(&self) -> Vec<u8> {
        let labelled = |label: &[u8], index: u64| {
            let mut m = label.to_vec();
            m.push(b':');
            m.extend_from_slice(&index.to_le_bytes());
            m
        };
        match self {
            Purpose::DiskGuid => b"disk-uuid".to_vec(),
            Purpose::PartitionGuid {
                type_uuid,
                instance,
            } => {
                let mut m = type_uuid.to_vec();
                if *instance > 0 {
                    m.extend_from_slice(&instance.to_le_bytes());
                }
                m
            }
            Purpose::FatVolumeId { partition } => {
                let mut m = b"fat-volume-id:".to_vec();
                m.extend_from_slice(&partition.to_le_bytes());
                m
            }
            Purpose::FilesystemUuid { label, index } => {
                let mut m = b"fs-uuid:".to_vec();
                m.extend_from_slice(&labelled(label.as_bytes(), *index));
                m
            }
            Purpose::Luks2Uuid => b"luks2-uuid".to_vec(),
            Purpose::Luks2VolumeKey => b"luks2-volume-key".to_vec(),
            Purpose::Luks2Salts => b"luks2-salts".to_vec(),
            Purpose::Other { label, index } => labelled(label.as_bytes(), *index),
        }
    }
}

/// A 128-bit seed every identifier of an image derives from (systemd-repart's `--seed=`,
/// usually a machine id). See the [module docs](crate::seed) for the rule.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Seed(pub [u8; 16]);

impl Seed {
    /// Parses 32 hex digits, with or without the dashes of a UUID.
    pub fn parse(text: &str) -> Option<Self> {
        imgpipe_gptpart::Seed::parse(text).map(|s| Self(s.0))
    }

    /// A seed from arbitrary bytes (the first 16 bytes of their SHA-256), for callers whose
    /// natural seed is a name or a build description rather than 128 random bits.
    pub fn from_material(material: &[u8]) -> Self {
        let digest = Sha256::digest(material);
        let mut s = [0u8; 16];
        s.copy_from_slice(&digest[..16]);
        Self(s)
    }

    /// Parses a seed given as text: 32 hex digits (a UUID) are the seed itself; any other
    /// non-empty even number of hex digits is material ([`Seed::from_material`] of the bytes).
    pub fn parse_hex(text: &str) -> Option<Self> {
        let t = text.trim();
        if let Some(s) = Self::parse(t) {
            return Some(s);
        }
        if t.is_empty() || !t.len().is_multiple_of(2) {
            return None;
        }
        let bytes = (0..t.len())
            .step_by(2)
            .map(|i| t.get(i..i + 2).and_then(|d| u8::from_str_radix(d, 16).ok()))
            .collect::<Option<Vec<u8>>>()?;
        Some(Self::from_material(&bytes))
    }

    /// Fills `out` from the keyed stream of `purpose`.
    pub fn fill(&self, purpose: &Purpose, out: &mut [u8]) {
        let message = purpose.message();
        for (n, chunk) in out.chunks_mut(32).enumerate() {
            let block = if n == 0 {
                hmac_sha256(&self.0, &message)
            } else {
                let mut m = message.clone();
                m.push(0xFF);
                m.extend_from_slice(b"block");
                m.extend_from_slice(&(n as u64).to_le_bytes());
                hmac_sha256(&self.0, &m)
            };
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
    }

    /// The first 32 bytes of `purpose`'s stream.
    pub fn bytes32(&self, purpose: &Purpose) -> [u8; 32] {
        let mut b = [0u8; 32];
        self.fill(purpose, &mut b);
        b
    }

    /// A version-4-marked UUID (text byte order) for `purpose`.
    pub fn uuid(&self, purpose: &Purpose) -> [u8; 16] {
        let mut u = [0u8; 16];
        self.fill(purpose, &mut u);
        u[6] = (u[6] & 0x0f) | 0x40;
        u[8] = (u[8] & 0x3f) | 0x80;
        u
    }

    /// A 32-bit value for `purpose` (the first 4 bytes of its stream, little-endian).
    pub fn u32(&self, purpose: &Purpose) -> u32 {
        let mut b = [0u8; 4];
        self.fill(purpose, &mut b);
        u32::from_le_bytes(b)
    }

    /// A cryptographic RNG keyed by `purpose`'s stream (ChaCha20 seeded with its first 32
    /// bytes), for formats that draw many values in a fixed order (LUKS2 anti-forensic
    /// stripes).
    pub fn rng(&self, purpose: &Purpose) -> ChaCha20Rng {
        ChaCha20Rng::from_seed(self.bytes32(purpose))
    }

    /// The same seed as gptpart takes it: its GPT GUIDs follow this rule
    /// ([`Purpose::DiskGuid`], [`Purpose::PartitionGuid`]).
    pub fn gpt(&self) -> imgpipe_gptpart::Seed {
        imgpipe_gptpart::Seed(self.0)
    }

    /// The FAT volume id of the file system in GPT partition `partition` (1-based).
    pub fn fat_volume_id(&self, partition: u32) -> u32 {
        self.u32(&Purpose::FatVolumeId { partition })
    }

    /// The LUKS2 volume UUID, as text.
    pub fn luks2_uuid(&self) -> String {
        uuid_text(&self.uuid(&Purpose::Luks2Uuid))
    }

    /// Fills in what `opts` leaves open of a new LUKS2 volume (its UUID and volume key) from
    /// this seed, and returns the RNG for the rest (salts and anti-forensic stripes).
    pub fn luks2_format(
        &self,
        mut opts: imgpipe_luks::FormatOptions,
    ) -> (imgpipe_luks::FormatOptions, ChaCha20Rng) {
        if opts.uuid.is_none() {
            opts.uuid = Some(self.luks2_uuid());
        }
        if opts.volume_key.is_none() {
            let mut k = vec![0u8; opts.key_size];
            self.fill(&Purpose::Luks2VolumeKey, &mut k);
            opts.volume_key = Some(imgpipe_luks::VolumeKey::new(k));
        }
        (opts, self.rng(&Purpose::Luks2Salts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imgpipe_gptpart::Guid;

    #[test]
    fn gpt_guids_are_systemd_repart_s_and_gptpart_s() {
        let seed = Seed::parse("0123456789abcdef0123456789abcdef").unwrap();
        let g = seed.gpt();
        assert_eq!(
            Guid::from_uuid_bytes(seed.uuid(&Purpose::DiskGuid)),
            g.disk_guid()
        );
        let esp = Guid::parse_str("C12A7328-F81F-11D2-BA4B-00A0C93EC93B").unwrap();
        for k in 0..3 {
            assert_eq!(
                Guid::from_uuid_bytes(seed.uuid(&Purpose::PartitionGuid {
                    type_uuid: esp.to_uuid_bytes(),
                    instance: k
                })),
                g.partition_guid(esp, k)
            );
        }
        assert_eq!(
            g.partition_guid(esp, 0).to_string(),
            "B2D552B0-45DB-4678-B34F-066168609D1A"
        );
        for i in [1u32, 2, 7] {
            assert_eq!(seed.fat_volume_id(i), g.volume_id(&i.to_le_bytes()));
        }
    }

    #[test]
    fn streams_are_long_distinct_and_prefix_stable() {
        let seed = Seed::from_material(b"build 7");
        let mut long = [0u8; 100];
        seed.fill(&Purpose::Luks2VolumeKey, &mut long);
        let mut short = [0u8; 20];
        seed.fill(&Purpose::Luks2VolumeKey, &mut short);
        assert_eq!(long[..20], short);
        assert_ne!(long[..32], long[32..64]);
        assert_ne!(
            seed.bytes32(&Purpose::Luks2Uuid),
            seed.bytes32(&Purpose::Luks2Salts)
        );
        assert_ne!(
            seed.bytes32(&Purpose::Other {
                label: "a",
                index: 0
            }),
            seed.bytes32(&Purpose::Other {
                label: "a",
                index: 1
            })
        );
    }

    #[test]
    fn text_forms() {
        let a = Seed::parse("01234567-89ab-cdef-0123-456789abcdef").unwrap();
        assert_eq!(Seed::parse_hex("0123456789ABCDEF0123456789ABCDEF"), Some(a));
        assert_eq!(
            Seed::parse_hex("00ff"),
            Some(Seed::from_material(&[0, 0xff]))
        );
        assert_eq!(Seed::parse_hex("0g"), None);
        assert_eq!(Seed::parse_hex("abc"), None);
        assert_eq!(Seed::parse_hex(""), None);
    }

    #[test]
    fn luks2_values_come_from_their_own_streams() {
        let seed = Seed::from_material(b"x");
        let (opts, _) = seed.luks2_format(imgpipe_luks::FormatOptions::default());
        assert_eq!(opts.uuid.as_deref(), Some(seed.luks2_uuid().as_str()));
        let key = opts.volume_key.unwrap();
        assert_eq!(key.as_bytes().len(), 64);
        let mut want = [0u8; 64];
        seed.fill(&Purpose::Luks2VolumeKey, &mut want);
        assert_eq!(key.as_bytes(), &want[..]);
    }
}
