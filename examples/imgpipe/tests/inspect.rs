//! `imgpipe inspect` recognises images made by the reference tools, and refuses garbage.

use std::fs;
use std::path::Path;
use std::process::Command;

use imgpipe_testsupport::{run, tempdir, tool};

fn inspect_json(path: &Path) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_imgpipe"))
        .args(["inspect", "--json"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "inspect failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn assert_format(path: &Path, format: &str) -> serde_json::Value {
    let v = inspect_json(path);
    assert_eq!(v["format"], format, "{v:#}");
    assert_eq!(v["size"], fs::metadata(path).unwrap().len(), "{v:#}");
    v
}

/// The text report of `inspect` with runs of spaces collapsed (the alignment is for
/// people; the tests compare words).
fn inspect_text(path: &Path) -> String {
    let out = imgpipe(&["inspect".as_ref(), path.as_os_str()]);
    assert!(
        out.status.success(),
        "inspect failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let squeezed: Vec<String> = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    squeezed.join("\n") + "\n"
}

/// Asserts that the text report of `path` starts with `FILE: FORMAT, SIZE (N bytes)` and
/// holds each of `lines` as a whole line (spaces collapsed).
fn assert_text(path: &Path, format: &str, lines: &[&str]) -> String {
    let text = inspect_text(path);
    let len = fs::metadata(path).unwrap().len();
    let first = text.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!("{}: {format}, ", path.display()))
            && (first.ends_with(&format!("({len} bytes)"))
                || first.ends_with(&format!(", {len} bytes"))),
        "{text}"
    );
    for want in lines {
        assert!(
            text.lines().any(|l| l == *want),
            "no line {want:?} in\n{text}"
        );
    }
    assert!(!text.contains('{') && !text.contains("[0]"), "{text}");
    text
}

fn small_tree(root: &Path) {
    fs::create_dir_all(root.join("boot/grub")).unwrap();
    fs::write(root.join("boot/grub/grub.cfg"), "set timeout=1\n").unwrap();
    fs::write(root.join("hello.txt"), "hello\n").unwrap();
}

#[test]
fn xorriso_iso_plain_and_hybrid() {
    let Some(xorriso) = tool("xorriso") else {
        return;
    };
    let t = tempdir();
    let src = t.path().join("src");
    small_tree(&src);
    let iso = t.path().join("plain.iso");
    run(
        &xorriso,
        ["-as", "mkisofs", "-R", "-J", "-V", "IMGPIPE_TEST", "-o"]
            .iter()
            .map(Into::into)
            .chain([iso.clone().into_os_string(), src.clone().into_os_string()])
            .collect::<Vec<std::ffi::OsString>>(),
    );
    let v = assert_format(&iso, "iso9660");
    assert_eq!(v["details"]["primary"]["volume_id"], "IMGPIPE_TEST");
    assert_eq!(v["details"]["joliet"], true);
    assert_text(
        &iso,
        "iso9660",
        &[
            "Volume ID: IMGPIPE_TEST",
            "Rock Ridge: yes",
            "Joliet: yes (volume ID \"IMGPIPE_TEST\")",
            "El Torito: no",
            "System area: empty",
        ],
    );

    // A hybrid image: an ESP image appended as partition 2 with a GPT, as live media do.
    let Some(mkfs_vfat) = tool("mkfs.vfat") else {
        return;
    };
    let esp = t.path().join("efi.img");
    fs::write(&esp, vec![0u8; 4 << 20]).unwrap();
    run(&mkfs_vfat, [esp.as_os_str()]);
    let hybrid = t.path().join("hybrid.iso");
    let mut args: Vec<std::ffi::OsString> = ["-as", "mkisofs", "-R", "-J", "-V", "HYBRID"]
        .iter()
        .map(Into::into)
        .collect();
    args.extend([
        "-append_partition".into(),
        "2".into(),
        "0xef".into(),
        esp.into_os_string(),
    ]);
    args.extend([
        "-appended_part_as_gpt".into(),
        "-o".into(),
        hybrid.clone().into_os_string(),
    ]);
    args.push(src.into_os_string());
    run(&xorriso, args);
    let v = assert_format(&hybrid, "iso9660");
    let sa = &v["details"]["system_area"];
    assert_eq!(sa["gpt"], true, "{v:#}");
    assert_eq!(sa["mbr"], true, "{v:#}");
    assert!(
        sa["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["partition_type"] == "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"),
        "{v:#}"
    );
    let text = assert_text(&hybrid, "iso9660", &["System area: hybrid: MBR and GPT"]);
    assert!(
        text.lines()
            .any(|l| l.starts_with("MBR 1 1 ") && l.ends_with(" ee GPT protective")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("GPT 2 ") && l.ends_with(" 4 MiB esp")),
        "{text}"
    );
}

#[test]
fn xorriso_el_torito_bios_and_uefi() {
    let Some(xorriso) = tool("xorriso") else {
        return;
    };
    let t = tempdir();
    let src = t.path().join("src");
    small_tree(&src);
    fs::write(src.join("boot/bios.img"), vec![0u8; 2048]).unwrap();
    fs::write(src.join("boot/efi.img"), vec![0u8; 64 << 10]).unwrap();
    let iso = t.path().join("boot.iso");
    let args = [
        "-as",
        "mkisofs",
        "-R",
        "-J",
        "-V",
        "BOOTME",
        "-A",
        "My App",
        "-publisher",
        "Me",
        "-sysid",
        "LINUX",
        "-b",
        "boot/bios.img",
        "-no-emul-boot",
        "-boot-load-size",
        "4",
        "-eltorito-alt-boot",
        "-e",
        "boot/efi.img",
        "-no-emul-boot",
        "-o",
    ];
    run(
        &xorriso,
        args.iter()
            .map(Into::into)
            .chain([iso.clone().into_os_string(), src.into_os_string()])
            .collect::<Vec<std::ffi::OsString>>(),
    );
    let text = assert_text(
        &iso,
        "iso9660",
        &[
            "Volume ID: BOOTME",
            "System ID: LINUX",
            "Publisher ID: ME",
            "Application ID: MY APP",
            "Rock Ridge: yes",
        ],
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("El Torito: 2 boot entries, catalog at block ")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("1 BIOS yes none 4 sectors block ") && l.ends_with(" default")),
        "{text}"
    );
    // 64 KiB of EFI image is 128 virtual sectors.
    assert!(
        text.lines()
            .any(|l| l.starts_with("2 UEFI yes none 128 sectors block ")),
        "{text}"
    );
    let created = text.lines().find(|l| l.starts_with("Created: ")).unwrap();
    assert!(created.ends_with(" UTC"), "{text}");
}

#[test]
fn mksquashfs_image() {
    let Some(mksquashfs) = tool("mksquashfs") else {
        return;
    };
    let t = tempdir();
    let src = t.path().join("src");
    small_tree(&src);
    fs::write(src.join("again.txt"), "hello\n").unwrap();
    let img = t.path().join("root.sqfs");
    run(
        &mksquashfs,
        [
            src.as_os_str(),
            img.as_os_str(),
            "-comp".as_ref(),
            "xz".as_ref(),
            "-Xbcj".as_ref(),
            "x86".as_ref(),
            "-mkfs-time".as_ref(),
            "1700000000".as_ref(),
            "-quiet".as_ref(),
            "-no-progress".as_ref(),
        ],
    );
    let v = assert_format(&img, "squashfs");
    assert_eq!(v["details"]["compressor"], "xz");
    assert_eq!(v["details"]["block_size"], 131072);
    assert_text(
        &img,
        "squashfs",
        &[
            "Compression: xz (dictionary 128 KiB, BCJ filters x86)",
            "Block size: 128 KiB",
            "Inodes: 6",
            "Flags: exportable (NFS), duplicates removed",
            "Built: 2023-11-14 22:13:20 UTC",
        ],
    );

    // zstd with a level, tail-ends packed, no export table.
    let img = t.path().join("zstd.sqfs");
    run(
        &mksquashfs,
        [
            src.as_os_str(),
            img.as_os_str(),
            "-comp".as_ref(),
            "zstd".as_ref(),
            "-Xcompression-level".as_ref(),
            "19".as_ref(),
            "-b".as_ref(),
            "64K".as_ref(),
            "-tailends".as_ref(),
            "-no-exports".as_ref(),
            "-no-duplicates".as_ref(),
            "-quiet".as_ref(),
            "-no-progress".as_ref(),
        ],
    );
    assert_text(
        &img,
        "squashfs",
        &[
            "Compression: zstd (level 19)",
            "Block size: 64 KiB",
            "Flags: tail-ends packed into fragments",
        ],
    );
}

#[test]
fn mkfs_erofs_image() {
    let Some(mkfs) = tool("mkfs.erofs") else {
        return;
    };
    let t = tempdir();
    let src = t.path().join("src");
    small_tree(&src);
    let img = t.path().join("root.erofs");
    run(
        &mkfs,
        [
            "-T0".as_ref(),
            "-U".as_ref(),
            "01234567-89ab-cdef-0123-456789abcdef".as_ref(),
            img.as_os_str(),
            src.as_os_str(),
        ],
    );
    let v = assert_format(&img, "erofs");
    assert_eq!(v["details"]["block_size"], 4096);
    assert_eq!(v["details"]["build_time"], 0);
    assert_text(
        &img,
        "erofs",
        &[
            "Block size: 4 KiB",
            "UUID: 01234567-89ab-cdef-0123-456789abcdef",
            "Built: 1970-01-01 00:00:00 UTC",
        ],
    );
    // Compressed: the lz4 zero-padding feature is named.
    let lz4 = t.path().join("lz4.erofs");
    run(
        &mkfs,
        [
            "-T0".as_ref(),
            "-zlz4hc".as_ref(),
            lz4.as_os_str(),
            src.as_os_str(),
        ],
    );
    let text = inspect_text(&lz4);
    let features = text.lines().find(|l| l.starts_with("Features: ")).unwrap();
    assert!(features.contains("zero-padding"), "{text}");
    // Flags by dump.erofs's names, compatible ones too; the compressors.
    let flags = text
        .lines()
        .find(|l| l.starts_with("Feature flags: "))
        .unwrap();
    assert!(
        flags.contains("sb_csum") && flags.contains("0padding"),
        "{text}"
    );
    assert!(text.lines().any(|l| l == "Compression: lz4"), "{text}");
    let v = assert_format(&lz4, "erofs");
    assert_eq!(v["details"]["compression"][0], "lz4", "{v}");
}

#[test]
fn sgdisk_gpt_and_sfdisk_mbr() {
    let Some(sgdisk) = tool("sgdisk") else { return };
    let t = tempdir();
    let disk = t.path().join("disk.img");
    fs::write(&disk, vec![0u8; 8 << 20]).unwrap();
    run(
        &sgdisk,
        [
            "-n".as_ref(),
            "1:2048:+2M".as_ref(),
            "-t".as_ref(),
            "1:ef00".as_ref(),
            "-c".as_ref(),
            "1:ESP".as_ref(),
            "-n".as_ref(),
            "2:0:0".as_ref(),
            "-t".as_ref(),
            "2:8304".as_ref(),
            "-c".as_ref(),
            "2:root".as_ref(),
            "-A".as_ref(),
            "2:set:60".as_ref(),
            "-U".as_ref(),
            "11111111-2222-3333-4444-555555555555".as_ref(),
            disk.as_os_str(),
        ],
    );
    // The table as `sgdisk -p` lists it: number, start, end, size, type, name.
    assert_text(
        &disk,
        "gpt",
        &[
            "Disk GUID: 11111111-2222-3333-4444-555555555555",
            "Sector size: 512 bytes",
            "Usable sectors: 34 to 16350",
            "Table: primary and backup ok",
            "Partitions: 2 of 128 entries",
            "# start end size type flags name",
            "1 2048 6143 2 MiB esp - ESP",
            "2 6144 16350 4.98 MiB root-x86-64 read-only root",
        ],
    );
    let v = assert_format(&disk, "gpt");
    let parts = v["details"]["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 2, "{v:#}");
    assert_eq!(parts[0]["name"], "ESP");
    assert_eq!(
        parts[0]["type_guid"],
        "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
    );
    assert_eq!(
        parts[1]["type_guid"],
        "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"
    );
    assert_eq!(v["details"]["entries_crc_ok"], true);

    let Some(sfdisk) = tool("sfdisk") else { return };
    let mbr = t.path().join("mbr.img");
    fs::write(&mbr, vec![0u8; 8 << 20]).unwrap();
    let mut child = Command::new(sfdisk)
        .args(["-q", "--no-reread", "--no-tell-kernel"])
        .arg(&mbr)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"label: dos\n,4M,83\n,,ef\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    let v = assert_format(&mbr, "mbr");
    let parts = v["details"]["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 2, "{v:#}");
    assert_eq!(parts[0][1]["partition_type"], 0x83);
    assert_text(
        &mbr,
        "mbr",
        &[
            "Partitions: 2",
            "1 2048 10239 8192 4 MiB 83 Linux",
            "2 10240 16383 6144 3 MiB ef EFI System",
        ],
    );
}

#[test]
fn mkfs_vfat_filesystems() {
    let Some(mkfs) = tool("mkfs.vfat") else {
        return;
    };
    let t = tempdir();
    for (bits, size_mib, expect) in [("12", 2, "Fat12"), ("16", 32, "Fat16"), ("32", 64, "Fat32")] {
        let img = t.path().join(format!("fat{bits}.img"));
        fs::write(&img, vec![0u8; size_mib << 20]).unwrap();
        run(
            &mkfs,
            [
                "-F".as_ref(),
                bits.as_ref(),
                "-n".as_ref(),
                "ESP".as_ref(),
                "-i".as_ref(),
                "12345678".as_ref(),
                img.as_os_str(),
            ],
        );
        let v = assert_format(&img, "fat");
        assert_eq!(v["details"]["fat_type"], expect, "{v:#}");
        assert_eq!(v["details"]["volume_label"], "ESP");
        assert_eq!(v["details"]["volume_id"], 0x1234_5678);
        let fat = format!("FAT type: FAT{bits}");
        let text = assert_text(
            &img,
            "fat",
            &[
                &fat,
                "Label: ESP",
                "Volume ID: 1234-5678",
                "Sector size: 512 bytes",
            ],
        );
        for label in ["Cluster size: ", "Clusters: ", "Sectors: "] {
            assert!(text.lines().any(|l| l.starts_with(label)), "{text}");
        }
    }
}

#[test]
fn cryptsetup_luks2() {
    let Some(cryptsetup) = tool("cryptsetup") else {
        return;
    };
    let t = tempdir();
    let img = t.path().join("luks.img");
    fs::write(&img, vec![0u8; 20 << 20]).unwrap();
    let key = t.path().join("key");
    fs::write(&key, "correct horse").unwrap();
    run(
        &cryptsetup,
        [
            "luksFormat".as_ref(),
            "--type".as_ref(),
            "luks2".as_ref(),
            "-q".as_ref(),
            "--disable-locks".as_ref(),
            "--pbkdf".as_ref(),
            "pbkdf2".as_ref(),
            "--pbkdf-force-iterations".as_ref(),
            "1000".as_ref(),
            "--label".as_ref(),
            "rootfs".as_ref(),
            "--key-file".as_ref(),
            key.as_os_str(),
            img.as_os_str(),
        ],
    );
    let v = assert_format(&img, "luks2");
    assert_eq!(v["details"]["label"], "rootfs");
    assert_eq!(v["details"]["primary"]["checksum_ok"], true);
    assert_eq!(v["details"]["secondary"]["checksum_ok"], true);
    assert_eq!(v["details"]["keyslots"], serde_json::json!(["0"]));
    let text = assert_text(
        &img,
        "luks2",
        &[
            "Label: rootfs",
            "Cipher: aes-xts-plain64, 512-bit key",
            "Data offset: 16 MiB (16777216 bytes)",
            "Data size: to the end of the device",
            "Keyslots: 1",
            "Tokens: 0",
        ],
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("0 pbkdf2-sha256, 1000 iterations 512 bits aes-xts-plain64")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("Primary header: at 0: ok (seqid ")),
        "{text}"
    );

    // The primary header wiped (as `wipefs` or a stray dd leaves it): still recognised from
    // the secondary copy at 16 KiB, and described from it.
    let mut bytes = fs::read(&img).unwrap();
    bytes[..4096].fill(0);
    fs::write(&img, bytes).unwrap();
    let v = assert_format(&img, "luks2");
    assert_eq!(v["details"]["label"], "rootfs");
    assert_eq!(v["details"]["secondary"]["checksum_ok"], true);
    assert_ne!(v["details"]["primary"]["checksum_ok"], true, "{v:#}");
    let text = assert_text(&img, "luks2", &["Label: rootfs"]);
    let primary = text
        .lines()
        .find(|l| l.starts_with("Primary header: "))
        .unwrap();
    assert!(!primary.contains(" ok"), "{text}");
}

#[test]
fn kickstart_file() {
    let t = tempdir();
    let ks = t.path().join("fedora.ks");
    fs::write(
        &ks,
        "# Fedora live\nlang en_US.UTF-8\nkeyboard us\ntimezone UTC\n%packages\n@core\n%end\n",
    )
    .unwrap();
    let v = assert_format(&ks, "kickstart");
    assert_eq!(
        v["details"]["commands"],
        serde_json::json!(["lang", "keyboard", "timezone"])
    );
    assert_text(
        &ks,
        "kickstart",
        &[
            "Lines: 7",
            "Commands: lang, keyboard, timezone",
            "Sections: %packages",
        ],
    );
}

#[test]
fn garbage_unreadable_and_usage_errors_exit_2_with_one_line() {
    let t = tempdir();
    let garbage = t.path().join("garbage.bin");
    fs::write(&garbage, imgpipe_testsupport::pattern(100_000)).unwrap();
    let empty = t.path().join("empty");
    fs::write(&empty, b"").unwrap();
    let missing = t.path().join("missing");
    for path in [&garbage, &empty, &missing] {
        for json in [false, true] {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_imgpipe"));
            cmd.arg("inspect");
            if json {
                cmd.arg("--json");
            }
            let out = cmd.arg(path).output().unwrap();
            assert_eq!(out.status.code(), Some(2), "{}", path.display());
            assert!(out.stdout.is_empty());
            let err = String::from_utf8(out.stderr).unwrap();
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(err.starts_with("imgpipe: error: "), "{err}");
        }
    }
    // A truncated hybrid-looking header: recognised, then a clean error naming the structure.
    let mut iso = vec![0u8; 16 * 2048 + 10];
    iso[32769..32774].copy_from_slice(b"CD001");
    let trunc = t.path().join("trunc.iso");
    fs::write(&trunc, iso).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_imgpipe"))
        .args(["inspect"])
        .arg(&trunc)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("volume descriptor"), "{err}");

    let out = Command::new(env!("CARGO_BIN_EXE_imgpipe"))
        .arg("no-such-subcommand")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(env!("CARGO_BIN_EXE_imgpipe"))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("imgpipe "));
}

fn imgpipe(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_imgpipe"))
        .args(args)
        .output()
        .unwrap()
}

/// Cuts `path` to `len` bytes and checks that `inspect` still describes it, says it is
/// truncated in text (a warning line) and JSON (a `truncated` field), and exits 0.
fn assert_truncated(path: &Path, len: u64, format: &str) {
    let f = fs::OpenOptions::new().write(true).open(path).unwrap();
    let full = f.metadata().unwrap().len();
    assert!(len < full);
    f.set_len(len).unwrap();
    drop(f);
    let v = inspect_json(path);
    assert_eq!(v["format"], format, "{v:#}");
    assert_eq!(v["truncated"]["actual"], len, "{v:#}");
    assert!(v["truncated"]["declared"].as_u64().unwrap() > len, "{v:#}");
    let out = imgpipe(&["inspect".as_ref(), path.as_os_str()]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let warning: Vec<&str> = text.lines().filter(|l| l.starts_with("warning:")).collect();
    assert_eq!(warning.len(), 1, "{text}");
    assert!(warning[0].contains("truncated"), "{text}");
    assert_eq!(text.lines().nth(1), Some(warning[0]), "{text}");
    assert!(
        text.starts_with(&format!("{}: {format}, ", path.display())),
        "{text}"
    );
}

#[test]
fn truncated_images_are_reported_not_refused() {
    let t = tempdir();
    let src = t.path().join("src");
    small_tree(&src);
    fs::write(src.join("big.bin"), imgpipe_testsupport::pattern(600_000)).unwrap();

    // A whole image is not truncated.
    let disk = t.path().join("disk.img");
    let out = imgpipe(&[
        "gpt".as_ref(),
        "create".as_ref(),
        "-o".as_ref(),
        disk.as_os_str(),
        "--size".as_ref(),
        "8M".as_ref(),
        "--part".as_ref(),
        "type=linux-generic,size=rest".as_ref(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = inspect_json(&disk);
    assert!(v.get("truncated").is_none(), "{v:#}");
    assert_truncated(&disk, 4 << 20, "gpt");

    let sqfs = t.path().join("root.sqfs");
    let out = imgpipe(&[
        "squashfs".as_ref(),
        "create".as_ref(),
        src.as_os_str(),
        "-o".as_ref(),
        sqfs.as_os_str(),
        "--comp".as_ref(),
        "gzip".as_ref(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(inspect_json(&sqfs).get("truncated").is_none());
    assert_truncated(&sqfs, 4096, "squashfs");

    let iso = t.path().join("root.iso");
    let out = imgpipe(&[
        "iso".as_ref(),
        "create".as_ref(),
        src.as_os_str(),
        "-o".as_ref(),
        iso.as_os_str(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(inspect_json(&iso).get("truncated").is_none());
    assert_truncated(&iso, 200_000, "iso9660");
}

#[test]
fn group_info_is_inspect_limited_to_one_format() {
    let t = tempdir();
    let disk = t.path().join("disk.img");
    let out = imgpipe(&[
        "gpt".as_ref(),
        "create".as_ref(),
        "-o".as_ref(),
        disk.as_os_str(),
        "--size".as_ref(),
        "4M".as_ref(),
        "--part".as_ref(),
        "type=esp,size=rest,label=ESP".as_ref(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Text by default, the same lines as `inspect`.
    let info = imgpipe(&["gpt".as_ref(), "info".as_ref(), disk.as_os_str()]);
    assert_eq!(info.status.code(), Some(0));
    let inspect = imgpipe(&["inspect".as_ref(), disk.as_os_str()]);
    assert_eq!(info.stdout, inspect.stdout);
    let text = String::from_utf8(info.stdout).unwrap();
    assert!(
        text.starts_with(&format!("{}: gpt, 4 MiB (4194304 bytes)\n", disk.display())),
        "{text}"
    );
    assert!(!text.trim_start().starts_with('{'), "{text}");
    // JSON on request, the shape of `inspect --json`.
    let json = imgpipe(&[
        "gpt".as_ref(),
        "info".as_ref(),
        "--json".as_ref(),
        disk.as_os_str(),
    ]);
    assert_eq!(json.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["format"], "gpt");
    assert_eq!(v["details"]["partitions"][0]["name"], "ESP");
    // Another format is an error naming both.
    for group in ["iso", "squashfs", "erofs", "fat", "luks"] {
        let out = imgpipe(&[group.as_ref(), "info".as_ref(), disk.as_os_str()]);
        assert_eq!(out.status.code(), Some(2), "{group}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains("it is gpt"), "{group}: {err}");
    }
    // --offset: the ESP inside the disk, as FAT.
    let tree = t.path().join("tree");
    small_tree(&tree);
    let esp = t.path().join("esp.img");
    let out = imgpipe(&[
        "gpt".as_ref(),
        "create".as_ref(),
        "-o".as_ref(),
        esp.as_os_str(),
        "--size".as_ref(),
        "40M".as_ref(),
        "--part".as_ref(),
        format!("type=esp,size=rest,label=ESP,fat={}", tree.display()).as_ref(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = imgpipe(&[
        "fat".as_ref(),
        "info".as_ref(),
        "--json".as_ref(),
        "--offset".as_ref(),
        "1048576".as_ref(),
        esp.as_os_str(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["format"], "fat");
    assert_eq!(v["details"]["volume_label"], "ESP");
    // The text names the offset it read at.
    let out = imgpipe(&[
        "fat".as_ref(),
        "info".as_ref(),
        "--offset".as_ref(),
        "1M".as_ref(),
        esp.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with(&format!("{} at offset 1048576: fat, ", esp.display())),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("Label:") && l.ends_with(" ESP")),
        "{text}"
    );
}
