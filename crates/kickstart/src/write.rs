//! The canonical form: includes resolved, comments and blank lines dropped, one command per
//! line with its words re-quoted by one rule, every section preceded by a blank line and
//! closed by `%end`, script bodies verbatim. Items keep their order (it matters: `network`,
//! `part` and `%packages` lines accumulate in order).

use crate::document::{Item, Section};
use crate::lex::quote;
use crate::read::Kickstart;

/// Quotes a word; an `--option=value` word keeps its option bare and quotes only the value.
fn quote_word(w: &str) -> String {
    if let Some((opt, value)) = w.split_once('=')
        && opt.starts_with("--")
        && quote(opt) == opt
    {
        return format!("{opt}={}", quote(value));
    }
    quote(w)
}

fn push_words(out: &mut String, first: &str, words: &[String]) {
    out.push_str(first);
    for w in words {
        out.push(' ');
        out.push_str(&quote_word(w));
    }
    out.push('\n');
}

fn write_section(out: &mut String, s: &Section) {
    if !out.is_empty() {
        out.push('\n');
    }
    push_words(out, s.kind.header(), &s.args);
    for line in &s.body {
        out.push_str(line);
        out.push('\n');
    }
    out.push_str("%end\n");
}

impl Kickstart {
    /// Writes the canonical form (see the module docs). For every input that parses without
    /// fatal problems and [`is_canonically_writable`](Kickstart::is_canonically_writable),
    /// parsing the output gives the same items.
    pub fn to_canonical_string(&self) -> String {
        let mut out = String::new();
        for item in &self.items {
            match item {
                Item::Command(c) => push_words(&mut out, &quote(&c.name), &c.args),
                Item::Section(s) => write_section(&mut out, s),
            }
        }
        out
    }

    /// The canonical form with options normalised for `version`: in every command that
    /// validates without any diagnostic, options are spelled in full and take their value
    /// with `=` (`--siz 10` becomes `--size=10`). Commands with problems are written as
    /// [`Kickstart::to_canonical_string`] writes them, so nothing changes meaning.
    pub fn to_canonical_string_for(&self, version: crate::Version) -> String {
        let mut out = String::new();
        let mut session = crate::validate::Session::default();
        let mut sink = Vec::new();
        for item in &self.items {
            match item {
                Item::Command(c) => {
                    sink.clear();
                    let parsed =
                        crate::validate::check_command(version, &mut session, c, &mut sink);
                    let class = version.spec().command(&c.name);
                    match (parsed, class) {
                        (Some(_), Some(class))
                            if sink.is_empty()
                                && matches!(
                                    class.parse,
                                    crate::spec::Parse::Strict | crate::spec::Parse::Known
                                ) =>
                        {
                            let args = crate::argparse::normalize(class, &c.args);
                            push_words(&mut out, &quote(&c.name), &args);
                        }
                        _ => push_words(&mut out, &quote(&c.name), &c.args),
                    }
                }
                Item::Section(s) => write_section(&mut out, s),
            }
        }
        out
    }

    /// Whether [`Kickstart::to_canonical_string`] round-trips: false when a word holds a line
    /// break (`rootpw \` at the end of a line makes the word `"\n"`; form feeds and other
    /// characters Python's `splitlines` breaks on count too), which no kickstart line can
    /// spell; and when a section body taken from an included file holds a `%ksappend`
    /// line, which the written (flattened) file would splice in instead of keeping as a
    /// body line. Such files are rarely valid.
    pub fn is_canonically_writable(&self) -> bool {
        let breaks = |w: &String| w.chars().any(crate::read::is_line_break);
        let appends = |l: &String| {
            l.trim_matches(crate::lex::py_isspace)
                .starts_with("%ksappend")
        };
        // `realm` splits its raw line again, without comments (as pykickstart does): a line
        // whose comment is part of that split (`realm join x # y`) means something else
        // once written without it.
        let raw_split_agrees = |c: &crate::Command| {
            let rest = c.raw.trim_start_matches(crate::lex::py_isspace);
            let rest = rest.get(c.name.len()..).unwrap_or("");
            crate::lex::split(rest, false).is_ok_and(|w| w == c.args)
        };
        self.items.iter().all(|i| match i {
            Item::Command(c) if c.name == "realm" => {
                !breaks(&c.name) && !c.args.iter().any(breaks) && raw_split_agrees(c)
            }
            Item::Command(c) => !breaks(&c.name) && !c.args.iter().any(breaks),
            Item::Section(s) => !s.args.iter().any(breaks) && !s.body.iter().any(appends),
        })
    }

    /// Whether two parses have the same items, ignoring where they came from and how the
    /// lines were spelled (quoting, spacing, comments).
    pub fn same_items(&self, other: &Kickstart) -> bool {
        self.items.len() == other.items.len()
            && self
                .items
                .iter()
                .zip(&other.items)
                .all(|(a, b)| match (a, b) {
                    (Item::Command(x), Item::Command(y)) => x.name == y.name && x.args == y.args,
                    (Item::Section(x), Item::Section(y)) => {
                        x.kind == y.kind && x.args == y.args && x.body == y.body
                    }
                    _ => false,
                })
    }
}
