//! The versioned command sets, as data.
//!
//! `tables.rs` is generated from pykickstart's own handlers by `scripts/gen_tables.py`: every
//! command class with its argparse options, positionals, status (active, deprecated, removed),
//! repeatability and conflicts, and per version the map from command name to class. `rules.rs`
//! holds, again as a table, the checks pykickstart's `parse()` methods make beyond argparse.
//! Adding a version means regenerating the tables (and adding rules for new checks).

mod rules;
#[rustfmt::skip]
pub(crate) mod tables;

pub(crate) use rules::{RHEL_MARK, Rule, rules_for};

/// How a command's `parse()` hands its arguments to argparse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Parse {
    /// `parse_args`: leftovers are "unrecognized arguments".
    Strict,
    /// `parse_known_args`: leftovers are checked by the command ("Unexpected arguments").
    Known,
    /// The raw rest of the line is taken as is (`authselect`, `realm`).
    RawLine,
    /// Any argument is an error.
    NoArgs,
}

/// Whether a command still works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// Parsed and used.
    Active,
    /// Accepted with a deprecation warning and ignored.
    Deprecated,
    /// An error.
    Removed,
}

/// An argparse action. (Not every version's tables use every action.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code)]
pub(crate) enum Action {
    Store,
    StoreTrue,
    StoreFalse,
    StoreConst,
    Append,
    AppendConst,
    Count,
    Extend,
    ExtendConst,
}

/// How many values an option or positional takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code)]
pub(crate) enum Nargs {
    /// Exactly one, stored as a scalar (argparse `nargs=None`).
    One,
    /// Zero or one (`?`).
    Optional,
    /// Any number (`*`).
    Any,
    /// One or more (`+`).
    AtLeastOne,
    /// Exactly n, stored as a list.
    Exactly(u8),
}

impl Nargs {
    /// (minimum, maximum) number of values.
    pub(crate) fn bounds(self) -> (usize, usize) {
        match self {
            Nargs::One => (1, 1),
            Nargs::Optional => (0, 1),
            Nargs::Any => (0, usize::MAX),
            Nargs::AtLeastOne => (1, usize::MAX),
            Nargs::Exactly(n) => (usize::from(n), usize::from(n)),
        }
    }
}

/// The value type (argparse `type=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code)]
pub(crate) enum Ty {
    Str,
    Int,
    Float,
    Bool,
    CommaList,
    PortList,
    Mountpoint,
    /// One of these keywords, case-insensitively.
    Keyword(&'static [&'static str]),
    /// One of these keywords, compared in upper case.
    KeywordUpper(&'static [&'static str]),
}

/// An option.
#[derive(Debug)]
pub(crate) struct Opt {
    pub(crate) flags: &'static [&'static str],
    pub(crate) dest: &'static str,
    pub(crate) action: Action,
    pub(crate) nargs: Nargs,
    pub(crate) ty: Ty,
    pub(crate) choices: &'static [&'static str],
    pub(crate) required: bool,
    pub(crate) deprecated: bool,
    pub(crate) konst: Option<&'static str>,
    #[allow(dead_code)]
    pub(crate) metavar: Option<&'static str>,
}

/// A positional argument.
#[derive(Debug)]
pub(crate) struct Pos {
    pub(crate) dest: &'static str,
    pub(crate) nargs: Nargs,
    pub(crate) ty: Ty,
    pub(crate) required: bool,
    pub(crate) metavar: Option<&'static str>,
}

/// A command class (several names may share one, as `part` and `partition`) or a section.
#[derive(Debug)]
pub(crate) struct ClassSpec {
    pub(crate) class: &'static str,
    pub(crate) status: Status,
    pub(crate) parse: Parse,
    pub(crate) repeatable: bool,
    pub(crate) conflicts: &'static [&'static str],
    #[allow(dead_code)]
    pub(crate) write_priority: Option<i32>,
    pub(crate) options: &'static [Opt],
    pub(crate) positionals: &'static [Pos],
}

/// One kickstart syntax version.
#[derive(Debug)]
pub(crate) struct VersionSpec {
    pub(crate) name: &'static str,
    /// Command name to index in `CLASSES`, sorted by name.
    pub(crate) commands: &'static [(&'static str, usize)],
    /// Section header to index in `CLASSES` (None: no options parsed), sorted.
    pub(crate) sections: &'static [(&'static str, Option<usize>)],
}

impl VersionSpec {
    pub(crate) fn command(&self, name: &str) -> Option<&'static ClassSpec> {
        let i = self
            .commands
            .binary_search_by(|(n, _)| (*n).cmp(name))
            .ok()?;
        let (_, c) = self.commands.get(i)?;
        tables::CLASSES.get(*c)
    }

    pub(crate) fn section(&self, name: &str) -> Option<Option<&'static ClassSpec>> {
        let i = self
            .sections
            .binary_search_by(|(n, _)| (*n).cmp(name))
            .ok()?;
        let (_, c) = self.sections.get(i)?;
        Some(c.and_then(|c| tables::CLASSES.get(c)))
    }
}

/// A kickstart syntax version known to this crate (pykickstart's names: `F43`, `RHEL10`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Version(&'static VersionSpec);

impl Version {
    /// Fedora 43, the default.
    pub const F43: Version = Version(&tables::V_F43);
    /// Red Hat Enterprise Linux 10.
    pub const RHEL10: Version = Version(&tables::V_RHEL10);

    /// Looks a version up by name, case-insensitively (`F43`, `rhel10`, `DEVEL` is not one).
    pub fn from_name(name: &str) -> Option<Version> {
        tables::VERSIONS
            .iter()
            .find(|v| v.name.eq_ignore_ascii_case(name))
            .map(|v| Version(v))
    }

    /// All versions, newest Fedora first.
    pub fn all() -> impl Iterator<Item = Version> {
        tables::VERSIONS.iter().map(|v| Version(v))
    }

    /// The name, as pykickstart spells it.
    pub fn name(self) -> &'static str {
        self.0.name
    }

    /// Every command name this version knows (removed and deprecated ones included), sorted.
    pub fn command_names(self) -> impl Iterator<Item = &'static str> {
        self.0.commands.iter().map(|(n, _)| *n)
    }

    /// Whether `name` is a command that may be given more than once, each use adding an
    /// entry (`part`, `network`, `user`, ...); a single-use command given twice keeps the
    /// last one.
    pub fn is_repeatable(self, name: &str) -> bool {
        self.0.command(name).is_some_and(|c| c.repeatable)
    }

    /// Whether `name` is a command this version accepts (known, and neither removed nor
    /// deprecated).
    pub fn is_active_command(self, name: &str) -> bool {
        self.0
            .command(name)
            .is_some_and(|c| c.status == Status::Active)
    }

    pub(crate) fn spec(self) -> &'static VersionSpec {
        self.0
    }

    /// Whether this is a RHEL version.
    #[allow(dead_code)]
    pub(crate) fn is_rhel(self) -> bool {
        self.0.name.starts_with("RHEL")
    }
}

impl PartialEq for VersionSpec {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for VersionSpec {}
impl std::hash::Hash for VersionSpec {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl Default for Version {
    fn default() -> Self {
        Version::F43
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.name)
    }
}

impl serde::Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.name)
    }
}
