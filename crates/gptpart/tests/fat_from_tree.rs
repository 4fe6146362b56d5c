//! `FatBuilder::add_fstree`: files and directories are carried (content from anywhere), and
//! what FAT cannot hold is refused with an error naming the entry.

use std::io::Write;
use std::sync::Arc;

use imgpipe_fstree::{Content, Entry, FileType, Metadata, ReadAt, Tree};
use imgpipe_gptpart::{Error, FatBuilder, FatVolume};

fn file(path: impl Into<Vec<u8>>, body: &[u8]) -> (Entry, Content) {
    let mut e = Entry::new(path, FileType::File, Metadata::new(0o644, 0));
    e.size = body.len() as u64;
    (e, Content::Bytes(Arc::from(body)))
}

fn one(entry: Entry, content: Content) -> Tree {
    let mut t = Tree::new(Metadata::new(0o755, 0));
    t.insert(entry, content).unwrap();
    t
}

fn refused(tree: &Tree, path: &str, words: &str) {
    let mut b = FatBuilder::new(1 << 20);
    match b.add_fstree(tree) {
        Err(e @ Error::InvalidName { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(path) && msg.contains(words), "{msg}");
        }
        other => panic!("{path}: expected a refusal, got {other:?}"),
    }
}

#[test]
fn carries_files_and_directories_with_content_from_anywhere() {
    let dm = Metadata::new(0o755, 0);
    let mut t = Tree::new(dm.clone());
    let (e, c) = file("EFI/BOOT/BOOTX64.EFI", b"MZ");
    t.insert_with_parents(e, c, &dm).unwrap();
    let backing: Arc<dyn ReadAt> = Arc::new(imgpipe_fstree::Bytes(b"..a range..".to_vec()));
    let mut e = Entry::new("range.txt", FileType::File, Metadata::new(0o644, 0));
    e.size = 7;
    let range = Content::Range {
        source: backing,
        offset: 2,
        len: 7,
    };
    t.insert(e, range).unwrap();
    let mut e = Entry::new("A stream", FileType::File, Metadata::new(0o644, 0));
    e.size = 6;
    let stream = Content::Stream(Arc::new(|w: &mut dyn Write| {
        w.write_all(b"stream")?;
        Ok(6)
    }));
    t.insert(e, stream).unwrap();
    // Two names of one file: FAT stores a copy per name.
    for p in ["h1", "h2"] {
        let (mut e, c) = file(p, b"shared");
        e.link = Some(1);
        t.insert(e, c).unwrap();
    }
    t.insert(
        Entry::new("empty", FileType::Dir, dm.clone()),
        Content::None,
    )
    .unwrap();
    let mut b = FatBuilder::new(2 << 20).epoch(1_700_000_000);
    b.add_fstree(&t).unwrap();
    let img = b.build_vec().unwrap();
    let mut v = FatVolume::open(std::io::Cursor::new(img)).unwrap();
    for (p, want) in [
        ("EFI/BOOT/BOOTX64.EFI", &b"MZ"[..]),
        ("range.txt", b"a range"),
        ("A stream", b"stream"),
        ("h1", b"shared"),
        ("h2", b"shared"),
    ] {
        let e = v.lookup(p).unwrap();
        assert_eq!(v.read_file(&e).unwrap(), want, "{p}");
    }
    assert!(v.lookup("empty").is_ok());
}

#[test]
fn refuses_symlinks_devices_fifos_and_sockets() {
    let mut l = Entry::new("etc-link", FileType::Symlink, Metadata::new(0o777, 0));
    l.target = Some(b"etc".to_vec());
    refused(&one(l, Content::None), "/etc-link", "symlink");
    for (name, ft) in [
        ("dev-null", FileType::Char),
        ("sda", FileType::Block),
        ("pipe", FileType::Fifo),
        ("sock", FileType::Socket),
    ] {
        let mut e = Entry::new(name, ft, Metadata::new(0o644, 0));
        e.rdev = Some((1, 3));
        refused(&one(e, Content::None), name, "regular file");
    }
}

#[test]
fn refuses_names_fat_cannot_hold() {
    let (e, c) = file(&b"caf\xe9"[..], b"");
    refused(&one(e, c), "caf", "UTF-8");
    let (e, c) = file("what?", b"");
    refused(&one(e, c), "what?", "");
    let mut t = Tree::new(Metadata::new(0o755, 0));
    for p in ["README", "readme"] {
        let (e, c) = file(p, b"");
        t.insert(e, c).unwrap();
    }
    refused(&t, "readme", "case");
}

#[test]
fn add_tree_skips_an_excluded_output_inside_the_tree() {
    let t = imgpipe_testsupport::tempdir();
    std::fs::write(t.path().join("keep"), b"k").unwrap();
    std::fs::write(t.path().join("out.img"), b"an older image").unwrap();
    let mut b = FatBuilder::new(1 << 20);
    b.exclude_host_path(&t.path().join("out.img")).unwrap();
    b.add_tree(t.path()).unwrap();
    let mut v = FatVolume::open(std::io::Cursor::new(b.build_vec().unwrap())).unwrap();
    assert!(v.lookup("keep").is_ok());
    assert!(v.lookup("out.img").is_err());
}
