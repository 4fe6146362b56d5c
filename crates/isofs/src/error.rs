//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong reading or writing ISO9660 images.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O error while doing `what`.
    #[error("I/O error while {what}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An I/O error on a named file while doing `what`.
    #[error("I/O error while {what} {}", path.display())]
    IoPath {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A structure is malformed: which structure, which field, at which byte offset.
    #[error("malformed {structure}: field `{field}` at byte offset {offset}: {reason}")]
    Malformed {
        /// The on-disk structure.
        structure: &'static str,
        /// The field inside it.
        field: &'static str,
        /// Absolute byte offset of the field.
        offset: u64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Input ended before a structure was complete.
    #[error("truncated {structure}: need {needed} bytes at offset {offset}, have {available}")]
    Truncated {
        /// The structure being read.
        structure: &'static str,
        /// Absolute offset where it starts.
        offset: u64,
        /// Bytes needed.
        needed: u64,
        /// Bytes available.
        available: u64,
    },
    /// A limit guarding against hostile input was exceeded.
    #[error("limit exceeded: {what} over {limit} (at byte offset {offset})")]
    LimitExceeded {
        /// What was counted.
        what: &'static str,
        /// The limit.
        limit: u64,
        /// Byte offset of the structure that crossed it.
        offset: u64,
    },
    /// The directory graph of an image loops back on itself.
    #[error("directory loop: the directory at block {block} is reached twice (at {path})")]
    DirectoryLoop {
        /// The directory's extent.
        block: u32,
        /// The path where it was reached again.
        path: String,
    },
    /// A name in the image would escape or clash inside the extraction destination.
    #[error("unsafe path in image: {path}: {reason}")]
    UnsafePath {
        /// The path, lossily decoded.
        path: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A path was not found in the image.
    #[error("not found in image: {path}")]
    NotFound {
        /// The path looked up.
        path: String,
    },
    /// The caller's input to the builder is invalid.
    #[error("invalid input for {what}: {path}: {reason}")]
    InvalidInput {
        /// Which option or entry.
        what: &'static str,
        /// The path concerned (may be empty).
        path: String,
        /// Why.
        reason: &'static str,
    },
    /// A valid image using a feature this crate does not implement.
    #[error("unsupported {feature}")]
    Unsupported {
        /// The feature.
        feature: &'static str,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
