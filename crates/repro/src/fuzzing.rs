//! The body of this crate's fuzz target, written once: the few-line target in `fuzz/` and
//! the corpus replay in `tests/fuzz_corpus.rs` both call it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use crate::NestedOptions;

/// `repro_nested`: two images from one input, the first 4 bytes saying where the rest is
/// cut into A and B, written to two files in `dir` that are unlinked as soon as they are
/// open (nothing is left behind, whatever happens next). The file-level diagnosis opens
/// whatever they look like (ISO9660, GPT, squashfs, EROFS, FAT, LUKS2 under the passphrase
/// `pw`) and any filesystem nested inside; nothing may panic, hang or blow up. Returns the number of differences found.
pub fn repro_nested(data: &[u8], dir: &Path) -> Option<usize> {
    let (head, body) = data.split_first_chunk::<4>()?;
    let cut = u32::from_le_bytes(*head) as usize % (body.len() + 1);
    let (a, b) = body.split_at(cut);
    let fa = unlinked(dir, "a", a)?;
    let fb = unlinked(dir, "b", b)?;
    // A passphrase, so that LUKS2 volumes are unlocked and their payloads opened too, with
    // a key-derivation budget small enough for a fuzzer (a few thousand PBKDF2 rounds).
    let keys = crate::Passphrases::same(b"pw".to_vec()).with_limits(imgpipe_luks::Limits {
        max_unlock_work: 20_000,
        ..imgpipe_luks::Limits::default()
    });
    let r = crate::nested::diagnose(&fa, &fb, NestedOptions::default(), None, None, Some(&keys));
    Some(r.ok()?.differences.len())
}

/// A file in `dir` holding `bytes`, already unlinked: only the open handle reaches it.
fn unlinked(dir: &Path, tag: &str, bytes: &[u8]) -> Option<std::fs::File> {
    use std::io::Write;
    let p = dir.join(format!(".imgpipe-fuzz-nested-{}-{tag}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&p)
        .ok()?;
    let removed = std::fs::remove_file(&p);
    removed.ok()?;
    f.write_all(bytes).ok()?;
    Some(f)
}

/// `repro_reason`: two versions of a file from one input, cut as [`repro_nested`] cuts
/// (the first 4 bytes say where), explained by [`crate::reason::explain`]: whatever they
/// claim to be (gzip, ELF, `.pyc`, zip, `ar`, cpio, text), nothing may panic, read outside
/// them or inflate past the bound. Returns whether a reason was found.
pub fn repro_reason(data: &[u8]) -> bool {
    let Some((head, body)) = data.split_first_chunk::<4>() else {
        return false;
    };
    let cut = u32::from_le_bytes(*head) as usize % (body.len() + 1);
    let (a, b) = body.split_at(cut);
    crate::reason::explain(a, b).is_some()
}
