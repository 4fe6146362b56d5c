#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = imgpipe_luks::inspect(std::io::Cursor::new(data));
});
