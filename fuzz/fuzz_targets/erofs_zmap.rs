#![no_main]
// The body lives in the crate: imgpipe_squashfs::fuzzing::erofs_zmap (replayed by
// crates/squashfs/tests/fuzz_corpus.rs).
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = imgpipe_squashfs::fuzzing::erofs_zmap(data);
});
