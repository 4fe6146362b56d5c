//! Replays the `repro_nested` and `repro_reason` fuzz corpora and regressions (see `fuzz/`)
//! through the very bodies the targets run ([`imgpipe_repro::fuzzing`]).

use imgpipe_repro::fuzzing;
use imgpipe_testsupport::fuzz_inputs;

#[test]
fn repro_nested() {
    let inputs = fuzz_inputs("repro_nested");
    assert!(!inputs.is_empty());
    let tmp = tempfile::tempdir().unwrap();
    let found: usize = inputs
        .iter()
        .filter_map(|(_, d)| fuzzing::repro_nested(d, tmp.path()))
        .sum();
    // The committed seeds are real image pairs that differ in known files.
    assert!(found >= 2, "{found}");
    // cryptsetup's LUKS2 volumes, holding squashfs images that differ in /etc/motd: unlocked
    // with the body's passphrase, the file inside the payload is among the differences.
    let (_, pair) = inputs
        .iter()
        .find(|(p, _)| p.ends_with("luks2-squashfs-pair"))
        .expect("the LUKS2 seed");
    let (head, body) = pair.split_at(4);
    let cut = u32::from_le_bytes(head.try_into().unwrap()) as usize;
    let open = |f: &[u8], name: &str| {
        let p = tmp.path().join(name);
        std::fs::write(&p, f).unwrap();
        std::fs::File::open(&p).unwrap()
    };
    let (a, b) = (open(&body[..cut], "a"), open(&body[cut..], "b"));
    let mut opts = imgpipe_repro::ImageDiffOptions::default();
    opts.passphrases = Some(std::sync::Arc::new(imgpipe_repro::Passphrases::same(
        b"pw".to_vec(),
    )));
    let d = imgpipe_repro::diff_images(&a, &b, opts, &mut |_| {})
        .unwrap()
        .files
        .unwrap();
    let motd: Vec<_> = d
        .differences
        .iter()
        .filter(|f| f.path == "/etc/motd")
        .collect();
    assert_eq!(motd.len(), 1, "{:#?}", d.differences);
    assert_eq!(
        fuzzing::repro_nested(pair, tmp.path()),
        Some(d.differences.len())
    );
    for name in ["a", "b"] {
        std::fs::remove_file(tmp.path().join(name)).unwrap();
    }
    // And no run left a file behind.
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn repro_reason() {
    let inputs = fuzz_inputs("repro_reason");
    assert!(!inputs.is_empty());
    // The committed seeds are pairs the real tools wrote, each differing in its usual way.
    let explained = inputs
        .iter()
        .filter(|(_, d)| fuzzing::repro_reason(d))
        .count();
    assert!(explained >= 5, "{explained} of {}", inputs.len());
}
