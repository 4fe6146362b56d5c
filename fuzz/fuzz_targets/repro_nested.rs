#![no_main]
// The body lives in the crate: imgpipe_repro::fuzzing::repro_nested (replayed by
// crates/repro/tests/fuzz_corpus.rs). Its two files are unlinked as soon as they are open,
// so no run leaves anything behind.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = imgpipe_repro::fuzzing::repro_nested(data, &std::env::temp_dir());
});
