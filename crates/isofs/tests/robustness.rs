//! Reproducibility, multi-extent files, and hostile images: truncations, `..` names,
//! symlink escapes and directory loops.

mod common;

use std::fs;
use std::io::Cursor;
use std::process::Command;

use common::{build_tree, our_listing, xorriso_listing};
use imgpipe_isofs::{Builder, Error, ExtractOptions, Metadata, Options, Reader};
use imgpipe_testsupport::{
    Compare, TreeOptions, diff_trees, pattern, run, tempdir, tool, tricky_tree,
};

#[test]
fn same_tree_same_epoch_same_bytes() {
    let t = tempdir();
    let a = t.path().join("a");
    fs::create_dir(&a).unwrap();
    tricky_tree(&a, TreeOptions::default());
    // A copy made in another directory, under another umask, in another creation order
    // (tar's order), with other inode numbers.
    let b = t.path().join("elsewhere/b");
    fs::create_dir_all(&b).unwrap();
    let script = format!(
        "umask 077; cd '{}' && bsdtar -cf - . | (cd '{}' && TZ=Asia/Tokyo bsdtar -xpf -)",
        a.display(),
        b.display()
    );
    let out = Command::new("sh").args(["-c", &script]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(diff_trees(&a, &b, Compare::default()), Vec::<String>::new());
    // diff_trees does not look at the roots themselves; tar leaves b's root undated.
    imgpipe_testsupport::set_mtimes(&b, 1_700_000_000);
    let one = build_tree(&a, Options::new("REPRO", 1_700_000_000));
    let two = build_tree(&b, Options::new("REPRO", 1_700_000_000));
    if let Some(i) = (0..one.len().min(two.len())).find(|&i| one[i] != two[i]) {
        panic!(
            "images of equal trees differ at byte {i} (lengths {} {})",
            one.len(),
            two.len()
        );
    }
    assert_eq!(one.len(), two.len());
    let three = build_tree(&a, Options::new("REPRO", 1_700_000_001));
    assert!(one != three, "the epoch must show in the image");
}

#[test]
fn multi_extent_files_read_by_everyone() {
    let t = tempdir();
    let mut o = Options::new("MULTI", 0);
    // Small extents exercise exactly the records a >4 GiB file gets.
    o.max_extent = 64 * 1024;
    let mut b = Builder::new(o);
    let data = pattern(300_001);
    b.add_file("big.bin", Metadata::file(0o644), data.clone())
        .unwrap();
    b.add_file("after.txt", Metadata::file(0o644), b"after\n".to_vec())
        .unwrap();
    let mut img = Cursor::new(Vec::new());
    b.build(&mut img).unwrap();
    let img = img.into_inner();
    let mut r = Reader::open(Cursor::new(&img)).unwrap();
    let e = r.lookup("big.bin").unwrap();
    assert_eq!(e.extents.len(), 5);
    assert_eq!(e.size, 300_001);
    assert_eq!(r.read_to_vec(&e, 1 << 20).unwrap(), data);
    // Through the shared vocabulary: one extent per record, in content order, covering it.
    let x = imgpipe_fstree::FsRead::extents(&r, &e).unwrap().unwrap();
    assert_eq!(x.len(), 5);
    let mut via = Vec::new();
    for piece in &x {
        assert_eq!(piece.file_offset, via.len() as u64);
        let at = piece.image_offset as usize;
        via.extend_from_slice(&img[at..at + piece.len as usize]);
    }
    assert_eq!(via, data);
    let iso = t.path().join("multi.iso");
    fs::write(&iso, &img).unwrap();
    if let Some(xorriso) = tool("xorriso") {
        assert_eq!(xorriso_listing(&xorriso, &iso), our_listing(&img));
    }
    if let Some(bsdtar) = tool("bsdtar") {
        let out = t.path().join("x");
        fs::create_dir(&out).unwrap();
        run(
            &bsdtar,
            [
                "-xf".as_ref(),
                iso.as_os_str(),
                "-C".as_ref(),
                out.as_os_str(),
            ],
        );
        assert_eq!(fs::read(out.join("big.bin")).unwrap(), data);
    }
    // The Joliet tree carries the same extents.
    let mut j = Reader::open_with(
        Cursor::new(&img),
        imgpipe_isofs::Limits::default(),
        Some(imgpipe_isofs::Namespace::Joliet),
    )
    .unwrap();
    let e = j.lookup("big.bin").unwrap();
    assert_eq!(j.read_to_vec(&e, 1 << 20).unwrap(), data);
}

fn small_image() -> Vec<u8> {
    let mut b = Builder::new(Options::new("SMALL", 1_700_000_000));
    b.add_file("a/b/c.txt", Metadata::file(0o644), b"hello".to_vec())
        .unwrap();
    b.add_symlink("link", Metadata::symlink(), "a/b/c.txt")
        .unwrap();
    b.add_file(&"n".repeat(240), Metadata::file(0o600), vec![1; 5000])
        .unwrap();
    let mut img = Cursor::new(Vec::new());
    b.build(&mut img).unwrap();
    img.into_inner()
}

fn read_all(img: &[u8]) -> Result<usize, Error> {
    let mut r = Reader::open(Cursor::new(img))?;
    let entries = r.entries()?;
    for (_, e) in &entries {
        r.read_to_vec(e, 1 << 20)?;
    }
    Ok(entries.len())
}

#[test]
fn every_truncated_prefix_fails_cleanly() {
    let img = small_image();
    assert_eq!(read_all(&img).unwrap(), 5);
    let used = img.len();
    for n in (0..used).step_by(97).chain([used - 1]) {
        assert!(
            read_all(&img[..n]).is_err(),
            "prefix {n} read without error"
        );
    }
}

/// Overwrites the first directory record named `from` (ISO and Rock Ridge NM) with `to`.
fn rename(img: &mut [u8], from: &[u8], to: &[u8]) -> usize {
    assert_eq!(from.len(), to.len());
    let mut n = 0;
    let mut i = 0;
    while let Some(p) = img[i..].windows(from.len()).position(|w| w == from) {
        img[i + p..i + p + to.len()].copy_from_slice(to);
        i += p + 1;
        n += 1;
    }
    n
}

#[test]
fn hostile_names_links_and_loops_stay_inside() {
    let t = tempdir();
    // A file named ".." (Rock Ridge NM) must not be written outside.
    let mut b = Builder::new(Options::new("EVIL", 0));
    b.add_file("xx", Metadata::file(0o644), b"evil".to_vec())
        .unwrap();
    let mut img = Cursor::new(Vec::new());
    b.build(&mut img).unwrap();
    let mut img = img.into_inner();
    // NM entry: "NM" len 7 ver 1 flags 0 "xx"
    assert_eq!(
        rename(&mut img, b"NM\x07\x01\x00xx", b"NM\x07\x01\x00.."),
        1
    );
    let dest = t.path().join("d1");
    let err = Reader::open(Cursor::new(&img))
        .unwrap()
        .extract(&dest, ExtractOptions::default())
        .unwrap_err();
    assert!(matches!(err, Error::UnsafePath { .. }), "{err}");
    assert!(!t.path().join("xx").exists());

    // A name holding `/` would land in another directory: the walk refuses it, so listing,
    // diffing and extraction all see the refusal.
    let mut b = Builder::new(Options::new("EVIL", 0));
    b.add_file("xxx", Metadata::file(0o644), b"evil".to_vec())
        .unwrap();
    let mut img = Cursor::new(Vec::new());
    b.build(&mut img).unwrap();
    let mut img = img.into_inner();
    assert_eq!(
        rename(&mut img, b"NM\x08\x01\x00xxx", b"NM\x08\x01\x00d/x"),
        1
    );
    let mut r = Reader::open(Cursor::new(&img)).unwrap();
    let err = imgpipe_fstree::FsRead::walk(&r).unwrap_err();
    assert!(matches!(err, Error::UnsafePath { .. }), "{err}");
    let err = r
        .extract(&t.path().join("d0"), ExtractOptions::default())
        .unwrap_err();
    assert!(matches!(err, Error::UnsafePath { .. }), "{err}");

    // A symlink "s" -> "/" plus a file "s/escape" (via a crafted second entry named "s").
    let mut b = Builder::new(Options::new("EVIL", 0));
    b.add_symlink("s", Metadata::symlink(), "/tmp").unwrap();
    b.add_file("t/escape", Metadata::file(0o644), b"x".to_vec())
        .unwrap();
    let mut img = Cursor::new(Vec::new());
    b.build(&mut img).unwrap();
    let mut img = img.into_inner();
    assert_eq!(rename(&mut img, b"NM\x06\x01\x00t", b"NM\x06\x01\x00s"), 1);
    let dest = t.path().join("d2");
    let err = Reader::open(Cursor::new(&img))
        .unwrap()
        .extract(&dest, ExtractOptions::default())
        .unwrap_err();
    assert!(matches!(err, Error::UnsafePath { .. }), "{err}");
    assert!(!std::path::Path::new("/tmp/escape").exists());

    // A directory whose record points back at the root: a loop, reported, not followed.
    let mut b = Builder::new(Options::new("LOOP", 0));
    b.add_dir("sub", Metadata::directory(0o755)).unwrap();
    let mut img = Cursor::new(Vec::new());
    b.build(&mut img).unwrap();
    let mut img = img.into_inner();
    let (root, sub) = {
        let mut r = Reader::open(Cursor::new(&img)).unwrap();
        (r.root().extents[0].block, r.lookup("sub").unwrap())
    };
    let at = sub.record_offset as usize;
    img[at + 2..at + 6].copy_from_slice(&root.to_le_bytes());
    img[at + 6..at + 10].copy_from_slice(&root.to_be_bytes());
    let err = Reader::open(Cursor::new(&img))
        .unwrap()
        .entries()
        .unwrap_err();
    assert!(matches!(err, Error::DirectoryLoop { .. }), "{err}");

    // Extraction never follows a pre-existing symlink in the destination.
    let img = small_image();
    let dest = t.path().join("d3");
    fs::create_dir(&dest).unwrap();
    std::os::unix::fs::symlink(t.path().join("outside"), dest.join("a")).unwrap();
    assert!(
        Reader::open(Cursor::new(&img))
            .unwrap()
            .extract(&dest, ExtractOptions::default())
            .is_err()
    );
    assert!(!t.path().join("outside").exists());
}

#[test]
fn absurd_sizes_are_errors() {
    let mut img = small_image();
    let mut r = Reader::open(Cursor::new(&img)).unwrap();
    let e = r.lookup(&"n".repeat(240)).unwrap();
    let at = e.record_offset as usize;
    // A data length far past the end of the image.
    img[at + 10..at + 14].copy_from_slice(&0xFFFF_F000u32.to_le_bytes());
    img[at + 14..at + 18].copy_from_slice(&0xFFFF_F000u32.to_be_bytes());
    let mut r = Reader::open(Cursor::new(&img)).unwrap();
    let e = r.lookup(&"n".repeat(240)).unwrap();
    assert!(matches!(
        r.copy_to(&e, &mut std::io::sink()),
        Err(Error::Truncated { .. })
    ));
    // The pre-existing check: names only the image itself made.
    let t = tempdir();
    let src = t.path().join("s");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("f"), b"x").unwrap();
    let _ = build_tree(&src, Options::new("X", 0));
}

/// An image of `n` one-byte files whose directory records (every namespace) are then
/// pointed at the whole image: extent at block 0, length the image's size.
fn records_sharing_the_whole_image(n: usize, distinct_dates: bool) -> Vec<u8> {
    let mut b = Builder::new(Options::new("SHARED", 1_700_000_000));
    for i in 0..n {
        let mut m = Metadata::file(0o644);
        if distinct_dates {
            m.mtime = Some(1_600_000_000 + i as i64 * 60);
        }
        b.add_file(&format!("f{i:04}"), m, vec![b'x']).unwrap();
    }
    let mut img = Cursor::new(Vec::new());
    b.build(&mut img).unwrap();
    let mut img = img.into_inner();
    let len = img.len() as u32;
    let mut r = Reader::open(Cursor::new(img.clone())).unwrap();
    let mut blocks = Vec::new();
    for i in 0..n {
        let e = r.lookup(&format!("f{i:04}")).unwrap();
        blocks.push(e.extents[0].block);
    }
    let both = |v: u32| {
        let mut b = v.to_le_bytes().to_vec();
        b.extend_from_slice(&v.to_be_bytes());
        b
    };
    for blk in blocks {
        let mut from = both(blk);
        from.extend_from_slice(&both(1));
        let mut to = both(0);
        to.extend_from_slice(&both(len));
        let mut at = 0;
        while let Some(p) = img[at..].windows(16).position(|w| w == from) {
            img[at + p..at + p + 16].copy_from_slice(&to);
            at += p + 16;
        }
    }
    img
}

/// Disk space a tree takes (blocks allocated, each inode once), in bytes.
fn du(p: &std::path::Path) -> u64 {
    fn walk(p: &std::path::Path, seen: &mut std::collections::BTreeSet<u64>) -> u64 {
        use std::os::unix::fs::MetadataExt;
        let mut n = 0;
        for e in fs::read_dir(p).unwrap() {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if seen.insert(m.ino()) {
                n += m.blocks() * 512;
            }
            if m.is_dir() {
                n += walk(&e.path(), seen);
            }
        }
        n
    }
    walk(p, &mut Default::default())
}

#[test]
fn records_sharing_an_extent_become_hard_links() {
    // 400 records whose extent is the whole image: extracted one by one they were 400 copies
    // of the image (quadratic); now copies up to the output budget (64 MiB for a small
    // image), then links of the first, as bsdtar makes.
    let img = records_sharing_the_whole_image(400, false);
    let len = img.len() as u64;
    let r = Reader::open(Cursor::new(img)).unwrap();
    let t = tempdir();
    let rep = imgpipe_fstree::extract(&r, &t.path().join("o"), ExtractOptions::default()).unwrap();
    assert_eq!(rep.files + rep.shared_extents, 400, "{rep:?}");
    assert!(rep.shared_extents > 0, "{rep:?}");
    let budget = imgpipe_fstree::MIN_OUTPUT_BUDGET;
    assert!(
        rep.bytes <= len + budget,
        "{} bytes from a {len}-byte image",
        rep.bytes
    );
    assert!(
        du(t.path()) < budget + 2 * len + (1 << 20),
        "{} bytes on disk",
        du(t.path())
    );
}

#[test]
fn records_sharing_an_extent_with_other_dates_hit_the_output_budget() {
    // The same with a date per record: no links, so the copies count against the output
    // budget (64 MiB for a small image) and the extraction stops there.
    let img = records_sharing_the_whole_image(400, true);
    let len = img.len() as u64;
    assert!(400 * len > 4 * imgpipe_fstree::MIN_OUTPUT_BUDGET);
    let r = Reader::open(Cursor::new(img)).unwrap();
    let t = tempdir();
    let err =
        imgpipe_fstree::extract(&r, &t.path().join("o"), ExtractOptions::default()).unwrap_err();
    assert!(
        matches!(err, imgpipe_fstree::Error::LimitExceeded { .. }),
        "{err}"
    );
    let written = du(t.path());
    assert!(
        written < 2 * imgpipe_fstree::MIN_OUTPUT_BUDGET + 8 * len,
        "{written} bytes on disk"
    );
}
