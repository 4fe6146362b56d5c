//! The bodies of this crate's fuzz targets, written once: the few-line targets in `fuzz/`
//! and the corpus replay in `tests/fuzz_corpus.rs` both call them. A body panics only where
//! it asserts an invariant (a round trip); each returns what it managed, so a replay can
//! demand that the committed seeds still parse.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::{Inspection, Limits, Metadata};

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
