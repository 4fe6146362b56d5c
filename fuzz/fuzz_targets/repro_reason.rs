#![no_main]
// The body lives in the crate: imgpipe_repro::fuzzing::repro_reason (replayed by
// crates/repro/tests/fuzz_corpus.rs). It reads only memory.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = imgpipe_repro::fuzzing::repro_reason(data);
});
