//! Replays the fuzz corpus and regressions of this crate's targets (see `fuzz/`).

use imgpipe_testsupport::fuzz_inputs;

#[test]
fn luks_inspect() {
    for (_, data) in fuzz_inputs("luks_inspect") {
        let _ = imgpipe_luks::inspect(std::io::Cursor::new(&data));
    }
}
