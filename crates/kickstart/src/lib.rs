//! Kickstart files in pure Rust: parse, validate against versioned command sets, flatten
//! `%include`, and write back in a canonical form, agreeing with pykickstart.
//!
//! ```
//! let ks = "lang en_US.UTF-8\nrootpw --lock\n%packages\n@core\n%end\n";
//! assert!(imgpipe_kickstart::detect(ks.as_bytes()));
//! let info = imgpipe_kickstart::inspect(ks);
//! assert_eq!(info.commands, ["lang", "rootpw"]);
//! ```
//!
//! # Security
//! Kickstart files are untrusted: includes are depth-limited and cycle-checked.
//!
//! # Determinism
//! The canonical writer orders commands and options deterministically.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod error;
mod inspect;

pub use error::{Error, Result};
pub use inspect::{COMMON_COMMANDS, Inspection, SECTIONS, detect, inspect};
