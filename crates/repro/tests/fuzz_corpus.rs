//! Replays the `repro_nested` fuzz corpus and regressions (see `fuzz/`) as the target does:
//! the input's first 4 bytes cut the rest into two images that are diagnosed file by file.

use imgpipe_repro::{NestedOptions, diagnose_files};
use imgpipe_testsupport::fuzz_inputs;

#[test]
fn repro_nested() {
    let inputs = fuzz_inputs("repro_nested");
    assert!(!inputs.is_empty());
    let tmp = tempfile::tempdir().unwrap();
    let mut found = 0;
    for (path, data) in inputs {
        let Some((head, body)) = data.split_first_chunk::<4>() else {
            continue;
        };
        let cut = u32::from_le_bytes(*head) as usize % (body.len() + 1);
        let (a, b) = body.split_at(cut);
        let (pa, pb) = (tmp.path().join("a"), tmp.path().join("b"));
        std::fs::write(&pa, a).unwrap();
        std::fs::write(&pb, b).unwrap();
        let r = diagnose_files(
            &std::fs::File::open(&pa).unwrap(),
            &std::fs::File::open(&pb).unwrap(),
            NestedOptions::default(),
        );
        if let Ok(r) = r {
            found += r.differences.len();
            let _ = path;
        }
    }
    // The committed seeds are real image pairs that differ in known files.
    assert!(found >= 2, "{found}");
}
