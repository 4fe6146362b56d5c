//! `imgpipe luks ...` end to end, cross-checked with cryptsetup.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use imgpipe_testsupport::{run, tool};

fn imgpipe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imgpipe"))
        .args(args)
        .output()
        .expect("cannot run imgpipe")
}

fn ok(args: &[&str]) -> String {
    let out = imgpipe(args);
    assert!(
        out.status.success(),
        "imgpipe {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const CHEAP: &[&str] = &["--pbkdf", "pbkdf2", "--iterations", "1000"];

fn format(img: &Path, key: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "luks",
        "format",
        img.to_str().unwrap(),
        "--passphrase-file",
        key.to_str().unwrap(),
        "--size",
        "20971520",
        "--digest-iterations",
        "1000",
    ];
    args.extend_from_slice(CHEAP);
    args.extend_from_slice(extra);
    ok(&args)
}

fn cs_key(cs: &Path, img: &Path, key: &Path) -> String {
    let out = run(
        cs,
        [
            "--disable-locks",
            "luksDump",
            "--dump-volume-key",
            "-q",
            "--key-file",
            key.to_str().unwrap(),
            img.to_str().unwrap(),
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split("MK dump:")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .take_while(|t| t.len() == 2 && t.bytes().all(|b| b.is_ascii_hexdigit()))
        .collect()
}

#[test]
fn format_unlock_and_cryptsetup_agree() {
    let Some(cs) = tool("cryptsetup") else { return };
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    fs::write(&key, "hunter2\n").unwrap();
    let a = dir.path().join("a.img");
    let b = dir.path().join("b.img");
    for img in [&a, &b] {
        format(
            img,
            &key,
            &[
                "--seed",
                "00112233",
                "--sector-size",
                "4096",
                "--label",
                "L",
            ],
        );
    }
    assert!(
        fs::read(&a).unwrap() == fs::read(&b).unwrap(),
        "same seed, different bytes"
    );
    // The UUID is the seed rule's LUKS2 UUID (its own keyed stream).
    let dump = ok(&["inspect", "--json", a.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(&dump).unwrap();
    let seed = imgpipe_repro::Seed::parse_hex("00112233").unwrap();
    assert_eq!(v["details"]["uuid"], seed.luks2_uuid(), "{v:#}");
    // Formatting over an existing header needs --force.
    let again = imgpipe(&[
        "luks",
        "format",
        a.to_str().unwrap(),
        "--passphrase-file",
        key.to_str().unwrap(),
    ]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));

    let unlocked = ok(&[
        "luks",
        "unlock",
        a.to_str().unwrap(),
        "--passphrase-file",
        key.to_str().unwrap(),
        "--dump-volume-key",
    ]);
    assert_eq!(unlocked.trim(), cs_key(&cs, &a, &key));
    run(
        &cs,
        [
            "--disable-locks",
            "open",
            "--test-passphrase",
            "--key-file",
            key.to_str().unwrap(),
            a.to_str().unwrap(),
        ],
    );

    let wrong = dir.path().join("wrong");
    fs::write(&wrong, "hunter3\n").unwrap();
    let out = imgpipe(&[
        "luks",
        "unlock",
        a.to_str().unwrap(),
        "--passphrase-file",
        wrong.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));

    let json: serde_json::Value =
        serde_json::from_str(&ok(&["luks", "dump", a.to_str().unwrap(), "--json"])).unwrap();
    assert_eq!(json["label"], "L");
    assert_eq!(
        json["metadata"]["segments"]["0"]["crypt"]["sector_size"],
        4096
    );
    let text = ok(&["luks", "dump", a.to_str().unwrap()]);
    assert!(text.contains("sector: 4096 [bytes]"), "{text}");

    // Not a LUKS file: exit 2.
    let junk = dir.path().join("junk");
    fs::write(&junk, vec![0u8; 70000]).unwrap();
    let out = imgpipe(&["luks", "dump", junk.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn keyslot_subcommands() {
    let Some(cs) = tool("cryptsetup") else { return };
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("v.img");
    let (k1, k2, k3) = (
        dir.path().join("k1"),
        dir.path().join("k2"),
        dir.path().join("k3"),
    );
    fs::write(&k1, "one").unwrap();
    fs::write(&k2, "two").unwrap();
    fs::write(&k3, "three").unwrap();
    format(&img, &k1, &[]);
    let (i, k1s, k2s, k3s) = (
        img.to_str().unwrap(),
        k1.to_str().unwrap(),
        k2.to_str().unwrap(),
        k3.to_str().unwrap(),
    );
    let mut add = vec![
        "luks",
        "add-key",
        i,
        "--passphrase-file",
        k1s,
        "--new-passphrase-file",
        k2s,
    ];
    add.extend_from_slice(CHEAP);
    assert!(ok(&add).contains("keyslot 1 added"));
    run(
        &cs,
        [
            "--disable-locks",
            "open",
            "--test-passphrase",
            "--key-file",
            k2s,
            i,
        ],
    );

    let mut change = vec![
        "luks",
        "change-key",
        i,
        "--passphrase-file",
        k2s,
        "--new-passphrase-file",
        k3s,
    ];
    change.extend_from_slice(CHEAP);
    assert!(ok(&change).contains("keyslot 1 changed"));
    run(
        &cs,
        [
            "--disable-locks",
            "open",
            "--test-passphrase",
            "--key-file",
            k3s,
            i,
        ],
    );
    let out = imgpipe(&["luks", "unlock", i, "--passphrase-file", k2s]);
    assert_eq!(out.status.code(), Some(1));

    assert!(ok(&["luks", "remove-key", i, "--passphrase-file", k1s]).contains("keyslot 0 removed"));
    let out = imgpipe(&["luks", "unlock", i, "--passphrase-file", k1s]);
    assert_eq!(out.status.code(), Some(1));
    // The last keyslot is not removed without --force.
    let out = imgpipe(&["luks", "remove-key", i, "--key-slot", "1"]);
    assert_eq!(out.status.code(), Some(2));
    run(
        &cs,
        [
            "--disable-locks",
            "open",
            "--test-passphrase",
            "--key-file",
            k3s,
            i,
        ],
    );
}

#[test]
fn encrypt_decrypt_round_trip_and_against_cryptsetup() {
    let Some(cs) = tool("cryptsetup") else { return };
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    fs::write(&key, "pw").unwrap();
    let img = dir.path().join("v.img");
    format(&img, &key, &["--sector-size", "4096"]);
    let plain: Vec<u8> = (0..3 << 20)
        .map(|i: u32| (i * 7 + i / 4096) as u8)
        .collect();
    let plain_path = dir.path().join("plain");
    fs::write(&plain_path, &plain).unwrap();
    let (i, k) = (img.to_str().unwrap(), key.to_str().unwrap());
    ok(&[
        "luks",
        "encrypt",
        i,
        "--passphrase-file",
        k,
        "--input",
        plain_path.to_str().unwrap(),
    ]);
    let out_path = dir.path().join("out");
    ok(&[
        "luks",
        "decrypt",
        i,
        "--passphrase-file",
        k,
        "-o",
        out_path.to_str().unwrap(),
    ]);
    let out = fs::read(&out_path).unwrap();
    let mut partial = out_path.clone().into_os_string();
    partial.push(".partial");
    assert!(
        !Path::new(&partial).exists(),
        "temporary output left behind"
    );
    assert_eq!(
        out.len(),
        4 << 20,
        "payload is the image minus the 16 MiB data offset"
    );
    assert!(out[..plain.len()] == plain[..]);

    // Detached header: ours encrypts the data file, cryptsetup decrypts it in place.
    let hdr = dir.path().join("hdr.img");
    let data = dir.path().join("data.img");
    fs::write(&data, b"").unwrap();
    let mut args = vec![
        "luks",
        "format",
        hdr.to_str().unwrap(),
        "--passphrase-file",
        k,
        "--size",
        "16777216",
        "--data-offset",
        "0",
        "--digest-iterations",
        "1000",
    ];
    args.extend_from_slice(CHEAP);
    ok(&args);
    let (h, d) = (hdr.to_str().unwrap(), data.to_str().unwrap());
    ok(&[
        "luks",
        "encrypt",
        d,
        "--header",
        h,
        "--passphrase-file",
        k,
        "--input",
        plain_path.to_str().unwrap(),
    ]);
    assert!(fs::read(&data).unwrap() != plain);
    run(
        &cs,
        [
            "--disable-locks",
            "reencrypt",
            "--decrypt",
            "--force-offline-reencrypt",
            "-q",
            "--header",
            h,
            "--key-file",
            k,
            d,
        ],
    );
    assert!(fs::read(&data).unwrap() == plain);
}

/// `luks format` never harms a file it refuses: one holding data needs `--force`, a refused
/// option leaves the file at its size, and `--size` never cuts data off.
#[test]
fn format_refusals_leave_existing_files_alone() {
    let t = imgpipe_testsupport::tempdir();
    let key = t.path().join("key");
    fs::write(&key, b"pw").unwrap();
    let notes = t.path().join("notes.txt");
    let text: Vec<u8> = (0..20_000u32)
        .flat_map(|i| format!("{i}\n").into_bytes())
        .collect();
    fs::write(&notes, &text).unwrap();
    let (k, n) = (key.to_str().unwrap(), notes.to_str().unwrap());
    let o = imgpipe(&["luks", "format", "--passphrase-file", k, n]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--force"));
    assert_eq!(fs::read(&notes).unwrap(), text);
    let o = imgpipe(&[
        "luks",
        "format",
        "--passphrase-file",
        k,
        "--force",
        "--size",
        "20M",
        "--header-size",
        "3K",
        n,
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        fs::read(&notes).unwrap(),
        text,
        "a refused format keeps the file"
    );
    let o = imgpipe(&[
        "luks",
        "format",
        "--passphrase-file",
        k,
        "--force",
        "--size",
        "1K",
        n,
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--size"));
    assert_eq!(fs::read(&notes).unwrap(), text);
}
