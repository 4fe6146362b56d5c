//! `imgpipe build --reserve` and `imgpipe inject`: a piece put into the EROFS root's slot of
//! the ISO and the disk equals a rebuild with the piece in place; fsck.erofs and the file
//! listing see it; streaming equals the copy; bad input is one error with nothing changed.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use imgpipe_testsupport::{is_root, pattern, set_mtimes, tempdir};

fn imgpipe_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imgpipe"))
        .current_dir(dir)
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

fn write(path: &Path, data: impl AsRef<[u8]>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
}

const EPOCH: &str = "1700000000";

/// A tree, a kickstart and loaders in `d`.
fn inputs(d: &Path) {
    write(&d.join("root/boot/vmlinuz-6.1.0-test"), pattern(100_000));
    write(&d.join("root/boot/initrd.img-6.1.0-test"), pattern(50_001));
    write(&d.join("root/etc/hostname"), "kiosk\n");
    write(&d.join("ks.cfg"), "lang en_US.UTF-8\n");
    write(&d.join("bootx64.efi"), pattern(40_000));
    set_mtimes(d, 1_600_000_000);
}

fn build(d: &Path, extra: &[&str]) -> Output {
    let mut a = vec![
        "build",
        "--kickstart",
        "ks.cfg",
        "--root",
        "root",
        "-o",
        "live.iso",
        "--disk",
        "live.img",
        "--manifest",
        "m.json",
        "--label",
        "KIOSK",
        "--efi-loader",
        "bootx64.efi",
        "--rootfs",
        "erofs",
        "--comp",
        "lz4",
        "--epoch",
        EPOCH,
        "--seed",
        "00112233445566778899aabbccddeeff",
        "--force",
    ];
    a.extend_from_slice(extra);
    imgpipe_in(d, &a)
}

fn root_image(iso: &Path, manifest: &serde_json::Value) -> Vec<u8> {
    let f = manifest["outputs"][0]["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "/LiveOS/squashfs.img")
        .unwrap()
        .clone();
    let bytes = std::fs::read(iso).unwrap();
    let (o, n) = (
        f["offset"].as_u64().unwrap() as usize,
        f["size"].as_u64().unwrap() as usize,
    );
    bytes[o..o + n].to_vec()
}

#[test]
fn injection_equals_a_rebuild_and_the_tools_see_the_piece() {
    let t = tempdir();
    let d = t.path();
    inputs(d);
    ok(&build(d, &["--reserve", "srv/piece.html:64K"]));
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("m.json")).unwrap()).unwrap();
    let slot = &m["outputs"][0]["slots"][0];
    assert_eq!(slot["name"], "srv/piece.html");
    assert_eq!(slot["capacity"], 65536);
    assert_eq!(m["outputs"][1]["slots"][0]["name"], "srv/piece.html");
    let o = imgpipe_in(d, &["inject", "live.iso", "--list"]);
    ok(&o);
    assert!(String::from_utf8_lossy(&o.stdout).contains("srv/piece.html: 0 of 65536 bytes used"));

    let piece = b"<html>piece 42</html>\n".repeat(100);
    write(&d.join("piece.html"), &piece);
    ok(&imgpipe_in(
        d,
        &[
            "inject",
            "live.iso",
            "--put",
            "srv/piece.html=piece.html",
            "-o",
            "out.iso",
        ],
    ));
    ok(&imgpipe_in(
        d,
        &[
            "inject",
            "live.img",
            "--put",
            "/srv/piece.html=piece.html",
            "-o",
            "out.img",
        ],
    ));
    // Streaming gives the same bytes; in place too.
    let o = imgpipe_in(
        d,
        &[
            "inject",
            "live.iso",
            "--put",
            "srv/piece.html=piece.html",
            "-o",
            "-",
        ],
    );
    ok(&o);
    let out_iso = std::fs::read(d.join("out.iso")).unwrap();
    assert!(o.stdout == out_iso, "streamed bytes differ from -o OUT");
    std::fs::copy(d.join("live.iso"), d.join("inplace.iso")).unwrap();
    ok(&imgpipe_in(
        d,
        &[
            "inject",
            "inplace.iso",
            "--put",
            "srv/piece.html=piece.html",
            "--in-place",
        ],
    ));
    assert!(std::fs::read(d.join("inplace.iso")).unwrap() == out_iso);

    // fsck.erofs checks the injected root and extracts the piece.
    let root = d.join("root.erofs");
    std::fs::write(&root, root_image(&d.join("out.iso"), &m)).unwrap();
    if let Some(fsck) = imgpipe_testsupport::erofs_utils("fsck.erofs") {
        let x = d.join("x");
        let mut arg = OsString::from("--extract=");
        arg.push(&x);
        ok(&Command::new(fsck).arg(arg).arg(&root).output().unwrap());
        assert_eq!(std::fs::read(x.join("srv/piece.html")).unwrap(), piece);
    }
    let o = imgpipe_in(d, &["erofs", "ls", "--json", "root.erofs"]);
    ok(&o);
    assert!(String::from_utf8_lossy(&o.stdout).contains(&format!("\"size\": {}", piece.len())));

    // The same build with the piece in the tree gives the injected bytes.
    if is_root() {
        write(&d.join("root/srv/piece.html"), &piece);
        std::fs::set_permissions(d.join("root/srv"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        // As the first build saw the tree, with the piece where the placeholder was.
        set_mtimes(&d.join("root"), 1_600_000_000);
        set_mtimes(&d.join("root/srv"), 1_700_000_000);
        set_mtimes(&d.join("root/srv/piece.html"), 1_700_000_000);
        std::fs::rename(d.join("out.iso"), d.join("injected.iso")).unwrap();
        std::fs::rename(d.join("out.img"), d.join("injected.img")).unwrap();
        ok(&build(d, &["--reserve", "srv/piece.html:64K"]));
        for (built, injected) in [("live.iso", "injected.iso"), ("live.img", "injected.img")] {
            let o = imgpipe_in(d, &["diff", injected, built]);
            assert!(
                o.status.success(),
                "{built}: injection differs from a rebuild:\n{}",
                String::from_utf8_lossy(&o.stdout)
            );
        }
    }
}

#[test]
fn bad_input_is_one_error_and_nothing_changes() {
    let t = tempdir();
    let d = t.path();
    inputs(d);
    ok(&build(d, &["--reserve", "srv/piece.html:4K"]));
    let before = std::fs::read(d.join("live.iso")).unwrap();
    write(&d.join("big"), vec![1u8; 5000]);
    write(&d.join("small"), b"x");
    for (args, needle) in [
        (
            &["--put", "srv/piece.html=big", "--in-place"][..],
            "the piece is 5000 bytes; the slot holds at most 4096",
        ),
        (
            &["--put", "srv/other=small", "--in-place"][..],
            "no such slot; the image has srv/piece.html",
        ),
        (
            &["--put", "srv/piece.html=missing", "--in-place"][..],
            "cannot read missing",
        ),
    ] {
        let mut a = vec!["inject", "live.iso"];
        a.extend_from_slice(args);
        let o = imgpipe_in(d, &a);
        assert_eq!(o.status.code(), Some(2));
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(e.contains(needle), "{e}");
        assert!(
            std::fs::read(d.join("live.iso")).unwrap() == before,
            "{needle}: the image changed"
        );
    }
    // A truncated base: its table survives, its slot does not; or the table is cut too.
    for (len, needle) in [
        (before.len() - 2048, "truncated image"),
        (before.len() / 2, "truncated image"),
        (0x7000 + 100, "slot table"),
    ] {
        write(&d.join("cut.iso"), &before[..len]);
        let cut = std::fs::read(d.join("cut.iso")).unwrap();
        for out in [&["--in-place"][..], &["-o", "out.iso"], &["-o", "-"]] {
            let mut a = vec!["inject", "cut.iso", "--put", "srv/piece.html=small"];
            a.extend_from_slice(out);
            let o = imgpipe_in(d, &a);
            assert_eq!(o.status.code(), Some(2), "{out:?}");
            let e = String::from_utf8_lossy(&o.stderr);
            assert!(e.contains(needle), "{out:?}: {e}");
            assert_eq!(e.trim_end().lines().count(), 1, "{e}");
            assert!(o.stdout.is_empty(), "{out:?}: bytes went out");
            assert!(std::fs::read(d.join("cut.iso")).unwrap() == cut);
            assert!(!d.join("out.iso").exists(), "{out:?} left an output");
        }
    }
    // Two slots of one name are refused before anything is written.
    let o = build(
        d,
        &[
            "--reserve",
            "srv/piece.html:4K",
            "--reserve-iso",
            "/srv/piece.html:4K",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("two slots of one name"));
    // An image without slots, and a squashfs root, are refused with the reason.
    ok(&build(d, &[]));
    let o = imgpipe_in(d, &["inject", "live.iso", "--put", "a=small", "--in-place"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("built without --reserve"));
    let o = imgpipe_in(
        d,
        &[
            "build",
            "--kickstart",
            "ks.cfg",
            "--root",
            "root",
            "-o",
            "sq.iso",
            "--label",
            "K",
            "--efi-loader",
            "bootx64.efi",
            "--reserve",
            "a:4K",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("its inode table is compressed"));
    assert!(!d.join("sq.iso").exists());
}

/// `imgpipe rebuild m.json` in `d` proves the build.
fn rebuild_proves(d: &Path) {
    let work = tempdir();
    let o = imgpipe_in(
        d,
        &[
            "rebuild",
            "m.json",
            "--json",
            "--work",
            work.path().to_str().unwrap(),
        ],
    );
    ok(&o);
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["proven"], true, "{r:#}");
}

/// The manifest's recipe of ISO slots.
fn m_reserve_iso(d: &Path) -> serde_json::Value {
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("m.json")).unwrap()).unwrap();
    m["recipe"]["reserve_iso"].clone()
}

/// The size `imgpipe iso ls` gives `/piece.html` in `iso` through `namespace`.
fn iso_ls_size(d: &Path, iso: &str, namespace: &str) -> u64 {
    let o = imgpipe_in(d, &["iso", "ls", iso, "--json", "--namespace", namespace]);
    ok(&o);
    let ls: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    ls["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["path"]
                .as_str()
                .unwrap()
                .eq_ignore_ascii_case("/piece.html")
        })
        .unwrap_or_else(|| panic!("{namespace}: no /piece.html in {ls}"))["size"]
        .as_u64()
        .unwrap()
}

#[test]
fn iso_tree_slot_takes_smaller_and_larger_pieces_and_equals_a_rebuild() {
    let t = tempdir();
    let d = t.path();
    inputs(d);
    ok(&build(d, &["--reserve-iso", "/piece.html:64K"]));
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("m.json")).unwrap()).unwrap();
    let slot = &m["outputs"][0]["slots"][0];
    assert_eq!(slot["name"], "piece.html");
    assert_eq!(slot["within"], "iso9660");
    assert_eq!(slot["capacity"], 65536);
    assert_eq!(slot["size"], 0);
    // The primary and the Joliet record, each both-endian.
    let encodings: Vec<&str> = slot["size_fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["encoding"].as_str().unwrap())
        .collect();
    assert_eq!(encodings, ["le32", "be32", "le32", "be32"]);
    // The disk has no ISO tree: no slot there.
    assert!(m["outputs"][1]["slots"].as_array().unwrap().is_empty());
    assert_eq!(iso_ls_size(d, "live.iso", "auto"), 0);

    let small = b"<html>small</html>\n".to_vec();
    let large = b"<html>a larger piece</html>\n".repeat(700);
    assert!(large.len() > 2048 && large.len() < 65536);
    write(&d.join("small.html"), &small);
    write(&d.join("large.html"), &large);
    ok(&imgpipe_in(
        d,
        &[
            "inject",
            "live.iso",
            "--put",
            "piece.html=small.html",
            "-o",
            "small.iso",
        ],
    ));
    // Larger than the piece before it: injected over the small one, in place.
    std::fs::copy(d.join("small.iso"), d.join("large.iso")).unwrap();
    ok(&imgpipe_in(
        d,
        &[
            "inject",
            "large.iso",
            "--put",
            "/piece.html=large.html",
            "--in-place",
        ],
    ));
    for (iso, piece) in [("small.iso", &small), ("large.iso", &large)] {
        for ns in ["auto", "rock", "joliet", "iso"] {
            assert_eq!(iso_ls_size(d, iso, ns), piece.len() as u64, "{iso} {ns}");
        }
        let x = d.join(format!("x-{iso}"));
        ok(&imgpipe_in(
            d,
            &["iso", "extract", iso, x.to_str().unwrap()],
        ));
        assert!(
            &std::fs::read(x.join("piece.html")).unwrap() == piece,
            "{iso}"
        );
        // The reference tools read the new size from the primary and Joliet records.
        if let Some(xorriso) = imgpipe_testsupport::tool("xorriso") {
            let o = Command::new(&xorriso)
                .args(["-indev", iso, "-lsl", "/piece.html"])
                .current_dir(d)
                .output()
                .unwrap();
            ok(&o);
            let text = String::from_utf8_lossy(&o.stdout);
            assert!(
                text.lines().any(|l| l.contains("piece.html")
                    && l.split_whitespace().nth(4) == Some(&piece.len().to_string())),
                "{iso}: {text}"
            );
        }
        if let Some(isoinfo) = imgpipe_testsupport::tool("isoinfo") {
            for extra in [&[][..], &["-J"][..]] {
                let o = Command::new(&isoinfo)
                    .args(["-l", "-i", iso])
                    .args(extra)
                    .current_dir(d)
                    .output()
                    .unwrap();
                ok(&o);
                let text = String::from_utf8_lossy(&o.stdout);
                let line = text
                    .lines()
                    .find(|l| l.to_ascii_lowercase().contains("piece.html"))
                    .unwrap_or_else(|| panic!("{iso} {extra:?}: {text}"));
                assert!(
                    line.split_whitespace()
                        .any(|w| w == piece.len().to_string()),
                    "{iso} {extra:?}: {line}"
                );
            }
        }
    }

    // The same build with the large piece in place of the placeholder gives the injected
    // bytes.
    ok(&build(d, &["--reserve-iso", "/piece.html:64K=large.html"]));
    let o = imgpipe_in(d, &["diff", "large.iso", "live.iso"]);
    assert!(
        o.status.success(),
        "injection differs from a rebuild:\n{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(
        std::fs::read(d.join("large.iso")).unwrap() == std::fs::read(d.join("live.iso")).unwrap()
    );
    // The recipe keeps the ISO slot and its content: the rebuild proves the build.
    rebuild_proves(d);
    assert_eq!(m_reserve_iso(d)[0][2], "large.html");

    // A piece larger than the slot is refused with both sizes.
    write(&d.join("huge.html"), vec![b'x'; 70_000]);
    let o = imgpipe_in(
        d,
        &[
            "inject",
            "live.iso",
            "--put",
            "piece.html=huge.html",
            "-o",
            "huge.iso",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("the piece is 70000 bytes; the slot holds at most 65536")
    );
}

/// The bytes of the ESP (the partition of that type) of an output in the manifest.
fn esp_of(d: &Path, m: &serde_json::Value, output: usize, file: &str) -> Vec<u8> {
    let p = m["outputs"][output]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["type_guid"] == "C12A7328-F81F-11D2-BA4B-00A0C93EC93B")
        .unwrap_or_else(|| panic!("no ESP in output {output}"))
        .clone();
    let bytes = std::fs::read(d.join(file)).unwrap();
    let (o, n) = (
        p["offset"].as_u64().unwrap() as usize,
        p["size"].as_u64().unwrap() as usize,
    );
    bytes[o..o + n].to_vec()
}

/// `fsck.vfat -n` finds the FAT clean, and mtools and `imgpipe fat` read `piece` at
/// `/kiosk/piece.html` with its size.
fn esp_holds(d: &Path, esp: &[u8], name: &str, piece: &[u8]) {
    let img = d.join(format!("{name}.fat"));
    std::fs::write(&img, esp).unwrap();
    if let Some(fsck) = imgpipe_testsupport::tool("fsck.vfat") {
        let o = Command::new(fsck)
            .arg("-n")
            .arg(&img)
            .env("LC_ALL", "C")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{name}: fsck.vfat -n: {text}");
        assert_eq!(text.lines().count(), 2, "{name}: fsck.vfat -n: {text}");
    }
    if let (Some(mtype), Some(mdir)) = (
        imgpipe_testsupport::tool("mtype"),
        imgpipe_testsupport::tool("mdir"),
    ) {
        let m = |program: &Path, arg: &str| {
            let o = Command::new(program)
                .env("MTOOLS_SKIP_CHECK", "1")
                .arg("-i")
                .arg(&img)
                .arg(arg)
                .output()
                .unwrap();
            ok(&o);
            o.stdout
        };
        assert!(m(&mtype, "::/kiosk/piece.html") == piece, "{name}: mtype");
        let listing = String::from_utf8(m(&mdir, "::/kiosk")).unwrap();
        assert!(
            listing.lines().any(|l| l.ends_with(" piece.html")
                && l.split_whitespace().any(|w| w == piece.len().to_string())),
            "{name}: {listing}"
        );
    }
    let o = imgpipe_in(d, &["fat", "ls", "--json", img.to_str().unwrap()]);
    ok(&o);
    let ls: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let e = ls["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"] == "/kiosk/piece.html")
        .unwrap_or_else(|| panic!("{name}: {ls}"))
        .clone();
    assert_eq!(e["size"], piece.len() as u64, "{name}");
    let x = d.join(format!("x-{name}"));
    ok(&imgpipe_in(
        d,
        &["fat", "extract", img.to_str().unwrap(), x.to_str().unwrap()],
    ));
    assert!(
        std::fs::read(x.join("kiosk/piece.html")).unwrap() == piece,
        "{name}: extract"
    );
}

#[test]
fn esp_slot_takes_pieces_in_the_iso_and_the_disk_and_equals_a_rebuild() {
    let t = tempdir();
    let d = t.path();
    inputs(d);
    ok(&build(d, &["--reserve-esp", "/kiosk/piece.html:64K"]));
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("m.json")).unwrap()).unwrap();
    for (i, within) in [
        (0, "iso9660 > efiboot.img (fat)"),
        (1, "gpt partition 1 (fat)"),
    ] {
        let slot = &m["outputs"][i]["slots"][0];
        assert_eq!(slot["name"], "kiosk/piece.html");
        assert_eq!(slot["within"], within);
        assert_eq!(
            (slot["capacity"].as_u64(), slot["size"].as_u64()),
            (Some(65536), Some(0))
        );
        let encodings: Vec<&str> = slot["size_fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["encoding"].as_str().unwrap())
            .collect();
        // The size, the first cluster, both FATs' chains (and FAT32's free count, twice).
        let chain = if i == 0 { "le16-chain" } else { "le32-chain" };
        let mut want = vec!["le32", "le16-if-any", chain, chain];
        if i == 1 {
            want.extend(["le32-free", "le32-free"]);
        }
        assert_eq!(encodings, want, "{within}");
    }
    assert_eq!(m["recipe"]["reserve_esp"][0][1], 65536);
    esp_holds(d, &esp_of(d, &m, 0, "live.iso"), "built-iso", b"");
    esp_holds(d, &esp_of(d, &m, 1, "live.img"), "built-disk", b"");

    let small = b"<html>small</html>\n".to_vec();
    let large = b"<html>a near-capacity piece</html>\n".repeat(1860);
    assert!(large.len() > 65_000 && large.len() <= 65536);
    write(&d.join("small.html"), &small);
    write(&d.join("large.html"), &large);
    for (piece, file) in [(&small, "small"), (&large, "large")] {
        for (i, image) in [(0, "iso"), (1, "img")] {
            let out = format!("{file}.{image}");
            ok(&imgpipe_in(
                d,
                &[
                    "inject",
                    &format!("live.{image}"),
                    "--put",
                    &format!("kiosk/piece.html={file}.html"),
                    "-o",
                    &out,
                ],
            ));
            esp_holds(d, &esp_of(d, &m, i, &out), &out, piece);
        }
    }
    if let Some(sgdisk) = imgpipe_testsupport::tool("sgdisk") {
        for img in ["small.img", "large.img"] {
            let o = Command::new(&sgdisk)
                .arg("-v")
                .arg(d.join(img))
                .output()
                .unwrap();
            let v = String::from_utf8_lossy(&o.stdout);
            assert!(v.contains("No problems found"), "{img}: {v}");
        }
    }

    // The same build with the large piece in the slot gives the injected bytes.
    ok(&build(
        d,
        &["--reserve-esp", "/kiosk/piece.html:64K=large.html"],
    ));
    for (built, injected) in [("live.iso", "large.iso"), ("live.img", "large.img")] {
        let o = imgpipe_in(d, &["diff", injected, built]);
        assert!(
            o.status.success(),
            "{built}: injection differs from a rebuild:\n{}",
            String::from_utf8_lossy(&o.stdout)
        );
        assert!(
            std::fs::read(d.join(built)).unwrap() == std::fs::read(d.join(injected)).unwrap(),
            "{built}"
        );
    }
    // The recipe keeps the slot and its content: the rebuild proves the build.
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("m.json")).unwrap()).unwrap();
    assert_eq!(m["recipe"]["reserve_esp"][0][2], "large.html");
    rebuild_proves(d);

    // A piece over the capacity is refused with both sizes, the image untouched.
    write(&d.join("huge.html"), vec![b'x'; 70_000]);
    let before = std::fs::read(d.join("live.img")).unwrap();
    let o = imgpipe_in(
        d,
        &[
            "inject",
            "live.img",
            "--put",
            "kiosk/piece.html=huge.html",
            "--in-place",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("the piece is 70000 bytes; the slot holds at most 65536")
    );
    assert!(std::fs::read(d.join("live.img")).unwrap() == before);
}

#[test]
fn esp_slots_are_refused_before_anything_is_written() {
    let t = tempdir();
    let d = t.path();
    inputs(d);
    write(&d.join("big"), vec![1u8; 5000]);
    for (args, needle) in [
        (
            &[
                "--reserve-iso",
                "piece.html:4K",
                "--reserve-esp",
                "/piece.html:4K",
            ][..],
            "two slots of one name",
        ),
        (
            &["--reserve-esp", "EFI/BOOT/bootx64.efi:4K"][..],
            "already exists",
        ),
        (
            &["--reserve-esp", "boot/vmlinuz:4K"][..],
            "kernel and initrd",
        ),
        (
            &["--reserve-esp", "piece.html:4K=big"][..],
            "the content is 5000 bytes; the slot holds at most 4096",
        ),
        (&["--reserve-esp", "a:b:4K"][..], "invalid name"),
    ] {
        let o = build(d, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(e.contains(needle), "{args:?}: {e}");
        for f in ["live.iso", "live.img", "m.json"] {
            assert!(!d.join(f).exists(), "{args:?}: {f} written");
        }
    }
}

/// Unmounts and removes a mount point when dropped.
struct Mounted(std::path::PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Err(e) = imgpipe_testsupport::try_unmount(&self.0) {
            eprintln!("warning: {e}");
        }
    }
}

/// `inject -o OUT` on a file system that shares extents (XFS with reflink) copies nothing:
/// OUT shares the base's extents but for the blocks the patches rewrote, and holds the
/// bytes `inject -o -` streams.
#[test]
fn inject_into_a_copy_shares_extents_where_the_file_system_can() {
    let (Some(mkfs), Some(filefrag)) = (
        imgpipe_testsupport::tool("mkfs.xfs"),
        imgpipe_testsupport::tool("filefrag"),
    ) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "mkfs.xfs and filefrag are needed"
        );
        return;
    };
    if !is_root() {
        eprintln!("not root: cannot mount, skipped");
        return;
    }
    let t = tempdir();
    let d = t.path();
    inputs(d);
    write(&d.join("root/usr/data"), pattern(8 << 20));
    ok(&build(d, &["--reserve", "srv/piece.html:1M"]));
    write(&d.join("piece"), b"<html>reflinked</html>\n");
    let o = imgpipe_in(
        d,
        &[
            "inject",
            "live.iso",
            "--put",
            "srv/piece.html=piece",
            "-o",
            "-",
        ],
    );
    ok(&o);
    let want = o.stdout;

    let fs = d.join("xfs.img");
    std::fs::File::create(&fs)
        .unwrap()
        .set_len(320 << 20)
        .unwrap();
    ok(&Command::new(mkfs)
        .args(["-q", "-m", "reflink=1"])
        .arg(&fs)
        .output()
        .unwrap());
    let mnt = d.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    ok(&Command::new("mount")
        .args(["-o", "loop"])
        .arg(&fs)
        .arg(&mnt)
        .output()
        .unwrap());
    let _guard = Mounted(mnt.clone());
    std::fs::copy(d.join("live.iso"), mnt.join("live.iso")).unwrap();
    let base = std::fs::read(mnt.join("live.iso")).unwrap();
    let piece = d.join("piece");
    let o = imgpipe_in(
        &mnt,
        &[
            "inject",
            "live.iso",
            "--put",
            &format!("srv/piece.html={}", piece.display()),
            "-o",
            "out.iso",
        ],
    );
    ok(&o);
    assert!(std::fs::read(mnt.join("out.iso")).unwrap() == want);
    assert!(
        std::fs::read(mnt.join("live.iso")).unwrap() == base,
        "the base changed"
    );
    let o = Command::new(filefrag)
        .arg("-v")
        .arg(mnt.join("out.iso"))
        .output()
        .unwrap();
    ok(&o);
    let map = String::from_utf8_lossy(&o.stdout);
    // Extent lines: "N: logical..: physical..: length: expected: flags".
    let (mut shared, mut total) = (0u64, 0u64);
    for l in map.lines().filter(|l| {
        l.trim_start()
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    }) {
        let cols: Vec<&str> = l.split(':').map(str::trim).collect();
        let Some(len) = cols.get(3).and_then(|c| c.parse::<u64>().ok()) else {
            continue;
        };
        total += len;
        if l.contains("shared") {
            shared += len;
        }
    }
    assert!(total > 0, "{map}");
    // Unshared: the slot's 1 MiB (256 blocks, rewritten whole), and a block each for the
    // table and the size fields.
    assert!(
        total - shared <= 256 + 8,
        "only {shared} of {total} blocks shared:\n{map}"
    );
}
