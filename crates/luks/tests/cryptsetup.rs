//! Cross-validation with cryptsetup in both directions: headers, keyslots and payload.
//!
//! KDF costs are kept tiny (pbkdf2 1000 iterations, argon2 32 MiB / t=1..4) so the suite
//! stays fast; everything else uses real cryptsetup layouts.

use std::fs::{self, OpenOptions};
use std::io::Cursor;
use std::path::{Path, PathBuf};

use imgpipe_luks::{
    Argon2Variant, Error, FormatOptions, HashAlg, KdfParams, KeyslotParams, Luks2Header,
};
use imgpipe_testsupport::{run, run_status, tool};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const PASS: &[u8] = b"correct horse battery staple";

fn cryptsetup() -> Option<PathBuf> {
    tool("cryptsetup")
}

fn cs(bin: &Path, args: &[&str]) -> String {
    let mut all = vec!["--disable-locks"];
    all.extend_from_slice(args);
    String::from_utf8_lossy(&run(bin, &all).stdout).into_owned()
}

/// The volume key cryptsetup dumps, as bytes.
fn dumped_key(bin: &Path, image: &Path, key_file: &Path, header: Option<&Path>) -> Vec<u8> {
    let mut args = vec![
        "luksDump",
        "--dump-volume-key",
        "-q",
        "--key-file",
        key_file.to_str().unwrap(),
    ];
    if let Some(h) = header {
        args.extend(["--header", h.to_str().unwrap()]);
    }
    args.push(image.to_str().unwrap());
    let out = cs(bin, &args);
    let after = out
        .split("MK dump:")
        .nth(1)
        .expect("no MK dump in luksDump output");
    after
        .split_whitespace()
        .take_while(|t| t.len() == 2 && t.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(|t| u8::from_str_radix(t, 16).unwrap())
        .collect()
}

fn image(dir: &Path, name: &str, size: u64) -> PathBuf {
    let p = dir.join(name);
    let f = fs::File::create(&p).unwrap();
    f.set_len(size).unwrap();
    p
}

fn key_file(dir: &Path, name: &str, pass: &[u8]) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, pass).unwrap();
    p
}

fn open_rw(p: &Path) -> fs::File {
    OpenOptions::new().read(true).write(true).open(p).unwrap()
}

fn cheap_pbkdf2() -> KeyslotParams {
    KeyslotParams {
        kdf: KdfParams::Pbkdf2 {
            hash: HashAlg::Sha256,
            iterations: 1000,
        },
        ..KeyslotParams::default()
    }
}

fn cheap_argon2id() -> KeyslotParams {
    KeyslotParams {
        kdf: KdfParams::Argon2 {
            variant: Argon2Variant::Argon2id,
            time: 1,
            memory: 32 * 1024,
            cpus: 2,
        },
        ..KeyslotParams::default()
    }
}

/// cryptsetup -> ours: every KDF, both sector sizes, both key sizes, three header sizes,
/// and extra keyslots added by cryptsetup; each unlocks to the key cryptsetup dumps.
#[test]
fn cryptsetup_volumes_unlock_to_the_dumped_key() {
    let Some(bin) = cryptsetup() else { return };
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), "key", PASS);
    let key2 = key_file(dir.path(), "key2", b"second passphrase");
    let cases: &[&[&str]] = &[
        &[
            "--pbkdf",
            "pbkdf2",
            "--hash",
            "sha256",
            "--pbkdf-force-iterations",
            "1000",
            "--sector-size",
            "512",
            "--key-size",
            "512",
        ],
        &[
            "--pbkdf",
            "pbkdf2",
            "--hash",
            "sha1",
            "--pbkdf-force-iterations",
            "1000",
            "--sector-size",
            "4096",
            "--key-size",
            "256",
        ],
        &[
            "--pbkdf",
            "pbkdf2",
            "--hash",
            "sha512",
            "--pbkdf-force-iterations",
            "1000",
            "--sector-size",
            "4096",
            "--key-size",
            "512",
            "--luks2-metadata-size",
            "64k",
            "--luks2-keyslots-size",
            "4m",
        ],
        &[
            "--pbkdf",
            "argon2id",
            "--pbkdf-force-iterations",
            "4",
            "--pbkdf-memory",
            "32768",
            "--pbkdf-parallel",
            "2",
            "--sector-size",
            "512",
            "--key-size",
            "256",
        ],
        &[
            "--pbkdf",
            "argon2i",
            "--pbkdf-force-iterations",
            "4",
            "--pbkdf-memory",
            "32768",
            "--pbkdf-parallel",
            "1",
            "--sector-size",
            "4096",
            "--key-size",
            "512",
            "--luks2-metadata-size",
            "1m",
            "--luks2-keyslots-size",
            "8m",
        ],
    ];
    for (i, extra) in cases.iter().enumerate() {
        let img = image(dir.path(), &format!("c{i}.img"), 20 << 20);
        let mut args = vec![
            "luksFormat",
            "--type",
            "luks2",
            "-q",
            "--label",
            "from-cryptsetup",
            "--key-file",
            key.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        args.push(img.to_str().unwrap());
        cs(&bin, &args);
        // A second keyslot (with a different passphrase) and a third with priority prefer.
        cs(
            &bin,
            &[
                "luksAddKey",
                "-q",
                "--pbkdf",
                "pbkdf2",
                "--pbkdf-force-iterations",
                "1000",
                "--key-file",
                key.to_str().unwrap(),
                img.to_str().unwrap(),
                key2.to_str().unwrap(),
            ],
        );
        let expected = dumped_key(&bin, &img, &key, None);
        assert!(expected.len() == 32 || expected.len() == 64, "case {i}");
        let mut f = open_rw(&img);
        let hdr = Luks2Header::read(&mut f).unwrap();
        assert!(!hdr.is_damaged(), "case {i}: {:?}", hdr.copies);
        assert_eq!(hdr.label, "from-cryptsetup");
        assert_eq!(hdr.metadata.keyslots.len(), 2, "case {i}");
        let (slot, vk) = hdr.unlock(&mut f, PASS).unwrap();
        assert_eq!((slot, vk.as_bytes()), (0, &expected[..]), "case {i}");
        let (slot, vk) = hdr.unlock(&mut f, b"second passphrase").unwrap();
        assert_eq!((slot, vk.as_bytes()), (1, &expected[..]), "case {i}");
        assert!(matches!(
            hdr.unlock(&mut f, b"nope"),
            Err(Error::WrongPassphrase)
        ));
    }
}

struct Ours {
    dir: tempfile::TempDir,
    img: PathBuf,
    key: PathBuf,
    vk: Vec<u8>,
}

fn format_ours(opts: &FormatOptions, size: u64, seed: u64) -> Ours {
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path(), "ours.img", size);
    let key = key_file(dir.path(), "key", PASS);
    let mut f = open_rw(&img);
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let (_, vk) = Luks2Header::format(&mut f, opts, PASS, &mut rng).unwrap();
    Ours {
        dir,
        img,
        key,
        vk: vk.as_bytes().to_vec(),
    }
}

/// ours -> cryptsetup: luksDump parses, the passphrase opens, the dumped key is ours; for
/// pbkdf2 and argon2id, 512 and 4096 sectors, 256 and 512-bit keys, two header sizes.
#[test]
fn our_volumes_are_accepted_by_cryptsetup() {
    let Some(bin) = cryptsetup() else { return };
    let cases = [
        (cheap_pbkdf2(), 512, 64, 0x4000u64),
        (cheap_pbkdf2(), 4096, 32, 0x10000),
        (cheap_argon2id(), 512, 32, 0x4000),
        (cheap_argon2id(), 4096, 64, 0x8000),
    ];
    for (i, (keyslot, sector_size, key_size, hdr_size)) in cases.into_iter().enumerate() {
        let opts = FormatOptions {
            hdr_size,
            sector_size,
            key_size,
            keyslot,
            digest_iterations: 1000,
            label: "ours".into(),
            subsystem: "imgpipe".into(),
            uuid: Some("0f4c1b4e-8e3a-4d51-9d3e-6b1c2a7e9f00".into()),
            ..FormatOptions::default()
        };
        let o = format_ours(&opts, 20 << 20, i as u64);
        let img = o.img.to_str().unwrap();
        let dump = cs(&bin, &["luksDump", img]);
        assert!(
            dump.contains("0f4c1b4e-8e3a-4d51-9d3e-6b1c2a7e9f00"),
            "{dump}"
        );
        assert!(
            dump.contains(&format!("sector: {sector_size} [bytes]")),
            "{dump}"
        );
        assert!(dump.contains("Label:         \tours"), "{dump}");
        cs(
            &bin,
            &[
                "open",
                "--test-passphrase",
                "--key-file",
                o.key.to_str().unwrap(),
                img,
            ],
        );
        assert_eq!(dumped_key(&bin, &o.img, &o.key, None), o.vk, "case {i}");
        let wrong = key_file(o.dir.path(), "wrong", b"wrong");
        let st = run_status(
            &bin,
            [
                "--disable-locks",
                "open",
                "--test-passphrase",
                "--key-file",
                wrong.to_str().unwrap(),
                img,
            ],
        );
        assert!(!st.status.success());
    }
}

/// Keyslot management both ways: ours adds, changes and removes; cryptsetup sees the
/// result; cryptsetup adds a slot to our volume and we open it; tokens survive our rewrite.
#[test]
fn keyslot_management_round_trips_with_cryptsetup() {
    let Some(bin) = cryptsetup() else { return };
    let opts = FormatOptions {
        keyslot: cheap_pbkdf2(),
        digest_iterations: 1000,
        ..FormatOptions::default()
    };
    let o = format_ours(&opts, 20 << 20, 99);
    let img = o.img.to_str().unwrap();
    let k2 = key_file(o.dir.path(), "k2", b"two");
    let k3 = key_file(o.dir.path(), "k3", b"three");
    // A token from cryptsetup, assigned to keyslot 0: must survive our rewrites.
    let token = o.dir.path().join("token.json");
    fs::write(
        &token,
        r#"{"type":"imgpipe-test","keyslots":["0"],"note":"keep me"}"#,
    )
    .unwrap();
    cs(
        &bin,
        &[
            "token",
            "import",
            "--json-file",
            token.to_str().unwrap(),
            img,
        ],
    );

    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let mut f = open_rw(&o.img);
    let mut hdr = Luks2Header::read(&mut f).unwrap();
    let seq0 = hdr.seqid;
    let (_, vk) = hdr.unlock(&mut f, PASS).unwrap();
    let id = hdr
        .add_keyslot(&mut f, &vk, b"two", &cheap_argon2id(), None, &mut rng)
        .unwrap();
    assert_eq!(id, 1);
    assert_eq!(hdr.seqid, seq0 + 1);
    cs(
        &bin,
        &[
            "open",
            "--test-passphrase",
            "--key-slot",
            "1",
            "--key-file",
            k2.to_str().unwrap(),
            img,
        ],
    );

    // Change keyslot 0's passphrase to "three".
    hdr.change_keyslot(&mut f, 0, &vk, b"three", &cheap_pbkdf2(), &mut rng)
        .unwrap();
    cs(
        &bin,
        &[
            "open",
            "--test-passphrase",
            "--key-slot",
            "0",
            "--key-file",
            k3.to_str().unwrap(),
            img,
        ],
    );
    let st = run_status(
        &bin,
        [
            "--disable-locks",
            "open",
            "--test-passphrase",
            "--key-file",
            o.key.to_str().unwrap(),
            img,
        ],
    );
    assert!(!st.status.success(), "old passphrase still opens");
    let dump = cs(&bin, &["luksDump", img]);
    assert!(dump.contains("imgpipe-test"), "token lost: {dump}");

    // Remove keyslot 1; cryptsetup no longer opens with "two".
    hdr.remove_keyslot(&mut f, 1).unwrap();
    let st = run_status(
        &bin,
        [
            "--disable-locks",
            "open",
            "--test-passphrase",
            "--key-file",
            k2.to_str().unwrap(),
            img,
        ],
    );
    assert!(!st.status.success());

    // cryptsetup adds a keyslot to our volume; we open it.
    let k4 = key_file(o.dir.path(), "k4", b"four");
    cs(
        &bin,
        &[
            "luksAddKey",
            "-q",
            "--pbkdf",
            "argon2id",
            "--pbkdf-force-iterations",
            "4",
            "--pbkdf-memory",
            "32768",
            "--key-file",
            k3.to_str().unwrap(),
            img,
            k4.to_str().unwrap(),
        ],
    );
    drop(f);
    let mut f = open_rw(&o.img);
    let hdr = Luks2Header::read(&mut f).unwrap();
    let (_, vk4) = hdr.unlock(&mut f, b"four").unwrap();
    assert_eq!(vk4.as_bytes(), &o.vk[..]);
    assert_eq!(hdr.metadata.tokens.len(), 1);
    assert_eq!(
        hdr.metadata.tokens[&0].get("note").and_then(|v| v.as_str()),
        Some("keep me")
    );
}

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// Data, cryptsetup -> ours: `reencrypt --encrypt --reduce-device-size` of a plaintext image
/// decrypts with ours, for 512 and 4096-byte sectors (the 4096 case checks that IVs count
/// 512-byte units).
#[test]
fn cryptsetup_reencrypted_payload_decrypts_with_ours() {
    let Some(bin) = cryptsetup() else { return };
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), "key", PASS);
    for sector in ["512", "4096"] {
        let plain = pattern(40 << 20, 7);
        let img = dir.path().join(format!("p{sector}.img"));
        fs::write(&img, &plain).unwrap();
        cs(
            &bin,
            &[
                "reencrypt",
                "--encrypt",
                "--reduce-device-size",
                "32M",
                "--force-offline-reencrypt",
                "-q",
                "--pbkdf",
                "pbkdf2",
                "--pbkdf-force-iterations",
                "1000",
                "--sector-size",
                sector,
                "--key-file",
                key.to_str().unwrap(),
                img.to_str().unwrap(),
            ],
        );
        let mut f = open_rw(&img);
        let hdr = Luks2Header::read(&mut f).unwrap();
        let (_, vk) = hdr.unlock(&mut f, PASS).unwrap();
        let seg = hdr.data_segment(&vk).unwrap();
        assert_eq!(seg.sector_size.to_string(), sector);
        let len = seg.payload_len(40 << 20);
        let mut out = Vec::new();
        seg.decrypt_stream(&mut f, len, &mut out, &mut |_| {})
            .unwrap();
        // The original data (minus the space given up for the header) is now the payload.
        let keep = (40 << 20) - (32 << 20);
        assert_eq!(out[..keep], plain[..keep], "sector {sector}");
    }
}

/// Data, ours -> cryptsetup: a volume with a detached header, payload encrypted by ours,
/// decrypts in place with `cryptsetup reencrypt --decrypt --header`.
#[test]
fn our_payload_decrypts_with_cryptsetup_reencrypt() {
    let Some(bin) = cryptsetup() else { return };
    for (sector, key_size) in [(512u32, 64usize), (4096, 32)] {
        let dir = tempfile::tempdir().unwrap();
        let key = key_file(dir.path(), "key", PASS);
        let hdr_path = image(dir.path(), "hdr.img", 16 << 20);
        let data_path = dir.path().join("data.img");
        let plain = pattern(6 << 20, sector);
        let opts = FormatOptions {
            data_offset: 0,
            sector_size: sector,
            key_size,
            keyslot: cheap_pbkdf2(),
            digest_iterations: 1000,
            ..FormatOptions::default()
        };
        let mut h = open_rw(&hdr_path);
        let mut rng = ChaCha20Rng::seed_from_u64(u64::from(sector));
        let (hdr, vk) = Luks2Header::format(&mut h, &opts, PASS, &mut rng).unwrap();
        let seg = hdr.data_segment(&vk).unwrap();
        let mut data = Cursor::new(Vec::new());
        let n = seg
            .encrypt_stream(&plain[..], &mut data, &mut |_| {})
            .unwrap();
        assert_eq!(n, plain.len() as u64);
        assert_ne!(data.get_ref()[..4096], plain[..4096]);
        fs::write(&data_path, data.get_ref()).unwrap();
        cs(
            &bin,
            &[
                "reencrypt",
                "--decrypt",
                "--force-offline-reencrypt",
                "-q",
                "--header",
                hdr_path.to_str().unwrap(),
                "--key-file",
                key.to_str().unwrap(),
                data_path.to_str().unwrap(),
            ],
        );
        assert!(fs::read(&data_path).unwrap() == plain, "sector {sector}");
    }
}

/// A volume whose payload cryptsetup encrypted with a detached header decrypts with ours,
/// and our encryption of the same plaintext is byte-identical to cryptsetup's.
#[test]
fn detached_header_payload_is_identical_both_ways() {
    let Some(bin) = cryptsetup() else { return };
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), "key", PASS);
    let plain = pattern(4 << 20, 3);
    let data = dir.path().join("d.img");
    let hdr_path = dir.path().join("h.img");
    fs::write(&data, &plain).unwrap();
    cs(
        &bin,
        &[
            "reencrypt",
            "--encrypt",
            "--force-offline-reencrypt",
            "-q",
            "--header",
            hdr_path.to_str().unwrap(),
            "--sector-size",
            "4096",
            "--pbkdf",
            "pbkdf2",
            "--pbkdf-force-iterations",
            "1000",
            "--key-file",
            key.to_str().unwrap(),
            data.to_str().unwrap(),
        ],
    );
    let mut h = open_rw(&hdr_path);
    let hdr = Luks2Header::read(&mut h).unwrap();
    let (_, vk) = hdr.unlock(&mut h, PASS).unwrap();
    let seg = hdr.data_segment(&vk).unwrap();
    let theirs = fs::read(&data).unwrap();
    let mut ours = plain.clone();
    seg.encrypt(&mut ours, 0).unwrap();
    assert!(ours == theirs);
    seg.decrypt(&mut ours, 0).unwrap();
    assert!(ours == plain);
}

/// A LUKS1 volume is recognised and refused with a message that says so.
#[test]
fn luks1_is_refused_by_name() {
    let Some(bin) = cryptsetup() else { return };
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), "key", PASS);
    let img = image(dir.path(), "l1.img", 4 << 20);
    cs(
        &bin,
        &[
            "luksFormat",
            "--type",
            "luks1",
            "-q",
            "--pbkdf-force-iterations",
            "1000",
            "--key-file",
            key.to_str().unwrap(),
            img.to_str().unwrap(),
        ],
    );
    let e = Luks2Header::read(&mut open_rw(&img)).unwrap_err();
    assert!(e.to_string().contains("LUKS version 1"), "{e}");
}
