#![no_main]
// A directory listing from raw bytes: headers, entries, name checks.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(entries) = imgpipe_squashfs::raw::parse_directory(data, 0) {
        assert!(entries.windows(2).all(|w| w[0].name < w[1].name));
    }
});
