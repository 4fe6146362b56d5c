//! One atomic output writer for every command that writes an image.
//!
//! [`AtomicFile::create`] opens a temporary file beside `OUT`, named after the *whole* output
//! name (`x.sqfs` is written through `.x.sqfs.imgpipe-tmp`, so `x.sqfs` and `x.img` never share
//! one); [`AtomicFile::commit`] flushes it to disk, renames it over `OUT` and syncs the
//! directory. Until then `OUT` is untouched; dropping an uncommitted [`AtomicFile`] (an error,
//! a full disk) removes the temporary file.
//!
//! # Signals and crashes
//! A process that is told to stop (SIGINT, SIGTERM) calls [`discard_pending_outputs`] from its
//! handler: it removes every temporary file that is still open and refuses later commits, so
//! nothing is left beside `OUT` and `OUT` is not replaced. After SIGKILL nothing can run: the
//! temporary file stays, and the next [`AtomicFile::create`] of the same `OUT` removes it.
//!
//! # Process-global state
//! The one global of this crate is the registry of pending temporary files and scratch
//! directories that [`discard_pending_outputs`] empties: a mutex-guarded list of paths, filled
//! by [`AtomicFile::create`] and [`WorkDir::create_in`], emptied by [`AtomicFile::commit`],
//! [`WorkDir::keep`] and by dropping.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use crate::error::{Error, Result};

/// What the temporary file's name adds to the output name (after a leading dot).
pub const TEMP_SUFFIX: &str = ".imgpipe-tmp";

/// Pending temporary files and scratch directories, and whether [`discard_pending_outputs`]
/// has run.
#[derive(Debug, Default)]
struct Registry {
    pending: Vec<PathBuf>,
    dirs: Vec<PathBuf>,
    groups: Vec<u32>,
    discarded: bool,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    pending: Vec::new(),
    dirs: Vec::new(),
    groups: Vec::new(),
    discarded: false,
});

/// A process group this process started (a build command run in its own group), registered
/// while it runs so that a signal handler can stop it with [`running_child_groups`] before
/// [`discard_pending_outputs`] removes the directories it writes into.
#[derive(Debug)]
pub struct ChildGroup(u32);

impl ChildGroup {
    /// Registers the group led by `pid` (a child started with `process_group(0)`).
    pub fn register(pid: u32) -> Self {
        registry().groups.push(pid);
        Self(pid)
    }
}

impl Drop for ChildGroup {
    fn drop(&mut self) {
        let mut reg = registry();
        if let Some(i) = reg.groups.iter().position(|&g| g == self.0) {
            reg.groups.swap_remove(i);
        }
    }
}

/// The process groups registered by [`ChildGroup`] that are still running: a signal handler
/// sends them the signal it got (the library itself never signals anything).
pub fn running_child_groups() -> Vec<u32> {
    registry().groups.clone()
}

fn registry() -> MutexGuard<'static, Registry> {
    // A panic while holding the lock leaves a consistent list: keep using it.
    REGISTRY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Removes every pending temporary file and scratch directory ([`WorkDir`]) and makes later
/// [`AtomicFile::create`], [`AtomicFile::commit`] and [`WorkDir::create_in`] calls fail with
/// [`Error::Discarded`].
///
/// Meant for a signal handler (run on an ordinary thread, as `signal-hook`'s iterator does)
/// just before the process exits. Returns the paths it removed.
pub fn discard_pending_outputs() -> Vec<PathBuf> {
    let mut reg = registry();
    reg.discarded = true;
    let mut pending = std::mem::take(&mut reg.pending);
    for p in &pending {
        let _ = std::fs::remove_file(p);
    }
    for d in std::mem::take(&mut reg.dirs) {
        let _ = std::fs::remove_dir_all(&d);
        pending.push(d);
    }
    pending
}

/// A fresh scratch directory (`PREFIX.PID.N` inside a parent), removed with everything in it
/// when dropped or when [`discard_pending_outputs`] runs, unless [`kept`](Self::keep).
///
/// ```
/// let parent = tempfile::tempdir()?;
/// let w = imgpipe_repro::WorkDir::create_in(parent.path(), "imgpipe-example")?;
/// std::fs::write(w.path().join("f"), b"x")?;
/// let p = w.path().to_path_buf();
/// drop(w);
/// assert!(!p.exists());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct WorkDir {
    path: PathBuf,
}

impl WorkDir {
    /// Creates `PREFIX.PID.N` inside `parent`, N the first number not taken.
    pub fn create_in(parent: &Path, prefix: &str) -> Result<Self> {
        let mut reg = registry();
        if reg.discarded {
            return Err(Error::Discarded);
        }
        for i in 0..10_000u32 {
            let path = parent.join(format!("{prefix}.{}.{i}", std::process::id()));
            match std::fs::create_dir(&path) {
                Ok(()) => {
                    reg.dirs.push(path.clone());
                    return Ok(Self { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(source) => {
                    return Err(Error::Io {
                        what: "creating a scratch directory",
                        source,
                    });
                }
            }
        }
        Err(Error::Io {
            what: "creating a scratch directory",
            source: std::io::Error::new(std::io::ErrorKind::AlreadyExists, "no free name"),
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keeps the directory: it is no longer removed. Returns its path.
    pub fn keep(self) -> PathBuf {
        let path = self.path.clone();
        registry().dirs.retain(|d| d != &path);
        std::mem::forget(self);
        path
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let mut reg = registry();
        if let Some(pos) = reg.dirs.iter().position(|d| d == &self.path) {
            reg.dirs.swap_remove(pos);
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// The temporary file that [`AtomicFile`] writes before it becomes `out`: `.NAME.imgpipe-tmp`
/// in the same directory, NAME being the whole file name of `out`.
pub fn temp_path(out: &Path) -> Result<PathBuf> {
    let name = out.file_name().ok_or_else(|| Error::OutputPath {
        path: out.to_path_buf(),
        reason: "has no file name",
    })?;
    let mut tmp = OsString::from(".");
    tmp.push(name);
    tmp.push(TEMP_SUFFIX);
    if tmp.len() > 255 {
        return Err(Error::OutputPath {
            path: out.to_path_buf(),
            reason: "file name too long for a temporary file beside it",
        });
    }
    Ok(out.with_file_name(tmp))
}

/// Checks, before any work, that `out` can be written: it is not a directory and its
/// directory exists.
pub fn check_output(out: &Path) -> Result<()> {
    if out.as_os_str().is_empty() {
        return Err(Error::OutputPath {
            path: out.to_path_buf(),
            reason: "is empty",
        });
    }
    if out.is_dir() {
        return Err(Error::OutputPath {
            path: out.to_path_buf(),
            reason: "is a directory",
        });
    }
    // A device, fifo or socket is not replaced by a renamed file (that would turn
    // `/dev/sdb` into a regular file in /dev): refuse it.
    if std::fs::metadata(out).is_ok_and(|m| !m.is_file()) {
        return Err(Error::OutputPath {
            path: out.to_path_buf(),
            reason: "is not a regular file (a device, fifo or socket); images are written to files",
        });
    }
    let dir = parent(out);
    if !dir.is_dir() {
        return Err(Error::OutputPath {
            path: out.to_path_buf(),
            reason: "is in a directory that does not exist",
        });
    }
    temp_path(out).map(drop)
}

fn parent(out: &Path) -> &Path {
    match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A file written beside its destination and renamed over it on [`commit`](Self::commit).
///
/// ```
/// use std::io::Write;
/// let dir = tempfile::tempdir()?;
/// let out = dir.path().join("x.img");
/// let f = imgpipe_repro::AtomicFile::create(&out)?;
/// f.file().write_all(b"image")?;
/// assert!(!out.exists());
/// f.commit()?;
/// assert_eq!(std::fs::read(&out)?, b"image");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct AtomicFile {
    out: PathBuf,
    tmp: PathBuf,
    file: File,
}

impl AtomicFile {
    /// Creates the temporary file for `out` (readable and writable), after removing one that
    /// a killed earlier run left.
    ///
    /// An `out` that is a symlink to a file is written through: the file it names is
    /// replaced, the link stays.
    pub fn create(out: &Path) -> Result<Self> {
        check_output(out)?;
        let resolved;
        let out = match std::fs::symlink_metadata(out) {
            Ok(m) if m.file_type().is_symlink() => match std::fs::canonicalize(out) {
                Ok(target) => {
                    resolved = target;
                    resolved.as_path()
                }
                Err(_) => out,
            },
            _ => out,
        };
        let tmp = temp_path(out)?;
        let mut reg = registry();
        if reg.discarded {
            return Err(Error::Discarded);
        }
        match std::fs::remove_file(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(Error::Io {
                    what: "removing a leftover temporary output file",
                    source,
                });
            }
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|source| Error::Io {
                what: "creating the temporary output file",
                source,
            })?;
        reg.pending.push(tmp.clone());
        Ok(Self {
            out: out.to_path_buf(),
            tmp,
            file,
        })
    }

    /// The open temporary file (`&File` implements `Read`, `Write` and `Seek`).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The destination.
    pub fn path(&self) -> &Path {
        &self.out
    }

    /// The temporary file being written.
    pub fn temp_path(&self) -> &Path {
        &self.tmp
    }

    /// Syncs the file, renames it to the destination and syncs the directory.
    pub fn commit(self) -> Result<()> {
        // On any error below, dropping `self` removes the temporary file.
        // A replaced file keeps its permission bits (a 0600 image stays 0600).
        if let Ok(m) = std::fs::metadata(&self.out) {
            self.file
                .set_permissions(m.permissions())
                .map_err(|source| Error::Io {
                    what: "copying the replaced file's permissions",
                    source,
                })?;
        }
        self.file.sync_all().map_err(|source| Error::Io {
            what: "syncing the output file",
            source,
        })?;
        {
            let mut reg = registry();
            if reg.discarded {
                return Err(Error::Discarded);
            }
            std::fs::rename(&self.tmp, &self.out).map_err(|source| Error::Io {
                what: "renaming the temporary output file",
                source,
            })?;
            reg.pending.retain(|p| p != &self.tmp);
        }
        let dir = File::open(parent(&self.out)).map_err(|source| Error::Io {
            what: "opening the output directory",
            source,
        })?;
        dir.sync_all().map_err(|source| Error::Io {
            what: "syncing the output directory",
            source,
        })
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        let mut reg = registry();
        if let Some(pos) = reg.pending.iter().position(|p| p == &self.tmp) {
            reg.pending.swap_remove(pos);
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn temp_name_keeps_the_whole_output_name() {
        let a = temp_path(Path::new("/d/x.sqfs")).unwrap();
        let b = temp_path(Path::new("/d/x.img")).unwrap();
        assert_eq!(a, Path::new("/d/.x.sqfs.imgpipe-tmp"));
        assert_ne!(a, b);
        assert_eq!(
            temp_path(Path::new("x")).unwrap(),
            Path::new(".x.imgpipe-tmp")
        );
    }

    #[test]
    fn drop_without_commit_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("x.img");
        std::fs::write(&out, b"old").unwrap();
        {
            let f = AtomicFile::create(&out).unwrap();
            f.file().write_all(b"new").unwrap();
            assert!(f.temp_path().exists());
        }
        assert_eq!(std::fs::read(&out).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn commit_replaces_and_leftover_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("x.img");
        let tmp = temp_path(&out).unwrap();
        std::fs::write(&tmp, b"left by a killed run").unwrap();
        let f = AtomicFile::create(&out).unwrap();
        f.file().write_all(b"new").unwrap();
        f.commit().unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"new");
        assert!(!tmp.exists());
    }

    #[test]
    fn directories_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            check_output(dir.path()),
            Err(Error::OutputPath { .. })
        ));
        assert!(check_output(&dir.path().join("missing/x.img")).is_err());
        assert!(check_output(&dir.path().join("x.img")).is_ok());
    }

    #[test]
    fn replacing_keeps_permissions_and_writes_through_a_symlink() {
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("real.img");
        std::fs::write(&target, b"old").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
        let link = dir.path().join("link.img");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let f = AtomicFile::create(&link).unwrap();
        f.file().write_all(b"new").unwrap();
        f.commit().unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        let mode = std::fs::metadata(&target).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn devices_and_fifos_are_refused() {
        for dev in ["/dev/null", "/dev/full"] {
            assert!(
                matches!(check_output(Path::new(dev)), Err(Error::OutputPath { .. })),
                "{dev}"
            );
            assert!(AtomicFile::create(Path::new(dev)).is_err(), "{dev}");
        }
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        assert!(check_output(&fifo).is_err());
        use std::os::unix::fs::FileTypeExt;
        assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    }
}
