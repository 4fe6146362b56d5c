//! Keyslots: unlock (passphrase -> KDF -> area decrypt -> AF merge -> digest check), add,
//! remove and change passphrase (LUKS2 on-disk format, section 3.2).

use std::io::{Read, Seek, SeekFrom, Write};

use rand_core::CryptoRng;
use serde_json::Value;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::crypto::{
    Argon2Variant, HashAlg, Kdf, Xts, af_merge, af_split, af_split_size, derive_key,
};
use crate::error::{Error, Result, io};
use crate::header::Luks2Header;
use crate::raw::{AfParams, KEYSLOT_STRIPES, KEYSLOTS_MAX, Keyslot, KeyslotArea, Limits};

/// The volume (master) key. Zeroized on drop; `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct VolumeKey(Zeroizing<Vec<u8>>);

impl VolumeKey {
    /// Wraps key bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The key as lowercase hex (for `--dump-volume-key`).
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(crate::raw::hex(&self.0))
    }
}

impl std::fmt::Debug for VolumeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VolumeKey({} bytes)", self.0.len())
    }
}

/// KDF choice and costs for a new keyslot (the salt is drawn from the RNG).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KdfParams {
    /// PBKDF2-HMAC; cryptsetup refuses fewer than 1000 iterations.
    Pbkdf2 {
        /// Hash.
        hash: HashAlg,
        /// Iterations.
        iterations: u32,
    },
    /// Argon2i or Argon2id.
    Argon2 {
        /// Variant.
        variant: Argon2Variant,
        /// Time cost (passes, >= 1; cryptsetup needs >= 4 unless forced... it accepts >= 1).
        time: u32,
        /// Memory cost in KiB (cryptsetup accepts 32 KiB .. 4 GiB).
        memory: u32,
        /// Lanes.
        cpus: u32,
    },
}

impl Default for KdfParams {
    /// argon2id with 1 GiB, 4 passes, 4 lanes (cryptsetup's memory and lane defaults; its
    /// time cost is benchmarked, which a reproducible builder cannot do).
    fn default() -> Self {
        Self::Argon2 {
            variant: Argon2Variant::Argon2id,
            time: 4,
            memory: 1024 * 1024,
            cpus: 4,
        }
    }
}

impl KdfParams {
    fn with_salt(self, salt: Vec<u8>) -> Kdf {
        match self {
            Self::Pbkdf2 { hash, iterations } => Kdf::Pbkdf2 {
                hash,
                iterations,
                salt,
            },
            Self::Argon2 {
                variant,
                time,
                memory,
                cpus,
            } => Kdf::Argon2 {
                variant,
                time,
                memory,
                cpus,
                salt,
            },
        }
    }

    fn check(self) -> Result<()> {
        match self {
            Self::Pbkdf2 { iterations, .. } if iterations < 1000 => Err(Error::InvalidOption {
                option: "pbkdf2 iterations",
                reason: "cryptsetup refuses fewer than 1000",
            }),
            Self::Argon2 { time, .. } if time < 1 => Err(Error::InvalidOption {
                option: "argon2 time",
                reason: "must be at least 1",
            }),
            Self::Argon2 { memory, .. } if !(32..=4 * 1024 * 1024).contains(&memory) => {
                Err(Error::InvalidOption {
                    option: "argon2 memory",
                    reason: "cryptsetup accepts 32 KiB .. 4 GiB",
                })
            }
            Self::Argon2 { cpus, memory, .. }
                if !(1..=16).contains(&cpus) || u64::from(memory) < 8 * u64::from(cpus) =>
            {
                Err(Error::InvalidOption {
                    option: "argon2 parallel",
                    reason: "must be 1 .. 16 with at least 8 KiB of memory per lane",
                })
            }
            _ => Ok(()),
        }
    }
}

/// Parameters of a new keyslot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyslotParams {
    /// KDF and its costs.
    pub kdf: KdfParams,
    /// Anti-forensic diffusion hash (cryptsetup: sha256).
    pub af_hash: HashAlg,
    /// Priority: `None` (normal), `Some(0)` ignore, `Some(2)` prefer.
    pub priority: Option<u8>,
}

impl Default for KeyslotParams {
    fn default() -> Self {
        Self {
            kdf: KdfParams::default(),
            af_hash: HashAlg::Sha256,
            priority: None,
        }
    }
}

const KEYSLOT_CIPHER: &str = "aes-xts-plain64";
const SECTOR: u64 = 512;

fn area_size_for(key_size: usize) -> Result<u64> {
    let n = af_split_size(key_size, KEYSLOT_STRIPES).ok_or(Error::LimitExceeded {
        what: "keyslot key size",
        limit: 512,
    })? as u64;
    Ok(n.div_ceil(4096) * 4096)
}

impl Luks2Header {
    /// Keyslot ids in the order unlock tries them: priority 2 first, then normal; slots
    /// with priority 0 are skipped (ask for them by id).
    pub fn unlock_order(&self) -> Vec<u32> {
        let mut ids: Vec<(u8, u32)> = self
            .metadata
            .keyslots
            .iter()
            .map(|(id, k)| (k.priority.unwrap_or(1), *id))
            .filter(|(p, _)| *p > 0)
            .collect();
        ids.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        ids.into_iter().map(|(_, id)| id).collect()
    }

    /// Unlocks with `passphrase`, trying keyslots by priority; returns the keyslot id and
    /// the volume key. [`Error::WrongPassphrase`] when no keyslot accepts it.
    pub fn unlock<R: Read + Seek>(
        &self,
        dev: &mut R,
        passphrase: &[u8],
    ) -> Result<(u32, VolumeKey)> {
        self.check_requirements()?;
        let mut unsupported = None;
        let mut over_budget = None;
        // One budget for every keyslot tried: a header with many keyslots at the
        // per-keyslot cap cannot multiply it.
        let mut budget = self.limits.max_unlock_work;
        for id in self.unlock_order() {
            match self.unlock_keyslot_within(dev, id, passphrase, &mut budget) {
                Ok(vk) => return Ok((id, vk)),
                Err(Error::WrongPassphrase) => {}
                Err(e @ (Error::Unsupported { .. } | Error::UnsupportedValue { .. })) => {
                    unsupported.get_or_insert(e);
                }
                Err(
                    e @ Error::LimitExceeded {
                        what: UNLOCK_WORK, ..
                    },
                ) => {
                    over_budget.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(over_budget
            .or(unsupported)
            .unwrap_or(Error::WrongPassphrase))
    }

    /// The key-derivation work opening keyslot `id` takes: its KDF and the PBKDF2 of the
    /// digests that check it.
    pub fn keyslot_work(&self, id: u32) -> Result<u64> {
        let ks = self
            .metadata
            .keyslots
            .get(&id)
            .ok_or(Error::NoSuchKeyslot(id))?;
        let digests: u64 = self
            .metadata
            .digests
            .values()
            .filter(|d| d.keyslots.contains(&id))
            .map(|d| u64::from(d.iterations))
            .sum();
        Ok(crate::crypto::kdf_work(&ks.kdf).saturating_add(digests))
    }

    /// Opens one keyslot with `passphrase`, within [`Limits::max_unlock_work`].
    pub fn unlock_keyslot<R: Read + Seek>(
        &self,
        dev: &mut R,
        id: u32,
        passphrase: &[u8],
    ) -> Result<VolumeKey> {
        let mut budget = self.limits.max_unlock_work;
        self.unlock_keyslot_within(dev, id, passphrase, &mut budget)
    }

    /// [`unlock_keyslot`](Self::unlock_keyslot), taking its work from `budget`.
    fn unlock_keyslot_within<R: Read + Seek>(
        &self,
        dev: &mut R,
        id: u32,
        passphrase: &[u8],
        budget: &mut u64,
    ) -> Result<VolumeKey> {
        self.check_requirements()?;
        let work = self.keyslot_work(id)?;
        let ks = self
            .metadata
            .keyslots
            .get(&id)
            .ok_or(Error::NoSuchKeyslot(id))?;
        if ks.area.encryption != KEYSLOT_CIPHER {
            return Err(Error::UnsupportedValue {
                field: "keyslot area encryption",
                value: ks.area.encryption.chars().take(32).collect(),
            });
        }
        if !matches!(ks.area.key_size, 32 | 64) {
            return Err(Error::UnsupportedValue {
                field: "keyslot area key_size",
                value: ks.area.key_size.to_string(),
            });
        }
        let mut area_key = Zeroizing::new(vec![0u8; ks.area.key_size as usize]);
        // The digest's own PBKDF2 runs after the keyslot's: refuse an absurd one up front.
        let limits = self.limits;
        if self
            .metadata
            .digests
            .values()
            .filter(|d| d.keyslots.contains(&id))
            .any(|d| d.iterations > limits.max_pbkdf2_iterations)
        {
            return Err(Error::LimitExceeded {
                what: "digest pbkdf2 iterations",
                limit: u64::from(limits.max_pbkdf2_iterations),
            });
        }
        // Each cost within its own cap first (the clearer error), then within what is left
        // of this unlock's budget.
        crate::crypto::check_kdf_limits(&ks.kdf, &limits)?;
        if work > *budget {
            return Err(Error::LimitExceeded {
                what: UNLOCK_WORK,
                limit: self.limits.max_unlock_work,
            });
        }
        *budget -= work;
        derive_key(&ks.kdf, passphrase, &mut area_key, &limits)?;
        let key_size = ks.key_size as usize;
        let split_len = af_split_size(key_size, ks.af.stripes).ok_or(Error::LimitExceeded {
            what: "keyslot split key size",
            limit: u64::MAX,
        })?;
        let read_len = (split_len as u64).div_ceil(SECTOR) * SECTOR;
        dev.seek(SeekFrom::Start(ks.area.offset))
            .map_err(io("seeking to a keyslot area"))?;
        let mut area = Zeroizing::new(Vec::new());
        dev.take(read_len)
            .read_to_end(&mut area)
            .map_err(io("reading a keyslot area"))?;
        if (area.len() as u64) < read_len {
            return Err(Error::Truncated {
                structure: "keyslot area",
                offset: ks.area.offset,
                needed: read_len,
                available: area.len() as u64,
            });
        }
        let xts = Xts::new(&area_key)?;
        xts.decrypt_sectors(&mut area, SECTOR as usize, 0, 1);
        let vk = af_merge(&area, key_size, ks.af.stripes, ks.af.hash).ok_or(Error::Truncated {
            structure: "keyslot area",
            offset: ks.area.offset,
            needed: split_len as u64,
            available: area.len() as u64,
        })?;
        let vk = VolumeKey(vk);
        if self.verify_volume_key_for_keyslot(id, &vk) {
            Ok(vk)
        } else {
            Err(Error::WrongPassphrase)
        }
    }

    fn verify_volume_key_for_keyslot(&self, id: u32, vk: &VolumeKey) -> bool {
        self.metadata
            .digests
            .values()
            .filter(|d| d.keyslots.contains(&id))
            .any(|d| digest_matches(d, vk, &self.limits))
    }

    /// Whether `vk` matches the digest of the (first) crypt segment.
    pub fn verify_volume_key(&self, vk: &VolumeKey) -> bool {
        self.segment_digest()
            .is_some_and(|d| digest_matches(d, vk, &self.limits))
    }

    fn segment_digest_id(&self) -> Option<u32> {
        let seg = self
            .metadata
            .segments
            .iter()
            .filter(|(_, s)| s.kind == "crypt")
            .min_by_key(|(_, s)| s.offset)
            .map(|(id, _)| *id)?;
        self.metadata
            .digests
            .iter()
            .find(|(_, d)| d.segments.contains(&seg))
            .map(|(id, _)| *id)
    }

    fn segment_digest(&self) -> Option<&crate::raw::DigestEntry> {
        self.metadata.digests.get(&self.segment_digest_id()?)
    }

    /// Adds a keyslot holding `vk` under `passphrase` (in slot `slot`, or the lowest free
    /// one), writes its area, and commits both header copies with seqid + 1.
    pub fn add_keyslot<D: Write + Seek, G: CryptoRng + ?Sized>(
        &mut self,
        dev: &mut D,
        vk: &VolumeKey,
        passphrase: &[u8],
        params: &KeyslotParams,
        slot: Option<u32>,
        rng: &mut G,
    ) -> Result<u32> {
        self.check_requirements()?;
        let id = self.free_keyslot_id(slot)?;
        let digest_id = self.segment_digest_id().ok_or(Error::Unsupported {
            feature: "volume without a digest over a crypt segment",
        })?;
        if !self.verify_volume_key(vk) {
            return Err(Error::InvalidOption {
                option: "volume key",
                reason: "does not match the volume's digest",
            });
        }
        let ks = self.write_keyslot(dev, vk, passphrase, params, None, rng)?;
        self.metadata.keyslots.insert(id, ks);
        if let Some(d) = self.metadata.digests.get_mut(&digest_id) {
            d.keyslots.push(id);
            d.keyslots.sort_unstable();
        }
        self.commit(dev)?;
        Ok(id)
    }

    fn free_keyslot_id(&self, slot: Option<u32>) -> Result<u32> {
        match slot {
            Some(s) if s >= KEYSLOTS_MAX => Err(Error::InvalidOption {
                option: "keyslot",
                reason: "must be 0 .. 31",
            }),
            Some(s) if self.metadata.keyslots.contains_key(&s) => Err(Error::InvalidOption {
                option: "keyslot",
                reason: "already in use",
            }),
            Some(s) => Ok(s),
            None => (0..KEYSLOTS_MAX)
                .find(|i| !self.metadata.keyslots.contains_key(i))
                .ok_or(Error::NoFreeKeyslot {
                    reason: "all 32 keyslot ids are in use",
                }),
        }
    }

    /// First-fit, 4096-aligned free range of `size` bytes in the keyslots area, ignoring
    /// keyslot `except`.
    fn allocate_area(&self, size: u64, except: Option<u32>) -> Result<u64> {
        let start = self.hdr_size.saturating_mul(2);
        let end = self.metadata_end();
        let mut used: Vec<(u64, u64)> = self
            .metadata
            .keyslots
            .iter()
            .filter(|(id, _)| Some(**id) != except)
            .map(|(_, k)| (k.area.offset, k.area.offset.saturating_add(k.area.size)))
            .collect();
        used.sort_unstable();
        let mut cand = start;
        for (a, b) in used {
            if cand.saturating_add(size) <= a {
                break;
            }
            cand = cand.max(b.div_ceil(4096).saturating_mul(4096));
        }
        if cand.saturating_add(size) > end {
            return Err(Error::NoFreeKeyslot {
                reason: "no room left in the keyslots area",
            });
        }
        Ok(cand)
    }

    /// Derives, splits, encrypts and writes a keyslot area; returns the keyslot object.
    fn write_keyslot<D: Write + Seek, G: CryptoRng + ?Sized>(
        &self,
        dev: &mut D,
        vk: &VolumeKey,
        passphrase: &[u8],
        params: &KeyslotParams,
        replacing: Option<u32>,
        rng: &mut G,
    ) -> Result<Keyslot> {
        params.kdf.check()?;
        let key_size = vk.as_bytes().len();
        if !matches!(key_size, 32 | 64) {
            return Err(Error::InvalidOption {
                option: "volume key",
                reason: "must be 32 or 64 bytes for aes-xts-plain64",
            });
        }
        let size = area_size_for(key_size)?;
        // Prefer a fresh area so the old key survives a crash; reuse the old one if full.
        let offset = match self.allocate_area(size, None) {
            Ok(o) => o,
            Err(e) => match replacing {
                Some(r) => self.allocate_area(size, Some(r))?,
                None => return Err(e),
            },
        };
        let mut salt = vec![0u8; 32];
        rng.fill_bytes(&mut salt);
        let kdf = params.kdf.with_salt(salt);
        let mut area_key = Zeroizing::new(vec![0u8; key_size]);
        let own = Limits {
            max_argon2_memory_kib: u32::MAX,
            max_argon2_work: u64::MAX,
            max_pbkdf2_iterations: u32::MAX,
            ..Limits::default()
        };
        derive_key(&kdf, passphrase, &mut area_key, &own)?;
        let split = af_split(vk.as_bytes(), KEYSLOT_STRIPES, params.af_hash, &mut |b| {
            rng.fill_bytes(b)
        })
        .ok_or(Error::LimitExceeded {
            what: "keyslot split key size",
            limit: u64::MAX,
        })?;
        let mut area = Zeroizing::new(vec![0u8; size as usize]);
        area[..split.len()].copy_from_slice(&split);
        let enc_len = (split.len() as u64).div_ceil(SECTOR) * SECTOR;
        let xts = Xts::new(&area_key)?;
        xts.encrypt_sectors(&mut area[..enc_len as usize], SECTOR as usize, 0, 1);
        dev.seek(SeekFrom::Start(offset))
            .map_err(io("seeking to a keyslot area"))?;
        dev.write_all(&area).map_err(io("writing a keyslot area"))?;
        Ok(Keyslot {
            key_size: key_size as u32,
            af: AfParams {
                stripes: KEYSLOT_STRIPES,
                hash: params.af_hash,
                extra: serde_json::Map::new(),
            },
            area: KeyslotArea {
                offset,
                size,
                encryption: KEYSLOT_CIPHER.to_owned(),
                key_size: key_size as u32,
                extra: serde_json::Map::new(),
            },
            kdf,
            kdf_extra: serde_json::Map::new(),
            priority: params.priority,
            extra: serde_json::Map::new(),
        })
    }

    /// Removes keyslot `id`: drops it from digests and tokens, commits the header, then
    /// overwrites its area with zeros.
    pub fn remove_keyslot<D: Write + Seek>(&mut self, dev: &mut D, id: u32) -> Result<()> {
        self.check_requirements()?;
        let ks = self
            .metadata
            .keyslots
            .remove(&id)
            .ok_or(Error::NoSuchKeyslot(id))?;
        for d in self.metadata.digests.values_mut() {
            d.keyslots.retain(|k| *k != id);
        }
        let name = Value::from(id.to_string());
        for t in self.metadata.tokens.values_mut() {
            if let Some(Value::Array(a)) = t.get_mut("keyslots") {
                a.retain(|v| *v != name);
            }
        }
        self.commit(dev)?;
        wipe(dev, ks.area.offset, ks.area.size)
    }

    /// Replaces the passphrase of keyslot `id` (the volume key comes from unlocking it):
    /// writes the new area (in free space when there is any), commits, wipes the old area.
    /// The keyslot keeps its id, priority, unknown fields and token assignments.
    #[allow(clippy::too_many_arguments)]
    pub fn change_keyslot<D: Write + Seek, G: CryptoRng + ?Sized>(
        &mut self,
        dev: &mut D,
        id: u32,
        vk: &VolumeKey,
        new_passphrase: &[u8],
        params: &KeyslotParams,
        rng: &mut G,
    ) -> Result<()> {
        self.check_requirements()?;
        let old = self
            .metadata
            .keyslots
            .get(&id)
            .cloned()
            .ok_or(Error::NoSuchKeyslot(id))?;
        if !self.verify_volume_key_for_keyslot(id, vk) {
            return Err(Error::InvalidOption {
                option: "volume key",
                reason: "does not match the keyslot's digest",
            });
        }
        let mut ks = self.write_keyslot(dev, vk, new_passphrase, params, Some(id), rng)?;
        ks.extra = old.extra.clone();
        if params.priority.is_none() {
            ks.priority = old.priority;
        }
        let reused = ks.area.offset == old.area.offset;
        self.metadata.keyslots.insert(id, ks);
        self.commit(dev)?;
        if reused {
            Ok(())
        } else {
            wipe(dev, old.area.offset, old.area.size)
        }
    }
}

/// What [`Limits::max_unlock_work`] counts, in its error.
const UNLOCK_WORK: &str = "key-derivation work of one unlock (every keyslot tried)";

/// Whether `vk` matches digest `d`; a digest asking for more iterations than `limits`
/// allow never matches (it would keep the caller busy for hours).
fn digest_matches(d: &crate::raw::DigestEntry, vk: &VolumeKey, limits: &Limits) -> bool {
    if d.iterations > limits.max_pbkdf2_iterations {
        return false;
    }
    let mut out = Zeroizing::new(vec![0u8; d.digest.len()]);
    d.hash
        .pbkdf2(vk.as_bytes(), &d.salt, d.iterations, &mut out);
    bool::from(out.ct_eq(&d.digest))
}

fn wipe<D: Write + Seek>(dev: &mut D, offset: u64, size: u64) -> Result<()> {
    dev.seek(SeekFrom::Start(offset))
        .map_err(io("seeking to a keyslot area"))?;
    let zeros = [0u8; 4096];
    let mut left = size;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        dev.write_all(&zeros[..n])
            .map_err(io("wiping a keyslot area"))?;
        left -= n as u64;
    }
    dev.flush().map_err(io("wiping a keyslot area"))
}
