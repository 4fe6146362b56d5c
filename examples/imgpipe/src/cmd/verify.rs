//! `imgpipe verify --output PATH... -- BUILD_COMMAND...`: the reproducibility gate as one
//! command (imgpipe_repro::verify builds twice under variations and compares).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use imgpipe_repro::verify::{Variation, VerifyEvent, VerifyReport, VerifyRequest, verify};

use crate::{output, progress};

/// Arguments of `imgpipe verify`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// An output of the build to compare, relative to the build directory (repeatable).
    #[arg(long = "output", short = 'o', value_name = "PATH", required = true)]
    outputs: Vec<PathBuf>,
    /// What the second build varies, comma-separated: path, umask, tz, locale, dir-order,
    /// cpus, env, clock (default: all).
    #[arg(long, value_delimiter = ',', value_parser = parse_variation)]
    variations: Vec<Variation>,
    /// A path below the current directory not to copy (repeatable), e.g. `target`.
    #[arg(long, value_name = "PATH")]
    exclude: Vec<PathBuf>,
    /// Where the copies go (a fresh directory is made inside). Default: /dev/shm when three
    /// copies of the source fit in half its free space (on a tmpfs directory order can be
    /// varied), else the system's temporary directory.
    #[arg(long, value_name = "DIR")]
    work: Option<PathBuf>,
    /// Keep both build trees inside DIR.
    #[arg(long, value_name = "DIR", conflicts_with = "work")]
    keep: Option<PathBuf>,
    /// When outputs differ, do not try each variation alone to say which ones matter.
    #[arg(long)]
    no_bisect: bool,
    /// Print a JSON report.
    #[arg(long)]
    json: bool,
    /// Unlock the LUKS2 volumes inside the outputs with the passphrase in FILE (its bytes
    /// exactly), so that a difference inside an encrypted payload names the files (as
    /// `diff --passphrase-file`).
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
    #[command(flatten)]
    budget: super::luks::KdfBudget,
    /// The build command, run in the root of each copy.
    #[arg(last = true, required = true, value_name = "BUILD_COMMAND")]
    command: Vec<OsString>,
}

fn parse_variation(s: &str) -> Result<Variation, String> {
    Variation::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = Variation::ALL.iter().map(|v| v.name()).collect();
        format!("unknown variation {s:?} (one of {})", names.join(", "))
    })
}

/// Where Debian's libfaketime puts its library.
const FAKETIME: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
    "/usr/lib64/faketime/libfaketime.so.1",
];

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// /dev/shm when three copies of the source (two builds, and a third while bisecting) take
/// at most half its free space: a tmpfs keeps creation order in directory listings, so
/// directory order can vary. Else the system's temporary directory (on disk, not in memory).
fn default_work(source: &std::path::Path, exclude: &[PathBuf]) -> anyhow::Result<PathBuf> {
    let shm = PathBuf::from("/dev/shm");
    let free = rustix::fs::statvfs(&shm)
        .ok()
        .filter(|_| shm.is_dir())
        .map(|s| s.f_bavail.saturating_mul(s.f_frsize));
    if let Some(free) = free {
        let bytes = imgpipe_repro::verify::source_bytes(source, exclude)?;
        if bytes.saturating_mul(3) <= free / 2 {
            return Ok(shm);
        }
    }
    Ok(std::env::temp_dir())
}

/// Runs `imgpipe verify`.
pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let source = std::env::current_dir()?;
    let mut req = VerifyRequest::new(&source, a.command.clone(), a.outputs.clone());
    if !a.variations.is_empty() {
        req.variations = a.variations.clone();
    }
    req.exclude = a.exclude.clone();
    if let Some(k) = &a.keep {
        std::fs::create_dir_all(k)?;
        req.work = k.clone();
        req.keep = true;
    } else {
        req.work = match &a.work {
            Some(w) => w.clone(),
            None => default_work(&source, &a.exclude)?,
        };
    }
    req.faketime = FAKETIME.iter().map(PathBuf::from).find(|p| p.is_file());
    req.faketime_program = req.faketime.as_ref().and_then(|_| on_path("faketime"));
    req.taskset = on_path("taskset");
    req.cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    req.bisect = !a.no_bisect;
    if let Some(f) = &a.passphrase_file {
        let p = std::fs::read(f)
            .with_context(|| format!("--passphrase-file: cannot read {}", f.display()))?;
        let keys = imgpipe_repro::Passphrases::same(p).with_limits(a.budget.limits());
        req.passphrases = Some(std::sync::Arc::new(keys));
    }
    let spin = progress::spinner("building");
    // The report says what was not varied; the spinner names the build running.
    let rep = verify(&req, &mut |e| {
        if let VerifyEvent::Build { name } = e {
            spin.set_message(format!("build: {name}"));
        }
    });
    spin.finish_and_clear();
    let rep = match rep {
        Err(imgpipe_repro::Error::WrongPassphrase { second, layer }) => {
            let build = if second { "second" } else { "first" };
            anyhow::bail!(
                "--passphrase-file: opens no keyslot of the LUKS2 volume {layer} in the {build} build's output"
            );
        }
        r => r?,
    };
    if a.json {
        output::print_json(&rep)?;
    } else {
        print(&rep);
    }
    Ok(output::exit(if rep.reproducible {
        output::SUCCESS
    } else {
        output::NEGATIVE
    }))
}

fn names(vs: &[Variation]) -> String {
    vs.iter().map(|v| v.name()).collect::<Vec<_>>().join(", ")
}

fn print(rep: &VerifyReport) {
    let varied = names(&rep.varied);
    if rep.reproducible {
        let outs: Vec<String> = rep
            .outputs
            .iter()
            .map(|o| o.path.display().to_string())
            .collect();
        println!("reproducible: {} identical under {varied}", outs.join(", "));
    } else {
        println!("not reproducible (varied: {varied}):");
        for o in &rep.outputs {
            if o.identical {
                println!("  {}: identical", o.path.display());
                continue;
            }
            let why = if o.differs_unvaried {
                "; differs between two builds with nothing varied (the clock, randomness, a race)"
                    .to_owned()
            } else if o.because_of.is_empty() {
                String::new()
            } else {
                format!("; because of {}", names(&o.because_of))
            };
            println!(
                "  {}: {} of {} bytes differ{why}",
                o.path.display(),
                o.diff.differing_bytes,
                o.diff.len_a.max(o.diff.len_b)
            );
            if let Some(n) = &o.diff.files {
                super::diff::print_files(n, "    ");
            }
        }
    }
    for (v, why) in &rep.not_varied {
        println!("  {} not varied: {why}", v.name());
    }
    if let Some((a, b)) = &rep.kept {
        println!("  kept: {} and {}", a.display(), b.display());
    }
}
