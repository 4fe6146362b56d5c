//! Validating the real-world kickstart corpus (`../shared/ks-corpus`, every file and version
//! listed in its `expected.jsonl`): ours (includes followed) against `ksvalidator` (one
//! process for all files of a version, includes not followed: its cheapest mode). Prints the
//! ratio; `cargo bench -p imgpipe-benches --bench kickstart`.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use imgpipe_benches::{print_ratio, time_ours};
use imgpipe_kickstart::{Kickstart, Version};

fn corpus() -> Option<(PathBuf, Vec<(PathBuf, Version)>)> {
    let dir = imgpipe_testsupport::workspace_root().join("../shared/ks-corpus");
    let expected = std::fs::read_to_string(dir.join("expected.jsonl")).ok()?;
    let mut runs = Vec::new();
    for line in expected.lines() {
        // {"file": "...", "version": "F43", ...}
        let field = |key: &str| {
            let start = line.find(&format!("\"{key}\": \""))? + key.len() + 5;
            let end = line.get(start..)?.find('"')? + start;
            line.get(start..end).map(str::to_string)
        };
        let (Some(file), Some(version)) = (field("file"), field("version")) else {
            continue;
        };
        runs.push((dir.join(file), Version::from_name(&version)?));
    }
    Some((dir, runs))
}

fn validate_all(runs: &[(PathBuf, Version)]) -> usize {
    let mut invalid = 0;
    for (path, version) in runs {
        let ks = Kickstart::load(path).expect("corpus file readable");
        if !ks.validate(*version).is_clean() {
            invalid += 1;
        }
    }
    invalid
}

#[allow(clippy::disallowed_methods)] // benchmarks measure wall time by design
fn time_ksvalidator(ksvalidator: &PathBuf, runs: &[(PathBuf, Version)]) -> Duration {
    let start = std::time::Instant::now();
    for version in [Version::F43, Version::RHEL10] {
        let files: Vec<&PathBuf> = runs
            .iter()
            .filter(|(_, v)| *v == version)
            .map(|(p, _)| p)
            .collect();
        if files.is_empty() {
            continue;
        }
        // Exit status is the number of invalid files: not a failure here.
        let _ = Command::new(ksvalidator)
            .args(["-v", version.name()])
            .args(&files)
            .output()
            .expect("ksvalidator runs");
    }
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    let Some((_, runs)) = corpus() else {
        eprintln!("skipping: no kickstart corpus at ../shared/ks-corpus");
        return;
    };
    c.bench_function(&format!("validate {} corpus runs", runs.len()), |b| {
        b.iter(|| std::hint::black_box(validate_all(&runs)))
    });
    let ours = time_ours(5, || {
        std::hint::black_box(validate_all(&runs));
    });
    let Some(ksvalidator) = imgpipe_testsupport::tool("ksvalidator") else {
        return;
    };
    let mut theirs = Duration::MAX;
    for _ in 0..2 {
        theirs = theirs.min(time_ksvalidator(&ksvalidator, &runs));
    }
    print_ratio(
        &format!("validate the kickstart corpus ({} runs)", runs.len()),
        ours,
        theirs,
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
