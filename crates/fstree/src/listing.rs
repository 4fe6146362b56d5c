//! The one listing shape: what `imgpipe <format> ls` prints for every format, in JSON and as
//! `ls -l`-like text with UTC dates.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::civil::format_utc;
use crate::entry::{Entry, FileType};

/// Version of the listing JSON shape; bumped when a field changes meaning.
pub const LISTING_SCHEMA: u32 = 1;

/// One extended attribute as listed: a UTF-8 value as `value`, anything else as `hex`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListedXattr {
    /// Full name (`user.comment`).
    pub name: String,
    /// The value, when it is UTF-8 text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The value in lowercase hex, when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hex: Option<String>,
}

/// One entry of a listing. Every format prints this shape, so listings of one tree in
/// several formats agree wherever the formats keep the same facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listed {
    /// Path with a leading `/` (lossily decoded).
    pub path: String,
    /// `file|dir|symlink|char|block|fifo|socket`.
    #[serde(rename = "type")]
    pub file_type: FileType,
    /// Permission bits (`0o7777`), as a number.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Bytes of content (files), of target (symlinks), else 0.
    pub size: u64,
    /// Modification time, Unix seconds.
    pub mtime: i64,
    /// Symlink target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// `[major, minor]` of a device node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rdev: Option<[u32; 2]>,
    /// Hard-link group: the position in the listing of the group's first name, for every name
    /// of a file that has more than one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hardlink: Option<usize>,
    /// Extended attributes, by name.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub xattrs: Vec<ListedXattr>,
}

/// A whole listing document: `{"schema": 1, "format": ..., "entries": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listing {
    /// [`LISTING_SCHEMA`].
    pub schema: u32,
    /// The format listed (`iso9660`, `squashfs`, `erofs`, `fat`).
    pub format: &'static str,
    /// The entries in walk order.
    pub entries: Vec<Listed>,
}

impl Listing {
    /// The listing of `entries` (in walk order) of a `format` image.
    pub fn new<'a>(format: &'static str, entries: impl IntoIterator<Item = &'a Entry>) -> Self {
        let mut first_of: BTreeMap<u64, usize> = BTreeMap::new();
        let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
        let entries: Vec<&Entry> = entries.into_iter().collect();
        for e in &entries {
            if let Some(l) = e.link {
                *counts.entry(l).or_default() += 1;
            }
        }
        let listed = entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let group = e
                    .link
                    .filter(|l| counts.get(l).copied().unwrap_or(0) > 1)
                    .map(|l| *first_of.entry(l).or_insert(i));
                Listed::from_entry(e, group)
            })
            .collect();
        Self {
            schema: LISTING_SCHEMA,
            format,
            entries: listed,
        }
    }
}

impl Listed {
    /// The listed form of `e`, in hard-link group `hardlink`.
    pub fn from_entry(e: &Entry, hardlink: Option<usize>) -> Self {
        Self {
            path: e.display_path(),
            file_type: e.file_type,
            mode: e.meta.mode & 0o7777,
            uid: e.meta.uid,
            gid: e.meta.gid,
            size: e.size,
            mtime: e.meta.mtime,
            target: e
                .target
                .as_ref()
                .map(|t| String::from_utf8_lossy(t).into_owned()),
            rdev: e.rdev.map(|(a, b)| [a, b]),
            hardlink,
            xattrs: e
                .meta
                .xattrs
                .iter()
                .map(|(n, v)| {
                    let name = String::from_utf8_lossy(n).into_owned();
                    match std::str::from_utf8(v) {
                        Ok(s) if !s.contains('\0') || s.find('\0') == Some(s.len() - 1) => {
                            ListedXattr {
                                name,
                                value: Some(s.to_owned()),
                                hex: None,
                            }
                        }
                        _ => ListedXattr {
                            name,
                            value: None,
                            hex: Some(v.iter().map(|b| format!("{b:02x}")).collect()),
                        },
                    }
                })
                .collect(),
        }
    }

    /// One `ls -l`-like line: mode string, owner, group, size (or `major, minor`), UTC time,
    /// path, and ` -> target` for links.
    pub fn text_line(&self) -> String {
        let size = match self.rdev {
            Some([a, b]) => format!("{a}, {b}"),
            None => self.size.to_string(),
        };
        let mut line = format!(
            "{} {:>5} {:>5} {:>10} {} {}",
            crate::entry::mode_string(self.file_type, self.mode),
            self.uid,
            self.gid,
            size,
            format_utc(self.mtime),
            self.path
        );
        if let Some(t) = &self.target {
            line.push_str(" -> ");
            line.push_str(t);
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::Metadata;

    #[test]
    fn groups_hard_links_and_renders_text() {
        let mut a = Entry::new("a", FileType::File, Metadata::new(0o644, 0));
        a.link = Some(7);
        a.size = 3;
        let mut b = a.clone();
        b.path = b"b".to_vec();
        let mut solo = Entry::new("c", FileType::File, Metadata::new(0o600, 86_400));
        solo.link = Some(9);
        let mut l = Entry::new("l", FileType::Symlink, Metadata::new(0o777, 0));
        l.target = Some(b"a".to_vec());
        l.size = 1;
        let root = Entry::new("", FileType::Dir, Metadata::new(0o755, 0));
        let listing = Listing::new("squashfs", [&root, &a, &b, &solo, &l]);
        let groups: Vec<_> = listing.entries.iter().map(|e| e.hardlink).collect();
        assert_eq!(groups, [None, Some(1), Some(1), None, None]);
        assert_eq!(
            listing.entries[4].text_line(),
            "lrwxrwxrwx     0     0          1 1970-01-01 00:00:00 /l -> a"
        );
        let json = serde_json::to_value(&listing).unwrap();
        assert_eq!(json["schema"], 1);
        assert_eq!(json["entries"][0]["type"], "dir");
        assert_eq!(json["entries"][0]["path"], "/");
    }
}
