//! The body of this crate's fuzz target, written once: the few-line target in `fuzz/` and
//! the corpus replay in `tests/fuzz_corpus.rs` both call it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use crate::{NestedOptions, diagnose_files};

/// `repro_nested`: two images from one input, the first 4 bytes saying where the rest is
/// cut into A and B, written as files `a` and `b` in `dir`. The file-level diagnosis opens
/// whatever they look like (ISO9660, GPT, squashfs, EROFS, FAT) and any filesystem nested
/// inside; nothing may panic, hang or blow up. Returns the number of differences found.
pub fn repro_nested(data: &[u8], dir: &Path) -> Option<usize> {
    let (head, body) = data.split_first_chunk::<4>()?;
    let cut = u32::from_le_bytes(*head) as usize % (body.len() + 1);
    let (a, b) = body.split_at(cut);
    let (pa, pb) = (dir.join("a"), dir.join("b"));
    std::fs::write(&pa, a).ok()?;
    std::fs::write(&pb, b).ok()?;
    let (fa, fb) = (
        std::fs::File::open(&pa).ok()?,
        std::fs::File::open(&pb).ok()?,
    );
    let r = diagnose_files(&fa, &fb, NestedOptions::default()).ok()?;
    Some(r.differences.len())
}
