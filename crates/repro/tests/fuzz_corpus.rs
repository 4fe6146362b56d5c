//! Replays the `repro_nested` fuzz corpus and regressions (see `fuzz/`) through the very body
//! the target runs ([`imgpipe_repro::fuzzing::repro_nested`]).

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
