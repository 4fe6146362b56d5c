//! The one error type of this crate.

use std::path::PathBuf;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong building, scanning, reading or extracting a tree.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A host file operation failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done (`reading`, `creating`, ...).
        what: &'static str,
        /// The host path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Reading an image's bytes failed.
    #[error("{what}: {source}")]
    Read {
        /// What was being read.
        what: &'static str,
        /// The cause.
        source: std::io::Error,
    },
    /// Two entries of one tree have the same path.
    #[error("duplicate entry /{}", String::from_utf8_lossy(path))]
    Duplicate {
        /// The path.
        path: Vec<u8>,
    },
    /// An entry was added below something that is not a directory (or does not exist).
    #[error(
        "/{}: parent is not a directory in the tree",
        String::from_utf8_lossy(path)
    )]
    NoParent {
        /// The entry's path.
        path: Vec<u8>,
    },
    /// A path is empty in a component, holds `.`/`..` or a NUL byte.
    #[error("/{}: invalid path component", String::from_utf8_lossy(path))]
    InvalidPath {
        /// The path.
        path: Vec<u8>,
    },
    /// Extraction refused an entry that would land outside the destination.
    #[error(
        "/{}: would be written outside the destination ({reason})",
        String::from_utf8_lossy(path)
    )]
    Escape {
        /// The entry's path in the image.
        path: Vec<u8>,
        /// Why.
        reason: &'static str,
    },
    /// Extraction refused an entry for another reason (a duplicate path, content that
    /// disagrees with its declared size).
    #[error("/{}: refused: {reason}", String::from_utf8_lossy(path))]
    Refused {
        /// The entry's path in the image.
        path: Vec<u8>,
        /// Why.
        reason: &'static str,
    },
    /// A configured limit was exceeded.
    #[error("{what} exceeds the limit of {limit}")]
    LimitExceeded {
        /// What was counted.
        what: &'static str,
        /// The limit.
        limit: u64,
    },
    /// The format reader behind an [`FsRead`](crate::FsRead) failed.
    #[error("{0}")]
    Reader(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
    /// Extraction was cancelled by its progress callback.
    #[error("cancelled")]
    Cancelled,
}

impl Error {
    /// Wraps a format reader's error.
    pub fn reader(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Reader(Box::new(e))
    }
}
