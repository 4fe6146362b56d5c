//! GUIDs derived from a seed the way systemd-repart derives them (systemd `repart.c`,
//! `derive_uuid()` and `partition_acquire_uuid()`):
//!
//! - disk GUID = first 16 bytes of HMAC-SHA256(seed, `"disk-uuid"`), marked version 4;
//! - the k-th partition (k = 0, 1, ...) of a type = first 16 bytes of
//!   HMAC-SHA256(seed, type-uuid) for k = 0 and HMAC-SHA256(seed, type-uuid || le64(k)) after,
//!   marked version 4.
//!
//! The seed and the type UUID enter the HMAC in text (RFC 9562) byte order, as systemd's
//! `sd_id128_t` holds them; the results are UUIDs in text order, stored on disk as GPT GUIDs.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::raw::Guid;
use crate::raw::guid::parse_hex16;

/// A 128-bit seed (systemd-repart's `--seed=`, usually a machine id).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Seed(pub [u8; 16]);

impl Seed {
    /// Parses 32 hex digits, with or without the dashes of a UUID (as `--seed=` accepts).
    pub fn parse(s: &str) -> Option<Self> {
        let hex: Vec<u8> = s.bytes().filter(|&c| c != b'-').collect();
        let dashes = s.len() - hex.len();
        if dashes != 0 && (dashes != 4 || Guid::parse_str(s).is_none()) {
            return None;
        }
        parse_hex16(&hex).map(Self)
    }

    /// A seed derived from arbitrary bytes (first 16 bytes of their SHA-256), for callers
    /// whose natural seed is a name or a build description rather than 128 random bits.
    pub fn from_material(material: &[u8]) -> Self {
        let digest = Sha256::digest(material);
        let mut s = [0u8; 16];
        s.copy_from_slice(&digest[..16]);
        Self(s)
    }

    /// A version-4-marked UUID (text order) from HMAC-SHA256(seed, message).
    pub fn derive_uuid(&self, message: &[u8]) -> [u8; 16] {
        let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC takes keys of any length"),
        };
        mac.update(message);
        let digest = mac.finalize().into_bytes();
        let mut u = [0u8; 16];
        u.copy_from_slice(&digest[..16]);
        u[6] = (u[6] & 0x0f) | 0x40;
        u[8] = (u[8] & 0x3f) | 0x80;
        u
    }

    /// The disk GUID systemd-repart writes for this seed.
    pub fn disk_guid(&self) -> Guid {
        Guid::from_uuid_bytes(self.derive_uuid(b"disk-uuid"))
    }

    /// The GUID systemd-repart gives the `instance`-th (0-based) partition of `type_guid`,
    /// counting the partitions of that type in table order.
    pub fn partition_guid(&self, type_guid: Guid, instance: u64) -> Guid {
        let mut msg = type_guid.to_uuid_bytes().to_vec();
        if instance > 0 {
            msg.extend_from_slice(&instance.to_le_bytes());
        }
        Guid::from_uuid_bytes(self.derive_uuid(&msg))
    }

    /// A 32-bit FAT volume serial number for `what` (for example a partition label).
    pub fn volume_id(&self, what: &[u8]) -> u32 {
        let mut msg = b"fat-volume-id:".to_vec();
        msg.extend_from_slice(what);
        let u = self.derive_uuid(&msg);
        u32::from_le_bytes([u[0], u[1], u[2], u[3]])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values written by systemd-repart 252 with `--seed=0123456789abcdef0123456789abcdef` for
    /// an ESP and two linux-generic partitions (also checked live in tests/gpt.rs).
    #[test]
    fn matches_systemd_repart() {
        let seed = Seed::parse("0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(
            seed.disk_guid().to_string(),
            "6913F4B6-6690-4A57-A202-F1B53C56DBDF"
        );
        let esp = Guid::parse_str("C12A7328-F81F-11D2-BA4B-00A0C93EC93B").unwrap();
        let generic = Guid::parse_str("0FC63DAF-8483-4772-8E79-3D69D8477DE4").unwrap();
        assert_eq!(
            seed.partition_guid(esp, 0).to_string(),
            "B2D552B0-45DB-4678-B34F-066168609D1A"
        );
        assert_eq!(
            seed.partition_guid(generic, 0).to_string(),
            "3ED50935-B785-4A2A-879D-DD4C00395D47"
        );
        assert_eq!(
            seed.partition_guid(generic, 1).to_string(),
            "FF20EBAE-A7DF-4FB5-AC96-557EE3704996"
        );
    }

    #[test]
    fn seed_text_forms() {
        let a = Seed::parse("01234567-89ab-cdef-0123-456789abcdef").unwrap();
        assert_eq!(Seed::parse("0123456789ABCDEF0123456789ABCDEF"), Some(a));
        assert!(Seed::parse("0123456789abcdef").is_none());
        assert!(Seed::parse("0123-456789abcdef0123456789abcdef").is_none());
        assert_ne!(Seed::from_material(b"a"), Seed::from_material(b"b"));
    }
}
