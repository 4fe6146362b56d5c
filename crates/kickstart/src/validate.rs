//! Checking a parsed kickstart against one version's command set, as pykickstart does.

use serde::Serialize;

use crate::argparse::{self, Namespace};
use crate::document::{Command, Diagnostic, Item, Kind, Location, Section, SectionKind};
use crate::read::Kickstart;
use crate::spec::{ClassSpec, Parse, Rule, Status, Version, rules_for};

/// The outcome of validating a kickstart against a version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The version checked against.
    pub version: Version,
    /// Every problem, in the order pykickstart reports them; a fatal one comes last.
    pub diagnostics: Vec<Diagnostic>,
}

impl Report {
    /// Whether the file is valid for Anaconda: no errors (warnings allowed).
    pub fn is_valid(&self) -> bool {
        !self.diagnostics.iter().any(|d| d.kind.is_error())
    }

    /// Whether `ksvalidator` accepts the file: no diagnostics but notices (it fails on
    /// warnings and deprecations too).
    pub fn is_clean(&self) -> bool {
        self.diagnostics.iter().all(|d| d.kind == Kind::Notice)
    }

    /// The errors.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.kind.is_error())
    }

    /// The warnings and deprecations.
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| !d.kind.is_error())
    }
}

/// What argparse and the command's own checks made of one command line.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub(crate) ns: Namespace,
}

/// State shared across a file: which classes were seen, and the entries of repeatable
/// commands (for duplicate checks).
#[derive(Default)]
pub(crate) struct Session {
    seen: Vec<&'static str>,
    entries: Vec<(&'static str, Namespace)>,
}

fn diag(kind: Kind, location: &Location, message: String) -> Diagnostic {
    Diagnostic {
        kind,
        location: location.clone(),
        message,
    }
}

fn deprecated_option(d: &mut Vec<Diagnostic>, loc: &Location, option: &str) {
    d.push(diag(
        Kind::Deprecated,
        loc,
        format!(
            "Ignoring deprecated option on line {}: The {option} option has been deprecated and \
             no longer has any effect. It may be removed from future releases, which will result \
             in a fatal error from kickstart. Please modify your kickstart file to remove this \
             option.",
            loc.line
        ),
    ));
}

/// " (--x is not an option in RHEL10; F43, RHEL9 accept it)" for words other versions accept
/// as options: the usual cause is an option removed in this version.
fn removed_hint(
    version: Version,
    class_of: impl Fn(Version) -> Option<&'static ClassSpec>,
    extras: &[String],
) -> String {
    let mut hints = Vec::new();
    for word in extras {
        let flag = word.split_once('=').map_or(word.as_str(), |(f, _)| f);
        if !flag.starts_with("--") {
            continue;
        }
        let knowing: Vec<&str> = Version::all()
            .filter(|v| *v != version)
            .filter(|v| {
                class_of(*v).is_some_and(|c| c.options.iter().any(|o| o.flags.contains(&flag)))
            })
            .map(Version::name)
            .collect();
        if !knowing.is_empty() {
            hints.push(format!(
                "{flag} is not an option in {version}; {} accept it",
                knowing.join(", ")
            ));
        }
    }
    if hints.is_empty() {
        String::new()
    } else {
        format!(" ({})", hints.join("; "))
    }
}

/// Checks one command; diagnostics go to `out`. Returns the parse when it succeeded.
pub(crate) fn check_command(
    version: Version,
    session: &mut Session,
    c: &Command,
    out: &mut Vec<Diagnostic>,
) -> Option<Parsed> {
    let loc = &c.location;
    let spec = version.spec();
    let Some(class) = spec.command(&c.name) else {
        out.push(diag(
            Kind::Error,
            loc,
            format!("Unknown command: {}", c.name),
        ));
        return None;
    };
    if !session.seen.contains(&class.class) {
        session.seen.push(class.class);
    }
    for other in class.conflicts {
        if let Some(o) = spec.command(other)
            && session.seen.contains(&o.class)
            && o.class != class.class
        {
            out.push(diag(
                Kind::Error,
                loc,
                format!(
                    "The {} and {other} commands can't be used at the same time.",
                    c.name
                ),
            ));
            return None;
        }
    }
    match class.status {
        Status::Removed => {
            out.push(diag(
                Kind::Error,
                loc,
                format!("{} has been removed.", c.name),
            ));
            return None;
        }
        Status::Deprecated => {
            out.push(diag(
                Kind::Deprecated,
                loc,
                format!(
                    "Ignoring deprecated command on line {}:  The {} command has been deprecated \
                     and no longer has any effect.  It may be removed from future releases, which \
                     will result in a fatal error from kickstart.  Please modify your kickstart \
                     file to remove this command.",
                    loc.line, c.name
                ),
            ));
            return None;
        }
        Status::Active => {}
    }
    let ns = match class.parse {
        Parse::RawLine => Namespace::default(),
        Parse::NoArgs => {
            if !c.args.is_empty() {
                out.push(diag(
                    Kind::Error,
                    loc,
                    format!("Kickstart command {} does not take any arguments", c.name),
                ));
                return None;
            }
            Namespace::default()
        }
        Parse::Strict | Parse::Known => {
            let mut deprecated = Vec::new();
            let r = argparse::parse_known(class, &c.args, &mut deprecated);
            for o in deprecated {
                deprecated_option(out, loc, o);
            }
            let ns = match r {
                Ok(ns) => ns,
                Err(e) => {
                    out.push(diag(Kind::Error, loc, e));
                    return None;
                }
            };
            if class.parse == Parse::Strict && !ns.extras.is_empty() {
                out.push(diag(
                    Kind::Error,
                    loc,
                    format!(
                        "unrecognized arguments: {}{}",
                        ns.extras.join(" "),
                        removed_hint(version, |v| v.spec().command(&c.name), &ns.extras)
                    ),
                ));
                return None;
            }
            ns
        }
    };
    let mut ns = ns;
    if class.class.starts_with("RHEL") {
        ns.set(crate::spec::RHEL_MARK, crate::value::Value::Bool(true));
    }
    let rules = rules_for(class, version);
    if class.parse == Parse::Known
        && !ns.extras.is_empty()
        && !rules
            .iter()
            .any(|r| matches!(r, Rule::Extras(_) | Rule::TakesExtras))
    {
        out.push(diag(
            Kind::Error,
            loc,
            format!(
                "Unexpected arguments to {} command: {:?}",
                c.name, ns.extras
            ),
        ));
        return None;
    }
    for rule in rules {
        if let Some((kind, msg)) = rule.check(c, &mut ns, class, session_entries(session, class)) {
            out.push(diag(kind, loc, msg));
            if kind.is_error() {
                return None;
            }
        }
    }
    // Every successful parse is kept: repeatable commands check duplicates against it, and
    // a few single ones (realm) refuse a second use.
    session.entries.push((class.class, ns.clone()));
    Some(Parsed { ns })
}

fn session_entries<'a>(
    session: &'a Session,
    class: &'static ClassSpec,
) -> impl Iterator<Item = &'a Namespace> + Clone {
    session
        .entries
        .iter()
        .filter(move |(c, _)| *c == class.class)
        .map(|(_, n)| n)
}

fn check_section(version: Version, s: &Section, out: &mut Vec<Diagnostic>) {
    let loc = &s.location;
    let header = s.kind.header();
    if s.kind == SectionKind::Traceback {
        out.push(diag(
            Kind::Deprecated,
            loc,
            "The %traceback section has been deprecated. It may be removed in the future, which \
             will result in a fatal error from kickstart. Please modify your kickstart file to use \
             the %onerror section instead."
                .to_string(),
        ));
    }
    let Some(Some(class)) = version.spec().section(header) else {
        return;
    };
    let mut deprecated = Vec::new();
    let r = argparse::parse_known(class, &s.args, &mut deprecated);
    for o in deprecated {
        deprecated_option(out, loc, o);
    }
    let ns = match r {
        Ok(ns) if ns.extras.is_empty() => ns,
        Ok(ns) => {
            out.push(diag(
                Kind::Error,
                loc,
                format!(
                    "unrecognized arguments: {}{}",
                    ns.extras.join(" "),
                    removed_hint(version, |v| v.spec().section(header).flatten(), &ns.extras)
                ),
            ));
            return;
        }
        Err(e) => {
            out.push(diag(Kind::Error, loc, e));
            return;
        }
    };
    match s.kind {
        SectionKind::Packages => {
            if ns.truthy("defaultPackages") && ns.truthy("nobase") {
                out.push(diag(
                    Kind::Error,
                    loc,
                    "--default and --nobase cannot be used together".to_string(),
                ));
            } else if ns.truthy("defaultPackages") && ns.truthy("nocore") {
                out.push(diag(
                    Kind::Error,
                    loc,
                    "--default and --nocore cannot be used together".to_string(),
                ));
            }
        }
        SectionKind::Certificate if !ns.truthy("dir") && !ns.truthy("type") => {
            out.push(diag(
                Kind::Error,
                loc,
                "One of --dir or --type must be specified for %certificate".to_string(),
            ));
        }
        _ => {}
    }
}

/// Validates `ks` against `version`.
pub fn validate(ks: &Kickstart, version: Version) -> Report {
    let mut out = Vec::new();
    let mut session = Session::default();
    for item in &ks.items {
        match item {
            Item::Command(c) => {
                check_command(version, &mut session, c, &mut out);
            }
            Item::Section(s) => check_section(version, s, &mut out),
        }
    }
    out.extend(ks.problems.iter().cloned());
    Report {
        version,
        diagnostics: out,
    }
}
