//! `imgpipe gpt ...`: create and show GPT disk images (crates/gptpart).

use std::fs::{File, OpenOptions};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use imgpipe_gptpart::{GptDisk, read_gpt};
use imgpipe_repro::{DiskPlan, DiskRequest};

use crate::cmd::inspect::{Format, InfoArgs, info};
use crate::flags::CreateCommon;
use crate::{output, target};

/// Arguments of `imgpipe gpt`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Create a GPT disk image: protective MBR, both headers, partitions and their contents.
    ///
    /// Every GUID derives from --seed the way systemd-repart derives them, so one seed and one
    /// layout give identical bytes.
    Create(CreateArgs),
    /// Show a GPT disk: disk GUID, sector size, and every partition.
    Show {
        /// The disk image.
        image: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Grow a GPT disk image to SIZE: extends the file and moves the backup header and
    /// entries to the new end (as `sgdisk -e` after `truncate`). Also repairs a damaged copy.
    Grow {
        /// The disk image.
        image: PathBuf,
        /// The new size (not smaller than the current one).
        #[arg(long, value_parser = parse_size)]
        size: u64,
        /// Print the grown table as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Describe the image (as `imgpipe inspect`, refusing other formats): text, or JSON.
    Info(InfoArgs),
}

#[derive(Debug, clap::Args)]
struct CreateArgs {
    /// The image to write (an existing image is replaced only with --force).
    #[arg(short, long)]
    output: PathBuf,
    /// Disk size: bytes, or with a K, M, G or T suffix (powers of 1024; KiB, MiB, ... too).
    #[arg(long, value_parser = parse_size)]
    size: u64,
    /// Logical sector size.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u64).range(512..=4096))]
    sector_size: u64,
    /// Explicit disk GUID instead of the derived one.
    #[arg(long)]
    disk_guid: Option<String>,
    /// Partition alignment.
    #[arg(long, value_parser = parse_size, default_value = "1M")]
    alignment: u64,
    /// --seed: 128-bit seed (32 hex digits, dashes allowed) every GUID derives from, as
    /// systemd-repart's --seed (default: derived from the layout arguments); --epoch:
    /// timestamps inside generated file systems.
    #[command(flatten)]
    common: CreateCommon,
    /// Mirror partitions into a hybrid MBR: `N:TYPE[:boot]` with TYPE in hex (e.g. `1:ef:boot`).
    #[arg(long = "hybrid-mbr", value_delimiter = ',')]
    hybrid_mbr: Vec<String>,
    /// A partition: `type=ALIAS|GUID,size=SIZE|rest[,label=NAME][,guid=GUID]
    /// [,flags=F+F][,fat=DIR][,fat-type=12|16|32][,file=PATH]`. Flags: required,
    /// no-block-io, legacy-bios-bootable, grow-fs, read-only, no-auto, bit:N.
    #[arg(long = "part", required = true)]
    parts: Vec<String>,
    /// Print the created layout as JSON.
    #[arg(long)]
    json: bool,
}

pub use crate::size::parse_size;

fn create(a: CreateArgs) -> anyhow::Result<ExitCode> {
    target::check_replace("-o/--output", &a.output, a.common.force)?;
    let mut req = DiskRequest::new(a.size);
    req.sector_size = a.sector_size;
    req.alignment = a.alignment;
    req.epoch = a.common.epoch()?;
    req.seed = a.common.seed;
    req.disk_guid = match &a.disk_guid {
        Some(g) => Some(g.parse().context("--disk-guid")?),
        None => None,
    };
    req.parts = a.parts.clone();
    req.hybrid_mbr = a.hybrid_mbr;
    let plan = DiskPlan::parse(&req)?;
    // The sources of partition contents are checked before the image is created.
    for p in &req.parts {
        match imgpipe_repro::parse_part(p)?.1 {
            imgpipe_repro::Contents::Fat { dir, .. } if !dir.is_dir() => {
                bail!("--part {p:?}: fat={}: not a directory", dir.display())
            }
            imgpipe_repro::Contents::File(f) if f.is_dir() || !f.exists() => {
                bail!("--part {p:?}: file={}: not a file", f.display())
            }
            _ => {}
        }
    }
    let file = target::create(&a.output)?;
    write_disk(file.file(), &plan).with_context(|| format!("writing {}", a.output.display()))?;
    let disk = read_gpt(file.file()).context("reading the written table back")?;
    target::commit(file)?;
    if a.json {
        output::print_json(&disk)?;
    } else {
        print_disk(&disk);
    }
    Ok(output::exit(output::SUCCESS))
}

fn write_disk(f: &File, plan: &DiskPlan) -> anyhow::Result<()> {
    let bar = crate::progress::bytes(plan.content_bytes(), "writing");
    plan.write_to(f, &mut |n| bar.inc(n))?;
    bar.finish_and_clear();
    Ok(())
}

fn print_disk(d: &GptDisk) {
    print!("{}", crate::cmd::describe::gpt_text(d));
}

/// Runs `imgpipe gpt`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Create(a) => create(a),
        Command::Show { image, json } => {
            let f = File::open(&image).with_context(|| format!("opening {}", image.display()))?;
            let d =
                read_gpt(f).with_context(|| format!("reading the GPT of {}", image.display()))?;
            if json {
                output::print_json(&d)?;
            } else {
                print_disk(&d);
            }
            if let Some(p) = &d.primary_problem {
                eprintln!("imgpipe: warning: primary GPT damaged ({p}); used the backup");
            }
            Ok(output::exit(output::SUCCESS))
        }
        Command::Grow { image, size, json } => {
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&image)
                .with_context(|| format!("opening {}", image.display()))?;
            let d = imgpipe_gptpart::relocate_backup(&f, size)
                .with_context(|| format!("growing {}", image.display()))?;
            f.sync_all()?;
            if json {
                output::print_json(&d)?;
            } else {
                print_disk(&d);
            }
            Ok(output::exit(output::SUCCESS))
        }
        Command::Info(a) => info(a, Format::Gpt),
    }
}
