//! Safe extraction to a host directory.
//!
//! # Security
//! Names were validated when the listing was read (no `/`, `.`, `..`, NUL, duplicates), every
//! path is built below the destination from those names, and nothing is ever opened through
//! a symlink: files are created with `create_new`, directories with `create_dir`, so an image
//! that lists `a -> /etc` and then `a/passwd` fails instead of writing outside. With
//! [`ExtractOptions::refuse_link_escapes`] symlinks whose target leaves the destination
//! (absolute, or too many `..`) are refused too.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;

use super::{Chunk, Reader, WalkEntry, lossy_path};
use crate::error::{Error, Result};
use crate::raw::{InodeData, InodeKind, decode_dev};

/// What [`Reader::extract`] restores besides content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExtractOptions {
    /// Restore owners (needs root).
    pub owners: bool,
    /// Restore xattrs (`security.*` and `trusted.*` need root).
    pub xattrs: bool,
    /// Refuse symlinks whose target leaves the destination.
    pub refuse_link_escapes: bool,
    /// Create device nodes, fifos and sockets (device nodes need root; when refused by the
    /// host they are counted as skipped).
    pub special_files: bool,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        Self {
            owners: false,
            xattrs: false,
            refuse_link_escapes: false,
            special_files: true,
        }
    }
}

impl ExtractOptions {
    /// Options restoring owners and xattrs too (what root wants).
    pub fn full() -> Self {
        Self {
            owners: true,
            xattrs: true,
            ..Self::default()
        }
    }
}

/// Counts of what an extraction created.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExtractReport {
    /// Directories (the root included).
    pub dirs: u64,
    /// Regular files (first links).
    pub files: u64,
    /// Further hard links.
    pub hard_links: u64,
    /// Symlinks.
    pub symlinks: u64,
    /// Devices, fifos, sockets.
    pub special: u64,
    /// Special files the host refused to create.
    pub skipped: u64,
    /// Content bytes written.
    pub bytes: u64,
}

pub(crate) fn io<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::IoPath {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Whether a symlink at `entry` (image path) pointing at `target` leaves the root.
pub(crate) fn link_escapes(entry: &[u8], target: &[u8]) -> bool {
    if target.first() == Some(&b'/') {
        return true;
    }
    let mut depth: i64 = entry
        .split(|&c| c == b'/')
        .filter(|c| !c.is_empty())
        .count() as i64
        - 1;
    for comp in target.split(|&c| c == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => depth += 1,
        }
    }
    false
}

impl Reader {
    /// Extracts the whole image below `dest` (created if missing; existing directories are
    /// reused, any other existing path is an error). File contents are written in parallel.
    ///
    /// # Security
    /// Nothing is written outside `dest` whatever the image says: names are checked, files are
    /// created with `create_new`, directories with `create_dir`, and no symlink is followed.
    pub fn extract(&self, dest: &Path, opts: ExtractOptions) -> Result<ExtractReport> {
        let entries = self.walk()?;
        let mut report = ExtractReport::default();
        fs::create_dir_all(dest).map_err(io("creating", dest))?;
        let target = |e: &WalkEntry| -> PathBuf {
            if e.path.is_empty() {
                dest.to_path_buf()
            } else {
                dest.join(OsStr::from_bytes(&e.path))
            }
        };
        let mut first_link: BTreeMap<u32, usize> = BTreeMap::new();
        let mut primaries = Vec::new();
        let mut links = Vec::new();
        // Entries whose metadata the last pass restores by path (files get theirs through
        // their open descriptor while being written, in parallel).
        let mut by_path = vec![false; entries.len()];
        for (i, e) in entries.iter().enumerate() {
            let p = target(e);
            match &e.inode.data {
                InodeData::Dir(_) => {
                    report.dirs += 1;
                    by_path[i] = true;
                    if e.path.is_empty() {
                        continue;
                    }
                    if let Err(err) = fs::create_dir(&p) {
                        let is_dir = fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir());
                        if err.kind() != std::io::ErrorKind::AlreadyExists || !is_dir {
                            return Err(io("creating directory", &p)(err));
                        }
                    }
                }
                InodeData::File(_) => {
                    if e.inode.nlink > 1 {
                        if let Some(&j) = first_link.get(&e.inode.inode_number) {
                            links.push((j, i));
                            continue;
                        }
                        first_link.insert(e.inode.inode_number, i);
                    }
                    primaries.push(i);
                }
                InodeData::Symlink(t) => {
                    if opts.refuse_link_escapes && link_escapes(&e.path, t) {
                        return Err(Error::Refused {
                            path: lossy_path(&e.path),
                            reason: "symlink target leaves the destination",
                        });
                    }
                    std::os::unix::fs::symlink(OsStr::from_bytes(t), &p)
                        .map_err(io("creating symlink", &p))?;
                    report.symlinks += 1;
                    by_path[i] = true;
                }
                InodeData::Device(_) | InodeData::Ipc => {
                    if !opts.special_files {
                        report.skipped += 1;
                        continue;
                    }
                    use rustix::fs::{CWD, FileType, Mode, makedev, mknodat};
                    let (ft, dev) = match (&e.inode.data, e.inode.kind) {
                        (InodeData::Device(r), InodeKind::BlockDev) => {
                            let (ma, mi) = decode_dev(*r);
                            (FileType::BlockDevice, makedev(ma, mi))
                        }
                        (InodeData::Device(r), _) => {
                            let (ma, mi) = decode_dev(*r);
                            (FileType::CharacterDevice, makedev(ma, mi))
                        }
                        (_, InodeKind::Socket) => (FileType::Socket, 0),
                        _ => (FileType::Fifo, 0),
                    };
                    match mknodat(CWD, &p, ft, Mode::from_raw_mode(0o600), dev) {
                        Ok(()) => {
                            report.special += 1;
                            by_path[i] = true;
                        }
                        Err(rustix::io::Errno::PERM) => report.skipped += 1,
                        Err(err) => return Err(io("creating special file", &p)(err.into())),
                    }
                }
            }
        }
        let bytes: Result<Vec<u64>> = primaries
            .par_iter()
            .map(|&i| {
                let e = &entries[i];
                let p = target(e);
                let f = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&p)
                    .map_err(io("creating file", &p))?;
                let mut at = 0u64;
                let mut hole_at_end = false;
                let n = self.read_file_chunks(&e.inode, &mut |c| {
                    match c {
                        // Runs of zeros become holes.
                        Chunk::Zeros(n) => {
                            at += n as u64;
                            hole_at_end = true;
                        }
                        Chunk::Data(d) => {
                            f.write_all_at(d, at).map_err(io("writing", &p))?;
                            at += d.len() as u64;
                            hole_at_end = false;
                        }
                    }
                    Ok(())
                })?;
                if hole_at_end {
                    f.set_len(n).map_err(io("sizing", &p))?;
                }
                self.restore_file_metadata(e, &f, &p, opts)?;
                Ok(n)
            })
            .collect();
        report.bytes = bytes?.iter().sum();
        report.files = primaries.len() as u64;
        for &(j, i) in &links {
            let (from, to) = (target(&entries[j]), target(&entries[i]));
            fs::hard_link(&from, &to).map_err(io("creating hard link", &to))?;
            report.hard_links += 1;
        }
        // Metadata last and children first, so read-only directories and mtimes stick.
        for (e, _) in entries.iter().zip(&by_path).rev().filter(|(_, b)| **b) {
            self.restore_metadata(e, &target(e), opts)?;
        }
        Ok(report)
    }

    fn restore_of(&self, e: &WalkEntry, opts: ExtractOptions) -> Result<Restore> {
        Ok(Restore {
            owner: if opts.owners {
                Some(self.owner(&e.inode)?)
            } else {
                None
            },
            xattrs: if opts.xattrs {
                self.xattrs(&e.inode)?
            } else {
                Vec::new()
            },
            mode: e.inode.mode,
            mtime: u64::from(e.inode.mtime),
            symlink: e.inode.kind == InodeKind::Symlink,
        })
    }

    fn restore_file_metadata(
        &self,
        e: &WalkEntry,
        f: &fs::File,
        p: &Path,
        opts: ExtractOptions,
    ) -> Result<()> {
        self.restore_of(e, opts)?.on_fd(f, p)
    }

    fn restore_metadata(&self, e: &WalkEntry, p: &Path, opts: ExtractOptions) -> Result<()> {
        self.restore_of(e, opts)?.on_path(p)
    }
}

/// What extraction restores on one entry besides its content (squashfs and EROFS alike).
pub(crate) struct Restore {
    /// (uid, gid) when owners are restored.
    pub(crate) owner: Option<(u32, u32)>,
    /// Xattrs to set (empty when they are not restored).
    pub(crate) xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    pub(crate) mode: u16,
    pub(crate) mtime: u64,
    pub(crate) symlink: bool,
}

impl Restore {
    /// Through a regular file's open descriptor, in the order chown, xattrs, chmod (chown
    /// clears set-id bits), times.
    pub(crate) fn on_fd(&self, f: &fs::File, p: &Path) -> Result<()> {
        if let Some((uid, gid)) = self.owner {
            std::os::unix::fs::fchown(f, Some(uid), Some(gid)).map_err(io("chown", p))?;
        }
        for (name, value) in &self.xattrs {
            rustix::fs::fsetxattr(
                f,
                OsStr::from_bytes(name),
                value,
                rustix::fs::XattrFlags::empty(),
            )
            .map_err(|err| io("setting xattrs on", p)(err.into()))?;
        }
        f.set_permissions(fs::Permissions::from_mode(u32::from(self.mode & 0o7777)))
            .map_err(io("chmod", p))?;
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(self.mtime);
        f.set_times(fs::FileTimes::new().set_accessed(t).set_modified(t))
            .map_err(io("setting mtime on", p))
    }

    /// By path, never following a symlink (directories, symlinks, special files).
    pub(crate) fn on_path(&self, p: &Path) -> Result<()> {
        if let Some((uid, gid)) = self.owner {
            std::os::unix::fs::lchown(p, Some(uid), Some(gid)).map_err(io("chown", p))?;
        }
        for (name, value) in &self.xattrs {
            rustix::fs::lsetxattr(
                p,
                OsStr::from_bytes(name),
                value,
                rustix::fs::XattrFlags::empty(),
            )
            .map_err(|err| io("setting xattrs on", p)(err.into()))?;
        }
        if !self.symlink {
            fs::set_permissions(p, fs::Permissions::from_mode(u32::from(self.mode & 0o7777)))
                .map_err(io("chmod", p))?;
        }
        let t = rustix::fs::Timespec {
            tv_sec: i64::try_from(self.mtime).unwrap_or(i64::MAX),
            tv_nsec: 0,
        };
        rustix::fs::utimensat(
            rustix::fs::CWD,
            p,
            &rustix::fs::Timestamps {
                last_access: t,
                last_modification: t,
            },
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|err| io("setting mtime on", p)(err.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::link_escapes;

    #[test]
    fn escapes() {
        assert!(link_escapes(b"a", b"/etc"));
        assert!(link_escapes(b"a", b".."));
        assert!(link_escapes(b"d/a", b"../../x"));
        assert!(!link_escapes(b"d/a", b"../x"));
        assert!(!link_escapes(b"d/a", b"e/../f"));
        assert!(link_escapes(b"d/a", b"e/../../../f"));
    }
}
