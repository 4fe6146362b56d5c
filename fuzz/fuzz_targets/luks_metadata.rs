#![no_main]
//! LUKS2 JSON metadata: parse + validate; whatever parses must survive write -> parse.
use imgpipe_luks::{Limits, Metadata};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    const HDR: u64 = 0x4000;
    if data.len() >= (HDR - 4096) as usize {
        return;
    }
    let mut area = data.to_vec();
    area.resize((HDR - 4096) as usize, 0);
    if let Ok(md) = Metadata::parse(&area, 4096, HDR, Limits::default()) {
        let again = md.to_json_area(HDR - 4096).expect("re-encode");
        let back = Metadata::parse(&again, 4096, HDR, Limits::default()).expect("re-parse");
        assert_eq!(back, md);
    }
});
