//! Replays the fuzz corpus and regressions of this crate's targets (see `fuzz/`), with the
//! same checks the targets make.

use std::collections::BTreeMap;
use std::io::Cursor;

use imgpipe_gptpart::raw::{FatBootSector, Mbr};
use imgpipe_gptpart::{
    FatBuilder, FatVolume, GptBuilder, Limits, PARTITION_TYPES, PartitionSize, PartitionSpec, Seed,
    read_gpt,
};
use imgpipe_testsupport::fuzz_inputs;

fn nonempty(target: &str) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let inputs = fuzz_inputs(target);
    assert!(!inputs.is_empty(), "no corpus for {target}");
    inputs
}

#[test]
fn gpt_inspect() {
    let mut read = 0;
    for (path, data) in nonempty("gpt_inspect") {
        if let Ok(d) = read_gpt(Cursor::new(&data)) {
            read += 1;
            for p in &d.partitions {
                assert!(p.first_lba <= p.last_lba, "{path:?}");
                assert!(p.last_lba <= d.header.last_usable_lba, "{path:?}");
                let (off, len) = d.partition_range(p.index).unwrap();
                assert!(off + len <= d.disk_size, "{path:?}");
            }
        }
        // Every truncation fails cleanly or reads consistently.
        for len in (0..data.len()).step_by(509) {
            let _ = read_gpt(Cursor::new(&data[..len]));
        }
    }
    assert!(read >= 2, "the seeds are valid disks");
}

#[test]
fn mbr() {
    for (_, data) in nonempty("mbr") {
        if let Ok(m) = Mbr::parse(&data) {
            assert_eq!(Mbr::parse(&m.to_bytes()).ok(), Some(m));
        }
    }
}

#[test]
fn fat_boot_sector() {
    for (_, data) in nonempty("fat_boot_sector") {
        let _ = FatBootSector::parse(&data);
    }
}

#[test]
fn fat_volume() {
    let limits = Limits {
        max_fat_bytes: 1 << 20,
        max_depth: 16,
        max_entries: 4096,
    };
    let mut walked = 0;
    for (path, data) in nonempty("fat_volume") {
        let Ok(mut v) = FatVolume::open_with(Cursor::new(&data), limits) else {
            continue;
        };
        let Ok(all) = v.walk() else { continue };
        walked += 1;
        for (_, e) in all.iter().filter(|(_, e)| !e.is_dir).take(256) {
            if let Ok(bytes) = v.read_file(e) {
                assert_eq!(bytes.len() as u64, u64::from(e.size), "{path:?}");
            }
        }
    }
    assert!(walked >= 2, "the seeds are valid volumes");
}

#[test]
fn gpt_roundtrip() {
    let mut planned_ok = 0;
    for (path, data) in nonempty("gpt_roundtrip") {
        let Some((&head, rest)) = data.split_first() else {
            continue;
        };
        let ss = if head & 1 == 0 { 512 } else { 4096 };
        // 64 KiB steps up to 8 MiB, 4 KiB alignment: small disks, many layouts.
        let disk = (u64::from(head >> 1) + 1) << 16;
        let mut b = GptBuilder::new(disk, Seed::from_material(&data))
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
        let Ok(layout) = b.plan() else { continue };
        planned_ok += 1;
        let mut img = Cursor::new(vec![0u8; disk as usize]);
        layout.write_table(&mut img).unwrap();
        let read = read_gpt(&mut img).unwrap();
        assert!(read.is_clean(), "{path:?}");
        let planned = layout.partitions();
        assert_eq!(read.partitions.len(), planned.len(), "{path:?}");
        for (r, p) in read.partitions.iter().zip(&planned) {
            assert_eq!(
                (r.first_lba, r.last_lba),
                (p.entry.first_lba, p.entry.last_lba)
            );
            assert_eq!(r.unique_guid, p.entry.unique_guid);
            assert_eq!(r.name, p.entry.name);
            assert_eq!(r.attributes, p.entry.attributes);
        }
    }
    assert!(planned_ok >= 2, "the seeds are valid layouts");
}

#[test]
fn fat_roundtrip() {
    let mut built = 0;
    for (path, data) in nonempty("fat_roundtrip") {
        let mut b = FatBuilder::new(2 << 20).epoch(1_700_000_000);
        let mut want = BTreeMap::new();
        for rec in data.split(|&c| c == 0).take(64) {
            let Some((&len, p)) = rec.split_last() else {
                continue;
            };
            let p = String::from_utf8_lossy(p).into_owned();
            let content = vec![len; usize::from(len) * 37];
            if b.add_file(&p, content.clone()).is_ok() {
                let canonical: Vec<&str> = p.split('/').filter(|s| !s.is_empty()).collect();
                want.insert(canonical.join("/"), content);
            }
        }
        let Ok(img) = b.build_vec() else { continue };
        built += usize::from(want.len() >= 3);
        let mut v = FatVolume::open(Cursor::new(&img)).unwrap();
        let mut got = BTreeMap::new();
        for (p, e) in v.walk().unwrap() {
            if !e.is_dir {
                got.insert(p, v.read_file(&e).unwrap());
            }
        }
        assert_eq!(got, want, "{path:?}");
    }
    assert!(built >= 1, "the seeds are valid trees");
}
