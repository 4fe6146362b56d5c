//! The bodies of this crate's fuzz targets, written once: the few-line targets in `fuzz/`
//! and the corpus replay in `tests/fuzz_corpus.rs` both call them. Each body never panics on
//! any input except where it asserts an invariant (a round trip, a bound), which is the
//! point of fuzzing it. Each returns what it managed, so a replay can demand that the
//! committed seeds still parse.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use imgpipe_fstree::FsRead;

use crate::erofs::ErofsReader;
use crate::raw::{Inode, InodeData, InodeKind, SuperBlock, parse_directory};
use crate::{Bytes, Compressor, Limits, Reader};

/// What an image target got through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Walked {
    /// Entries walked.
    pub entries: usize,
    /// Regular files whose content was asked for.
    pub files: usize,
    /// Of those, files read completely.
    pub files_read: usize,
}

/// `squashfs_superblock`: what parses re-encodes to the same superblock.
pub fn squashfs_superblock(data: &[u8]) -> bool {
    let Ok(sb) = SuperBlock::parse(data, 0) else {
        return false;
    };
    assert_eq!(SuperBlock::parse(&sb.to_bytes(), 0).ok(), Some(sb));
    true
}

/// `erofs_superblock`: the EROFS summary of any bytes.
pub fn erofs_superblock(data: &[u8]) -> bool {
    crate::inspect_erofs(std::io::Cursor::new(data)).is_ok()
}

/// `squashfs_image`: opens the input as a whole image and walks it (metadata blocks, inode
/// and directory tables, id, fragment, xattr and export tables, data blocks), through the
/// reader's own API and through [`FsRead`]. Nothing may panic, hang or blow up; a file that
/// reads, reads its whole size.
pub fn squashfs_image(data: &[u8]) -> Option<Walked> {
    let limits = Limits {
        max_entries: 10_000,
        max_file_blocks: 4096,
        ..Limits::default()
    };
    let _ = crate::inspect_squashfs(std::io::Cursor::new(data));
    let r = Reader::open_at(Bytes(data.to_vec()), 0, limits).ok()?;
    let entries = r.walk().ok()?;
    let mut w = Walked {
        entries: entries.len(),
        ..Walked::default()
    };
    for e in &entries {
        let _ = r.xattrs(&e.inode);
        let _ = r.owner(&e.inode);
        let _ = r.export_lookup(e.inode.inode_number);
        if let InodeData::File(f) = &e.inode.data
            && e.inode.kind == InodeKind::File
            && f.file_size < 1 << 24
        {
            w.files += 1;
            if let Ok(n) = r.read_file(&e.inode, &mut std::io::sink()) {
                assert_eq!(n, f.file_size);
                w.files_read += 1;
            }
        }
    }
    if let Ok(shared) = FsRead::walk(&r) {
        assert_eq!(shared.len(), entries.len());
        for (e, node) in &shared {
            if let Ok(Some(x)) = r.extents(node) {
                for x in &x {
                    assert!(x.file_offset + x.len <= e.size);
                    assert!(x.image_offset + x.stored_len <= data.len() as u64);
                }
            }
        }
    }
    Some(w)
}

/// `squashfs_inode`: one inode from raw bytes; what parses re-encodes to bytes that parse to
/// the same inode.
pub fn squashfs_inode(data: &[u8]) -> bool {
    let Ok((inode, _)) = Inode::parse(data, 0, 17, 1 << 16) else {
        return false;
    };
    let mut b = Vec::new();
    if inode.write_to(&mut b).is_ok() {
        let (again, used) = Inode::parse(&b, 0, 17, 1 << 16).unwrap();
        assert_eq!(again, inode);
        assert_eq!(used, b.len());
    }
    true
}

/// `squashfs_directory`: a directory listing from raw bytes (headers, entries, name checks);
/// what parses is strictly sorted.
pub fn squashfs_directory(data: &[u8]) -> bool {
    let Ok(entries) = parse_directory(data, 0) else {
        return false;
    };
    assert!(entries.windows(2).all(|w| w[0].name < w[1].name));
    true
}

/// `squashfs_decompress`: every decompressor on hostile input (the first byte picks it),
/// output capped at 8 KiB.
pub fn squashfs_decompress(data: &[u8]) -> bool {
    let Some((&sel, src)) = data.split_first() else {
        return false;
    };
    let c = Compressor::from_id(u16::from(sel % 6) + 1).unwrap();
    let Ok(out) = crate::decompress_block(c, src, 8192) else {
        return false;
    };
    assert!(out.len() <= 8192);
    true
}

/// `erofs_image`: opens the input as an EROFS image and walks it (inodes, directory blocks,
/// inline tails, chunk maps, xattrs inline and shared, symlinks), through the reader's own
/// API and through [`FsRead`]; uncompressed extents lie inside the image.
pub fn erofs_image(data: &[u8]) -> Option<Walked> {
    let limits = Limits {
        max_entries: 10_000,
        ..Limits::default()
    };
    let r = ErofsReader::open_at(Bytes(data.to_vec()), 0, limits).ok()?;
    let entries = r.walk().ok()?;
    let mut w = Walked {
        entries: entries.len(),
        ..Walked::default()
    };
    for e in &entries {
        let _ = r.xattrs(&e.inode);
        match e.inode.kind {
            InodeKind::File if e.inode.size < 1 << 24 => {
                w.files += 1;
                if let Ok(n) = r.read_file(&e.inode, &mut std::io::sink()) {
                    assert_eq!(n, e.inode.size);
                    w.files_read += 1;
                }
            }
            InodeKind::Symlink => {
                let _ = r.read_link(&e.inode);
            }
            _ => {}
        }
    }
    if let Ok(shared) = FsRead::walk(&r) {
        assert_eq!(shared.len(), entries.len());
        for (e, node) in &shared {
            if let Ok(Some(x)) = r.extents(node) {
                for x in &x {
                    assert!(x.file_offset + x.len <= e.size);
                    assert!(x.image_offset + x.stored_len <= data.len() as u64);
                }
            }
        }
    }
    Some(w)
}

/// `squashfs_extract`: extracts any bytes as a squashfs image (tight limits) into `sandbox`
/// with the shared extractor; panics when anything lands outside its destination. Returns
/// whether the extraction succeeded.
pub fn squashfs_extract(data: &[u8], sandbox: &std::path::Path) -> bool {
    let limits = Limits {
        max_entries: 10_000,
        max_file_blocks: 1 << 16,
        ..Limits::default()
    };
    let Ok(r) = Reader::open_at(Bytes(data.to_vec()), 0, limits) else {
        return false;
    };
    imgpipe_fstree::extract_in_sandbox(&r, sandbox).is_ok()
}
