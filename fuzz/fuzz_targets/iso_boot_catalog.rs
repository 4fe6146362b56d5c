#![no_main]
//! El Torito boot catalog: decode -> encode -> decode is stable.
use imgpipe_isofs::raw::BootCatalog;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(cat) = BootCatalog::parse(data, 0) {
        let again = BootCatalog::parse(&cat.to_bytes(), 0).unwrap();
        assert_eq!(again.entries.len(), cat.entries.len());
        for (a, b) in again.entries.iter().zip(&cat.entries) {
            assert_eq!(
                (a.load_rba, a.sector_count, a.platform),
                (b.load_rba, b.sector_count, b.platform)
            );
        }
    }
});
