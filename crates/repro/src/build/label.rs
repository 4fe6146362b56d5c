//! The one label of a build: the ISO volume identifier, `root=live:CDLABEL=` on the kernel
//! command line, GRUB's `search --label` and the disk's root partition name. A label must
//! survive every one of those trips unchanged, so the rules are the strictest of them.

use crate::error::{Error, Result};

/// The longest label: an ISO9660 volume identifier holds 32 bytes.
pub const MAX_LABEL: usize = 32;

/// Checks `label` against every place it is written; the error names the rule it breaks.
///
/// - 1 to 32 bytes (the ISO9660 volume identifier);
/// - ASCII letters, digits, `_`, `-` and `.` only: the kernel command line splits on spaces
///   and strips quotes, and udev's `/dev/disk/by-label/` names escape spaces, `/` and
///   anything outside ASCII (`\x20`), so dracut would look for another name;
/// - not starting with `-` (GRUB's `search --label` would read it as an option).
pub fn check_label(label: &str) -> Result<()> {
    let bad = |reason: String| Error::Argument {
        flag: "--label",
        value: label.to_owned(),
        reason,
    };
    if label.is_empty() {
        return Err(bad(
            "a label is needed: the ISO volume id, CDLABEL= and GRUB's search all use it".into(),
        ));
    }
    if label.len() > MAX_LABEL {
        return Err(bad(format!(
            "{} bytes; an ISO9660 volume identifier holds at most {MAX_LABEL}",
            label.len()
        )));
    }
    if let Some(c) = label
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(bad(format!(
            "{c:?} is not allowed: only ASCII letters, digits, '_', '-' and '.' survive the kernel \
             command line and udev's /dev/disk/by-label names unchanged"
        )));
    }
    if label.starts_with('-') {
        return Err(bad(
            "must not start with '-' (GRUB's search would read an option)".into(),
        ));
    }
    Ok(())
}

/// The FAT volume label for the disk image's ESP: the label itself when FAT can store it
/// (at most 11 bytes, upper case as FAT keeps labels), else none.
pub fn fat_label(label: &str) -> Option<String> {
    (label.len() <= 11 && !label.contains('.')).then(|| label.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert!(check_label("Fedora-WS-Live-43").is_ok());
        assert!(check_label("IMGPIPE_LIVE").is_ok());
        for bad in ["", "a b", "x/y", "é", "-x", &"A".repeat(33), "q\"uote"] {
            let e = check_label(bad).unwrap_err().to_string();
            assert!(e.starts_with("--label"), "{e}");
        }
        assert_eq!(fat_label("live"), Some("LIVE".into()));
        assert_eq!(fat_label("Fedora-WS-Live-43"), None);
    }
}
