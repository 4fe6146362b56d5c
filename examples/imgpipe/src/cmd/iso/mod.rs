//! `imgpipe iso ...`: create, list and extract ISO9660 images (crates/isofs).

mod create;

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use imgpipe_fstree::ExtractOptions;
use imgpipe_gptpart::Window;
use imgpipe_isofs::{Limits, Namespace, Reader};

use crate::cmd::inspect::{Format, InfoArgs, info};
use crate::cmd::listing::{list, print_listing};
use crate::output;

/// Arguments of `imgpipe iso`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum NamespaceArg {
    /// Rock Ridge if present, else Joliet, else plain ISO9660.
    Auto,
    /// Rock Ridge.
    Rock,
    /// Joliet.
    Joliet,
    /// Plain ISO9660 names.
    Iso,
}

impl NamespaceArg {
    fn get(self) -> Option<Namespace> {
        match self {
            Self::Auto => None,
            Self::Rock => Some(Namespace::RockRidge),
            Self::Joliet => Some(Namespace::Joliet),
            Self::Iso => Some(Namespace::Iso9660),
        }
    }
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Describe the image (as `imgpipe inspect`, refusing other formats): text, or JSON.
    Info(InfoArgs),
    /// Write a reproducible image of a directory.
    Create(Box<create::CreateArgs>),
    /// List every entry: path, type, mode, uid, gid, size, mtime, link target.
    Ls {
        /// The image.
        image: PathBuf,
        /// Byte offset of the image inside the file.
        #[arg(long, default_value_t = 0, value_parser = crate::size::parse_size)]
        offset: u64,
        /// Which directory tree to read.
        #[arg(long, value_enum, default_value = "auto")]
        namespace: NamespaceArg,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Extract every entry into DEST (never writing outside it).
    Extract {
        /// The image.
        image: PathBuf,
        /// Byte offset of the image inside the file.
        #[arg(long, default_value_t = 0, value_parser = crate::size::parse_size)]
        offset: u64,
        /// The destination directory (created; existing paths inside are never replaced).
        dest: PathBuf,
        /// Which directory tree to read.
        #[arg(long, value_enum, default_value = "auto")]
        namespace: NamespaceArg,
        #[command(flatten)]
        owners: crate::flags::Owners,
        #[command(flatten)]
        bounds: crate::flags::ExtractBounds,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn open(
    image: &PathBuf,
    offset: u64,
    ns: NamespaceArg,
) -> anyhow::Result<Reader<Window<BufReader<File>>>> {
    let f = File::open(image).with_context(|| format!("cannot open {}", image.display()))?;
    let len = f
        .metadata()
        .with_context(|| format!("cannot open {}", image.display()))?
        .len();
    if offset > len {
        bail!(
            "--offset {offset} is beyond the end of {} ({len} bytes)",
            image.display()
        );
    }
    let window = Window::new(BufReader::new(f), offset, len - offset);
    Reader::open_with(window, Limits::default(), ns.get())
        .with_context(|| format!("cannot read {}", image.display()))
}

/// Runs `imgpipe iso`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Info(a) => info(a, Format::Iso9660),
        Command::Create(a) => create::create(*a),
        Command::Ls {
            image,
            offset,
            namespace,
            json,
        } => {
            let r = open(&image, offset, namespace)?;
            let listing =
                list("iso9660", &r).with_context(|| format!("cannot list {}", image.display()))?;
            print_listing(&listing, json)?;
            Ok(output::exit(output::SUCCESS))
        }
        Command::Extract {
            image,
            offset,
            dest,
            namespace,
            owners,
            bounds,
            json,
        } => {
            let r = open(&image, offset, namespace)?;
            let mut opts = ExtractOptions::default();
            opts.owners = owners.get();
            bounds.apply(&mut opts);
            let rep = imgpipe_fstree::extract(&r, &dest, opts)
                .with_context(|| format!("cannot extract {}", image.display()))?;
            crate::flags::report_skipped(&rep);
            if json {
                output::print_json(&rep)?;
            } else {
                println!(
                    "{}, {} ({}), {}, {}, {}",
                    output::plural(rep.dirs, "directory", "directories"),
                    output::plural(rep.files, "file", "files"),
                    output::plural(rep.bytes, "byte", "bytes"),
                    output::plural(rep.hard_links, "hard link", "hard links"),
                    output::plural(rep.symlinks, "symlink", "symlinks"),
                    output::plural(rep.special, "special file", "special files")
                );
            }
            Ok(output::exit(output::SUCCESS))
        }
    }
}
