#![no_main]
// The body lives in the crate: imgpipe_squashfs::fuzzing::erofs_extract (replayed by its tests/fuzz_corpus.rs). Each
// run extracts into a fresh sandbox of this process's own and removes it afterwards.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let sandbox = std::env::temp_dir().join(format!("imgpipe-fuzz-erofs_extract-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&sandbox);
    let _ = imgpipe_squashfs::fuzzing::erofs_extract(data, &sandbox);
    let _ = std::fs::remove_dir_all(&sandbox);
});
