//! `imgpipe ks ...`: validate, flatten and format kickstart files (crates/kickstart).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use imgpipe_kickstart::{Kickstart, Kind, Limits, Version};
use serde::Serialize;

use crate::cmd::inspect::{Format, report};
use crate::output;

/// Arguments of `imgpipe ks`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Describe the file (as `imgpipe inspect`, refusing other formats).
    Info {
        /// The file.
        file: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check files against a kickstart version as pykickstart does. Exit 0 when valid
    /// (warnings allowed, printed), 1 when invalid, 2 when a file cannot be read.
    // `--version` names the kickstart syntax here, not imgpipe's version.
    #[command(disable_version_flag = true)]
    Validate {
        /// Kickstart syntax version (F43, RHEL10, RHEL9, F42, F41, F40).
        #[arg(long = "version", value_name = "VERSION", default_value = "F43")]
        syntax: String,
        /// Fail on warnings and deprecations too, as `ksvalidator` does.
        #[arg(long)]
        strict: bool,
        /// Print a JSON report per file (an array when several files are given).
        #[arg(long)]
        json: bool,
        /// The files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the file with every %include and %ksappend resolved.
    Flatten {
        /// The file.
        file: PathBuf,
    },
    /// Print the canonical form: includes resolved, comments dropped, one quoting rule, and
    /// in commands valid for the version options spelled in full with `=` values.
    #[command(disable_version_flag = true)]
    Fmt {
        /// Kickstart syntax version whose option names are used.
        #[arg(long = "version", value_name = "VERSION", default_value = "F43")]
        syntax: String,
        /// The file.
        file: PathBuf,
        /// Print nothing; exit 1 when the file is not already in canonical form.
        #[arg(long)]
        check: bool,
    },
    /// Print the typed model (partitions, bootloader, network, users, packages, scripts, ...)
    /// as JSON.
    #[command(disable_version_flag = true)]
    Model {
        /// Kickstart syntax version.
        #[arg(long = "version", value_name = "VERSION", default_value = "F43")]
        syntax: String,
        /// The file.
        file: PathBuf,
    },
}

#[derive(Debug, Serialize)]
struct ErrorEntry {
    file: String,
    line: usize,
    message: String,
}

#[derive(Debug, Serialize)]
struct WarningEntry {
    file: String,
    line: usize,
    message: String,
    kind: &'static str,
}

#[derive(Debug, Serialize)]
struct FileReport {
    file: String,
    version: Version,
    valid: bool,
    errors: Vec<ErrorEntry>,
    warnings: Vec<WarningEntry>,
}

fn parse_version(name: &str) -> anyhow::Result<Version> {
    match Version::from_name(name) {
        Some(v) => Ok(v),
        None => {
            let known: Vec<&str> = Version::all().map(Version::name).collect();
            bail!(
                "unknown kickstart version {name:?} (known: {})",
                known.join(", ")
            )
        }
    }
}

fn load_strict(file: &Path) -> anyhow::Result<Kickstart> {
    let limits = Limits {
        missing_include_is_fatal: true,
        ..Limits::default()
    };
    let ks = Kickstart::load_with(file, limits)
        .with_context(|| format!("cannot read {}", file.display()))?;
    if let Some(d) = ks.problems.iter().find(|d| d.kind == Kind::ErrorFatal) {
        bail!("{}: {d}", file.display());
    }
    Ok(ks)
}

fn validate(
    version: &str,
    strict: bool,
    json: bool,
    files: &[PathBuf],
) -> anyhow::Result<ExitCode> {
    let version = parse_version(version)?;
    let mut reports = Vec::new();
    let mut unreadable = false;
    let mut invalid = false;
    for file in files {
        let ks = match Kickstart::load(file) {
            Ok(ks) => ks,
            Err(e) => {
                output::print_error(
                    &anyhow::Error::new(e).context(format!("cannot read {}", file.display())),
                );
                unreadable = true;
                continue;
            }
        };
        let r = ks.validate(version);
        let valid = if strict { r.is_clean() } else { r.is_valid() };
        invalid |= !valid;
        let report = FileReport {
            file: file.display().to_string(),
            version,
            valid,
            errors: r
                .errors()
                .map(|d| ErrorEntry {
                    file: d.location.file.clone(),
                    line: d.location.line,
                    message: d.message.clone(),
                })
                .collect(),
            warnings: r
                .warnings()
                .map(|d| WarningEntry {
                    file: d.location.file.clone(),
                    line: d.location.line,
                    message: d.message.clone(),
                    kind: d.kind.as_str(),
                })
                .collect(),
        };
        if !json {
            for d in &r.diagnostics {
                println!("{d}");
            }
            println!(
                "{}: {} for {version} ({} errors, {} warnings)",
                report.file,
                if valid { "valid" } else { "invalid" },
                report.errors.len(),
                report.warnings.len()
            );
        }
        reports.push(report);
    }
    if json {
        match reports.as_slice() {
            [one] if files.len() == 1 => output::print_json(one)?,
            many => output::print_json(&many)?,
        }
    }
    Ok(output::exit(if unreadable {
        output::INPUT_ERROR
    } else if invalid {
        output::NEGATIVE
    } else {
        output::SUCCESS
    }))
}

/// Runs `imgpipe ks`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Info { file, json } => {
            let r = report(&file)?;
            if r.format != Format::Kickstart {
                bail!("{}: not a {:?} file", file.display(), Format::Kickstart);
            }
            if json {
                output::print_json(&r)?;
            } else {
                output::print_json(&r.details)?;
            }
            Ok(output::exit(output::SUCCESS))
        }
        Command::Validate {
            syntax,
            strict,
            json,
            files,
        } => validate(&syntax, strict, json, &files),
        Command::Flatten { file } => {
            let ks = load_strict(&file)?;
            print!("{}", ks.flattened);
            Ok(output::exit(output::SUCCESS))
        }
        Command::Fmt {
            syntax,
            file,
            check,
        } => {
            let v = parse_version(&syntax)?;
            let ks = load_strict(&file)?;
            let canonical = ks.to_canonical_string_for(v);
            if check {
                let text = std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                return Ok(output::exit(if text == canonical {
                    output::SUCCESS
                } else {
                    output::NEGATIVE
                }));
            }
            print!("{canonical}");
            Ok(output::exit(output::SUCCESS))
        }
        Command::Model { syntax: v, file } => {
            let v = parse_version(&v)?;
            let ks = load_strict(&file)?;
            output::print_json(&ks.model(v))?;
            Ok(output::exit(output::SUCCESS))
        }
    }
}
