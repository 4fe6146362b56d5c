//! The build epoch: every timestamp in an image comes from here.

use crate::error::{Error, Result};

/// Seconds since 1970-01-01T00:00:00Z that every output timestamp is derived from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Epoch(pub u64);

impl Epoch {
    /// Parses a `SOURCE_DATE_EPOCH` value as the reproducible-builds specification defines
    /// it: ASCII decimal digits only, no sign, no whitespace. The binary reads the variable;
    /// libraries never read the environment.
    pub fn from_source_date_epoch(value: &str) -> Result<Self> {
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::Malformed {
                structure: "SOURCE_DATE_EPOCH",
                field: "value",
                offset: 0,
                reason: "not a non-negative decimal integer",
            });
        }
        value.parse().map(Epoch).map_err(|_| Error::Malformed {
            structure: "SOURCE_DATE_EPOCH",
            field: "value",
            offset: 0,
            reason: "does not fit in 64 bits",
        })
    }

    /// Clamps a file time to the epoch (files newer than the epoch get the epoch).
    pub fn clamp(self, t: u64) -> u64 {
        t.min(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_digits() {
        assert_eq!(
            Epoch::from_source_date_epoch("1700000000").unwrap(),
            Epoch(1_700_000_000)
        );
        for bad in ["", "-1", " 1", "1.5", "0x10", "99999999999999999999999"] {
            assert!(Epoch::from_source_date_epoch(bad).is_err(), "{bad}");
        }
        assert_eq!(Epoch(10).clamp(20), 10);
        assert_eq!(Epoch(10).clamp(5), 5);
    }
}
