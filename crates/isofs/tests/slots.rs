//! `Builder::reserve_extent`: a slot whose extent holds its capacity while the file records
//! its content's length; the report names every both-endian size field of the primary and
//! Joliet records, and patching them with a new content gives the image a build with that
//! content makes, read back the same through every namespace.

use std::io::Cursor;

use imgpipe_isofs::{Builder, Metadata, Namespace, Options, Reader, ReservedSlot};

const CAPACITY: u64 = 10_000;

fn build(content: Option<&[u8]>) -> (Vec<u8>, ReservedSlot) {
    let mut o = Options::new("SLOTS", 1_700_000_000);
    o.rock_ridge = true;
    o.joliet = true;
    let mut b = Builder::new(o);
    b.add_file("a.txt", Metadata::file(0o644), b"before".to_vec())
        .unwrap();
    b.add_dir("srv", Metadata::directory(0o755)).unwrap();
    if let Some(c) = content {
        b.add_file("srv/piece.html", Metadata::file(0o644), c.to_vec())
            .unwrap();
    }
    b.add_file("z.txt", Metadata::file(0o644), b"after".to_vec())
        .unwrap();
    b.reserve_extent("srv/piece.html", CAPACITY, 4096).unwrap();
    let mut out = Vec::new();
    let mut report = b.build(&mut out).unwrap();
    assert_eq!(report.slots.len(), 1);
    (out, report.slots.remove(0))
}

fn inject(image: &mut [u8], slot: &ReservedSlot, piece: &[u8]) {
    let at = slot.offset as usize;
    image[at..at + slot.capacity as usize].fill(0);
    image[at..at + piece.len()].copy_from_slice(piece);
    for f in &slot.size_fields {
        let n = piece.len() as u32;
        let bytes = if f.big_endian {
            n.to_be_bytes()
        } else {
            n.to_le_bytes()
        };
        image[f.offset as usize..f.offset as usize + 4].copy_from_slice(&bytes);
    }
}

fn read_back(image: &[u8]) -> Vec<(u64, Vec<u8>)> {
    [Namespace::RockRidge, Namespace::Joliet, Namespace::Iso9660]
        .into_iter()
        .map(|ns| {
            let mut r =
                Reader::open_with(Cursor::new(image), Default::default(), Some(ns)).unwrap();
            let name = if ns == Namespace::Iso9660 {
                "SRV/PIECE.HTM"
            } else {
                "srv/piece.html"
            };
            let e = r
                .entries()
                .unwrap()
                .into_iter()
                .find(|(p, _)| {
                    p.to_ascii_lowercase()
                        .starts_with(&name.to_ascii_lowercase())
                })
                .unwrap_or_else(|| panic!("{ns:?}: no {name}"))
                .1;
            (e.size, r.read_to_vec(&e, 1 << 20).unwrap())
        })
        .collect()
}

#[test]
fn empty_slot_reports_both_endian_fields_of_both_trees() {
    let (image, slot) = build(None);
    assert_eq!((slot.size, slot.capacity), (0, CAPACITY));
    assert_eq!(slot.offset % 4096, 0);
    assert_eq!(slot.size_fields.len(), 4);
    let ends: Vec<bool> = slot.size_fields.iter().map(|f| f.big_endian).collect();
    assert_eq!(ends, [false, true, false, true]);
    for f in &slot.size_fields {
        let at = f.offset as usize;
        assert_eq!(&image[at..at + 4], &[0, 0, 0, 0]);
        // The extent field of the same endianness, 8 bytes before, names the slot's block,
        // even while the file is empty.
        let b: [u8; 4] = image[at - 8..at - 4].try_into().unwrap();
        let lba = if f.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        };
        assert_eq!(u64::from(lba) * 2048, slot.offset);
    }
    for (size, data) in read_back(&image) {
        assert_eq!((size, data.len()), (0, 0));
    }
}

#[test]
fn patched_slot_equals_a_build_with_the_content() {
    let (mut image, slot) = build(None);
    for piece in [&b"small"[..], &vec![7u8; 9_000], &b"shrunk again"[..]] {
        inject(&mut image, &slot, piece);
        for (size, data) in read_back(&image) {
            assert_eq!(size, piece.len() as u64);
            assert_eq!(data, piece);
        }
        let (built, built_slot) = build(Some(piece));
        assert_eq!(built_slot.size, piece.len() as u64);
        assert_eq!(
            (built_slot.offset, &built_slot.size_fields),
            (slot.offset, &slot.size_fields)
        );
        assert!(built == image, "{} bytes: injection differs", piece.len());
    }
}

#[test]
fn refuses_content_larger_than_the_capacity() {
    let mut b = Builder::new(Options::new("SLOTS", 0));
    b.add_file("p", Metadata::file(0o644), vec![1; 5000])
        .unwrap();
    assert!(b.reserve_extent("p", 4096, 2048).is_err());
    assert!(b.reserve_extent("q", 4096, 1000).is_err());
    assert!(b.reserve_extent("r", 1 << 33, 2048).is_err());
}
