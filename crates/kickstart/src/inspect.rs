//! Recognising a kickstart file and summarising it (what `imgpipe inspect` prints).

use serde::Serialize;

/// Commands common enough that one of them in the first lines marks a file as a kickstart.
pub const COMMON_COMMANDS: &[&str] = &[
    "auth",
    "authconfig",
    "authselect",
    "autopart",
    "bootloader",
    "cdrom",
    "clearpart",
    "cmdline",
    "eula",
    "firewall",
    "firstboot",
    "graphical",
    "halt",
    "harddrive",
    "ignoredisk",
    "install",
    "keyboard",
    "lang",
    "liveimg",
    "logvol",
    "network",
    "nfs",
    "ostreesetup",
    "part",
    "partition",
    "poweroff",
    "raid",
    "reboot",
    "repo",
    "reqpart",
    "rootpw",
    "selinux",
    "services",
    "shutdown",
    "skipx",
    "sshkey",
    "sshpw",
    "text",
    "timezone",
    "url",
    "user",
    "volgroup",
    "xconfig",
    "zerombr",
    "zfcp",
];

/// Section headers (lines starting with `%`) and the include directives.
pub const SECTIONS: &[&str] = &[
    "%packages",
    "%pre",
    "%pre-install",
    "%post",
    "%onerror",
    "%traceback",
    "%addon",
    "%anaconda",
    "%include",
    "%ksappend",
];

fn first_word(line: &str) -> &str {
    line.split_whitespace().next().unwrap_or("")
}

/// Whether `head` (the first bytes of a file) looks like a kickstart: text without NUL bytes
/// in which a known command or section header starts a line.
pub fn detect(head: &[u8]) -> bool {
    if head.contains(&0) {
        return false;
    }
    // The head may end inside a multi-byte character: decode what is valid.
    let text = match std::str::from_utf8(head) {
        Ok(t) => t,
        Err(e) => match std::str::from_utf8(&head[..e.valid_up_to()]) {
            Ok(t) if head.len() - e.valid_up_to() < 4 => t,
            _ => return false,
        },
    };
    text.lines().any(|l| {
        let w = first_word(l);
        COMMON_COMMANDS.contains(&w) || SECTIONS.contains(&w)
    })
}

/// Summary of a kickstart file, by a line scan (no validation).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Inspection {
    /// Number of lines.
    pub lines: usize,
    /// Command names outside sections, in order of first appearance.
    pub commands: Vec<String>,
    /// Section headers, in order.
    pub sections: Vec<String>,
    /// `%include` / `%ksappend` targets.
    pub includes: Vec<String>,
    /// Whether the file is valid for Fedora 43 (includes not followed).
    pub valid_f43: bool,
    /// Errors against Fedora 43.
    pub errors_f43: usize,
    /// Warnings and deprecations against Fedora 43.
    pub warnings_f43: usize,
}

/// Summarises kickstart text, and validates it for Fedora 43 (without following includes,
/// which are reported as notices).
pub fn inspect(text: &str) -> Inspection {
    let mut out = Inspection::default();
    let report = crate::Kickstart::parse_str("kickstart", text).validate(crate::Version::F43);
    out.valid_f43 = report.is_valid();
    out.errors_f43 = report.errors().count();
    out.warnings_f43 = report
        .warnings()
        .filter(|d| d.kind != crate::Kind::Notice)
        .count();
    let mut in_section = false;
    for line in text.lines() {
        out.lines += 1;
        let w = first_word(line);
        if w.starts_with('#') || w.is_empty() {
            continue;
        }
        if w == "%end" {
            in_section = false;
        } else if w == "%include" || w == "%ksappend" {
            out.includes.push(line.trim()[w.len()..].trim().to_string());
        } else if w.starts_with('%') {
            in_section = true;
            out.sections.push(w.to_string());
        } else if !in_section && !out.commands.iter().any(|c| c == w) {
            out.commands.push(w.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_and_summarises() {
        let ks = "# comment\nlang en_US.UTF-8\nrootpw --lock\n%packages\n@core\n%end\n%post\necho hi\n%end\n";
        assert!(detect(ks.as_bytes()));
        let i = inspect(ks);
        assert_eq!(i.commands, ["lang", "rootpw"]);
        assert_eq!(i.sections, ["%packages", "%post"]);
        assert!(i.valid_f43);
        let bad = inspect("install\ntimezone --isUtc UTC\n");
        assert!(!bad.valid_f43);
        assert_eq!((bad.errors_f43, bad.warnings_f43), (1, 1));
        assert!(!detect(b"hello world\nthis is prose\n"));
        assert!(!detect(b"lang en_US\0"));
    }
}
