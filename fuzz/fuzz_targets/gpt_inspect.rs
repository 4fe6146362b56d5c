#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = imgpipe_gptpart::inspect_gpt(std::io::Cursor::new(data));
});
