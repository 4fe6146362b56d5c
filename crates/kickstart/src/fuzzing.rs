//! The bodies of this crate's fuzz targets, written once: the few-line targets in `fuzz/`
//! and the corpus replay in `tests/fuzz_corpus.rs` both call them. A body panics only where
//! it asserts an invariant (the canonical form is a fixed point); each returns what it
//! managed, so a replay can demand that the committed seeds still parse.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use crate::{Kickstart, Kind, Limits, MapResolver, Source, Version, parse_with};

/// `kickstart_inspect`: detection and inspection of any bytes. Returns whether the input was
/// detected as a kickstart.
pub fn kickstart_inspect(data: &[u8]) -> bool {
    if !crate::detect(data) {
        return false;
    }
    let _ = crate::inspect(&String::from_utf8_lossy(data));
    true
}

/// `kickstart_parse`: parse, validate, model and rewrite a kickstart. The input is up to four
/// files separated by NUL bytes (`a.ks` is the top file; the others are `b.ks`, `c.ks`,
/// `d.ks` for `%include`/`%ksappend`). Never panics, never loops on includes; the canonical
/// form parses back to the same items and is a fixed point (format -> parse -> format gives
/// the same text). Returns whether the canonical round trip was checked.
pub fn kickstart_parse(data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let top = parts.next().unwrap_or("").to_string();
    let mut files = BTreeMap::new();
    for (name, body) in ["b.ks", "c.ks", "d.ks"].iter().zip(parts) {
        files.insert((*name).to_string(), body.to_string());
    }
    files.insert("a.ks".to_string(), top.clone());
    let limits = Limits {
        max_lines: 20_000,
        max_bytes: 1 << 20,
        ..Limits::default()
    };
    let ks = parse_with(
        Source {
            name: "a.ks".into(),
            text: top,
        },
        &mut MapResolver(files),
        limits,
    );
    for v in [Version::F43, Version::RHEL10] {
        let _ = ks.validate(v);
        let _ = ks.model(v);
    }
    if ks.problems.iter().any(|p| p.kind == Kind::ErrorFatal) || !ks.is_canonically_writable() {
        return false;
    }
    let written = ks.to_canonical_string();
    let again = Kickstart::parse_str("w.ks", &written);
    assert!(
        ks.same_items(&again),
        "round trip changed items:\n{written}"
    );
    assert_eq!(
        again.to_canonical_string(),
        written,
        "the canonical form is not a fixed point"
    );
    for v in [Version::F43, Version::RHEL10] {
        let normal = Kickstart::parse_str("n.ks", &ks.to_canonical_string_for(v));
        assert_eq!(ks.validate(v).is_valid(), normal.validate(v).is_valid());
    }
    true
}
