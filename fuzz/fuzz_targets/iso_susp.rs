#![no_main]
//! SUSP / Rock Ridge entries: parsing never panics, and names and link targets survive
//! encode -> decode.
use imgpipe_isofs::raw::{RockRidge, nm_entries, parse_entries, sl_entries};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(entries) = parse_entries(data, 0) {
        let mut rr = RockRidge::default();
        let _ = rr.absorb(&entries);
    }
    let name: Vec<u8> = data.iter().copied().filter(|&c| c != 0).take(600).collect();
    if !name.is_empty() {
        let area = nm_entries(&name).concat();
        let mut rr = RockRidge::default();
        rr.absorb(&parse_entries(&area, 0).unwrap()).unwrap();
        assert_eq!(rr.name.as_deref(), Some(&name[..]));
        // Link targets without empty components (`a//b`, trailing `/`) round-trip exactly.
        let target: Vec<u8> = name.clone();
        let clean =
            !target.windows(2).any(|w| w == b"//") && (target == b"/" || !target.ends_with(b"/"));
        if clean {
            let area = sl_entries(&target).concat();
            let mut rr = RockRidge::default();
            rr.absorb(&parse_entries(&area, 0).unwrap()).unwrap();
            assert_eq!(rr.symlink.as_deref(), Some(&target[..]));
        }
    }
});
