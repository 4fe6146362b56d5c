#![no_main]
// The body lives in the crate: imgpipe_kickstart::fuzzing::kickstart_inspect (replayed by
// crates/kickstart/tests/fuzz_corpus.rs).
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = imgpipe_kickstart::fuzzing::kickstart_inspect(data);
});
