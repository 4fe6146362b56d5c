#![no_main]
// The body lives in the crate: imgpipe_luks::fuzzing::luks_unlock (replayed by
// crates/luks/tests/fuzz_corpus.rs). Seeds are whole detached headers with their keyslot
// areas (160 KiB): run with -max_len=262144.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = imgpipe_luks::fuzzing::luks_unlock(data);
});
