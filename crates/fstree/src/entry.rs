//! One entry of a filesystem tree, whatever the format it came from or goes to.

use serde::Serialize;

/// An extended attribute: full name (`user.x`, `security.selinux`) and value, as bytes.
pub type Xattr = (Vec<u8>, Vec<u8>);

/// What an entry is. Serialised as `file|dir|symlink|char|block|fifo|socket`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileType {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link.
    Symlink,
    /// Character device.
    Char,
    /// Block device.
    Block,
    /// Named pipe.
    Fifo,
    /// Unix socket.
    Socket,
}

impl FileType {
    /// The one letter `ls -l` prints for it.
    pub fn letter(self) -> char {
        match self {
            Self::File => '-',
            Self::Dir => 'd',
            Self::Symlink => 'l',
            Self::Char => 'c',
            Self::Block => 'b',
            Self::Fifo => 'p',
            Self::Socket => 's',
        }
    }

    /// The name used in JSON and messages (`file`, `dir`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Dir => "dir",
            Self::Symlink => "symlink",
            Self::Char => "char",
            Self::Block => "block",
            Self::Fifo => "fifo",
            Self::Socket => "socket",
        }
    }

    /// The `S_IFMT` bits of `st_mode` for this type.
    pub fn mode_bits(self) -> u32 {
        match self {
            Self::File => 0o100_000,
            Self::Dir => 0o040_000,
            Self::Symlink => 0o120_000,
            Self::Char => 0o020_000,
            Self::Block => 0o060_000,
            Self::Fifo => 0o010_000,
            Self::Socket => 0o140_000,
        }
    }

    /// The type encoded in the `S_IFMT` bits of a full `st_mode`, if any.
    pub fn from_mode(mode: u32) -> Option<Self> {
        Some(match mode & 0o170_000 {
            0o100_000 => Self::File,
            0o040_000 => Self::Dir,
            0o120_000 => Self::Symlink,
            0o020_000 => Self::Char,
            0o060_000 => Self::Block,
            0o010_000 => Self::Fifo,
            0o140_000 => Self::Socket,
            _ => return None,
        })
    }
}

impl std::fmt::Display for FileType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The metadata every format stores in some form.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Metadata {
    /// Permission bits with setuid, setgid and sticky (`0o7777`); never the type bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time, seconds since the Unix epoch (may be negative).
    pub mtime: i64,
    /// Nanoseconds of the modification time, where the format keeps them (else 0).
    pub mtime_nsec: u32,
    /// Extended attributes, sorted by name.
    pub xattrs: Vec<Xattr>,
}

impl Metadata {
    /// Mode `mode` (permission bits), owned by root, at `mtime`, no xattrs.
    pub fn new(mode: u32, mtime: i64) -> Self {
        Self {
            mode: mode & 0o7777,
            mtime,
            ..Self::default()
        }
    }
}

/// One file, directory, link or special file of a tree.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Entry {
    /// Path below the root, components joined by `/`, no leading `/`; empty for the root.
    pub path: Vec<u8>,
    /// What it is.
    pub file_type: FileType,
    /// Mode, owner, time, xattrs.
    pub meta: Metadata,
    /// Content length of a file, target length of a symlink, 0 otherwise.
    pub size: u64,
    /// Target of a symlink, as stored.
    pub target: Option<Vec<u8>>,
    /// (major, minor) of a device node.
    pub rdev: Option<(u32, u32)>,
    /// Hard-link identity: entries of one tree with the same value are one file. `None` for
    /// a file with a single name.
    pub link: Option<u64>,
}

impl Entry {
    /// An entry of type `file_type` at `path` with metadata `meta`, size 0, no target.
    pub fn new(path: impl Into<Vec<u8>>, file_type: FileType, meta: Metadata) -> Self {
        Self {
            path: path.into(),
            file_type,
            meta,
            size: 0,
            target: None,
            rdev: None,
            link: None,
        }
    }

    /// The last component of the path (empty for the root).
    pub fn name(&self) -> &[u8] {
        match self.path.iter().rposition(|&c| c == b'/') {
            Some(i) => self.path.get(i + 1..).unwrap_or_default(),
            None => &self.path,
        }
    }

    /// The path with a leading `/`, lossily decoded, as listings print it.
    pub fn display_path(&self) -> String {
        format!("/{}", String::from_utf8_lossy(&self.path))
    }

    /// The full `st_mode`: type bits and permission bits.
    pub fn st_mode(&self) -> u32 {
        self.file_type.mode_bits() | (self.meta.mode & 0o7777)
    }

    /// `ls -l` style mode string, e.g. `-rw-r--r--` or `drwxrwxrwt`.
    pub fn mode_string(&self) -> String {
        mode_string(self.file_type, self.meta.mode)
    }
}

/// `ls -l` style mode string for a type and permission bits.
pub fn mode_string(file_type: FileType, mode: u32) -> String {
    let m = mode;
    let mut s = String::with_capacity(10);
    s.push(file_type.letter());
    let bit = |b: u32, c: char| if m & b != 0 { c } else { '-' };
    let special =
        |x: u32, special: u32, lower: char, upper: char| match (m & x != 0, m & special != 0) {
            (true, true) => lower,
            (false, true) => upper,
            (true, false) => 'x',
            (false, false) => '-',
        };
    s.push(bit(0o400, 'r'));
    s.push(bit(0o200, 'w'));
    s.push(special(0o100, 0o4000, 's', 'S'));
    s.push(bit(0o040, 'r'));
    s.push(bit(0o020, 'w'));
    s.push(special(0o010, 0o2000, 's', 'S'));
    s.push(bit(0o004, 'r'));
    s.push(bit(0o002, 'w'));
    s.push(special(0o001, 0o1000, 't', 'T'));
    s
}

/// Splits a Linux `dev_t` (as `st_rdev` reports it) into (major, minor).
pub fn split_dev(rdev: u64) -> (u32, u32) {
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    (major as u32, minor as u32)
}

/// Joins (major, minor) into a Linux `dev_t`.
pub fn join_dev(major: u32, minor: u32) -> u64 {
    let (ma, mi) = (u64::from(major), u64::from(minor));
    ((ma & 0xfff) << 8) | ((ma & !0xfff) << 32) | (mi & 0xff) | ((mi & !0xff) << 12)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_strings() {
        assert_eq!(mode_string(FileType::File, 0o644), "-rw-r--r--");
        assert_eq!(mode_string(FileType::Dir, 0o1777), "drwxrwxrwt");
        assert_eq!(mode_string(FileType::File, 0o4755), "-rwsr-xr-x");
        assert_eq!(mode_string(FileType::File, 0o2644), "-rw-r-Sr--");
    }

    #[test]
    fn device_numbers_round_trip() {
        for (ma, mi) in [(0, 0), (1, 3), (8, 17), (259, 65_536), (4095, 1 << 19)] {
            assert_eq!(split_dev(join_dev(ma, mi)), (ma, mi));
        }
        assert_eq!(split_dev(0x0801), (8, 1));
    }

    #[test]
    fn names_and_types() {
        let e = Entry::new("a/b/c.txt", FileType::File, Metadata::new(0o100_644, 0));
        assert_eq!(e.name(), b"c.txt");
        assert_eq!(e.meta.mode, 0o644);
        assert_eq!(e.st_mode(), 0o100_644);
        assert_eq!(e.display_path(), "/a/b/c.txt");
        assert_eq!(
            Entry::new("", FileType::Dir, Metadata::default()).name(),
            b""
        );
        for t in [
            FileType::File,
            FileType::Dir,
            FileType::Symlink,
            FileType::Char,
            FileType::Block,
            FileType::Fifo,
            FileType::Socket,
        ] {
            assert_eq!(FileType::from_mode(t.mode_bits() | 0o755), Some(t));
            assert_eq!(
                serde_json::to_string(&t).unwrap(),
                format!("\"{}\"", t.name())
            );
        }
    }
}
