//! proptest: inodes and directory listings parse back to what was encoded.

use imgpipe_squashfs::raw::{
    DirEntry, DirHeader, FileInode, Inode, InodeData, InodeKind, NO_FRAGMENT, NO_XATTR,
    parse_directory,
};
use proptest::prelude::*;

proptest! {
    #[test]
    fn file_inodes_round_trip(
        extended: bool,
        size in 0u64..10_000_000,
        start in 96u64..u64::from(u32::MAX),
        frag: bool,
        mode in 0u16..0o7777,
        mtime: u32,
        nlink in 1u32..100,
    ) {
        let fragment = if frag { 3 } else { NO_FRAGMENT };
        let n = if frag { size / 131_072 } else { size.div_ceil(131_072) };
        let inode = Inode {
            kind: InodeKind::File,
            extended,
            mode,
            uid_idx: 0,
            gid_idx: 1,
            mtime,
            inode_number: 5,
            nlink: if extended { nlink } else { 1 },
            xattr: if extended { 9 } else { NO_XATTR },
            data: InodeData::File(FileInode {
                blocks_start: start,
                file_size: size,
                sparse: 0,
                fragment,
                frag_offset: if frag { 17 } else { 0 },
                block_sizes: (0..n).map(|i| (i as u32 * 7919) % 131_072).collect(),
            }),
        };
        let mut b = Vec::new();
        inode.write_to(&mut b).unwrap();
        let (back, used) = Inode::parse(&b, 0, 17, 1 << 20).unwrap();
        prop_assert_eq!(back, inode);
        prop_assert_eq!(used, b.len());
    }

    #[test]
    fn listings_round_trip(names in proptest::collection::btree_set("[a-zA-Z0-9._-]{1,40}", 1..200)) {
        let names: Vec<String> = names.into_iter().filter(|n| n != "." && n != "..").collect();
        prop_assume!(!names.is_empty());
        let entries: Vec<DirEntry> = names
            .iter()
            .enumerate()
            .map(|(i, n)| DirEntry {
                name: n.as_bytes().to_vec(),
                start: 0,
                offset: (i * 40) as u16,
                inode_number: 1000 + i as u32,
                kind: InodeKind::File,
            })
            .collect();
        let mut b = Vec::new();
        DirHeader { count: entries.len() as u32 - 1, start: 0, inode_number: 1000 }.write_to(&mut b);
        for e in &entries {
            e.write_to(1000, &mut b).unwrap();
        }
        prop_assert_eq!(parse_directory(&b, 0).unwrap(), entries);
    }
}
