//! The reader through the shared vocabulary (`imgpipe_fstree::FsRead`) on an image xorriso
//! made with hard links recorded: every entry agrees with the host tree, extents point at the
//! content, and `holds` tells what each namespace keeps.

use std::collections::BTreeMap;
use std::fs;
use std::io::Cursor;
use std::path::PathBuf;

use imgpipe_fstree::{FileType, FsRead, join_dev};
use imgpipe_isofs::{Limits, Namespace, Reader};
use imgpipe_testsupport::{TreeOptions, describe_tree, run, tempdir, tool, tricky_tree};
use sha2::{Digest, Sha256};

fn letter(t: FileType) -> char {
    match t {
        FileType::File => 'f',
        FileType::Dir => 'd',
        FileType::Symlink => 'l',
        FileType::Char => 'c',
        FileType::Block => 'b',
        FileType::Fifo => 'p',
        FileType::Socket => 's',
    }
}

#[test]
fn xorriso_image_through_fsread_matches_the_host_tree() {
    let Some(xorriso) = tool("xorriso") else {
        return;
    };
    let t = tempdir();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    tricky_tree(
        &src,
        TreeOptions {
            depth: 3,
            ..TreeOptions::default()
        },
    );
    let iso = t.path().join("x.iso");
    run(
        &xorriso,
        [
            "-abort_on".as_ref(),
            "FAILURE".as_ref(),
            "-outdev".as_ref(),
            iso.as_os_str(),
            "-hardlinks".as_ref(),
            "on".as_ref(),
            "-joliet".as_ref(),
            "on".as_ref(),
            "-map".as_ref(),
            src.as_os_str(),
            "/".as_ref(),
        ],
    );
    let img = fs::read(&iso).unwrap();
    let r = Reader::open(Cursor::new(&img[..])).unwrap();
    assert_eq!(r.namespace(), Namespace::RockRidge);
    let h = r.holds();
    assert!(h.mode && h.owner && h.mtime && h.special_files && h.hard_links && !h.xattrs);

    let walked = FsRead::walk(&r).unwrap();
    assert!(walked[0].0.path.is_empty());
    let host = describe_tree(&src);
    let ours: BTreeMap<PathBuf, _> = walked
        .iter()
        .skip(1)
        .map(|(e, n)| {
            (
                PathBuf::from(String::from_utf8(e.path.clone()).unwrap()),
                (e, n),
            )
        })
        .collect();
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        host.keys().collect::<Vec<_>>()
    );
    for (path, facts) in &host {
        let (e, node) = ours[path];
        let p = path.display();
        assert_eq!(letter(e.file_type), facts.kind, "{p}");
        assert_eq!(e.meta.mode, facts.mode, "{p}");
        assert_eq!((e.meta.uid, e.meta.gid), (facts.uid, facts.gid), "{p}");
        assert_eq!(e.meta.mtime, facts.mtime, "{p}");
        assert_eq!(
            e.target.as_deref(),
            facts
                .link
                .as_ref()
                .map(|l| l.as_os_str().as_encoded_bytes()),
            "{p}"
        );
        if matches!(facts.kind, 'c' | 'b') {
            assert_eq!(e.rdev.map(|(a, b)| join_dev(a, b)), Some(facts.rdev), "{p}");
        }
        if e.file_type != FileType::File {
            continue;
        }
        assert_eq!(e.size, facts.size, "{p}");
        let mut body = Vec::new();
        assert_eq!(r.read_content(node, &mut body).unwrap(), facts.size, "{p}");
        let sha: String = Sha256::digest(&body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(Some(&sha), facts.sha256.as_ref(), "{p}");
        // The extents hold the content, in order, without gaps.
        let mut via = Vec::new();
        for x in r.extents(node).unwrap().unwrap() {
            assert_eq!(x.file_offset, via.len() as u64, "{p}");
            let at = x.image_offset as usize;
            via.extend_from_slice(&img[at..at + x.len as usize]);
        }
        assert_eq!(via, body, "{p}");
    }
    // The two names of the hard-linked file share one identity; no other file has one.
    let link = |p: &str| ours[&PathBuf::from(p)].0.link;
    assert!(link("data/small.txt").is_some());
    assert_eq!(link("data/small.txt"), link("data/small-hardlink.txt"));
    assert_eq!(link("data/big.bin"), None);
    assert_eq!(link("README"), None);

    // The Joliet tree of the same image keeps names, sizes and dates only.
    let j = Reader::open_with(
        Cursor::new(&img[..]),
        Limits::default(),
        Some(Namespace::Joliet),
    )
    .unwrap();
    let hj = j.holds();
    assert!(!hj.mode && !hj.owner && !hj.special_files && !hj.hard_links && hj.mtime);
    let jw = FsRead::walk(&j).unwrap();
    assert!(
        jw.iter()
            .all(|(e, _)| e.link.is_none() && e.target.is_none())
    );
    assert!(
        jw.iter()
            .any(|(e, _)| e.path == b"data/big.bin" && e.size == 300_000)
    );
}
