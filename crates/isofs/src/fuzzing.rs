//! The bodies of this crate's fuzz targets, written once: the few-line targets in `fuzz/`
//! and the corpus replay in `tests/fuzz_corpus.rs` both call them. A body panics only where
//! it asserts an invariant (a round trip); each returns what it managed, so a replay can
//! demand that the committed seeds still parse.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Cursor;

use crate::raw::{
    BootCatalog, DirectoryRecord, PrimaryVolumeDescriptor, RockRidge, nm_entries, parse_entries,
    sl_entries,
};
use crate::{Limits, Namespace, Reader};

/// `iso_inspect`: the inspection of any bytes. Returns whether it succeeded.
pub fn iso_inspect(data: &[u8]) -> bool {
    crate::inspect(Cursor::new(data)).is_ok()
}

/// `iso_read`: opens an image in every namespace, walks it and reads every file, under tight
/// limits. Returns the entries seen over all namespaces.
pub fn iso_read(data: &[u8]) -> usize {
    let limits = Limits {
        max_entries: 10_000,
        max_depth: 64,
        max_directory_size: 1 << 20,
        max_continuations: 8,
        max_extents: 64,
    };
    let mut seen = 0;
    for ns in [None, Some(Namespace::Joliet), Some(Namespace::Iso9660)] {
        let Ok(mut r) = Reader::open_with(Cursor::new(data), limits, ns) else {
            continue;
        };
        let _ = r.boot_catalog();
        let _ = r.check_path_table();
        if let Ok(entries) = r.entries() {
            seen += entries.len();
            for (_, e) in entries.iter().take(200) {
                let _ = r.copy_to(e, &mut std::io::sink());
            }
        }
    }
    seen
}

/// `iso_susp`: SUSP / Rock Ridge entries never panic to parse, and names and link targets
/// survive encode -> decode. Returns whether the input parsed as SUSP entries.
pub fn iso_susp(data: &[u8]) -> bool {
    let parsed = if let Ok(entries) = parse_entries(data, 0) {
        let mut rr = RockRidge::default();
        let _ = rr.absorb(&entries);
        true
    } else {
        false
    };
    let name: Vec<u8> = data.iter().copied().filter(|&c| c != 0).take(600).collect();
    if !name.is_empty() {
        let area = nm_entries(&name).concat();
        let mut rr = RockRidge::default();
        rr.absorb(&parse_entries(&area, 0).unwrap()).unwrap();
        assert_eq!(rr.name.as_deref(), Some(&name[..]));
        // Link targets without empty components (`a//b`, trailing `/`) round-trip exactly.
        let target = name;
        let clean =
            !target.windows(2).any(|w| w == b"//") && (target == b"/" || !target.ends_with(b"/"));
        if clean {
            let area = sl_entries(&target).concat();
            let mut rr = RockRidge::default();
            rr.absorb(&parse_entries(&area, 0).unwrap()).unwrap();
            assert_eq!(rr.symlink.as_deref(), Some(&target[..]));
        }
    }
    parsed
}

/// `iso_boot_catalog`: El Torito boot catalog decode -> encode -> decode is stable. Returns
/// whether the input parsed.
pub fn iso_boot_catalog(data: &[u8]) -> bool {
    let Ok(cat) = BootCatalog::parse(data, 0) else {
        return false;
    };
    let again = BootCatalog::parse(&cat.to_bytes(), 0).unwrap();
    assert_eq!(again.entries.len(), cat.entries.len());
    for (a, b) in again.entries.iter().zip(&cat.entries) {
        assert_eq!(
            (a.load_rba, a.sector_count, a.platform),
            (b.load_rba, b.sector_count, b.platform)
        );
    }
    true
}

/// `iso_directory_record`: directory records and volume descriptors, decode -> encode ->
/// decode is stable. Returns whether either parsed.
pub fn iso_directory_record(data: &[u8]) -> bool {
    let mut parsed = false;
    if let Ok((rec, _)) = DirectoryRecord::parse(data, 0) {
        parsed = true;
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
        parsed = true;
        let again = PrimaryVolumeDescriptor::parse(&pvd.to_bytes(), 0).unwrap();
        assert_eq!(again.volume_space_size, pvd.volume_space_size);
        assert_eq!(again.root_extent, pvd.root_extent);
    }
    parsed
}

/// `iso_extract`: extracts any bytes as an ISO image (tight limits, every namespace the
/// reader picks) into `sandbox` with the shared extractor; panics when anything lands
/// outside its destination. Returns whether the extraction succeeded.
pub fn iso_extract(data: &[u8], sandbox: &std::path::Path) -> bool {
    let limits = Limits {
        max_entries: 10_000,
        max_depth: 64,
        max_directory_size: 1 << 20,
        max_continuations: 8,
        max_extents: 64,
    };
    let Ok(r) = Reader::open_with(Cursor::new(data), limits, None) else {
        return false;
    };
    imgpipe_fstree::extract_in_sandbox(&r, sandbox).is_ok()
}
