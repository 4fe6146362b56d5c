//! `imgpipe erofs ...`: create, describe, list and extract EROFS images (crates/squashfs,
//! module `erofs`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use imgpipe_repro::seed::{Purpose, Seed};
use imgpipe_squashfs::Limits;
use imgpipe_squashfs::erofs::{ErofsBuilder, ErofsReader, ErofsWriteOptions};

use crate::cmd::inspect::{Format, InfoArgs, info};
use crate::cmd::listing::{list, print_listing};
use crate::cmd::squashfs::ExtractArgs;
use crate::flags::CreateCommon;
use crate::{output, progress, target};

/// Arguments of `imgpipe erofs`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

/// Arguments of `erofs create`.
#[derive(Debug, clap::Args)]
struct CreateArgs {
    /// The directory to pack.
    dir: PathBuf,
    /// The image to write.
    #[arg(short, long)]
    output: PathBuf,
    /// Volume name stored in the superblock (at most 16 bytes).
    #[arg(long)]
    label: Option<String>,
    /// Filesystem UUID (default: from --seed by the one seed rule; never random).
    #[arg(long)]
    uuid: Option<String>,
    /// Record every file as owned by root (as mkfs.erofs --all-root).
    #[arg(long, alias = "all-root")]
    no_owners: bool,
    /// Do not store xattrs.
    #[arg(long)]
    no_xattrs: bool,
    #[command(flatten)]
    common: CreateCommon,
    /// Print a JSON report.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Write an uncompressed EROFS image of a directory, byte-reproducibly (flat plain and
    /// inline layouts, compact or extended inodes as each entry needs).
    Create(Box<CreateArgs>),
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
        Command::Create(a) => create(*a)?,
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

/// `--uuid` as 16 bytes: 32 hex digits, dashes allowed (the seed's own text form).
fn parse_uuid(text: &str) -> anyhow::Result<[u8; 16]> {
    Seed::parse(text)
        .map(|s| s.0)
        .with_context(|| format!("--uuid {text:?}: expected 32 hex digits (dashes allowed)"))
}

fn create(a: CreateArgs) -> anyhow::Result<()> {
    let out = &a.output;
    // Everything is checked before the output is created.
    target::check_replace("-o/--output", out, a.common.force)?;
    if !a.dir.is_dir() {
        anyhow::bail!("{}: not a directory", a.dir.display());
    }
    let epoch = a.common.epoch()?;
    let label = a.label.clone().unwrap_or_default();
    if label.len() > 16 {
        anyhow::bail!("--label {label:?}: at most 16 bytes");
    }
    let uuid = match (&a.uuid, &a.common.seed) {
        (Some(u), _) => parse_uuid(u)?,
        (None, seed) => {
            let seed = match seed {
                Some(seed) => *seed,
                // No randomness: one tree, one label and one epoch give one image.
                None => Seed::from_material(format!("imgpipe erofs\0{label}\0{epoch}").as_bytes()),
            };
            seed.uuid(&Purpose::FilesystemUuid {
                label: "erofs",
                index: 0,
            })
        }
    };
    let mut opts = ErofsWriteOptions::new(epoch, uuid);
    opts.volume_name = label.into_bytes();
    opts.all_root = a.no_owners;
    opts.clamp_mtime = a.common.clamp_mtime;
    let mut scan = imgpipe_fstree::ScanOptions::default();
    scan.xattrs = !a.no_xattrs;
    // An output inside the tree is not packed (nor an older copy of it, nor our temporary).
    scan.exclude(out)?;
    scan.exclude(&imgpipe_repro::temp_path(out)?)?;
    let tree = imgpipe_fstree::scan(&a.dir, &scan)
        .with_context(|| format!("scanning {}", a.dir.display()))?;
    let mut b = ErofsBuilder::new(opts)?;
    b.add_fstree(&tree)?;
    let bar = progress::bytes(0, "writing");
    let bar2 = bar.clone();
    b.on_progress(move |p| {
        bar2.set_length(p.total);
        bar2.set_position(p.done);
    });
    let rep = target::write_buffered(out, |w| b.build(w));
    bar.finish_and_clear();
    let rep = rep?;
    if a.json {
        output::print_json(&rep)?;
    } else {
        println!(
            "{}: {}, {}, {}, {} of content in {}",
            out.display(),
            output::plural(rep.inodes, "inode", "inodes"),
            output::plural(rep.files, "file", "files"),
            output::plural(rep.dirs, "directory", "directories"),
            output::plural(rep.content_bytes, "byte", "bytes"),
            output::plural(rep.image_size, "byte", "bytes")
        );
    }
    Ok(())
}
