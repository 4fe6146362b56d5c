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
