//! `imgpipe fat ...`: create, list and extract FAT file systems (crates/gptpart).

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use imgpipe_gptpart::{FatBuilder, FatType, FatVolume, Window, read_gpt};
use serde::Serialize;

use crate::cmd::gpt::{human, parse_size};
use crate::cmd::inspect::{Format, InfoArgs, info};
use crate::output;

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
    #[arg(long)]
    partition: Option<u32>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Create a FAT12/16/32 image from a directory, reproducibly: names sorted, every timestamp
    /// from --epoch (or SOURCE_DATE_EPOCH, else 1980-01-01).
    Create {
        /// The image to write (replaced if it exists).
        #[arg(short, long)]
        output: PathBuf,
        /// Volume size: bytes, or with a K, M, G or T suffix.
        #[arg(long, value_parser = parse_size)]
        size: u64,
        /// Volume label (up to 11 characters).
        #[arg(long)]
        label: Option<String>,
        /// Volume serial number in hex (default 0).
        #[arg(long, value_parser = parse_hex_u32)]
        volume_id: Option<u32>,
        /// FAT type (default: by size, FAT32 from 512M).
        #[arg(long = "fat", value_parser = ["12", "16", "32"])]
        fat: Option<String>,
        /// Bytes per sector.
        #[arg(long, default_value_t = 512)]
        sector_size: u16,
        /// Timestamp of every entry, Unix seconds.
        #[arg(long)]
        epoch: Option<u64>,
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
    },
    /// Describe the image (as `imgpipe inspect`, refusing other formats): text, or JSON.
    Info(InfoArgs),
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
        None => (0, r.seek(std::io::SeekFrom::End(0))?),
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

#[derive(Debug, Serialize)]
struct Listing {
    label: Option<String>,
    volume_id: String,
    fat_type: FatType,
    entries: Vec<ListedEntry>,
}

#[derive(Debug, Serialize)]
struct ListedEntry {
    path: String,
    short_name: String,
    is_dir: bool,
    size: u32,
    modified: Option<u64>,
}

fn ls<R: Read + Seek>(mut vol: FatVolume<R>, json: bool) -> anyhow::Result<()> {
    let all = vol.walk()?;
    let listing = Listing {
        label: vol.label().map(str::to_string),
        volume_id: format!("{:08X}", vol.boot_sector().volume_id),
        fat_type: vol.boot_sector().fat_type,
        entries: all
            .into_iter()
            .map(|(path, e)| ListedEntry {
                path,
                short_name: e.short_name,
                is_dir: e.is_dir,
                size: e.size,
                modified: e.modified,
            })
            .collect(),
    };
    if json {
        return output::print_json(&listing);
    }
    let mut out = std::io::stdout().lock();
    for e in &listing.entries {
        let kind = if e.is_dir { 'd' } else { '-' };
        let size = if e.is_dir {
            "-".into()
        } else {
            human(u64::from(e.size))
        };
        let when = e.modified.map_or_else(|| "-".to_string(), utc);
        writeln!(
            out,
            "{kind} {size:>8} {when:>19}  {}{}",
            e.path,
            if e.is_dir { "/" } else { "" }
        )?;
    }
    Ok(())
}

/// `YYYY-MM-DD HH:MM:SS` in UTC (FAT stores no zone; we write UTC).
fn utc(t: u64) -> String {
    let (days, secs) = (t / 86_400, t % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
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
            epoch,
            dir,
        } => {
            if !dir.is_dir() {
                bail!("{}: not a directory", dir.display());
            }
            let mut b = FatBuilder::new(size)
                .sector_size(sector_size)
                .epoch(output::epoch(epoch)?.0)
                .volume_id(volume_id.unwrap_or(0));
            if let Some(l) = label {
                b = b.label(l);
            }
            b = match fat.as_deref() {
                Some("12") => b.fat_type(FatType::Fat12),
                Some("16") => b.fat_type(FatType::Fat16),
                Some("32") => b.fat_type(FatType::Fat32),
                _ => b,
            };
            b.add_tree(&dir)
                .with_context(|| format!("reading {}", dir.display()))?;
            let f = File::create(&out).with_context(|| format!("creating {}", out.display()))?;
            // A sparse file of the volume's length; free space stays a hole.
            f.set_len(size - size % u64::from(sector_size.max(1)))?;
            let mut w = BufWriter::with_capacity(1 << 20, f);
            let summary = b
                .build_sparse(&mut w)
                .with_context(|| format!("writing {}", out.display()))?;
            w.flush()?;
            let bs = &summary.boot_sector;
            println!(
                "{}: {:?}, {} clusters of {} bytes, {} used; {} files, {} directories",
                out.display(),
                bs.fat_type,
                bs.clusters,
                bs.cluster_size(),
                summary.used_clusters,
                summary.files,
                summary.directories
            );
            Ok(output::exit(output::SUCCESS))
        }
        Command::Ls { source, json } => {
            ls(open(&source)?, json)?;
            Ok(output::exit(output::SUCCESS))
        }
        Command::Extract { source, dest } => {
            let mut vol = open(&source)?;
            std::fs::create_dir_all(&dest)
                .with_context(|| format!("creating {}", dest.display()))?;
            let n = vol
                .extract(&dest)
                .with_context(|| format!("extracting into {}", dest.display()))?;
            eprintln!("extracted {n} files into {}", dest.display());
            Ok(output::exit(output::SUCCESS))
        }
        Command::Info(a) => info(a, Format::Fat),
    }
}
