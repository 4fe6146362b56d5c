#![no_main]
// The body lives in the crate: imgpipe_kickstart::fuzzing::kickstart_include (replayed by
// crates/kickstart/tests/fuzz_corpus.rs). It writes its files into a fresh directory on a
// tmpfs (/dev/shm when there is one) and removes it.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let shm = std::path::Path::new("/dev/shm");
    let base = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!(
        "imgpipe-fuzz-kickstart_include-{}",
        std::process::id()
    ));
    let _ = imgpipe_kickstart::fuzzing::kickstart_include(data, &dir);
});
