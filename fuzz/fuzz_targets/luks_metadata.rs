#![no_main]
// The body lives in the crate: imgpipe_luks::fuzzing::luks_metadata (replayed by
// crates/luks/tests/fuzz_corpus.rs).
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = imgpipe_luks::fuzzing::luks_metadata(data);
});
