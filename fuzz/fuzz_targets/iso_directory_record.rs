#![no_main]
//! Directory records and volume descriptors: decode -> encode -> decode is stable.
use imgpipe_isofs::raw::{DirectoryRecord, PrimaryVolumeDescriptor};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok((rec, _)) = DirectoryRecord::parse(data, 0) {
        let mut out = Vec::new();
        rec.write_to(&mut out);
        if out.len() <= 255 {
            let (again, len) = DirectoryRecord::parse(&out, 0).unwrap();
            assert_eq!(len, out.len());
            assert_eq!(again.identifier, rec.identifier);
            assert_eq!(
                (again.extent, again.data_length, again.flags),
                (rec.extent, rec.data_length, rec.flags)
            );
        }
    }
    if let Ok(pvd) = PrimaryVolumeDescriptor::parse(data, 0) {
        let again = PrimaryVolumeDescriptor::parse(&pvd.to_bytes(), 0).unwrap();
        assert_eq!(again.volume_space_size, pvd.volume_space_size);
        assert_eq!(again.root_extent, pvd.root_extent);
    }
});
