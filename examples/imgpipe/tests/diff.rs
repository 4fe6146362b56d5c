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
