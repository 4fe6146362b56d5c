#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    use imgpipe_squashfs::raw::SuperBlock;
    if let Ok(sb) = SuperBlock::parse(data, 0) {
        assert_eq!(SuperBlock::parse(&sb.to_bytes(), 0).ok(), Some(sb));
    }
});
