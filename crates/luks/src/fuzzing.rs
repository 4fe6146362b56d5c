//! The bodies of this crate's fuzz targets, written once: the few-line targets in `fuzz/`
//! and the corpus replay in `tests/fuzz_corpus.rs` both call them. A body panics only where
//! it asserts an invariant (a round trip); each returns what it managed, so a replay can
//! demand that the committed seeds still parse.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::{Inspection, Limits, Luks2Header, Metadata};

/// `luks_inspect`: the inspection of any bytes.
pub fn luks_inspect(data: &[u8]) -> Option<Inspection> {
    crate::inspect(std::io::Cursor::new(data)).ok()
}

/// `luks_metadata`: LUKS2 JSON metadata, parse + validate; whatever parses survives
/// write -> parse unchanged. Returns whether the input parsed.
pub fn luks_metadata(data: &[u8]) -> bool {
    const HDR: u64 = 0x4000;
    if data.len() >= (HDR - 4096) as usize {
        return false;
    }
    let mut area = data.to_vec();
    area.resize((HDR - 4096) as usize, 0);
    let Ok(md) = Metadata::parse(&area, 4096, HDR, Limits::default()) else {
        return false;
    };
    let again = md.to_json_area(HDR - 4096).expect("re-encode");
    let back = Metadata::parse(&again, 4096, HDR, Limits::default()).expect("re-parse");
    assert_eq!(back, md);
    true
}

/// `luks_unlock`: reads a volume (or detached header) with small key-derivation limits and
/// unlocks it with the seeds' passphrase `pw`, through every keyslot: the keyslot areas,
/// the anti-forensic merge and the digest check. Returns whether it opened.
pub fn luks_unlock(data: &[u8]) -> bool {
    let limits = Limits {
        max_argon2_memory_kib: 1024,
        max_argon2_work: 1 << 14,
        max_pbkdf2_iterations: 4000,
        max_unlock_work: 1 << 15,
        ..Limits::default()
    };
    let mut dev = std::io::Cursor::new(data);
    let Ok(h) = Luks2Header::read_with_limits(&mut dev, limits) else {
        return false;
    };
    matches!(h.try_unlock(&mut dev, b"pw", None), Ok(Some(_)))
}
