//! Property tests: whatever we format reads back to the same header, survives a rewrite
//! unchanged (apart from seqid), and unlocks to the volume key we were given.

use std::io::Cursor;

use imgpipe_luks::{
    FormatOptions, HashAlg, KdfParams, KeyslotParams, Limits, Luks2Header, Metadata, VolumeKey,
};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn format_read_rewrite_round_trip(
        hdr_pow in 0u32..3,
        sector_pow in 0u32..4,
        key_size in prop::sample::select(vec![32usize, 64]),
        hash in prop::sample::select(vec![HashAlg::Sha1, HashAlg::Sha256, HashAlg::Sha512]),
        label in "[a-zA-Z0-9 _-]{0,47}",
        seed in any::<u64>(),
        pass in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let hdr_size = 0x4000u64 << hdr_pow;
        let opts = FormatOptions {
            hdr_size,
            data_offset: 1 << 20,
            sector_size: 512 << sector_pow,
            key_size,
            keyslot: KeyslotParams {
                kdf: KdfParams::Pbkdf2 { hash, iterations: 1000 },
                af_hash: hash,
                priority: None,
            },
            digest_iterations: 1000,
            label: label.clone(),
            ..FormatOptions::default()
        };
        let mut dev = Cursor::new(vec![0u8; (1 << 20) + 8192]);
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let (written, vk) = Luks2Header::format(&mut dev, &opts, &pass, &mut rng).unwrap();
        let read = Luks2Header::read(&mut dev).unwrap();
        prop_assert!(!read.is_damaged());
        prop_assert_eq!(&read.metadata, &written.metadata);
        prop_assert_eq!(&read.label, &label);
        prop_assert_eq!(read.seqid, 1);

        // The JSON writer and parser agree.
        let area = read.metadata.to_json_area(hdr_size - 4096).unwrap();
        let back = Metadata::parse(&area, 4096, hdr_size, Limits::default()).unwrap();
        prop_assert_eq!(&back, &read.metadata);

        // A rewrite changes nothing but seqid.
        let mut again = read.clone();
        again.commit(&mut dev).unwrap();
        let reread = Luks2Header::read(&mut dev).unwrap();
        prop_assert_eq!(reread.seqid, 2);
        prop_assert_eq!(&reread.metadata, &read.metadata);

        let (_, unlocked) = reread.unlock(&mut dev, &pass).unwrap();
        prop_assert_eq!(unlocked.as_bytes(), vk.as_bytes());
        prop_assert!(reread.verify_volume_key(&vk));
        prop_assert!(!reread.verify_volume_key(&VolumeKey::new(vec![0; key_size])));
    }
}
