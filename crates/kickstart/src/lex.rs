//! Splitting a line into words as Python's `shlex.split` (POSIX mode) does, which is what
//! pykickstart uses: whitespace separates words, `'...'` quotes literally, `"..."` quotes with
//! `\"` and `\\` escapes, a backslash outside quotes escapes the next character, and `#` starts
//! a comment anywhere outside quotes when comments are on. There is no line continuation: a
//! backslash at the end of a line is an error ("No escaped character").

/// Why a line cannot be split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LexError {
    /// A quote is not closed.
    NoClosingQuotation,
    /// A backslash ends the line.
    NoEscapedCharacter,
}

impl LexError {
    pub(crate) fn message(self) -> &'static str {
        match self {
            LexError::NoClosingQuotation => "No closing quotation",
            LexError::NoEscapedCharacter => "No escaped character",
        }
    }
}

/// Python's `str.isspace` for one character.
pub(crate) fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

/// Whether pykickstart skips the line as blank or comment.
pub(crate) fn is_blank_or_comment(line: &str) -> bool {
    let t = line.trim_start_matches(py_isspace);
    t.is_empty() || t.starts_with('#')
}

fn is_shlex_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// `shlex.split(line, comments=comments)`.
pub(crate) fn split(line: &str, comments: bool) -> Result<Vec<String>, LexError> {
    #[derive(PartialEq)]
    enum St {
        Space,
        Word,
        Single,
        Double,
    }
    let mut out = Vec::new();
    let mut tok = String::new();
    let mut quoted = false;
    let mut st = St::Space;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match st {
            St::Space | St::Word => {
                if is_shlex_space(c) {
                    if st == St::Word {
                        out.push(std::mem::take(&mut tok));
                        quoted = false;
                    }
                    st = St::Space;
                } else if comments && c == '#' {
                    // The rest of the line is a comment (shlex reads to the newline).
                    let mut rest_has_newline = false;
                    for n in chars.by_ref() {
                        if n == '\n' {
                            rest_has_newline = true;
                            break;
                        }
                    }
                    if st == St::Word || quoted {
                        out.push(std::mem::take(&mut tok));
                        quoted = false;
                    }
                    st = St::Space;
                    if !rest_has_newline {
                        break;
                    }
                } else if c == '\\' {
                    match chars.next() {
                        Some(n) => tok.push(n),
                        None => return Err(LexError::NoEscapedCharacter),
                    }
                    st = St::Word;
                } else if c == '\'' {
                    st = St::Single;
                    quoted = true;
                } else if c == '"' {
                    st = St::Double;
                    quoted = true;
                } else {
                    tok.push(c);
                    st = St::Word;
                }
            }
            St::Single => {
                if c == '\'' {
                    st = St::Word;
                } else {
                    tok.push(c);
                }
            }
            St::Double => {
                if c == '"' {
                    st = St::Word;
                } else if c == '\\' {
                    match chars.next() {
                        Some(n) if n == '"' || n == '\\' => tok.push(n),
                        Some(n) => {
                            tok.push('\\');
                            tok.push(n);
                        }
                        None => return Err(LexError::NoEscapedCharacter),
                    }
                } else {
                    tok.push(c);
                }
            }
        }
    }
    match st {
        St::Single | St::Double => Err(LexError::NoClosingQuotation),
        St::Word => {
            out.push(tok);
            Ok(out)
        }
        St::Space => {
            if quoted {
                out.push(tok);
            }
            Ok(out)
        }
    }
}

/// Quotes a word so that [`split`] gives it back unchanged: bare when it is made of safe
/// characters, else in single quotes (a single quote itself as `'"'"'`), as `shlex.quote`.
pub(crate) fn quote(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "@%+=:,./-_".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        return word.to_string();
    }
    format!("'{}'", word.replace('\'', "'\"'\"'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(line: &str) -> Vec<String> {
        split(line, true).unwrap()
    }

    #[test]
    fn like_python_shlex() {
        assert_eq!(s("part / --size=10"), ["part", "/", "--size=10"]);
        assert_eq!(s("a 'b c' \"d\\\"e\" f\\ g"), ["a", "b c", "d\"e", "f g"]);
        assert_eq!(s("a#b c"), ["a"]);
        assert_eq!(s("a # b"), ["a"]);
        assert_eq!(s("'' x"), ["", "x"]);
        assert_eq!(s("a ''"), ["a", ""]);
        assert_eq!(s("\"a\\b\""), ["a\\b"]);
        assert_eq!(s("x\r\n"), ["x"]);
        assert_eq!(split("a '#' b", true).unwrap(), ["a", "#", "b"]);
        assert_eq!(split("a # b", false).unwrap(), ["a", "#", "b"]);
        assert_eq!(split("a 'b", true), Err(LexError::NoClosingQuotation));
        assert_eq!(split("part / \\", true), Err(LexError::NoEscapedCharacter));
        assert_eq!(split("part / \\\n", true).unwrap(), ["part", "/", "\n"]);
    }

    #[test]
    fn quote_round_trips() {
        for w in [
            "",
            "a b",
            "it's",
            "x\"y",
            "#c",
            "a\\b",
            "plain/path=1",
            "tab\there",
            "ünï",
        ] {
            assert_eq!(split(&quote(w), true).unwrap(), [w], "{w:?}");
        }
    }
}
