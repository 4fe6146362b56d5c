//! The one safe extractor: any [`FsRead`] image into a host directory.
//!
//! # Security
//! Nothing is written outside the destination, whatever the image says:
//! - every path is rebuilt below the destination from its components, each checked (no empty,
//!   `.` or `..` component, no NUL); a path seen twice is refused;
//! - an entry's parent must be a directory this extraction created (or the destination), so an
//!   image listing `a -> /etc` and then `a/passwd` is refused, never followed;
//! - files are created with `create_new`, directories with `create_dir`, and metadata is set
//!   through the open descriptor or without following symlinks;
//! - with [`ExtractOptions::refuse_link_escapes`], symlinks whose target leaves the
//!   destination (absolute, or too many `..`) are refused too;
//! - a file whose content is longer than its entry declares is an error, not a larger file.
//!
//! # Bounded output
//! The bytes written are bounded by the image ([`FsRead::image_len`]), whatever it claims:
//! - bytes stored uncompressed in ranges no earlier file claimed are written freely (they
//!   add up to at most the image's size); everything else (compressed data, ranges claimed
//!   again, content without extents) counts against a budget of
//!   [`ExtractOptions::max_output_ratio`] times the image's size (at least
//!   [`MIN_OUTPUT_BUDGET`]); holes never count;
//! - a file whose content lies in exactly the same image ranges as an earlier file's, with
//!   the same size and metadata (a deduplicated squashfs or EROFS file, ISO records sharing
//!   an extent, FAT entries sharing a cluster chain), is a copy of its own while the budget
//!   allows (as the kernel shows it), and a hard link of the earlier file once a copy would
//!   not fit (as bsdtar does), so a few kilobytes of records cannot claim gigabytes.
//!
//! # Special files
//! Device nodes are created only with [`ExtractOptions::devices`] (an image's `mem` or disk
//! node, world-writable or not, is skipped and named in [`ExtractReport::skipped_paths`]);
//! setuid and setgid bits are kept only when owners are restored.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;
use serde::Serialize;

use crate::entry::{Entry, FileType, Xattr};
use crate::error::{Error, Result};
use crate::read::{Extent, FsRead, HoleWrite};

/// The least output budget, whatever the image's size (see [`ExtractOptions::max_output_ratio`]).
pub const MIN_OUTPUT_BUDGET: u64 = 64 << 20;

/// Files with more extents than this are never matched to an earlier file's bytes.
const MAX_KEY_EXTENTS: usize = 4096;
/// Most extents remembered for matching, over all files (about 40 MiB).
const MAX_KEPT_EXTENTS: usize = 1 << 20;

/// What [`extract`] restores besides content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExtractOptions {
    /// Restore owners (needs root).
    pub owners: bool,
    /// Restore xattrs (`security.*` and `trusted.*` need root).
    pub xattrs: bool,
    /// Refuse symlinks whose target leaves the destination.
    pub refuse_link_escapes: bool,
    /// Create fifos and sockets, and device nodes when [`devices`](Self::devices) is set too
    /// (they need root; when the host refuses them they are counted as skipped).
    pub special_files: bool,
    /// Create character and block device nodes (default: skipped and reported, since an
    /// untrusted image can hold a world-writable `mem` or disk node).
    pub devices: bool,
    /// Output budget, as a multiple of the image's size, for bytes that are not the image's
    /// own uncompressed bytes claimed once (see the [module docs](self)); default 64.
    pub max_output_ratio: u64,
    /// The least output budget whatever the image's size; default [`MIN_OUTPUT_BUDGET`]
    /// (a caller extracting many tiny untrusted images, such as a fuzzer, lowers it).
    pub min_output_budget: u64,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        Self {
            owners: false,
            xattrs: false,
            refuse_link_escapes: false,
            special_files: true,
            devices: false,
            max_output_ratio: 64,
            min_output_budget: MIN_OUTPUT_BUDGET,
        }
    }
}

impl ExtractOptions {
    /// Options restoring everything the image holds: owners, xattrs, set-id bits and device
    /// nodes (what root wants from an image it trusts).
    pub fn full() -> Self {
        Self {
            owners: true,
            xattrs: true,
            devices: true,
            ..Self::default()
        }
    }
}

/// Counts of what an extraction created.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExtractReport {
    /// Directories (the root included).
    pub dirs: u64,
    /// Regular files (first names).
    pub files: u64,
    /// Further hard links.
    pub hard_links: u64,
    /// Symlinks.
    pub symlinks: u64,
    /// Devices, fifos, sockets.
    pub special: u64,
    /// Special files skipped (not asked for, or refused by the host).
    pub skipped: u64,
    /// Image paths of the skipped special files (the first 1000).
    pub skipped_paths: Vec<String>,
    /// Files written as hard links of an earlier file whose bytes they share in the image
    /// (counted in `hard_links` too).
    pub shared_extents: u64,
    /// Content bytes written.
    pub bytes: u64,
}

impl ExtractReport {
    fn skip(&mut self, path: &[u8]) {
        self.skipped += 1;
        if self.skipped_paths.len() < 1000 {
            self.skipped_paths
                .push(format!("/{}", String::from_utf8_lossy(path)));
        }
    }
}

/// Disjoint image ranges claimed by the files written so far.
#[derive(Default)]
struct Claimed(BTreeMap<u64, u64>);

impl Claimed {
    fn overlaps(&self, start: u64, end: u64) -> bool {
        // Ranges are disjoint, so only the last one starting before `end` can overlap.
        self.0
            .range(..end)
            .next_back()
            .is_some_and(|(_, &e)| e > start)
    }

    /// Claims every extent when all are stored uncompressed and none overlaps a claimed
    /// range (nor another of them); says whether it did.
    fn claim_fresh(&mut self, extents: &[Extent]) -> bool {
        let mut sorted: Vec<(u64, u64)> = Vec::with_capacity(extents.len());
        for x in extents {
            let Some(end) = x.image_offset.checked_add(x.stored_len) else {
                return false;
            };
            if x.compressed || x.stored_len != x.len || self.overlaps(x.image_offset, end) {
                return false;
            }
            sorted.push((x.image_offset, end));
        }
        sorted.sort_unstable();
        if sorted.windows(2).any(|w| match w {
            [a, b] => b.0 < a.1,
            _ => false,
        }) {
            return false;
        }
        for (s, e) in sorted {
            if e > s {
                self.0.insert(s, e);
            }
        }
        true
    }
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Whether a symlink at `entry` (image path) pointing at `target` leaves the root.
pub fn link_escapes(entry: &[u8], target: &[u8]) -> bool {
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

/// The host path of image path `path` below `dest`, each component checked.
fn host_path(dest: &Path, path: &[u8]) -> Result<PathBuf> {
    let mut p = dest.to_path_buf();
    if path.is_empty() {
        return Ok(p);
    }
    for c in path.split(|&b| b == b'/') {
        if c.is_empty() || c == b"." || c == b".." || c.contains(&0) {
            return Err(Error::Escape {
                path: path.to_vec(),
                reason: "invalid path component",
            });
        }
        p.push(OsStr::from_bytes(c));
    }
    Ok(p)
}

fn parent_of(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|&c| c == b'/') {
        Some(i) => path.get(..i).unwrap_or_default(),
        None => b"",
    }
}

/// Extracts every entry of `reader` below `dest` (created if missing; existing directories
/// are reused, any other existing path is an error). File contents are written in parallel
/// on the current rayon pool; runs of zero blocks become holes. See the
/// [module docs](self) for what is refused.
pub fn extract<R>(reader: &R, dest: &Path, opts: ExtractOptions) -> Result<ExtractReport>
where
    R: FsRead + Sync,
{
    extract_with_progress(reader, dest, opts, &|_| {})
}

/// [`extract`], calling `progress` with the content bytes of each file as it is written
/// (from the writer threads).
pub fn extract_with_progress<R>(
    reader: &R,
    dest: &Path,
    opts: ExtractOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<ExtractReport>
where
    R: FsRead + Sync,
{
    let entries = reader.walk().map_err(Error::reader)?;
    let mut report = ExtractReport::default();
    fs::create_dir_all(dest).map_err(io("creating", dest))?;
    let mut targets = Vec::with_capacity(entries.len());
    let mut seen: BTreeSet<&[u8]> = BTreeSet::new();
    let mut dirs: BTreeSet<&[u8]> = BTreeSet::new();
    let mut first_link: BTreeMap<u64, usize> = BTreeMap::new();
    // (entry, whether its bytes count against the output budget)
    let mut primaries: Vec<(usize, bool)> = Vec::new();
    let mut links = Vec::new();
    // First file by (extents, size, metadata): a later one with the same key is a copy while
    // the budget allows, then a link.
    let mut by_extents: HashMap<(Vec<Extent>, u64, crate::entry::Metadata), usize> = HashMap::new();
    let mut claimed = Claimed::default();
    let mut kept_extents = 0usize;
    let budget = reader.image_len().map(|n| {
        n.saturating_mul(opts.max_output_ratio)
            .max(opts.min_output_budget)
    });
    let spent = AtomicU64::new(0);
    // Bytes of the files planned so far that count against the budget.
    let mut planned = 0u64;
    let over = |planned: u64| budget.is_some_and(|b| planned > b);
    // Entries whose metadata the last pass restores by path (files get theirs through their
    // open descriptor while being written, in parallel).
    let mut by_path = vec![false; entries.len()];
    for (i, (e, _)) in entries.iter().enumerate() {
        let p = host_path(dest, &e.path)?;
        targets.push(p.clone());
        if !seen.insert(&e.path) {
            return Err(Error::Refused {
                path: e.path.clone(),
                reason: "the image lists this path twice",
            });
        }
        if e.path.is_empty() {
            if e.file_type != FileType::Dir {
                return Err(Error::Refused {
                    path: e.path.clone(),
                    reason: "the root is not a directory",
                });
            }
            dirs.insert(&e.path);
            report.dirs += 1;
            by_path[i] = true;
            continue;
        }
        if !dirs.contains(parent_of(&e.path)) {
            return Err(Error::Escape {
                path: e.path.clone(),
                reason: "its parent is not a directory extracted before it",
            });
        }
        match e.file_type {
            FileType::Dir => {
                if let Err(err) = fs::create_dir(&p) {
                    let is_dir = fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir());
                    if err.kind() != std::io::ErrorKind::AlreadyExists || !is_dir {
                        return Err(io("creating directory", &p)(err));
                    }
                }
                dirs.insert(&e.path);
                report.dirs += 1;
                by_path[i] = true;
            }
            FileType::File => {
                if let Some(id) = e.link {
                    if let Some(&j) = first_link.get(&id) {
                        // Identity comes from the image: names of one file must agree on
                        // what the file is, or the later one's content would be lost.
                        let same = entries
                            .get(j)
                            .is_some_and(|(f, _)| f.size == e.size && f.meta == e.meta);
                        if !same {
                            return Err(Error::Refused {
                                path: e.path.clone(),
                                reason: "a hard link whose size or metadata differs from its first name",
                            });
                        }
                        links.push((j, i));
                        continue;
                    }
                    first_link.insert(id, i);
                }
                // Where the image stores the bytes decides whether they count against the
                // output budget, or make this file a link of an earlier one.
                let extents = match entries.get(i) {
                    Some((_, node)) if e.size > 0 => reader.extents(node).map_err(Error::reader)?,
                    _ => None,
                };
                match extents {
                    Some(x) if !x.is_empty() => {
                        let fresh = claimed.claim_fresh(&x);
                        // Only short extent lists are remembered, and only so many in all:
                        // the map stays small whatever the image claims.
                        if !fresh {
                            planned = planned.saturating_add(e.size);
                        }
                        if x.len() > MAX_KEY_EXTENTS || kept_extents >= MAX_KEPT_EXTENTS {
                            primaries.push((i, !fresh));
                            continue;
                        }
                        let n = x.len();
                        let key = (x, e.size, e.meta.clone());
                        if e.link.is_none()
                            && over(planned)
                            && let Some(&j) = by_extents.get(&key)
                        {
                            // A copy would not fit: a link of the first file, costing nothing.
                            planned = planned.saturating_sub(e.size);
                            links.push((j, i));
                            report.shared_extents += 1;
                            continue;
                        }
                        kept_extents += n;
                        by_extents.entry(key).or_insert(i);
                        primaries.push((i, !fresh));
                    }
                    _ => {
                        planned = planned.saturating_add(e.size);
                        primaries.push((i, e.size > 0));
                    }
                }
            }
            FileType::Symlink => {
                let t = e.target.as_deref().unwrap_or_default();
                if opts.refuse_link_escapes && link_escapes(&e.path, t) {
                    return Err(Error::Escape {
                        path: e.path.clone(),
                        reason: "symlink target leaves the destination",
                    });
                }
                std::os::unix::fs::symlink(OsStr::from_bytes(t), &p)
                    .map_err(io("creating symlink", &p))?;
                report.symlinks += 1;
                by_path[i] = true;
            }
            FileType::Char | FileType::Block | FileType::Fifo | FileType::Socket => {
                let device = matches!(e.file_type, FileType::Char | FileType::Block);
                if !opts.special_files || (device && !opts.devices) {
                    report.skip(&e.path);
                    continue;
                }
                use rustix::fs::{CWD, FileType as Ft, Mode, makedev, mknodat};
                let (major, minor) = e.rdev.unwrap_or((0, 0));
                let (ft, dev) = match e.file_type {
                    FileType::Block => (Ft::BlockDevice, makedev(major, minor)),
                    FileType::Char => (Ft::CharacterDevice, makedev(major, minor)),
                    FileType::Socket => (Ft::Socket, 0),
                    _ => (Ft::Fifo, 0),
                };
                match mknodat(CWD, &p, ft, Mode::from_raw_mode(0o600), dev) {
                    Ok(()) => {
                        report.special += 1;
                        by_path[i] = true;
                    }
                    Err(rustix::io::Errno::PERM) => report.skip(&e.path),
                    Err(err) => return Err(io("creating special file", &p)(err.into())),
                }
            }
        }
    }
    let written: Result<Vec<u64>> = primaries
        .par_iter()
        .map(|&(i, counted)| {
            let (Some((e, node)), Some(p)) = (entries.get(i), targets.get(i)) else {
                return Ok(0);
            };
            let f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(p)
                .map_err(io("creating file", p))?;
            let mut w = SparseWriter::new(&f, e.size);
            if counted && let Some(limit) = budget {
                w.budget = Some((&spent, limit));
            }
            let n = match reader.read_content_holes(node, &mut w) {
                Ok(n) => n,
                Err(err) => {
                    if let Some(source) = w.error.take() {
                        return Err(w.into_error(source, e, p));
                    }
                    return Err(Error::reader(err));
                }
            };
            if let Some(source) = w.error.take() {
                return Err(w.into_error(source, e, p));
            }
            if w.at != n || n != e.size {
                return Err(Error::Refused {
                    path: e.path.clone(),
                    reason: "content length differs from the entry's size",
                });
            }
            if w.hole_at_end {
                f.set_len(n).map_err(io("sizing", p))?;
            }
            restore_on_fd(e, &f, p, opts)?;
            progress(n);
            Ok(n)
        })
        .collect();
    report.bytes = written?.iter().sum();
    report.files = primaries.len() as u64;
    for &(j, i) in &links {
        if let (Some(from), Some(to)) = (targets.get(j), targets.get(i)) {
            fs::hard_link(from, to).map_err(io("creating hard link", to))?;
            report.hard_links += 1;
        }
    }
    // Metadata last and children first, so read-only directories and mtimes stick.
    for (i, _) in by_path.iter().enumerate().rev().filter(|(_, b)| **b) {
        if let (Some((e, _)), Some(p)) = (entries.get(i), targets.get(i)) {
            restore_on_path(e, p, opts)?;
        }
    }
    Ok(report)
}

/// The output budget of [`extract_in_sandbox`], as a multiple of the image's size.
#[doc(hidden)]
pub const SANDBOX_OUTPUT_RATIO: u64 = 4;
/// The least output budget of [`extract_in_sandbox`] (1 MiB: fuzz inputs are small, and
/// writing the default 64 MiB floor on some runs would dominate the campaign).
#[doc(hidden)]
pub const SANDBOX_MIN_OUTPUT_BUDGET: u64 = 1 << 20;

/// The body of the extraction fuzz targets: extracts `reader` into `sandbox/inner/out` with
/// the default options but a small output budget ([`SANDBOX_OUTPUT_RATIO`] times the image,
/// at least [`SANDBOX_MIN_OUTPUT_BUDGET`]), on the calling thread, and panics when anything
/// appears in `sandbox` or `sandbox/inner` besides the way down to `out` (an entry written
/// outside its destination). Returns the extraction's result; the caller removes `sandbox`.
#[doc(hidden)]
#[allow(clippy::panic)]
pub fn extract_in_sandbox<R>(reader: &R, sandbox: &Path) -> Result<ExtractReport>
where
    R: FsRead + Sync,
{
    let inner = sandbox.join("inner");
    fs::create_dir_all(&inner).map_err(io("creating", &inner))?;
    let out = inner.join("out");
    let opts = ExtractOptions {
        max_output_ratio: SANDBOX_OUTPUT_RATIO,
        min_output_budget: SANDBOX_MIN_OUTPUT_BUDGET,
        ..ExtractOptions::default()
    };
    // Files are written on this thread: handing each run's few small files to a pool's
    // threads costs more than writing them.
    thread_local! {
        static INLINE: Option<rayon::ThreadPool> = match rayon::current_thread_index() {
            Some(_) => None,
            None => rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .use_current_thread()
                .build()
                .ok(),
        };
    }
    let r = INLINE.with(|pool| match pool {
        Some(pool) => pool.install(|| extract(reader, &out, opts)),
        None => extract(reader, &out, opts),
    });
    // The one host walker looks at the sandbox, leaving the destination out.
    let mut opts = crate::scan::ScanOptions {
        xattrs: false,
        max_depth: 2,
        ..Default::default()
    };
    opts.exclude(&out)?;
    let seen: Vec<Vec<u8>> = crate::scan::scan(sandbox, &opts)?
        .iter()
        .map(|n| n.entry.path.clone())
        .collect();
    if seen != [b"".to_vec(), b"inner".to_vec()] {
        panic!("extraction wrote outside its destination: {seen:?} in {sandbox:?}");
    }
    r
}

/// Writes at increasing positions of a file, leaving whole zero blocks as holes, and
/// refusing to go past the declared size.
struct SparseWriter<'f> {
    file: &'f fs::File,
    at: u64,
    limit: u64,
    hole_at_end: bool,
    error: Option<std::io::Error>,
    too_long: bool,
    /// The bytes written so far by every counted file, and their limit.
    budget: Option<(&'f AtomicU64, u64)>,
    over_budget: bool,
}

const HOLE_BLOCK: usize = 4096;
/// Compared with `==` (one `memcmp`), fast even unoptimised.
static ZERO_BLOCK: &[u8] = &[0; HOLE_BLOCK];

impl<'f> SparseWriter<'f> {
    fn new(file: &'f fs::File, limit: u64) -> Self {
        Self {
            file,
            at: 0,
            limit,
            hole_at_end: false,
            error: None,
            too_long: false,
            budget: None,
            over_budget: false,
        }
    }

    fn into_error(self, source: std::io::Error, e: &Entry, p: &Path) -> Error {
        if let (true, Some((_, limit))) = (self.over_budget, self.budget) {
            Error::LimitExceeded {
                what: "bytes extracted (the image's size times max_output_ratio)",
                limit,
            }
        } else if self.too_long {
            Error::Refused {
                path: e.path.clone(),
                reason: "content is longer than the entry's size",
            }
        } else {
            io("writing", p)(source)
        }
    }

    fn put(&mut self, buf: &[u8]) -> std::io::Result<()> {
        // Aligned whole blocks of zeros are skipped; every run of other bytes between them is
        // written with one call.
        let mut i = 0;
        let mut run_start = 0;
        while i < buf.len() {
            let pos = self.at + i as u64;
            let to_boundary = HOLE_BLOCK - (pos % HOLE_BLOCK as u64) as usize;
            let end = (i + to_boundary).min(buf.len());
            let piece = buf.get(i..end).unwrap_or_default();
            if piece == ZERO_BLOCK {
                self.write_run(buf, run_start, i)?;
                run_start = end;
                self.hole_at_end = true;
            } else {
                self.hole_at_end = false;
            }
            i = end;
        }
        self.write_run(buf, run_start, buf.len())?;
        self.at += buf.len() as u64;
        Ok(())
    }

    /// Writes `buf[from..to]` at its place in the file (nothing when empty).
    fn write_run(&mut self, buf: &[u8], from: usize, to: usize) -> std::io::Result<()> {
        match buf.get(from..to) {
            Some(run) if !run.is_empty() => {
                if let Some((spent, limit)) = self.budget {
                    let n = run.len() as u64;
                    if spent.fetch_add(n, Ordering::Relaxed).saturating_add(n) > limit {
                        self.over_budget = true;
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::FileTooLarge,
                            "output budget exceeded",
                        ));
                    }
                }
                self.file.write_all_at(run, self.at + from as u64)
            }
            _ => Ok(()),
        }
    }
}

impl HoleWrite for SparseWriter<'_> {
    fn hole(&mut self, len: u64) -> std::io::Result<()> {
        let end = self.at.saturating_add(len);
        if end > self.limit {
            self.too_long = true;
            let e = std::io::Error::new(std::io::ErrorKind::InvalidData, "content too long");
            self.error = Some(std::io::Error::new(e.kind(), "content too long"));
            return Err(e);
        }
        if len > 0 {
            self.at = end;
            self.hole_at_end = true;
        }
        Ok(())
    }
}

impl Write for SparseWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.at.saturating_add(buf.len() as u64) > self.limit {
            self.too_long = true;
            let e = std::io::Error::new(std::io::ErrorKind::InvalidData, "content too long");
            self.error = Some(std::io::Error::new(e.kind(), "content too long"));
            return Err(e);
        }
        if let Err(e) = self.put(buf) {
            self.error = Some(std::io::Error::new(e.kind(), e.to_string()));
            return Err(e);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The permission bits to restore: setuid and setgid only with the image's owners (kept
/// on a file the extracting user owns, they would grant that user's rights).
fn mode_of(e: &Entry, opts: ExtractOptions) -> u32 {
    if opts.owners {
        e.meta.mode & 0o7777
    } else {
        e.meta.mode & 0o1777
    }
}

fn xattrs_of(e: &Entry, opts: ExtractOptions) -> &[Xattr] {
    if opts.xattrs { &e.meta.xattrs } else { &[] }
}

/// Through a regular file's open descriptor, in the order chown, xattrs, chmod (chown clears
/// set-id bits), times.
fn restore_on_fd(e: &Entry, f: &fs::File, p: &Path, opts: ExtractOptions) -> Result<()> {
    if opts.owners {
        std::os::unix::fs::fchown(f, Some(e.meta.uid), Some(e.meta.gid)).map_err(io("chown", p))?;
    }
    for (name, value) in xattrs_of(e, opts) {
        rustix::fs::fsetxattr(
            f,
            OsStr::from_bytes(name),
            value,
            rustix::fs::XattrFlags::empty(),
        )
        .map_err(|err| io("setting xattrs on", p)(err.into()))?;
    }
    f.set_permissions(fs::Permissions::from_mode(mode_of(e, opts)))
        .map_err(io("chmod", p))?;
    let t = rustix::fs::Timespec {
        tv_sec: e.meta.mtime,
        tv_nsec: i64::from(e.meta.mtime_nsec.min(999_999_999)) as _,
    };
    rustix::fs::futimens(
        f,
        &rustix::fs::Timestamps {
            last_access: t,
            last_modification: t,
        },
    )
    .map_err(|err| io("setting mtime on", p)(err.into()))
}

/// By path, never following a symlink (directories, symlinks, special files).
fn restore_on_path(e: &Entry, p: &Path, opts: ExtractOptions) -> Result<()> {
    if opts.owners {
        std::os::unix::fs::lchown(p, Some(e.meta.uid), Some(e.meta.gid)).map_err(io("chown", p))?;
    }
    for (name, value) in xattrs_of(e, opts) {
        rustix::fs::lsetxattr(
            p,
            OsStr::from_bytes(name),
            value,
            rustix::fs::XattrFlags::empty(),
        )
        .map_err(|err| io("setting xattrs on", p)(err.into()))?;
    }
    if e.file_type != FileType::Symlink {
        fs::set_permissions(p, fs::Permissions::from_mode(mode_of(e, opts)))
            .map_err(io("chmod", p))?;
    }
    let t = rustix::fs::Timespec {
        tv_sec: e.meta.mtime,
        tv_nsec: i64::from(e.meta.mtime_nsec.min(999_999_999)) as _,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::Metadata;
    use crate::read::Holds;

    #[test]
    fn escapes() {
        assert!(link_escapes(b"a", b"/etc"));
        assert!(link_escapes(b"a", b".."));
        assert!(link_escapes(b"d/a", b"../../x"));
        assert!(!link_escapes(b"d/a", b"../x"));
        assert!(!link_escapes(b"d/a", b"e/../f"));
        assert!(link_escapes(b"d/a", b"e/../../../f"));
    }

    /// An in-memory image: entries and their contents, in the order given.
    struct Fake(Vec<(Entry, Vec<u8>)>);

    #[derive(Debug, thiserror::Error)]
    #[error("fake reader failed")]
    struct FakeError;

    impl FsRead for Fake {
        type Node = usize;
        type Error = FakeError;
        fn holds(&self) -> Holds {
            Holds::POSIX
        }
        fn walk(&self) -> std::result::Result<Vec<(Entry, usize)>, FakeError> {
            Ok(self
                .0
                .iter()
                .enumerate()
                .map(|(i, (e, _))| (e.clone(), i))
                .collect())
        }
        fn read_content(
            &self,
            node: &usize,
            out: &mut dyn Write,
        ) -> std::result::Result<u64, FakeError> {
            let body = &self.0.get(*node).ok_or(FakeError)?.1;
            out.write_all(body).map_err(|_| FakeError)?;
            Ok(body.len() as u64)
        }
    }

    fn dir(path: &str) -> (Entry, Vec<u8>) {
        (
            Entry::new(path, FileType::Dir, Metadata::new(0o755, 1_000)),
            Vec::new(),
        )
    }

    fn file(path: &str, body: &[u8]) -> (Entry, Vec<u8>) {
        let mut e = Entry::new(path, FileType::File, Metadata::new(0o640, 2_000));
        e.size = body.len() as u64;
        (e, body.to_vec())
    }

    fn link(path: &str, target: &str) -> (Entry, Vec<u8>) {
        let mut e = Entry::new(path, FileType::Symlink, Metadata::new(0o777, 0));
        e.target = Some(target.as_bytes().to_vec());
        e.size = target.len() as u64;
        (e, Vec::new())
    }

    #[test]
    fn extracts_files_links_holes_and_metadata() {
        let t = tempfile::tempdir().unwrap();
        let mut sparse = vec![0u8; 3 * HOLE_BLOCK];
        sparse[HOLE_BLOCK + 7] = 1;
        let (mut a, body) = file("d/a", b"hello");
        a.link = Some(1);
        let (mut b, _) = file("d/b", b"hello");
        b.link = Some(1);
        let img = Fake(vec![
            dir(""),
            dir("d"),
            (a, body.clone()),
            (b, body),
            file("d/sparse", &sparse),
            link("l", "d/a"),
        ]);
        let dest = t.path().join("out");
        let r = extract(&img, &dest, ExtractOptions::default()).unwrap();
        assert_eq!((r.dirs, r.files, r.hard_links, r.symlinks), (2, 2, 1, 1));
        assert_eq!(r.bytes, 5 + sparse.len() as u64);
        assert_eq!(fs::read(dest.join("d/b")).unwrap(), b"hello");
        assert_eq!(fs::read(dest.join("d/sparse")).unwrap(), sparse);
        use std::os::unix::fs::MetadataExt;
        let m = fs::metadata(dest.join("d/a")).unwrap();
        assert_eq!((m.mode() & 0o7777, m.mtime(), m.nlink()), (0o640, 2_000, 2));
        assert_eq!(fs::metadata(dest.join("d")).unwrap().mtime(), 1_000);
        assert_eq!(
            fs::read_link(dest.join("l")).unwrap(),
            Path::new("d/a").to_path_buf()
        );
        // Extracting again into the same place refuses to overwrite files.
        assert!(extract(&img, &dest, ExtractOptions::default()).is_err());
    }

    #[test]
    fn refuses_every_escape() {
        let cases: Vec<(&str, Fake)> = vec![
            (
                "through a symlink",
                Fake(vec![dir(""), link("a", "/tmp"), file("a/x", b"1")]),
            ),
            ("dot-dot", Fake(vec![dir(""), file("../x", b"1")])),
            ("orphan", Fake(vec![dir(""), file("nodir/x", b"1")])),
            (
                "duplicate",
                Fake(vec![dir(""), file("x", b"1"), file("x", b"2")]),
            ),
            ("empty component", Fake(vec![dir(""), file("a//x", b"1")])),
            ("file as root", Fake(vec![file("", b"1")])),
        ];
        for (what, img) in cases {
            let t = tempfile::tempdir().unwrap();
            let dest = t.path().join("out");
            assert!(
                extract(&img, &dest, ExtractOptions::default()).is_err(),
                "{what}"
            );
            assert!(!t.path().join("x").exists(), "{what}");
        }
        let t = tempfile::tempdir().unwrap();
        let img = Fake(vec![dir(""), link("l", "../../etc")]);
        let opts = ExtractOptions {
            refuse_link_escapes: true,
            ..ExtractOptions::default()
        };
        assert!(matches!(
            extract(&img, t.path(), opts),
            Err(Error::Escape { .. })
        ));
    }

    #[test]
    fn hard_links_that_disagree_are_refused() {
        let (mut a, body) = file("a", b"one");
        a.link = Some(5);
        let (mut b, other) = file("b", b"other");
        b.link = Some(5);
        let t = tempfile::tempdir().unwrap();
        let err = extract(
            &Fake(vec![dir(""), (a, body), (b, other)]),
            t.path(),
            ExtractOptions::default(),
        );
        assert!(matches!(err, Err(Error::Refused { .. })), "{err:?}");
    }

    #[test]
    fn content_longer_or_shorter_than_declared_is_refused() {
        let (mut e, body) = file("x", b"0123456789");
        e.size = 4;
        let t = tempfile::tempdir().unwrap();
        let err = extract(
            &Fake(vec![dir(""), (e, body)]),
            t.path(),
            ExtractOptions::default(),
        );
        assert!(matches!(err, Err(Error::Refused { .. })), "{err:?}");
        let (mut e, body) = file("y", b"01");
        e.size = 4;
        let err = extract(
            &Fake(vec![dir(""), (e, body)]),
            t.path(),
            ExtractOptions::default(),
        );
        assert!(matches!(err, Err(Error::Refused { .. })), "{err:?}");
    }

    #[test]
    fn devices_only_when_asked_and_set_id_bits_only_with_owners() {
        let mut mem = Entry::new("mem", FileType::Char, Metadata::new(0o666, 0));
        mem.rdev = Some((1, 1));
        let (mut su, body) = file("su", b"#!/bin/sh\n");
        su.meta.mode = 0o4755;
        let img = Fake(vec![dir(""), (mem, Vec::new()), (su, body)]);
        let t = tempfile::tempdir().unwrap();
        let dest = t.path().join("out");
        let r = extract(&img, &dest, ExtractOptions::default()).unwrap();
        assert_eq!((r.special, r.skipped), (0, 1));
        assert_eq!(r.skipped_paths, ["/mem"]);
        assert!(fs::symlink_metadata(dest.join("mem")).is_err());
        use std::os::unix::fs::MetadataExt;
        let m = fs::metadata(dest.join("su")).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o755);
    }

    /// A reader whose every file claims the same image range and no size for the image.
    struct Shared(Vec<(Entry, Vec<u8>)>, u64);

    impl FsRead for Shared {
        type Node = usize;
        type Error = FakeError;
        fn holds(&self) -> Holds {
            Holds::POSIX
        }
        fn walk(&self) -> std::result::Result<Vec<(Entry, usize)>, FakeError> {
            Fake(self.0.clone()).walk()
        }
        fn read_content(
            &self,
            node: &usize,
            out: &mut dyn Write,
        ) -> std::result::Result<u64, FakeError> {
            Fake(self.0.clone()).read_content(node, out)
        }
        fn extents(&self, node: &usize) -> std::result::Result<Option<Vec<Extent>>, FakeError> {
            let len = self.0.get(*node).ok_or(FakeError)?.1.len() as u64;
            Ok(Some(vec![Extent {
                file_offset: 0,
                len,
                image_offset: 0,
                stored_len: len,
                compressed: false,
            }]))
        }
        fn image_len(&self) -> Option<u64> {
            Some(self.1)
        }
    }

    #[test]
    fn shared_regions_become_links_or_count_against_the_budget() {
        let body = vec![7u8; 1 << 20];
        let image = |dates: i64| {
            let mut entries = vec![dir("")];
            for i in 0..100 {
                let (mut e, b) = file(&format!("f{i:03}"), &body);
                e.meta.mtime += i64::from(i) % dates;
                entries.push((e, b));
            }
            Shared(entries, 1 << 20)
        };
        let t = tempfile::tempdir().unwrap();
        // Two dates: copies while the 64 MiB budget allows (as the kernel shows such files),
        // then the other names are links of the first file of their date.
        let r = extract(&image(2), &t.path().join("a"), ExtractOptions::default()).unwrap();
        assert_eq!(r.files + r.shared_extents, 100, "{r:?}");
        assert!(r.shared_extents >= 30, "{r:?}");
        assert!(r.bytes <= MIN_OUTPUT_BUDGET + (1 << 20), "{r:?}");
        // A few shared files within the budget (a deduplicated image) are separate files.
        let few = Shared(image(1).0.into_iter().take(4).collect(), 1 << 20);
        let r = extract(&few, &t.path().join("c"), ExtractOptions::default()).unwrap();
        assert_eq!(
            (r.files, r.shared_extents, r.hard_links),
            (3, 0, 0),
            "{r:?}"
        );
        // A date per name: 100 copies of a 1 MiB image pass the 64 MiB budget.
        let err = extract(&image(100), &t.path().join("b"), ExtractOptions::default());
        assert!(matches!(err, Err(Error::LimitExceeded { .. })), "{err:?}");
    }

    #[test]
    #[should_panic(expected = "outside its destination")]
    fn the_sandbox_check_sees_a_stray_file() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(t.path().join("inner")).unwrap();
        fs::write(t.path().join("inner/stray"), b"x").unwrap();
        let _ = extract_in_sandbox(&Fake(vec![dir(""), file("a", b"1")]), t.path());
    }
}
