//! Replays the fuzz corpus and regressions of this crate's targets (see `fuzz/`) through the
//! very bodies the targets run ([`imgpipe_luks::fuzzing`]), and checks that the committed
//! seeds are real volumes.

use imgpipe_luks::fuzzing;
use imgpipe_testsupport::fuzz_inputs;

#[test]
fn luks_inspect() {
    let inputs = fuzz_inputs("luks_inspect");
    assert!(!inputs.is_empty());
    let mut parsed = 0;
    for (path, data) in inputs {
        if let Some(i) = fuzzing::luks_inspect(&data) {
            parsed += 1;
            if path.ends_with("damaged-primary.img") {
                assert!(i.primary.problem.is_some(), "{}", path.display());
            }
        }
    }
    assert!(parsed >= 4, "seed volumes no longer parse");
}

#[test]
fn luks_metadata() {
    let parsed = fuzz_inputs("luks_metadata")
        .iter()
        .filter(|(_, d)| fuzzing::luks_metadata(d))
        .count();
    assert!(parsed >= 3, "seed metadata no longer parses");
}

#[test]
fn luks_unlock() {
    let inputs = fuzz_inputs("luks_unlock");
    assert!(!inputs.is_empty());
    for (path, data) in inputs {
        let opened = fuzzing::luks_unlock(&data);
        // The seeds are whole detached headers (keyslot areas included) opened by `pw`.
        if path.components().any(|c| c.as_os_str() == "corpus") {
            assert!(opened, "{}", path.display());
        }
    }
}
