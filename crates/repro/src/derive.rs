//! Identifiers derived from a seed, so two builds with one seed get the same UUIDs.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// HMAC-SHA256 of `message` keyed with `seed`.
pub fn hmac_sha256(seed: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(seed) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// A version-4-marked UUID (RFC 9562 layout, big-endian text order) derived from
/// `seed` and `label`: the first 16 bytes of HMAC-SHA256(seed, label) with the version and
/// variant bits set, as systemd-repart derives its disk UUID.
pub fn derive_uuid(seed: &[u8], label: &[u8]) -> [u8; 16] {
    let h = hmac_sha256(seed, label);
    let mut u = [0u8; 16];
    u.copy_from_slice(&h[..16]);
    u[6] = (u[6] & 0x0f) | 0x40;
    u[8] = (u[8] & 0x3f) | 0x80;
    u
}

/// Formats 16 bytes as `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` in byte order.
pub fn uuid_text(u: &[u8; 16]) -> String {
    let hex: String = u.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4231_case_2() {
        let out = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = out.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn derived_uuids_are_stable_and_marked() {
        let a = derive_uuid(b"seed", b"disk-uuid");
        assert_eq!(a, derive_uuid(b"seed", b"disk-uuid"));
        assert_ne!(a, derive_uuid(b"other", b"disk-uuid"));
        assert_eq!(a[6] >> 4, 4);
        assert_eq!(a[8] >> 6, 2);
        assert_eq!(uuid_text(&a).len(), 36);
    }
}
