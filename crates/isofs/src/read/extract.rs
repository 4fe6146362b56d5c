//! Safe extraction of a whole image into a directory.
//!
//! Names are checked component by component (no empty names, `.`, `..`, `/` or NUL), every
//! path is created fresh (`O_EXCL`; an existing file, directory or symlink at a path is an
//! error), duplicates are refused, and symbolic links are created last, so no write can ever
//! pass through a link the image planted.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::{Entry, EntryKind, Reader};
use crate::error::{Error, Result};

/// What [`Reader::extract`] restores besides names and content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtractOptions {
    /// Restore owners (needs root).
    pub owners: bool,
    /// Restore permission bits.
    pub permissions: bool,
    /// Restore modification times.
    pub times: bool,
    /// Create device nodes and FIFOs (device nodes need root).
    pub special_files: bool,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        Self {
            owners: false,
            permissions: true,
            times: true,
            special_files: true,
        }
    }
}

/// Counts of what was extracted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExtractReport {
    /// Directories created.
    pub directories: u64,
    /// Regular files written.
    pub files: u64,
    /// Hard links made.
    pub hard_links: u64,
    /// Symbolic links made.
    pub symlinks: u64,
    /// Device nodes and FIFOs made.
    pub special_files: u64,
    /// Bytes of file data written.
    pub bytes: u64,
}

fn check_component(name: &[u8], path: &[u8]) -> Result<()> {
    let reason = if name.is_empty() {
        "empty name"
    } else if name == b"." || name == b".." {
        "`.` or `..` as a name"
    } else if name.contains(&b'/') {
        "`/` inside a name"
    } else if name.contains(&0) {
        "NUL inside a name"
    } else {
        return Ok(());
    };
    Err(Error::UnsafePath {
        path: String::from_utf8_lossy(path).into_owned(),
        reason,
    })
}

fn io_path(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::IoPath { what, path, source }
}

fn time(secs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

fn set_times_nofollow(path: &Path, secs: i64) {
    use rustix::fs::{AtFlags, CWD, Timespec, Timestamps, utimensat};
    let ts = Timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    // Best effort: a filesystem without link times must not fail the extraction.
    let _ = utimensat(
        CWD,
        path,
        &Timestamps {
            last_access: ts,
            last_modification: ts,
        },
        AtFlags::SYMLINK_NOFOLLOW,
    );
}

impl<R: std::io::Read + std::io::Seek> Reader<R> {
    /// Extracts every entry below the root into `dest` (created if missing).
    ///
    /// # Security
    /// Nothing is written outside `dest`: see the module documentation. Names that are
    /// not safe are an error before anything is written.
    pub fn extract(&mut self, dest: &Path, opts: ExtractOptions) -> Result<ExtractReport> {
        let mut list: Vec<(Vec<u8>, Entry)> = Vec::new();
        let mut seen = BTreeSet::new();
        self.walk(|p, e| {
            check_component(&e.name_bytes, p)?;
            if !seen.insert(p.to_vec()) {
                return Err(Error::UnsafePath {
                    path: String::from_utf8_lossy(p).into_owned(),
                    reason: "two entries with the same name",
                });
            }
            list.push((p.to_vec(), e.clone()));
            Ok(())
        })?;
        fs::create_dir_all(dest).map_err(io_path("creating", dest))?;
        let target = |p: &[u8]| -> PathBuf { dest.join(OsStr::from_bytes(p)) };
        let mut report = ExtractReport::default();
        // Directories and files, parents before children (walk order).
        let mut by_ino: BTreeMap<u32, PathBuf> = BTreeMap::new();
        for (p, e) in &list {
            let path = target(p);
            match e.kind {
                EntryKind::Directory => {
                    fs::create_dir(&path).map_err(io_path("creating directory", &path))?;
                    report.directories += 1;
                }
                EntryKind::File => {
                    if let Some(ino) = e.ino.filter(|_| e.nlink > 1)
                        && let Some(first) = by_ino.get(&ino)
                    {
                        fs::hard_link(first, &path).map_err(io_path("hard-linking", &path))?;
                        report.hard_links += 1;
                        continue;
                    }
                    let mut f = fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(&path)
                        .map_err(io_path("creating file", &path))?;
                    report.bytes += self.copy_to(e, &mut f)?;
                    report.files += 1;
                    if let Some(ino) = e.ino.filter(|_| e.nlink > 1) {
                        by_ino.insert(ino, path);
                    }
                }
                EntryKind::Fifo | EntryKind::CharDevice | EntryKind::BlockDevice
                    if opts.special_files =>
                {
                    use rustix::fs::{CWD, FileType, Mode, makedev, mknodat};
                    let (ft, dev) = match e.kind {
                        EntryKind::Fifo => (FileType::Fifo, 0),
                        EntryKind::CharDevice => {
                            let (a, b) = e.device.unwrap_or((0, 0));
                            (FileType::CharacterDevice, makedev(a, b))
                        }
                        _ => {
                            let (a, b) = e.device.unwrap_or((0, 0));
                            (FileType::BlockDevice, makedev(a, b))
                        }
                    };
                    mknodat(CWD, &path, ft, Mode::from_raw_mode(0o600), dev).map_err(|err| {
                        Error::IoPath {
                            what: "creating special file",
                            path: path.clone(),
                            source: err.into(),
                        }
                    })?;
                    report.special_files += 1;
                }
                _ => {}
            }
        }
        // Symbolic links last: nothing is written below a path after it may be a link.
        for (p, e) in &list {
            if e.kind != EntryKind::Symlink {
                continue;
            }
            let path = target(p);
            let link = e.link_target_bytes.clone().unwrap_or_default();
            std::os::unix::fs::symlink(OsStr::from_bytes(&link), &path)
                .map_err(io_path("creating symlink", &path))?;
            report.symlinks += 1;
        }
        // Attributes, children before parents so read-only directories come last.
        for (p, e) in list.iter().rev() {
            let path = target(p);
            if e.kind == EntryKind::Symlink {
                if opts.owners {
                    let _ = std::os::unix::fs::lchown(&path, Some(e.uid), Some(e.gid));
                }
                if opts.times
                    && let Some(m) = e.mtime
                {
                    set_times_nofollow(&path, m);
                }
                continue;
            }
            if !path.exists() {
                continue;
            }
            if opts.owners {
                std::os::unix::fs::lchown(&path, Some(e.uid), Some(e.gid))
                    .map_err(io_path("setting the owner of", &path))?;
            }
            if opts.times
                && let Some(m) = e.mtime
                && matches!(e.kind, EntryKind::File | EntryKind::Directory)
            {
                let f = fs::File::open(&path).map_err(io_path("opening", &path))?;
                let t = fs::FileTimes::new()
                    .set_modified(time(m))
                    .set_accessed(time(m));
                f.set_times(t).map_err(io_path("setting times of", &path))?;
            } else if opts.times
                && let Some(m) = e.mtime
            {
                // FIFOs and devices must not be opened.
                set_times_nofollow(&path, m);
            }
            if opts.permissions {
                fs::set_permissions(&path, fs::Permissions::from_mode(e.mode))
                    .map_err(io_path("setting permissions of", &path))?;
            }
        }
        if opts.times
            && let Some(m) = self.root.mtime
            && let Ok(f) = fs::File::open(dest)
        {
            let _ = f.set_times(fs::FileTimes::new().set_modified(time(m)));
        }
        Ok(report)
    }
}
