//! Benchmarks for the imgpipe crates: criterion benches (`cargo bench -p imgpipe-benches`)
//! and comparison runs against the reference C tools that print a ratio.
//!
//! This library holds what the benches share: timing a reference tool, printing a ratio,
//! running tools and making a large input tree.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Runs `program args` `runs` times and returns the best wall time.
#[allow(clippy::disallowed_methods)] // benchmarks measure wall time by design
pub fn time_tool(program: &str, args: &[&str], runs: usize) -> Option<Duration> {
    let mut best: Option<Duration> = None;
    for _ in 0..runs.max(1) {
        let start = std::time::Instant::now();
        let status = Command::new(program).args(args).output().ok()?.status;
        if !status.success() {
            return None;
        }
        let t = start.elapsed();
        best = Some(best.map_or(t, |b| b.min(t)));
    }
    best
}

/// Times `f` `runs` times and returns the best wall time.
#[allow(clippy::disallowed_methods)] // benchmarks measure wall time by design
pub fn time_ours(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut best = Duration::MAX;
    for _ in 0..runs.max(1) {
        let start = std::time::Instant::now();
        f();
        best = best.min(start.elapsed());
    }
    best
}

/// Prints `name: ours X, reference Y, ratio Z` (ratio > 1 means we are faster).
pub fn print_ratio(name: &str, ours: Duration, reference: Duration) {
    let ratio = reference.as_secs_f64() / ours.as_secs_f64().max(1e-9);
    println!(
        "{name}: ours {:.3} s, reference {:.3} s, speed ratio {ratio:.2}x",
        ours.as_secs_f64(),
        reference.as_secs_f64()
    );
}

/// Runs `cmd`, panicking with its stderr when it fails.
pub fn sh(cmd: &mut Command) {
    let o = cmd.output().expect("running a reference tool");
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Whether `tool` is on PATH.
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Copies whole subdirectories of /usr (`cp -a`, in name order, so the tree is stable) into
/// `dst` until about `limit_mb` MiB: a rootfs-like input.
pub fn copy_usr(dst: &Path, limit_mb: u64) {
    std::fs::create_dir_all(dst).unwrap();
    let mut total = 0u64;
    let mut names: Vec<_> = std::fs::read_dir("/usr")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    names.sort();
    for n in names {
        if total >= limit_mb << 20 {
            break;
        }
        sh(Command::new("cp").arg("-a").arg(&n).arg(dst));
        let du = Command::new("du").arg("-sb").arg(dst).output().unwrap();
        total = String::from_utf8_lossy(&du.stdout)
            .split_whitespace()
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
    }
}

/// The wall time of `f`.
#[allow(clippy::disallowed_methods)] // benchmarks measure wall time by design
pub fn timed(f: impl FnOnce()) -> Duration {
    let start = std::time::Instant::now();
    f();
    start.elapsed()
}

/// The median of `v` (not empty).
pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}
