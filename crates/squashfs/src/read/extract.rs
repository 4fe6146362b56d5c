//! Extraction to a host directory: [`Reader::extract`] and
//! [`ErofsReader::extract`](crate::erofs::ErofsReader::extract) are the one safe extractor,
//! [`imgpipe_fstree::extract`], run over this crate's [`FsRead`](imgpipe_fstree::FsRead)
//! readers; its errors come back as this crate's.

use std::path::Path;

pub use imgpipe_fstree::{ExtractOptions, ExtractReport};

use super::{Reader, lossy_path};
use crate::error::{Error, Result};

/// This crate's error for what the shared extractor reports: the reader's own errors as they
/// were, refusals as [`Error::Refused`], host I/O as [`Error::IoPath`].
pub(crate) fn extract_error(e: imgpipe_fstree::Error) -> Error {
    use imgpipe_fstree::Error as F;
    match e {
        F::Reader(inner) => match inner.downcast::<Error>() {
            Ok(ours) => *ours,
            Err(other) => Error::Extract(F::Reader(other)),
        },
        F::Io { what, path, source } => Error::IoPath { what, path, source },
        F::Read { what, source } => Error::Io { what, source },
        F::Escape { path, reason } | F::Refused { path, reason } => Error::Refused {
            path: lossy_path(&path),
            reason,
        },
        F::LimitExceeded { what, limit } => Error::LimitExceeded { what, limit },
        other => Error::Extract(other),
    }
}

impl Reader {
    /// Extracts the whole image below `dest` (created if missing; existing directories are
    /// reused, any other existing path is an error). File contents are written in parallel;
    /// sparse blocks become holes.
    ///
    /// # Security
    /// Nothing is written outside `dest` whatever the image says: see
    /// [`imgpipe_fstree::extract`] (names checked, parents must be extracted directories,
    /// `create_new`, no symlink followed, metadata through the open descriptor).
    pub fn extract(&self, dest: &Path, opts: ExtractOptions) -> Result<ExtractReport> {
        imgpipe_fstree::extract(self, dest, opts).map_err(extract_error)
    }
}
