//! Raw on-disk structures, each with parse and encode side by side.

pub(crate) mod base64;
mod binary_header;
mod metadata;

pub(crate) use binary_header::c_str;
pub use binary_header::{
    BINARY_HEADER_SIZE, BinaryHeader, HeaderKind, MAGIC_PRIMARY, MAGIC_SECONDARY,
};
pub use metadata::{
    AfParams, Config, CryptParams, DigestEntry, Keyslot, KeyslotArea, Limits, Metadata, Segment,
    SegmentSize,
};
pub(crate) use metadata::{KEYSLOT_STRIPES, KEYSLOTS_MAX, MAX_KEYSLOTS_SIZE, known_requirement};

/// Serializes bytes as lowercase hex (for reports).
pub(crate) fn serialize_hex<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex(bytes))
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}
