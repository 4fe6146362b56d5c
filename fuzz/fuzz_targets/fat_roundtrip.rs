#![no_main]
//! Any tree the builder accepts reads back identically.
use std::collections::BTreeMap;

use imgpipe_gptpart::{FatBuilder, FatVolume};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut b = FatBuilder::new(2 << 20).epoch(1_700_000_000);
    let mut want = BTreeMap::new();
    // Records: a path (up to the first 0 byte) and a length byte for the content.
    for rec in data.split(|&c| c == 0).take(64) {
        let Some((&len, path)) = rec.split_last() else {
            continue;
        };
        let path = String::from_utf8_lossy(path).into_owned();
        let content = vec![len; usize::from(len) * 37];
        if b.add_file(&path, content.clone()).is_ok() {
            let canonical: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
            want.insert(canonical.join("/"), content);
        }
    }
    let Ok(img) = b.build_vec() else { return };
    let mut v = FatVolume::open(std::io::Cursor::new(&img)).unwrap();
    let mut got = BTreeMap::new();
    for (path, e) in v.walk().unwrap() {
        if !e.is_dir {
            got.insert(path, v.read_file(&e).unwrap());
        }
    }
    assert_eq!(got, want);
});
