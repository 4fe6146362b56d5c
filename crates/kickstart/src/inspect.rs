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
}

/// Summarises kickstart text.
pub fn inspect(text: &str) -> Inspection {
    let mut out = Inspection::default();
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
        assert!(!detect(b"hello world\nthis is prose\n"));
        assert!(!detect(b"lang en_US\0"));
    }
}
