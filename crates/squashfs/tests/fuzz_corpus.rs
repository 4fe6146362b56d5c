//! Replays the fuzz corpus and regressions of this crate's targets (see `fuzz/`).

use imgpipe_squashfs::raw::SuperBlock;
use imgpipe_testsupport::fuzz_inputs;

#[test]
fn squashfs_superblock() {
    for (_, data) in fuzz_inputs("squashfs_superblock") {
        if let Ok(sb) = SuperBlock::parse(&data, 0) {
            assert_eq!(SuperBlock::parse(&sb.to_bytes(), 0).ok(), Some(sb));
        }
    }
}

#[test]
fn erofs_superblock() {
    for (_, data) in fuzz_inputs("erofs_superblock") {
        let _ = imgpipe_squashfs::inspect_erofs(std::io::Cursor::new(&data));
    }
}
