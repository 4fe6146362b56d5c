#![no_main]
// The body lives in the crate: imgpipe_squashfs::fuzzing::squashfs_extract (replayed by its tests/fuzz_corpus.rs). Each
// run extracts into a fresh sandbox of this process's own and removes it afterwards.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // A tmpfs when there is one: every run creates and removes its files.
    let shm = std::path::Path::new("/dev/shm");
    let base = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let sandbox = base.join(format!(
        "imgpipe-fuzz-squashfs_extract-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&sandbox);
    let _ = imgpipe_squashfs::fuzzing::squashfs_extract(data, &sandbox);
    let _ = std::fs::remove_dir_all(&sandbox);
});
