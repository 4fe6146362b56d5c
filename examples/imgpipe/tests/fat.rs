//! `imgpipe fat create|ls|extract`, checked with fsck.vfat, mtools and mkfs.vfat.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use imgpipe_testsupport::{Compare, diff_trees, pattern, run, set_mtimes, tempdir, tool};

fn imgpipe(args: &[&str], epoch: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_imgpipe"));
    c.args(args).env_remove("SOURCE_DATE_EPOCH");
    if let Some(e) = epoch {
        c.env("SOURCE_DATE_EPOCH", e);
    }
    c.output().unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = imgpipe(args, Some("1700000000"));
    assert!(
        out.status.success(),
        "imgpipe {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn tree(root: &Path) {
    let w = |p: &str, data: &[u8]| {
        let path = root.join(p);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, data).unwrap();
    };
    w("EFI/BOOT/BOOTX64.EFI", &pattern(200_000));
    w("EFI/systemd/systemd-bootx64.efi", &pattern(90_000));
    w("loader/entries/a rather long entry name.conf", b"title x\n");
    w("README.txt", b"hello\n");
    fs::create_dir_all(root.join("empty")).unwrap();
    set_mtimes(root, 1_700_000_000);
}

#[test]
fn create_ls_extract_round_trip() {
    let t = tempdir();
    let src = t.path().join("src");
    tree(&src);
    let img = t.path().join("esp.img");
    let summary = ok(&[
        "fat",
        "create",
        "-o",
        img.to_str().unwrap(),
        "--size",
        "32M",
        "--label",
        "EFI-SYS",
        "--volume-id",
        "DEADBEEF",
        src.to_str().unwrap(),
    ]);
    assert!(summary.contains("FAT16"), "{summary}");
    assert_eq!(fs::metadata(&img).unwrap().len(), 32 << 20);
    if let Some(fsck) = tool("fsck.vfat") {
        let out = run(&fsck, [Path::new("-n"), &img]);
        assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);
    }
    let ls: serde_json::Value =
        serde_json::from_str(&ok(&["fat", "ls", "--json", img.to_str().unwrap()])).unwrap();
    assert_eq!(ls["schema"], 1);
    assert_eq!(ls["format"], "fat");
    // The volume's own facts are in `fat info`.
    let info = ok(&["fat", "info", "--json", img.to_str().unwrap()]);
    assert!(info.contains("EFI-SYS"), "{info}");
    let entries = ls["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 11, "{ls:#}"); // the root and 10 entries
    assert_eq!(entries[0]["path"], "/");
    let boot = entries
        .iter()
        .find(|e| e["path"] == "/EFI/BOOT/BOOTX64.EFI")
        .unwrap();
    assert_eq!(boot["size"], 200_000);
    assert_eq!(boot["mtime"], 1_700_000_000);
    assert_eq!(boot["type"], "file");
    let text = ok(&["fat", "ls", img.to_str().unwrap()]);
    assert!(
        text.contains("/loader/entries/a rather long entry name.conf"),
        "{text}"
    );
    assert!(text.contains("2023-11-14 22:13:20 /README.txt"), "{text}");

    let out = t.path().join("out");
    ok(&[
        "fat",
        "extract",
        img.to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    let diffs = diff_trees(
        &src,
        &out,
        Compare {
            owner: false,
            mode: false,
            mtime: true,
            dir_mtime: false,
        },
    );
    assert!(diffs.is_empty(), "{diffs:#?}");

    if let Some(mdir) = tool("mdir") {
        let out = Command::new(mdir)
            .env("MTOOLS_SKIP_CHECK", "1")
            .args(["-/", "-b", "-i", img.to_str().unwrap(), "::"])
            .output()
            .unwrap();
        let listing = String::from_utf8_lossy(&out.stdout);
        assert_eq!(listing.lines().count(), 10, "{listing}");
    }

    // SOURCE_DATE_EPOCH decides timestamps; two builds are identical.
    let again = t.path().join("again.img");
    ok(&[
        "fat",
        "create",
        "-o",
        again.to_str().unwrap(),
        "--size",
        "32M",
        "--label",
        "EFI-SYS",
        "--volume-id",
        "DEADBEEF",
        src.to_str().unwrap(),
    ]);
    assert!(fs::read(&img).unwrap() == fs::read(&again).unwrap());
}

#[test]
fn reads_mkfs_vfat_and_reports_errors() {
    let t = tempdir();
    if let (Some(mkfs), Some(mcopy)) = (tool("mkfs.vfat"), tool("mcopy")) {
        let src = t.path().join("src");
        tree(&src);
        let img = t.path().join("theirs.img");
        fs::File::create(&img).unwrap().set_len(40 << 20).unwrap();
        run(&mkfs, ["-F", "32", "-n", "THEIRS", img.to_str().unwrap()]);
        let st = Command::new(mcopy)
            .env("MTOOLS_SKIP_CHECK", "1")
            .args(["-s", "-i", img.to_str().unwrap()])
            .arg(src.join("EFI"))
            .arg(src.join("README.txt"))
            .arg("::")
            .status()
            .unwrap();
        assert!(st.success());
        let ls: serde_json::Value =
            serde_json::from_str(&ok(&["fat", "ls", "--json", img.to_str().unwrap()])).unwrap();
        let info = ok(&["fat", "info", "--json", img.to_str().unwrap()]);
        assert!(info.contains("THEIRS") && info.contains("32"), "{info}");
        let paths: Vec<&str> = ls["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["path"].as_str().unwrap())
            .collect();
        assert!(
            paths.contains(&"/EFI/systemd/systemd-bootx64.efi"),
            "{paths:?}"
        );
        assert!(paths.contains(&"/README.txt"), "{paths:?}");
        let out = t.path().join("x");
        ok(&[
            "fat",
            "extract",
            img.to_str().unwrap(),
            out.to_str().unwrap(),
        ]);
        assert_eq!(
            fs::read(out.join("EFI/BOOT/BOOTX64.EFI")).unwrap(),
            pattern(200_000)
        );
    }
    // Errors: exit 2 with one line.
    let junk = t.path().join("junk");
    fs::write(&junk, vec![0u8; 4096]).unwrap();
    for args in [
        vec!["fat", "ls", junk.to_str().unwrap()],
        vec![
            "fat",
            "create",
            "-o",
            "/nonexistent/x.img",
            "--size",
            "1M",
            "/nonexistent-src",
        ],
        vec!["fat", "ls", "--partition", "1", junk.to_str().unwrap()],
    ] {
        let out = imgpipe(&args, None);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).lines().count(),
            1,
            "{args:?}"
        );
    }
    // Too small for the files.
    let src = t.path().join("big");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("big.bin"), vec![1u8; 3 << 20]).unwrap();
    let out = imgpipe(
        &[
            "fat",
            "create",
            "-o",
            t.path().join("s.img").to_str().unwrap(),
            "--size",
            "2M",
            src.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not fit"));
}
