//! Replays the fuzz corpus and regressions of this crate's targets (see `fuzz/`).

use imgpipe_testsupport::fuzz_inputs;

#[test]
fn iso_inspect() {
    for (path, data) in fuzz_inputs("iso_inspect") {
        let _ = imgpipe_isofs::inspect(std::io::Cursor::new(&data));
        // Every truncated prefix must fail cleanly too (no panic).
        for n in (0..data.len()).step_by(509) {
            let _ = imgpipe_isofs::inspect(std::io::Cursor::new(&data[..n]));
        }
        eprintln!("replayed {}", path.display());
    }
}
