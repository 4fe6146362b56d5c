//! `imgpipe erofs create`: fsck.erofs accepts the image, it lists exactly as the squashfs of
//! the same tree, another build directory gives the same bytes, the UUID follows the seed
//! rule, and a recognised image is not replaced without `--force`.

use std::ffi::OsStr;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use imgpipe_testsupport::{TreeOptions, run, set_mtimes, tempdir, tool, tricky_tree};
use serde_json::Value;

fn imgpipe<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(env!("CARGO_BIN_EXE_imgpipe"))
        .args(args)
        .env("SOURCE_DATE_EPOCH", "1700000000")
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

fn create(dir: &Path, out: &Path, extra: &[&str]) -> String {
    let mut args: Vec<&OsStr> = vec!["erofs".as_ref(), "create".as_ref(), "-o".as_ref()];
    args.push(out.as_os_str());
    args.extend(extra.iter().map(OsStr::new));
    args.push(dir.as_os_str());
    ok(imgpipe(args))
}

fn entries(format: &str, image: &Path) -> Vec<Value> {
    let json = ok(imgpipe([
        format.as_ref(),
        "ls".as_ref(),
        "--json".as_ref(),
        image.as_os_str(),
    ]));
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["format"], format);
    v["entries"].as_array().unwrap().clone()
}

#[test]
fn create_is_accepted_lists_like_squashfs_and_is_reproducible() {
    let t = tempdir();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    tricky_tree(&src, TreeOptions::default());
    set_mtimes(&src, 1_650_000_000);
    let img = t.path().join("a.erofs");
    let summary = create(&src, &img, &["--label", "kiosk"]);
    assert!(summary.contains("inodes"), "{summary}");
    if let Some(fsck) = tool("fsck.erofs") {
        run(&fsck, [img.as_os_str()]);
    }

    // The same tree as squashfs lists the same entries (both keep every fact listed).
    let sq = t.path().join("a.sqfs");
    ok(imgpipe([
        "squashfs".as_ref(),
        "create".as_ref(),
        "-o".as_ref(),
        sq.as_os_str(),
        src.as_os_str(),
    ]));
    let (e, s) = (entries("erofs", &img), entries("squashfs", &sq));
    assert!(e.len() > 10);
    assert_eq!(e, s);

    // Another build directory gives the same bytes; another seed another UUID.
    let copy = t.path().join("elsewhere/src");
    fs::create_dir_all(copy.parent().unwrap()).unwrap();
    run("cp", ["-a".as_ref(), src.as_os_str(), copy.as_os_str()]);
    let again = t.path().join("b.erofs");
    create(&copy, &again, &["--label", "kiosk"]);
    assert_eq!(fs::read(&img).unwrap(), fs::read(&again).unwrap());
    let seeded = t.path().join("c.erofs");
    create(
        &src,
        &seeded,
        &[
            "--label",
            "kiosk",
            "--seed",
            "00112233445566778899aabbccddeeff",
        ],
    );
    let uuid = |p: &Path| {
        let v: Value = serde_json::from_str(&ok(imgpipe([
            "erofs".as_ref(),
            "info".as_ref(),
            "--json".as_ref(),
            p.as_os_str(),
        ])))
        .unwrap();
        v["details"]["uuid"].clone()
    };
    assert_ne!(uuid(&img), uuid(&seeded));
    let explicit = t.path().join("d.erofs");
    create(
        &src,
        &explicit,
        &["--uuid", "01234567-89ab-cdef-0123-456789abcdef"],
    );
    assert!(
        uuid(&explicit).to_string().contains("01234567"),
        "{}",
        uuid(&explicit)
    );

    // A recognised image is not replaced without --force.
    let o = imgpipe([
        "erofs".as_ref(),
        "create".as_ref(),
        "-o".as_ref(),
        img.as_os_str(),
        src.as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--force"));
    create(&src, &img, &["--force", "--label", "kiosk"]);
    assert_eq!(fs::read(&img).unwrap(), fs::read(&again).unwrap());
}

#[test]
fn compressed_create_reserves_a_slot_and_names_bad_flags() {
    let t = tempdir();
    let src = t.path().join("src");
    fs::create_dir_all(src.join("etc")).unwrap();
    let text: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
    fs::write(src.join("etc/text"), &text).unwrap();
    fs::write(src.join("etc/slot.bin"), b"first").unwrap();
    set_mtimes(&src, 1_650_000_000);
    let img = t.path().join("z.erofs");
    let json = create(
        &src,
        &img,
        &[
            "--comp",
            "lzma,6",
            "--cluster-size",
            "64K",
            "--fragments",
            "--ztailpacking",
            "--dedupe",
            "--processors",
            "2",
            "--reserve",
            "etc/slot.bin:1M",
            "--json",
        ],
    );
    let v: Value = serde_json::from_str(&json).unwrap();
    let slot = &v["slots"][0];
    assert_eq!(slot["path"], "etc/slot.bin");
    assert_eq!(slot["capacity"], 1 << 20);
    assert_eq!(slot["size"], 5);
    // The file's time is not the build time: an extended inode, a 64-bit size.
    assert_eq!(slot["size_encoding"], "le64");
    let bytes = fs::read(&img).unwrap();
    let at = slot["offset"].as_u64().unwrap() as usize;
    assert_eq!(&bytes[at..at + 5], b"first");
    let so = slot["size_offset"].as_u64().unwrap() as usize;
    assert_eq!(&bytes[so..so + 8], &5u64.to_le_bytes());
    if let Some(fsck) = imgpipe_testsupport::erofs_utils("fsck.erofs") {
        run(&fsck, [img.as_os_str()]);
    }
    // One processor gives the same bytes; --comp ALG --level is ALG,LEVEL.
    let one = t.path().join("one.erofs");
    create(
        &src,
        &one,
        &[
            "--comp",
            "lzma",
            "--level",
            "6",
            "--cluster-size",
            "65536",
            "--fragments",
            "--ztailpacking",
            "--dedupe",
            "--processors",
            "1",
            "--reserve",
            "/etc/slot.bin:1048576",
        ],
    );
    assert!(fs::read(&one).unwrap() == bytes);

    // 16 KiB blocks (for kernels with 16 KiB pages): fsck.erofs checks them, our reader
    // gives the file back.
    let big = t.path().join("b16.erofs");
    create(
        &src,
        &big,
        &[
            "--block-size",
            "16K",
            "--comp",
            "lz4hc",
            "--cluster-size",
            "64K",
        ],
    );
    let ins = imgpipe(["inspect".as_ref(), big.as_os_str()]);
    assert!(String::from_utf8_lossy(&ins.stdout).contains("Block size:    16 KiB"));
    if let Some(fsck) = imgpipe_testsupport::erofs_utils("fsck.erofs") {
        run(&fsck, [OsStr::new("--extract"), big.as_os_str()]);
    }
    let x = t.path().join("x16");
    let o = imgpipe([
        "erofs".as_ref(),
        "extract".as_ref(),
        big.as_os_str(),
        x.as_os_str(),
    ]);
    assert!(o.status.success(), "{o:?}");
    assert!(fs::read(x.join("etc/text")).unwrap() == text.as_bytes());

    // Bad flags: exit 2, one line naming the flag.
    let out = t.path().join("bad.erofs");
    for (args, flag) in [
        (vec!["--comp", "lzo"], "--comp"),
        (vec!["--comp", "zstd,99"], "--comp"),
        (vec!["--comp", "lz4hc,3", "--level", "4"], "--level"),
        (
            vec!["--comp", "lz4", "--cluster-size", "3000"],
            "--cluster-size",
        ),
        (
            vec!["--comp", "lz4", "--cluster-size", "2M"],
            "--cluster-size",
        ),
        (vec!["--block-size", "3K"], "--block-size"),
        (vec!["--block-size", "128K"], "--block-size"),
        (vec!["--fragments"], "--fragments"),
        (vec!["--reserve", "etc/slot.bin"], "--reserve"),
        (vec!["--reserve", "etc/missing:4K"], "--reserve"),
        (vec!["--reserve", "etc/text:1K"], "etc/text"),
        (vec!["--comp", "lz4", "--processors", "0"], "--processors"),
    ] {
        let mut all: Vec<&OsStr> = vec!["erofs".as_ref(), "create".as_ref(), "-o".as_ref()];
        all.push(out.as_os_str());
        all.extend(args.iter().map(OsStr::new));
        all.push(src.as_os_str());
        let o = imgpipe(&all);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.starts_with("imgpipe: error: "), "{args:?}: {err}");
        assert!(err.contains(flag), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(!out.exists(), "{args:?}: no output on error");
    }
}
