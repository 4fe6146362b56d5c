//! Replays the fuzz corpus and regressions of this crate's targets (see `fuzz/`) through the
//! very bodies the targets run ([`imgpipe_kickstart::fuzzing`]), canonical-form stability
//! included.

use imgpipe_kickstart::fuzzing;
use imgpipe_testsupport::fuzz_inputs;

#[test]
fn kickstart_inspect() {
    let inputs = fuzz_inputs("kickstart_inspect");
    assert!(!inputs.is_empty());
    let detected = inputs
        .iter()
        .filter(|(_, d)| fuzzing::kickstart_inspect(d))
        .count();
    assert!(detected >= 1, "the seed kickstarts are no longer detected");
}

#[test]
fn kickstart_parse() {
    let inputs = fuzz_inputs("kickstart_parse");
    assert!(!inputs.is_empty());
    let mut checked = 0;
    for (_, data) in inputs {
        checked += usize::from(fuzzing::kickstart_parse(&data));
    }
    assert!(checked >= 1, "no seed reached the canonical round trip");
}

#[test]
fn kickstart_include() {
    let inputs = fuzz_inputs("kickstart_include");
    assert!(!inputs.is_empty());
    let shm = std::path::Path::new("/dev/shm");
    let scratch = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let dir = scratch.path().join("ks");
    let mut clean = 0;
    for (path, data) in &inputs {
        clean += usize::from(fuzzing::kickstart_include(data, &dir));
        assert!(!dir.exists(), "{path:?} left its files behind");
    }
    assert!(clean >= 1, "no seed resolved all its includes");
}
