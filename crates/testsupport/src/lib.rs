//! Test support shared by the imgpipe crates: run reference tools, build trees with tricky
//! content, compare two trees.
//!
//! Reference tools are required under `CI=true`: [`tool`] panics when one is missing there,
//! and returns `None` (the test skips with a message) on a developer machine.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub mod boot;
mod trees;
pub use trees::{EVERY_KIND_CONTENTS, every_kind_tree, file_entry, one_entry_tree};

/// Whether we run under CI (`CI=true`), where missing reference tools are failures.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Finds `name` on `PATH` (and in /usr/sbin, /sbin). Under CI a missing tool panics; elsewhere
/// it prints a skip notice and returns `None`.
pub fn tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path).chain(["/usr/sbin".into(), "/sbin".into()]);
    for dir in dirs {
        let candidate = dir.join(name);
        if candidate
            .metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        {
            return Some(candidate);
        }
    }
    assert!(
        !in_ci(),
        "reference tool `{name}` is missing under CI=true; the test command installs it"
    );
    eprintln!("skipping: reference tool `{name}` not installed (run scripts/test.sh)");
    None
}

/// `NAME=value` as the test command (`scripts/test.sh`) sets it, read when this crate is
/// compiled: the script and the tests cannot name two versions or two configurations.
fn test_command_setting(name: &str) -> &'static str {
    const SCRIPT: &str = include_str!("../../../scripts/test.sh");
    SCRIPT
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix('='))
        .and_then(|value| value.split('#').next())
        .map(|value| value.trim().trim_matches('"'))
        .unwrap_or_else(|| panic!("scripts/test.sh no longer sets {name}"))
}

/// The erofs-utils version the test command builds from source (Debian 12 ships 1.5, without
/// lzma, deflate, zstd, fragments or dedupe): `EROFS_UTILS_VERSION` in `scripts/test.sh`.
pub fn erofs_utils_version() -> &'static str {
    test_command_setting("EROFS_UTILS_VERSION")
}

/// How the test command configures that build (written to `configured-with` beside `bin`):
/// blocks up to 64 KiB, so that fsck.erofs checks images with blocks above the page size.
/// `EROFS_UTILS_CONFIG` in `scripts/test.sh`.
pub fn erofs_utils_config() -> &'static str {
    test_command_setting("EROFS_UTILS_CONFIG")
}

/// One erofs-utils program (`mkfs.erofs`, `fsck.erofs`, `dump.erofs`) of
/// [`erofs_utils_version`]: from `$IMGPIPE_EROFS_UTILS` (set by the test command), else from
/// the workspace's `.tools/erofs-utils-VERSION/bin`, built with [`erofs_utils_config`]. Missing
/// (or an older build without that configuration) under CI panics, as [`tool`] does.
pub fn erofs_utils(name: &str) -> Option<PathBuf> {
    let (version, config) = (erofs_utils_version(), erofs_utils_config());
    let dir = std::env::var_os("IMGPIPE_EROFS_UTILS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../..")
                .join(format!(".tools/erofs-utils-{version}/bin"))
        });
    let candidate = dir.join(name);
    let configured = fs::read_to_string(dir.join("../configured-with")).unwrap_or_default();
    if candidate.is_file() && configured.trim() == config {
        return Some(candidate);
    }
    assert!(
        !in_ci(),
        "erofs-utils {version} `{name}` with {config} is missing under \
         CI=true; the test command builds it"
    );
    eprintln!(
        "skipping: erofs-utils {version} `{name}` not built with {config} \
         (run scripts/test.sh)"
    );
    None
}

/// Whether we are root (device nodes, loop mounts and fifos owned by others need it).
pub fn is_root() -> bool {
    // SAFETY-free: `id -u` keeps this crate free of unsafe code.
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// Unmounts `mnt`, trying again for up to 5 s while the kernel says it is busy (a process
/// forked by a test running alongside can hold it for a moment); panics with umount's
/// message if it never succeeds.
pub fn unmount(mnt: &Path) {
    if let Err(e) = try_unmount(mnt) {
        panic!("{e}");
    }
}

/// [`unmount`] without the panic, for `Drop`: the error says the mount point and umount's
/// message.
pub fn try_unmount(mnt: &Path) -> Result<(), String> {
    let mut last = String::new();
    for _ in 0..50 {
        let out = run_status("umount", [mnt]);
        if out.status.success() {
            return Ok(());
        }
        last = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Err(format!("umount {}: {last}", mnt.display()))
}

/// Runs `program args...`, panicking with its output if it fails to start or exits non-zero.
pub fn run<I, S>(program: impl AsRef<OsStr>, args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = run_status(program, args);
    assert!(
        out.status.success(),
        "command failed with {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `program args...` and returns its output whatever the exit status.
pub fn run_status<I, S>(program: impl AsRef<OsStr>, args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let program = program.as_ref();
    let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    Command::new(program)
        .args(&args)
        .env("LC_ALL", "C")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program:?} {args:?}: {e}"))
}

/// Runs a command and returns its stdout as text (panics on failure).
pub fn stdout_of<I, S>(program: impl AsRef<OsStr>, args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    String::from_utf8_lossy(&run(program, args).stdout).into_owned()
}

/// What a tricky tree may contain beyond regular files and directories.
#[derive(Debug, Clone, Copy)]
pub struct TreeOptions {
    /// Create a FIFO (and, as root, character and block device nodes).
    pub special_files: bool,
    /// Create a hard link pair.
    pub hard_links: bool,
    /// Create a sparse 4 MiB file with data at both ends.
    pub sparse: bool,
    /// Depth of the deep directory chain (ISO9660 relocates beyond 8).
    pub depth: usize,
    /// mtime given to every entry.
    pub mtime: i64,
}

impl Default for TreeOptions {
    fn default() -> Self {
        Self {
            special_files: true,
            hard_links: true,
            sparse: true,
            depth: 10,
            mtime: 1_700_000_000,
        }
    }
}

/// Builds a tree with tricky content under `root` (which must exist and be empty): nested
/// directories, long and unicode names, empty files, symlinks (relative, absolute, dangling),
/// hard links, a sparse file, odd permissions, a deep chain, and with [`TreeOptions`] a FIFO
/// and device nodes (root only). Every mtime is set to `opts.mtime`.
pub fn tricky_tree(root: &Path, opts: TreeOptions) {
    let w = |p: &str, data: &[u8], mode: u32| {
        let path = root.join(p);
        fs::create_dir_all(path.parent().unwrap_or(root)).unwrap();
        fs::File::create(&path).unwrap().write_all(data).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    };
    w("README", b"imgpipe test tree\n", 0o644);
    w("empty", b"", 0o644);
    w("bin/tool", b"#!/bin/sh\necho tool\n", 0o755);
    w("etc/secret", b"top secret\n", 0o600);
    w("etc/setuid-ish", b"x", 0o4755);
    w("data/big.bin", &pattern(300_000), 0o644);
    w("data/block-exact.bin", &pattern(131_072), 0o644);
    w("data/small.txt", b"small\n", 0o644);
    w("data/dup-a.txt", b"same content\n", 0o644);
    w("data/dup-b.txt", b"same content\n", 0o644);
    let long = "l".repeat(200);
    w(&format!("names/{long}"), b"long name\n", 0o644);
    w(
        "names/unicode-\u{00e9}t\u{00e9}-\u{65e5}\u{672c}.txt",
        b"unicode\n",
        0o644,
    );
    w("names/with space & 'quotes'", b"spaces\n", 0o644);
    w("names/UPPER.lower.Mixed.ext", b"case\n", 0o644);
    fs::create_dir_all(root.join("emptydir")).unwrap();
    let mut deep = root.join("deep");
    for i in 0..opts.depth {
        deep = deep.join(format!("d{i}"));
    }
    fs::create_dir_all(&deep).unwrap();
    fs::write(deep.join("bottom.txt"), b"deep\n").unwrap();
    symlink("bin/tool", root.join("link-relative")).unwrap();
    symlink("/etc/hostname", root.join("link-absolute")).unwrap();
    symlink("does/not/exist", root.join("link-dangling")).unwrap();
    symlink("../README", root.join("names/link-up")).unwrap();
    if opts.hard_links {
        fs::hard_link(
            root.join("data/small.txt"),
            root.join("data/small-hardlink.txt"),
        )
        .unwrap();
    }
    if opts.sparse {
        let f = fs::File::create(root.join("data/sparse.img")).unwrap();
        f.set_len(4 << 20).unwrap();
        use std::os::unix::fs::FileExt;
        f.write_all_at(b"start", 0).unwrap();
        f.write_all_at(b"end", (4 << 20) - 3).unwrap();
    }
    if opts.special_files {
        run("mkfifo", [root.join("fifo")]);
        if is_root() {
            run(
                "mknod",
                [
                    root.join("chardev").as_os_str(),
                    "c".as_ref(),
                    "1".as_ref(),
                    "3".as_ref(),
                ],
            );
            run(
                "mknod",
                [
                    root.join("blockdev").as_os_str(),
                    "b".as_ref(),
                    "7".as_ref(),
                    "0".as_ref(),
                ],
            );
        }
    }
    set_mtimes(root, opts.mtime);
}

/// Deterministic, poorly compressible content.
pub fn pattern(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..len)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            if i % 7 == 0 { b'a' } else { (x >> 24) as u8 }
        })
        .collect()
}

/// Deterministic noise (xorshift from `seed`): no compressor shrinks it, as data already
/// compressed (gzip, PNG, xz) resists them.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

/// Sets every mtime below `root` (not following links) with `touch -h`.
pub fn set_mtimes(root: &Path, mtime: i64) {
    let stamp = format!("@{mtime}");
    let out = run_status("find", [root.as_os_str()]);
    let list = String::from_utf8_lossy(&out.stdout).into_owned();
    let paths: Vec<&str> = list.lines().collect();
    for chunk in paths.chunks(200) {
        let mut args: Vec<&str> = vec!["-h", "-d", &stamp];
        args.extend(chunk);
        run("touch", args);
    }
}

/// What [`describe_tree`] records per path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryFacts {
    /// `d`, `f`, `l`, `p`, `c`, `b`, `s`.
    pub kind: char,
    /// Permission bits incl. setuid/setgid/sticky.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// mtime in seconds (directories included).
    pub mtime: i64,
    /// File size for regular files.
    pub size: u64,
    /// sha256 of a regular file's content.
    pub sha256: Option<String>,
    /// Symlink target.
    pub link: Option<PathBuf>,
    /// Device number for device nodes.
    pub rdev: u64,
}

/// Which facts a comparison looks at.
#[derive(Debug, Clone, Copy)]
pub struct Compare {
    /// Compare owners.
    pub owner: bool,
    /// Compare mtimes.
    pub mtime: bool,
    /// Compare directory mtimes too.
    pub dir_mtime: bool,
    /// Compare permission bits.
    pub mode: bool,
}

impl Default for Compare {
    fn default() -> Self {
        Self {
            owner: true,
            mtime: true,
            dir_mtime: true,
            mode: true,
        }
    }
}

/// Describes every entry below `root`, keyed by relative path.
pub fn describe_tree(root: &Path) -> BTreeMap<PathBuf, EntryFacts> {
    use sha2::{Digest, Sha256};
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let m = fs::symlink_metadata(&path).unwrap();
            let ft = m.file_type();
            use std::os::unix::fs::FileTypeExt;
            let kind = if ft.is_dir() {
                'd'
            } else if ft.is_symlink() {
                'l'
            } else if ft.is_fifo() {
                'p'
            } else if ft.is_char_device() {
                'c'
            } else if ft.is_block_device() {
                'b'
            } else if ft.is_socket() {
                's'
            } else {
                'f'
            };
            let sha256 = (kind == 'f').then(|| {
                let data = fs::read(&path).unwrap();
                Sha256::digest(&data)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect()
            });
            out.insert(
                path.strip_prefix(root).unwrap().to_path_buf(),
                EntryFacts {
                    kind,
                    mode: m.mode() & 0o7777,
                    uid: m.uid(),
                    gid: m.gid(),
                    mtime: m.mtime(),
                    size: if kind == 'f' { m.len() } else { 0 },
                    sha256,
                    link: (kind == 'l').then(|| fs::read_link(&path).unwrap()),
                    rdev: if matches!(kind, 'c' | 'b') {
                        m.rdev()
                    } else {
                        0
                    },
                },
            );
            if kind == 'd' {
                stack.push(path);
            }
        }
    }
    out
}

/// Compares two trees and returns one line per difference (empty when equal).
pub fn diff_trees(a: &Path, b: &Path, what: Compare) -> Vec<String> {
    let (ta, tb) = (describe_tree(a), describe_tree(b));
    let mut diffs = Vec::new();
    for (path, fa) in &ta {
        let Some(fb) = tb.get(path) else {
            diffs.push(format!("only in first: {}", path.display()));
            continue;
        };
        let p = path.display();
        if fa.kind != fb.kind {
            diffs.push(format!("{p}: kind {} vs {}", fa.kind, fb.kind));
            continue;
        }
        if fa.sha256 != fb.sha256 || fa.size != fb.size {
            diffs.push(format!("{p}: content differs"));
        }
        if fa.link != fb.link {
            diffs.push(format!("{p}: link {:?} vs {:?}", fa.link, fb.link));
        }
        if fa.rdev != fb.rdev {
            diffs.push(format!("{p}: rdev {} vs {}", fa.rdev, fb.rdev));
        }
        if what.mode && fa.kind != 'l' && fa.mode != fb.mode {
            diffs.push(format!("{p}: mode {:o} vs {:o}", fa.mode, fb.mode));
        }
        if what.owner && (fa.uid, fa.gid) != (fb.uid, fb.gid) {
            diffs.push(format!(
                "{p}: owner {}:{} vs {}:{}",
                fa.uid, fa.gid, fb.uid, fb.gid
            ));
        }
        if what.mtime && (fa.kind != 'd' || what.dir_mtime) && fa.mtime != fb.mtime {
            diffs.push(format!("{p}: mtime {} vs {}", fa.mtime, fb.mtime));
        }
    }
    for path in tb.keys().filter(|p| !ta.contains_key(*p)) {
        diffs.push(format!("only in second: {}", path.display()));
    }
    diffs
}

/// A fresh temporary directory.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// The workspace root (for `fuzz/corpus` and committed golden files).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every input of a fuzz target's corpus and regression set: the files under
/// `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/`, sorted by path. CI replays them
/// as ordinary tests; a target with an empty corpus is an error (the seeds are committed).
pub fn fuzz_inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let root = workspace_root().join("fuzz");
    let mut files = Vec::new();
    for dir in [
        root.join("corpus").join(target),
        root.join("regressions").join(target),
    ] {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_file() {
                files.push(p);
            }
        }
    }
    files.sort();
    assert!(
        !files.is_empty(),
        "fuzz target {target} has no committed corpus"
    );
    files
        .into_iter()
        .map(|p| {
            let data = fs::read(&p).unwrap();
            (p, data)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tricky_tree_equals_its_copy_and_differs_after_a_change() {
        let t = tempdir();
        let (a, b) = (t.path().join("a"), t.path().join("b"));
        fs::create_dir(&a).unwrap();
        tricky_tree(&a, TreeOptions::default());
        run("cp", ["-a".as_ref(), a.as_os_str(), b.as_os_str()]);
        assert_eq!(diff_trees(&a, &b, Compare::default()), Vec::<String>::new());
        fs::write(b.join("data/small.txt"), b"changed\n").unwrap();
        fs::remove_file(b.join("empty")).unwrap();
        let d = diff_trees(
            &a,
            &b,
            Compare {
                mtime: false,
                ..Compare::default()
            },
        );
        assert!(d.iter().any(|l| l.contains("small.txt: content")), "{d:?}");
        assert!(d.iter().any(|l| l == "only in first: empty"), "{d:?}");
    }

    #[test]
    fn the_test_commands_erofs_settings_are_read() {
        let version = erofs_utils_version();
        assert!(
            version.split('.').count() == 3 && version.split('.').all(|p| p.parse::<u32>().is_ok()),
            "{version:?}"
        );
        assert!(
            erofs_utils_config().starts_with("MAX_BLOCK_SIZE="),
            "{:?}",
            erofs_utils_config()
        );
    }
}
