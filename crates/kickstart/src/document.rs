//! The parsed form of a kickstart file: commands and sections in file order, each with the
//! file and line it came from.

use serde::Serialize;

/// Where an item came from: a file name (as given, or as an include was resolved) and a
/// 1-based line number within that file.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Location {
    /// The file, as named by the caller or by the `%include` line.
    pub file: String,
    /// 1-based line number in that file (0 when the problem concerns the file as a whole).
    pub line: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// One command line, split into words as pykickstart splits it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Command {
    /// The command name (`part`, `network`, ...).
    pub name: String,
    /// The words after the name, unquoted.
    pub args: Vec<String>,
    /// The line as written (without its line break), which `authselect` and `realm` take raw.
    pub raw: String,
    /// Where it was written.
    pub location: Location,
}

/// The kind of a `%section`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum SectionKind {
    /// `%packages`: groups, packages, exclusions, environments.
    Packages,
    /// `%pre`: a script run before installation.
    Pre,
    /// `%pre-install`: a script run after storage is set up.
    PreInstall,
    /// `%post`: a script run after installation.
    Post,
    /// `%onerror`: a script run when installation fails.
    OnError,
    /// `%traceback`: deprecated alias of `%onerror`.
    Traceback,
    /// `%certificate`: a certificate to install.
    Certificate,
    /// `%addon NAME`: data for an Anaconda add-on, kept verbatim.
    Addon,
    /// `%anaconda`: Anaconda configuration, kept verbatim.
    Anaconda,
}

impl SectionKind {
    /// Every kind with its header, in the order pykickstart registers them.
    pub const ALL: [(SectionKind, &'static str); 9] = [
        (SectionKind::Certificate, "%certificate"),
        (SectionKind::Pre, "%pre"),
        (SectionKind::PreInstall, "%pre-install"),
        (SectionKind::Post, "%post"),
        (SectionKind::OnError, "%onerror"),
        (SectionKind::Traceback, "%traceback"),
        (SectionKind::Packages, "%packages"),
        (SectionKind::Addon, "%addon"),
        (SectionKind::Anaconda, "%anaconda"),
    ];

    /// The kind opened by `header` (`%post`, ...).
    pub fn from_header(header: &str) -> Option<SectionKind> {
        Self::ALL
            .iter()
            .find(|(_, h)| *h == header)
            .map(|(k, _)| *k)
    }

    /// The header that opens this kind of section.
    pub fn header(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(k, _)| *k == self)
            .map_or("%end", |(_, h)| h)
    }

    /// Whether the body is a script.
    pub fn is_script(self) -> bool {
        matches!(
            self,
            SectionKind::Pre
                | SectionKind::PreInstall
                | SectionKind::Post
                | SectionKind::OnError
                | SectionKind::Traceback
        )
    }

    /// Whether every body line is kept (scripts, certificates and opaque sections) rather
    /// than blank lines and comments dropped (`%packages`).
    pub fn keeps_all_lines(self) -> bool {
        self != SectionKind::Packages
    }
}

/// A `%section ... %end` block.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Section {
    /// Which section.
    pub kind: SectionKind,
    /// The words of the header after the section name (`--nochroot`, an add-on's name, ...).
    pub args: Vec<String>,
    /// The body lines without their line breaks: verbatim for scripts, certificates and
    /// opaque sections; for `%packages` blank and comment lines are left out.
    pub body: Vec<String>,
    /// Where the header was written.
    pub location: Location,
}

/// One item of a kickstart file.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Item {
    /// A command line.
    Command(Command),
    /// A section.
    Section(Section),
}

impl Item {
    /// Where the item starts.
    pub fn location(&self) -> &Location {
        match self {
            Item::Command(c) => &c.location,
            Item::Section(s) => &s.location,
        }
    }
}

/// How serious a diagnostic is, in pykickstart's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// An error; parsing went on (pykickstart counts it and continues).
    Error,
    /// An error that stopped parsing (a section without `%end`, a missing include, ...).
    ErrorFatal,
    /// A warning (a mount point defined twice, ...). `ksvalidator` fails on it.
    Warning,
    /// A deprecated command or option; it is ignored. `ksvalidator` fails on it.
    Deprecated,
    /// Worth knowing, not a problem pykickstart reports: an `%include` that cannot be found
    /// (Anaconda skips it: such files are often written by a `%pre` script at install time).
    Notice,
}

impl Kind {
    /// pykickstart's name for the kind (`error`, `error-fatal`, `warning`, `deprecated`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Error => "error",
            Kind::ErrorFatal => "error-fatal",
            Kind::Warning => "warning",
            Kind::Deprecated => "deprecated",
            Kind::Notice => "notice",
        }
    }

    /// Whether this makes the file invalid even for Anaconda (not only for `ksvalidator`).
    pub fn is_error(self) -> bool {
        matches!(self, Kind::Error | Kind::ErrorFatal)
    }
}

/// A problem found in a kickstart file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// How serious.
    pub kind: Kind,
    /// Where.
    pub location: Location,
    /// What, for a person.
    pub message: String,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}: {}",
            self.location,
            self.kind.as_str(),
            self.message
        )
    }
}
