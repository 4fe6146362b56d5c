//! What a `create` command packs: a directory (scanned) or another filesystem image (its tree,
//! decoded while writing, through the composition layer).

use std::path::Path;

use anyhow::Context;
use imgpipe_fstree::{ScanOptions, Tree};

/// Whether `src` names an image rather than a directory.
pub(crate) fn is_image(src: &Path) -> bool {
    src.metadata().is_ok_and(|m| !m.is_dir())
}

/// The tree of the image `src` (ISO9660, squashfs, EROFS or FAT); a one-line error naming
/// the file when it is none of these.
pub(crate) fn image_tree(src: &Path) -> anyhow::Result<Tree> {
    match imgpipe_repro::image_tree(src).with_context(|| format!("reading {}", src.display()))? {
        Some((_, tree)) => Ok(tree),
        None => anyhow::bail!(
            "{}: neither a directory nor a filesystem image (ISO9660, squashfs, EROFS, FAT)",
            src.display()
        ),
    }
}

/// The tree to pack from `src`: a directory scanned with `scan`, or an image's tree.
pub(crate) fn tree(src: &Path, scan: &ScanOptions) -> anyhow::Result<Tree> {
    if !src.exists() {
        anyhow::bail!("{}: no such directory or image", src.display());
    }
    if is_image(src) {
        return image_tree(src);
    }
    imgpipe_fstree::scan(src, scan).with_context(|| format!("scanning {}", src.display()))
}
