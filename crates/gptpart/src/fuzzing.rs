//! The bodies of this crate's fuzz targets, written once: the few-line targets in `fuzz/`
//! and the corpus replay in `tests/fuzz_corpus.rs` both call them. A body panics only where
//! it asserts an invariant (a round trip, a bound); each returns what it managed, so a
//! replay can demand that the committed seeds still parse.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::Cursor;

use crate::raw::{FatBootSector, Mbr};
use crate::{
    FatBuilder, FatVolume, GptBuilder, Limits, PARTITION_TYPES, PartitionSize, PartitionSpec, Seed,
    read_gpt,
};

/// `gpt_inspect`: whatever the bytes, reading never panics, and what it returns is
/// self-consistent. Returns whether a GPT was read.
pub fn gpt_inspect(data: &[u8]) -> bool {
    let Ok(d) = read_gpt(Cursor::new(data)) else {
        return false;
    };
    for p in &d.partitions {
        assert!(p.first_lba <= p.last_lba);
        assert!(p.last_lba <= d.header.last_usable_lba);
        let (off, len) = d.partition_range(p.index).unwrap();
        assert!(off + len <= d.disk_size);
    }
    true
}

/// `mbr`: what parses re-encodes to the same MBR.
pub fn mbr(data: &[u8]) -> bool {
    let Ok(m) = Mbr::parse(data) else {
        return false;
    };
    assert_eq!(Mbr::parse(&m.to_bytes()).ok(), Some(m));
    true
}

/// `fat_boot_sector`: parsing never panics.
pub fn fat_boot_sector(data: &[u8]) -> bool {
    FatBootSector::parse(data).is_ok()
}

/// `fat_volume`: opens and walks a FAT volume under tight limits; every file that reads has
/// its declared size. Returns whether the volume walked.
pub fn fat_volume(data: &[u8]) -> bool {
    let limits = Limits {
        max_fat_bytes: 1 << 20,
        max_depth: 16,
        max_entries: 4096,
    };
    let Ok(mut v) = FatVolume::open_with(Cursor::new(data), limits) else {
        return false;
    };
    let Ok(all) = v.walk() else { return false };
    for (_, e) in all.iter().filter(|(_, e)| !e.is_dir).take(256) {
        if let Ok(bytes) = v.read_file(e) {
            assert_eq!(bytes.len() as u64, u64::from(e.size));
        }
    }
    true
}

/// `gpt_roundtrip`: any layout the builder accepts is written so that the reader returns it
/// unchanged, the disk GUID included. Returns whether the input planned a layout.
pub fn gpt_roundtrip(data: &[u8]) -> bool {
    let Some((&head, rest)) = data.split_first() else {
        return false;
    };
    let ss = if head & 1 == 0 { 512 } else { 4096 };
    // 64 KiB steps up to 8 MiB, 4 KiB alignment: small disks, many layouts.
    let disk = (u64::from(head >> 1) + 1) << 16;
    let mut b = GptBuilder::new(disk, Seed::from_material(data))
        .sector_size(ss)
        .alignment(4096);
    for (i, c) in rest.chunks_exact(4).take(16).enumerate() {
        let ty = PARTITION_TYPES[usize::from(c[0]) % PARTITION_TYPES.len()].1;
        let size = if c[1] == 0xFF {
            PartitionSize::Rest
        } else {
            PartitionSize::Bytes(u64::from(u16::from_le_bytes([c[1], c[2]])) * 4096)
        };
        let name: String = (0..c[3] % 40)
            .map(|k| char::from(b'a' + ((k + i as u8) % 26)))
            .collect();
        b = b.partition(
            PartitionSpec::new(ty, size)
                .name(name)
                .attributes(u64::from(c[3]) << 56),
        );
    }
    let Ok(layout) = b.plan() else { return false };
    let mut img = Cursor::new(vec![0u8; disk as usize]);
    layout.write_table(&mut img).unwrap();
    let read = read_gpt(&mut img).unwrap();
    assert!(read.is_clean());
    assert_eq!(read.disk_guid, layout.disk_guid());
    let planned = layout.partitions();
    assert_eq!(read.partitions.len(), planned.len());
    for (r, p) in read.partitions.iter().zip(&planned) {
        assert_eq!(r.first_lba, p.entry.first_lba);
        assert_eq!(r.last_lba, p.entry.last_lba);
        assert_eq!(r.unique_guid, p.entry.unique_guid);
        assert_eq!(r.name, p.entry.name);
        assert_eq!(r.attributes, p.entry.attributes);
    }
    true
}

/// `fat_roundtrip`: any tree the builder accepts reads back identically. Returns how many
/// files the built volume holds (`None` when nothing was built).
pub fn fat_roundtrip(data: &[u8]) -> Option<usize> {
    const SIZE: usize = 2 << 20;
    // One image buffer per thread, written over by every run: a fresh 2 MiB vector per run
    // costs hundreds of page faults (most of a run's time under the sanitizer).
    thread_local! {
        static IMAGE: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; SIZE]);
    }
    let mut b = FatBuilder::new(SIZE as u64).epoch(1_700_000_000);
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
    IMAGE.with_borrow_mut(|img| {
        let mut w = Cursor::new(&mut img[..]);
        b.build(&mut w).ok()?;
        assert_eq!(
            w.position(),
            SIZE as u64,
            "the volume is not its declared size"
        );
        Some(())
    })?;
    IMAGE.with_borrow(|img| check_fat_roundtrip(img, &want));
    Some(want.len())
}

fn check_fat_roundtrip(img: &[u8], want: &BTreeMap<String, Vec<u8>>) {
    let mut v = FatVolume::open(Cursor::new(img)).unwrap();
    let mut got = BTreeMap::new();
    for (path, e) in v.walk().unwrap() {
        if !e.is_dir {
            got.insert(path, v.read_file(&e).unwrap());
        }
    }
    assert_eq!(&got, want);
}

/// `fat_extract`: extracts any bytes as a FAT volume into `sandbox` with the shared
/// extractor; panics when anything lands outside its destination. Returns whether the
/// extraction succeeded.
pub fn fat_extract(data: &[u8], sandbox: &std::path::Path) -> bool {
    let limits = Limits {
        max_fat_bytes: 1 << 20,
        max_depth: 64,
        max_entries: 10_000,
    };
    let Ok(v) = FatVolume::open_with(Cursor::new(data), limits) else {
        return false;
    };
    imgpipe_fstree::extract_in_sandbox(&v, sandbox).is_ok()
}
