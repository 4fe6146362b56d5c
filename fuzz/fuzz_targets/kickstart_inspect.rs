#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if imgpipe_kickstart::detect(data) {
        let _ = imgpipe_kickstart::inspect(&String::from_utf8_lossy(data));
    }
});
