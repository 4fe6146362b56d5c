//! Replays the fuzz corpus and regressions of this crate's targets (see `fuzz/`).

use imgpipe_testsupport::fuzz_inputs;

#[test]
fn kickstart_inspect() {
    for (_, data) in fuzz_inputs("kickstart_inspect") {
        if imgpipe_kickstart::detect(&data) {
            let _ = imgpipe_kickstart::inspect(&String::from_utf8_lossy(&data));
        }
    }
}

#[test]
fn kickstart_parse() {
    use std::collections::BTreeMap;

    use imgpipe_kickstart::{Kickstart, Kind, Limits, MapResolver, Source, Version, parse_with};

    for (path, data) in fuzz_inputs("kickstart_parse") {
        let text = String::from_utf8_lossy(&data);
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
        if ks.problems.iter().all(|p| p.kind != Kind::ErrorFatal) && ks.is_canonically_writable() {
            let written = ks.to_canonical_string();
            let again = Kickstart::parse_str("w.ks", &written);
            assert!(ks.same_items(&again), "{}", path.display());
            for v in [Version::F43, Version::RHEL10] {
                let normal = Kickstart::parse_str("n.ks", &ks.to_canonical_string_for(v));
                assert_eq!(ks.validate(v).is_valid(), normal.validate(v).is_valid());
            }
        }
    }
}
