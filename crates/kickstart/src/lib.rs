//! Kickstart files in pure Rust: parse, validate against pykickstart's versioned command
//! sets, flatten `%include`, and write back in a canonical form.
//!
//! ```
//! use imgpipe_kickstart::{Kickstart, Version};
//!
//! let ks = Kickstart::parse_str("ks.cfg", "lang en_US.UTF-8\nrootpw --lock\ntimezone --isUtc UTC\n\
//!     %packages\n@core\n%end\n");
//! let report = ks.validate(Version::F43);
//! assert!(report.is_valid());
//! // --isUtc is deprecated in F43: a warning (ksvalidator rejects it), and
//! assert_eq!(report.warnings().count(), 1);
//! // removed in RHEL 10: an error.
//! assert!(!ks.validate(Version::RHEL10).is_valid());
//!
//! // The canonical form parses back to the same items.
//! let text = ks.to_canonical_string();
//! assert!(Kickstart::parse_str("ks.cfg", &text).same_items(&ks));
//!
//! // Typed access to what an image build needs.
//! let part = Kickstart::parse_str("ks.cfg", "part / --size=4096 --encrypted --luks-version=luks2 \
//!     --pbkdf=argon2id --pbkdf-memory=65536\n");
//! let model = part.model(Version::F43);
//! assert_eq!(model.partitions[0].size, Some(4096));
//! assert_eq!(model.partitions[0].encryption.pbkdf_memory, Some(65536));
//! ```
//!
//! Files on disk, with `%include` and `%ksappend` followed relative to the including file:
//! [`Kickstart::load`]. Diagnostics carry pykickstart's kinds ([`Kind`]): a file is valid
//! for Anaconda when it has no errors ([`Report::is_valid`]) and for `ksvalidator` when it has
//! no diagnostics but notices ([`Report::is_clean`]).
//!
//! # How versions are represented
//! The command sets are data: a table generated from pykickstart 3.78's own handlers
//! (options, types, nargs, required, deprecated, removed, repeatable, conflicts) for F43,
//! RHEL10, RHEL9, F42, F41 and F40, and a table of the checks pykickstart makes beyond its
//! option parser. Both are checked against pykickstart on a real-world corpus and on
//! pykickstart's own test suite.
//!
//! # Security
//! Kickstart files are untrusted input. Parsing never panics; `%include` is depth-limited,
//! cycle-checked and capped in total lines and bytes ([`Limits`]); includes are read only
//! through a [`Resolver`] the caller chooses ([`NoIncludes`], [`MapResolver`], [`FsResolver`]).
//!
//! # Determinism
//! Diagnostics come in file order; the canonical writer emits items in file order with one
//! quoting rule, so equal inputs give byte-identical output.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod argparse;
mod document;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod inspect;
mod lex;
mod model;
mod read;
mod spec;
mod validate;
mod value;
mod write;

pub use document::{Command, Diagnostic, Item, Kind, Location, Section, SectionKind};
pub use error::{Error, Result};
pub use inspect::{COMMON_COMMANDS, Inspection, SECTIONS, detect, inspect};
pub use model::{
    AutoPart, Bootloader, ClearPart, CommandData, Encryption, Firewall, Group, Keyboard, Lang,
    Model, Network, Packages, Partition, Repo, RootPw, Script, Services, Timezone, Url, User,
};
pub use read::{
    FsResolver, Kickstart, Limits, MapResolver, NoIncludes, Resolver, Source, parse_with,
};
pub use spec::Version;
pub use validate::{Report, validate};
pub use value::Value;

impl Kickstart {
    /// Reads and parses the file at `path`, following `%include` and `%ksappend` relative to
    /// the including file (then to `path`'s directory) with the default [`Limits`].
    ///
    /// # Errors
    /// [`Error::Io`] when `path` itself cannot be read. Problems inside the file, missing
    /// includes among them, are diagnostics, not errors.
    pub fn load(path: &std::path::Path) -> Result<Kickstart> {
        Self::load_with(path, Limits::default())
    }

    /// [`Kickstart::load`] with explicit [`Limits`].
    ///
    /// # Errors
    /// [`Error::Io`] when `path` itself cannot be read.
    pub fn load_with(path: &std::path::Path, limits: Limits) -> Result<Kickstart> {
        // The file named by the caller may be a pipe (`<(...)`); only its size is capped.
        let io = |source| Error::Io {
            what: "reading the kickstart file",
            source,
        };
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(
                std::fs::File::open(path).map_err(io)?,
                limits.max_bytes.saturating_add(1),
            ),
            &mut bytes,
        )
        .map_err(io)?;
        if bytes.len() as u64 > limits.max_bytes {
            return Err(Error::Io {
                what: "reading the kickstart file",
                source: std::io::Error::other(format!(
                    "file larger than {} bytes",
                    limits.max_bytes
                )),
            });
        }
        let name = path.to_string_lossy().into_owned();
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                let offset = e.utf8_error().valid_up_to();
                let valid = e.as_bytes().get(..offset).unwrap_or(&[]);
                let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
                return Ok(Kickstart {
                    items: Vec::new(),
                    problems: vec![Diagnostic {
                        kind: Kind::ErrorFatal,
                        location: Location { file: name, line },
                        message: format!(
                            "the file is not UTF-8 text (invalid byte at offset {offset})"
                        ),
                    }],
                    flattened: String::new(),
                });
            }
        };
        let base = path
            .parent()
            .unwrap_or(std::path::Path::new(""))
            .to_path_buf();
        Ok(parse_with(
            Source { name, text },
            &mut FsResolver::with_max_bytes(base, limits.max_bytes),
            limits,
        ))
    }

    /// Parses text without following includes (an `%include` is reported as missing).
    pub fn parse_str(name: &str, text: &str) -> Kickstart {
        parse_with(
            Source {
                name: name.to_string(),
                text: text.to_string(),
            },
            &mut NoIncludes,
            Limits::default(),
        )
    }

    /// Validates against `version`.
    pub fn validate(&self, version: Version) -> Report {
        validate(self, version)
    }
}
