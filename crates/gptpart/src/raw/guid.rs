//! GUIDs as GPT stores them: the first three fields little-endian ("mixed endian").

use std::fmt;

/// A GUID in its on-disk byte order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// The all-zero GUID (an unused GPT entry).
    pub const NIL: Guid = Guid([0; 16]);

    /// Parses the canonical text form `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (either case).
    pub fn parse_str(s: &str) -> Option<Self> {
        let hex: Vec<u8> = s.bytes().filter(|&c| c != b'-').collect();
        if s.len() != 36 || hex.len() != 32 {
            return None;
        }
        let mut text = [0u8; 16];
        for (i, pair) in hex.chunks(2).enumerate() {
            let digits = std::str::from_utf8(pair).ok()?;
            text[i] = u8::from_str_radix(digits, 16).ok()?;
        }
        let mut b = text;
        b[..4].reverse();
        b[4..6].reverse();
        b[6..8].reverse();
        Some(Self(b))
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02X}{:02X}{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-",
            b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9]
        )?;
        b[10..].iter().try_for_each(|x| write!(f, "{x:02X}"))
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
        assert!(Guid::parse_str("C12A7328F81F11D2BA4B00A0C93EC93B").is_none());
    }
}
