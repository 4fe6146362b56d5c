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
    let d = luks_pair(&inputs, "luks2-squashfs-pair", tmp.path());
    let motd: Vec<_> = d.iter().filter(|f| f.path == "/etc/motd").collect();
    assert_eq!(motd.len(), 1, "{d:#?}");
    // The same, the second payload an EROFS image (mkfs.erofs): the change of format, then
    // /etc/motd under `payload (squashfs -> erofs)`.
    let d = luks_pair(&inputs, "luks2-squashfs-erofs-pair", tmp.path());
    assert!(
        d.iter()
            .any(|f| f.path == "payload" && f.what == "format squashfs -> erofs"),
        "{d:#?}"
    );
    assert!(
        d.iter()
            .any(|f| f.path == "/etc/motd" && f.within == ["luks2", "payload (squashfs -> erofs)"]),
        "{d:#?}"
    );
    // And no run left a file behind.
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

/// The differences between the two volumes of the seed `name` (a 4-byte length, then A, then
/// B), unlocked with the passphrase the fuzz body uses; the body finds as many.
fn luks_pair(
    inputs: &[(std::path::PathBuf, Vec<u8>)],
    name: &str,
    tmp: &std::path::Path,
) -> Vec<imgpipe_repro::FileDifference> {
    let (_, pair) = inputs
        .iter()
        .find(|(p, _)| p.ends_with(name))
        .unwrap_or_else(|| panic!("the seed {name}"));
    let (head, body) = pair.split_at(4);
    let cut = u32::from_le_bytes(head.try_into().unwrap()) as usize;
    let open = |f: &[u8], side: &str| {
        let p = tmp.join(side);
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
        .unwrap()
        .differences;
    assert_eq!(fuzzing::repro_nested(pair, tmp), Some(d.len()), "{name}");
    for side in ["a", "b"] {
        std::fs::remove_file(tmp.join(side)).unwrap();
    }
    d
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
