//! `imgpipe diff`: identical builds exit 0; different ones exit 1 and name the ranges and the
//! structures that hold them.

use std::fs;
use std::process::Command;

use imgpipe_testsupport::{run, tempdir, tool};

fn diff(a: &std::path::Path, b: &std::path::Path) -> (i32, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_imgpipe"))
        .args(["diff", "--json"])
        .args([a, b])
        .output()
        .unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap(), v)
}

#[test]
fn identical_different_and_unreadable() {
    let t = tempdir();
    let a = t.path().join("a.bin");
    let b = t.path().join("b.bin");
    let mut data = imgpipe_testsupport::pattern(3 << 20);
    fs::write(&a, &data).unwrap();
    fs::write(&b, &data).unwrap();
    let (code, v) = diff(&a, &b);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["identical"], true);

    data[1_000_000] ^= 0xff;
    data[1_000_003] ^= 0xff;
    data.extend_from_slice(b"tail");
    fs::write(&b, &data).unwrap();
    let (code, v) = diff(&a, &b);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(v["differing_bytes"], 2 + 4);
    assert_eq!(v["differences"][0]["start"], 1_000_000);
    assert_eq!(v["differences"][0]["len"], 4);
    assert_eq!(v["differences"][1]["start"], 3 << 20);

    let out = Command::new(env!("CARGO_BIN_EXE_imgpipe"))
        .args(["diff"])
        .arg(&a)
        .arg(t.path().join("missing"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("imgpipe: error: cannot open"));
}

#[test]
fn names_the_gpt_partition_that_differs() {
    let Some(sgdisk) = tool("sgdisk") else { return };
    let t = tempdir();
    let a = t.path().join("a.img");
    fs::write(&a, vec![0u8; 8 << 20]).unwrap();
    run(
        &sgdisk,
        [
            "-U".as_ref(),
            "11111111-2222-3333-4444-555555555555".as_ref(),
            "-n".as_ref(),
            "1:2048:+2M".as_ref(),
            "-c".as_ref(),
            "1:ESP".as_ref(),
            "-u".as_ref(),
            "1:aaaaaaaa-2222-3333-4444-555555555555".as_ref(),
            "-n".as_ref(),
            "2:0:0".as_ref(),
            "-c".as_ref(),
            "2:root".as_ref(),
            "-u".as_ref(),
            "2:bbbbbbbb-2222-3333-4444-555555555555".as_ref(),
            a.as_os_str(),
        ],
    );
    let b = t.path().join("b.img");
    fs::copy(&a, &b).unwrap();
    // A byte inside partition 2 (starts at LBA 6144).
    let mut data = fs::read(&b).unwrap();
    data[6144 * 512 + 100] = 1;
    fs::write(&b, data).unwrap();
    let (code, v) = diff(&a, &b);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(v["format"], "gpt");
    assert_eq!(v["differences"].as_array().unwrap().len(), 1, "{v:#}");
    assert_eq!(
        v["differences"][0]["regions"],
        serde_json::json!(["gpt partition 2 (root)"])
    );
}

fn imgpipe(args: &[&std::ffi::OsStr]) {
    let out = Command::new(env!("CARGO_BIN_EXE_imgpipe"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The user's question after two builds of a live ISO differ: which file, inside the squashfs
/// inside the ISO? Both builds go through `imgpipe squashfs create` and `imgpipe iso create`.
#[test]
fn names_the_file_inside_the_squashfs_inside_the_iso() {
    let t = tempdir();
    let build = |name: &str, hostname: &str| {
        let root = t.path().join(format!("{name}-root"));
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::write(root.join("etc/hostname"), hostname).unwrap();
        fs::write(root.join("etc/os-release"), "ID=demo\n").unwrap();
        let iso_dir = t.path().join(format!("{name}-iso"));
        fs::create_dir_all(iso_dir.join("LiveOS")).unwrap();
        let sq = iso_dir.join("LiveOS/squashfs.img");
        let e = std::ffi::OsStr::new;
        imgpipe(&[
            e("squashfs"),
            e("create"),
            e("--epoch"),
            e("1700000000"),
            e("--clamp-mtime"),
            e("-o"),
            sq.as_os_str(),
            root.as_os_str(),
        ]);
        let iso = t.path().join(format!("{name}.iso"));
        imgpipe(&[
            e("iso"),
            e("create"),
            e("--epoch"),
            e("1700000000"),
            e("--clamp-mtime"),
            e("-o"),
            iso.as_os_str(),
            iso_dir.as_os_str(),
        ]);
        iso
    };
    let a = build("a", "live-a\n");
    let b = build("b", "live-b2\n");
    let (code, v) = diff(&a, &b);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(
        v["files"]["differences"],
        serde_json::json!([{
            "within": ["iso9660", "/LiveOS/squashfs.img (squashfs)"],
            "path": "/etc/hostname",
            "what": "content (7 vs 8 bytes)"
        }]),
        "{v:#}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_imgpipe"))
        .arg("diff")
        .args([&a, &b])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("iso9660 > /LiveOS/squashfs.img (squashfs): /etc/hostname: content"),
        "{text}"
    );
    // A rebuild of A is identical: no file report at all.
    let (code, v) = diff(&a, &a);
    assert_eq!(code, 0);
    assert!(v.get("files").is_none(), "{v:#}");
}

/// `rchar` and `read_bytes` of `/proc/PID/io` as printed by `cat`.
fn io_field(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .trim()
        .parse()
        .unwrap()
}

/// Two disks with identical partitions and one differing file: `imgpipe diff` reads each
/// image at most once (the byte diff); identical partitions are not read again, the file
/// comparison only reads inside the partition that differs.
#[test]
fn diff_of_two_disks_reads_each_at_most_once() {
    if !std::path::Path::new("/proc/self/io").exists() {
        return;
    }
    let t = tempdir();
    let payload = t.path().join("payload.bin");
    fs::write(&payload, imgpipe_testsupport::pattern(12 << 20)).unwrap();
    let mut disks = Vec::new();
    for (name, text) in [("a", "one\n"), ("b", "two\n")] {
        let esp = t.path().join(format!("esp-{name}"));
        fs::create_dir_all(esp.join("EFI/BOOT")).unwrap();
        fs::write(esp.join("EFI/BOOT/BOOTX64.EFI"), vec![0x4D; 200_000]).unwrap();
        fs::write(esp.join("build.txt"), text).unwrap();
        let disk = t.path().join(format!("{name}.img"));
        let out = Command::new(env!("CARGO_BIN_EXE_imgpipe"))
            .args([
                "gpt",
                "create",
                "--seed",
                "0123456789abcdef0123456789abcdef",
            ])
            .args(["--epoch", "1700000000", "--size", "40M", "-o"])
            .arg(&disk)
            .arg("--part")
            .arg(format!("type=esp,size=8M,label=ESP,fat={}", esp.display()))
            .arg("--part")
            .arg(format!(
                "type=linux-generic,size=14M,file={}",
                payload.display()
            ))
            .arg("--part")
            .arg(format!(
                "type=root-x86-64,size=rest,file={}",
                payload.display()
            ))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        disks.push(disk);
    }
    let sizes: u64 = disks.iter().map(|d| fs::metadata(d).unwrap().len()).sum();
    let report = t.path().join("report.json");
    // The shell reaps imgpipe, so its /proc/PID/io then includes imgpipe's reads.
    let out = Command::new("sh")
        .arg("-c")
        .arg(r#""$0" diff --json "$1" "$2" > "$3"; echo "exit: $?"; cat /proc/$$/io"#)
        .arg(env!("CARGO_BIN_EXE_imgpipe"))
        .args([&disks[0], &disks[1], &report])
        .output()
        .unwrap();
    let io = String::from_utf8(out.stdout).unwrap();
    assert!(io.contains("exit: 1"), "{io}");
    let v: serde_json::Value = serde_json::from_slice(&fs::read(&report).unwrap()).unwrap();
    let files = v["files"]["differences"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{v:#}");
    assert_eq!(files[0]["path"], "/build.txt", "{v:#}");
    assert!(
        v["differences"][0]["regions"][0]
            .as_str()
            .unwrap()
            .contains("gpt partition 1 (ESP)"),
        "{v:#}"
    );
    // `rchar` counts every byte read(2) returned, page cache or not; `read_bytes` only what
    // came from the device, so it is bounded by the same and checked too.
    let (rchar, read_bytes) = (io_field(&io, "rchar"), io_field(&io, "read_bytes"));
    assert!(
        rchar * 10 < sizes * 11,
        "read {rchar} bytes for images of {sizes} bytes together\n{io}"
    );
    assert!(read_bytes * 10 < sizes * 11, "{io}");
}
