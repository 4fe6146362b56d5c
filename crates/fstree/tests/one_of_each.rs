//! One idea, one place: the copies that issue 11 removed (host walkers, extractors, GPT
//! writers, detectors, calendars, little-endian helpers, GUID rules) must not come back.
//!
//! This reads the workspace's library and binary sources as text and says where each
//! marker of one of those ideas appears; each may appear only in its one home.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = rd.map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// Workspace-relative paths of the library and binary sources (not tests, benches or
/// test helpers) whose text contains `marker`.
fn homes_of(marker: &str) -> Vec<String> {
    let root = imgpipe_testsupport::workspace_root();
    let mut files = Vec::new();
    for base in ["crates", "examples"] {
        let Ok(rd) = std::fs::read_dir(root.join(base)) else {
            continue;
        };
        for krate in rd {
            let krate = krate.unwrap().path();
            if krate.ends_with("testsupport") {
                continue;
            }
            rust_files(&krate.join("src"), &mut files);
        }
    }
    let mut found: Vec<String> = files
        .iter()
        .filter(|f| std::fs::read_to_string(f).unwrap().contains(marker))
        .map(|f| {
            f.strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    found.sort();
    found
}

#[track_caller]
fn only_in(marker: &str, homes: &[&str]) {
    let found = homes_of(marker);
    assert_eq!(found, homes, "`{marker}` belongs only in {homes:?}");
}

#[test]
fn one_calendar() {
    // The day-count constant of the civil-date algorithm.
    only_in("719_468", &["crates/fstree/src/civil.rs"]);
}

#[test]
fn one_set_of_little_endian_helpers() {
    only_in("fn le_u32", &["crates/fstree/src/le.rs"]);
    only_in("fn le_u16", &["crates/fstree/src/le.rs"]);
}

#[test]
fn one_host_walker() {
    // Listing host directories is the scanner's job (the atomic writer's test looks at its
    // own temporary directory; `verify` copies a build tree in a chosen order and checks
    // whether the file system lists it in that order, which is what it varies).
    let found = homes_of("fs::read_dir(");
    let allowed = [
        "crates/fstree/src/scan.rs",
        "crates/repro/src/output.rs",
        "crates/repro/src/verify.rs",
    ];
    assert!(
        found.iter().all(|f| allowed.contains(&f.as_str())),
        "host directories listed outside the scanner: {found:?}"
    );
    assert!(found.contains(&"crates/fstree/src/scan.rs".to_string()));
}

#[test]
fn one_extractor() {
    only_in("mknodat(", &["crates/fstree/src/extract.rs"]);
    only_in("lsetxattr(", &["crates/fstree/src/extract.rs"]);
    only_in("fn link_escapes", &["crates/fstree/src/extract.rs"]);
}

#[test]
fn one_gpt_writer_and_one_guid_rule() {
    // The GPT header's CRC is computed where GPTs are written; the hybrid ISO's GPT comes
    // from gptpart too, and no other pseudo-random identifier rule exists.
    let found = homes_of("GPT_SIGNATURE");
    assert!(
        found.iter().all(|f| f.starts_with("crates/gptpart/")),
        "a GPT header written outside gptpart: {found:?}"
    );
    // Nothing else writes the signature bytes (repro's detector tests build fake heads).
    only_in(
        "copy_from_slice(b\"EFI PART\")",
        &["crates/repro/src/format.rs"],
    );
    for marker in ["splitmix", "fnv1a", "0x9E37_79B9", "0xcbf2_9ce4"] {
        only_in(marker, &[]);
    }
}

#[test]
fn one_detector() {
    // Only the format crates know their magic, and only repro's registry combines them.
    for (marker, home) in [
        ("b\"hsqs\"", "crates/squashfs/"),
        ("b\"CD001\"", "crates/isofs/"),
    ] {
        let found = homes_of(marker);
        let stray: Vec<_> = found
            .iter()
            .filter(|f| !f.starts_with(home) && *f != "crates/repro/src/format.rs")
            .collect();
        assert!(
            stray.is_empty(),
            "{marker} checked outside {home}: {stray:?}"
        );
    }
}

#[test]
fn one_size_parser() {
    only_in(
        "fn parse_size(",
        &["crates/repro/src/disk.rs", "examples/imgpipe/src/size.rs"],
    );
}
