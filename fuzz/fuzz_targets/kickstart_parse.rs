#![no_main]
//! Parse, validate, model and rewrite a kickstart. The input is up to four files separated
//! by NUL bytes (`a.ks` is the top file; the others are `b.ks`, `c.ks`, `d.ks` for
//! `%include`/`%ksappend`). Never panics, never loops on includes, and the canonical form
//! parses back to the same items.
use std::collections::BTreeMap;

use imgpipe_kickstart::{Kickstart, Kind, Limits, MapResolver, Source, Version, parse_with};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
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
    if ks.problems.iter().all(|p| p.kind != Kind::ErrorFatal) {
        let written = ks.to_canonical_string();
        if ks.is_canonically_writable() {
            let again = Kickstart::parse_str("w.ks", &written);
            assert!(
                ks.same_items(&again),
                "round trip changed items:\n{written}"
            );
            assert_eq!(again.to_canonical_string(), written);
            for v in [Version::F43, Version::RHEL10] {
                let normal = Kickstart::parse_str("n.ks", &ks.to_canonical_string_for(v));
                assert_eq!(ks.validate(v).is_valid(), normal.validate(v).is_valid());
            }
        }
    }
});
