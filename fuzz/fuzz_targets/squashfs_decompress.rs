#![no_main]
// Every decompressor on hostile input (the first byte picks it), output capped at 8 KiB.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    use imgpipe_squashfs::Compressor;
    let Some((&sel, src)) = data.split_first() else {
        return;
    };
    let c = Compressor::from_id(u16::from(sel % 6) + 1).unwrap();
    if let Ok(out) = imgpipe_squashfs::decompress_block(c, src, 8192) {
        assert!(out.len() <= 8192);
    }
});
