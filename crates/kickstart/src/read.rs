//! Reading kickstart text: `%ksappend` and `%include` resolution, then pykickstart's state
//! machine (commands, `%section ... %end`), producing items with their locations and the
//! structural problems that stop pykickstart (a section without `%end`, an unknown section,
//! an unclosed quote, a missing include).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::document::{Command, Diagnostic, Item, Kind, Location, Section, SectionKind};
use crate::lex::{self, is_blank_or_comment, py_isspace};

/// A kickstart file's name and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// How diagnostics name the file (and, for [`FsResolver`], where it is).
    pub name: String,
    /// The text.
    pub text: String,
}

/// Finds the files `%include` and `%ksappend` name.
pub trait Resolver {
    /// Loads `target` as named by a line in the file called `from`.
    ///
    /// # Errors
    /// Whatever keeps the file from being read; the message becomes a diagnostic.
    fn load(&mut self, from: &str, target: &str) -> std::io::Result<Source>;

    /// What identifies a loaded file, so that include cycles are found whatever names
    /// reach it (`./a.ks` and `a.ks`): its name, unless the resolver knows better
    /// ([`FsResolver`] gives the canonical path).
    fn identity(&self, src: &Source) -> String {
        src.name.clone()
    }
}

/// Resolves nothing: every include is reported missing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoIncludes;

impl Resolver for NoIncludes {
    fn load(&mut self, _from: &str, target: &str) -> std::io::Result<Source> {
        Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("includes are not followed: {target}"),
        ))
    }
}

/// Resolves includes from an in-memory map of file name to text (tests, fuzzing, embedding).
/// Names are looked up as written.
#[derive(Debug, Default, Clone)]
pub struct MapResolver(pub BTreeMap<String, String>);

impl Resolver for MapResolver {
    fn load(&mut self, _from: &str, target: &str) -> std::io::Result<Source> {
        match self.0.get(target) {
            Some(text) => Ok(Source {
                name: target.to_string(),
                text: text.clone(),
            }),
            None => Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("No such file: {target}"),
            )),
        }
    }
}

/// Resolves includes on the file system: relative to the including file's directory, then
/// relative to the top-level file's directory (where `ksvalidator` is usually run), as
/// pykickstart tries the working directory and then the including file's directory.
///
/// # Security
/// Only regular files are read: each is opened non-blocking (a FIFO cannot stall the open)
/// and checked with `fstat` before any read (FIFOs, devices such as `/dev/zero` and
/// directories are refused), and no more than its byte cap is read. Files are identified
/// by canonical path, so cycles through other spellings of a name are found.
#[derive(Debug, Clone)]
pub struct FsResolver {
    base: PathBuf,
    max_bytes: u64,
}

impl FsResolver {
    /// A resolver whose fallback directory is `base` (the top-level file's directory).
    pub fn new(base: impl Into<PathBuf>) -> Self {
        Self::with_max_bytes(base, Limits::default().max_bytes)
    }

    /// A resolver reading at most `max_bytes` of any one file.
    pub fn with_max_bytes(base: impl Into<PathBuf>, max_bytes: u64) -> Self {
        FsResolver {
            base: base.into(),
            max_bytes,
        }
    }

    /// Reads a regular file of at most `max` bytes as UTF-8.
    pub fn read(path: &Path, max: u64) -> std::io::Result<String> {
        use std::io::Read;
        use std::os::unix::fs::OpenOptionsExt;
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(path)?;
        let meta = f.metadata()?;
        if !meta.is_file() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a regular file",
            ));
        }
        if meta.len() > max {
            return Err(std::io::Error::other(format!(
                "file larger than {max} bytes"
            )));
        }
        let mut bytes = Vec::new();
        f.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > max {
            return Err(std::io::Error::other(format!(
                "file larger than {max} bytes"
            )));
        }
        String::from_utf8(bytes).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "not UTF-8 (invalid byte at offset {})",
                    e.utf8_error().valid_up_to()
                ),
            )
        })
    }
}

impl Resolver for FsResolver {
    fn load(&mut self, from: &str, target: &str) -> std::io::Result<Source> {
        let t = Path::new(target);
        let dir = Path::new(from).parent().unwrap_or(Path::new(""));
        let candidates = if t.is_absolute() {
            vec![t.to_path_buf()]
        } else {
            vec![dir.join(t), self.base.join(t)]
        };
        let mut last = None;
        for c in candidates {
            match Self::read(&c, self.max_bytes) {
                Ok(text) => {
                    return Ok(Source {
                        name: c.to_string_lossy().into_owned(),
                        text,
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound)))
    }

    fn identity(&self, src: &Source) -> String {
        std::fs::canonicalize(&src.name)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|_| src.name.clone())
    }
}

/// Caps that keep hostile input (include bombs, huge files) bounded, and how strict to be
/// about missing includes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Whether a missing `%include` stops parsing (an `error-fatal`, as `ksvalidator -i`
    /// does) or is skipped with a [`Kind::Notice`] (as Anaconda does; the default).
    pub missing_include_is_fatal: bool,
    /// Deepest `%include` nesting.
    pub max_include_depth: usize,
    /// Most lines read in total, includes counted.
    pub max_lines: usize,
    /// Most bytes read in total, includes counted.
    pub max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            missing_include_is_fatal: false,
            max_include_depth: 16,
            max_lines: 1_000_000,
            max_bytes: 64 << 20,
        }
    }
}

/// A parsed kickstart: its items in order, the problems that stopped pykickstart's parser,
/// and the text with every include resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Kickstart {
    /// Commands and sections, includes resolved, in the order they take effect.
    pub items: Vec<Item>,
    /// Structural problems (at most one is fatal: parsing stops there, as in pykickstart).
    pub problems: Vec<Diagnostic>,
    /// The text with `%include` and `%ksappend` lines replaced by the files they name.
    #[serde(skip)]
    pub flattened: String,
}

use serde::Serialize;

/// Whether Python's `str.splitlines` breaks a line at `c`.
pub(crate) fn is_line_break(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r'
            | '\x0b'
            | '\x0c'
            | '\x1c'
            | '\x1d'
            | '\x1e'
            | '\u{85}'
            | '\u{2028}'
            | '\u{2029}'
    )
}

/// Python's `str.splitlines(keepends=True)`.
pub(crate) fn split_lines(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut it = text.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        let end = match c {
            '\r' => {
                if let Some((_, '\n')) = it.peek() {
                    it.next();
                    i + 2
                } else {
                    i + 1
                }
            }
            '\n' | '\x0b' | '\x0c' | '\x1c' | '\x1d' | '\x1e' | '\u{85}' | '\u{2028}'
            | '\u{2029}' => i + c.len_utf8(),
            _ => continue,
        };
        out.push(text.get(start..end).unwrap_or(""));
        start = end;
    }
    if start < text.len() {
        out.push(text.get(start..).unwrap_or(""));
    }
    out
}

fn strip_eol(line: &str) -> &str {
    let t = line.strip_suffix("\r\n").unwrap_or(line);
    let mut chars = t.chars();
    match chars.next_back() {
        Some(
            '\n' | '\r' | '\x0b' | '\x0c' | '\x1c' | '\x1d' | '\x1e' | '\u{85}' | '\u{2028}'
            | '\u{2029}',
        ) => chars.as_str(),
        _ => t,
    }
}

struct Frame {
    name: String,
    /// The file's identity ([`Resolver::identity`]), for cycle detection.
    id: String,
    lines: Vec<String>,
    next: usize,
    offset: usize,
}

struct Stream<'r> {
    stack: Vec<Frame>,
    resolver: &'r mut dyn Resolver,
    limits: Limits,
    lines_read: usize,
    bytes_read: u64,
    flat: String,
    top_name: String,
    top_lines: usize,
    notices: Vec<Diagnostic>,
}

struct Line {
    loc: Location,
    text: String,
}

impl Stream<'_> {
    fn next(&mut self) -> Result<Option<Line>, Diagnostic> {
        loop {
            let Some(top) = self.stack.last_mut() else {
                return Ok(None);
            };
            if let Some(text) = top.lines.get(top.next) {
                top.next += 1;
                let loc = Location {
                    file: top.name.clone(),
                    line: top.offset + top.next,
                };
                self.lines_read += 1;
                if self.lines_read > self.limits.max_lines {
                    return Err(fatal(
                        loc,
                        format!("more than {} lines read", self.limits.max_lines),
                    ));
                }
                return Ok(Some(Line {
                    loc,
                    text: text.clone(),
                }));
            }
            self.stack.pop();
        }
    }

    fn emit(&mut self, text: &str) {
        self.flat.push_str(text);
        if !text.ends_with(['\n', '\r']) {
            self.flat.push('\n');
        }
    }

    fn push(&mut self, src: Source, at: &Location, what: &str) -> Result<(), Diagnostic> {
        if self.stack.len() > self.limits.max_include_depth {
            return Err(fatal(
                at.clone(),
                format!(
                    "{what} nested deeper than {} files",
                    self.limits.max_include_depth
                ),
            ));
        }
        let id = self.resolver.identity(&src);
        if self.stack.iter().any(|f| f.id == id) {
            return Err(fatal(
                at.clone(),
                format!("{what} cycle: {} includes itself", src.name),
            ));
        }
        self.bytes_read = self.bytes_read.saturating_add(src.text.len() as u64);
        if self.bytes_read > self.limits.max_bytes {
            return Err(fatal(
                at.clone(),
                format!("more than {} bytes read", self.limits.max_bytes),
            ));
        }
        let lines = split_lines(&src.text)
            .into_iter()
            .map(str::to_string)
            .collect();
        self.stack.push(Frame {
            name: src.name,
            id,
            lines,
            next: 0,
            offset: 0,
        });
        Ok(())
    }

    fn include(&mut self, target: &str, at: &Location) -> Result<(), Diagnostic> {
        let from = at.file.clone();
        match self.resolver.load(&from, target) {
            Ok(src) => self.push(src, at, "%include"),
            Err(e) => {
                let mut d = fatal(
                    at.clone(),
                    format!("Unable to open %include file {target}: {e}"),
                );
                if self.limits.missing_include_is_fatal {
                    return Err(d);
                }
                d.kind = Kind::Notice;
                self.notices.push(d);
                Ok(())
            }
        }
    }
}

fn fatal(location: Location, message: String) -> Diagnostic {
    Diagnostic {
        kind: Kind::ErrorFatal,
        location,
        message,
    }
}

/// Parses `source`, following includes through `resolver`, within `limits`.
pub fn parse_with(source: Source, resolver: &mut dyn Resolver, limits: Limits) -> Kickstart {
    let mut ks = Kickstart {
        items: Vec::new(),
        problems: Vec::new(),
        flattened: String::new(),
    };
    // %ksappend is a preprocessing step on the top file only: splice the named files in.
    // Frames are (name, lines, number of the first line - 1).
    let top_name = source.name.clone();
    let top_id = resolver.identity(&source);
    let top_lines = split_lines(&source.text);
    let mut frames: Vec<Frame> = Vec::new();
    let mut chunk: Vec<String> = Vec::new();
    let mut chunk_start = 0usize;
    // Appended files count against the byte cap as they are loaded: a top file naming one
    // file on thousands of lines must not hold thousands of copies before the cap applies.
    let mut bytes_read = source.text.len() as u64;
    for (i, line) in top_lines.iter().enumerate() {
        let ll = line.trim_matches(py_isspace);
        if !ll.starts_with("%ksappend") {
            chunk.push((*line).to_string());
            continue;
        }
        let at = Location {
            file: top_name.clone(),
            line: i + 1,
        };
        let Some(url) = ll.split(' ').nth(1) else {
            ks.problems
                .push(fatal(at, format!("Illegal url for %ksappend: {ll}")));
            return ks;
        };
        match resolver.load(&top_name, url) {
            Ok(src) => {
                bytes_read = bytes_read.saturating_add(src.text.len() as u64);
                if bytes_read > limits.max_bytes {
                    ks.problems.push(fatal(
                        at,
                        format!("more than {} bytes read", limits.max_bytes),
                    ));
                    return ks;
                }
                frames.push(Frame {
                    name: top_name.clone(),
                    id: top_id.clone(),
                    lines: std::mem::take(&mut chunk),
                    next: 0,
                    offset: chunk_start,
                });
                chunk_start = i + 1;
                let id = resolver.identity(&src);
                frames.push(Frame {
                    name: src.name,
                    id,
                    lines: split_lines(&src.text)
                        .into_iter()
                        .map(str::to_string)
                        .collect(),
                    next: 0,
                    offset: 0,
                });
            }
            Err(e) => {
                ks.problems.push(fatal(
                    at,
                    format!("Unable to open %ksappend file: Error opening file: {url}: {e}"),
                ));
                return ks;
            }
        }
    }
    frames.push(Frame {
        name: top_name.clone(),
        id: top_id,
        lines: chunk,
        next: 0,
        offset: chunk_start,
    });
    frames.reverse();
    let mut stream = Stream {
        stack: frames,
        resolver,
        limits,
        lines_read: 0,
        bytes_read,
        flat: String::new(),
        top_name,
        top_lines: top_lines.len(),
        notices: Vec::new(),
    };
    let r = run(&mut stream, &mut ks.items);
    ks.problems.append(&mut stream.notices);
    if let Err(d) = r {
        ks.problems.push(d);
    }
    ks.flattened = stream.flat;
    ks
}

fn first_word(s: &str) -> &str {
    s.split(py_isspace).find(|w| !w.is_empty()).unwrap_or("")
}

fn run(st: &mut Stream<'_>, items: &mut Vec<Item>) -> Result<(), Diagnostic> {
    while let Some(line) = st.next()? {
        let text = line.text.as_str();
        if is_blank_or_comment(text) {
            st.emit(text);
            continue;
        }
        let args =
            lex::split(text, true).map_err(|e| fatal(line.loc.clone(), e.message().to_string()))?;
        let Some(first) = args.first() else {
            st.emit(text);
            continue;
        };
        if first == "%include" {
            let target = args
                .get(1)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| fatal(line.loc.clone(), "%include needs a file name".to_string()))?;
            st.include(target, &line.loc)?;
            continue;
        }
        st.emit(text);
        if first == "%ksappend" {
            continue;
        }
        if first.is_empty() {
            return Err(fatal(
                line.loc,
                "a line starts with an empty word".to_string(),
            ));
        }
        if first.starts_with('%') {
            let Some(kind) = SectionKind::from_header(first) else {
                return Err(fatal(
                    line.loc,
                    format!("Unknown kickstart section: {first}"),
                ));
            };
            let section = Section {
                kind,
                args: args.get(1..).unwrap_or(&[]).to_vec(),
                body: Vec::new(),
                location: line.loc,
            };
            read_section(st, section, items)?;
            continue;
        }
        let raw = strip_eol(text).to_string();
        let mut words = args.into_iter();
        let name = words.next().unwrap_or_default();
        items.push(Item::Command(Command {
            name,
            args: words.collect(),
            raw,
            location: line.loc,
        }));
    }
    Ok(())
}

fn read_section(
    st: &mut Stream<'_>,
    mut section: Section,
    items: &mut Vec<Item>,
) -> Result<(), Diagnostic> {
    let header = section.kind.header();
    loop {
        let Some(line) = st.next()? else {
            items.push(Item::Section(section));
            return Err(fatal(
                Location {
                    file: st.top_name.clone(),
                    line: st.top_lines,
                },
                format!("Section {header} does not end with %end."),
            ));
        };
        let text = line.text.as_str();
        if is_blank_or_comment(text) && !section.kind.keeps_all_lines() {
            st.emit(text);
            continue;
        }
        if text.trim_start_matches(py_isspace).starts_with('%') {
            let possible = first_word(text);
            if SectionKind::from_header(possible).is_some()
                || possible == "%end"
                || possible == "%include"
            {
                let args = lex::split(text, false)
                    .map_err(|e| fatal(line.loc.clone(), e.message().to_string()))?;
                match args.first().map(String::as_str) {
                    Some("%end") => {
                        st.emit(text);
                        finish_section(&section, &line.loc)?;
                        items.push(Item::Section(section));
                        return Ok(());
                    }
                    Some("%include") => {
                        let target = args.get(1).filter(|t| !t.is_empty()).ok_or_else(|| {
                            fatal(line.loc.clone(), "%include needs a file name".to_string())
                        })?;
                        st.include(target, &line.loc)?;
                        continue;
                    }
                    Some(h) if SectionKind::from_header(h).is_some() => {
                        items.push(Item::Section(section));
                        return Err(fatal(
                            line.loc,
                            format!("Section {header} does not end with %end."),
                        ));
                    }
                    // pykickstart drops such a line (its first word reads differently once
                    // quotes are applied).
                    _ => {
                        st.emit(text);
                        continue;
                    }
                }
            }
        }
        st.emit(text);
        if section.kind == SectionKind::Packages {
            check_package_line(text, &line.loc)?;
        }
        section.body.push(strip_eol(text).to_string());
    }
}

/// The checks pykickstart's `Packages.add` makes, which stop parsing when they fail.
fn check_package_line(text: &str, loc: &Location) -> Result<(), Diagnostic> {
    let h = text.split('#').next().unwrap_or("");
    let stripped = h.trim_matches(py_isspace);
    if stripped == "-" {
        return Err(fatal(
            loc.clone(),
            "a package line is a lone '-' (string index out of range)".to_string(),
        ));
    }
    if let Some(group) = stripped.strip_prefix('@') {
        if group.starts_with('^') {
            return Ok(());
        }
        let mut nodefaults = false;
        let mut optional = false;
        for w in group.split(py_isspace).filter(|w| !w.is_empty()) {
            if !w.starts_with("--") || w == "--" {
                continue;
            }
            let (name, explicit) = match w.split_once('=') {
                Some((n, e)) => (n, Some(e)),
                None => (w, None),
            };
            let hit_nd = "--nodefaults".starts_with(name);
            let hit_opt = "--optional".starts_with(name);
            if hit_nd && hit_opt {
                return Err(fatal(
                    loc.clone(),
                    format!("ambiguous option: {w} could match --nodefaults, --optional"),
                ));
            }
            if (hit_nd || hit_opt) && explicit.is_some() {
                return Err(fatal(
                    loc.clone(),
                    format!(
                        "argument {}: ignored explicit argument '{}'",
                        if hit_nd { "--nodefaults" } else { "--optional" },
                        explicit.unwrap_or("")
                    ),
                ));
            }
            nodefaults |= hit_nd;
            optional |= hit_opt;
        }
        if nodefaults && optional {
            return Err(fatal(
                loc.clone(),
                "Group cannot specify both --nodefaults and --optional".to_string(),
            ));
        }
    }
    Ok(())
}

fn finish_section(section: &Section, end: &Location) -> Result<(), Diagnostic> {
    if section.kind == SectionKind::Certificate {
        let body = section.body.join("\n");
        if body.trim_matches(py_isspace).is_empty() {
            return Err(fatal(
                end.clone(),
                "The %certificate section is empty".to_string(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lines_like_python() {
        assert_eq!(split_lines("a\nb\r\nc\rd"), ["a\n", "b\r\n", "c\r", "d"]);
        assert_eq!(split_lines(""), Vec::<&str>::new());
        assert_eq!(split_lines("x\x0cy"), ["x\x0c", "y"]);
    }
}
