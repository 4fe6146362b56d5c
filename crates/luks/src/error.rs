//! The crate's one error type.

/// Everything that can go wrong reading or writing a LUKS2 volume.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O error while reading or writing `what`.
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
        /// The on-disk structure (e.g. "primary binary header").
        structure: &'static str,
        /// The field inside it.
        field: &'static str,
        /// Absolute byte offset of the field in the device or image.
        offset: u64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The JSON metadata area is not valid JSON.
    #[error(
        "malformed LUKS2 JSON area at byte offset {offset}: not valid JSON (line {line}, column {column})"
    )]
    Json {
        /// Absolute byte offset of the JSON area.
        offset: u64,
        /// Line of the syntax error (1-based).
        line: usize,
        /// Column of the syntax error (1-based).
        column: usize,
    },
    /// The JSON metadata violates the LUKS2 rules: which object path, and why.
    #[error("invalid LUKS2 metadata (JSON area at byte offset {offset}): `{path}`: {reason}")]
    Metadata {
        /// Absolute byte offset of the JSON area the metadata came from.
        offset: u64,
        /// Dotted path of the offending JSON value, e.g. `keyslots.1.area.offset`.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Input ended before a structure was complete.
    #[error("truncated {structure}: need {needed} bytes at offset {offset}, have {available}")]
    Truncated {
        /// The structure being read.
        structure: &'static str,
        /// Absolute offset where the structure starts.
        offset: u64,
        /// Bytes the structure needs.
        needed: u64,
        /// Bytes that were available.
        available: u64,
    },
    /// Neither header copy is usable; carries why the primary copy was rejected.
    #[error("no valid LUKS2 header copy (the primary was rejected: {primary})")]
    NoValidHeader {
        /// Why the primary copy was rejected.
        #[source]
        primary: Box<Error>,
    },
    /// A valid header using a feature this crate does not implement.
    #[error("unsupported {feature}")]
    Unsupported {
        /// The feature, e.g. "LUKS version 1".
        feature: &'static str,
    },
    /// A valid header using an algorithm or value this crate does not implement.
    #[error("unsupported {field} `{value}`")]
    UnsupportedValue {
        /// The field, e.g. "keyslot encryption".
        field: &'static str,
        /// The value found.
        value: String,
    },
    /// A value exceeds one of this crate's limits (untrusted input or options).
    #[error("{what} exceeds the limit of {limit}")]
    LimitExceeded {
        /// What was too large.
        what: &'static str,
        /// The limit.
        limit: u64,
    },
    /// An option given to a builder or an operation is invalid.
    #[error("invalid option `{option}`: {reason}")]
    InvalidOption {
        /// The option.
        option: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Memory a key derivation needs could not be allocated.
    #[error("out of memory: {what} needs {bytes} bytes")]
    OutOfMemory {
        /// What needed it.
        what: &'static str,
        /// How much.
        bytes: u64,
    },
    /// No keyslot could be opened with the passphrase.
    #[error("no keyslot matches the passphrase")]
    WrongPassphrase,
    /// The requested keyslot does not exist.
    #[error("keyslot {0} does not exist")]
    NoSuchKeyslot(u32),
    /// Removing this keyslot would leave the volume without one (its data unrecoverable).
    #[error("keyslot {0} is the last one: the volume would become unusable")]
    LastKeyslot(u32),
    /// No room is left for another keyslot (ids or keyslots area).
    #[error("no free keyslot: {reason}")]
    NoFreeKeyslot {
        /// Ids exhausted or keyslots area full.
        reason: &'static str,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { what, source }
}
