//! The crate's one error type.

/// Everything that can go wrong reading or writing GPT, MBR and FAT images.
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
    /// Neither the primary nor the backup GPT is usable.
    #[error("no usable GPT: primary: {primary}; backup: {backup}")]
    NoValidGpt {
        /// Why the primary header or its entries were rejected.
        primary: Box<Error>,
        /// Why the backup header or its entries were rejected.
        backup: Box<Error>,
    },
    /// A valid image using a feature this crate does not implement.
    #[error("unsupported {feature}")]
    Unsupported {
        /// The feature.
        feature: &'static str,
    },
    /// A limit of [`crate::Limits`] or of the format was exceeded.
    #[error("limit exceeded: {what} (limit {limit})")]
    LimitExceeded {
        /// What grew too large.
        what: &'static str,
        /// The limit.
        limit: u64,
    },
    /// A builder option or a layout request is invalid.
    #[error("invalid {what}: {reason}")]
    InvalidOption {
        /// The option (for example "partition size").
        what: &'static str,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// A partition does not fit the disk or its contents do not fit the partition.
    #[error("partition {index} does not fit: needs {needed} bytes, {available} available")]
    DoesNotFit {
        /// 1-based partition index (0 when it is the volume itself).
        index: u32,
        /// Bytes needed.
        needed: u64,
        /// Bytes available.
        available: u64,
    },
    /// A file or directory name cannot be stored (or, when reading, safely extracted).
    #[error("invalid name {name:?}: {reason}")]
    InvalidName {
        /// The name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// A path was not found in a FAT volume.
    #[error("not found in the FAT volume: {path:?}")]
    NotFound {
        /// The path.
        path: String,
    },
}

impl Error {
    pub(crate) fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> Error {
        move |source| Error::Io { what, source }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
