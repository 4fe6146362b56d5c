//! Two-build verification as one step: the source copied twice (at paths of different depth),
//! the build command run in each, the second under variations (umask, time zone, locale,
//! directory order, CPU count, environment, clock), then each output pair compared with the
//! nested diagnosis. When outputs differ, each variation is tried alone to say which ones
//! the build depends on.
//!
//! ```no_run
//! use imgpipe_repro::verify::{Variation, VerifyRequest, verify};
//!
//! let mut req = VerifyRequest::new(".", ["make".into(), "image".into()], ["out/disk.img".into()]);
//! req.variations = Variation::ALL.to_vec();
//! let report = verify(&req, &mut |_| {})?;
//! println!("reproducible: {}", report.reproducible);
//! # Ok::<(), imgpipe_repro::Error>(())
//! ```
//!
//! The library runs the commands it is given with the environment it is given; it reads none
//! of its own. What it could not vary (no libfaketime, one CPU, a file system that orders
//! directories by hash) is said in the report, never silently skipped.

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;

use crate::diff::{ImageDiff, ImageDiffOptions, diff_images};
use crate::error::{Error, Result};

/// One thing the second build changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Variation {
    /// The build directory's path (always varied: the copies live at different depths).
    Path,
    /// The umask: 022, then 077.
    Umask,
    /// `TZ`: UTC, then Pacific/Chatham (UTC+12:45/+13:45).
    Tz,
    /// `LC_ALL` and `LANG`: C.UTF-8, then fr_FR.UTF-8.
    Locale,
    /// The order in which directory entries are created in the copy (what `readdir` returns
    /// on file systems that keep creation order, such as tmpfs).
    DirOrder,
    /// The CPUs the build may use: all, then one (`taskset`).
    Cpus,
    /// An extra environment variable and another `HOME`.
    Env,
    /// The clock: a year later (libfaketime).
    Clock,
}

impl Variation {
    /// Every variation.
    pub const ALL: [Variation; 8] = [
        Variation::Path,
        Variation::Umask,
        Variation::Tz,
        Variation::Locale,
        Variation::DirOrder,
        Variation::Cpus,
        Variation::Env,
        Variation::Clock,
    ];

    /// Its name in `--variations`.
    pub fn name(self) -> &'static str {
        match self {
            Variation::Path => "path",
            Variation::Umask => "umask",
            Variation::Tz => "tz",
            Variation::Locale => "locale",
            Variation::DirOrder => "dir-order",
            Variation::Cpus => "cpus",
            Variation::Env => "env",
            Variation::Clock => "clock",
        }
    }

    /// Parses a name of [`Variation::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.name() == name)
    }
}

/// What to verify.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct VerifyRequest {
    /// The directory copied for each build.
    pub source: PathBuf,
    /// The build command (program and arguments), run in each copy's root.
    pub command: Vec<OsString>,
    /// The outputs to compare, relative to the copy's root.
    pub outputs: Vec<PathBuf>,
    /// What the second build varies.
    pub variations: Vec<Variation>,
    /// Paths below `source` not to copy (relative), e.g. `target`.
    pub exclude: Vec<PathBuf>,
    /// Where the copies go (a fresh directory is made inside).
    pub work: PathBuf,
    /// Keep the copies (else they are removed).
    pub keep: bool,
    /// libfaketime's library, for [`Variation::Clock`].
    pub faketime: Option<PathBuf>,
    /// libfaketime's `faketime` program, preferred to the library alone for
    /// [`Variation::Clock`]: it removes the shared-memory segments the library makes in
    /// /dev/shm, which a shell that exits without running destructors would leave.
    pub faketime_program: Option<PathBuf>,
    /// `taskset`, for [`Variation::Cpus`].
    pub taskset: Option<PathBuf>,
    /// CPUs available (a one-CPU machine cannot vary [`Variation::Cpus`]).
    pub cpus: usize,
    /// Try each variation alone when outputs differ.
    pub bisect: bool,
    /// What opens the LUKS2 volumes inside the outputs, so that the comparison names the
    /// files inside their payloads ([`crate::ImageDiffOptions::passphrases`]).
    pub passphrases: Option<std::sync::Arc<crate::Passphrases>>,
}

impl VerifyRequest {
    /// A request with every variation, copies in `/tmp`, bisection on.
    pub fn new(
        source: impl Into<PathBuf>,
        command: impl IntoIterator<Item = OsString>,
        outputs: impl IntoIterator<Item = PathBuf>,
    ) -> Self {
        Self {
            source: source.into(),
            command: command.into_iter().collect(),
            outputs: outputs.into_iter().collect(),
            variations: Variation::ALL.to_vec(),
            exclude: Vec::new(),
            work: PathBuf::from("/tmp"),
            keep: false,
            faketime: None,
            faketime_program: None,
            taskset: None,
            cpus: 1,
            bisect: true,
            passphrases: None,
        }
    }
}

/// Progress of a verification.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum VerifyEvent {
    /// A build starts: which, and under what.
    Build {
        /// `first`, `second`, or the variation tried alone.
        name: String,
    },
    /// A variation could not be applied, and why.
    NotVaried(Variation, String),
}

/// One output pair.
#[derive(Debug, Clone, Serialize)]
pub struct OutputVerdict {
    /// The output, relative to the build root.
    pub path: PathBuf,
    /// Whether both builds wrote the same bytes.
    pub identical: bool,
    /// The variations that alone make it differ (with bisection).
    pub because_of: Vec<Variation>,
    /// It differs between two builds with nothing varied (the clock, randomness, a race):
    /// no variation is to blame.
    pub differs_unvaried: bool,
    /// The comparison (byte ranges, and the files inside when it is an image).
    pub diff: ImageDiff,
}

/// The verdict.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// Every output identical.
    pub reproducible: bool,
    /// What the second build varied.
    pub varied: Vec<Variation>,
    /// What could not be varied, and why.
    pub not_varied: Vec<(Variation, String)>,
    /// Each output.
    pub outputs: Vec<OutputVerdict>,
    /// The two build trees, when kept.
    pub kept: Option<(PathBuf, PathBuf)>,
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> Error {
    move |e| Error::Step {
        step: what,
        message: e.to_string(),
    }
}

/// Copies `src` into `dst` (which must not exist): directories, files with their mode and
/// mtime, symlinks; entries created in name order, or reversed.
fn copy_tree(src: &Path, dst: &Path, reverse: bool, exclude: &[PathBuf], rel: &Path) -> Result<()> {
    std::fs::create_dir(dst).map_err(io(format!("creating {}", dst.display())))?;
    let mut names: Vec<_> = std::fs::read_dir(src)
        .map_err(io(format!("reading {}", src.display())))?
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    names.sort();
    if reverse {
        names.reverse();
    }
    for n in names {
        let r = rel.join(&n);
        if exclude.iter().any(|x| x == &r) {
            continue;
        }
        let (s, d) = (src.join(&n), dst.join(&n));
        let m = std::fs::symlink_metadata(&s).map_err(io(format!("reading {}", s.display())))?;
        if m.is_dir() {
            copy_tree(&s, &d, reverse, exclude, &r)?;
        } else if m.file_type().is_symlink() {
            let t = std::fs::read_link(&s).map_err(io(format!("reading {}", s.display())))?;
            std::os::unix::fs::symlink(t, &d).map_err(io(format!("creating {}", d.display())))?;
            continue;
        } else if m.is_file() {
            std::fs::copy(&s, &d).map_err(io(format!("copying {}", s.display())))?;
        } else {
            continue;
        }
        if let (Ok(t), Ok(f)) = (
            m.modified(),
            File::options().write(!m.is_dir()).read(true).open(&d),
        ) {
            let _ = f.set_modified(t);
        }
    }
    if let (Ok(m), Ok(f)) = (std::fs::metadata(src), File::open(dst)) {
        let _ = m.modified().map(|t| f.set_modified(t));
    }
    Ok(())
}

/// The bytes of the regular files a verification copies from `source` (without the
/// `exclude`d paths), once: each build copy takes this much, and up to three copies exist at
/// once while bisecting. Symlinks are not followed.
pub fn source_bytes(source: &Path, exclude: &[PathBuf]) -> Result<u64> {
    fn walk(dir: &Path, rel: &Path, exclude: &[PathBuf], total: &mut u64) -> Result<()> {
        let rd = std::fs::read_dir(dir).map_err(io(format!("reading {}", dir.display())))?;
        for e in rd {
            let e = e.map_err(io(format!("reading {}", dir.display())))?;
            let r = rel.join(e.file_name());
            if exclude.iter().any(|x| x == &r) {
                continue;
            }
            let m = std::fs::symlink_metadata(e.path())
                .map_err(io(format!("reading {}", e.path().display())))?;
            if m.is_dir() {
                walk(&e.path(), &r, exclude, total)?;
            } else if m.is_file() {
                *total = total.saturating_add(m.len());
            }
        }
        Ok(())
    }
    let mut total = 0;
    walk(source, Path::new(""), exclude, &mut total)?;
    Ok(total)
}

/// The directory listing order of `dir` (as `readdir` returns it).
fn readdir_order(dir: &Path) -> Vec<OsString> {
    std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.file_name())).collect())
        .unwrap_or_default()
}

/// Whether some directory of `a` has two entries or more (else there is no order to vary).
fn has_order(a: &Path) -> bool {
    let x = readdir_order(a);
    x.len() >= 2
        || x.iter().any(|n| {
            let p = a.join(n);
            std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) && has_order(&p)
        })
}

/// Whether the copies list some directory in different orders.
fn order_differs(a: &Path, b: &Path) -> bool {
    let (x, y) = (readdir_order(a), readdir_order(b));
    if x.len() >= 2 && x != y {
        return true;
    }
    x.iter().any(|n| {
        let (p, q) = (a.join(n), b.join(n));
        std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) && order_differs(&p, &q)
    })
}

/// How far [`Variation::Clock`] moves the clock.
const FAKE_CLOCK: &str = "+397d";

/// Runs the build in `root` with `vary` applied.
fn run_build(req: &VerifyRequest, root: &Path, vary: &[Variation]) -> Result<()> {
    let has = |v| vary.contains(&v);
    let umask = if has(Variation::Umask) { "077" } else { "022" };
    let mut cmd = Command::new("sh");
    cmd.current_dir(root);
    cmd.arg("-c")
        .arg(format!("umask {umask}; exec \"$@\""))
        .arg("imgpipe-verify");
    if has(Variation::Cpus)
        && let Some(t) = &req.taskset
    {
        cmd.arg(t).arg("-c").arg("0");
    }
    if has(Variation::Clock)
        && let Some(f) = &req.faketime_program
    {
        cmd.arg(f).arg("-f").arg(FAKE_CLOCK);
    }
    cmd.args(&req.command);
    cmd.env(
        "TZ",
        if has(Variation::Tz) {
            "Pacific/Chatham"
        } else {
            "UTC"
        },
    );
    let locale = if has(Variation::Locale) {
        "fr_FR.UTF-8"
    } else {
        "C.UTF-8"
    };
    cmd.env("LC_ALL", locale).env("LANG", locale);
    if has(Variation::Env) {
        cmd.env("IMGPIPE_VERIFY_VARIATION", "1")
            .env("HOME", root.join(".verify-home"));
    }
    if has(Variation::Clock)
        && req.faketime_program.is_none()
        && let Some(lib) = &req.faketime
    {
        cmd.env("LD_PRELOAD", lib).env("FAKETIME", FAKE_CLOCK);
    }
    // Its own process group: a signal that stops verify stops the whole build with it (see
    // `output::running_child_groups`), not only the shell.
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let what = || {
        format!(
            "running {:?}",
            req.command.first().unwrap_or(&OsString::new())
        )
    };
    let child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(io(what()))?;
    let _group = crate::output::ChildGroup::register(child.id());
    let out = child.wait_with_output().map_err(io(what()))?;
    if !out.status.success() {
        let tail: String = String::from_utf8_lossy(&out.stderr)
            .lines()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join(" | ");
        return Err(Error::Step {
            step: format!("the build in {}", root.display()),
            message: format!("{} ({tail})", out.status),
        });
    }
    Ok(())
}

fn compare(req: &VerifyRequest, a: &Path, b: &Path, out: &Path) -> Result<ImageDiff> {
    let open = |root: &Path| {
        let p = root.join(out);
        File::open(&p).map_err(|e| Error::Step {
            step: format!("the build did not write {}", out.display()),
            message: format!("{}: {e}", p.display()),
        })
    };
    let opts = ImageDiffOptions {
        passphrases: req.passphrases.clone(),
        ..ImageDiffOptions::default()
    };
    diff_images(&open(a)?, &open(b)?, opts, &mut |_| {})
}

/// Builds twice and compares (see the [module docs](crate::verify)).
pub fn verify(req: &VerifyRequest, on: &mut dyn FnMut(VerifyEvent)) -> Result<VerifyReport> {
    if req.command.is_empty() {
        return Err(Error::Argument {
            flag: "--",
            value: String::new(),
            reason: "no build command".into(),
        });
    }
    if req.outputs.is_empty() {
        return Err(Error::Argument {
            flag: "--output",
            value: String::new(),
            reason: "name at least one output to compare".into(),
        });
    }
    let mut not_varied = Vec::new();
    let mut varied: Vec<Variation> = req.variations.clone();
    if !varied.contains(&Variation::Path) {
        varied.push(Variation::Path);
    }
    varied.sort();
    varied.dedup();
    if varied.contains(&Variation::Clock)
        && req.faketime.is_none()
        && req.faketime_program.is_none()
    {
        not_varied.push((Variation::Clock, "libfaketime is not installed".to_owned()));
    }
    if varied.contains(&Variation::Cpus) && (req.taskset.is_none() || req.cpus < 2) {
        let why = if req.cpus < 2 {
            "one CPU"
        } else {
            "taskset is not installed"
        };
        not_varied.push((Variation::Cpus, why.to_owned()));
    }
    let work = crate::WorkDir::create_in(&req.work, "imgpipe-verify")?;
    let base = work.path().to_path_buf();
    // A work directory inside the source is not copied into itself.
    let mut exclude = req.exclude.clone();
    if let (Ok(src), Ok(w)) = (req.source.canonicalize(), base.canonicalize())
        && let Ok(rel) = w.strip_prefix(&src)
    {
        exclude.push(rel.to_path_buf());
    }
    let a = base.join("a").join("src");
    let b = base.join("b").join("deeper").join("build-root").join("src");
    for d in [&a, &b] {
        if let Some(p) = d.parent() {
            std::fs::create_dir_all(p).map_err(io(format!("creating {}", p.display())))?;
        }
    }
    let result = (|| {
        copy_tree(&req.source, &a, false, &exclude, Path::new(""))?;
        copy_tree(
            &req.source,
            &b,
            varied.contains(&Variation::DirOrder),
            &exclude,
            Path::new(""),
        )?;
        if varied.contains(&Variation::DirOrder) && !order_differs(&a, &b) {
            let why = if has_order(&a) {
                "the work directory's file system lists entries in its own order (use --work on a tmpfs such as /dev/shm)"
            } else {
                "no directory of the source has two entries"
            };
            not_varied.push((Variation::DirOrder, why.to_owned()));
        }
        for (v, why) in &not_varied {
            on(VerifyEvent::NotVaried(*v, why.clone()));
        }
        varied.retain(|v| !not_varied.iter().any(|(n, _)| n == v));
        on(VerifyEvent::Build {
            name: "first".into(),
        });
        run_build(req, &a, &[])?;
        on(VerifyEvent::Build {
            name: "second".into(),
        });
        run_build(req, &b, &varied)?;
        let mut outputs = Vec::new();
        for out in &req.outputs {
            let diff = compare(req, &a, &b, out)?;
            outputs.push(OutputVerdict {
                path: out.clone(),
                identical: diff.identical,
                because_of: Vec::new(),
                differs_unvaried: false,
                diff,
            });
        }
        if req.bisect && outputs.iter().any(|o| !o.identical) {
            // The first build's tree moves aside so that each trial runs at its very path.
            let first = base.join("a-first");
            std::fs::rename(base.join("a"), &first)
                .map_err(io(format!("moving {}", a.display())))?;
            let first_root = first.join("src");
            let trials: Vec<Option<Variation>> = std::iter::once(None)
                .chain(varied.iter().copied().map(Some))
                .collect();
            for v in trials {
                let name = v.map_or("nothing varied".to_owned(), |v| {
                    format!("{} alone", v.name())
                });
                on(VerifyEvent::Build { name });
                let c = if v == Some(Variation::Path) {
                    b.clone()
                } else {
                    a.clone()
                };
                let holder = if v == Some(Variation::Path) {
                    base.join("b")
                } else {
                    base.join("a")
                };
                if v == Some(Variation::Path) {
                    std::fs::rename(&holder, base.join("b-second"))
                        .map_err(io(format!("moving {}", holder.display())))?;
                }
                if let Some(p) = c.parent() {
                    std::fs::create_dir_all(p).map_err(io(format!("creating {}", p.display())))?;
                }
                copy_tree(
                    &req.source,
                    &c,
                    v == Some(Variation::DirOrder),
                    &exclude,
                    Path::new(""),
                )?;
                let vary: Vec<Variation> = v.into_iter().collect();
                run_build(req, &c, &vary)?;
                let mut all_differ = true;
                for o in outputs
                    .iter_mut()
                    .filter(|o| !o.identical && !o.differs_unvaried)
                {
                    let differs = !compare(req, &first_root, &c, &o.path)?.identical;
                    match v {
                        None => o.differs_unvaried = differs,
                        Some(v) if differs => o.because_of.push(v),
                        Some(_) => {}
                    }
                    all_differ &= differs;
                }
                let _ = std::fs::remove_dir_all(&holder);
                if v == Some(Variation::Path) {
                    std::fs::rename(base.join("b-second"), &holder)
                        .map_err(io(format!("moving {}", holder.display())))?;
                }
                // Nothing left to attribute once every differing output differs unvaried.
                if v.is_none() && all_differ {
                    break;
                }
            }
            std::fs::rename(&first, base.join("a"))
                .map_err(io(format!("moving {}", first.display())))?;
        }
        Ok(outputs)
    })();
    let kept = req.keep.then(|| (a.clone(), b.clone()));
    if req.keep {
        work.keep();
    }
    let outputs = result?;
    Ok(VerifyReport {
        reproducible: outputs.iter().all(|o| o.identical),
        varied,
        not_varied,
        outputs,
        kept,
    })
}
