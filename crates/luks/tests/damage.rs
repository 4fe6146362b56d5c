//! Damaged and hostile headers: copy fallback, truncation, and every metadata rule
//! cryptsetup enforces (checked against cryptsetup itself where it is installed).

use std::io::Cursor;

use imgpipe_luks::raw::BINARY_HEADER_SIZE;
use imgpipe_luks::{
    BinaryHeader, Error, FormatOptions, HashAlg, KdfParams, KeyslotParams, Luks2Header,
};
use imgpipe_testsupport::{run_status, tool};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::{Value, json};

const HDR: usize = 0x4000;
const PASS: &[u8] = b"pw";

fn opts() -> FormatOptions {
    FormatOptions {
        data_offset: 1 << 20,
        keyslot: KeyslotParams {
            kdf: KdfParams::Pbkdf2 {
                hash: HashAlg::Sha256,
                iterations: 1000,
            },
            ..KeyslotParams::default()
        },
        digest_iterations: 1000,
        ..FormatOptions::default()
    }
}

/// A small seeded volume: 1 MiB of metadata + 64 KiB payload.
fn volume() -> Vec<u8> {
    let mut dev = Cursor::new(vec![0u8; (1 << 20) + (64 << 10)]);
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    Luks2Header::format(&mut dev, &opts(), PASS, &mut rng).unwrap();
    dev.into_inner()
}

fn read(img: &[u8]) -> imgpipe_luks::Result<Luks2Header> {
    Luks2Header::read(&mut Cursor::new(img))
}

/// Replaces the JSON of both copies with `edit(json)` and fixes the checksums.
fn with_json(img: &[u8], edit: impl Fn(&mut Value)) -> Vec<u8> {
    let mut out = img.to_vec();
    let json_area = &img[BINARY_HEADER_SIZE..HDR];
    let end = json_area.iter().position(|&b| b == 0).unwrap();
    let mut v: Value = serde_json::from_slice(&json_area[..end]).unwrap();
    edit(&mut v);
    let text = serde_json::to_vec(&v).unwrap();
    for copy in [0, HDR] {
        let area = &mut out[copy..copy + HDR];
        area[BINARY_HEADER_SIZE..].fill(0);
        area[BINARY_HEADER_SIZE..BINARY_HEADER_SIZE + text.len()].copy_from_slice(&text);
        resum(area);
    }
    out
}

fn resum(area: &mut [u8]) {
    let mut bin = BinaryHeader::parse(area, 0).unwrap();
    bin.csum = [0; 64];
    area[..BINARY_HEADER_SIZE].copy_from_slice(&bin.to_bytes());
    let sum = bin.compute_checksum(area).unwrap();
    bin.csum[..32].copy_from_slice(&sum);
    area[..BINARY_HEADER_SIZE].copy_from_slice(&bin.to_bytes());
}

#[test]
fn damaged_primary_falls_back_to_secondary() {
    let img = volume();
    let mut bad = img.clone();
    bad[BINARY_HEADER_SIZE + 10] ^= 0x20; // JSON of the primary; checksum now wrong
    let hdr = read(&bad).unwrap();
    assert!(hdr.is_damaged());
    assert!(
        hdr.copies[0].problem.as_deref().unwrap().contains("csum"),
        "{:?}",
        hdr.copies
    );
    assert_eq!(hdr.copies[1].problem, None);
    let (_, vk) = hdr.unlock(&mut Cursor::new(&bad), PASS).unwrap();
    assert_eq!(
        vk,
        read(&img)
            .unwrap()
            .unlock(&mut Cursor::new(&img), PASS)
            .unwrap()
            .1
    );

    // Wiped primary magic: the secondary is found by probing the allowed offsets.
    let mut wiped = img.clone();
    wiped[..BINARY_HEADER_SIZE].fill(0);
    let hdr = read(&wiped).unwrap();
    assert!(hdr.copies[0].problem.as_deref().unwrap().contains("magic"));

    // Damaged secondary: primary used, secondary reported.
    let mut bad2 = img.clone();
    bad2[HDR + BINARY_HEADER_SIZE + 10] ^= 0x20;
    let hdr = read(&bad2).unwrap();
    assert!(hdr.copies[1].problem.is_some());
    assert_eq!(hdr.copies[0].problem, None);

    // Both damaged: an error naming the primary's problem.
    let mut both = bad.clone();
    both[HDR + BINARY_HEADER_SIZE + 10] ^= 0x20;
    let e = read(&both).unwrap_err();
    assert!(matches!(e, Error::NoValidHeader { .. }));
    assert!(e.to_string().contains("csum"), "{e}");
}

#[test]
fn newer_secondary_wins_and_rewrite_repairs() {
    let img = volume();
    let mut newer = img.clone();
    // Bump the secondary's seqid (offset 16 in the binary header) and fix its checksum.
    let seq = u64::from_be_bytes(newer[HDR + 16..HDR + 24].try_into().unwrap());
    newer[HDR + 16..HDR + 24].copy_from_slice(&(seq + 5).to_be_bytes());
    resum(&mut newer[HDR..2 * HDR]);
    let mut hdr = read(&newer).unwrap();
    assert_eq!(hdr.seqid, seq + 5);
    assert!(hdr.copies[0].problem.as_deref().unwrap().contains("older"));
    let mut dev = Cursor::new(newer);
    hdr.commit(&mut dev).unwrap();
    let again = read(dev.get_ref()).unwrap();
    assert!(!again.is_damaged());
    assert_eq!(again.seqid, seq + 6);
}

#[test]
fn every_truncated_prefix_fails_cleanly() {
    let img = volume();
    let end = 2 * HDR;
    let mut n = 0;
    while n < end {
        match read(&img[..n]) {
            // Without a whole primary copy nothing is usable.
            r if n < HDR => assert!(r.is_err(), "prefix {n} parsed"),
            // A whole primary and a cut secondary: the primary is used, the cut reported.
            r => assert!(
                r.unwrap().copies[1]
                    .problem
                    .as_deref()
                    .unwrap()
                    .contains("truncated")
            ),
        }
        n += if n < BINARY_HEADER_SIZE + 64 { 1 } else { 97 };
    }
    assert!(read(&img[..end]).is_ok());
    // Unlock with the keyslot area cut off fails cleanly too.
    let hdr = read(&img).unwrap();
    let cut = &img[..(1 << 15) + 1000];
    assert!(matches!(
        hdr.unlock(&mut Cursor::new(cut), PASS),
        Err(Error::Truncated { .. })
    ));
}

#[test]
fn same_seed_gives_identical_volume() {
    let a = volume();
    let b = volume();
    assert!(a == b);
    let mut dev = Cursor::new(vec![0u8; (1 << 20) + (64 << 10)]);
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    Luks2Header::format(&mut dev, &opts(), PASS, &mut rng).unwrap();
    assert!(dev.into_inner() != a);
}

#[test]
fn bytes_after_the_json_terminator_are_refused() {
    let img = volume();
    let mut bad = img.clone();
    bad[HDR - 10] = b'x';
    resum(&mut bad[..HDR]);
    bad[2 * HDR - 10] = b'x';
    resum(&mut bad[HDR..2 * HDR]);
    let e = read(&bad).unwrap_err().to_string();
    assert!(
        e.contains("padding") && e.contains("after the JSON terminator"),
        "{e}"
    );
}

#[test]
fn reencryption_and_unknown_requirements_refuse_unlock() {
    let img = volume();
    for (flag, want) in [
        ("online-reencrypt-v2", "reencryption"),
        ("future-thing", "future-thing"),
    ] {
        let bad = with_json(&img, |v| {
            v["config"]["requirements"] = json!({ "mandatory": [flag] });
        });
        let hdr = read(&bad).unwrap();
        let e = hdr
            .unlock(&mut Cursor::new(&bad), PASS)
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{e}");
    }
}

/// Each case: a name, an edit of the JSON, and a text our error must contain.
type Case = (&'static str, fn(&mut Value), &'static str);

/// Cases where we are stricter than cryptsetup 2.6: it dumps and even opens a keyslot whose
/// `af.stripes` is not 4000 (it splits with 4000 whatever the field says), and it refuses
/// `cipher_null` keyslots only in some operations.
const STRICTER_THAN_CRYPTSETUP: &[&str] = &["cipher_null keyslot", "stripes"];

fn cases() -> Vec<Case> {
    vec![
        (
            "area in headers",
            |v| v["keyslots"]["0"]["area"]["offset"] = json!("16384"),
            "keyslots.0.area.offset",
        ),
        (
            "area beyond keyslots area",
            |v| v["keyslots"]["0"]["area"]["offset"] = json!("1044480"),
            "keyslots.0.area.size",
        ),
        (
            "overlapping areas",
            |v| {
                let mut k = v["keyslots"]["0"].clone();
                k["area"]["offset"] = json!("36864");
                v["keyslots"]["1"] = k;
            },
            "overlaps",
        ),
        (
            "misaligned segment",
            |v| v["segments"]["0"]["offset"] = json!("1048577"),
            "segments.0.offset",
        ),
        (
            "digest -> missing keyslot",
            |v| v["digests"]["0"]["keyslots"] = json!(["0", "7"]),
            "digests.0.keyslots",
        ),
        (
            "digest -> missing segment",
            |v| v["digests"]["0"]["segments"] = json!(["0", "3"]),
            "digests.0.segments",
        ),
        (
            "segment without digest",
            |v| v["digests"]["0"]["segments"] = json!([]),
            "not covered by any digest",
        ),
        (
            "non-numeric keyslot",
            |v| {
                let k = v["keyslots"]["0"].clone();
                v["keyslots"] = json!({ "zero": k });
            },
            "keyslots.zero",
        ),
        (
            "json_size mismatch",
            |v| v["config"]["json_size"] = json!("8192"),
            "config.json_size",
        ),
        (
            "keyslots_size unaligned",
            |v| v["config"]["keyslots_size"] = json!("1015807"),
            "config.keyslots_size",
        ),
        (
            "keyslots_size into data",
            |v| v["config"]["keyslots_size"] = json!("1048576"),
            "config.keyslots_size",
        ),
        (
            "bad sector size",
            |v| v["segments"]["0"]["sector_size"] = json!(1000),
            "segments.0.sector_size",
        ),
        (
            "offset not a string",
            |v| v["segments"]["0"]["offset"] = json!(1048576),
            "segments.0.offset",
        ),
        (
            "negative offset string",
            |v| v["segments"]["0"]["offset"] = json!("-1"),
            "segments.0.offset",
        ),
        (
            "token -> missing keyslot",
            |v| v["tokens"]["0"] = json!({"type": "x", "keyslots": ["4"]}),
            "tokens.0.keyslots",
        ),
        (
            "missing config",
            |v| {
                v.as_object_mut().unwrap().remove("config");
            },
            "config",
        ),
        (
            "missing segments",
            |v| v["segments"] = json!({}),
            "segments",
        ),
        (
            "cipher_null keyslot",
            |v| v["keyslots"]["0"]["area"]["encryption"] = json!("cipher_null-ecb"),
            "cipher_null",
        ),
        (
            "stripes",
            |v| v["keyslots"]["0"]["af"]["stripes"] = json!(3999),
            "keyslots.0.af.stripes",
        ),
    ]
}

#[test]
fn metadata_rules_are_enforced_like_cryptsetup() {
    let img = volume();
    assert!(read(&img).is_ok());
    let cs = tool("cryptsetup");
    let dir = tempfile::tempdir().unwrap();
    for (name, edit, want) in cases() {
        let bad = with_json(&img, edit);
        let e = read(&bad).expect_err(name).to_string();
        assert!(e.contains(want), "{name}: {e}");
        let Some(cs) = &cs else { continue };
        if STRICTER_THAN_CRYPTSETUP.contains(&name) {
            continue;
        }
        // cryptsetup must reject the same bytes (a copy: luksDump may repair in place).
        let p = dir.path().join("bad.img");
        std::fs::write(&p, &bad).unwrap();
        let st = run_status(cs, ["--disable-locks", "luksDump", p.to_str().unwrap()]);
        assert!(!st.status.success(), "{name}: cryptsetup accepted it");
    }
}

#[test]
fn keyslot_priority_orders_and_ignores() {
    let img = volume();
    // Priority 0 (ignore): not tried by unlock, but openable by id.
    let ignored = with_json(&img, |v| v["keyslots"]["0"]["priority"] = json!(0));
    let hdr = read(&ignored).unwrap();
    assert!(hdr.unlock_order().is_empty());
    assert!(matches!(
        hdr.unlock(&mut Cursor::new(&ignored), PASS),
        Err(Error::WrongPassphrase)
    ));
    assert!(
        hdr.unlock_keyslot(&mut Cursor::new(&ignored), 0, PASS)
            .is_ok()
    );
    // Priority 2 (prefer) goes first; ids break ties.
    let two = with_json(&img, |v| {
        let mut k = v["keyslots"]["0"].clone();
        k["area"]["offset"] = json!("294912");
        k["priority"] = json!(2);
        v["keyslots"]["3"] = k;
        v["digests"]["0"]["keyslots"] = json!(["0", "3"]);
    });
    assert_eq!(read(&two).unwrap().unlock_order(), vec![3, 0]);
    let bad = with_json(&img, |v| v["keyslots"]["0"]["priority"] = json!(3));
    assert!(
        read(&bad)
            .unwrap_err()
            .to_string()
            .contains("keyslots.0.priority")
    );
}

#[test]
fn unknown_fields_survive_a_rewrite() {
    let img = volume();
    let with_unknown = with_json(&img, |v| {
        v["x-top"] = json!({"a": [1, 2]});
        v["keyslots"]["0"]["x-slot"] = json!("s");
        v["keyslots"]["0"]["kdf"]["x-kdf"] = json!(3);
        v["keyslots"]["0"]["area"]["x-area"] = json!(true);
        v["segments"]["0"]["x-seg"] = json!(null);
        v["digests"]["0"]["x-dig"] = json!("d");
        v["config"]["x-cfg"] = json!(1.5);
        v["tokens"]["2"] = json!({"type": "t", "keyslots": ["0"], "x-tok": {}});
    });
    let mut hdr = read(&with_unknown).unwrap();
    let mut dev = Cursor::new(with_unknown);
    hdr.commit(&mut dev).unwrap();
    let img = dev.into_inner();
    let end = img[BINARY_HEADER_SIZE..]
        .iter()
        .position(|&b| b == 0)
        .unwrap();
    let v: Value =
        serde_json::from_slice(&img[BINARY_HEADER_SIZE..BINARY_HEADER_SIZE + end]).unwrap();
    assert_eq!(v["x-top"], json!({"a": [1, 2]}));
    assert_eq!(v["keyslots"]["0"]["x-slot"], "s");
    assert_eq!(v["keyslots"]["0"]["kdf"]["x-kdf"], 3);
    assert_eq!(v["keyslots"]["0"]["area"]["x-area"], true);
    assert_eq!(v["segments"]["0"]["x-seg"], Value::Null);
    assert!(
        v["segments"]["0"]
            .as_object()
            .unwrap()
            .contains_key("x-seg")
    );
    assert_eq!(v["digests"]["0"]["x-dig"], "d");
    assert_eq!(v["config"]["x-cfg"], 1.5);
    assert_eq!(v["tokens"]["2"]["x-tok"], json!({}));
    // And the rewritten volume still opens.
    read(&img)
        .unwrap()
        .unlock(&mut Cursor::new(&img), PASS)
        .unwrap();
}

/// A header is untrusted: costs that would keep an unlock busy for hours are refused before
/// any work, while the header itself still reads (so `luks dump` can show it).
#[test]
fn absurd_kdf_and_digest_costs_refuse_unlock_at_once() {
    let img = volume();
    let cases: [Case; 3] = [
        (
            "keyslot pbkdf2",
            |v| v["keyslots"]["0"]["kdf"]["iterations"] = json!(u32::MAX),
            "pbkdf2 iterations",
        ),
        (
            "digest pbkdf2",
            |v| v["digests"]["0"]["iterations"] = json!(u32::MAX),
            "digest pbkdf2 iterations",
        ),
        (
            "argon2",
            |v| {
                v["keyslots"]["0"]["kdf"] = json!({
                    "type": "argon2id",
                    "time": u32::MAX,
                    "memory": 32,
                    "cpus": 1,
                    "salt": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
                })
            },
            "argon2 work",
        ),
    ];
    for (name, edit, want) in cases {
        let bad = with_json(&img, edit);
        let hdr = read(&bad).unwrap();
        let e = hdr
            .unlock(&mut Cursor::new(&bad), PASS)
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{name}: {e}");
    }
}
