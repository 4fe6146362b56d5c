//! The crate's one error type.
//!
//! Problems *inside* a kickstart (unknown commands, bad values, missing `%end`, missing
//! includes, text that is not UTF-8) are not errors: they are [`Diagnostic`](crate::Diagnostic)s
//! with a file and line, because a validator must report all of them. Errors are what keeps
//! a file from being looked at at all.

/// Everything that can keep a kickstart file from being read.
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
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
