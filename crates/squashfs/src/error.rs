//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong reading or writing squashfs and EROFS images.
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
    /// An I/O error on a named file of the host (a source tree or an extraction target).
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
        /// Absolute byte offset of the field (for metadata: of the metadata block holding it).
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
    /// A compressed block does not decompress (or decompresses to the wrong size).
    #[error("cannot decompress {structure} at byte offset {offset} ({compressor}): {reason}")]
    Decompress {
        /// What the block holds.
        structure: &'static str,
        /// Absolute offset of the block.
        offset: u64,
        /// The compressor name.
        compressor: &'static str,
        /// What went wrong.
        reason: &'static str,
    },
    /// The compressor library failed to compress (a library or option error, not input).
    #[error("cannot compress with {compressor}: {reason}")]
    Compress {
        /// The compressor name.
        compressor: &'static str,
        /// What went wrong.
        reason: &'static str,
    },
    /// A valid image using a feature this crate does not implement.
    #[error("unsupported {feature}")]
    Unsupported {
        /// The feature.
        feature: &'static str,
    },
    /// An option given to the writer or reader is out of range.
    #[error("invalid option `{option}`: {reason}")]
    InvalidOption {
        /// The option.
        option: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// A configured [`Limits`](crate::Limits) value was exceeded.
    #[error("limit exceeded: {what} (limit {limit})")]
    LimitExceeded {
        /// Which limit.
        what: &'static str,
        /// Its value.
        limit: u64,
    },
    /// A path inside the image does not exist (or a component is not a directory).
    #[error("not found in the image: {}", path.display())]
    NotFound {
        /// The path looked up.
        path: PathBuf,
    },
    /// Extraction refused an entry that would escape or clobber the destination.
    #[error("refusing to extract {}: {reason}", path.display())]
    Refused {
        /// The entry's path inside the image (lossy for non-UTF-8 names).
        path: PathBuf,
        /// Why.
        reason: &'static str,
    },
    /// An entry given to the writer is unusable (bad name, missing parent, duplicate).
    #[error("cannot add {}: {reason}", path.display())]
    BadEntry {
        /// The entry's path inside the image.
        path: PathBuf,
        /// Why.
        reason: &'static str,
    },
    /// The shared extractor failed for a reason this enum has no variant for (a
    /// cancellation, an invalid path component).
    #[error("extraction failed: {0}")]
    Extract(#[source] imgpipe_fstree::Error),
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
