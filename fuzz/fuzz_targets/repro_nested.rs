#![no_main]
// The body lives in the crate: imgpipe_repro::fuzzing::repro_nested (replayed by
// crates/repro/tests/fuzz_corpus.rs); this process's files go to one directory of its own.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("imgpipe-fuzz-nested-{}", std::process::id()));
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = imgpipe_repro::fuzzing::repro_nested(data, &dir);
    }
});
