#![no_main]
//! Opens an image, walks every namespace and reads every file, under tight limits.
use std::io::Cursor;

use imgpipe_isofs::{Limits, Namespace, Reader};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_entries: 10_000,
        max_depth: 64,
        max_directory_size: 1 << 20,
        max_continuations: 8,
        max_extents: 64,
    };
    for ns in [None, Some(Namespace::Joliet), Some(Namespace::Iso9660)] {
        let Ok(mut r) = Reader::open_with(Cursor::new(data), limits, ns) else {
            continue;
        };
        let _ = r.boot_catalog();
        let _ = r.check_path_table();
        if let Ok(entries) = r.entries() {
            for (_, e) in entries.iter().take(200) {
                let _ = r.copy_to(e, &mut std::io::sink());
            }
        }
    }
});
