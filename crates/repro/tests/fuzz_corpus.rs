//! Replays the `repro_nested` and `repro_reason` fuzz corpora and regressions (see `fuzz/`)
//! through the very bodies the targets run ([`imgpipe_repro::fuzzing`]).

use imgpipe_repro::fuzzing;
use imgpipe_testsupport::fuzz_inputs;

#[test]
fn repro_nested() {
    let inputs = fuzz_inputs("repro_nested");
    assert!(!inputs.is_empty());
    let tmp = tempfile::tempdir().unwrap();
    let found: usize = inputs
        .iter()
        .filter_map(|(_, d)| fuzzing::repro_nested(d, tmp.path()))
        .sum();
    // The committed seeds are real image pairs that differ in known files.
    assert!(found >= 2, "{found}");
    // And no run left a file behind.
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn repro_reason() {
    let inputs = fuzz_inputs("repro_reason");
    assert!(!inputs.is_empty());
    // The committed seeds are pairs the real tools wrote, each differing in its usual way.
    let explained = inputs
        .iter()
        .filter(|(_, d)| fuzzing::repro_reason(d))
        .count();
    assert!(explained >= 5, "{explained} of {}", inputs.len());
}
