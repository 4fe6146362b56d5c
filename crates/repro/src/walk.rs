//! A directory walk in byte order, independent of `read_dir` order.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// One entry of a sorted walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalkEntry {
    /// Path relative to the root (empty for the root itself).
    pub relative: PathBuf,
    /// Metadata from `symlink_metadata` (links are not followed).
    pub file_type: std::fs::FileType,
}

/// Walks `root` depth-first, entries of each directory sorted by their name's bytes, without
/// following symbolic links. `max_depth` bounds recursion.
pub fn walk_sorted(root: &Path, max_depth: usize) -> Result<Vec<WalkEntry>> {
    let mut out = Vec::new();
    let meta = std::fs::symlink_metadata(root).map_err(|source| Error::Io {
        what: "reading the walk root",
        source,
    })?;
    out.push(WalkEntry {
        relative: PathBuf::new(),
        file_type: meta.file_type(),
    });
    if meta.is_dir() {
        walk_dir(root, PathBuf::new(), max_depth, &mut out)?;
    }
    Ok(out)
}

fn walk_dir(root: &Path, rel: PathBuf, depth_left: usize, out: &mut Vec<WalkEntry>) -> Result<()> {
    if depth_left == 0 {
        return Err(Error::Unsupported {
            feature: "directory tree deeper than the walk's depth limit",
        });
    }
    let io = |source| Error::Io {
        what: "reading a directory",
        source,
    };
    let mut entries = std::fs::read_dir(root.join(&rel))
        .map_err(io)?
        .map(|e| e.and_then(|e| Ok((e.file_name(), e.file_type()?))))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(io)?;
    entries.sort_by(|a, b| a.0.as_encoded_bytes().cmp(b.0.as_encoded_bytes()));
    for (name, file_type) in entries {
        let child = rel.join(&name);
        out.push(WalkEntry {
            relative: child.clone(),
            file_type,
        });
        if file_type.is_dir() {
            walk_dir(root, child, depth_left - 1, out)?;
        }
    }
    Ok(())
}
