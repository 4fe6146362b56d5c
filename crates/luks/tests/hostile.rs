//! Hostile LUKS2 headers: one key-derivation budget per unlock, across every keyslot.

use std::io::Cursor;

use imgpipe_luks::{
    Error, FormatOptions, HashAlg, Kdf, KdfParams, KeyslotParams, Limits, Luks2Header,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn cheap() -> KeyslotParams {
    KeyslotParams {
        kdf: KdfParams::Pbkdf2 {
            hash: HashAlg::Sha256,
            iterations: 1000,
        },
        ..KeyslotParams::default()
    }
}

/// A volume with 32 keyslots, each then set to `iterations` PBKDF2 iterations.
fn many_keyslots(iterations: u32) -> Cursor<Vec<u8>> {
    let opts = FormatOptions {
        data_offset: 16 << 20,
        keyslot: cheap(),
        digest_iterations: 1000,
        ..FormatOptions::default()
    };
    let mut dev = Cursor::new(vec![0u8; 17 << 20]);
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let (mut hdr, vk) = Luks2Header::format(&mut dev, &opts, b"p0", &mut rng).unwrap();
    for i in 1..32 {
        hdr.add_keyslot(
            &mut dev,
            &vk,
            format!("p{i}").as_bytes(),
            &cheap(),
            None,
            &mut rng,
        )
        .unwrap();
    }
    for ks in hdr.metadata.keyslots.values_mut() {
        if let Kdf::Pbkdf2 { iterations: n, .. } = &mut ks.kdf {
            *n = iterations;
        }
    }
    hdr.commit(&mut dev).unwrap();
    dev
}

#[test]
fn many_keyslots_at_the_cap_share_one_budget() {
    // 32 keyslots of 1 M PBKDF2 iterations each, the per-keyslot cap: trying them all took
    // 32 derivations; with a budget of three keyslots' work, three are tried and the answer
    // says the budget ran out.
    let mut dev = many_keyslots(1_000_000);
    let limits = Limits {
        max_pbkdf2_iterations: 1_000_000,
        max_unlock_work: 3_003_000,
        ..Limits::default()
    };
    let hdr = Luks2Header::read_with_limits(&mut dev, limits).unwrap();
    assert_eq!(hdr.keyslot_work(5).unwrap(), 1_001_000);
    #[allow(clippy::disallowed_methods)] // a time bound, not output
    let start = std::time::Instant::now();
    let err = hdr.try_unlock(&mut dev, b"wrong", None).unwrap_err();
    let took = start.elapsed();
    assert!(
        matches!(err, Error::LimitExceeded { what, .. } if what.contains("every keyslot")),
        "{err}"
    );
    // Three derivations of 1 M iterations take about a second; 32 took ten times that.
    assert!(took.as_secs() < 8, "took {took:?}");
    // The same budget, raised, lets a passphrase past the third keyslot in.
    let raised = Limits {
        max_unlock_work: 40_000_000,
        ..limits
    };
    let hdr = Luks2Header::read_with_limits(&mut dev, raised).unwrap();
    assert!(matches!(
        hdr.try_unlock(&mut dev, b"wrong", Some(31)),
        Ok(None)
    ));
}

#[test]
fn unlock_keeps_to_the_limits_the_header_was_read_with() {
    // Keyslots asking for more iterations than the caller allows are refused before any work.
    let mut dev = many_keyslots(50_000);
    let limits = Limits {
        max_pbkdf2_iterations: 10_000,
        ..Limits::default()
    };
    let hdr = Luks2Header::read_with_limits(&mut dev, limits).unwrap();
    let err = hdr.try_unlock(&mut dev, b"p3", Some(3)).unwrap_err();
    assert!(matches!(err, Error::LimitExceeded { .. }), "{err}");
}
