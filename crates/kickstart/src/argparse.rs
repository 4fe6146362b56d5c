//! Python's `argparse` (3.11), as pykickstart's `KSOptionParser` drives it: long options
//! with unique-prefix abbreviations, `--opt=value` and `--opt value`, nargs patterns, type
//! conversion and choices, required options, and the quirk that a `*` positional matched
//! with zero arguments is used up. Deprecated options are reported as they are recognised,
//! before any error, as pykickstart does.

use crate::spec::{Action, ClassSpec, Nargs, Opt, Pos, Ty};
use crate::value::Value;

/// What argparse made of a command line.
#[derive(Debug, Default, Clone)]
pub(crate) struct Namespace {
    /// (dest, value) in the order they were last set; a dest appears once.
    pub(crate) values: Vec<(&'static str, Value)>,
    /// Arguments nothing consumed.
    pub(crate) extras: Vec<String>,
}

impl Namespace {
    pub(crate) fn get(&self, dest: &str) -> Option<&Value> {
        self.values.iter().find(|(d, _)| *d == dest).map(|(_, v)| v)
    }

    pub(crate) fn set(&mut self, dest: &'static str, v: Value) {
        if let Some(slot) = self.values.iter_mut().find(|(d, _)| *d == dest) {
            slot.1 = v;
        } else {
            self.values.push((dest, v));
        }
    }

    /// Whether `dest` holds a value Python would call true.
    pub(crate) fn truthy(&self, dest: &str) -> bool {
        self.get(dest).is_some_and(Value::truthy)
    }
}

#[derive(Clone, Copy)]
enum Slot {
    Opt(&'static Opt),
    Unknown,
}

#[derive(Clone)]
struct OptionTuple {
    slot: Slot,
    explicit: Option<String>,
}

/// The option strings that `keep` accepts, each with the option it belongs to, in
/// declaration order. With conflict_handler="resolve", a later option taking a flag wins it.
/// `keep` runs first, so the ownership scan is paid only for the few strings that match
/// (every lookup of every argument goes through here).
fn option_strings<'k>(
    spec: &'static ClassSpec,
    keep: &'k dyn Fn(&str) -> bool,
) -> impl Iterator<Item = (&'static str, &'static Opt)> + 'k {
    let opts = spec.options;
    opts.iter().enumerate().flat_map(move |(i, o)| {
        o.flags.iter().filter_map(move |f| {
            if !keep(f) {
                return None;
            }
            let later = opts
                .get(i + 1..)
                .unwrap_or(&[])
                .iter()
                .any(|p| p.flags.contains(f));
            (!later).then_some((*f, o))
        })
    })
}

/// The option owning flag `s`: the last one declaring it.
fn lookup(spec: &'static ClassSpec, s: &str) -> Option<&'static Opt> {
    spec.options.iter().rev().find(|o| o.flags.contains(&s))
}

fn is_negative_number(s: &str) -> bool {
    // '^-\d+$|^-\d*\.\d+$'
    let Some(rest) = s.strip_prefix('-') else {
        return false;
    };
    let digits = |t: &str| t.chars().all(|c| c.is_ascii_digit());
    if !rest.is_empty() && digits(rest) {
        return true;
    }
    match rest.split_once('.') {
        Some((a, b)) => digits(a) && !b.is_empty() && digits(b),
        None => false,
    }
}

/// `_parse_optional`: None for a positional argument.
fn parse_optional(
    spec: &'static ClassSpec,
    arg: &str,
    deprecated: &mut Vec<&'static str>,
) -> Result<Option<OptionTuple>, String> {
    let found = |o: &'static Opt, e: Option<String>, dep: &mut Vec<&'static str>| {
        if o.deprecated {
            dep.push(o.flags.first().copied().unwrap_or(""));
        }
        Some(OptionTuple {
            slot: Slot::Opt(o),
            explicit: e,
        })
    };
    if !arg.starts_with('-') {
        return Ok(None);
    }
    if let Some(o) = lookup(spec, arg) {
        return Ok(found(o, None, deprecated));
    }
    if arg.chars().count() == 1 {
        return Ok(None);
    }
    if let Some((name, value)) = arg.split_once('=')
        && let Some(o) = lookup(spec, name)
    {
        return Ok(found(o, Some(value.to_string()), deprecated));
    }
    // _get_option_tuples: unique prefixes (allow_abbrev is on).
    let mut tuples: Vec<(&'static str, &'static Opt, Option<String>)> = Vec::new();
    if arg.starts_with("--") {
        let (prefix, explicit) = match arg.split_once('=') {
            Some((p, e)) => (p, Some(e.to_string())),
            None => (arg, None),
        };
        for (f, o) in option_strings(spec, &|f| f.starts_with(prefix)) {
            tuples.push((f, o, explicit.clone()));
        }
    } else {
        let short: String = arg.chars().take(2).collect();
        let short_explicit: String = arg.chars().skip(2).collect();
        let wanted = |f: &str| f == short || f.starts_with(arg);
        for (f, o) in option_strings(spec, &wanted) {
            if f == short {
                tuples.push((f, o, Some(short_explicit.clone())));
            } else if f.starts_with(arg) {
                tuples.push((f, o, None));
            }
        }
    }
    if tuples.len() > 1 {
        let names: Vec<&str> = tuples.iter().map(|t| t.0).collect();
        return Err(format!(
            "ambiguous option: {arg} could match {}",
            names.join(", ")
        ));
    }
    if let Some((_, o, e)) = tuples.pop() {
        return Ok(found(o, e, deprecated));
    }
    if is_negative_number(arg) {
        // No kickstart option looks like a negative number.
        return Ok(None);
    }
    if arg.contains(' ') {
        return Ok(None);
    }
    Ok(Some(OptionTuple {
        slot: Slot::Unknown,
        explicit: None,
    }))
}

fn action_name_opt(o: &Opt) -> String {
    o.flags.join("/")
}

fn action_name_pos(p: &Pos) -> String {
    p.metavar.unwrap_or(p.dest).to_string()
}

fn py_repr(s: &str) -> String {
    if s.contains('\'') && !s.contains('"') {
        format!("\"{s}\"")
    } else {
        format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

/// Python's `int()` on a string.
pub(crate) fn py_int(s: &str) -> Option<i64> {
    let t = s.trim_matches(|c: char| crate::lex::py_isspace(c));
    let (neg, digits) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return None;
    }
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    // Python ints are unbounded; saturate rather than fail on huge values.
    let v = clean.parse::<i64>().unwrap_or(i64::MAX);
    Some(if neg {
        v.checked_neg().unwrap_or(i64::MIN)
    } else {
        v
    })
}

/// Python's `float()` on a string.
fn py_float(s: &str) -> Option<f64> {
    let t = s.trim_matches(|c: char| crate::lex::py_isspace(c));
    let lower = t.to_ascii_lowercase();
    let body = lower.trim_start_matches(['+', '-']);
    if matches!(body, "inf" | "infinity" | "nan") {
        return lower.parse::<f64>().ok().or(Some(0.0));
    }
    if body.contains("__") || body.starts_with('_') || body.ends_with('_') {
        return None;
    }
    let clean: String = t.chars().filter(|c| *c != '_').collect();
    if clean.is_empty()
        || !clean
            .chars()
            .all(|c| c.is_ascii_digit() || "+-.eE".contains(c))
    {
        return None;
    }
    clean.parse::<f64>().ok()
}

/// Converts one string with the option's type (`_get_value` then `_check_value`).
fn convert(ty: Ty, choices: &[&str], name: &str, s: &str) -> Result<Value, String> {
    let bad = |t: &str| format!("argument {name}: invalid {t} value: {}", py_repr(s));
    let v = match ty {
        Ty::Str => Value::Str(s.to_string()),
        Ty::Int => Value::Int(py_int(s).ok_or_else(|| bad("int"))?),
        Ty::Float => Value::Float(py_float(s).ok_or_else(|| bad("float"))?),
        Ty::Bool => match s.to_lowercase().as_str() {
            "on" | "yes" | "true" | "1" => Value::Bool(true),
            "off" | "no" | "false" | "0" => Value::Bool(false),
            _ => {
                return Err(format!(
                    "argument {name}: invalid boolean value: {}",
                    py_repr(s)
                ));
            }
        },
        Ty::CommaList => Value::List(
            s.split(',')
                .map(|v| v.trim_matches(|c: char| crate::lex::py_isspace(c)))
                .filter(|v| !v.is_empty())
                .map(str::to_string)
                .collect(),
        ),
        Ty::PortList => Value::List(
            s.split(',')
                .map(|p| {
                    let p = p.trim_matches(|c: char| crate::lex::py_isspace(c));
                    if p.contains(':') {
                        p.to_string()
                    } else {
                        format!("{p}:tcp")
                    }
                })
                .collect(),
        ),
        Ty::Mountpoint => Value::Str(if s.starts_with('/') {
            normpath(s)
        } else {
            s.to_string()
        }),
        Ty::Keyword(words) => {
            let l = s.to_lowercase();
            if !words.contains(&l.as_str()) {
                return Err(format!("Invalid value for {name}: {s}"));
            }
            Value::Str(l)
        }
        Ty::KeywordUpper(words) => {
            let u = s.to_uppercase();
            if !words.contains(&u.as_str()) {
                return Err(format!("Invalid value for {name}: {s}"));
            }
            Value::Str(u)
        }
    };
    if !choices.is_empty() {
        let text = match &v {
            Value::Str(t) => t.clone(),
            other => other.to_string(),
        };
        if !choices.contains(&text.as_str()) {
            let list: Vec<String> = choices.iter().map(|c| py_repr(c)).collect();
            return Err(format!(
                "argument {name}: invalid choice: {} (choose from {})",
                py_repr(&text),
                list.join(", ")
            ));
        }
    }
    Ok(v)
}

/// `os.path.normpath` for an absolute POSIX path.
pub(crate) fn normpath(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    // POSIX keeps exactly two leading slashes.
    let lead = if p.starts_with("//") && !p.starts_with("///") {
        "//"
    } else {
        "/"
    };
    format!("{lead}{}", parts.join("/"))
}

/// The words of a command that parsed cleanly, with every option spelled in full and its
/// single value attached (`--siz 10` becomes `--size=10`). Positionals and anything after
/// `--` are kept as they are.
pub(crate) fn normalize(spec: &'static ClassSpec, args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut ignored = Vec::new();
    let mut i = 0;
    while let Some(a) = args.get(i) {
        i += 1;
        if a == "--" {
            out.extend(args.get(i - 1..).unwrap_or(&[]).iter().cloned());
            break;
        }
        let Ok(Some(OptionTuple {
            slot: Slot::Opt(o),
            explicit,
        })) = parse_optional(spec, a, &mut ignored)
        else {
            out.push(a.clone());
            continue;
        };
        // The flag the option is known by (its first spelling that still belongs to it).
        let flag = o
            .flags
            .iter()
            .find(|f| lookup(spec, f).is_some_and(|x| std::ptr::eq(x, o)))
            .copied();
        let single = matches!(o.action, Action::Store | Action::Append | Action::Extend)
            && o.nargs == Nargs::One;
        match (flag, explicit) {
            (Some(f), Some(v)) if single => out.push(format!("{f}={v}")),
            (Some(f), None) if single => match args.get(i) {
                Some(v)
                    if v != "--" && matches!(parse_optional(spec, v, &mut ignored), Ok(None)) =>
                {
                    out.push(format!("{f}={v}"));
                    i += 1;
                }
                _ => out.push(a.clone()),
            },
            (Some(f), None)
                if !matches!(o.action, Action::Store | Action::Append | Action::Extend) =>
            {
                out.push(f.to_string());
            }
            _ => out.push(a.clone()),
        }
    }
    out
}

/// Greedy partial match of positionals against `avail` leading plain arguments
/// (`_match_arguments_partial`): how many each of the first k positionals takes.
fn match_partial(positionals: &[&'static Pos], avail: usize) -> Vec<usize> {
    for k in (1..=positionals.len()).rev() {
        let slice = positionals.get(..k).unwrap_or(&[]);
        let mins: Vec<usize> = slice.iter().map(|p| p.nargs.bounds().0).collect();
        let total_min: usize = mins.iter().sum();
        if total_min > avail {
            continue;
        }
        let mut left = avail;
        let mut out = Vec::with_capacity(k);
        for (i, p) in slice.iter().enumerate() {
            let rest_min: usize = mins.get(i + 1..).unwrap_or(&[]).iter().sum();
            let (min, max) = p.nargs.bounds();
            let take = max.min(left.saturating_sub(rest_min)).max(min);
            out.push(take);
            left = left.saturating_sub(take);
        }
        return out;
    }
    Vec::new()
}

/// Parses `args` for `spec` like `parse_known_args`. Deprecated options recognised on the
/// way are appended to `deprecated` even when an error follows.
pub(crate) fn parse_known(
    spec: &'static ClassSpec,
    args: &[String],
    deprecated: &mut Vec<&'static str>,
) -> Result<Namespace, String> {
    // Classify every argument first, as argparse does.
    let mut tuples: Vec<Option<OptionTuple>> = Vec::with_capacity(args.len());
    let mut after_dashdash = false;
    for a in args {
        if after_dashdash {
            tuples.push(None);
            continue;
        }
        if a == "--" {
            after_dashdash = true;
            tuples.push(None);
            continue;
        }
        tuples.push(parse_optional(spec, a, deprecated)?);
    }
    let is_opt = |i: usize| tuples.get(i).is_some_and(Option::is_some);
    let plain_run = |from: usize| (from..args.len()).take_while(|i| !is_opt(*i)).count();

    let mut ns = Namespace::default();
    let mut seen: Vec<*const Opt> = Vec::new();
    let mut seen_pos: Vec<&'static str> = Vec::new();
    let mut positionals: Vec<&'static Pos> = spec.positionals.iter().collect();

    let take_positionals = |start: usize,
                            positionals: &mut Vec<&'static Pos>,
                            ns: &mut Namespace,
                            seen_pos: &mut Vec<&'static str>|
     -> Result<usize, String> {
        let counts = match_partial(positionals, plain_run(start));
        let mut idx = start;
        for (p, n) in positionals.iter().zip(counts.iter()) {
            let vals: Vec<&String> = args
                .get(idx..idx + n)
                .unwrap_or(&[])
                .iter()
                .filter(|a| *a != "--")
                .collect();
            idx += n;
            seen_pos.push(p.dest);
            let name = action_name_pos(p);
            let value = match p.nargs {
                Nargs::One | Nargs::Optional if vals.len() == 1 => {
                    convert(p.ty, &[], &name, vals.first().map_or("", |s| s.as_str()))?
                }
                Nargs::Optional => Value::None,
                _ => {
                    let mut out = Vec::new();
                    for v in vals {
                        out.push(convert(p.ty, &[], &name, v)?);
                    }
                    Value::from_values(out)
                }
            };
            ns.set(p.dest, value);
        }
        let n = counts.len();
        positionals.drain(..n.min(positionals.len()));
        Ok(idx)
    };

    let max_opt = (0..args.len()).rev().find(|i| is_opt(*i));
    let mut start = 0usize;
    if let Some(max_opt) = max_opt {
        while start <= max_opt {
            let Some(next_opt) = (start..args.len()).find(|i| is_opt(*i)) else {
                break;
            };
            if start != next_opt {
                let end = take_positionals(start, &mut positionals, &mut ns, &mut seen_pos)?;
                if end > start {
                    start = end;
                    continue;
                }
                start = end;
            }
            if !is_opt(start) {
                ns.extras
                    .extend(args.get(start..next_opt).unwrap_or(&[]).iter().cloned());
                start = next_opt;
            }
            // consume_optional
            let Some(Some(t)) = tuples.get(start).cloned() else {
                break;
            };
            let o = match t.slot {
                Slot::Unknown => {
                    if let Some(a) = args.get(start) {
                        ns.extras.push(a.clone());
                    }
                    start += 1;
                    continue;
                }
                Slot::Opt(o) => o,
            };
            let name = action_name_opt(o);
            let takes = matches!(o.action, Action::Store | Action::Append | Action::Extend);
            let (min, max) = if takes { o.nargs.bounds() } else { (0, 0) };
            let values: Vec<String> = if let Some(e) = t.explicit {
                if max >= 1 {
                    start += 1;
                    vec![e]
                } else {
                    // A single-dash flag could combine (-xyz); kickstart has none that do.
                    return Err(format!(
                        "argument {name}: ignored explicit argument {}",
                        py_repr(&e)
                    ));
                }
            } else {
                let avail = plain_run(start + 1);
                if avail < min {
                    let msg = match o.nargs {
                        Nargs::One => "expected one argument".to_string(),
                        Nargs::AtLeastOne => "expected at least one argument".to_string(),
                        Nargs::Exactly(1) => "expected 1 argument".to_string(),
                        Nargs::Exactly(n) => format!("expected {n} arguments"),
                        _ => "expected at most one argument".to_string(),
                    };
                    return Err(format!("argument {name}: {msg}"));
                }
                let n = avail.min(max);
                let v = args
                    .get(start + 1..start + 1 + n)
                    .unwrap_or(&[])
                    .iter()
                    .filter(|a| *a != "--")
                    .cloned()
                    .collect();
                start += 1 + n;
                v
            };
            seen.push(o as *const Opt);
            apply(o, &name, &values, &mut ns)?;
        }
    }
    let stop = take_positionals(start, &mut positionals, &mut ns, &mut seen_pos)?;
    ns.extras
        .extend(args.get(stop..).unwrap_or(&[]).iter().cloned());

    let mut missing: Vec<String> = Vec::new();
    for o in spec.options {
        if o.required && !seen.contains(&(o as *const Opt)) {
            missing.push(action_name_opt(o));
        }
    }
    for p in spec.positionals {
        if p.required && !seen_pos.contains(&p.dest) {
            missing.push(action_name_pos(p));
        }
    }
    if !missing.is_empty() {
        return Err(format!(
            "the following arguments are required: {}",
            missing.join(", ")
        ));
    }
    Ok(ns)
}

fn apply(o: &'static Opt, name: &str, values: &[String], ns: &mut Namespace) -> Result<(), String> {
    let konst = || match o.konst {
        Some("true") => Value::Bool(true),
        Some("false") => Value::Bool(false),
        Some(c) => match py_int(c) {
            Some(i) if o.ty == Ty::Int => Value::Int(i),
            _ => Value::Str(c.to_string()),
        },
        None => Value::None,
    };
    match o.action {
        Action::StoreTrue => ns.set(o.dest, Value::Bool(true)),
        Action::StoreFalse => ns.set(o.dest, Value::Bool(false)),
        Action::StoreConst => ns.set(o.dest, konst()),
        Action::Count => {
            let n = match ns.get(o.dest) {
                Some(Value::Int(n)) => n.saturating_add(1),
                _ => 1,
            };
            ns.set(o.dest, Value::Int(n));
        }
        Action::AppendConst | Action::ExtendConst => {
            let mut list = match ns.get(o.dest) {
                Some(Value::List(l)) => l.clone(),
                _ => Vec::new(),
            };
            match konst() {
                Value::Str(s) if o.action == Action::ExtendConst => {
                    list.extend(s.split(',').map(str::to_string));
                }
                v => list.push(v.to_string()),
            }
            ns.set(o.dest, Value::List(list));
        }
        Action::Store | Action::Append | Action::Extend => {
            let value =
                if o.nargs == Nargs::One || (o.nargs == Nargs::Optional && values.len() == 1) {
                    convert(
                        o.ty,
                        o.choices,
                        name,
                        values.first().map_or("", String::as_str),
                    )?
                } else if o.nargs == Nargs::Optional {
                    konst()
                } else {
                    let mut out = Vec::new();
                    for v in values {
                        out.push(convert(o.ty, o.choices, name, v)?);
                    }
                    Value::from_values(out)
                };
            match o.action {
                Action::Store => ns.set(o.dest, value),
                _ => {
                    let mut list = match ns.get(o.dest) {
                        Some(Value::List(l)) => l.clone(),
                        _ => Vec::new(),
                    };
                    match value {
                        Value::List(l) if o.action == Action::Extend || o.nargs != Nargs::One => {
                            list.extend(l)
                        }
                        v => list.push(v.to_string()),
                    }
                    ns.set(o.dest, Value::List(list));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_numbers() {
        assert_eq!(py_int(" 12 "), Some(12));
        assert_eq!(py_int("1_000"), Some(1000));
        assert_eq!(py_int("+5"), Some(5));
        assert_eq!(py_int("-5"), Some(-5));
        assert_eq!(py_int("1__0"), None);
        assert_eq!(py_int("12k"), None);
        assert_eq!(py_int(""), None);
        assert!(is_negative_number("-5"));
        assert!(is_negative_number("-.5"));
        assert!(!is_negative_number("-x"));
        assert_eq!(normpath("/a//b/../c/"), "/a/c");
        assert_eq!(normpath("/"), "/");
    }

    #[test]
    fn a_flag_belongs_to_the_last_option_declaring_it() {
        // conflict_handler="resolve", as the quadratic scan over every option string said it
        // (every argument of every line paid that scan; the lookup is now linear).
        let mut checked = 0;
        for spec in crate::spec::tables::CLASSES {
            for (i, o) in spec.options.iter().enumerate() {
                for f in o.flags {
                    let later = spec.options.get(i + 1..).unwrap_or(&[]);
                    let owner = if later.iter().any(|p| p.flags.contains(f)) {
                        later.iter().rev().find(|p| p.flags.contains(f))
                    } else {
                        Some(o)
                    };
                    assert!(std::ptr::eq(lookup(spec, f).unwrap(), owner.unwrap()));
                    let owned: Vec<_> = option_strings(spec, &|g| g == *f).collect();
                    assert!(
                        matches!(owned[..], [(g, p)] if g == *f && std::ptr::eq(p, owner.unwrap()))
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 500, "{checked}");
    }

    #[test]
    fn partial_match_is_greedy_and_uses_up_star() {
        static A: Pos = Pos {
            dest: "a",
            nargs: Nargs::Exactly(1),
            ty: Ty::Str,
            required: true,
            metavar: None,
        };
        static B: Pos = Pos {
            dest: "b",
            nargs: Nargs::Any,
            ty: Ty::Str,
            required: true,
            metavar: None,
        };
        assert_eq!(match_partial(&[&A, &B], 1), vec![1, 0]);
        assert_eq!(match_partial(&[&A, &B], 3), vec![1, 2]);
        assert_eq!(match_partial(&[&A, &B], 0), Vec::<usize>::new());
        assert_eq!(match_partial(&[&B, &A], 0), vec![0]);
    }
}
