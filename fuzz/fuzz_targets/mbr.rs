#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    use imgpipe_gptpart::raw::Mbr;
    if let Ok(m) = Mbr::parse(data) {
        assert_eq!(Mbr::parse(&m.to_bytes()).ok(), Some(m));
    }
});
