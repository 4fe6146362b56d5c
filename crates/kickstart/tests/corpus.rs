//! Differential test against pykickstart 3.78 on the real-world corpus in
//! `../shared/ks-corpus` (Fedora, Rocky, lorax, Anaconda's kickstart-tests). Its
//! `expected.jsonl` holds pykickstart's verdicts and diagnostics per file and version; we must
//! agree on both verdicts and on the multiset of (line, kind) diagnostics (a diagnostic without
//! a line in pykickstart matches ours on kind alone). pykickstart ran as Anaconda does, skipping
//! missing includes; ours are notices, which do not count.

use std::path::PathBuf;

use imgpipe_kickstart::{Kickstart, Kind, Version};
use serde_json::Value;

fn corpus() -> Option<PathBuf> {
    let dir = imgpipe_testsupport::workspace_root().join("../shared/ks-corpus");
    if dir.join("expected.jsonl").is_file() {
        return Some(dir);
    }
    assert!(
        !imgpipe_testsupport::in_ci(),
        "the kickstart corpus {} is missing under CI=true",
        dir.display()
    );
    eprintln!("skipping: no kickstart corpus at {}", dir.display());
    None
}

/// (file, version, reason) of the differences we accept.
const KNOWN_DIFFERENCES: &[(&str, &str, &str)] = &[];

#[test]
fn agrees_with_pykickstart_on_real_files() {
    let Some(dir) = corpus() else { return };
    let expected = std::fs::read_to_string(dir.join("expected.jsonl")).unwrap();
    let mut total = 0;
    let mut bad = Vec::new();
    for line in expected.lines() {
        let e: Value = serde_json::from_str(line).unwrap();
        let file = e["file"].as_str().unwrap();
        let version = e["version"].as_str().unwrap();
        if KNOWN_DIFFERENCES
            .iter()
            .any(|(f, v, _)| *f == file && *v == version)
        {
            continue;
        }
        total += 1;
        let ks = Kickstart::load(&dir.join(file)).unwrap();
        let report = ks.validate(Version::from_name(version).unwrap());
        let mut ours: Vec<(usize, &str)> = report
            .diagnostics
            .iter()
            .filter(|d| d.kind != Kind::Notice)
            .map(|d| (d.location.line, d.kind.as_str()))
            .collect();
        let mut problems = Vec::new();
        for d in e["diagnostics"].as_array().unwrap() {
            let kind = d["kind"].as_str().unwrap();
            let pos = match d["line"].as_u64() {
                Some(l) => ours
                    .iter()
                    .position(|(ol, ok)| *ol as u64 == l && *ok == kind),
                None => ours.iter().position(|(_, ok)| *ok == kind),
            };
            match pos {
                Some(p) => {
                    ours.remove(p);
                }
                None => problems.push(format!("missing {kind} at {}: {}", d["line"], d["message"])),
            }
        }
        for (l, k) in &ours {
            let msg = report
                .diagnostics
                .iter()
                .find(|d| d.location.line == *l && d.kind.as_str() == *k)
                .map(|d| d.message.clone())
                .unwrap_or_default();
            problems.push(format!("extra {k} at {l}: {msg}"));
        }
        if e["valid_anaconda"].as_bool().unwrap() != report.is_valid() {
            problems.push(format!("valid_anaconda: ours {}", report.is_valid()));
        }
        if e["valid_ksvalidator"].as_bool().unwrap() != report.is_clean() {
            problems.push(format!("valid_ksvalidator: ours {}", report.is_clean()));
        }
        if !problems.is_empty() {
            bad.push(format!("{file} {version}: {}", problems.join("; ")));
        }
    }
    for b in &bad {
        eprintln!("{b}");
    }
    assert!(total > 200, "only {total} corpus runs");
    assert!(
        bad.is_empty(),
        "{} of {total} corpus runs differ",
        bad.len()
    );
}
