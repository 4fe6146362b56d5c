#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = imgpipe_gptpart::raw::FatBootSector::parse(data);
});
