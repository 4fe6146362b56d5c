//! `imgpipe squashfs create|ls|extract|info`: round trips, reference-tool acceptance,
//! reproducibility through SOURCE_DATE_EPOCH, exit codes.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output};

use imgpipe_testsupport::{Compare, TreeOptions, diff_trees, tempdir, tool, tricky_tree};

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

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "status {}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn tree(root: &Path) {
    std::fs::create_dir(root).unwrap();
    tricky_tree(root, TreeOptions::default());
}

#[test]
fn create_ls_extract_round_trip() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    tree(&src);
    let img = tmp.path().join("img.sqfs");
    let o = imgpipe([
        "squashfs".as_ref(),
        "create".as_ref(),
        "-o".as_ref(),
        img.as_os_str(),
        "--comp".as_ref(),
        "zstd".as_ref(),
        "--level".as_ref(),
        "3".as_ref(),
        "--epoch".as_ref(),
        "1700000000".as_ref(),
        "--json".as_ref(),
        src.as_os_str(),
    ]);
    ok(&o);
    let rep: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(rep["files"].as_u64().unwrap() > 10);
    assert_eq!(rep["duplicates"].as_u64(), Some(1)); // dup-a.txt / dup-b.txt

    let o = imgpipe([
        "squashfs".as_ref(),
        "ls".as_ref(),
        img.as_os_str(),
        "--json".as_ref(),
    ]);
    ok(&o);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["schema"], 1);
    assert_eq!(doc["format"], "squashfs");
    let list = doc["entries"].as_array().unwrap();
    let by_path = |p: &str| list.iter().find(|e| e["path"] == p).unwrap().clone();
    assert_eq!(by_path("/")["type"], "dir");
    assert_eq!(by_path("/link-relative")["target"], "bin/tool");
    assert_eq!(by_path("/etc/setuid-ish")["mode"], 0o4755);
    assert_eq!(by_path("/data/big.bin")["size"], 300_000);
    assert_eq!(by_path("/fifo")["type"], "fifo");
    // Both names of the hard-linked file are in one group, numbered by its first name.
    let group = by_path("/data/small-hardlink.txt")["hardlink"].clone();
    assert!(group.is_u64(), "{group}");
    assert_eq!(by_path("/data/small.txt")["hardlink"], group);
    assert!(by_path("/data/big.bin").get("hardlink").is_none());
    assert_eq!(
        list.len(),
        imgpipe_testsupport::describe_tree(&src).len() + 1
    );

    let text = imgpipe(["squashfs".as_ref(), "ls".as_ref(), img.as_os_str()]);
    ok(&text);
    let text = String::from_utf8(text.stdout).unwrap();
    let lines: Vec<String> = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert!(
        lines.contains(
            &"lrwxrwxrwx 0 0 8 2023-11-14 22:13:20 /link-relative -> bin/tool".to_string()
        ),
        "{text}"
    );
    assert!(
        lines.contains(&"crw-r--r-- 0 0 1, 3 2023-11-14 22:13:20 /chardev".to_string()),
        "{text}"
    );

    let out = tmp.path().join("out");
    let o = imgpipe([
        "squashfs".as_ref(),
        "extract".as_ref(),
        img.as_os_str(),
        out.as_os_str(),
        "--json".as_ref(),
        "--devices".as_ref(),
    ]);
    ok(&o);
    let d = diff_trees(&src, &out, Compare::default());
    assert!(d.is_empty(), "{d:#?}");

    let o = imgpipe(["squashfs".as_ref(), "info".as_ref(), img.as_os_str()]);
    ok(&o);
    assert!(String::from_utf8_lossy(&o.stdout).contains("zstd"));
}

#[test]
fn source_date_epoch_makes_identical_images_that_unsquashfs_accepts() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    tree(&src);
    let mut images = Vec::new();
    for name in ["a.sqfs", "b.sqfs"] {
        let img = tmp.path().join(name);
        let o = Command::new(env!("CARGO_BIN_EXE_imgpipe"))
            .args([
                "squashfs".as_ref(),
                "create".as_ref(),
                "--comp".as_ref(),
                "xz".as_ref(),
                "-o".as_ref(),
                img.as_os_str(),
                src.as_os_str(),
            ])
            .env("SOURCE_DATE_EPOCH", "1600000000")
            .output()
            .unwrap();
        ok(&o);
        images.push(std::fs::read(&img).unwrap());
        if let Some(unsquashfs) = tool("unsquashfs") {
            let s =
                imgpipe_testsupport::stdout_of(&unsquashfs, [OsStr::new("-s"), img.as_os_str()]);
            assert!(s.contains("Compression xz"), "{s}");
            assert!(
                s.contains("Sep 13 12:26:40 2020") || s.contains("2020"),
                "{s}"
            );
        }
    }
    assert_eq!(images[0], images[1]);
}

#[test]
fn bad_input_exits_2_with_one_line() {
    let tmp = tempdir();
    let junk = tmp.path().join("junk");
    std::fs::write(&junk, vec![0u8; 4096]).unwrap();
    for args in [
        vec!["squashfs".as_ref(), "ls".as_ref(), junk.as_os_str()],
        vec![
            "squashfs".as_ref(),
            "extract".as_ref(),
            junk.as_os_str(),
            tmp.path().join("o").as_os_str(),
        ],
        vec![
            "squashfs".as_ref(),
            "create".as_ref(),
            "-o".as_ref(),
            tmp.path().join("x").as_os_str(),
            tmp.path().join("missing").as_os_str(),
        ],
        vec![
            "squashfs".as_ref(),
            "create".as_ref(),
            "--block-size".as_ref(),
            "1000".as_ref(),
            "-o".as_ref(),
            tmp.path().join("x").as_os_str(),
            tmp.path().as_os_str(),
        ],
    ] {
        let o = imgpipe(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.starts_with("imgpipe: error: "), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

#[test]
fn ls_at_an_offset() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("hello"), b"world").unwrap();
    let img = tmp.path().join("img.sqfs");
    ok(&imgpipe([
        "squashfs".as_ref(),
        "create".as_ref(),
        "-o".as_ref(),
        img.as_os_str(),
        src.as_os_str(),
    ]));
    let mut disk = vec![0xaau8; 1 << 20];
    disk.extend(std::fs::read(&img).unwrap());
    let disk_path = tmp.path().join("disk.img");
    std::fs::write(&disk_path, disk).unwrap();
    let o = imgpipe([
        "squashfs".as_ref(),
        "ls".as_ref(),
        "--offset".as_ref(),
        "1048576".as_ref(),
        disk_path.as_os_str(),
    ]);
    ok(&o);
    assert!(String::from_utf8_lossy(&o.stdout).contains("/hello"));
}

#[test]
fn an_output_inside_the_tree_is_not_packed_and_thread_count_changes_nothing() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    tree(&src);
    let img = src.join("out.sqfs");
    let create = |img: &Path, extra: &[&str]| {
        // Writing into the tree changes its root's mtime; clamping hides that.
        let mut args: Vec<&OsStr> = [
            "squashfs",
            "create",
            "--epoch",
            "1600000000",
            "--clamp-mtime",
            "-o",
        ]
        .map(OsStr::new)
        .to_vec();
        args.push(img.as_os_str());
        args.extend(extra.iter().map(OsStr::new));
        args.push(src.as_os_str());
        ok(&imgpipe(args));
        std::fs::read(img).unwrap()
    };
    // Twice into the tree: the second run must neither pack the first image nor itself.
    let first = create(&img, &[]);
    // Replacing an image needs --force.
    let second = create(&img, &["--processors", "1", "--force"]);
    assert_eq!(
        first, second,
        "the image changed once an older copy sat in the tree"
    );
    let o = imgpipe(["squashfs".as_ref(), "ls".as_ref(), img.as_os_str()]);
    ok(&o);
    let listing = String::from_utf8(o.stdout).unwrap();
    assert!(!listing.contains("out.sqfs"), "{listing}");
    assert!(!listing.contains("imgpipe-tmp"), "{listing}");
    assert!(listing.contains("/data/small.txt"), "{listing}");
    // The same bytes as an image written outside the tree, at another thread count.
    let outside = tmp.path().join("outside.sqfs");
    std::fs::remove_file(&img).unwrap();
    assert_eq!(create(&outside, &["--processors", "3"]), first);
}

#[test]
fn xz_bcj_and_lz4_hc_options_reach_the_image() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    tree(&src);
    let img = tmp.path().join("bcj.sqfs");
    ok(&imgpipe([
        "squashfs".as_ref(),
        "create".as_ref(),
        "--comp".as_ref(),
        "xz".as_ref(),
        "--xz-bcj".as_ref(),
        "x86,arm".as_ref(),
        "-o".as_ref(),
        img.as_os_str(),
        src.as_os_str(),
    ]));
    let o = imgpipe(["inspect".as_ref(), "--json".as_ref(), img.as_os_str()]);
    ok(&o);
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(s.contains("\"filters\": 9"), "{s}");
    let o = imgpipe([
        "squashfs".as_ref(),
        "create".as_ref(),
        "--comp".as_ref(),
        "xz".as_ref(),
        "--xz-bcj".as_ref(),
        "mips".as_ref(),
        "-o".as_ref(),
        img.as_os_str(),
        src.as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("mips"));
    let o = imgpipe([
        "squashfs".as_ref(),
        "create".as_ref(),
        "--comp".as_ref(),
        "gzip".as_ref(),
        "--lz4-hc".as_ref(),
        "-o".as_ref(),
        img.as_os_str(),
        src.as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(2), "lz4 option with gzip is refused");
}

/// `imgpipe erofs ls` of mkfs.erofs's image lists what `imgpipe squashfs ls` lists for our
/// squashfs image of the same tree (path, type, mode, owner, file size, link target).
#[test]
fn erofs_ls_agrees_with_squashfs_ls_on_the_same_tree() {
    let Some(mkfs) = tool("mkfs.erofs") else {
        return;
    };
    let tmp = tempdir();
    let src = tmp.path().join("src");
    tree(&src);
    let erofs = tmp.path().join("t.erofs");
    imgpipe_testsupport::run(
        &mkfs,
        [
            OsStr::new("--quiet"),
            OsStr::new("-T1600000000"),
            erofs.as_os_str(),
            src.as_os_str(),
        ],
    );
    let sqfs = tmp.path().join("t.sqfs");
    ok(&imgpipe([
        OsStr::new("squashfs"),
        OsStr::new("create"),
        OsStr::new("-o"),
        sqfs.as_os_str(),
        src.as_os_str(),
    ]));
    let listing = |args: [&OsStr; 4]| -> Vec<serde_json::Value> {
        let o = imgpipe(args);
        ok(&o);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .cloned()
            .map(|mut e| {
                let m = e.as_object_mut().unwrap();
                m.remove("mtime");
                if m["type"] != "file" {
                    m.remove("size");
                }
                e
            })
            .collect()
    };
    let e = listing([
        OsStr::new("erofs"),
        OsStr::new("ls"),
        OsStr::new("--json"),
        erofs.as_os_str(),
    ]);
    let s = listing([
        OsStr::new("squashfs"),
        OsStr::new("ls"),
        OsStr::new("--json"),
        sqfs.as_os_str(),
    ]);
    assert!(e.len() > 10);
    assert_eq!(e, s);

    // And `erofs extract` gives the tree back (mkfs.erofs -T set every time to its value).
    let out = tmp.path().join("out");
    ok(&imgpipe([
        OsStr::new("erofs"),
        OsStr::new("extract"),
        erofs.as_os_str(),
        out.as_os_str(),
        OsStr::new("--devices"),
    ]));
    let what = Compare {
        mtime: false,
        dir_mtime: false,
        owner: imgpipe_testsupport::is_root(),
        ..Compare::default()
    };
    let d = diff_trees(&src, &out, what);
    assert!(d.is_empty(), "{d:#?}");
}
