//! `imgpipe fat ...`: create, list and extract FAT file systems (crates/gptpart).

use std::fs::File;
use std::io::{BufReader, BufWriter, Seek, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use imgpipe_fstree::ExtractOptions;
use imgpipe_gptpart::{FatBuilder, FatType, FatVolume, Window, read_gpt};
use serde::Serialize;

use crate::cmd::inspect::{Format, InfoArgs, info};
use crate::cmd::listing::{list, print_listing};
use crate::flags::CreateCommon;
use crate::size::parse_size;
use crate::{output, target};

/// Arguments of `imgpipe fat`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

/// Where the file system is: the whole file, or one partition of a GPT disk.
#[derive(Debug, clap::Args)]
struct Source {
    /// The FAT image, or a GPT disk with --partition.
    image: PathBuf,
    /// Read the FAT file system in this (1-based) GPT partition.
    #[arg(long, conflicts_with = "offset")]
    partition: Option<u32>,
    /// Byte offset of the file system inside the file.
    #[arg(long, default_value_t = 0, value_parser = crate::size::parse_size)]
    offset: u64,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Create a FAT12/16/32 image from a directory, reproducibly: names sorted, every timestamp
    /// from --epoch (or SOURCE_DATE_EPOCH, else 1980-01-01).
    Create {
        /// The image to write (an existing image is replaced only with --force).
        #[arg(short, long)]
        output: PathBuf,
        /// Volume size: bytes, or with a K, M, G or T suffix (KiB, MiB, ... too).
        #[arg(long, value_parser = parse_size)]
        size: u64,
        /// Volume label (up to 11 characters).
        #[arg(long, alias = "volid")]
        label: Option<String>,
        /// Volume serial number in hex, as mkfs.fat -i (default: derived from --seed, else 0).
        #[arg(long, value_parser = parse_hex_u32)]
        volume_id: Option<u32>,
        /// FAT type (default: by size, FAT32 from 512M).
        #[arg(long = "fat", value_parser = ["12", "16", "32"])]
        fat: Option<String>,
        /// Bytes per sector.
        #[arg(long, default_value = "512", value_parser = parse_sector_size)]
        sector_size: u16,
        /// Every timestamp is the epoch (--clamp-mtime is accepted; FAT stores only the epoch).
        #[command(flatten)]
        common: CreateCommon,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
        /// The directory whose contents become the volume's root.
        dir: PathBuf,
    },
    /// List every file and directory.
    Ls {
        #[command(flatten)]
        source: Source,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Extract every file and directory into DEST (created if missing).
    Extract {
        #[command(flatten)]
        source: Source,
        /// Destination directory.
        dest: PathBuf,
        /// Stop once bytes written from clusters claimed twice (cross-links written as copies)
        /// pass N times the volume's size (at least 64 MiB).
        #[arg(long, value_name = "N", default_value_t = 64)]
        max_output_ratio: u64,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Describe the image (as `imgpipe inspect`, refusing other formats): text, or JSON.
    Info(InfoArgs),
}

fn parse_sector_size(s: &str) -> Result<u16, String> {
    let n = parse_size(s)?;
    u16::try_from(n).map_err(|_| format!("{s:?} is too large"))
}

/// A writer that keeps nothing: `fat create` plans the volume into it to check every option
/// before the output file is created.
#[derive(Debug, Default)]
struct Discard(u64);

impl Write for Discard {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Seek for Discard {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        if let std::io::SeekFrom::Current(d) = pos {
            self.0 = self.0.saturating_add_signed(d);
        }
        Ok(self.0)
    }
}

fn parse_hex_u32(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s.trim_start_matches("0x"), 16).map_err(|e| format!("{s:?}: {e}"))
}

/// An opened source: a whole file or a window onto one partition.
type Reader = Window<BufReader<File>>;

fn open(src: &Source) -> anyhow::Result<FatVolume<Reader>> {
    let f = File::open(&src.image).with_context(|| format!("opening {}", src.image.display()))?;
    let mut r = BufReader::with_capacity(1 << 20, f);
    let (offset, len) = match src.partition {
        None => {
            let end = r.seek(std::io::SeekFrom::End(0))?;
            if src.offset > end {
                bail!(
                    "--offset {} is beyond the end of {} ({end} bytes)",
                    src.offset,
                    src.image.display()
                );
            }
            (src.offset, end - src.offset)
        }
        Some(n) => {
            let disk = read_gpt(&mut r)
                .with_context(|| format!("reading the GPT of {}", src.image.display()))?;
            disk.partition_range(n)
                .with_context(|| format!("{}: no partition {n}", src.image.display()))?
        }
    };
    FatVolume::open(Window::new(r, offset, len))
        .with_context(|| format!("opening the FAT file system of {}", src.image.display()))
}

/// The `fat create --json` report.
#[derive(Debug, Serialize)]
struct Created<'a> {
    boot_sector: &'a imgpipe_gptpart::FatBootSector,
    used_clusters: u32,
    files: u64,
    directories: u64,
}

/// Names the flag behind an option the FAT writer refuses.
fn flag_error(e: imgpipe_gptpart::Error) -> anyhow::Error {
    if let imgpipe_gptpart::Error::InvalidOption { what, reason } = &e {
        let flag = match *what {
            "volume label" => "--label",
            _ => return e.into(),
        };
        return anyhow::anyhow!("{flag}: {reason}");
    }
    e.into()
}

/// Runs `imgpipe fat`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Create {
            output: out,
            size,
            label,
            volume_id,
            fat,
            sector_size,
            common,
            json,
            dir,
        } => {
            target::check_replace("-o/--output", &out, common.force)?;
            if !dir.is_dir() {
                bail!("{}: not a directory", dir.display());
            }
            let volume_id = match (volume_id, &common.seed) {
                (Some(id), _) => id,
                // Partition 0: a FAT file system outside any partition table.
                (None, Some(seed)) => seed.fat_volume_id(0),
                (None, None) => 0,
            };
            let mut b = FatBuilder::new(size)
                .sector_size(sector_size)
                .epoch(common.epoch()?)
                .volume_id(volume_id);
            if let Some(l) = label {
                b = b.label(l);
            }
            b = match fat.as_deref() {
                Some("12") => b.fat_type(FatType::Fat12),
                Some("16") => b.fat_type(FatType::Fat16),
                Some("32") => b.fat_type(FatType::Fat32),
                _ => b,
            };
            // Label, size, sector size and FAT type are checked on an empty volume first.
            b.build_sparse(Discard::default()).map_err(flag_error)?;
            b.add_tree(&dir)
                .with_context(|| format!("reading {}", dir.display()))?;
            let file = target::create(&out)?;
            // A sparse file of the volume's length; free space stays a hole.
            let summary = file
                .file()
                .set_len(size - size % u64::from(sector_size.max(1)))
                .map_err(anyhow::Error::from)
                .and_then(|()| {
                    let mut w = BufWriter::with_capacity(1 << 20, file.file());
                    let s = b.build_sparse(&mut w)?;
                    w.flush()?;
                    Ok(s)
                })
                .with_context(|| format!("writing {}", out.display()))?;
            target::commit(file)?;
            let bs = &summary.boot_sector;
            if json {
                output::print_json(&Created {
                    boot_sector: bs,
                    used_clusters: summary.used_clusters,
                    files: summary.files,
                    directories: summary.directories,
                })?;
                return Ok(output::exit(output::SUCCESS));
            }
            println!(
                "{}: FAT{}, {} clusters of {} bytes, {} used; {}, {}",
                out.display(),
                bs.fat_type.bits(),
                bs.clusters,
                bs.cluster_size(),
                summary.used_clusters,
                output::plural(summary.files, "file", "files"),
                output::plural(summary.directories, "directory", "directories")
            );
            Ok(output::exit(output::SUCCESS))
        }
        Command::Ls { source, json } => {
            let vol = open(&source)?;
            let listing = list("fat", &vol)
                .with_context(|| format!("cannot list {}", source.image.display()))?;
            print_listing(&listing, json)?;
            Ok(output::exit(output::SUCCESS))
        }
        Command::Extract {
            source,
            dest,
            max_output_ratio,
            json,
        } => {
            let vol = open(&source)?;
            let mut opts = ExtractOptions::default();
            opts.max_output_ratio = max_output_ratio;
            let rep = imgpipe_fstree::extract(&vol, &dest, opts)
                .with_context(|| format!("extracting into {}", dest.display()))?;
            if json {
                output::print_json(&rep)?;
            } else {
                eprintln!(
                    "extracted {} into {}",
                    output::plural(rep.files, "file", "files"),
                    dest.display()
                );
            }
            Ok(output::exit(output::SUCCESS))
        }
        Command::Info(a) => info(a, Format::Fat),
    }
}
