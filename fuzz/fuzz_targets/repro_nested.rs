#![no_main]
// Two images from one input: the first 4 bytes say where the rest is cut into A and B. The
// file-level diagnosis opens whatever they look like (ISO9660, GPT, squashfs, FAT) and any
// filesystem nested inside; nothing may panic, hang or blow up.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((head, body)) = data.split_first_chunk::<4>() else {
        return;
    };
    let cut = u32::from_le_bytes(*head) as usize % (body.len() + 1);
    let (a, b) = body.split_at(cut);
    let dir = std::env::temp_dir();
    let pa = dir.join(format!("imgpipe-fuzz-nested-{}-a", std::process::id()));
    let pb = dir.join(format!("imgpipe-fuzz-nested-{}-b", std::process::id()));
    if std::fs::write(&pa, a).is_err() || std::fs::write(&pb, b).is_err() {
        return;
    }
    if let (Ok(fa), Ok(fb)) = (std::fs::File::open(&pa), std::fs::File::open(&pb)) {
        let _ = imgpipe_repro::diagnose_files(&fa, &fb, imgpipe_repro::NestedOptions::default());
    }
});
