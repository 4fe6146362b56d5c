//! `imgpipe gpt ...`: create and show GPT disk images (crates/gptpart).

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use imgpipe_gptpart::{
    FatBuilder, FatType, GptBuilder, GptDisk, GptLayout, Guid, HybridEntry, PartitionSize,
    PartitionSpec, Seed, attributes, partition_type, read_gpt,
};

use crate::cmd::inspect::{Format, report};
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
    },
    /// Describe the file (as `imgpipe inspect`, refusing other formats).
    Info {
        /// The file.
        file: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args)]
struct CreateArgs {
    /// The image to write (replaced if it exists).
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
    /// Partition alignment (default 1M).
    #[arg(long, value_parser = parse_size, default_value = "1M")]
    alignment: u64,
    /// --seed: 128-bit seed (32 hex digits, dashes allowed) every GUID derives from, as
    /// systemd-repart's --seed; --epoch: timestamps inside generated file systems.
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

/// Contents to put into a partition.
#[derive(Debug)]
enum Contents {
    None,
    Fat {
        dir: PathBuf,
        fat_type: Option<FatType>,
    },
    File(PathBuf),
}

pub use crate::size::parse_size;

fn parse_part(text: &str) -> anyhow::Result<(PartitionSpec, Contents)> {
    let mut ty = None;
    let mut size = None;
    let mut label = String::new();
    let mut guid = None;
    let mut flags = 0u64;
    let mut fat = None;
    let mut fat_type = None;
    let mut file = None;
    for kv in text.split(',') {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--part {text:?}: expected key=value, got {kv:?}"))?;
        match k {
            "type" => {
                ty = Some(partition_type(v).with_context(|| {
                    format!("--part: unknown partition type {v:?} (an alias like esp, root-x86-64, linux-generic, or a GUID)")
                })?)
            }
            "size" => {
                size = Some(if v == "rest" {
                    PartitionSize::Rest
                } else {
                    PartitionSize::Bytes(parse_size(v).map_err(anyhow::Error::msg)?)
                })
            }
            "label" | "name" => label = v.to_string(),
            "guid" | "uuid" => guid = Some(v.parse::<Guid>()?),
            "flags" | "attrs" => {
                for f in v.split('+').filter(|f| !f.is_empty()) {
                    flags |= attributes::parse_flag(f)
                        .with_context(|| format!("--part: unknown flag {f:?}"))?;
                }
            }
            "fat" => fat = Some(PathBuf::from(v)),
            "fat-type" => {
                fat_type = Some(match v {
                    "12" => FatType::Fat12,
                    "16" => FatType::Fat16,
                    "32" => FatType::Fat32,
                    _ => bail!("--part: fat-type must be 12, 16 or 32"),
                })
            }
            "file" => file = Some(PathBuf::from(v)),
            _ => bail!("--part {text:?}: unknown key {k:?}"),
        }
    }
    let ty = ty.with_context(|| format!("--part {text:?}: type= is required"))?;
    let size = size.with_context(|| format!("--part {text:?}: size= is required"))?;
    let mut spec = PartitionSpec::new(ty, size).name(label).attributes(flags);
    if let Some(g) = guid {
        spec = spec.unique_guid(g);
    }
    let contents = match (fat, file) {
        (Some(_), Some(_)) => bail!("--part {text:?}: fat= and file= exclude each other"),
        (Some(dir), None) => Contents::Fat { dir, fat_type },
        (None, Some(f)) => Contents::File(f),
        (None, None) => Contents::None,
    };
    Ok((spec, contents))
}

fn parse_hybrid(text: &str) -> anyhow::Result<HybridEntry> {
    let mut it = text.split(':');
    let (Some(n), Some(ty)) = (it.next(), it.next()) else {
        bail!("--hybrid-mbr {text:?}: expected N:TYPE[:boot]");
    };
    let bootable = match it.next() {
        None => false,
        Some("boot") => true,
        Some(x) => bail!("--hybrid-mbr {text:?}: unexpected {x:?}"),
    };
    Ok(HybridEntry {
        partition: n.parse().context("--hybrid-mbr: partition number")?,
        mbr_type: u8::from_str_radix(ty.trim_start_matches("0x"), 16)
            .context("--hybrid-mbr: MBR type in hex")?,
        bootable,
    })
}

fn create(a: CreateArgs) -> anyhow::Result<ExitCode> {
    target::check_replace("-o/--output", &a.output, a.common.force)?;
    let epoch = a.common.epoch()?;
    let seed = match &a.common.seed {
        Some(s) => Seed::parse(s).context("--seed: expected 32 hex digits (dashes allowed)")?,
        None => {
            // No randomness: the same layout gives the same disk. Paths of `fat=` and `file=`
            // are left out, so building from another directory gives the same GUIDs.
            let layout: Vec<String> = a
                .parts
                .iter()
                .map(|spec| {
                    spec.split(',')
                        .map(|item| match item.split_once('=') {
                            Some((key @ ("fat" | "file"), _)) => key,
                            _ => item,
                        })
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .collect();
            let material = format!(
                "imgpipe gpt create\0{}\0{}\0{}\0{}",
                a.size,
                a.sector_size,
                a.alignment,
                layout.join("\0")
            );
            Seed::from_material(material.as_bytes())
        }
    };
    let mut b = GptBuilder::new(a.size, seed)
        .sector_size(a.sector_size)
        .alignment(a.alignment);
    if let Some(g) = &a.disk_guid {
        b = b.disk_guid(g.parse()?);
    }
    let mut contents = Vec::new();
    for p in &a.parts {
        let (spec, c) = parse_part(p)?;
        contents.push((spec.name.clone(), c));
        b = b.partition(spec);
    }
    let hybrid = a
        .hybrid_mbr
        .iter()
        .map(|h| parse_hybrid(h))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if !hybrid.is_empty() {
        b = b.hybrid_mbr(hybrid);
    }
    let layout = b.plan().context("planning the partition table")?;
    for (_, c) in &contents {
        match c {
            Contents::Fat { dir, .. } if !dir.is_dir() => {
                bail!("--part: fat={}: not a directory", dir.display())
            }
            Contents::File(f) if !f.is_file() => {
                bail!("--part: file={}: not a file", f.display())
            }
            _ => {}
        }
    }
    let file = target::create(&a.output)?;
    write_disk(file.file(), &layout, &contents, seed, epoch)
        .with_context(|| format!("writing {}", a.output.display()))?;
    let disk = read_gpt(file.file()).context("reading the written table back")?;
    target::commit(file)?;
    if a.json {
        output::print_json(&disk)?;
    } else {
        print_disk(&disk);
    }
    Ok(output::exit(output::SUCCESS))
}

fn write_disk(
    f: &File,
    layout: &GptLayout,
    contents: &[(String, Contents)],
    seed: Seed,
    epoch: u64,
) -> anyhow::Result<()> {
    // A fresh sparse file of the right size: every byte we do not write reads as zero.
    f.set_len(layout.disk_size())?;
    let total: u64 = contents
        .iter()
        .zip(layout.partitions())
        .filter(|((_, c), _)| !matches!(c, Contents::None))
        .map(|(_, p)| p.size)
        .sum();
    let bar = crate::progress::bytes(total, "writing");
    let mut w = BufWriter::with_capacity(1 << 20, f);
    layout.write_table(&mut w)?;
    for ((name, c), p) in contents.iter().zip(layout.partitions()) {
        match c {
            Contents::None => {}
            Contents::File(src) => {
                let r = File::open(src).with_context(|| format!("opening {}", src.display()))?;
                layout
                    .write_partition(&mut w, p.index, bar.wrap_read(r))
                    .with_context(|| {
                        format!("copying {} into partition {}", src.display(), p.index)
                    })?;
            }
            Contents::Fat { dir, fat_type } => {
                let ss = u16::try_from(layout.sector_size()).unwrap_or(512);
                let mut fb = FatBuilder::new(p.size)
                    .sector_size(ss)
                    .epoch(epoch)
                    .volume_id(seed.volume_id(&p.index.to_le_bytes()))
                    .hidden_sectors(u32::try_from(p.entry.first_lba).unwrap_or(0));
                // The partition name doubles as the volume label when FAT can store it.
                if !name.is_empty()
                    && name.len() <= 11
                    && name
                        .bytes()
                        .all(|c| c.is_ascii_alphanumeric() || b"-_ ".contains(&c))
                {
                    fb = fb.label(name.as_str());
                }
                if let Some(t) = fat_type {
                    fb = fb.fat_type(*t);
                }
                fb.add_tree(dir)
                    .with_context(|| format!("reading {}", dir.display()))?;
                w.seek(SeekFrom::Start(p.offset))?;
                // The file was just given its length: free space can stay a hole.
                fb.build_sparse(&mut w).with_context(|| {
                    format!("building the FAT file system of partition {}", p.index)
                })?;
                bar.inc(p.size);
            }
        }
    }
    w.flush()?;
    bar.finish_and_clear();
    Ok(())
}

fn print_disk(d: &GptDisk) {
    println!("disk GUID:    {}", d.disk_guid);
    println!("sector size:  {}", d.sector_size);
    println!(
        "disk size:    {} bytes ({} sectors)",
        d.disk_size,
        d.disk_size / d.sector_size
    );
    println!(
        "usable LBAs:  {}..={} ({} entries)",
        d.first_usable_lba(),
        d.last_usable_lba(),
        d.header.num_partition_entries
    );
    match (&d.primary_problem, &d.backup_problem) {
        (Some(p), _) => {
            println!("table:        read from the BACKUP copy; primary is damaged: {p}")
        }
        (None, Some(b)) => println!("table:        primary ok; backup problem: {b}"),
        (None, None) => println!("table:        primary and backup ok"),
    }
    println!(
        "{:>3} {:>10} {:>10} {:>10}  {:<22} {:<36} {:<10} name",
        "#", "first", "last", "size", "type", "GUID", "flags"
    );
    for p in &d.partitions {
        let ty = p
            .type_name
            .map_or_else(|| p.type_guid.to_string(), str::to_string);
        let flags = if p.flags.is_empty() {
            "-".to_string()
        } else {
            p.flags.join("+")
        };
        println!(
            "{:>3} {:>10} {:>10} {:>10}  {:<22} {:<36} {:<10} {}",
            p.index,
            p.first_lba,
            p.last_lba,
            human(p.size),
            ty,
            p.unique_guid.to_string(),
            flags,
            p.name
        );
    }
}

/// `64M`, `1.5G`: sizes the way partition tools print them.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["", "K", "M", "G", "T"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if (v - v.round()).abs() < 1e-9 {
        format!("{}{}", v.round() as u64, UNITS[u])
    } else {
        format!("{v:.1}{}", UNITS[u])
    }
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
        Command::Grow { image, size } => {
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&image)
                .with_context(|| format!("opening {}", image.display()))?;
            let d = imgpipe_gptpart::relocate_backup(&f, size)
                .with_context(|| format!("growing {}", image.display()))?;
            f.sync_all()?;
            print_disk(&d);
            Ok(output::exit(output::SUCCESS))
        }
        Command::Info { file, json } => {
            let r = report(&file)?;
            if r.format != Format::Gpt {
                bail!("{}: not a {:?} file", file.display(), Format::Gpt);
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
