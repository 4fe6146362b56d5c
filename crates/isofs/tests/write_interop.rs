//! What we write, checked by the reference tools: xorriso lists it, bsdtar extracts a tree
//! equal to the source, isoinfo sees Rock Ridge and Joliet, pycdlib walks it, and we read it
//! back ourselves.

mod common;

use std::fs;
use std::path::Path;

use common::{build_tree, our_listing, xorriso_listing};
use imgpipe_isofs::{ExtractOptions, Options, Reader};
use imgpipe_testsupport::{
    Compare, TreeOptions, describe_tree, diff_trees, run, stdout_of, tempdir, tool, tricky_tree,
};

fn src_listing(src: &Path) -> std::collections::BTreeMap<String, (char, u32, u64, Option<String>)> {
    describe_tree(src)
        .into_iter()
        .map(|(p, f)| {
            (
                p.to_string_lossy().into_owned(),
                (
                    f.kind,
                    f.mode,
                    f.size,
                    f.link.map(|l| l.to_string_lossy().into_owned()),
                ),
            )
        })
        .collect()
}

#[test]
fn tricky_tree_through_every_reader() {
    let t = tempdir();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    tricky_tree(&src, TreeOptions::default());
    let iso = build_tree(&src, Options::new("TRICKY", 1_700_000_000));
    let iso_path = t.path().join("out.iso");
    fs::write(&iso_path, &iso).unwrap();

    // Our own reader: listing equals the source, extraction is a tree equal to the source.
    let ours = our_listing(&iso);
    let source = src_listing(&src);
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        source.keys().collect::<Vec<_>>()
    );
    for (p, (kind, mode, size, link)) in &source {
        let l = &ours[p];
        let k = if *kind == 'f' { '-' } else { *kind };
        assert_eq!(l.mode.chars().next(), Some(k), "{p}");
        if *kind != 'l' {
            assert_eq!(
                u32::from_str_radix("0", 8).unwrap() | mode_bits(&l.mode),
                *mode,
                "{p} {}",
                l.mode
            );
        }
        if *kind == 'f' {
            assert_eq!(l.size, size.to_string(), "{p}");
        }
        assert_eq!(&l.target, link, "{p}");
    }
    let ours_out = t.path().join("ours");
    let mut r = Reader::open(std::io::Cursor::new(&iso)).unwrap();
    r.check_path_table().unwrap();
    let mut opts = ExtractOptions::default();
    opts.owners = true;
    opts.devices = true;
    r.extract(&ours_out, opts).unwrap();
    let d = diff_trees(&src, &ours_out, Compare::default());
    assert!(d.is_empty(), "our extraction differs: {d:#?}");

    // xorriso lists exactly the source tree.
    if let Some(xorriso) = tool("xorriso") {
        let listed = xorriso_listing(&xorriso, &iso_path);
        assert_eq!(listed, ours, "xorriso's listing differs from ours");
    }
    // bsdtar extracts a tree equal to the source.
    if let Some(bsdtar) = tool("bsdtar") {
        let out = t.path().join("bsdtar");
        fs::create_dir(&out).unwrap();
        run(
            &bsdtar,
            [
                "-xpf".as_ref(),
                iso_path.as_os_str(),
                "-C".as_ref(),
                out.as_os_str(),
            ],
        );
        let d = diff_trees(
            &src,
            &out,
            Compare {
                dir_mtime: false,
                ..Compare::default()
            },
        );
        assert!(d.is_empty(), "bsdtar extraction differs: {d:#?}");
    }
    // isoinfo sees Rock Ridge, Joliet and the names.
    if let Some(isoinfo) = tool("isoinfo") {
        let d = stdout_of(
            &isoinfo,
            ["-d".as_ref(), "-i".as_ref(), iso_path.as_os_str()],
        );
        assert!(d.contains("Volume id: TRICKY"), "{d}");
        assert!(d.contains("Joliet with UCS level 3 found"), "{d}");
        assert!(d.contains("Rock Ridge signatures version 1 found"), "{d}");
        // isoinfo converts Joliet names to ISO 8859-1 (it has no UTF-8): é survives, CJK
        // becomes `_`.
        let j = run(
            &isoinfo,
            [
                "-J".as_ref(),
                "-l".as_ref(),
                "-i".as_ref(),
                iso_path.as_os_str(),
            ],
        )
        .stdout;
        let want: &[u8] = b"unicode-\xe9t\xe9-__.txt;1";
        assert!(j.windows(want.len()).any(|w| w == want));
        let j = String::from_utf8_lossy(&j);
        assert!(j.contains(&"l".repeat(103)), "{j}");
        assert!(j.contains("with space & 'quotes'"), "{j}");
        let r = stdout_of(
            &isoinfo,
            [
                "-R".as_ref(),
                "-l".as_ref(),
                "-i".as_ref(),
                iso_path.as_os_str(),
            ],
        );
        assert!(r.contains(&"l".repeat(200)), "{r}");
    }
    // pycdlib opens and walks it in all three namespaces.
    let py = imgpipe_testsupport::workspace_root().join(".venv/bin/python");
    if py.exists() || imgpipe_testsupport::in_ci() {
        let script = r#"
import sys, pycdlib
iso = pycdlib.PyCdlib()
iso.open(sys.argv[1])
n = 0
for root, dirs, files in iso.walk(rr_path='/'):
    n += len(dirs) + len(files)
j = 0
for root, dirs, files in iso.walk(joliet_path='/'):
    j += len(dirs) + len(files)
rec = iso.get_record(rr_path='/data/small.txt')
print(n, j, rec.data_length, iso.get_file_from_iso_fp.__name__)
iso.close()
"#;
        let out = stdout_of(&py, ["-c".as_ref(), script.as_ref(), iso_path.as_os_str()]);
        let fields: Vec<&str> = out.split_whitespace().collect();
        assert_eq!(
            fields[0],
            source.len().to_string(),
            "pycdlib rr walk: {out}"
        );
        assert_eq!(
            fields[1],
            source.len().to_string(),
            "pycdlib joliet walk: {out}"
        );
        assert_eq!(fields[2], "6", "{out}");
    }
}

fn mode_bits(s: &str) -> u32 {
    let c: Vec<char> = s.chars().collect();
    let mut m = 0;
    for (i, bit) in [
        0o400, 0o200, 0o100, 0o040, 0o020, 0o010, 0o004, 0o002, 0o001,
    ]
    .iter()
    .enumerate()
    {
        if !matches!(c[i + 1], '-' | 'S' | 'T') {
            m |= bit;
        }
    }
    if matches!(c[3], 's' | 'S') {
        m |= 0o4000;
    }
    if matches!(c[6], 's' | 'S') {
        m |= 0o2000;
    }
    if matches!(c[9], 't' | 'T') {
        m |= 0o1000;
    }
    m
}

#[test]
fn deep_directories_relocated_on_request() {
    let t = tempdir();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    tricky_tree(
        &src,
        TreeOptions {
            depth: 12,
            ..TreeOptions::default()
        },
    );
    let mut o = Options::new("RELOC", 1_700_000_000);
    o.relocate_deep = true;
    let iso = build_tree(&src, o);
    let iso_path = t.path().join("reloc.iso");
    fs::write(&iso_path, &iso).unwrap();
    let mut r = Reader::open(std::io::Cursor::new(&iso)).unwrap();
    r.check_path_table().unwrap();
    // The physical (plain ISO9660) tree is at most 8 levels deep.
    let mut plain = Reader::open_with(
        std::io::Cursor::new(&iso),
        imgpipe_isofs::Limits::default(),
        Some(imgpipe_isofs::Namespace::Iso9660),
    )
    .unwrap();
    let deepest = plain
        .entries()
        .unwrap()
        .iter()
        .filter(|(_, e)| e.kind == imgpipe_isofs::EntryKind::Directory)
        .map(|(p, _)| p.matches('/').count() + 2)
        .max()
        .unwrap();
    assert!(deepest <= 8, "physical depth {deepest}");
    // Rock Ridge readers see the tree in place (plus the relocation directory).
    let ours = our_listing(&iso);
    assert!(ours.contains_key("deep/d0/d1/d2/d3/d4/d5/d6/d7/d8/d9/d10/d11/bottom.txt"));
    assert!(ours.contains_key("rr_moved"));
    let out = t.path().join("ours");
    r.extract(&out, ExtractOptions::full()).unwrap();
    let d: Vec<String> = diff_trees(
        &src,
        &out,
        Compare {
            owner: false,
            ..Compare::default()
        },
    )
    .into_iter()
    .filter(|l| l != "only in second: rr_moved")
    .collect();
    assert!(d.is_empty(), "{d:#?}");
    if let Some(xorriso) = tool("xorriso") {
        common::assert_same_listing(&ours, &xorriso_listing(&xorriso, &iso_path), "relocated");
    }
    if let Some(bsdtar) = tool("bsdtar") {
        let out = t.path().join("bsdtar");
        fs::create_dir(&out).unwrap();
        run(
            &bsdtar,
            [
                "-xpf".as_ref(),
                iso_path.as_os_str(),
                "-C".as_ref(),
                out.as_os_str(),
            ],
        );
        let d: Vec<String> = diff_trees(
            &src,
            &out,
            Compare {
                dir_mtime: false,
                ..Compare::default()
            },
        )
        .into_iter()
        .filter(|l| l != "only in second: rr_moved")
        .collect();
        assert!(d.is_empty(), "bsdtar: {d:#?}");
    }
}
