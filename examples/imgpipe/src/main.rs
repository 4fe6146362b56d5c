//! `imgpipe`: a thin command line over the imgpipe crates.
//!
//! Conventions every subcommand follows:
//! - exit 0: success, identical, valid; 1: a negative answer (different, invalid, wrong
//!   passphrase); 2: usage or input error;
//! - errors go to stderr as `imgpipe: error: ...` followed by the cause chain;
//! - every report has a `--json` form;
//! - long operations show progress on a terminal and stay quiet otherwise.

mod cmd;
mod output;
mod progress;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Reproducible OS images: inspect, build and diff ISO9660, squashfs, EROFS, GPT, MBR, FAT,
/// LUKS2 and kickstart files.
#[derive(Debug, Parser)]
#[command(name = "imgpipe", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Recognise an image or kickstart file and describe it.
    Inspect(cmd::inspect::Args),
    /// Compare two builds: identical, or which byte ranges (in which structures) differ.
    Diff(cmd::diff::Args),
    /// ISO9660 images: create, list, extract.
    Iso(cmd::iso::Args),
    /// squashfs images: create, list, extract.
    Squashfs(cmd::squashfs::Args),
    /// EROFS images: describe, list (uncompressed images read in full).
    Erofs(cmd::erofs::Args),
    /// GPT disk images: create, show.
    Gpt(cmd::gpt::Args),
    /// FAT file systems: create, list, extract.
    Fat(cmd::fat::Args),
    /// LUKS2 volumes: format, dump, unlock, keyslots, payload encryption.
    Luks(cmd::luks::Args),
    /// Kickstart files: validate, flatten, format.
    Ks(cmd::ks::Args),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are successes; everything else is a usage error (exit 2).
            let code = if e.use_stderr() {
                output::INPUT_ERROR
            } else {
                output::SUCCESS
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        Command::Inspect(a) => cmd::inspect::run(a),
        Command::Diff(a) => cmd::diff::run(a),
        Command::Iso(a) => cmd::iso::run(a),
        Command::Squashfs(a) => cmd::squashfs::run(a),
        Command::Erofs(a) => cmd::erofs::run(a),
        Command::Gpt(a) => cmd::gpt::run(a),
        Command::Fat(a) => cmd::fat::run(a),
        Command::Luks(a) => cmd::luks::run(a),
        Command::Ks(a) => cmd::ks::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            output::print_error(&e);
            ExitCode::from(output::INPUT_ERROR)
        }
    }
}
