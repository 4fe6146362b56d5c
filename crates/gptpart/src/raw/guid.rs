//! GUIDs as GPT stores them: the first three fields little-endian ("mixed endian", UEFI 2.10
//! appendix A).

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// A GUID in its on-disk byte order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// The all-zero GUID (an unused GPT entry).
    pub const NIL: Guid = Guid([0; 16]);

    /// Parses the canonical text form `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (either case).
    pub fn parse_str(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b.get(i) != Some(&b'-')) {
            return None;
        }
        let hex: Vec<u8> = b.iter().copied().filter(|&c| c != b'-').collect();
        Some(Self::from_uuid_bytes(parse_hex16(&hex)?))
    }

    /// The GUID whose text form reads as `u` byte by byte (RFC 9562 order, as systemd's
    /// `sd_id128_t` and most UUID libraries hold it).
    pub const fn from_uuid_bytes(u: [u8; 16]) -> Self {
        let mut b = u;
        b[0] = u[3];
        b[1] = u[2];
        b[2] = u[1];
        b[3] = u[0];
        b[4] = u[5];
        b[5] = u[4];
        b[6] = u[7];
        b[7] = u[6];
        Self(b)
    }

    /// The bytes in text (RFC 9562) order; the inverse of [`Guid::from_uuid_bytes`].
    pub const fn to_uuid_bytes(self) -> [u8; 16] {
        // The byte swap is its own inverse.
        Self::from_uuid_bytes(self.0).0
    }
}

/// Parses exactly 32 hex digits into 16 bytes.
pub(crate) fn parse_hex16(hex: &[u8]) -> Option<[u8; 16]> {
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (o, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let digits = std::str::from_utf8(pair).ok()?;
        *o = u8::from_str_radix(digits, 16).ok()?;
    }
    Some(out)
}

impl FromStr for Guid {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse_str(s).ok_or(Error::InvalidOption {
            what: "GUID",
            reason: "expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx",
        })
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.to_uuid_bytes();
        for (i, x) in b.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{x:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Guid({self})")
    }
}

impl serde::Serialize for Guid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esp_guid_text_round_trip() {
        let esp = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
        let g = Guid::parse_str(esp).unwrap();
        assert_eq!(g.0[..4], [0x28, 0x73, 0x2A, 0xC1]);
        assert_eq!(g.to_string(), esp);
        assert_eq!(Guid::from_uuid_bytes(g.to_uuid_bytes()), g);
        assert_eq!(g.to_uuid_bytes()[..4], [0xC1, 0x2A, 0x73, 0x28]);
        assert!(Guid::parse_str("C12A7328F81F11D2BA4B00A0C93EC93B").is_none());
        assert!(Guid::parse_str("C12A7328-F81F-11D2-BA4B-00A0C93EC93").is_none());
        assert!(Guid::parse_str("C12A7328-F81F-11D2-BA4B00A0C93EC93B-").is_none());
        assert!(
            "zz2A7328-F81F-11D2-BA4B-00A0C93EC93B"
                .parse::<Guid>()
                .is_err()
        );
    }
}
