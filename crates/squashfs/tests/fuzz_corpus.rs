//! Replays the fuzz corpus and regressions of this crate's targets (see `fuzz/`) with the
//! assertions the targets make, and checks that the committed seeds are real images.

use imgpipe_squashfs::raw::{Inode, InodeData, SuperBlock, parse_directory};
use imgpipe_squashfs::{Bytes, Compressor, Limits, Reader};
use imgpipe_testsupport::fuzz_inputs;

#[test]
fn squashfs_superblock() {
    let inputs = fuzz_inputs("squashfs_superblock");
    assert!(!inputs.is_empty());
    for (_, data) in inputs {
        if let Ok(sb) = SuperBlock::parse(&data, 0) {
            assert_eq!(SuperBlock::parse(&sb.to_bytes(), 0).ok(), Some(sb));
        }
    }
}

#[test]
fn erofs_superblock() {
    for (_, data) in fuzz_inputs("erofs_superblock") {
        let _ = imgpipe_squashfs::inspect_erofs(std::io::Cursor::new(&data));
    }
}

#[test]
fn squashfs_image() {
    let mut walked = 0;
    for (path, data) in fuzz_inputs("squashfs_image") {
        let _ = imgpipe_squashfs::inspect_squashfs(std::io::Cursor::new(&data));
        let limits = Limits {
            max_entries: 10_000,
            max_file_blocks: 4096,
            ..Limits::default()
        };
        let Ok(r) = Reader::open_at(Bytes(data.clone()), 0, limits) else {
            continue;
        };
        let Ok(entries) = r.walk() else { continue };
        walked += 1;
        for e in entries {
            let _ = r.xattrs(&e.inode);
            let _ = r.export_lookup(e.inode.inode_number);
            if let InodeData::File(f) = &e.inode.data
                && f.file_size < 1 << 24
            {
                let n = r.read_file(&e.inode, &mut std::io::sink());
                if path.starts_with(imgpipe_testsupport::workspace_root().join("fuzz/corpus")) {
                    assert_eq!(n.unwrap(), f.file_size, "{}", path.display());
                }
            }
        }
    }
    assert!(walked >= 6, "the seed images no longer read");
}

#[test]
fn squashfs_inode() {
    let mut parsed = 0;
    for (_, data) in fuzz_inputs("squashfs_inode") {
        if let Ok((inode, _)) = Inode::parse(&data, 0, 17, 1 << 16) {
            parsed += 1;
            let mut b = Vec::new();
            if inode.write_to(&mut b).is_ok() {
                let (again, used) = Inode::parse(&b, 0, 17, 1 << 16).unwrap();
                assert_eq!(again, inode);
                assert_eq!(used, b.len());
            }
        }
    }
    assert!(parsed >= 1);
}

#[test]
fn squashfs_directory() {
    let inputs = fuzz_inputs("squashfs_directory");
    assert!(!inputs.is_empty());
    for (_, data) in inputs {
        if let Ok(entries) = parse_directory(&data, 0) {
            assert!(entries.windows(2).all(|w| w[0].name < w[1].name));
        }
    }
}

#[test]
fn squashfs_decompress() {
    let mut ok = 0;
    for (_, data) in fuzz_inputs("squashfs_decompress") {
        let Some((&sel, src)) = data.split_first() else {
            continue;
        };
        let c = Compressor::from_id(u16::from(sel % 6) + 1).unwrap();
        if let Ok(out) = imgpipe_squashfs::decompress_block(c, src, 8192) {
            assert!(out.len() <= 8192);
            ok += 1;
        }
    }
    assert!(ok >= 6, "every compressor's seed decompresses");
}

#[test]
fn erofs_image() {
    use imgpipe_squashfs::erofs::ErofsReader;
    use imgpipe_squashfs::raw::InodeKind;
    let mut walked = 0;
    for (_, data) in fuzz_inputs("erofs_image") {
        let limits = Limits {
            max_entries: 10_000,
            ..Limits::default()
        };
        let Ok(r) = ErofsReader::open_at(Bytes(data.clone()), 0, limits) else {
            continue;
        };
        let Ok(entries) = r.walk() else { continue };
        walked += 1;
        for e in entries {
            let _ = r.xattrs(&e.inode);
            match e.inode.kind {
                InodeKind::File if e.inode.size < 1 << 24 => {
                    let _ = r.read_file(&e.inode, &mut std::io::sink());
                }
                InodeKind::Symlink => {
                    let _ = r.read_link(&e.inode);
                }
                _ => {}
            }
        }
    }
    // The committed seeds are real mkfs.erofs images (default, extended inodes without
    // inline data, chunk based).
    assert!(walked >= 3, "{walked}");
}
