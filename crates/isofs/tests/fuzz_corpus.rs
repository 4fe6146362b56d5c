//! Replays the fuzz corpus and regressions of this crate's targets (see `fuzz/`) through the
//! very bodies the targets run ([`imgpipe_isofs::fuzzing`]), and checks that the committed
//! seeds are real images and structures.

use std::io::Cursor;

use imgpipe_isofs::{Reader, fuzzing};
use imgpipe_testsupport::fuzz_inputs;

fn inputs(target: &str) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let v = fuzz_inputs(target);
    assert!(!v.is_empty(), "no corpus for {target}");
    v
}

fn is_seed(path: &std::path::Path) -> bool {
    path.components().any(|c| c.as_os_str() == "corpus")
}

#[test]
fn iso_inspect() {
    for (path, data) in inputs("iso_inspect") {
        let ok = fuzzing::iso_inspect(&data);
        if is_seed(&path) {
            assert!(ok, "{}", path.display());
        }
        // Every truncated prefix must fail cleanly too (no panic).
        for n in (0..data.len()).step_by(509) {
            fuzzing::iso_inspect(&data[..n]);
        }
    }
}

#[test]
fn iso_read() {
    for (path, data) in inputs("iso_read") {
        // The committed seeds are valid images: they must read completely.
        if is_seed(&path) {
            let mut r = Reader::open(Cursor::new(&data)).unwrap();
            r.check_path_table().unwrap();
            assert!(!r.entries().unwrap().is_empty(), "{}", path.display());
            assert!(fuzzing::iso_read(&data) > 0, "{}", path.display());
        } else {
            fuzzing::iso_read(&data);
        }
        for n in (0..data.len()).step_by(4099) {
            fuzzing::iso_read(&data[..n]);
        }
    }
}

#[test]
fn iso_susp() {
    for (_, data) in inputs("iso_susp") {
        fuzzing::iso_susp(&data);
    }
}

#[test]
fn iso_boot_catalog() {
    for (path, data) in inputs("iso_boot_catalog") {
        let ok = fuzzing::iso_boot_catalog(&data);
        if is_seed(&path) {
            assert!(ok, "{}", path.display());
        }
    }
}

#[test]
fn iso_directory_record() {
    let parsed = inputs("iso_directory_record")
        .iter()
        .filter(|(_, d)| fuzzing::iso_directory_record(d))
        .count();
    assert!(parsed >= 1, "the seeds no longer parse");
}

#[test]
fn iso_extract() {
    for (path, data) in inputs("iso_extract") {
        let sandbox = imgpipe_testsupport::tempdir();
        let ok = fuzzing::iso_extract(&data, &sandbox.path().join("s"));
        if is_seed(&path) {
            assert!(ok, "{}", path.display());
        }
    }
}
