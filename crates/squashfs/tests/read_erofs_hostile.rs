//! Hostile EROFS images, crafted from real ones: directories made of holes or sized past the
//! image stop at once (issue 16), holes stay holes when extracting, and crafted compressed
//! indexes (a pcluster past the end, NONHEAD chains, a pcluster claiming more output than it
//! holds, a packed inode that is itself fragmented) give clean errors naming the structure,
//! never a panic, a loop or an unbounded allocation.

// The clock measures the bound these tests assert (wall time, with wide margins); no output
// depends on it.
#![allow(clippy::disallowed_methods)]

use std::ffi::OsStr;
use std::path::Path;
use std::time::{Duration, Instant};

use imgpipe_fstree::FsRead;
use imgpipe_squashfs::erofs::raw::{
    ADVISE_COMPACTED_2B, LCLUSTER_TYPE_NONHEAD, LCLUSTER_TYPE_PLAIN, LclusterIndex, MapHeader,
    full_index_offset, map_header_offset,
};
use imgpipe_squashfs::erofs::{ErofsInode, ErofsReader};
use imgpipe_squashfs::{Bytes, Limits};
use imgpipe_testsupport::{erofs_utils, run, tempdir};

fn mkfs(src: &Path, args: &[&str]) -> Option<Vec<u8>> {
    let m = erofs_utils("mkfs.erofs")?;
    let tmp = tempdir();
    let img = tmp.path().join("img");
    let mut a: Vec<&OsStr> = vec![OsStr::new("--quiet"), OsStr::new("-T0")];
    a.extend(args.iter().map(OsStr::new));
    a.extend([img.as_os_str(), src.as_os_str()]);
    run(m, a);
    Some(std::fs::read(img).unwrap())
}

fn open(b: &[u8]) -> ErofsReader {
    ErofsReader::open_at(Bytes(b.to_vec()), 0, Limits::default()).unwrap()
}

fn node(r: &ErofsReader, path: &str) -> ErofsInode {
    r.walk()
        .unwrap()
        .into_iter()
        .find(|e| e.path == path.as_bytes())
        .unwrap()
        .inode
}

fn put(b: &mut [u8], at: usize, v: &[u8]) {
    b[at..at + v.len()].copy_from_slice(v);
}

/// Where the inline part after an inode without xattrs starts.
fn inline_at(i: &ErofsInode) -> usize {
    i.position() as usize + if i.extended { 64 } else { 32 }
}

/// An extended root directory turned chunk based, 64 GiB of 4 GiB NULL chunks: the walk
/// fails on the first chunk instead of producing zeros.
#[test]
fn a_directory_of_null_chunks_stops_at_once() {
    let tmp = tempdir();
    std::fs::write(tmp.path().join("f"), "x").unwrap();
    let Some(mut b) = mkfs(tmp.path(), &["-Eforce-inode-extended"]) else {
        return;
    };
    let root = open(&b).root().unwrap();
    assert!(root.extended);
    let at = root.position() as usize;
    put(&mut b, at, &(1u16 | 4 << 1).to_le_bytes());
    put(&mut b, at + 8, &(64u64 << 30).to_le_bytes());
    put(&mut b, at + 16, &20u32.to_le_bytes());
    let table = inline_at(&root).next_multiple_of(4);
    for k in 0..16 {
        put(&mut b, table + 4 * k, &u32::MAX.to_le_bytes());
    }
    let r = open(&b);
    let t = Instant::now();
    let err = r.walk().unwrap_err().to_string();
    assert!(err.contains("EROFS") && err.contains("offset"), "{err}");
    assert!(FsRead::walk(&r).is_err());
    let dest = tempdir();
    assert!(
        r.extract(
            &dest.path().join("x"),
            imgpipe_squashfs::ExtractOptions::default()
        )
        .is_err()
    );
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    // Within the image's size, NULL chunks of 4 KiB: the first one stops the read.
    let size = (b.len() as u64 / 4096) * 4096;
    put(&mut b, at + 8, &size.to_le_bytes());
    put(&mut b, at + 16, &0u32.to_le_bytes());
    let err = open(&b).walk().unwrap_err().to_string();
    assert!(err.contains("a directory chunk is a hole"), "{err}");
}

/// A flat directory whose size runs far past the image fails before reading a block.
#[test]
fn a_directory_sized_past_the_image_stops_at_once() {
    let tmp = tempdir();
    std::fs::write(tmp.path().join("f"), "x").unwrap();
    let Some(mut b) = mkfs(tmp.path(), &["-Eforce-inode-extended"]) else {
        return;
    };
    let root = open(&b).root().unwrap();
    let at = root.position() as usize;
    put(&mut b, at, &1u16.to_le_bytes());
    put(&mut b, at + 8, &(64u64 << 30).to_le_bytes());
    let t = Instant::now();
    let err = open(&b).walk().unwrap_err().to_string();
    assert!(err.contains("directory larger than the image"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(1));
}

/// A chunk-based file of 16 GiB whose middle chunks are NULL: its extents leave the holes
/// out, and extraction keeps them holes, in time proportional to the stored bytes (the
/// file takes a few MiB of disk, the zeros are never produced).
#[test]
fn holes_stay_holes() {
    const SIZE: u64 = 16 << 30;
    const CHUNKS: usize = (SIZE >> 20) as usize;
    let tmp = tempdir();
    let f = std::fs::File::create(tmp.path().join("hole")).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(b"start", 0).unwrap();
    f.write_all_at(b"end", SIZE - 3).unwrap();
    drop(f);
    let Some(mut b) = mkfs(tmp.path(), &["--chunksize=1048576"]) else {
        return;
    };
    let i = node(&open(&b), "hole");
    assert_eq!(i.layout, 4);
    let u = u32::from_le_bytes(b[i.position() as usize + 16..][..4].try_into().unwrap());
    let unit = if u & 0x20 != 0 { 8 } else { 4 };
    let table = inline_at(&i).next_multiple_of(unit);
    for k in 1..CHUNKS - 1 {
        let at = table + unit * k + if unit == 8 { 4 } else { 0 };
        put(&mut b, at, &u32::MAX.to_le_bytes());
    }
    let r = open(&b);
    let (e, n) = FsRead::walk(&r)
        .unwrap()
        .into_iter()
        .find(|(e, _)| e.path == b"hole")
        .unwrap();
    let x = r.extents(&n).unwrap().unwrap();
    assert_eq!(x.len(), 2, "{x:?}");
    assert_eq!(x[1].file_offset, SIZE - (1 << 20));
    let dest = tempdir();
    let t = Instant::now();
    r.extract(
        &dest.path().join("x"),
        imgpipe_squashfs::ExtractOptions::default(),
    )
    .unwrap();
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(dest.path().join("x/hole")).unwrap();
    assert_eq!(m.len(), e.size);
    assert!(m.blocks() * 512 <= 4 << 20, "{} blocks", m.blocks());
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let got = std::fs::File::open(dest.path().join("x/hole")).unwrap();
    let mut head = [0u8; 5];
    got.read_exact_at(&mut head, 0).unwrap();
    assert_eq!(&head, b"start");
    got.read_exact_at(&mut head[..3], SIZE - 3).unwrap();
    assert_eq!(&head[..3], b"end");
}

/// A small image with full (8-byte) indexes, so single indexes can be rewritten.
fn legacy(extra: &str) -> Option<(Vec<u8>, ErofsInode)> {
    let tmp = tempdir();
    let text: String = (0..40_000).map(|k| format!("line {k}\n")).collect();
    std::fs::write(tmp.path().join("text"), text).unwrap();
    let b = mkfs(
        tmp.path(),
        &["-zlz4hc", &format!("-Elegacy-compress{extra}")],
    )?;
    let i = node(&open(&b), "text");
    assert_eq!(i.layout, 1, "full indexes");
    Some((b, i))
}

fn index_at(i: &ErofsInode, lcn: usize) -> usize {
    full_index_offset(inline_at(i) as u64) as usize + 8 * lcn
}

fn read_err(b: &[u8], path: &str) -> String {
    let r = open(b);
    let i = node(&r, path);
    let t = Instant::now();
    let e = r
        .read_file(&i, &mut std::io::sink())
        .unwrap_err()
        .to_string();
    assert!(t.elapsed() < Duration::from_secs(2), "{e}");
    assert!(e.contains("offset"), "{e}");
    e
}

#[test]
fn a_pcluster_past_the_end() {
    let Some((mut b, i)) = legacy("") else { return };
    let at = index_at(&i, 0);
    let head = LclusterIndex::parse(&b[at..], 0).unwrap();
    let bad = LclusterIndex {
        u: 0x00ff_ffff,
        ..head
    };
    put(&mut b, at, &bad.to_bytes());
    let e = read_err(&b, "text");
    assert!(e.contains("EROFS pcluster"), "{e}");
}

#[test]
fn nonhead_chains_are_bounded() {
    // The first lcluster is a NONHEAD: the look-back finds nothing before it.
    let Some((mut b, i)) = legacy("") else { return };
    put(
        &mut b,
        index_at(&i, 0),
        &LclusterIndex::nonhead(1, 1).to_bytes(),
    );
    let e = read_err(&b, "text");
    assert!(e.contains("look-back"), "{e}");
    // Every lcluster after the first a NONHEAD pointing one back, and the tail inline: the
    // tail's head is 70 steps away, further than any valid image needs.
    let Some((mut b, i)) = legacy(",ztailpacking") else {
        return;
    };
    let n = i.size.div_ceil(4096) as usize;
    assert!(n > 70, "{n}");
    for k in 1..n {
        put(
            &mut b,
            index_at(&i, k),
            &LclusterIndex::nonhead(1, 1).to_bytes(),
        );
    }
    let e = read_err(&b, "text");
    assert!(e.contains("NONHEAD chain") || e.contains("longer"), "{e}");
    // A distance of zero where the tail's look-back passes.
    let Some((mut b, i)) = legacy(",ztailpacking") else {
        return;
    };
    let last = (i.size.div_ceil(4096) - 1) as usize;
    put(
        &mut b,
        index_at(&i, last),
        &LclusterIndex::nonhead(0, 0).to_bytes(),
    );
    let e = read_err(&b, "text");
    assert!(e.contains("look-back"), "{e}");
}

#[test]
fn a_pcluster_claiming_more_output_than_it_holds() {
    let Some((mut b, i)) = legacy("") else { return };
    // Move the second extent's head 3000 bytes later: the first extent then claims 3000
    // bytes its pcluster does not hold.
    let n = i.size.div_ceil(4096) as usize;
    let second = (1..n)
        .find(|&k| {
            let x = LclusterIndex::parse(&b[index_at(&i, k)..], 0).unwrap();
            x.kind() != LCLUSTER_TYPE_NONHEAD
        })
        .unwrap();
    let at = index_at(&i, second);
    let mut x = LclusterIndex::parse(&b[at..], 0).unwrap();
    x.clusterofs = (x.clusterofs + 3000) % 4096;
    if x.clusterofs < 3000 {
        // Wrapped: move the head one lcluster on instead.
        let next = index_at(&i, second + 1);
        put(&mut b, next, &x.to_bytes());
        put(&mut b, at, &LclusterIndex::nonhead(1, 1).to_bytes());
    } else {
        put(&mut b, at, &x.to_bytes());
    }
    let e = read_err(&b, "text");
    assert!(e.contains("decompress") || e.contains("pcluster"), "{e}");
}

/// An inline (ztailpacking) tail made to claim 13 MiB of content (512 KiB lclusters, every
/// one after the first a NONHEAD of it): an inline tail is a pcluster like any other, refused
/// past `Z_EROFS_PCLUSTER_MAX_DSIZE` (as erofs-utils does) before a buffer is sized by the
/// claim. Only a fragment tail, streamed from the packed inode, may be longer.
#[test]
fn an_inline_tail_longer_than_a_pcluster_decodes_is_refused() {
    let Some((mut b, i)) = legacy(",ztailpacking") else {
        return;
    };
    let h = map_header_offset(inline_at(&i) as u64) as usize;
    let mut header = MapHeader::parse(&b[h..], 0).unwrap();
    assert_ne!(header.idata_size(), 0, "an inline tail");
    header.clusterbits = 7;
    put(&mut b, h, &header.to_bytes());
    const SIZE: u64 = 13 << 20;
    let size_at = i.position() as usize + 8;
    if i.extended {
        put(&mut b, size_at, &SIZE.to_le_bytes());
    } else {
        put(&mut b, size_at, &(SIZE as u32).to_le_bytes());
    }
    for k in 1..(SIZE >> 19) as usize {
        put(
            &mut b,
            index_at(&i, k),
            &LclusterIndex::nonhead(k as u16, 1).to_bytes(),
        );
    }
    let e = read_err(&b, "text");
    assert!(e.contains("Z_EROFS_PCLUSTER_MAX_DSIZE"), "{e}");
}

/// The inline tail's head turned PLAIN: its few compressed bytes, read as they are, are
/// shorter than the tail extent. Reading fails, and so does listing the file's extents,
/// which would otherwise name stored bytes past the inline pcluster (found by fuzzing,
/// `fuzz/regressions/erofs_image/inline-plain-tail-longer-than-idata`).
#[test]
fn a_plain_inline_tail_shorter_than_its_extent() {
    let Some((mut b, i)) = legacy(",ztailpacking") else {
        return;
    };
    let n = i.size.div_ceil(4096) as usize;
    let tail = (0..n)
        .rev()
        .find(|&k| {
            let x = LclusterIndex::parse(&b[index_at(&i, k)..], 0).unwrap();
            x.kind() != LCLUSTER_TYPE_NONHEAD
        })
        .unwrap();
    let at = index_at(&i, tail);
    let mut x = LclusterIndex::parse(&b[at..], 0).unwrap();
    x.advise = (x.advise & !3) | u16::from(LCLUSTER_TYPE_PLAIN);
    put(&mut b, at, &x.to_bytes());
    let e = read_err(&b, "text");
    assert!(e.contains("h_idata_size"), "{e}");
    let r = open(&b);
    let e = FsRead::extents(&r, &node(&r, "text"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("h_idata_size") && e.contains("offset"), "{e}");
}

/// The packed inode made to be a file whose content is itself a fragment: reading it (or
/// any file with a fragment) fails cleanly instead of recursing.
#[test]
fn a_fragmented_packed_inode_is_refused() {
    let tmp = tempdir();
    std::fs::write(tmp.path().join("a"), "alpha ".repeat(500)).unwrap();
    std::fs::write(tmp.path().join("b"), "beta ".repeat(700)).unwrap();
    let Some(mut b) = mkfs(tmp.path(), &["-zlz4hc", "-Eall-fragments"]) else {
        return;
    };
    let r = open(&b);
    assert_ne!(r.superblock().packed_nid, 0);
    let a = node(&r, "a");
    let mut body = Vec::new();
    r.read_file(&a, &mut body).unwrap();
    assert_eq!(body, "alpha ".repeat(500).as_bytes());
    put(&mut b, 1024 + 96, &a.nid.to_le_bytes());
    let e = read_err(&b, "a");
    assert!(e.contains("fragment"), "{e}");
    let e = read_err(&b, "b");
    assert!(e.contains("fragment"), "{e}");
}

/// A compressed file claiming a size of 1 TiB in a small image fails at once on the file
/// size limit (and its extents too), before any index is read or buffer allocated; an
/// unknown incompatible feature bit is refused at open.
#[test]
fn claimed_sizes_and_unknown_features() {
    let Some((mut b, i)) = legacy("") else { return };
    let at = i.position() as usize + 8;
    if i.extended {
        put(&mut b, at, &(1u64 << 40).to_le_bytes());
    } else {
        put(&mut b, at, &u32::MAX.to_le_bytes());
    }
    let r = open(&b);
    let f = node(&r, "text");
    let e = r
        .read_file(&f, &mut std::io::sink())
        .unwrap_err()
        .to_string();
    if i.extended {
        assert!(e.contains("limit"), "{e}");
    }
    let (_, n) = FsRead::walk(&r)
        .unwrap()
        .into_iter()
        .find(|(e, _)| e.path == b"text")
        .unwrap();
    assert!(r.extents(&n).is_err());
    let mut b2 = b.clone();
    let fi = u32::from_le_bytes(b2[1024 + 80..1024 + 84].try_into().unwrap());
    put(&mut b2, 1024 + 80, &(fi | 0x80).to_le_bytes());
    let e = ErofsReader::open_at(Bytes(b2), 0, Limits::default()).unwrap_err();
    assert!(e.to_string().contains("unsupported"), "{e}");
}

/// Two-byte compact index slots hold 12-bit cluster offsets: with `h_clusterbits` saying
/// 8 KiB logical clusters, a file whose indexes have a two-byte pack is refused (the kernel
/// and fsck.erofs refuse it too) with the reason, where its slots used to be decoded with
/// the wrong widths and failed later on a "bogus look-back distance".
#[test]
fn two_byte_compact_indexes_over_larger_lclusters_are_refused() {
    let tmp = tempdir();
    let text: String = (0..40_000).map(|k| format!("line {k}\n")).collect();
    std::fs::write(tmp.path().join("text"), text).unwrap();
    let Some(mut b) = mkfs(tmp.path(), &["-zlz4hc"]) else {
        return;
    };
    let i = node(&open(&b), "text");
    assert_eq!(i.layout, 3, "compact indexes");
    let h = map_header_offset(inline_at(&i) as u64) as usize;
    let mut header = MapHeader::parse(&b[h..], 0).unwrap();
    assert_ne!(header.advise & ADVISE_COMPACTED_2B, 0);
    header.clusterbits += 1;
    put(&mut b, h, &header.to_bytes());
    let e = read_err(&b, "text");
    assert!(e.contains("two-byte compact indexes"), "{e}");
}
