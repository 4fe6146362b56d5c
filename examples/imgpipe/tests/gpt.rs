//! `imgpipe gpt create|show`, checked with sgdisk, sfdisk, mtools and fsck.vfat.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use imgpipe_testsupport::{run, run_status, tempdir, tool};

const SEED: &str = "0123456789abcdef0123456789abcdef";

fn imgpipe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imgpipe"))
        .args(args)
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = imgpipe(args);
    assert!(
        out.status.success(),
        "imgpipe {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn esp_dir(root: &Path) {
    fs::create_dir_all(root.join("EFI/BOOT")).unwrap();
    fs::write(root.join("EFI/BOOT/BOOTX64.EFI"), vec![0x4D; 123_457]).unwrap();
    fs::create_dir_all(root.join("loader/entries")).unwrap();
    fs::write(root.join("loader/loader.conf"), "timeout 3\n").unwrap();
    fs::write(
        root.join("loader/entries/Fedora Linux.conf"),
        "title Fedora\n",
    )
    .unwrap();
}

fn create(t: &Path, name: &str, seed: &str) -> std::path::PathBuf {
    let esp = t.join("esp");
    if !esp.exists() {
        esp_dir(&esp);
        fs::write(t.join("root.img"), vec![0xA5; 3_000_000]).unwrap();
    }
    let img = t.join(name);
    let esp_part = format!("type=esp,size=16M,label=ESP,fat={}", esp.display());
    let root_part = format!(
        "type=root-x86-64,size=rest,label=root,flags=grow-fs,file={}",
        t.join("root.img").display()
    );
    ok(&[
        "gpt",
        "create",
        "-o",
        img.to_str().unwrap(),
        "--size",
        "48M",
        "--seed",
        seed,
        "--epoch",
        "1700000000",
        "--part",
        &esp_part,
        "--part",
        &root_part,
        "--part",
        "type=swap,size=4M,label=swap",
    ]);
    img
}

#[test]
fn create_then_check_with_reference_tools() {
    let t = tempdir();
    let img = create(t.path(), "disk.img", SEED);
    assert_eq!(fs::metadata(&img).unwrap().len(), 48 << 20);

    let show: serde_json::Value =
        serde_json::from_str(&ok(&["gpt", "show", "--json", img.to_str().unwrap()])).unwrap();
    assert_eq!(show["disk_guid"], "6913F4B6-6690-4A57-A202-F1B53C56DBDF");
    assert_eq!(show["sector_size"], 512);
    assert_eq!(show["source"], "primary");
    let parts = show["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 3);
    assert_eq!(parts[0]["type_name"], "esp");
    assert_eq!(
        parts[0]["unique_guid"],
        "B2D552B0-45DB-4678-B34F-066168609D1A"
    );
    assert_eq!(parts[0]["first_lba"], 2048);
    assert_eq!(parts[1]["flags"][0], "grow-fs");
    assert_eq!(parts[2]["name"], "swap");
    let text = ok(&["gpt", "show", img.to_str().unwrap()]);
    assert!(text.contains("primary and backup ok"), "{text}");
    assert!(text.contains("root-x86-64"), "{text}");

    if let Some(sgdisk) = tool("sgdisk") {
        let out = run_status(&sgdisk, [Path::new("-v"), &img]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("No problems found"), "{text}");
    }
    if let Some(sfdisk) = tool("sfdisk") {
        let v: serde_json::Value =
            serde_json::from_slice(&run(&sfdisk, [Path::new("-J"), &img]).stdout).unwrap();
        let theirs = v["partitiontable"]["partitions"].as_array().unwrap();
        for (a, b) in theirs.iter().zip(parts) {
            assert_eq!(a["start"], b["first_lba"]);
            assert_eq!(a["uuid"], b["unique_guid"]);
            assert_eq!(a["type"], b["type_guid"]);
            assert_eq!(a["name"], b["name"]);
        }
    }
    // The root partition holds the file byte for byte, zero-padded.
    let disk = fs::read(&img).unwrap();
    let start = parts[1]["first_lba"].as_u64().unwrap() as usize * 512;
    assert!(disk[start..start + 3_000_000].iter().all(|&b| b == 0xA5));
    assert!(
        disk[start + 3_000_000..start + 3_100_000]
            .iter()
            .all(|&b| b == 0)
    );

    // The ESP: our listing, mtools, and fsck.vfat on the partition.
    let ls: serde_json::Value = serde_json::from_str(&ok(&[
        "fat",
        "ls",
        "--json",
        "--partition",
        "1",
        img.to_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(ls["format"], "fat");
    let paths: Vec<&str> = ls["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "/",
            "/EFI",
            "/EFI/BOOT",
            "/EFI/BOOT/BOOTX64.EFI",
            "/loader",
            "/loader/entries",
            "/loader/entries/Fedora Linux.conf",
            "/loader/loader.conf"
        ]
    );
    if let Some(mcopy) = tool("mcopy") {
        let out = Command::new(mcopy)
            .env("MTOOLS_SKIP_CHECK", "1")
            .arg("-i")
            .arg(format!("{}@@1M", img.display()))
            .args(["::/loader/entries/Fedora Linux.conf", "-"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, b"title Fedora\n");
    }
    if let Some(fsck) = tool("fsck.vfat") {
        let esp = t.path().join("esp.img");
        fs::write(&esp, &disk[1 << 20..17 << 20]).unwrap();
        let out = run(&fsck, [Path::new("-n"), &esp]);
        assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);
    }
}

#[test]
fn one_seed_same_bytes_other_seed_only_guids_differ() {
    let t = tempdir();
    let a = fs::read(create(t.path(), "a.img", SEED)).unwrap();
    let b = fs::read(create(t.path(), "b.img", SEED)).unwrap();
    assert!(a == b, "two runs with one seed differ");
    let c_path = create(t.path(), "c.img", "fedcba9876543210fedcba9876543210");
    let c = fs::read(&c_path).unwrap();
    assert!(a != c);
    let show = |p: &Path| -> serde_json::Value {
        let mut v: serde_json::Value =
            serde_json::from_str(&ok(&["gpt", "show", "--json", p.to_str().unwrap()])).unwrap();
        v["disk_guid"] = serde_json::Value::Null;
        v["header"] = serde_json::Value::Null;
        for p in v["partitions"].as_array_mut().unwrap() {
            p["unique_guid"] = serde_json::Value::Null;
        }
        v
    };
    assert_eq!(show(&t.path().join("a.img")), show(&c_path));
    // Partition contents: the file partition is identical; the ESP differs only in its serial.
    let esp_diff: Vec<usize> = (1 << 20..17 << 20).filter(|&i| a[i] != c[i]).collect();
    assert!(
        esp_diff
            .iter()
            .all(|&i| (i - (1 << 20)) % 512 >= 39 && (i - (1 << 20)) % 512 < 43),
        "{esp_diff:?}"
    );
    assert!(a[17 << 20..(17 << 20) + 3_000_000] == c[17 << 20..(17 << 20) + 3_000_000]);
}

#[test]
fn four_k_sectors_and_errors() {
    let t = tempdir();
    let img = t.path().join("4k.img");
    ok(&[
        "gpt",
        "create",
        "-o",
        img.to_str().unwrap(),
        "--size",
        "32M",
        "--sector-size",
        "4096",
        "--seed",
        SEED,
        "--part",
        "type=linux-generic,size=rest",
    ]);
    let show: serde_json::Value =
        serde_json::from_str(&ok(&["gpt", "show", "--json", img.to_str().unwrap()])).unwrap();
    assert_eq!(show["sector_size"], 4096);
    assert_eq!(show["partitions"][0]["first_lba"], 256);

    for bad in [
        vec!["--part", "type=nope,size=1M"],
        vec!["--part", "type=esp"],
        vec!["--part", "type=esp,size=64M"],
        vec!["--part", "type=esp,size=1M,flags=wat"],
        vec!["--seed", "xyz", "--part", "type=esp,size=1M"],
        vec!["--sector-size", "1024", "--part", "type=esp,size=1M"],
    ] {
        let mut args = vec![
            "gpt",
            "create",
            "-o",
            img.to_str().unwrap(),
            "--size",
            "32M",
        ];
        args.extend(bad.iter().copied());
        let out = imgpipe(&args);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with("imgpipe: error: ") || err.contains("error:"),
            "{bad:?}: {err}"
        );
    }
    // Contents larger than their partition: exit 2, and no half-written image is left.
    let big = t.path().join("big.bin");
    fs::write(&big, vec![1u8; 3 << 20]).unwrap();
    let failed = t.path().join("failed.img");
    let part = format!("type=linux-generic,size=2M,file={}", big.display());
    let out = imgpipe(&[
        "gpt",
        "create",
        "-o",
        failed.to_str().unwrap(),
        "--size",
        "8M",
        "--part",
        &part,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not fit"));
    assert!(!failed.exists());
    // Growing moves the backup to the new end.
    ok(&["gpt", "grow", img.to_str().unwrap(), "--size", "40M"]);
    assert_eq!(fs::metadata(&img).unwrap().len(), 40 << 20);
    let show: serde_json::Value =
        serde_json::from_str(&ok(&["gpt", "show", "--json", img.to_str().unwrap()])).unwrap();
    assert_eq!(show["backup_problem"], serde_json::Value::Null);
    assert_eq!(show["header"]["alternate_lba"], (40 << 20) / 4096 - 1);
    let out = imgpipe(&["gpt", "grow", img.to_str().unwrap(), "--size", "8M"]);
    assert_eq!(out.status.code(), Some(2), "shrinking is refused");
    // A damaged primary: show reads the backup and says so.
    let mut bytes = fs::read(&img).unwrap();
    bytes[4096 + 20] ^= 0xFF;
    fs::write(&img, &bytes).unwrap();
    let out = imgpipe(&["gpt", "show", img.to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("BACKUP"), "{text}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("primary GPT damaged"));
    // Not a GPT at all: exit 2, one line.
    fs::write(&img, vec![0u8; 1 << 20]).unwrap();
    let out = imgpipe(&["gpt", "show", img.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
}

#[test]
fn without_seed_another_build_directory_gives_the_same_disk() {
    let t = tempdir();
    let mut images = Vec::new();
    for dir in ["build-a", "elsewhere/build-b"] {
        let root = t.path().join(dir);
        let esp = root.join("esp");
        esp_dir(&esp);
        let img = root.join("disk.img");
        let part = format!("type=esp,size=8M,label=ESP,fat={}", esp.display());
        ok(&[
            "gpt",
            "create",
            "-o",
            img.to_str().unwrap(),
            "--size",
            "16M",
            "--epoch",
            "1700000000",
            "--part",
            &part,
        ]);
        images.push(fs::read(&img).unwrap());
    }
    assert!(
        images[0] == images[1],
        "default seed depends on the build directory"
    );
    // A different layout still gets different GUIDs.
    let other = t.path().join("other.img");
    ok(&[
        "gpt",
        "create",
        "-o",
        other.to_str().unwrap(),
        "--size",
        "16M",
        "--epoch",
        "1700000000",
        "--part",
        "type=esp,size=4M,label=ESP",
    ]);
    assert_ne!(fs::read(&other).unwrap()[512..1024], images[0][512..1024]);
}

fn sha256_hex(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(fs::read(path).unwrap());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Output bytes of `gpt create` are pinned: the default seed from the layout, FAT contents,
/// a file partition, a hybrid MBR, and a 4096-byte-sector disk with an explicit seed.
#[test]
fn golden_sha256_of_created_disks() {
    let t = tempdir();
    let esp = t.path().join("esp");
    esp_dir(&esp);
    let payload = t.path().join("payload.bin");
    fs::write(&payload, imgpipe_testsupport::pattern(300_000)).unwrap();
    let a = t.path().join("a.img");
    ok(&[
        "gpt",
        "create",
        "-o",
        a.to_str().unwrap(),
        "--size",
        "40M",
        "--epoch",
        "1700000000",
        "--hybrid-mbr",
        "1:ef:boot",
        "--part",
        &format!("type=esp,size=33M,label=ESP,fat={}", esp.display()),
        "--part",
        &format!(
            "type=linux-generic,size=1M,label=payload,file={}",
            payload.display()
        ),
        "--part",
        "type=root-x86-64,size=rest,label=root,flags=grow-fs",
    ]);
    let b = t.path().join("b.img");
    ok(&[
        "gpt",
        "create",
        "-o",
        b.to_str().unwrap(),
        "--size",
        "64M",
        "--sector-size",
        "4096",
        "--seed",
        SEED,
        "--epoch",
        "1700000000",
        "--part",
        &format!("type=esp,size=40M,fat={},fat-type=16", esp.display()),
        "--part",
        "type=linux-generic,size=rest",
    ]);
    assert_eq!(
        [sha256_hex(&a), sha256_hex(&b)],
        [
            "a11af9c7966ad2985597b2d97d8c48df1cf6e3dcef27b25dfb484d3cf8cddc83",
            "2e0d5fb1f52d1ae6fa9acc50c9e48d8b15274c89b1ef27aff247a6a9ef71f25f"
        ],
        "gpt create output changed"
    );
}
