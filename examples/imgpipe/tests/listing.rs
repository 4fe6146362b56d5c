//! One listing shape for every format: one host tree made into an ISO (Rock Ridge), a
//! squashfs, an EROFS (mkfs.erofs) and a FAT image, `ls --json` of each, and the entries
//! compared wherever the formats hold the same facts.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use imgpipe_testsupport::{run, set_mtimes, tempdir, tool};
use serde_json::Value;

const EPOCH: i64 = 1_700_000_000;

fn imgpipe<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(env!("CARGO_BIN_EXE_imgpipe"))
        .args(args)
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap()
}

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "status {}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// Files, directories, odd modes, an empty file and directory; with `posix`, a symlink, a
/// hard link and a fifo too (FAT holds none of them: there the second name is a copy).
fn make_tree(root: &Path, posix: bool) {
    let w = |p: &str, data: &[u8], mode: u32| {
        let path = root.join(p);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, data).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    };
    fs::create_dir_all(root).unwrap();
    w("README.txt", b"one tree, four formats\n", 0o644);
    w("bin/tool", b"#!/bin/sh\necho tool\n", 0o755);
    w("etc/secret", b"top secret\n", 0o600);
    w("data/big.bin", &imgpipe_testsupport::pattern(70_000), 0o644);
    w("data/empty", b"", 0o644);
    fs::create_dir_all(root.join("emptydir")).unwrap();
    fs::set_permissions(root.join("etc"), fs::Permissions::from_mode(0o750)).unwrap();
    if posix {
        std::os::unix::fs::symlink("bin/tool", root.join("link")).unwrap();
        fs::hard_link(root.join("README.txt"), root.join("data/hard.txt")).unwrap();
        run("mkfifo", [root.join("fifo")]);
    } else {
        w("data/hard.txt", b"one tree, four formats\n", 0o644);
    }
    set_mtimes(root, EPOCH);
}

/// `imgpipe FORMAT ls --json IMAGE`, checked for the document shape; entries by path.
fn ls(format: &str, image: &Path) -> (Vec<String>, BTreeMap<String, Value>) {
    let doc: Value = serde_json::from_str(&ok(imgpipe([
        OsStr::new(format),
        OsStr::new("ls"),
        OsStr::new("--json"),
        image.as_os_str(),
    ])))
    .unwrap();
    assert_eq!(doc["schema"], 1, "{format}");
    let entries = doc["entries"].as_array().unwrap();
    assert_eq!(entries[0]["path"], "/", "{format}: the root comes first");
    let order: Vec<String> = entries
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_owned())
        .collect();
    // Each directory before its contents, siblings in byte order: sorted by components.
    let mut sorted = order.clone();
    sorted.sort_by(|a, b| a.split('/').cmp(b.split('/')));
    assert_eq!(order, sorted, "{format}: walk order");
    // The text form has one line per entry, with the same paths.
    let text = ok(imgpipe([
        OsStr::new(format),
        OsStr::new("ls"),
        image.as_os_str(),
    ]));
    assert_eq!(text.lines().count(), entries.len(), "{format}: {text}");
    let by_path = entries
        .iter()
        .map(|e| (e["path"].as_str().unwrap().to_owned(), e.clone()))
        .collect();
    (order, by_path)
}

fn field<'a>(e: &'a Value, k: &str) -> &'a Value {
    e.get(k).unwrap_or(&Value::Null)
}

#[test]
fn one_tree_lists_alike_in_iso_squashfs_erofs_and_fat() {
    let t = tempdir();
    let src = t.path().join("src");
    make_tree(&src, true);
    let fat_src = t.path().join("fat-src");
    make_tree(&fat_src, false);
    let epoch = EPOCH.to_string();

    let iso = t.path().join("t.iso");
    ok(imgpipe([
        OsStr::new("iso"),
        OsStr::new("create"),
        OsStr::new("--epoch"),
        OsStr::new(&epoch),
        OsStr::new("-o"),
        iso.as_os_str(),
        src.as_os_str(),
    ]));
    let sqfs = t.path().join("t.sqfs");
    ok(imgpipe([
        OsStr::new("squashfs"),
        OsStr::new("create"),
        OsStr::new("--epoch"),
        OsStr::new(&epoch),
        OsStr::new("-o"),
        sqfs.as_os_str(),
        src.as_os_str(),
    ]));
    let fat = t.path().join("t.fat");
    ok(imgpipe([
        OsStr::new("fat"),
        OsStr::new("create"),
        OsStr::new("--size"),
        OsStr::new("8M"),
        OsStr::new("--epoch"),
        OsStr::new(&epoch),
        OsStr::new("-o"),
        fat.as_os_str(),
        fat_src.as_os_str(),
    ]));

    let mut posix = vec![
        ("iso9660", ls("iso", &iso)),
        ("squashfs", ls("squashfs", &sqfs)),
    ];
    if let Some(mkfs) = tool("mkfs.erofs") {
        let erofs = t.path().join("t.erofs");
        run(
            &mkfs,
            [
                OsStr::new("--quiet"),
                OsStr::new(&format!("-T{EPOCH}")),
                erofs.as_os_str(),
                src.as_os_str(),
            ],
        );
        posix.push(("erofs", ls("erofs", &erofs)));
    }

    // ISO9660 with Rock Ridge, squashfs and EROFS hold every fact of this tree (no xattrs
    // here): the listings are equal entry for entry, hard-link groups included.
    let (first, (order, reference)) = &posix[0];
    assert!(reference.len() >= 13, "{reference:#?}");
    let link = &reference["/link"];
    assert_eq!(
        (&link["type"], &link["target"], &link["size"]),
        (
            &Value::from("symlink"),
            &Value::from("bin/tool"),
            &Value::from(8)
        )
    );
    assert_eq!(reference["/fifo"]["type"], "fifo");
    assert_eq!(reference["/etc"]["mode"], 0o750);
    assert_eq!(reference["/etc/secret"]["mode"], 0o600);
    let group = field(&reference["/data/hard.txt"], "hardlink");
    assert!(group.is_u64(), "{link:#}");
    assert_eq!(field(&reference["/README.txt"], "hardlink"), group);
    for (format, (o, entries)) in &posix[1..] {
        assert_eq!(o, order, "{first} vs {format}: paths");
        for (path, a) in reference {
            let b = &entries[path];
            for k in [
                "type", "mode", "uid", "gid", "size", "mtime", "target", "rdev", "hardlink",
                "xattrs",
            ] {
                assert_eq!(field(a, k), field(b, k), "{first} vs {format}: {path} {k}");
            }
        }
    }

    // FAT holds names, types (files and directories), sizes and write times (UTC, two
    // seconds); the root has no time of its own.
    let (_, fat_entries) = ls("fat", &fat);
    let posix_paths: Vec<&String> = reference
        .iter()
        .filter(|(_, e)| e["type"] == "file" || e["type"] == "dir")
        .map(|(p, _)| p)
        .collect();
    let fat_paths: Vec<&String> = fat_entries.keys().collect();
    assert_eq!(fat_paths, posix_paths);
    for (path, f) in &fat_entries {
        let a = &reference[path];
        for k in ["type", "size", "target", "rdev"] {
            assert_eq!(field(a, k), field(f, k), "iso9660 vs fat: {path} {k}");
        }
        if path != "/" {
            assert_eq!(f["mtime"], EPOCH, "fat: {path}");
        }
    }
}
