//! Bad input: every truncated prefix and many corruptions of real images fail cleanly;
//! crafted names, link escapes, directory loops and clobbering are refused.

use std::io::Cursor;

use imgpipe_squashfs::raw::InodeData;
use imgpipe_squashfs::{
    Builder, Bytes, Compression, Compressor, EntryMeta, Error, ExtractOptions, Reader, WriteOptions,
};
use imgpipe_testsupport::tempdir;

fn meta(mode: u16) -> EntryMeta {
    EntryMeta::new(mode, 1_700_000_000)
}

/// A small image; with `plain` the metadata is stored uncompressed so tests can patch it.
fn sample(plain: bool, comp: Compressor) -> Vec<u8> {
    let mut o = WriteOptions::new(1_700_000_000);
    o.compression = Compression::new(comp);
    o.block_size = 4096;
    o.compress_metadata = !plain;
    let mut b = Builder::new(o).unwrap();
    b.add_dir("aa", meta(0o755)).unwrap();
    b.add_dir("bb", meta(0o755)).unwrap();
    b.add_file("aa/file", meta(0o644), imgpipe_testsupport::pattern(10_000))
        .unwrap();
    b.add_file("small", meta(0o644), b"tiny".to_vec()).unwrap();
    b.add_symlink("ln", meta(0o777), "aa/file").unwrap();
    b.add_hard_link("aa/hard", "small").unwrap();
    let mut e = meta(0o600);
    e.xattrs = vec![(b"user.k".to_vec(), b"v".to_vec())];
    b.add_file("x", e, b"with xattr".to_vec()).unwrap();
    let mut out = Cursor::new(Vec::new());
    b.build(&mut out).unwrap();
    out.into_inner()
}

/// Opens, walks, reads every file and every xattr; returns whether all of it succeeded.
fn exercise(data: Vec<u8>) -> bool {
    let Ok(r) = Reader::open(Bytes(data)) else {
        return false;
    };
    let Ok(entries) = r.walk() else { return false };
    let mut ok = true;
    for e in entries {
        ok &= r.xattrs(&e.inode).is_ok();
        if matches!(e.inode.data, InodeData::File(_)) {
            ok &= r.read_file(&e.inode, &mut std::io::sink()).is_ok();
        }
    }
    ok
}

#[test]
fn every_truncated_prefix_fails_cleanly() {
    for comp in [Compressor::Gzip, Compressor::Zstd] {
        let img = sample(false, comp);
        let used = Reader::open(Bytes(img.clone()))
            .unwrap()
            .superblock()
            .bytes_used as usize;
        assert!(exercise(img.clone()));
        for n in 0..used {
            assert!(
                !exercise(img[..n].to_vec()),
                "{comp:?}: prefix {n} read fine"
            );
        }
    }
}

#[test]
fn corruptions_never_panic() {
    for plain in [false, true] {
        let img = sample(plain, Compressor::Lz4);
        for i in 0..img.len().min(3000) {
            for x in [0xff, 0x80, 0x01] {
                let mut c = img.clone();
                c[i] ^= x;
                let _ = exercise(c);
            }
        }
    }
}

fn patch(img: &mut [u8], from: &[u8], to: &[u8]) {
    let at = img
        .windows(from.len())
        .position(|w| w == from)
        .expect("pattern in image");
    img[at..at + to.len()].copy_from_slice(to);
}

#[test]
fn crafted_names_are_refused() {
    for evil in [&b".."[..], b"a/", b"\0b", b"."] {
        let mut img = sample(true, Compressor::Gzip);
        // Directory entry: type 1 (dir), name_size 1, name "aa" (type and size precede the name).
        let mut from = vec![1, 0, 1, 0];
        from.extend_from_slice(b"aa");
        let mut to = from.clone();
        to[2] = (evil.len() - 1) as u8;
        to.truncate(4);
        to.extend_from_slice(evil);
        to.resize(from.len(), b'z');
        patch(&mut img, &from, &to);
        let r = Reader::open(Bytes(img)).unwrap();
        let err = r.walk().unwrap_err();
        assert!(matches!(err, Error::Malformed { .. }), "{evil:?}: {err}");
        let dest = tempdir();
        assert!(
            r.extract(&dest.path().join("out"), ExtractOptions::default())
                .is_err()
        );
        assert!(!dest.path().join("..").join("aa").exists() || evil != b"..");
    }
}

#[test]
fn directory_loops_are_refused() {
    let mut img = sample(true, Compressor::Gzip);
    // Point the root's entry "bb" at the inode of "aa": a directory reached twice.
    let find = |img: &[u8], name: &[u8]| {
        let mut pat = vec![1, 0, 1, 0];
        pat.extend_from_slice(name);
        img.windows(pat.len()).position(|w| w == pat).unwrap()
    };
    let a = find(&img, b"aa");
    let b = find(&img, b"bb");
    let head: Vec<u8> = img[a - 4..a].to_vec();
    img[b - 4..b].copy_from_slice(&head);
    let r = Reader::open(Bytes(img)).unwrap();
    let err = r.walk().unwrap_err().to_string();
    assert!(err.contains("reached twice"), "{err}");
}

#[test]
fn link_escapes_refused_on_request_and_never_followed() {
    let mut b = Builder::new(WriteOptions::new(0)).unwrap();
    b.add_symlink("up", meta(0o777), "../../../../etc").unwrap();
    b.add_symlink("abs", meta(0o777), "/etc").unwrap();
    let mut out = Cursor::new(Vec::new());
    b.build(&mut out).unwrap();
    let img = out.into_inner();
    let r = Reader::open(Bytes(img)).unwrap();
    let dest = tempdir();
    let mut opts = ExtractOptions::default();
    opts.refuse_link_escapes = true;
    let err = r.extract(&dest.path().join("o"), opts).unwrap_err();
    assert!(matches!(err, Error::Refused { .. }), "{err}");
    // Without the option the links are created as links, pointing wherever they point.
    let rep = r
        .extract(&dest.path().join("p"), ExtractOptions::default())
        .unwrap();
    assert_eq!(rep.symlinks, 2);
    assert_eq!(
        std::fs::read_link(dest.path().join("p/abs")).unwrap(),
        std::path::Path::new("/etc")
    );
}

#[test]
fn existing_symlink_in_destination_is_not_followed() {
    let img = sample(false, Compressor::Gzip);
    let r = Reader::open(Bytes(img)).unwrap();
    let tmp = tempdir();
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let dest = tmp.path().join("dest");
    std::fs::create_dir(&dest).unwrap();
    // The destination already holds `aa` as a symlink to a directory outside.
    std::os::unix::fs::symlink(&outside, dest.join("aa")).unwrap();
    assert!(r.extract(&dest, ExtractOptions::default()).is_err());
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "wrote through the link"
    );
}

#[test]
fn image_at_an_offset_and_through_a_seek_source() {
    let img = sample(false, Compressor::Xz);
    let mut disk = vec![0x5a; 12_345];
    disk.extend_from_slice(&img);
    disk.extend_from_slice(&[0x5a; 999]);
    let r = Reader::open_at(
        imgpipe_squashfs::SeekSource::new(Cursor::new(disk)),
        12_345,
        Default::default(),
    )
    .unwrap();
    let (_, inode) = r.lookup(b"aa/file").unwrap();
    assert_eq!(
        r.read_file_to_vec(&inode).unwrap(),
        imgpipe_testsupport::pattern(10_000)
    );
    let (_, x) = r.lookup(b"x").unwrap();
    assert_eq!(
        r.xattrs(&x).unwrap(),
        vec![(b"user.k".to_vec(), b"v".to_vec())]
    );
    let (_, h) = r.lookup(b"aa/hard").unwrap();
    let (_, s) = r.lookup(b"small").unwrap();
    assert_eq!((h.inode_number, h.nlink), (s.inode_number, 2));
    // The export table maps every inode number back to its inode.
    for e in r.walk().unwrap() {
        assert_eq!(r.export_lookup(e.inode.inode_number).unwrap(), e.inode_ref);
    }
}

/// A sink that fails once `limit` bytes were written.
struct Failing {
    written: u64,
    limit: u64,
}

impl std::io::Write for Failing {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.written + buf.len() as u64 > self.limit {
            return Err(std::io::Error::other("disk full"));
        }
        self.written += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl std::io::Seek for Failing {
    fn seek(&mut self, _: std::io::SeekFrom) -> std::io::Result<u64> {
        Ok(0)
    }
}

#[test]
fn write_errors_surface_without_hanging() {
    for limit in [0, 100, 50_000, 40 << 20] {
        let mut o = WriteOptions::new(0);
        o.compress_data = false;
        let mut b = Builder::new(o).unwrap();
        // Enough data for several reader batches.
        for i in 0..12 {
            b.add_file(format!("f{i}"), meta(0o644), vec![i as u8 + 1; 8 << 20])
                .unwrap();
        }
        let err = b.build(&mut Failing { written: 0, limit }).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{limit}: {err}");
    }
}

// ---- crafted images (issue 16) ----

/// Counts the bytes allocated and not yet freed by the current thread, and the peak, so a
/// test can bound the memory one single-threaded call takes.
mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    pub struct Counting;

    thread_local! {
        static NOW: Cell<isize> = const { Cell::new(0) };
        static PEAK: Cell<isize> = const { Cell::new(0) };
    }

    fn add(n: isize) {
        let _ = NOW.try_with(|now| {
            let v = now.get() + n;
            now.set(v);
            let _ = PEAK.try_with(|p| p.set(p.get().max(v)));
        });
    }

    // SAFETY: forwards to the system allocator; the counters are const-initialised
    // thread-locals without destructors, so counting never allocates.
    #[allow(unsafe_code)]
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            add(l.size() as isize);
            unsafe { System.alloc(l) }
        }
        unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
            add(-(l.size() as isize));
            unsafe { System.dealloc(p, l) }
        }
        unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
            add(n as isize - l.size() as isize);
            unsafe { System.realloc(p, l, n) }
        }
    }

    /// Peak bytes the current thread held while running `f`, above what it held before.
    pub fn peak<T>(f: impl FnOnce() -> T) -> (T, u64) {
        let base = NOW.with(|n| n.get());
        PEAK.with(|p| p.set(base));
        let out = f();
        let peak = PEAK.with(|p| p.get());
        (out, (peak - base).max(0) as u64)
    }
}

#[global_allocator]
static ALLOC: counting::Counting = counting::Counting;

/// Splits an inode or directory stream into zlib-compressed metadata blocks; returns the
/// table and, for each 8 KiB block, its position relative to the table start.
fn metadata_table(stream: &[u8]) -> (Vec<u8>, Vec<u32>) {
    use std::io::Write;
    let mut out = Vec::new();
    let mut starts = Vec::new();
    for chunk in stream.chunks(8192) {
        starts.push(out.len() as u32);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(chunk).unwrap();
        let c = z.finish().unwrap();
        if c.len() < chunk.len() {
            out.extend_from_slice(&(c.len() as u16).to_le_bytes());
            out.extend_from_slice(&c);
        } else {
            out.extend_from_slice(&(chunk.len() as u16 | 0x8000).to_le_bytes());
            out.extend_from_slice(chunk);
        }
    }
    (out, starts)
}

/// One inode of a crafted image: its encoded bytes (without the common header) and header.
struct Raw {
    kind: u16,
    number: u32,
    body: Vec<u8>,
}

/// An extended file inode body: `blocks` size words (each `word`), no fragment.
fn ext_file(start: u64, size: u64, nlink: u32, blocks: u64, word: u32) -> Vec<u8> {
    let mut b = Vec::with_capacity(40 + 4 * blocks as usize);
    b.extend_from_slice(&start.to_le_bytes());
    b.extend_from_slice(&size.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes());
    b.extend_from_slice(&nlink.to_le_bytes());
    b.extend_from_slice(&u32::MAX.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&u32::MAX.to_le_bytes());
    for _ in 0..blocks {
        b.extend_from_slice(&word.to_le_bytes());
    }
    b
}

/// A squashfs image with block size 4 KiB: `data` right after the superblock (at 96), the
/// `inodes` (file inodes) and a root directory listing `names` (name, index into `inodes`).
fn craft(data: &[u8], inodes: &[Raw], names: &[(String, usize)]) -> Vec<u8> {
    let mut stream = Vec::new();
    let mut at = Vec::new();
    for i in inodes {
        at.push(stream.len());
        stream.extend_from_slice(&i.kind.to_le_bytes());
        stream.extend_from_slice(&0o644u16.to_le_bytes());
        stream.extend_from_slice(&[0; 4]);
        stream.extend_from_slice(&1_700_000_000u32.to_le_bytes());
        stream.extend_from_slice(&i.number.to_le_bytes());
        stream.extend_from_slice(&i.body);
    }
    // The root directory's listing: one header per run of entries in one inode block.
    let mut listing = Vec::new();
    let mut k = 0;
    while k < names.len() {
        let blk = at[names[k].1] / 8192;
        let mut run = 1;
        while k + run < names.len() && run < 256 && at[names[k + run].1] / 8192 == blk {
            run += 1;
        }
        listing.extend_from_slice(&(run as u32 - 1).to_le_bytes());
        listing.extend_from_slice(&[0; 4]); // patched below to the block's position
        listing.extend_from_slice(&1u32.to_le_bytes());
        for (name, i) in &names[k..k + run] {
            listing.extend_from_slice(&((at[*i] % 8192) as u16).to_le_bytes());
            listing.extend_from_slice(&((inodes[*i].number as i64 - 1) as i16).to_le_bytes());
            listing.extend_from_slice(&2u16.to_le_bytes());
            listing.extend_from_slice(&(name.len() as u16 - 1).to_le_bytes());
            listing.extend_from_slice(name.as_bytes());
        }
        k += run;
    }
    let root_at = stream.len();
    stream.extend_from_slice(&1u16.to_le_bytes());
    stream.extend_from_slice(&0o755u16.to_le_bytes());
    stream.extend_from_slice(&[0; 4]);
    stream.extend_from_slice(&1_700_000_000u32.to_le_bytes());
    let root_number = inodes.iter().map(|i| i.number).max().unwrap_or(0) + 1;
    stream.extend_from_slice(&root_number.to_le_bytes());
    stream.extend_from_slice(&0u32.to_le_bytes()); // start_block
    stream.extend_from_slice(&2u32.to_le_bytes()); // nlink
    stream.extend_from_slice(&(listing.len() as u16 + 3).to_le_bytes());
    stream.extend_from_slice(&0u16.to_le_bytes()); // offset
    stream.extend_from_slice(&(root_number + 1).to_le_bytes());
    let (itable, starts) = metadata_table(&stream);
    // Patch each header's block position now that the inode table is laid out.
    let mut p = 0;
    let mut k = 0;
    while k < names.len() {
        let run = u32::from_le_bytes(listing[p..p + 4].try_into().unwrap()) as usize + 1;
        let blk = at[names[k].1] / 8192;
        listing[p + 4..p + 8].copy_from_slice(&starts[blk].to_le_bytes());
        p += 12;
        for (name, _) in &names[k..k + run] {
            p += 8 + name.len();
        }
        k += run;
    }
    let (dtable, _) = metadata_table(&listing);
    let inode_table = 96 + data.len() as u64;
    let dir_table = inode_table + itable.len() as u64;
    let id_block = dir_table + dtable.len() as u64;
    let id_index = id_block + 2 + 4;
    let bytes_used = id_index + 8;
    let root_ref = (u64::from(starts[root_at / 8192]) << 16) | (root_at % 8192) as u64;
    let sb = imgpipe_squashfs::raw::SuperBlock {
        inode_count: root_number,
        mod_time: 0,
        block_size: 4096,
        frag_count: 0,
        compressor: Compressor::Gzip,
        block_log: 12,
        flags: 0x0010 | 0x0200,
        id_count: 1,
        version_major: 4,
        version_minor: 0,
        root_inode: root_ref,
        bytes_used,
        id_table: id_index,
        xattr_table: u64::MAX,
        inode_table,
        dir_table,
        frag_table: u64::MAX,
        export_table: u64::MAX,
    };
    let mut img = sb.to_bytes().to_vec();
    img.extend_from_slice(data);
    img.extend_from_slice(&itable);
    img.extend_from_slice(&dtable);
    img.extend_from_slice(&(4u16 | 0x8000).to_le_bytes());
    img.extend_from_slice(&0u32.to_le_bytes());
    img.extend_from_slice(&id_block.to_le_bytes());
    assert_eq!(img.len() as u64, bytes_used);
    img
}

/// One sparse file of `blocks` 4 KiB blocks reached through `names` names.
pub fn many_names_huge_block_list(blocks: u64, names: usize) -> Vec<u8> {
    let file = Raw {
        kind: 9,
        number: 1,
        body: ext_file(96, blocks * 4096, names as u32, blocks, 0),
    };
    let names: Vec<(String, usize)> = (0..names).map(|i| (format!("n{i:05}"), 0)).collect();
    craft(&[], &[file], &names)
}

#[test]
fn an_inode_with_many_names_is_parsed_once() {
    use imgpipe_fstree::FsRead;
    // 300 names of one inode whose block list holds 2^20 words (4 MiB): the old walk kept a
    // copy per name (1.2 GB); now the walk reads no block list and shares the inode.
    let img = many_names_huge_block_list(1 << 20, 300);
    assert!(img.len() < 64 << 10, "image is {} bytes", img.len());
    let r = Reader::open(Bytes(img)).unwrap();
    let (walked, peak) = counting::peak(|| FsRead::walk(&r).unwrap());
    assert_eq!(walked.len(), 301);
    assert!(peak < 16 << 20, "FsRead::walk peaked at {peak} bytes");
    // The public walk reads each block list once, shared by every name.
    let (walked, peak) = counting::peak(|| r.walk().unwrap());
    assert_eq!(walked.len(), 301);
    assert!(peak < 64 << 20, "walk peaked at {peak} bytes");
    // All names are one file: the hard-link identity is the inode's location.
    let links: std::collections::BTreeSet<_> = FsRead::walk(&r)
        .unwrap()
        .iter()
        .skip(1)
        .map(|(e, _)| e.link)
        .collect();
    assert_eq!(links.len(), 1);
}

#[test]
fn an_inode_with_many_names_extracts_once_and_sparse() {
    use std::os::unix::fs::MetadataExt;
    // 16 GiB of sparse blocks behind 200 names: one file, 199 hard links, no data on disk,
    // and no zeros streamed (holes are passed as holes: seconds, not minutes).
    let img = many_names_huge_block_list(1 << 22, 200);
    let r = Reader::open(Bytes(img)).unwrap();
    let dest = tempdir();
    #[allow(clippy::disallowed_methods)] // a time bound, not output
    let t = std::time::Instant::now();
    let rep = r
        .extract(&dest.path().join("out"), ExtractOptions::default())
        .unwrap();
    assert!(t.elapsed().as_secs() < 20, "took {:?}", t.elapsed());
    assert_eq!((rep.files, rep.hard_links), (1, 199));
    let m = std::fs::metadata(dest.path().join("out/n00000")).unwrap();
    assert_eq!((m.len(), m.nlink()), (1 << 34, 200));
    assert!(m.blocks() * 512 < 1 << 20, "{} blocks on disk", m.blocks());
}

#[test]
fn distinct_inodes_sharing_a_number_keep_their_own_content() {
    // Two files with nlink 2 that claim inode number 1, each with its own 5-byte block:
    // matched by number, the second took the first one's content.
    let data = b"firstsecnd";
    let word = 5 | 1 << 24;
    let a = Raw {
        kind: 9,
        number: 1,
        body: ext_file(96, 5, 2, 1, word),
    };
    let b = Raw {
        kind: 9,
        number: 1,
        body: ext_file(101, 5, 2, 1, word),
    };
    let names = vec![("a".to_string(), 0), ("b".to_string(), 1)];
    let img = craft(data, &[a, b], &names);
    let r = Reader::open(Bytes(img)).unwrap();
    let dest = tempdir();
    let out = dest.path().join("out");
    let rep = r.extract(&out, ExtractOptions::default()).unwrap();
    assert_eq!((rep.files, rep.hard_links), (2, 0));
    assert_eq!(std::fs::read(out.join("a")).unwrap(), b"first");
    assert_eq!(std::fs::read(out.join("b")).unwrap(), b"secnd");
}
