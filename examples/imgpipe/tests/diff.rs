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

/// `imgpipe KIND create --epoch 1700000000 --clamp-mtime EXTRA... -o OUT SRC` (KIND `squashfs`
/// or `iso`): the same bytes whenever and wherever the tree was written.
fn create(kind: &str, out: &std::path::Path, src: &std::path::Path, extra: &[&str]) {
    let fixed = [kind, "create", "--epoch", "1700000000", "--clamp-mtime"];
    let mut args: Vec<&std::ffi::OsStr> = fixed
        .iter()
        .chain(extra)
        .map(std::ffi::OsStr::new)
        .collect();
    args.extend([std::ffi::OsStr::new("-o"), out.as_os_str(), src.as_os_str()]);
    imgpipe(&args);
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
        create("squashfs", &sq, &root, &[]);
        let iso = t.path().join(format!("{name}.iso"));
        create("iso", &iso, &iso_dir, &[]);
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
            "kind": "size",
            "a": 7,
            "b": 8,
            "reason": {"format": "text", "details": ["line 1: -live-a +live-b2"]},
            "what": "content (7 vs 8 bytes)"
        }]),
        "{v:#}"
    );
    assert_eq!(v["schema"], 2);
    let out = Command::new(env!("CARGO_BIN_EXE_imgpipe"))
        .arg("diff")
        .args([&a, &b])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // Grouped by layer: the layer's line, then its files.
    assert!(
        text.contains(
            "files that differ:\n  iso9660 > /LiveOS/squashfs.img (squashfs):\n    /etc/hostname: content (7 vs 8 bytes)\n"
        ),
        "{text}"
    );
    // Both versions of the file, at its place under its layers, for any other tool.
    let dir = t.path().join("report");
    let out = Command::new(env!("CARGO_BIN_EXE_imgpipe"))
        .arg("diff")
        .arg("--report-dir")
        .arg(&dir)
        .args([&a, &b])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let side = |s: &str| fs::read_to_string(dir.join(s).join("LiveOS/squashfs.img/etc/hostname"));
    assert_eq!(side("a").unwrap(), "live-a\n");
    assert_eq!(side("b").unwrap(), "live-b2\n");
    let saved: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(saved["files"]["differences"], v["files"]["differences"]);
    // DIR must be new; nothing else is left beside it.
    let again = Command::new(env!("CARGO_BIN_EXE_imgpipe"))
        .arg("diff")
        .arg("--report-dir")
        .arg(&dir)
        .args([&a, &b])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--report-dir"));
    assert!(fs::read_dir(t.path()).unwrap().all(|e| {
        !e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(".imgpipe")
    }));
    // A cap too small for the pair leaves it out and says so.
    let small = t.path().join("small");
    let out = Command::new(env!("CARGO_BIN_EXE_imgpipe"))
        .arg("diff")
        .arg("--report-dir")
        .arg(&small)
        .args(["--report-max", "4"])
        .args([&a, &b])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!small.join("a").exists());
    assert!(String::from_utf8_lossy(&out.stderr).contains("left out"));

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

/// Each kind of difference between two squashfs images is reported with its kind and both
/// values; `--strict` adds where identical content lies (two FAT images mtools filled in two
/// orders), marked as noise, which the default leaves out.
#[test]
fn each_kind_is_reported_with_both_values() {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let t = tempdir();
    let mk = |name: &str, b: bool| {
        let r = t.path().join(name);
        fs::create_dir_all(r.join("d")).unwrap();
        fs::write(r.join("same-size"), if b { "bbbb" } else { "aaaa" }).unwrap();
        fs::write(r.join("grows"), if b { "12345" } else { "123" }).unwrap();
        fs::write(r.join("mode"), "m").unwrap();
        let mode = if b { 0o755 } else { 0o644 };
        fs::set_permissions(r.join("mode"), fs::Permissions::from_mode(mode)).unwrap();
        symlink(if b { "there" } else { "here" }, r.join("link")).unwrap();
        fs::write(r.join(if b { "only-b" } else { "only-a" }), "x").unwrap();
        if b {
            fs::create_dir(r.join("turns")).unwrap();
        } else {
            fs::write(r.join("turns"), "file").unwrap();
        }
        fs::write(r.join("old"), "t").unwrap();
        let mtime =
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(if b { 2000 } else { 1000 });
        fs::File::options()
            .write(true)
            .open(r.join("old"))
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        r
    };
    let sq = |root: &std::path::Path, name: &str| {
        let out = t.path().join(name);
        create("squashfs", &out, root, &[]);
        out
    };
    let (a, b) = (
        sq(&mk("ra", false), "a.sqfs"),
        sq(&mk("rb", true), "b.sqfs"),
    );
    let (code, v) = diff(&a, &b);
    assert_eq!(code, 1, "{v:#}");
    let found = |path: &str, kind: &str| {
        v["files"]["differences"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["path"] == path && d["kind"] == kind)
            .cloned()
            .unwrap_or_else(|| panic!("no {kind} for {path}: {v:#}"))
    };
    let d = found("/same-size", "content");
    assert_eq!(d["a"].as_str().unwrap().len(), 64, "{d}");
    assert_ne!(d["a"], d["b"]);
    assert_eq!(found("/grows", "size")["a"], 3);
    assert_eq!(found("/grows", "size")["b"], 5);
    assert_eq!(found("/mode", "mode")["a"], "0644");
    assert_eq!(found("/mode", "mode")["b"], "0755");
    assert_eq!(found("/link", "link_target")["a"], "here");
    assert_eq!(found("/link", "link_target")["b"], "there");
    found("/only-a", "only_in_a");
    found("/only-b", "only_in_b");
    assert_eq!(found("/turns", "type")["b"], "d");
    assert_eq!(found("/old", "mtime")["a"], 1000);
    assert!(
        v["files"]["differences"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d.get("noise").is_none()),
        "{v:#}"
    );

    // The same files copied into two FAT images in two orders.
    let (Some(mkfs), Some(mcopy)) = (tool("mkfs.vfat"), tool("mcopy")) else {
        return;
    };
    let files = t.path().join("files");
    fs::create_dir(&files).unwrap();
    for n in ["ONE.TXT", "TWO.TXT"] {
        fs::write(files.join(n), n).unwrap();
    }
    let mut fats = Vec::new();
    for (name, order) in [
        ("a.fat", ["ONE.TXT", "TWO.TXT"]),
        ("b.fat", ["TWO.TXT", "ONE.TXT"]),
    ] {
        let img = t.path().join(name);
        fs::File::create(&img).unwrap().set_len(8 << 20).unwrap();
        run(
            &mkfs,
            ["-i", "12345678", "-n", "ORDER", img.to_str().unwrap()],
        );
        for n in order {
            let st = Command::new(&mcopy)
                .env("MTOOLS_SKIP_CHECK", "1")
                .env("TZ", "UTC")
                .args(["-m", "-i", img.to_str().unwrap()])
                .arg(files.join(n))
                .arg("::")
                .status()
                .unwrap();
            assert!(st.success());
        }
        fats.push(img);
    }
    let strict = |extra: &[&str]| -> serde_json::Value {
        let out = Command::new(env!("CARGO_BIN_EXE_imgpipe"))
            .args(["diff", "--json"])
            .args(extra)
            .args([&fats[0], &fats[1]])
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let plain = strict(&[]);
    let diffs = plain["files"]["differences"].as_array().unwrap();
    assert!(diffs.iter().all(|d| d["kind"] != "placement"), "{plain:#}");
    let v = strict(&["--strict"]);
    let placed: Vec<&serde_json::Value> = v["files"]["differences"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["kind"] == "placement")
        .collect();
    let paths: Vec<&str> = placed.iter().map(|d| d["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["/ONE.TXT", "/TWO.TXT"], "{v:#}");
    for d in placed {
        assert_eq!(d["noise"], true);
        assert_ne!(d["a"], d["b"]);
    }
}

/// The usual culprits, each made to differ in exactly its usual way by the real tool, inside
/// two squashfs images: `diff` says why each file differs.
#[test]
fn says_why_the_usual_culprits_differ() {
    let t = tempdir();
    let sh = |dir: &std::path::Path, script: &str| {
        let o = Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(dir)
            .env("TZ", "UTC")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    let mut expect: Vec<(&str, &str, &str)> = vec![
        ("/notes.txt", "text", "line 2: -two +2"),
        ("/data.gz", "gzip", "header mtime 1000000000 -> 1000000001"),
    ];
    let python = tool("python3");
    let (gcc, ar, bsdtar) = (tool("gcc"), tool("ar"), tool("bsdtar"));
    for (name, second) in [("a", false), ("b", true)] {
        let r = t.path().join(name);
        fs::create_dir_all(&r).unwrap();
        let n = u32::from(second);
        fs::write(
            r.join("notes.txt"),
            if second {
                "one\n2\nthree\n"
            } else {
                "one\ntwo\nthree\n"
            },
        )
        .unwrap();
        sh(
            &r,
            &format!(
                "printf 'same payload\\n' > data && touch -d @100000000{n} data && gzip data && mv data.gz data.gz.tmp && mv data.gz.tmp data.gz"
            ),
        );
        if gcc.is_some() {
            sh(
                &r,
                &format!(
                    "printf 'int main(void){{return 0;}}\\n' > m.c && gcc -O1 -Wl,--build-id=0x{n}{n}{n}{n} -o prog m.c && rm m.c"
                ),
            );
        }
        if ar.is_some() {
            sh(
                &r,
                &format!(
                    "printf 'member\\n' > o.txt && touch -d @100000000{n} o.txt && ar rcU lib.a o.txt && rm o.txt"
                ),
            );
        }
        if bsdtar.is_some() {
            sh(
                &r,
                &format!(
                    "mkdir c && printf 'x\\n' > c/init && touch -d @100000000{n} c/init && (cd c && bsdtar --format newc -cf ../initrd.cpio init) && rm -r c"
                ),
            );
        }
        if let Some(py) = &python {
            let py = py.display();
            sh(
                &r,
                &format!(
                    "printf 'x = 1\\n' > m.py && touch -d @100000000{n} m.py && {py} -c 'import py_compile; py_compile.compile(\"m.py\", cfile=\"m.pyc\")' && rm m.py && \
                 {py} -c 'import zipfile; z = zipfile.ZipFile(\"w.zip\", \"w\"); z.writestr(zipfile.ZipInfo(\"pkg/m.txt\", (2020, 1, 1, 0, 0, {})), \"same\"); z.close()'",
                    2 * n
                ),
            );
        }
    }
    if gcc.is_some() {
        expect.push(("/prog", "elf", "build-id 0000 -> 1111"));
    }
    if ar.is_some() {
        expect.push(("/lib.a", "ar", "o.txt: mtime 1000000000 -> 1000000001"));
    }
    if bsdtar.is_some() {
        expect.push((
            "/initrd.cpio",
            "cpio",
            "init: mtime 1000000000 -> 1000000001",
        ));
    }
    if python.is_some() {
        expect.push(("/m.pyc", "pyc", "source mtime 1000000000 -> 1000000001"));
        expect.push((
            "/w.zip",
            "zip",
            "pkg/m.txt: DOS time 2020-01-01 00:00:00 -> 2020-01-01 00:00:02",
        ));
    }
    let sq = |name: &str| {
        let out = t.path().join(format!("{name}.sqfs"));
        let root = t.path().join(name);
        create("squashfs", &out, &root, &[]);
        out
    };
    let (a, b) = (sq("a"), sq("b"));
    let (code, v) = diff(&a, &b);
    assert_eq!(code, 1, "{v:#}");
    let diffs = v["files"]["differences"].as_array().unwrap();
    for (path, format, detail) in expect {
        let d = diffs
            .iter()
            .find(|d| d["path"] == path && (d["kind"] == "content" || d["kind"] == "size"))
            .unwrap_or_else(|| panic!("{path} not reported: {v:#}"));
        assert_eq!(d["reason"]["format"], format, "{path}: {d:#}");
        let details: Vec<&str> = d["reason"]["details"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap())
            .collect();
        assert!(
            details.iter().any(|x| x.starts_with(detail)),
            "{path}: no {detail:?} in {details:?}"
        );
    }

    // The same report as one page: well formed, naming every difference and reason, and
    // referencing nothing outside itself.
    let page = t.path().join("report.html");
    let out = Command::new(env!("CARGO_BIN_EXE_imgpipe"))
        .arg("diff")
        .arg("--html")
        .arg(&page)
        .args([&a, &b])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let html = fs::read_to_string(&page).unwrap();
    for d in diffs {
        let path = d["path"].as_str().unwrap();
        assert!(
            html.contains(&format!("<code>{path}</code>")),
            "{path} not in the page"
        );
        for x in d["reason"]["details"].as_array().into_iter().flatten() {
            let x = x.as_str().unwrap().replace('>', "&gt;");
            assert!(html.contains(&x), "{x} not in the page");
        }
    }
    for outside in [
        "http:", "https:", "src=", "href=", "url(", "<script", "@import",
    ] {
        assert!(!html.contains(outside), "the page references {outside}");
    }
    if let Some(py) = tool("python3") {
        let o = Command::new(py)
            .args([
                "-c",
                "import sys, xml.etree.ElementTree as E; E.parse(sys.argv[1])",
            ])
            .arg(&page)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "not well formed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// A file that grew early in a squashfs shifts every block after it: the files behind it are
/// still found identical by comparing their compressed blocks as stored, without
/// decompressing and hashing them.
#[test]
fn shifted_compressed_files_are_compared_as_stored() {
    let t = tempdir();
    let text: String = (0..400_000).map(|i| format!("line {i}\n")).collect();
    let mut images = Vec::new();
    for (name, grows) in [("a", 300_000usize), ("b", 500_000)] {
        let r = t.path().join(name);
        fs::create_dir_all(&r).unwrap();
        fs::write(r.join("a-grows"), imgpipe_testsupport::pattern(grows)).unwrap();
        fs::write(r.join("z-big.txt"), &text).unwrap();
        let out = t.path().join(format!("{name}.sqfs"));
        create("squashfs", &out, &r, &[]);
        images.push(out);
    }
    let (code, v) = diff(&images[0], &images[1]);
    assert_eq!(code, 1, "{v:#}");
    let paths: Vec<&str> = v["files"]["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["/a-grows"], "{v:#}");
    // z-big.txt (about 5 MiB) was not decompressed and hashed on both sides (twice its
    // size): its compressed blocks were compared as stored.
    let read = v["files"]["bytes_read"].as_u64().unwrap();
    assert!(read < text.len() as u64, "{read} bytes read: {v:#}");
}

/// The largest the diff of two 100 MiB live-ISO-shaped images may grow (the issue's bound).
const DIFF_RSS_LIMIT_KIB: u64 = 128 << 10;

/// Two ISOs holding a squashfs of about 100 MiB, three files changed: `diff` names them,
/// stays under 128 MiB and writes nothing anywhere (no temporary file in TMPDIR, the
/// current directory or /dev/shm).
#[test]
fn diff_of_live_isos_is_bounded_and_writes_nothing() {
    if !std::path::Path::new("/proc/self/status").exists() {
        return;
    }
    let t = tempdir();
    let mut isos = Vec::new();
    for (name, changed) in [("a", false), ("b", true)] {
        let root = t.path().join(format!("{name}-root"));
        fs::create_dir_all(root.join("usr")).unwrap();
        for i in 0..25 {
            let mut data = imgpipe_testsupport::pattern(4 << 20);
            data[0] = i;
            if changed && [3, 11, 19].contains(&i) {
                data.extend_from_slice(b"changed");
            }
            fs::write(root.join(format!("usr/f{i:02}")), data).unwrap();
        }
        let iso_dir = t.path().join(format!("{name}-iso"));
        fs::create_dir_all(iso_dir.join("LiveOS")).unwrap();
        let sq = iso_dir.join("LiveOS/squashfs.img");
        let iso = t.path().join(format!("{name}.iso"));
        create("squashfs", &sq, &root, &["--comp", "lz4"]);
        create("iso", &iso, &iso_dir, &[]);
        isos.push(iso);
    }
    let shm = || fs::read_dir("/dev/shm").map_or(0, |d| d.count());
    let shm_before = shm();
    let (tmp, cwd) = (tempdir(), tempdir());
    let mut child = Command::new(env!("CARGO_BIN_EXE_imgpipe"))
        .args(["diff", "--json"])
        .args([&isos[0], &isos[1]])
        .current_dir(cwd.path())
        .env("TMPDIR", tmp.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // VmHWM is the high-water mark: its last reading before the exit bounds the peak.
    let status = format!("/proc/{}/status", child.id());
    let out = std::thread::spawn({
        let mut stdout = child.stdout.take().unwrap();
        move || {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut stdout, &mut s).unwrap();
            s
        }
    });
    let mut peak_kib = 0u64;
    while child.try_wait().unwrap().is_none() {
        if let Ok(s) = fs::read_to_string(&status)
            && let Some(kib) = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak_kib = peak_kib.max(kib);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let v: serde_json::Value = serde_json::from_str(&out.join().unwrap()).unwrap();
    let paths: Vec<&str> = v["files"]["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["/usr/f03", "/usr/f11", "/usr/f19"], "{v:#}");
    assert!(
        peak_kib > 0 && peak_kib < DIFF_RSS_LIMIT_KIB,
        "peak {peak_kib} KiB"
    );
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
    assert_eq!(fs::read_dir(cwd.path()).unwrap().count(), 0);
    assert!(shm() <= shm_before, "a file appeared in /dev/shm");
}

/// `imgpipe diff EXTRA... --json A B`: the exit code, the report, and stderr.
fn diff_with(
    a: &std::path::Path,
    b: &std::path::Path,
    extra: &[&std::ffi::OsStr],
) -> (i32, serde_json::Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_imgpipe"))
        .args(["diff", "--json"])
        .args(extra)
        .args([a, b])
        .output()
        .unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap(), v, err)
}

/// Each file difference as (`within` joined with ` > `, `path`).
fn file_diffs(v: &serde_json::Value) -> Vec<(String, String)> {
    v["files"]["differences"]
        .as_array()
        .unwrap_or_else(|| panic!("no file differences: {v:#}"))
        .iter()
        .map(|d| {
            let within: Vec<&str> = d["within"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l.as_str().unwrap())
                .collect();
            (within.join(" > "), d["path"].as_str().unwrap().to_owned())
        })
        .collect()
}

/// Two small trees that differ in `/etc/hostname` only, at `DIR/a-root` and `DIR/b-root`.
fn hostname_trees(dir: &std::path::Path) -> [std::path::PathBuf; 2] {
    ["a", "b"].map(|name| {
        let root = dir.join(format!("{name}-root"));
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::write(root.join("etc/hostname"), format!("host-{name}\n")).unwrap();
        fs::write(root.join("etc/os-release"), "ID=demo\n").unwrap();
        fs::write(root.join("big"), imgpipe_testsupport::pattern(300_000)).unwrap();
        imgpipe_testsupport::set_mtimes(&root, 1_700_000_000);
        root
    })
}

/// A 4 MiB LUKS2 volume at `out` (data at 1 MiB) whose payload is `payload`, under the
/// passphrase in `key`: formatted by `imgpipe luks format --seed SEED` (cheap PBKDF2), or by
/// cryptsetup when `seed` is `None`; the payload encrypted by `imgpipe luks encrypt`.
fn luks_volume(
    out: &std::path::Path,
    payload: &std::path::Path,
    key: &std::path::Path,
    seed: Option<&str>,
    cryptsetup: Option<&std::path::Path>,
) {
    match (seed, cryptsetup) {
        (Some(seed), _) => {
            let args = [
                "luks",
                "format",
                "--size",
                "4M",
                "--data-offset",
                "1M",
                "--pbkdf",
                "pbkdf2",
                "--iterations",
                "1000",
                "--digest-iterations",
                "1000",
                "--seed",
                seed,
                "--passphrase-file",
            ];
            let mut args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
            args.extend([key.as_os_str(), out.as_os_str()]);
            imgpipe(&args);
        }
        (None, Some(cs)) => {
            fs::File::create(out).unwrap().set_len(4 << 20).unwrap();
            run(
                cs,
                [
                    "luksFormat".as_ref(),
                    "--type".as_ref(),
                    "luks2".as_ref(),
                    "--batch-mode".as_ref(),
                    "--pbkdf".as_ref(),
                    "pbkdf2".as_ref(),
                    "--pbkdf-force-iterations".as_ref(),
                    "1000".as_ref(),
                    "--offset".as_ref(),
                    "2048".as_ref(),
                    "--key-file".as_ref(),
                    key.as_os_str(),
                    out.as_os_str(),
                ],
            );
        }
        (None, None) => unreachable!("a seed or cryptsetup"),
    }
    imgpipe(&[
        "luks".as_ref(),
        "encrypt".as_ref(),
        out.as_os_str(),
        "--passphrase-file".as_ref(),
        key.as_os_str(),
        "--input".as_ref(),
        payload.as_os_str(),
    ]);
}

/// Two builds whose root is a squashfs inside a LUKS2 volume made with one seed (so one
/// volume key): `diff --passphrase-file` names the one file that differs inside the payload,
/// reading only the sectors the byte diff found; without it, the payload is reported as
/// encrypted and not opened; a wrong passphrase is an input error naming the flag and the
/// image. The same volumes as the partitions of two GPT disks are opened the same way.
#[test]
fn names_the_file_inside_a_luks2_payload() {
    let t = tempdir();
    let key = t.path().join("key");
    fs::write(&key, "correct horse\n").unwrap();
    let bad = t.path().join("bad");
    fs::write(&bad, "wrong horse\n").unwrap();
    let seed = "00112233445566778899aabbccddeeff";
    let vols = hostname_trees(t.path()).map(|root| {
        let name = root
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace("-root", "");
        let sq = t.path().join(format!("{name}.sqfs"));
        create("squashfs", &sq, &root, &[]);
        let vol = t.path().join(format!("{name}.luks"));
        luks_volume(&vol, &sq, &key, Some(seed), None);
        vol
    });
    let [a, b] = &vols;
    let pass = [std::ffi::OsStr::new("--passphrase-file"), key.as_os_str()];

    // Without the passphrase: one difference, the payload, said to be encrypted.
    let (code, v, _) = diff_with(a, b, &[]);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(
        file_diffs(&v),
        [("luks2".into(), "payload".into())],
        "{v:#}"
    );
    let what = v["files"]["differences"][0]["what"].as_str().unwrap();
    assert!(
        what.contains("encrypted") && what.contains("--passphrase-file"),
        "{what}"
    );

    let (code, v, err) = diff_with(a, b, &pass);
    assert_eq!(code, 1, "{err} {v:#}");
    assert_eq!(
        file_diffs(&v),
        [("luks2 > payload (squashfs)".into(), "/etc/hostname".into())],
        "{v:#}"
    );
    // One seed, one header: the bytes differ in the data segment only.
    for r in v["differences"].as_array().unwrap() {
        assert_eq!(
            r["regions"],
            serde_json::json!(["LUKS2 crypt segment 0"]),
            "{v:#}"
        );
    }
    let d = &v["files"]["differences"][0];
    assert_eq!(d["kind"], "content", "{v:#}");
    assert_eq!(d["reason"]["format"], "text", "{v:#}");
    // One key and geometry: the byte diff's ranges were passed down. The payloads were
    // read where those ranges lie (their sectors, on both sides) and then as much as the
    // bare squashfs images' diff reads, not whole.
    let read = v["files"]["bytes_read"].as_u64().unwrap();
    let cover: u64 = v["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["len"].as_u64().unwrap())
        .sum();
    let (_, bare) = diff(&t.path().join("a.sqfs"), &t.path().join("b.sqfs"));
    let bare_read = bare["files"]["bytes_read"].as_u64().unwrap();
    assert!(
        read <= bare_read + 2 * (cover + 1024) && read < 3 << 20,
        "{read} bytes read, {bare_read} for the bare squashfs: {v:#}"
    );

    // A wrong passphrase: exit 2, one line naming the flag and the image.
    for (extra, flag, image) in [
        (vec![bad.as_os_str()], "--passphrase-file", a),
        (
            vec![
                key.as_os_str(),
                "--passphrase-file-b".as_ref(),
                bad.as_os_str(),
            ],
            "--passphrase-file-b",
            b,
        ),
    ] {
        let mut args = vec![std::ffi::OsStr::new("--passphrase-file")];
        args.extend(extra);
        let (code, v, err) = diff_with(a, b, &args);
        assert_eq!(code, 2, "{err} {v:#}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with(&format!("imgpipe: error: {flag}: ")),
            "{err}"
        );
        assert!(err.contains(&image.display().to_string()), "{err}");
    }

    // The volumes as partition 1 of two GPT disks.
    let Some(sgdisk) = tool("sgdisk") else { return };
    let disks = vols.each_ref().map(|vol| {
        let disk = vol.with_extension("disk");
        fs::File::create(&disk).unwrap().set_len(8 << 20).unwrap();
        run(
            &sgdisk,
            [
                "-U".as_ref(),
                "11111111-2222-3333-4444-555555555555".as_ref(),
                "-n".as_ref(),
                "1:2048:+4M".as_ref(),
                "-c".as_ref(),
                "1:root".as_ref(),
                "-u".as_ref(),
                "1:aaaaaaaa-2222-3333-4444-555555555555".as_ref(),
                disk.as_os_str(),
            ],
        );
        let mut data = fs::read(&disk).unwrap();
        data[1 << 20..5 << 20].copy_from_slice(&fs::read(vol).unwrap());
        fs::write(&disk, data).unwrap();
        disk
    });
    let (code, v, _) = diff_with(&disks[0], &disks[1], &[]);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(
        file_diffs(&v),
        [("gpt".into(), "partition 1 (root)".into())],
        "{v:#}"
    );
    let what = v["files"]["differences"][0]["what"].as_str().unwrap();
    assert!(what.contains("--passphrase-file"), "{what}");
    let (code, v, err) = diff_with(&disks[0], &disks[1], &pass);
    assert_eq!(code, 1, "{err} {v:#}");
    assert_eq!(
        file_diffs(&v),
        [(
            "gpt > partition 1 (root) (luks2) > payload (squashfs)".into(),
            "/etc/hostname".into()
        )],
        "{v:#}"
    );
    let (code, _, err) = diff_with(&disks[0], &disks[1], &[pass[0], bad.as_os_str()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("partition 1 (root) (luks2)"), "{err}");
}

/// Volumes cryptsetup formatted (each with its own random volume key) around EROFS images
/// mkfs.erofs made: the payloads are decrypted whole and compared, naming the one file.
#[test]
fn compares_the_payloads_of_cryptsetup_volumes() {
    let (Some(cs), Some(mkfs)) = (
        tool("cryptsetup"),
        imgpipe_testsupport::erofs_utils("mkfs.erofs"),
    ) else {
        return;
    };
    let t = tempdir();
    let key = t.path().join("key");
    fs::write(&key, "correct horse\n").unwrap();
    let vols = hostname_trees(t.path()).map(|root| {
        let name = root
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace("-root", "");
        let fs_img = t.path().join(format!("{name}.erofs"));
        run(
            &mkfs,
            [
                "--quiet".as_ref(),
                "-T1700000000".as_ref(),
                "-U".as_ref(),
                "11111111-2222-3333-4444-555555555555".as_ref(),
                fs_img.as_os_str(),
                root.as_os_str(),
            ],
        );
        let vol = t.path().join(format!("{name}.luks"));
        luks_volume(&vol, &fs_img, &key, None, Some(&cs));
        vol
    });
    let (code, v, err) = diff_with(
        &vols[0],
        &vols[1],
        &["--passphrase-file".as_ref(), key.as_os_str()],
    );
    assert_eq!(code, 1, "{err} {v:#}");
    assert_eq!(
        file_diffs(&v),
        [("luks2 > payload (erofs)".into(), "/etc/hostname".into())],
        "{v:#}"
    );
    let (code, v, _) = diff_with(&vols[0], &vols[1], &[]);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(
        file_diffs(&v),
        [("luks2".into(), "payload".into())],
        "{v:#}"
    );
}

/// Two volumes of other seeds (other volume keys) around one squashfs filling their
/// payloads: every ciphertext byte differs, the payloads are decrypted and found equal, and
/// the difference is the headers.
#[test]
fn equal_payloads_under_other_keys_leave_the_headers() {
    let t = tempdir();
    let key = t.path().join("key");
    fs::write(&key, "correct horse\n").unwrap();
    let [root, _] = hostname_trees(t.path());
    let sq = t.path().join("root.sqfs");
    create("squashfs", &sq, &root, &[]);
    // The whole payload (3 MiB): what is past the squashfs decrypts the same way too.
    fs::OpenOptions::new()
        .write(true)
        .open(&sq)
        .unwrap()
        .set_len(3 << 20)
        .unwrap();
    let [a, b] = ["a", "b"].map(|name| t.path().join(format!("{name}.luks")));
    luks_volume(
        &a,
        &sq,
        &key,
        Some("00112233445566778899aabbccddeeff"),
        None,
    );
    luks_volume(
        &b,
        &sq,
        &key,
        Some("ffeeddccbbaa99887766554433221100"),
        None,
    );
    let (code, v, err) = diff_with(&a, &b, &["--passphrase-file".as_ref(), key.as_os_str()]);
    assert_eq!(code, 1, "{err} {v:#}");
    assert_eq!(file_diffs(&v), [("luks2".into(), "header".into())], "{v:#}");
    assert_eq!(v["files"]["differences"][0]["kind"], "structure", "{v:#}");
    let (_, v, _) = diff_with(&a, &b, &[]);
    assert_eq!(
        file_diffs(&v),
        [("luks2".into(), "payload".into())],
        "{v:#}"
    );
}

/// A squashfs and an EROFS image (the repack `erofs create` makes of it, or of another
/// tree): the change of format heads the report, then the files that differ.
#[test]
fn a_squashfs_and_its_erofs_repack_are_compared_file_by_file() {
    let t = tempdir();
    let p = |n: &str| t.path().join(n);
    let bin = env!("CARGO_BIN_EXE_imgpipe");
    fs::create_dir_all(p("src/etc")).unwrap();
    fs::write(p("src/etc/motd"), "hello\n").unwrap();
    imgpipe_testsupport::set_mtimes(&p("src"), 1_700_000_000);
    let create = |args: &[&std::ffi::OsStr]| {
        let o = Command::new(bin).args(args).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    let (sq, same, other) = (p("a.sqfs"), p("same.erofs"), p("other.erofs"));
    create(&[
        "squashfs".as_ref(),
        "create".as_ref(),
        "-o".as_ref(),
        sq.as_os_str(),
        p("src").as_os_str(),
    ]);
    create(&[
        "erofs".as_ref(),
        "create".as_ref(),
        "-o".as_ref(),
        same.as_os_str(),
        sq.as_os_str(),
    ]);
    fs::write(p("src/etc/motd"), "world\n").unwrap();
    imgpipe_testsupport::set_mtimes(&p("src"), 1_700_000_000);
    create(&[
        "erofs".as_ref(),
        "create".as_ref(),
        "-o".as_ref(),
        other.as_os_str(),
        p("src").as_os_str(),
    ]);

    let (code, v) = diff(&sq, &same);
    assert_eq!(code, 1);
    let files = &v["files"]["differences"];
    assert_eq!(files.as_array().unwrap().len(), 1, "{v:#}");
    assert_eq!(files[0]["what"], "format squashfs -> erofs");

    let o = Command::new(bin)
        .arg("diff")
        .arg(&sq)
        .arg(&other)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("files that differ:\n  /: format squashfs -> erofs\n  squashfs -> erofs:\n    /etc/motd: content (6 vs 6 bytes)"),
        "{text}"
    );
}
