#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = imgpipe_isofs::inspect(std::io::Cursor::new(data));
});
