#![no_main]
// The body lives in the crate: imgpipe_isofs::fuzzing::iso_inspect (replayed by
// crates/isofs/tests/fuzz_corpus.rs).
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = imgpipe_isofs::fuzzing::iso_inspect(data);
});
