#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = imgpipe_squashfs::inspect_erofs(std::io::Cursor::new(data));
});
