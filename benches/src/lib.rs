//! Benchmarks for the imgpipe crates: criterion benches (`cargo bench -p imgpipe-benches`)
//! and comparison runs against the reference C tools that print a ratio.
//!
//! This library holds what the benches share: timing a reference tool and printing a ratio.

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
