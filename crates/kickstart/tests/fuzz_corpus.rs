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
