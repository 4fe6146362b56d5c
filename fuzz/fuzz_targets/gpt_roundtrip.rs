#![no_main]
// The body lives in the crate: imgpipe_gptpart::fuzzing::gpt_roundtrip (replayed by
// crates/gptpart/tests/fuzz_corpus.rs).
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = imgpipe_gptpart::fuzzing::gpt_roundtrip(data);
});
