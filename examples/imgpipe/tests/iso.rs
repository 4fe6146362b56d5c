//! `imgpipe iso create | ls | extract`, end to end, with the reference tools as judges.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use imgpipe_testsupport::{
    Compare, TreeOptions, diff_trees, pattern, run, stdout_of, tempdir, tool, tricky_tree,
};

fn imgpipe(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imgpipe"))
        .args(args)
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn os(s: &str) -> &std::ffi::OsStr {
    s.as_ref()
}

#[test]
fn create_ls_extract_round_trip() {
    let t = tempdir();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    tricky_tree(&src, TreeOptions::default());
    let iso = t.path().join("out.iso");
    let text = ok(&imgpipe(&[
        os("iso"),
        os("create"),
        os("-o"),
        iso.as_os_str(),
        os("--label"),
        os("CLI_TEST"),
        os("--epoch"),
        os("1700000000"),
        src.as_os_str(),
    ]));
    assert!(text.contains("entries"), "{text}");

    let ls: serde_json::Value = serde_json::from_str(&ok(&imgpipe(&[
        os("iso"),
        os("ls"),
        iso.as_os_str(),
        os("--json"),
    ])))
    .unwrap();
    assert_eq!(ls["schema"], 1);
    assert_eq!(ls["format"], "iso9660");
    let items = ls["entries"].as_array().unwrap();
    let find = |p: &str| items.iter().find(|i| i["path"] == p).unwrap().clone();
    assert_eq!(find("/")["type"], "dir");
    assert_eq!(find("/bin/tool")["mode"], 0o755);
    assert_eq!(find("/bin/tool")["size"], 20);
    assert_eq!(find("/etc/setuid-ish")["mode"], 0o4755);
    assert_eq!(find("/link-relative")["type"], "symlink");
    assert_eq!(find("/link-relative")["target"], "bin/tool");
    assert_eq!(find("/fifo")["type"], "fifo");
    assert_eq!(find("/data/big.bin")["mtime"], 1_700_000_000);
    let plain = ok(&imgpipe(&[os("iso"), os("ls"), iso.as_os_str()]));
    assert!(
        plain.contains(" /link-absolute -> /etc/hostname"),
        "{plain}"
    );
    assert!(plain.contains("-rwsr-xr-x "), "{plain}");

    // Device nodes only with --devices: skipped and named otherwise.
    let safe = t.path().join("safe");
    let o = imgpipe(&[os("iso"), os("extract"), iso.as_os_str(), safe.as_os_str()]);
    assert_eq!(o.status.code(), Some(0));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("skipped 2 special files") && err.contains("/chardev"),
        "{err}"
    );
    assert!(!safe.join("chardev").exists() && !safe.join("blockdev").exists());

    let dest = t.path().join("dest");
    let out = ok(&imgpipe(&[
        os("iso"),
        os("extract"),
        iso.as_os_str(),
        dest.as_os_str(),
        os("--owners"),
        os("--devices"),
    ]));
    assert!(out.contains("1 hard link,"), "{out}");
    let d = diff_trees(&src, &dest, Compare::default());
    assert!(d.is_empty(), "{d:#?}");

    // Extracting again into the same place refuses to overwrite: exit 2, one-line error.
    let again = imgpipe(&[os("iso"), os("extract"), iso.as_os_str(), dest.as_os_str()]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).starts_with("imgpipe: error: "));

    if let Some(bsdtar) = tool("bsdtar") {
        let out = t.path().join("bsdtar");
        fs::create_dir(&out).unwrap();
        run(
            &bsdtar,
            [os("-xpf"), iso.as_os_str(), os("-C"), out.as_os_str()],
        );
        let d = diff_trees(
            &src,
            &out,
            Compare {
                dir_mtime: false,
                ..Compare::default()
            },
        );
        assert!(d.is_empty(), "{d:#?}");
    }
}

#[test]
fn reproducible_across_directory_umask_timezone_and_epoch_source() {
    let t = tempdir();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    tricky_tree(&src, TreeOptions::default());
    let a = t.path().join("a.iso");
    ok(&imgpipe(&[
        os("iso"),
        os("create"),
        os("-o"),
        a.as_os_str(),
        os("--epoch"),
        os("1700000000"),
        src.as_os_str(),
    ]));
    // Another working directory, umask, timezone; the epoch from SOURCE_DATE_EPOCH.
    let other = t.path().join("other/dir");
    fs::create_dir_all(&other).unwrap();
    let b = t.path().join("b.iso");
    let script = format!(
        "umask 077; cd '{}' && TZ=America/St_Johns SOURCE_DATE_EPOCH=1700000000 '{}' iso create -o '{}' '{}'",
        other.display(),
        env!("CARGO_BIN_EXE_imgpipe"),
        b.display(),
        src.display()
    );
    let out = Command::new("sh").args(["-c", &script]).output().unwrap();
    ok(&out);
    assert!(
        fs::read(&a).unwrap() == fs::read(&b).unwrap(),
        "builds differ"
    );
}

#[test]
fn reserved_slot_and_sort_weights() {
    let t = tempdir();
    let src = t.path().join("src");
    fs::create_dir_all(src.join("late")).unwrap();
    fs::write(src.join("a-first.bin"), pattern(10_000)).unwrap();
    fs::write(src.join("late/z-last.bin"), pattern(5_000)).unwrap();
    fs::write(src.join("token.txt"), b"per-download token\n").unwrap();
    let sort = t.path().join("sort.txt");
    fs::write(&sort, "late/z-last.bin 100\n").unwrap();
    let iso = t.path().join("slot.iso");
    let rep: serde_json::Value = serde_json::from_str(&ok(&imgpipe(&[
        os("iso"),
        os("create"),
        os("-o"),
        iso.as_os_str(),
        os("--sort"),
        sort.as_os_str(),
        os("--reserve"),
        os("token.txt:64K:1M"),
        os("--json"),
        src.as_os_str(),
    ])))
    .unwrap();
    let slot = &rep["slots"][0];
    assert_eq!(slot["path"], "token.txt");
    assert_eq!(slot["size"], 65536);
    let offset = slot["offset"].as_u64().unwrap();
    assert_eq!(offset % (1 << 20), 0);
    let img = fs::read(&iso).unwrap();
    let o = offset as usize;
    assert_eq!(&img[o..o + 19], b"per-download token\n");
    assert!(img[o + 19..o + 65536].iter().all(|&b| b == 0));
    // Sort weight 100 puts z-last before a-first.
    let ls: serde_json::Value = serde_json::from_str(&ok(&imgpipe(&[
        os("iso"),
        os("ls"),
        iso.as_os_str(),
        os("--json"),
    ])))
    .unwrap();
    assert!(
        ls["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["path"] == "/token.txt" && i["size"] == 65536)
    );
    let pos = |needle: &[u8]| img.windows(needle.len()).position(|w| w == needle).unwrap();
    // (The two files share a prefix: compare where their distinct tails land.)
    assert!(pos(&pattern(5_000)[4_900..]) < pos(&pattern(10_000)[9_900..]));
    if let Some(xorriso) = tool("xorriso") {
        let l = stdout_of(
            &xorriso,
            [
                os("-indev"),
                iso.as_os_str(),
                os("-find"),
                os("/token.txt"),
                os("-exec"),
                os("report_lba"),
            ],
        );
        assert!(l.contains(&format!("{}", offset / 2048)), "{l}");
    }
}

#[test]
fn hybrid_create_is_seen_by_sfdisk_and_inspect() {
    let Some(mkfs) = tool("mkfs.vfat") else {
        return;
    };
    let t = tempdir();
    let src = t.path().join("src");
    fs::create_dir_all(src.join("isolinux")).unwrap();
    fs::write(src.join("isolinux/isolinux.bin"), pattern(16_384)).unwrap();
    let esp = t.path().join("efi.img");
    fs::write(&esp, vec![0u8; 2 << 20]).unwrap();
    run(&mkfs, [esp.as_os_str()]);
    let mbr = t.path().join("isohdpfx.bin");
    fs::write(&mbr, pattern(432)).unwrap();
    let iso = t.path().join("live.iso");
    ok(&imgpipe(&[
        os("iso"),
        os("create"),
        os("-o"),
        iso.as_os_str(),
        os("--label"),
        os("LIVE"),
        os("--bios-boot"),
        os("isolinux/isolinux.bin"),
        os("--boot-catalog"),
        os("isolinux/boot.cat"),
        os("--boot-load-size"),
        os("4"),
        os("--boot-info-table"),
        os("--efi-partition"),
        esp.as_os_str(),
        os("--isohybrid-mbr"),
        mbr.as_os_str(),
        os("--gpt"),
        src.as_os_str(),
    ]));
    let v: serde_json::Value = serde_json::from_str(&ok(&imgpipe(&[
        os("inspect"),
        iso.as_os_str(),
        os("--json"),
    ])))
    .unwrap();
    let cat = &v["details"]["boot_catalog"]["entries"];
    assert_eq!(cat.as_array().unwrap().len(), 2, "{v:#}");
    assert_eq!(cat[0]["sector_count"], 4);
    assert_eq!(cat[1]["platform"], 0xEF);
    assert_eq!(v["details"]["system_area"]["gpt"], true);
    if let Some(sfdisk) = tool("sfdisk") {
        let d = stdout_of(&sfdisk, [os("-d"), iso.as_os_str()]);
        assert!(d.contains("label: gpt"), "{d}");
        assert!(
            d.contains("type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B"),
            "{d}"
        );
    }
    // A usage error: --boot-load-size without --bios-boot.
    let bad = imgpipe(&[
        os("iso"),
        os("create"),
        os("-o"),
        iso.as_os_str(),
        os("--boot-load-size"),
        os("4"),
        Path::new("/nonexistent").as_os_str(),
    ]);
    assert_eq!(bad.status.code(), Some(2));
}
