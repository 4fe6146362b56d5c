//! pykickstart's own test suite, mined into `tests/data/pykickstart-vectors.tsv` by
//! `scripts/mine_vectors.py` (each input re-run through pykickstart 3.78 for F43 and RHEL10):
//! our diagnostics must have the same kinds, in pykickstart's order.

use imgpipe_kickstart::{Kickstart, Kind, Version};

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(o) => out.push(o),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Our outcome in the vector file's notation: warnings sorted, then errors, then fatal.
pub fn outcome(text: &str, version: Version) -> String {
    let ks = Kickstart::parse_str("ks.cfg", text);
    let report = ks.validate(version);
    let mut warn: Vec<&str> = Vec::new();
    let mut rest: Vec<&str> = Vec::new();
    for d in &report.diagnostics {
        match d.kind {
            Kind::Warning => warn.push("warning"),
            Kind::Deprecated => warn.push("deprecated"),
            Kind::Error => rest.push("error"),
            Kind::ErrorFatal => rest.push("fatal"),
            Kind::Notice => {}
        }
    }
    warn.sort_unstable();
    warn.extend(rest);
    if warn.is_empty() {
        "ok".to_string()
    } else {
        warn.join(" ")
    }
}

/// Inputs where we knowingly differ, with the reason.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[];

#[test]
fn agrees_with_pykickstart_test_suite() {
    let data = include_str!("data/pykickstart-vectors.tsv");
    let mut total = 0;
    let mut bad = Vec::new();
    for line in data.lines() {
        let mut f = line.splitn(3, '\t');
        let (Some(versions), Some(expected), Some(input)) = (f.next(), f.next(), f.next()) else {
            panic!("bad vector line: {line}");
        };
        let input = unescape(input);
        for v in versions.split(',') {
            let version = Version::from_name(v).expect("known version");
            total += 1;
            let got = outcome(&input, version);
            if got != expected && !KNOWN_DIFFERENCES.iter().any(|(i, _)| *i == input) {
                bad.push(format!("{v}\texpected {expected}\tgot {got}\t{input:?}"));
            }
        }
    }
    for b in &bad {
        eprintln!("{b}");
    }
    eprintln!("{} of {total} vectors differ", bad.len());
    assert!(bad.is_empty(), "{} of {total} vectors differ", bad.len());
}
