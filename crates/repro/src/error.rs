//! The crate's one error type.

/// Everything that can go wrong verifying reproducibility.
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
    /// A nested filesystem could not be read (the format crate's error, as text).
    #[error("reading {layer}: {message}")]
    Layer {
        /// The filesystem chain, outermost first, joined with ` > `.
        layer: String,
        /// What its reader said.
        message: String,
    },
    /// An output path that cannot be written: a directory, no file name, a missing directory.
    #[error("output {}: {reason}", path.display())]
    OutputPath {
        /// The output path.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The process is stopping ([`discard_pending_outputs`](crate::discard_pending_outputs)
    /// ran): no output file is created or committed any more.
    #[error("interrupted: output discarded")]
    Discarded,
    /// A kickstart the build's validator rejects.
    #[error("{}: not a valid kickstart for {version}: {}", path.display(), errors.join("; "))]
    Kickstart {
        /// The file.
        path: std::path::PathBuf,
        /// The version it was checked against.
        version: String,
        /// `file:line: message` per error.
        errors: Vec<String>,
    },
    /// An argument in the command-line language of a composition (`--part`, `--hybrid-mbr`)
    /// is invalid.
    #[error("{flag} {value:?}: {reason}")]
    Argument {
        /// The flag, e.g. `--part`.
        flag: &'static str,
        /// Its text.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A host file could not be used.
    #[error("{what} {}", path.display())]
    HostIo {
        /// What was being done, e.g. `opening`.
        what: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A format crate refused one step of a composition (the crate's error, as text).
    #[error("{step}: {message}")]
    Step {
        /// The step, e.g. `building the FAT file system of partition 1`.
        step: String,
        /// What the format crate said.
        message: String,
    },
    /// A LUKS2 operation failed: which step, and what the luks crate said.
    #[error("{step}")]
    Luks {
        /// The step that failed.
        step: crate::luks::LuksStep,
        /// The luks crate's error.
        #[source]
        source: imgpipe_luks::Error,
    },
    /// An output file could not be created or committed.
    #[error("cannot {action} {}", path.display())]
    OutputFile {
        /// `create` or `write`.
        action: &'static str,
        /// The output.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: Box<Error>,
    },
    /// A file an option names is missing or not a regular file.
    #[error(
        "{option}: {path} is not a file{}",
        within.as_ref().map(|d| format!(" in {}", d.display())).unwrap_or_default()
    )]
    NotAFile {
        /// The option that names it, e.g. `--bios-boot`.
        option: &'static str,
        /// The path as given.
        path: String,
        /// The tree it was looked up in, when it is a path inside one.
        within: Option<std::path::PathBuf>,
    },
    /// MBR boot code of the wrong size (an isohybrid MBR takes 432 to 512 bytes).
    #[error("{}: MBR boot code must be 432 to 512 bytes, not {len}", path.display())]
    BootCodeSize {
        /// The boot code file.
        path: std::path::PathBuf,
        /// Its size.
        len: usize,
    },
    /// A configured limit was exceeded (the work a diff may do on hostile images).
    #[error("{what} exceeds the limit of {limit}")]
    LimitExceeded {
        /// What was counted.
        what: &'static str,
        /// The limit.
        limit: u64,
    },
    /// A passphrase of a comparison ([`crate::Passphrases`]) opens no keyslot of a LUKS2
    /// volume it met.
    #[error(
        "the passphrase of the {} image opens no keyslot of the LUKS2 volume {layer}",
        if *second { "second" } else { "first" }
    )]
    WrongPassphrase {
        /// Whether the volume is the second image's.
        second: bool,
        /// The layers holding the volume, outermost first, joined with ` > `.
        layer: String,
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
