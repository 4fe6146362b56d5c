#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // Whatever the bytes, reading never panics, and what it returns is self-consistent.
    if let Ok(d) = imgpipe_gptpart::read_gpt(std::io::Cursor::new(data)) {
        for p in &d.partitions {
            assert!(p.first_lba <= p.last_lba);
            assert!(p.last_lba <= d.header.last_usable_lba);
            let (off, len) = d.partition_range(p.index).unwrap();
            assert!(off + len <= d.disk_size);
        }
    }
});
