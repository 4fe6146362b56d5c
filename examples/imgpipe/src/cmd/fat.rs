//! `imgpipe fat ...`: subcommands over crates/gptpart (issue 5).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;

use crate::cmd::inspect::{Format, report};
use crate::output;

/// Arguments of `imgpipe fat`.
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
}

/// Runs `imgpipe fat`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Info { file, json } => {
            let r = report(&file)?;
            if r.format != Format::Fat {
                bail!("{}: not a {:?} file", file.display(), Format::Fat);
            }
            if json {
                output::print_json(&r)?;
            } else {
                output::print_json(&r.details)?;
            }
            Ok(output::exit(output::SUCCESS))
        }
    }
}
