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
/// inline tails, chunk maps, compressed files with their indexes, fragments and pclusters,
/// xattrs inline and shared, long prefixes, symlinks), through the reader's own API and
/// through [`FsRead`]; extents lie inside the image.
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
    // Content read per input, so one execution stays short whatever the sizes claim.
    let mut budget: u64 = 64 << 20;
    for e in &entries {
        let _ = r.xattrs(&e.inode);
        match e.inode.kind {
            InodeKind::File if e.inode.size < 1 << 24 && e.inode.size <= budget => {
                budget -= e.inode.size;
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

/// `erofs_extract`: extracts any bytes as an EROFS image (tight limits) into `sandbox` with
/// the shared extractor, compressed layouts included; panics when anything lands outside
/// its destination. Returns whether the extraction succeeded.
pub fn erofs_extract(data: &[u8], sandbox: &std::path::Path) -> bool {
    let limits = Limits {
        max_entries: 10_000,
        max_file_blocks: 1 << 16,
        ..Limits::default()
    };
    let Ok(r) = ErofsReader::open_at(Bytes(data.to_vec()), 0, limits) else {
        return false;
    };
    imgpipe_fstree::extract_in_sandbox(&r, sandbox).is_ok()
}

/// `erofs_zmap`: the compressed-inode map structures from raw bytes (the first byte picks):
/// map header and full index (parse, encode, parse again: the same), a compact pack decoded
/// slot by slot (heads inside their lcluster), compact encoding of arbitrary full indexes
/// (the length its layout says, every slot decodes or fails cleanly), compression config
/// records (parse, encode, parse again: the same).
pub fn erofs_zmap(data: &[u8]) -> bool {
    use crate::erofs::raw::{
        CompactLayout, CompressionConfig, LclusterIndex, MapHeader, decode_compact, encode_compact,
    };
    let Some((&sel, rest)) = data.split_first() else {
        return false;
    };
    match sel % 4 {
        0 => {
            let Ok(h) = MapHeader::parse(rest, 0) else {
                return false;
            };
            assert_eq!(MapHeader::parse(&h.to_bytes(), 0).unwrap(), h);
            if let Some(off) = h.whole_file_fragment() {
                let again = MapHeader::for_whole_file_fragment(off);
                assert_eq!(again.whole_file_fragment(), Some(off));
            }
            let Ok(x) = LclusterIndex::parse(rest.get(8..).unwrap_or_default(), 0) else {
                return true;
            };
            assert_eq!(LclusterIndex::parse(&x.to_bytes(), 0).unwrap(), x);
            let bits = 9 + u32::from(sel >> 2) % 12;
            if let Ok(l) = x.decode(bits, sel & 0x80 != 0, 0)
                && l.is_head()
            {
                assert!(u32::from(l.clusterofs) < 1 << bits);
            }
            true
        }
        1 => {
            let Some((&cfg, pack)) = rest.split_first() else {
                return false;
            };
            let bits = 9 + u32::from(cfg % 8);
            let len = if cfg & 0x40 != 0 { 32 } else { 8 };
            let Some(pack) = pack.get(..len) else {
                return false;
            };
            let mut ok = false;
            for slot in 0..len / 2 {
                if let Ok(l) = decode_compact(pack, slot, bits, cfg & 0x80 != 0, 0) {
                    ok = true;
                    if l.is_head() {
                        assert!(u32::from(l.clusterofs) < 1 << bits);
                    }
                }
            }
            ok
        }
        2 => {
            let Some((&cfg, body)) = rest.split_first() else {
                return false;
            };
            let full: Vec<LclusterIndex> = body
                .chunks_exact(8)
                .take(256)
                .filter_map(|c| LclusterIndex::parse(c, 0).ok())
                .collect();
            let two = cfg & 1 != 0;
            let big = cfg & 2 != 0;
            let ebase = 8 * u64::from(cfg >> 2);
            let Ok(enc) = encode_compact(&full, ebase, 12, two, big, 1000) else {
                return false;
            };
            let layout = CompactLayout::new(ebase, full.len() as u64, two);
            assert_eq!(enc.len() as u64, layout.encoded_len());
            for lcn in 0..full.len() as u64 {
                let s = layout.locate(lcn).unwrap();
                let off = (s.pack - ebase) as usize;
                let pack = enc.get(off..off + s.pack_len).unwrap();
                let _ = decode_compact(pack, s.slot, 12, big, s.pack);
            }
            true
        }
        _ => {
            let Some((algs, body)) = rest.split_at_checked(2) else {
                return false;
            };
            let algs = u16::from_le_bytes([algs[0], algs[1]]);
            let Ok(cfgs) = CompressionConfig::parse_all(body, algs, 0) else {
                return false;
            };
            let enc = CompressionConfig::encode_all(&cfgs);
            let mask = cfgs.iter().fold(0u16, |m, c| m | 1 << c.algorithm());
            assert_eq!(CompressionConfig::parse_all(&enc, mask, 0).unwrap(), cfgs);
            true
        }
    }
}

/// `erofs_decompress`: every EROFS pcluster decoder on hostile input (the first byte picks
/// the codec and zero padding, the next two the output length, the fourth the extent's
/// offset for interlaced pclusters); what decodes has exactly the length asked for.
pub fn erofs_decompress(data: &[u8]) -> bool {
    use crate::erofs::decompress::{Codec, DecodeParams, decode_pcluster};
    let Some((head, src)) = data.split_at_checked(4) else {
        return false;
    };
    let codec = match (head[0] & 0x7f) % 6 {
        k @ 0..=3 => Codec::Compressed(k),
        4 => Codec::Shifted,
        _ => Codec::Interlaced,
    };
    let out_len = usize::from(u16::from_le_bytes([head[1], head[2]]));
    let p = DecodeParams {
        zero_padding: head[0] & 0x80 != 0,
        blksz: 4096,
        la: u64::from(head[3]) * 97,
    };
    let Ok(out) = decode_pcluster(codec, src, out_len, p, 0) else {
        return false;
    };
    assert_eq!(out.len(), out_len);
    true
}
