#![no_main]
use imgpipe_gptpart::{FatVolume, Limits};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_fat_bytes: 1 << 20,
        max_depth: 16,
        max_entries: 4096,
    };
    let Ok(mut v) = FatVolume::open_with(std::io::Cursor::new(data), limits) else {
        return;
    };
    let Ok(all) = v.walk() else { return };
    for (_, e) in all.iter().filter(|(_, e)| !e.is_dir).take(256) {
        if let Ok(bytes) = v.read_file(e) {
            assert_eq!(bytes.len() as u64, u64::from(e.size));
        }
    }
});
