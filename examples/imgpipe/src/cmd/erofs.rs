//! `imgpipe erofs ...`: describe and list EROFS images (crates/squashfs, module `erofs`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use imgpipe_squashfs::Limits;
use imgpipe_squashfs::erofs::ErofsReader;

use crate::cmd::inspect::{Format, InfoArgs, info};
use crate::cmd::listing::{list, print_listing};
use crate::cmd::squashfs::ExtractArgs;
use crate::output;

/// Arguments of `imgpipe erofs`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Describe the image (as `imgpipe inspect`, refusing other formats): text, or JSON.
    Info(InfoArgs),
    /// List every entry: type and mode, owner, size, mtime (UTC), path, link target.
    /// Uncompressed images are read in full; compressed files are listed, not read.
    Ls {
        /// The image.
        image: PathBuf,
        /// Byte offset of the image inside the file.
        #[arg(long, default_value_t = 0, value_parser = crate::size::parse_size)]
        offset: u64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Extract the image below DEST (created if missing); nothing is written outside DEST.
    Extract(ExtractArgs),
}

/// Runs `imgpipe erofs`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Info(a) => {
            return info(a, Format::Erofs);
        }
        Command::Ls {
            image,
            offset,
            json,
        } => {
            let r = open(&image, offset)?;
            let listing =
                list("erofs", &r).with_context(|| format!("cannot list {}", image.display()))?;
            print_listing(&listing, json)?;
        }
        Command::Extract(x) => {
            let r = open(&x.image, x.offset)?;
            let rep = r
                .extract(&x.dest, x.options())
                .with_context(|| format!("extracting to {}", x.dest.display()))?;
            x.print(&rep)?;
        }
    }
    Ok(output::exit(output::SUCCESS))
}

fn open(image: &std::path::Path, offset: u64) -> anyhow::Result<ErofsReader> {
    let f = std::fs::File::open(image).with_context(|| format!("opening {}", image.display()))?;
    ErofsReader::open_at(f, offset, Limits::default())
        .with_context(|| format!("reading {}", image.display()))
}
