//! The LUKS2 binary header (LUKS2 on-disk format, section 2.1 "Binary header").
//!
//! 4096 bytes, big-endian, stored twice: the primary at offset 0 and the secondary at
//! offset `hdr_size`. The checksum covers the binary header *and* the JSON area that follows
//! it (`hdr_size` bytes in all) with the checksum field zeroed.

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Size of the binary header in bytes.
pub const BINARY_HEADER_SIZE: usize = 4096;
/// Magic of the primary header.
pub const MAGIC_PRIMARY: [u8; 6] = *b"LUKS\xba\xbe";
/// Magic of the secondary header.
pub const MAGIC_SECONDARY: [u8; 6] = *b"SKUL\xba\xbe";

const OFF_VERSION: usize = 6;
const OFF_HDR_SIZE: usize = 8;
const OFF_SEQID: usize = 16;
const OFF_LABEL: usize = 24;
const OFF_CSUM_ALG: usize = 72;
const OFF_SALT: usize = 104;
const OFF_UUID: usize = 168;
const OFF_SUBSYSTEM: usize = 208;
const OFF_HDR_OFFSET: usize = 256;
const OFF_CSUM: usize = 448;
const CSUM_LEN: usize = 64;

/// Which of the two header copies a header is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HeaderKind {
    /// Magic `LUKS\xba\xbe`, at offset 0.
    Primary,
    /// Magic `SKUL\xba\xbe`, at offset `hdr_size`.
    Secondary,
}

/// The fixed fields of a LUKS2 binary header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinaryHeader {
    /// Primary or secondary copy (decided by the magic).
    pub kind: HeaderKind,
    /// Format version; 2 for LUKS2.
    pub version: u16,
    /// Size of binary header plus JSON area, in bytes.
    pub hdr_size: u64,
    /// Sequence id, incremented on every update.
    pub seqid: u64,
    /// Label, NUL-padded to 48 bytes.
    pub label: [u8; 48],
    /// Checksum algorithm name, NUL-padded (e.g. `sha256`).
    pub csum_alg: [u8; 32],
    /// Salt, 64 bytes (random per header).
    pub salt: [u8; 64],
    /// UUID as text, NUL-padded to 40 bytes.
    pub uuid: [u8; 40],
    /// Subsystem label, NUL-padded to 48 bytes.
    pub subsystem: [u8; 48],
    /// Offset of this header copy from the device start.
    pub hdr_offset: u64,
    /// The stored checksum (first bytes used by the algorithm).
    pub csum: [u8; CSUM_LEN],
}

fn be_u16(b: &[u8], off: usize) -> u16 {
    let mut a = [0u8; 2];
    a.copy_from_slice(&b[off..off + 2]);
    u16::from_be_bytes(a)
}

fn be_u64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_be_bytes(a)
}

fn array<const N: usize>(b: &[u8], off: usize) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[off..off + N]);
    a
}

/// A NUL-padded on-disk string as text (lossy, up to the first NUL).
pub(crate) fn c_str(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

impl BinaryHeader {
    /// Parses a binary header from `bytes`, which were read at absolute offset `at`.
    ///
    /// Checks magic and version; the checksum needs the JSON area too, see
    /// [`BinaryHeader::checksum_matches`].
    pub fn parse(bytes: &[u8], at: u64) -> Result<Self> {
        let structure = "LUKS2 binary header";
        if bytes.len() < BINARY_HEADER_SIZE {
            return Err(Error::Truncated {
                structure,
                offset: at,
                needed: BINARY_HEADER_SIZE as u64,
                available: bytes.len() as u64,
            });
        }
        let kind = match array::<6>(bytes, 0) {
            MAGIC_PRIMARY => HeaderKind::Primary,
            MAGIC_SECONDARY => HeaderKind::Secondary,
            _ => {
                return Err(Error::Malformed {
                    structure,
                    field: "magic",
                    offset: at,
                    reason: "not a LUKS header",
                });
            }
        };
        let version = be_u16(bytes, OFF_VERSION);
        if version == 1 {
            return Err(Error::Unsupported {
                feature: "LUKS version 1",
            });
        }
        if version != 2 {
            return Err(Error::Malformed {
                structure,
                field: "version",
                offset: at + OFF_VERSION as u64,
                reason: "version is not 2",
            });
        }
        Ok(Self {
            kind,
            version,
            hdr_size: be_u64(bytes, OFF_HDR_SIZE),
            seqid: be_u64(bytes, OFF_SEQID),
            label: array(bytes, OFF_LABEL),
            csum_alg: array(bytes, OFF_CSUM_ALG),
            salt: array(bytes, OFF_SALT),
            uuid: array(bytes, OFF_UUID),
            subsystem: array(bytes, OFF_SUBSYSTEM),
            hdr_offset: be_u64(bytes, OFF_HDR_OFFSET),
            csum: array(bytes, OFF_CSUM),
        })
    }

    /// Encodes the header into its 4096 bytes, all padding zeroed, checksum as stored.
    pub fn to_bytes(&self) -> [u8; BINARY_HEADER_SIZE] {
        let mut b = [0u8; BINARY_HEADER_SIZE];
        let magic = match self.kind {
            HeaderKind::Primary => MAGIC_PRIMARY,
            HeaderKind::Secondary => MAGIC_SECONDARY,
        };
        b[..6].copy_from_slice(&magic);
        b[OFF_VERSION..OFF_VERSION + 2].copy_from_slice(&self.version.to_be_bytes());
        b[OFF_HDR_SIZE..OFF_HDR_SIZE + 8].copy_from_slice(&self.hdr_size.to_be_bytes());
        b[OFF_SEQID..OFF_SEQID + 8].copy_from_slice(&self.seqid.to_be_bytes());
        b[OFF_LABEL..OFF_LABEL + 48].copy_from_slice(&self.label);
        b[OFF_CSUM_ALG..OFF_CSUM_ALG + 32].copy_from_slice(&self.csum_alg);
        b[OFF_SALT..OFF_SALT + 64].copy_from_slice(&self.salt);
        b[OFF_UUID..OFF_UUID + 40].copy_from_slice(&self.uuid);
        b[OFF_SUBSYSTEM..OFF_SUBSYSTEM + 48].copy_from_slice(&self.subsystem);
        b[OFF_HDR_OFFSET..OFF_HDR_OFFSET + 8].copy_from_slice(&self.hdr_offset.to_be_bytes());
        b[OFF_CSUM..OFF_CSUM + CSUM_LEN].copy_from_slice(&self.csum);
        b
    }

    /// Whether the stored sha256 checksum matches `area`, the whole `hdr_size` bytes of this
    /// copy (binary header followed by the JSON area) as read from disk.
    pub fn checksum_matches(&self, area: &[u8]) -> bool {
        self.compute_checksum(area)
            .is_some_and(|sum| sum[..] == self.csum[..sum.len()])
    }

    /// Computes the checksum over `area` with the checksum field zeroed; `None` if the
    /// algorithm is not sha256 or the area is shorter than the binary header.
    pub fn compute_checksum(&self, area: &[u8]) -> Option<[u8; 32]> {
        if c_str(&self.csum_alg) != "sha256" || area.len() < BINARY_HEADER_SIZE {
            return None;
        }
        let mut h = Sha256::new();
        h.update(&area[..OFF_CSUM]);
        h.update([0u8; CSUM_LEN]);
        h.update(&area[OFF_CSUM + CSUM_LEN..]);
        Some(h.finalize().into())
    }

    /// The label as text.
    pub fn label(&self) -> String {
        c_str(&self.label)
    }

    /// The UUID as text.
    pub fn uuid(&self) -> String {
        c_str(&self.uuid)
    }

    /// The subsystem as text.
    pub fn subsystem(&self) -> String {
        c_str(&self.subsystem)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BinaryHeader {
        let mut h = BinaryHeader {
            kind: HeaderKind::Primary,
            version: 2,
            hdr_size: 16384,
            seqid: 3,
            label: [0; 48],
            csum_alg: [0; 32],
            salt: [7; 64],
            uuid: [0; 40],
            subsystem: [0; 48],
            hdr_offset: 0,
            csum: [0; 64],
        };
        h.csum_alg[..6].copy_from_slice(b"sha256");
        h.uuid[..36].copy_from_slice(b"0f4c1b4e-8e3a-4d51-9d3e-6b1c2a7e9f00");
        h
    }

    #[test]
    fn round_trip_and_checksum() {
        let mut h = sample();
        let mut area = vec![0u8; 16384];
        area[..BINARY_HEADER_SIZE].copy_from_slice(&h.to_bytes());
        let sum = h.compute_checksum(&area).unwrap();
        h.csum[..32].copy_from_slice(&sum);
        area[..BINARY_HEADER_SIZE].copy_from_slice(&h.to_bytes());
        let back = BinaryHeader::parse(&area, 0).unwrap();
        assert_eq!(back, h);
        assert!(back.checksum_matches(&area));
        area[5000] ^= 1;
        assert!(!back.checksum_matches(&area));
    }

    #[test]
    fn every_truncated_prefix_fails() {
        let bytes = sample().to_bytes();
        for n in 0..BINARY_HEADER_SIZE {
            assert!(matches!(
                BinaryHeader::parse(&bytes[..n], 0),
                Err(Error::Truncated { .. })
            ));
        }
    }
}
