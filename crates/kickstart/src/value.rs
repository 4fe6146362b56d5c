//! Option values after type conversion.

use serde::Serialize;

/// The value of one option or positional argument, after the conversion its type asks for.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum Value {
    /// Not given (an optional positional left out).
    None,
    /// A flag or a boolean (`--encrypted`, `--enable=yes`).
    Bool(bool),
    /// An integer (`--size=1024`).
    Int(i64),
    /// A number (`--percent` in some versions).
    Float(f64),
    /// A string, mount points normalised as Python's `os.path.normpath` does.
    Str(String),
    /// A list (`--disabled=a,b`, repeated options, several positionals).
    List(Vec<String>),
}

impl Value {
    /// Whether Python would call this value true.
    pub fn truthy(&self) -> bool {
        match self {
            Value::None => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The list items, if this is a list.
    pub fn as_list(&self) -> Option<&[String]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    pub(crate) fn from_values(values: Vec<Value>) -> Value {
        let mut out = Vec::with_capacity(values.len());
        for v in values {
            match v {
                Value::List(l) => out.extend(l),
                other => out.push(other.to_string()),
            }
        }
        Value::List(out)
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::None => Ok(()),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Str(s) => f.write_str(s),
            Value::List(l) => f.write_str(&l.join(",")),
        }
    }
}
