//! Replays the fuzz corpus and regressions of this crate's targets (see `fuzz/`), with the
//! same assertions the targets make, and checks that the committed seeds are real volumes.

use std::io::Cursor;

use imgpipe_luks::{Limits, Metadata};
use imgpipe_testsupport::fuzz_inputs;

#[test]
fn luks_inspect() {
    let inputs = fuzz_inputs("luks_inspect");
    assert!(!inputs.is_empty());
    let mut parsed = 0;
    for (path, data) in inputs {
        if let Ok(i) = imgpipe_luks::inspect(Cursor::new(&data)) {
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
    const HDR: u64 = 0x4000;
    let mut parsed = 0;
    for (path, data) in fuzz_inputs("luks_metadata") {
        if data.len() >= (HDR - 4096) as usize {
            continue;
        }
        let mut area = data.clone();
        area.resize((HDR - 4096) as usize, 0);
        if let Ok(md) = Metadata::parse(&area, 4096, HDR, Limits::default()) {
            parsed += 1;
            let again = md.to_json_area(HDR - 4096).unwrap();
            let back = Metadata::parse(&again, 4096, HDR, Limits::default()).unwrap();
            assert_eq!(back, md, "{}", path.display());
        }
    }
    assert!(parsed >= 3, "seed metadata no longer parses");
}
