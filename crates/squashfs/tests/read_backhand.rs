//! Images written by `backhand` 0.25.5 (the Rust squashfs crate) list exactly as
//! `unsquashfs -lln` lists them and extract to the same tree as `unsquashfs -d`, which is the
//! source tree.
//!
//! backhand cannot represent xattrs (it drops them) nor hard links (it writes separate inodes),
//! so the source tree has neither; everything else it can write is here: regular files (empty,
//! fragment-only, block + tail, exact block multiple, all zeros, duplicated content that it
//! dedups), nested and empty directories, a directory of several hundred entries (more than one
//! directory header), symlinks, a fifo and (as root) a character device, with distinct modes,
//! owners and mtimes.

mod common;

use std::io::Cursor;
use std::path::Path;

use backhand::compression::{CompressionOptions, Compressor, Gzip, Lz4, Zstd};
use backhand::{FilesystemCompressor, FilesystemWriter, NodeHeader};
use imgpipe_squashfs::raw::CompressorOptions;
use imgpipe_squashfs::{ExtractOptions, Reader};
use imgpipe_testsupport::{Compare, diff_trees, is_root, pattern, run, tempdir, tool};

enum Kind {
    Dir,
    File(Vec<u8>),
    Link(&'static str),
    Fifo,
    /// Major 1, minor 3 in both the squashfs and the Linux encoding.
    CharDev,
}

struct Entry {
    path: String,
    kind: Kind,
    mode: u16,
    owner: (u32, u32),
    mtime: u32,
}

fn spec(block: usize) -> Vec<Entry> {
    let root = is_root();
    let me = (
        rustix::process::getuid().as_raw(),
        rustix::process::getgid().as_raw(),
    );
    let other = if root { (1000, 100) } else { me };
    let e = |path: &str, kind: Kind, mode: u16, owner: (u32, u32), mtime: u32| Entry {
        path: path.into(),
        kind,
        mode,
        owner,
        mtime,
    };
    let small = b"a small file that lands in a fragment\n".to_vec();
    let mut v = vec![
        e("a", Kind::Dir, 0o755, me, 1_600_000_000),
        e("a/b", Kind::Dir, 0o750, other, 1_600_000_100),
        e("a/b/c", Kind::Dir, 0o700, me, 1_600_000_200),
        e(
            "a/b/c/deep.txt",
            Kind::File(small.clone()),
            0o644,
            other,
            1_500_000_000,
        ),
        e("a/b/c/dup.txt", Kind::File(small), 0o600, me, 1_500_000_001),
        e("a/empty-dir", Kind::Dir, 0o755, me, 1_234_567_890),
        e("empty", Kind::File(Vec::new()), 0o644, me, 1_000_000_000),
        e(
            "big.bin",
            Kind::File(pattern(3 * block + 1234)),
            0o755,
            other,
            1_700_000_000,
        ),
        e(
            "exact.bin",
            Kind::File(pattern(2 * block)),
            0o644,
            me,
            1_700_000_001,
        ),
        e(
            "zeros.bin",
            Kind::File(vec![0; 2 * block + 7]),
            0o640,
            me,
            1_700_000_002,
        ),
        e(
            "setuid",
            Kind::File(b"#!/bin/sh\n".to_vec()),
            0o4755,
            me,
            1_700_000_003,
        ),
        e(
            "link",
            Kind::Link("a/b/c/deep.txt"),
            0o777,
            me,
            1_650_000_000,
        ),
        e(
            "a/b/up",
            Kind::Link("../../big.bin"),
            0o777,
            other,
            1_650_000_001,
        ),
        e("fifo", Kind::Fifo, 0o640, me, 1_650_000_002),
        e("many", Kind::Dir, 0o755, me, 1_610_000_000),
    ];
    if root {
        v.push(e("null", Kind::CharDev, 0o666, (0, 0), 1_650_000_003));
    }
    for i in 0..300u32 {
        v.push(e(
            &format!("many/entry-{i:04}"),
            Kind::File(format!("content of entry {i}\n").into_bytes()),
            0o644,
            me,
            1_610_000_000 + i,
        ));
    }
    v
}

fn make_source(root: &Path, entries: &[Entry]) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir(root).unwrap();
    for e in entries {
        let p = root.join(&e.path);
        match &e.kind {
            Kind::Dir => std::fs::create_dir(&p).unwrap(),
            Kind::File(data) => std::fs::write(&p, data).unwrap(),
            Kind::Link(t) => std::os::unix::fs::symlink(t, &p).unwrap(),
            Kind::Fifo => {
                run("mkfifo", [p.as_os_str()]);
            }
            Kind::CharDev => {
                run(
                    "mknod",
                    [p.as_os_str(), "c".as_ref(), "1".as_ref(), "3".as_ref()],
                );
            }
        }
        // chown before chmod: chown clears the setuid bit.
        std::os::unix::fs::lchown(&p, Some(e.owner.0), Some(e.owner.1)).unwrap();
        if !matches!(e.kind, Kind::Link(_)) {
            let perms = std::fs::Permissions::from_mode(u32::from(e.mode));
            std::fs::set_permissions(&p, perms).unwrap();
        }
    }
    // Parents last, so that creating children does not bump a directory's mtime again.
    for e in entries.iter().rev() {
        let stamp = format!("@{}", e.mtime);
        run(
            "touch",
            [
                "-h".as_ref(),
                "-d".as_ref(),
                stamp.as_ref(),
                root.join(&e.path).as_os_str(),
            ],
        );
    }
}

fn write_backhand(image: &Path, entries: &[Entry], comp: FilesystemCompressor, block: u32) {
    let mut fs = FilesystemWriter::default();
    fs.set_compressor(comp);
    fs.set_block_size(block);
    fs.set_time(1_700_000_000);
    fs.set_root_mode(0o755);
    for e in entries {
        let h = NodeHeader::new(e.mode, e.owner.0, e.owner.1, e.mtime);
        match &e.kind {
            Kind::Dir => fs.push_dir(&e.path, h),
            Kind::File(data) => fs.push_file(Cursor::new(data.clone()), &e.path, h),
            Kind::Link(t) => fs.push_symlink(*t, &e.path, h),
            Kind::Fifo => fs.push_fifo(&e.path, h),
            Kind::CharDev => fs.push_char_device(0x103, &e.path, h),
        }
        .unwrap();
    }
    let out = std::fs::File::create(image).unwrap();
    fs.write(std::io::BufWriter::new(out)).unwrap();
}

fn check(name: &str, comp: FilesystemCompressor, block: u32, options: Option<CompressorOptions>) {
    let Some(unsquashfs) = tool("unsquashfs") else {
        return;
    };
    let tmp = tempdir();
    let entries = spec(block as usize);
    let src = tmp.path().join("src");
    make_source(&src, &entries);
    let image = tmp.path().join("img.sqfs");
    write_backhand(&image, &entries, comp, block);

    let r = Reader::open(std::fs::File::open(&image).unwrap()).unwrap();
    assert_eq!(r.compressor_options(), options, "{name}");
    let walked = r.walk().unwrap();
    let ours = common::normalise(common::our_listing(&r, &walked));
    let theirs = common::unsquashfs_listing(&unsquashfs, &image);
    assert_eq!(ours, theirs, "{name}: listing");
    // Root plus every entry, so neither side can agree by listing nothing.
    assert_eq!(ours.len(), entries.len() + 1, "{name}");

    // Every regular file reads back byte for byte through `read_file`.
    for e in &entries {
        if let Kind::File(data) = &e.kind {
            let (_, inode) = r.lookup(e.path.as_bytes()).unwrap();
            assert_eq!(
                &r.read_file_to_vec(&inode).unwrap(),
                data,
                "{name}: {}",
                e.path
            );
        }
    }

    let ours_dir = tmp.path().join("ours");
    let report = r.extract(&ours_dir, ExtractOptions::full()).unwrap();
    assert!(report.files >= 300, "{name}: {report:?}");
    let theirs_dir = tmp.path().join("theirs");
    let mut args: Vec<&std::ffi::OsStr> = vec!["-q".as_ref(), "-n".as_ref(), "-d".as_ref()];
    args.push(theirs_dir.as_os_str());
    args.push(image.as_os_str());
    run(&unsquashfs, args);

    // Owners only as root: neither side can chown otherwise.
    let what = Compare {
        owner: is_root(),
        ..Compare::default()
    };
    let d = diff_trees(&theirs_dir, &ours_dir, what);
    assert!(d.is_empty(), "{name}: ours vs unsquashfs -d: {d:#?}");
    let d = diff_trees(&src, &ours_dir, what);
    assert!(d.is_empty(), "{name}: ours vs source: {d:#?}");
}

#[test]
fn gzip_default_block() {
    let comp = FilesystemCompressor::new(Compressor::Gzip, None).unwrap();
    check("gzip", comp, 128 * 1024, None);
}

/// backhand quirk: its gzip options block is 7 bytes (it encodes the window size as one byte
/// where the format, mksquashfs and unsquashfs have a 16-bit field), so nobody can parse it.
/// unsquashfs only warns (`unsquashfs -s`: "gzip: error reading stored compressor options") and
/// lists and extracts the image; the kernel's zlib decompressor ignores the block. Our reader
/// used to refuse to open the image; now it reports no options and reads the rest.
#[test]
fn gzip_options_small_block() {
    let opts = CompressionOptions::Gzip(Gzip {
        compression_level: 6,
        window_size: 15,
        strategies: 0,
    });
    let comp = FilesystemCompressor::new(Compressor::Gzip, Some(opts)).unwrap();
    check("gzip options", comp, 4096, None);
}

#[test]
fn xz_default() {
    let comp = FilesystemCompressor::new(Compressor::Xz, None).unwrap();
    check("xz", comp, 128 * 1024, None);
}

#[test]
fn zstd_level_15_small_block() {
    let opts = CompressionOptions::Zstd(Zstd {
        compression_level: 15,
    });
    let comp = FilesystemCompressor::new(Compressor::Zstd, Some(opts)).unwrap();
    check(
        "zstd 15",
        comp,
        8192,
        Some(CompressorOptions::Zstd { level: 15 }),
    );
}

#[test]
fn lz4_with_options() {
    let opts = CompressionOptions::Lz4(Lz4 {
        version: 1,
        flags: 0,
    });
    let comp = FilesystemCompressor::new(Compressor::Lz4, Some(opts)).unwrap();
    check(
        "lz4",
        comp,
        64 * 1024,
        Some(CompressorOptions::Lz4 {
            version: 1,
            flags: 0,
        }),
    );
}

#[test]
fn lzo_default() {
    let comp = FilesystemCompressor::new(Compressor::Lzo, None).unwrap();
    check("lzo", comp, 128 * 1024, None);
}
