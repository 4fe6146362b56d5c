//! Writer options read back through our reader: all-root, mtime clamping, dedup that compares
//! bytes, fragments and tail ends, sparse blocks, every inode form, option validation.

use std::io::Cursor;

use imgpipe_squashfs::raw::{InodeData, InodeKind, NO_FRAGMENT, flags};
use imgpipe_squashfs::{
    Builder, Bytes, Compression, Compressor, EntryMeta, Error, Reader, WriteOptions,
};

fn build(
    opts: WriteOptions,
    f: impl FnOnce(&mut Builder),
) -> (Reader, imgpipe_squashfs::BuildReport) {
    let mut b = Builder::new(opts).unwrap();
    f(&mut b);
    let mut out = Cursor::new(Vec::new());
    let rep = b.build(&mut out).unwrap();
    let img = out.into_inner();
    assert_eq!(img.len() as u64, rep.image_size);
    assert_eq!(img.len() % 4096, 0);
    (Reader::open(Bytes(img)).unwrap(), rep)
}

fn meta(uid: u32, mtime: u32) -> EntryMeta {
    EntryMeta {
        mode: 0o640,
        uid,
        gid: uid + 1,
        mtime,
        xattrs: vec![],
    }
}

#[test]
fn all_root_and_clamped_times() {
    let mut o = WriteOptions::new(1_000);
    o.all_root = true;
    o.clamp_mtime = Some(1_000);
    let (r, _) = build(o, |b| {
        b.add_file("late", meta(500, 5_000), b"x".to_vec()).unwrap();
        b.add_file("early", meta(500, 10), b"y".to_vec()).unwrap();
    });
    let (_, late) = r.lookup(b"late").unwrap();
    let (_, early) = r.lookup(b"early").unwrap();
    assert_eq!(r.owner(&late).unwrap(), (0, 0));
    assert_eq!((late.mtime, early.mtime), (1_000, 10));
    assert_eq!(r.superblock().mod_time, 1_000);
    assert_eq!(r.ids(), &[0]);
}

#[test]
fn dedup_compares_bytes_and_shares_blocks() {
    let a = imgpipe_testsupport::pattern(300_000);
    let mut b2 = a.clone();
    b2[299_999] ^= 1; // same size, different content
    let (r, rep) = build(WriteOptions::new(0), |b| {
        b.add_file("a", meta(1, 0), a.clone()).unwrap();
        b.add_file("b", meta(1, 0), b2.clone()).unwrap();
        b.add_file("c", meta(1, 0), a.clone()).unwrap();
    });
    assert_eq!(rep.duplicates, 1);
    let file = |p: &[u8]| match r.lookup(p).unwrap().1.data {
        InodeData::File(f) => f,
        _ => unreachable!(),
    };
    assert_eq!(file(b"a").blocks_start, file(b"c").blocks_start);
    assert_ne!(file(b"a").blocks_start, file(b"b").blocks_start);
    assert_eq!(r.read_file_to_vec(&r.lookup(b"c").unwrap().1).unwrap(), a);
    assert_eq!(r.read_file_to_vec(&r.lookup(b"b").unwrap().1).unwrap(), b2);
    assert_ne!(r.superblock().flags & flags::DUPLICATES, 0);
}

#[test]
fn fragments_tail_ends_and_sparse() {
    let data = imgpipe_testsupport::pattern(131_072 + 500);
    let mut sparse = vec![0u8; 3 * 131_072];
    sparse[131_072 * 2 + 7] = 9;
    for (fragments, tail_ends) in [(true, true), (true, false), (false, false)] {
        let mut o = WriteOptions::new(0);
        o.fragments = fragments;
        o.tail_ends = tail_ends;
        o.compression = Compression::new(Compressor::Lz4);
        let (r, _) = build(o, |b| {
            b.add_file("big", meta(0, 0), data.clone()).unwrap();
            b.add_file("small", meta(0, 0), b"small".to_vec()).unwrap();
            b.add_file("sparse", meta(0, 0), sparse.clone()).unwrap();
            b.add_file("empty", meta(0, 0), Vec::new()).unwrap();
        });
        let (_, big) = r.lookup(b"big").unwrap();
        let (_, small) = r.lookup(b"small").unwrap();
        let (_, sp) = r.lookup(b"sparse").unwrap();
        let frag = |i: &imgpipe_squashfs::raw::Inode| match &i.data {
            InodeData::File(f) => f.fragment,
            _ => unreachable!(),
        };
        assert_eq!(
            frag(&big) != NO_FRAGMENT,
            tail_ends,
            "{fragments} {tail_ends}"
        );
        assert_eq!(frag(&small) != NO_FRAGMENT, fragments);
        match &sp.data {
            InodeData::File(f) => {
                assert_eq!(f.sparse, 2 * 131_072);
                assert_eq!(&f.block_sizes[..2], &[0, 0]);
                assert!(sp.extended);
            }
            _ => unreachable!(),
        }
        assert_eq!(r.read_file_to_vec(&big).unwrap(), data);
        assert_eq!(r.read_file_to_vec(&small).unwrap(), b"small");
        assert_eq!(r.read_file_to_vec(&sp).unwrap(), sparse);
        assert!(
            r.read_file_to_vec(&r.lookup(b"empty").unwrap().1)
                .unwrap()
                .is_empty()
        );
    }
}

#[test]
fn every_kind_with_and_without_xattrs() {
    let (r, rep) = build(WriteOptions::new(7), |b| {
        let mut x = meta(3, 7);
        x.xattrs = vec![(
            b"security.selinux".to_vec(),
            b"system_u:object_r:bin_t:s0\0".to_vec(),
        )];
        b.add_dir("d", x.clone()).unwrap();
        b.add_device("d/null", meta(0, 7), InodeKind::CharDev, 1, 3)
            .unwrap();
        b.add_device("d/loop", x.clone(), InodeKind::BlockDev, 7, 300)
            .unwrap();
        b.add_special("d/fifo", meta(0, 7), InodeKind::Fifo)
            .unwrap();
        b.add_special("d/sock", x.clone(), InodeKind::Socket)
            .unwrap();
        b.add_symlink("d/ln", x.clone(), "null").unwrap();
        b.add_file("d/f", x, b"content".to_vec()).unwrap();
    });
    assert_eq!(rep.inodes, 8);
    for e in r.walk().unwrap() {
        let has = !r.xattrs(&e.inode).unwrap().is_empty();
        assert_eq!(
            has,
            e.inode.extended,
            "{:?}",
            String::from_utf8_lossy(&e.path)
        );
    }
    let (_, lp) = r.lookup(b"d/loop").unwrap();
    assert_eq!(
        lp.data,
        InodeData::Device(imgpipe_squashfs::raw::encode_dev(7, 300))
    );
    assert_eq!(r.lookup(b"d/sock").unwrap().1.kind, InodeKind::Socket);
}

#[test]
fn bad_options_and_entries_are_errors() {
    let mut o = WriteOptions::new(0);
    o.block_size = 3000;
    assert!(matches!(Builder::new(o), Err(Error::InvalidOption { .. })));
    let mut o = WriteOptions::new(0);
    o.compression = Compression::with_level(Compressor::Zstd, Some(30));
    assert!(Builder::new(o).is_err());
    // Options of another compressor, or filter bits squashfs-tools does not know.
    for (comp, bcj, hc) in [
        (Compressor::Gzip, imgpipe_squashfs::bcj::X86, false),
        (Compressor::Xz, 64, false),
        (Compressor::Xz, 0, true),
    ] {
        let mut o = WriteOptions::new(0);
        o.compression = Compression::new(comp);
        o.compression.xz_bcj = bcj;
        o.compression.lz4_hc = hc;
        assert!(
            matches!(Builder::new(o), Err(Error::InvalidOption { .. })),
            "{comp:?} {bcj} {hc}"
        );
    }
    let mut b = Builder::new(WriteOptions::new(0)).unwrap();
    assert!(b.add_file("missing/parent", meta(0, 0), vec![]).is_err());
    assert!(b.add_file("..", meta(0, 0), vec![]).is_err());
    b.add_file("f", meta(0, 0), vec![]).unwrap();
    assert!(b.add_file("f", meta(0, 0), vec![]).is_err());
    assert!(b.add_file("f/under-a-file", meta(0, 0), vec![]).is_err());
    let mut bad = meta(0, 0);
    bad.xattrs = vec![(b"system.posix_acl_access".to_vec(), vec![1])];
    assert!(b.add_file("g", bad, vec![]).is_err());
}
