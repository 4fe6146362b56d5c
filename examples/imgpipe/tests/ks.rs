//! `imgpipe ks validate|flatten|fmt|model`: exit codes, JSON shape, include resolution and
//! the canonical form.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use imgpipe_testsupport::tempdir;

fn imgpipe(args: &[&str], files: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imgpipe"))
        .args(args)
        .args(files)
        .output()
        .unwrap()
}

const GOOD: &str = "\
# a small but complete kickstart
lang en_US.UTF-8
keyboard --vckeymap=us
timezone Europe/Prague --utc
rootpw --lo
zerombr
clearpart --all --initlabel --disklabel=gpt
part /boot/efi --fstype=efi --size=600
part / --fstype=xfs --size=4096 --grow --encrypted --luks-version=luks2 --pbkdf=argon2id --pbkdf-memory=65536 --pbkdf-time=2000 --passphrase='s3cret pass'
bootloader --timeout=1 --append=\"console=ttyS0\"
network --bootproto=dhcp --device=link --activate
services --enabled=sshd,chronyd
selinux --enforcing
%packages --exclude-weakdeps
@core
kernel
-dracut-config-rescue
%end
%post --erroronfail
echo done > /root/marker
%end
";

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    fs::write(&p, text).unwrap();
    p
}

#[test]
fn validate_valid_file_json_and_exit_zero() {
    let d = tempdir();
    let f = write(d.path(), "good.ks", GOOD);
    let out = imgpipe(&["ks", "validate", "--json"], &[&f]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["version"], "F43");
    assert_eq!(v["valid"], true);
    assert_eq!(v["errors"].as_array().unwrap().len(), 0);
    assert_eq!(v["warnings"].as_array().unwrap().len(), 0);
    assert_eq!(v["file"], f.display().to_string());
}

#[test]
fn deprecations_warn_and_strict_fails() {
    let d = tempdir();
    let f = write(
        d.path(),
        "dep.ks",
        "timezone --isUtc UTC\n%packages --instLangs=en\n%end\n",
    );
    let out = imgpipe(&["ks", "validate", "--json"], &[&f]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let warnings = v["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 2, "{v:#}");
    assert!(warnings.iter().all(|w| w["kind"] == "deprecated"));
    assert_eq!(warnings[0]["line"], 1);
    assert_eq!(warnings[1]["line"], 2);
    assert!(warnings[0]["message"].as_str().unwrap().contains("--isUtc"));
    let strict = imgpipe(&["ks", "validate", "--strict"], &[&f]);
    assert_eq!(strict.status.code(), Some(1));
    // RHEL 10 removed both options: errors.
    let rhel = imgpipe(&["ks", "validate", "--json", "--version", "RHEL10"], &[&f]);
    assert_eq!(rhel.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&rhel.stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["errors"].as_array().unwrap().len(), 2, "{v:#}");
}

#[test]
fn invalid_files_exit_one_with_lines() {
    let d = tempdir();
    let f = write(
        d.path(),
        "bad.ks",
        "install\npart / --size=10 \\\n--grow\n%packages\n@core\n",
    );
    let out = imgpipe(&["ks", "validate"], &[&f]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(":1: error: install has been removed."),
        "{text}"
    );
    // The backslash does not continue the line: an extra argument, then an unknown command.
    assert!(text.contains(":2: error: Unexpected arguments"), "{text}");
    assert!(
        text.contains(":3: error: Unknown command: --grow"),
        "{text}"
    );
    assert!(
        text.contains("error-fatal: Section %packages does not end with %end."),
        "{text}"
    );
}

#[test]
fn unreadable_file_exits_two_and_others_still_checked() {
    let d = tempdir();
    let good = write(d.path(), "good.ks", GOOD);
    let missing = d.path().join("missing.ks");
    let out = imgpipe(&["ks", "validate", "--json"], &[&good, &missing]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("imgpipe: error: cannot read"));
    let bad_version = imgpipe(&["ks", "validate", "--version", "F2"], &[&good]);
    assert_eq!(bad_version.status.code(), Some(2));
}

#[test]
fn flatten_resolves_includes_and_refuses_missing_ones() {
    let d = tempdir();
    fs::create_dir(d.path().join("sub")).unwrap();
    write(d.path(), "sub/parts.ks", "part / --size=100\n");
    let top = write(
        d.path(),
        "top.ks",
        "lang C\n%include sub/parts.ks\n%packages\n%include sub/pkgs.ks\n%end\n",
    );
    write(d.path(), "sub/pkgs.ks", "vim\n");
    let out = imgpipe(&["ks", "flatten"], &[&top]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "lang C\npart / --size=100\n%packages\nvim\n%end\n"
    );
    let broken = write(d.path(), "broken.ks", "%include nowhere.ks\n");
    let out = imgpipe(&["ks", "flatten"], &[&broken]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nowhere.ks"));
}

#[test]
fn fmt_is_canonical_and_idempotent() {
    let d = tempdir();
    let f = write(d.path(), "good.ks", GOOD);
    let out = imgpipe(&["ks", "fmt"], &[&f]);
    assert_eq!(out.status.code(), Some(0));
    let canonical = String::from_utf8(out.stdout).unwrap();
    assert!(!canonical.contains('#'));
    assert!(
        canonical.contains("keyboard --vckeymap=us\n"),
        "{canonical}"
    );
    // An abbreviation is spelled in full.
    assert!(canonical.contains("rootpw --lock\n"), "{canonical}");
    assert!(
        canonical.contains("--passphrase='s3cret pass'"),
        "{canonical}"
    );
    let g = write(d.path(), "canonical.ks", &canonical);
    assert_eq!(
        imgpipe(&["ks", "fmt", "--check"], &[&g]).status.code(),
        Some(0)
    );
    assert_eq!(
        imgpipe(&["ks", "fmt", "--check"], &[&f]).status.code(),
        Some(1)
    );
    let again = imgpipe(&["ks", "fmt"], &[&g]);
    assert_eq!(String::from_utf8(again.stdout).unwrap(), canonical);
    // Still valid, with the same verdict.
    assert_eq!(imgpipe(&["ks", "validate"], &[&g]).status.code(), Some(0));
}

#[test]
fn model_reports_encryption_settings() {
    let d = tempdir();
    let f = write(d.path(), "good.ks", GOOD);
    let out = imgpipe(&["ks", "model"], &[&f]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let root = &v["partitions"][1];
    assert_eq!(root["mountpoint"], "/");
    assert_eq!(root["size"], 4096);
    assert_eq!(root["encryption"]["encrypted"], true);
    assert_eq!(root["encryption"]["luks_version"], "luks2");
    assert_eq!(root["encryption"]["pbkdf_memory"], 65536);
    assert_eq!(root["encryption"]["passphrase"], "s3cret pass");
    assert_eq!(v["selinux"], "enforcing");
    assert_eq!(
        v["services"]["enabled"],
        serde_json::json!(["sshd", "chronyd"])
    );
    assert_eq!(v["packages"]["groups"][0]["name"], "core");
    assert_eq!(v["scripts"][0]["erroronfail"], true);
}
