//! Images as sources: the tree of any filesystem image the detector knows, ready for any
//! writer (`add_fstree`), so one format is rebuilt as another without extracting it.

use std::path::Path;
use std::sync::Arc;

use imgpipe_fstree::Tree;

use crate::format::{Format, detect, read_head};
use crate::{Error, Result};

/// The tree of the filesystem image at `path` (ISO9660, squashfs, EROFS or FAT), with the
/// format found, or `None` when the file holds no filesystem the detector knows. File
/// content is decoded from the image while a writer streams it: nothing is extracted.
/// A disk image or a LUKS2 volume is refused by name (open the partition or the payload).
pub fn image_tree(path: &Path) -> Result<Option<(Format, Tree)>> {
    let open = || {
        std::fs::File::open(path).map_err(|source| Error::Io {
            what: "opening the source image",
            source,
        })
    };
    let head = read_head(&mut open()?)?;
    let Some(format) = detect(&head) else {
        return Ok(None);
    };
    let fail = |e: &dyn std::fmt::Display| Error::Layer {
        layer: format.name().to_owned(),
        message: e.to_string(),
    };
    let tree = match format {
        Format::Iso9660 => {
            let r = imgpipe_isofs::Reader::open(open()?).map_err(|e| fail(&e))?;
            Tree::from_reader(Arc::new(r))
        }
        Format::Squashfs => {
            let r = imgpipe_squashfs::Reader::open_at(open()?, 0, Default::default())
                .map_err(|e| fail(&e))?;
            Tree::from_reader(Arc::new(r))
        }
        Format::Erofs => {
            let r = imgpipe_squashfs::erofs::ErofsReader::open_at(open()?, 0, Default::default())
                .map_err(|e| fail(&e))?;
            Tree::from_reader(Arc::new(r))
        }
        Format::Fat => {
            let r = imgpipe_gptpart::FatVolume::open(open()?).map_err(|e| fail(&e))?;
            Tree::from_reader(Arc::new(r))
        }
        other => {
            return Err(fail(&format!(
                "a {other} image holds no single file tree; use the filesystem inside it"
            )));
        }
    }
    .map_err(|e| fail(&e))?;
    Ok(Some((format, tree)))
}
