//! Property tests: every structure decodes to what was encoded, and the FAT builder's output
//! reads back as the tree it was given.

use std::collections::BTreeMap;
use std::io::Cursor;

use imgpipe_gptpart::raw::{GptEntry, Mbr, MbrPartition, ShortEntry};
use imgpipe_gptpart::{FatBuilder, FatType, FatVolume, Guid};
use proptest::prelude::*;

fn guid() -> impl Strategy<Value = Guid> {
    any::<[u8; 16]>().prop_map(Guid)
}

proptest! {
    #[test]
    fn gpt_entry_round_trip(
        type_guid in guid(),
        unique_guid in guid(),
        first_lba in any::<u64>(),
        last_lba in any::<u64>(),
        attributes in any::<u64>(),
        name in "[a-zA-Z0-9 _\\-\u{e9}\u{65e5}]{0,36}",
    ) {
        let e = GptEntry { type_guid, unique_guid, first_lba, last_lba, attributes, name };
        let b = e.to_bytes().unwrap();
        prop_assert_eq!(GptEntry::parse(&b, 0).unwrap(), e);
    }

    #[test]
    fn guid_text_round_trip(g in guid()) {
        prop_assert_eq!(Guid::parse_str(&g.to_string()), Some(g));
        prop_assert_eq!(Guid::parse_str(&g.to_string().to_lowercase()), Some(g));
    }

    #[test]
    fn mbr_round_trip(sig in any::<u32>(), raw in proptest::collection::vec(any::<(u8, u8, u32, u32)>(), 4)) {
        let mut m = Mbr::empty(sig);
        for (slot, (status, ty, first, n)) in m.partitions.iter_mut().zip(raw) {
            *slot = MbrPartition::new(ty, first, n, status & 1 == 1);
        }
        prop_assert_eq!(Mbr::parse(&m.to_bytes()).unwrap(), m);
    }

    #[test]
    fn short_entry_round_trip(b in any::<[u8; 32]>()) {
        let e = ShortEntry::parse(&b);
        prop_assert_eq!(e.to_bytes(), b);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn fat_tree_reads_back(
        files in proptest::collection::btree_map(
            "[a-zA-Z0-9]{1,3}(/[a-zA-Z0-9 .\u{e9}_~-]{1,20}){0,2}",
            proptest::collection::vec(any::<u8>(), 0..3000),
            1..24,
        ),
        fat32 in any::<bool>(),
    ) {
        let (size, t) = if fat32 { (34 << 20, FatType::Fat32) } else { (1 << 20, FatType::Fat12) };
        let mut b = FatBuilder::new(size).fat_type(t).epoch(1_234_567_890);
        let mut want = BTreeMap::new();
        for (path, data) in &files {
            if b.add_file(path, data.clone()).is_ok() {
                want.insert(path.clone(), data.clone());
            }
        }
        let img = b.build_vec().unwrap();
        let mut v = FatVolume::open(Cursor::new(&img)).unwrap();
        let mut got = BTreeMap::new();
        for (path, e) in v.walk().unwrap() {
            if !e.is_dir {
                prop_assert_eq!(e.modified, Some(1_234_567_890));
                got.insert(path, v.read_file(&e).unwrap());
            }
        }
        prop_assert_eq!(got, want);
    }
}
