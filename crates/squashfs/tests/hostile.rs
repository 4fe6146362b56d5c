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
