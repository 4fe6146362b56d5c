#![no_main]
//! Any layout the builder accepts is written so that the reader returns it unchanged.
use imgpipe_gptpart::{GptBuilder, PARTITION_TYPES, PartitionSize, PartitionSpec, Seed, read_gpt};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&head, rest)) = data.split_first() else {
        return;
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
    let Ok(layout) = b.plan() else { return };
    let mut img = std::io::Cursor::new(vec![0u8; disk as usize]);
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
});
