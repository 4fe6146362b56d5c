//! Replays the fuzz corpus and regressions of this crate's targets (see `fuzz/`), running
//! the same checks the targets run.

use std::io::Cursor;

use imgpipe_isofs::raw::{
    BootCatalog, DirectoryRecord, PrimaryVolumeDescriptor, RockRidge, nm_entries, parse_entries,
    sl_entries,
};
use imgpipe_isofs::{Limits, Namespace, Reader};
use imgpipe_testsupport::fuzz_inputs;

fn inputs(target: &str) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let v = fuzz_inputs(target);
    assert!(!v.is_empty(), "no corpus for {target}");
    v
}

#[test]
fn iso_inspect() {
    for (path, data) in inputs("iso_inspect") {
        let _ = imgpipe_isofs::inspect(Cursor::new(&data));
        // Every truncated prefix must fail cleanly too (no panic).
        for n in (0..data.len()).step_by(509) {
            let _ = imgpipe_isofs::inspect(Cursor::new(&data[..n]));
        }
        eprintln!("replayed {}", path.display());
    }
}

fn read_everything(data: &[u8]) -> usize {
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

#[test]
fn iso_read() {
    for (path, data) in inputs("iso_read") {
        // The committed seeds are valid images: they must read completely.
        if path.components().any(|c| c.as_os_str() == "corpus") {
            let mut r = Reader::open(Cursor::new(&data)).unwrap();
            r.check_path_table().unwrap();
            assert!(!r.entries().unwrap().is_empty(), "{}", path.display());
        }
        read_everything(&data);
        for n in (0..data.len()).step_by(4099) {
            read_everything(&data[..n]);
        }
    }
}

#[test]
fn iso_susp() {
    for (_, data) in inputs("iso_susp") {
        if let Ok(entries) = parse_entries(&data, 0) {
            let mut rr = RockRidge::default();
            let _ = rr.absorb(&entries);
        }
        let name: Vec<u8> = data.iter().copied().filter(|&c| c != 0).take(600).collect();
        if !name.is_empty() {
            let mut rr = RockRidge::default();
            rr.absorb(&parse_entries(&nm_entries(&name).concat(), 0).unwrap())
                .unwrap();
            assert_eq!(rr.name.as_deref(), Some(&name[..]));
            let clean =
                !name.windows(2).any(|w| w == b"//") && (name == b"/" || !name.ends_with(b"/"));
            if clean {
                let mut rr = RockRidge::default();
                rr.absorb(&parse_entries(&sl_entries(&name).concat(), 0).unwrap())
                    .unwrap();
                assert_eq!(rr.symlink.as_deref(), Some(&name[..]));
            }
        }
    }
}

#[test]
fn iso_boot_catalog() {
    for (path, data) in inputs("iso_boot_catalog") {
        let cat = BootCatalog::parse(&data, 0);
        if path.components().any(|c| c.as_os_str() == "corpus") {
            assert!(cat.is_ok(), "{}: {cat:?}", path.display());
        }
        if let Ok(cat) = cat {
            let again = BootCatalog::parse(&cat.to_bytes(), 0).unwrap();
            assert_eq!(again.entries.len(), cat.entries.len());
        }
    }
}

#[test]
fn iso_directory_record() {
    for (_, data) in inputs("iso_directory_record") {
        if let Ok((rec, _)) = DirectoryRecord::parse(&data, 0) {
            let mut out = Vec::new();
            rec.write_to(&mut out);
            if out.len() <= 255 {
                let (again, _) = DirectoryRecord::parse(&out, 0).unwrap();
                assert_eq!(again.identifier, rec.identifier);
            }
        }
        if let Ok(pvd) = PrimaryVolumeDescriptor::parse(&data, 0) {
            let again = PrimaryVolumeDescriptor::parse(&pvd.to_bytes(), 0).unwrap();
            assert_eq!(again.volume_space_size, pvd.volume_space_size);
        }
    }
}
