//! Hostile FAT volumes: entries sharing one cluster chain (cross-links, which `fsck.fat`
//! reports) must not multiply the output of an extraction.

use std::io::Cursor;

use imgpipe_fstree::ExtractOptions;
use imgpipe_gptpart::{FatBuilder, FatVolume};
use imgpipe_testsupport::{pattern, tempdir};

/// A volume with `BIG.BIN` (1 MiB) and `n` entries in `D` whose first cluster and size are
/// then patched to `BIG.BIN`'s: every entry reads the same chain.
fn cross_linked(n: usize) -> Vec<u8> {
    let mut b = FatBuilder::new(8 << 20).epoch(1_700_000_000);
    b.add_file("BIG.BIN", pattern(1 << 20)).unwrap();
    b.add_dir("D").unwrap();
    for i in 0..n {
        b.add_file(&format!("D/E{i:04}"), Vec::new()).unwrap();
    }
    let mut img = b.build_vec().unwrap();
    let find = |img: &[u8], name: &[u8; 11]| {
        img.windows(11)
            .enumerate()
            .find(|(at, w)| w == name && at % 32 == 0)
            .map(|(at, _)| at)
            .unwrap()
    };
    let big = find(&img, b"BIG     BIN");
    let (hi, lo_size) = (
        img[big + 20..big + 22].to_vec(),
        img[big + 26..big + 32].to_vec(),
    );
    for i in 0..n {
        let mut name = [b' '; 11];
        name[..5].copy_from_slice(format!("E{i:04}").as_bytes());
        let at = find(&img, &name);
        img[at + 20..at + 22].copy_from_slice(&hi);
        img[at + 26..at + 32].copy_from_slice(&lo_size);
    }
    img
}

#[test]
fn entries_sharing_a_cluster_chain_become_hard_links() {
    // 1000 entries on one 1 MiB chain: 1 GB of output before; now copies up to the output
    // budget (64 MiB here), then links of the first.
    let img = cross_linked(1000);
    let len = img.len() as u64;
    let vol = FatVolume::open(Cursor::new(img)).unwrap();
    let t = tempdir();
    let out = t.path().join("o");
    let mut opts = ExtractOptions::default();
    opts.max_output_ratio = 1;
    let rep = imgpipe_fstree::extract(&vol, &out, opts).unwrap();
    assert_eq!(rep.files + rep.shared_extents, 1001, "{rep:?}");
    assert!(rep.shared_extents > 900, "{rep:?}");
    assert!(
        rep.bytes <= len + imgpipe_fstree::MIN_OUTPUT_BUDGET,
        "{} bytes from a {len}-byte volume",
        rep.bytes
    );
    assert_eq!(
        std::fs::read(out.join("D/E0999")).unwrap(),
        pattern(1 << 20)
    );
}
