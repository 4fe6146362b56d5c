//! Golden output: a LUKS2 volume formatted from a seeded RNG must keep its exact bytes across
//! versions, so a change to the output is always a deliberate one (update the hash and say
//! why in the commit).

use std::io::Cursor;

use imgpipe_luks::{FormatOptions, HashAlg, KdfParams, KeyslotParams, Luks2Header};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sha2::{Digest, Sha256};

#[test]
fn golden_seeded_format() {
    let opts = FormatOptions {
        data_offset: 1 << 20,
        keyslot: KeyslotParams {
            kdf: KdfParams::Pbkdf2 {
                hash: HashAlg::Sha256,
                iterations: 1000,
            },
            ..KeyslotParams::default()
        },
        digest_iterations: 1000,
        label: "golden".into(),
        ..FormatOptions::default()
    };
    let mut dev = Cursor::new(vec![0u8; 2 << 20]);
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let (hdr, key) = Luks2Header::format(&mut dev, &opts, b"golden", &mut rng).unwrap();
    // One payload sector, encrypted with the volume key, is part of the golden bytes too.
    let mut sector = [0x5a_u8; 512];
    hdr.data_segment(&key)
        .unwrap()
        .encrypt(&mut sector, 0)
        .unwrap();
    let mut image = dev.into_inner();
    image[1 << 20..(1 << 20) + 512].copy_from_slice(&sector);
    let hex: String = Sha256::digest(&image)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        hex,
        "20f7e431cdffb5fb12c7bf322ecc5a512ab0292d5ec375956ca475b86b2f91a3"
    );
}
