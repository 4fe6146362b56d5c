//! `imgpipe erofs ...`: create, describe, list and extract EROFS images (crates/squashfs,
//! module `erofs`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use imgpipe_repro::seed::{Purpose, Seed};
use imgpipe_squashfs::Limits;
use imgpipe_squashfs::erofs::{
    ErofsAlgorithm, ErofsBuilder, ErofsCompression, ErofsReader, ErofsWriteOptions,
};

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
    /// The directory to pack, or a filesystem image (ISO9660, squashfs, EROFS, FAT) whose
    /// tree is repacked without extracting it.
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
    /// Compress file data: lz4, lz4hc, lzma, deflate or zstd, optionally with a level
    /// (`zstd,15`), as mkfs.erofs -z (default: uncompressed).
    #[arg(long, value_name = "ALG[,LEVEL]")]
    comp: Option<String>,
    /// Compression level (lz4hc 1-12, default 9; lzma 0-9 or 100-109, default 6; deflate 0-9,
    /// default 2; zstd 1-22, default 3), the same as `--comp ALG,LEVEL`.
    #[arg(long)]
    level: Option<u32>,
    /// Block size: 4K (the default; what kernels with 4 KiB pages, x86-64's, mount), 16K or
    /// 64K for kernels with larger pages (as mkfs.erofs -b; bytes, or with K).
    #[arg(long, default_value = "4K", value_parser = crate::size::parse_size_u32)]
    block_size: u32,
    /// Largest physical cluster: a multiple of the block size up to 1M (bytes, or with K/M,
    /// as mkfs.erofs -C).
    #[arg(long, value_parser = crate::size::parse_size_u32)]
    cluster_size: Option<u32>,
    /// Pack the tail of each compressed file, and small files whole, into the packed inode,
    /// and share pclusters whose stored bytes are equal (as mkfs.erofs -Efragments).
    #[arg(long)]
    fragments: bool,
    /// Keep a compressed tail smaller than a block inline after its inode (as mkfs.erofs
    /// -Eztailpacking).
    #[arg(long)]
    ztailpacking: bool,
    /// Store files with identical content once, and share pclusters whose stored bytes are
    /// equal (files that differ only near their ends).
    #[arg(long)]
    dedupe: bool,
    /// lzma: compress every pcluster, as mkfs.erofs does (default: input that lz4 and zstd
    /// level 1 cannot shrink, such as a gzip or PNG file's, is stored without running lzma
    /// on it).
    #[arg(long)]
    no_early_abort: bool,
    /// Compression threads (default: one per CPU); the image does not depend on it.
    #[arg(long)]
    processors: Option<usize>,
    /// Reserve a slot: the file PATH (relative to DIR) gets one contiguous, uncompressed,
    /// block-aligned extent of SIZE bytes (K/M/G allowed), its content zero-padded, so it
    /// can be replaced later without rebuilding (repeatable; offsets in --json).
    #[arg(long, value_name = "PATH:SIZE")]
    reserve: Vec<String>,
    /// Record the owners of the host files (the default).
    #[arg(long, overrides_with = "no_owners")]
    owners: bool,
    /// Record every file as owned by root (as mkfs.erofs --all-root).
    #[arg(long, alias = "all-root", overrides_with = "owners")]
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
    /// Write an EROFS image of a directory or of another image's tree, byte-reproducibly: uncompressed (flat plain and
    /// inline layouts) or compressed (lz4, lz4hc, lzma, deflate, zstd; big pclusters,
    /// fragments, ztailpacking, dedupe), compact or extended inodes as each entry needs.
    Create(Box<CreateArgs>),
    /// Describe the image (as `imgpipe inspect`, refusing other formats): text, or JSON.
    Info(InfoArgs),
    /// List every entry: type and mode, owner, size, mtime (UTC), path, link target.
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

/// `--comp ALG[,LEVEL]` with `--level`.
pub(crate) fn parse_comp(comp: &str, level: Option<u32>) -> anyhow::Result<ErofsCompression> {
    let (name, lvl) = match comp.split_once(',') {
        Some((n, l)) => {
            let l: u32 = l
                .parse()
                .with_context(|| format!("--comp {comp:?}: the level is not a number"))?;
            (n, Some(l))
        }
        None => (comp, None),
    };
    let alg = ErofsAlgorithm::from_name(name).with_context(|| {
        format!("--comp {comp:?}: unknown algorithm (lz4, lz4hc, lzma, deflate, zstd)")
    })?;
    let level = match (lvl, level) {
        (Some(a), Some(b)) if a != b => {
            anyhow::bail!("--level {b} disagrees with --comp {comp:?}")
        }
        (a, b) => a.or(b),
    };
    let c = match level {
        Some(l) => {
            if !alg.level_ok(l) {
                anyhow::bail!("--comp {comp:?}: level {l} is out of range for {name}");
            }
            ErofsCompression::with_level(alg, l)
        }
        None => ErofsCompression::new(alg),
    };
    Ok(c)
}

/// `--reserve PATH:SIZE`.
fn parse_reserve(text: &str) -> anyhow::Result<(Vec<u8>, u64)> {
    let (path, size) = text
        .rsplit_once(':')
        .with_context(|| format!("--reserve {text:?}: expected PATH:SIZE"))?;
    let size = crate::size::parse_size(size).map_err(|e| anyhow::anyhow!("--reserve: {e}"))?;
    let path = path.trim_start_matches('/').trim_end_matches('/');
    if path.is_empty()
        || path
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
    {
        anyhow::bail!("--reserve {text:?}: PATH must name a file inside DIR");
    }
    if size == 0 {
        anyhow::bail!("--reserve {text:?}: SIZE must be above 0");
    }
    Ok((path.as_bytes().to_vec(), size))
}

fn flag_error(e: imgpipe_squashfs::Error) -> anyhow::Error {
    if let imgpipe_squashfs::Error::InvalidOption { option, reason } = &e {
        let flag = match *option {
            "pcluster_size" => "--cluster-size",
            "block_size" => "--block-size",
            "compression" => "--comp",
            "threads" => "--processors",
            "reserve" => "--reserve",
            "volume_name" => "--label",
            _ => return e.into(),
        };
        return anyhow::anyhow!("{flag}: {reason}");
    }
    e.into()
}

fn create(a: CreateArgs) -> anyhow::Result<()> {
    let out = &a.output;
    // Everything is checked before the output is created.
    target::check_replace("-o/--output", out, a.common.force)?;
    if !a.dir.exists() {
        anyhow::bail!("{}: no such directory or image", a.dir.display());
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
    opts.block_size = a.block_size;
    opts.volume_name = label.into_bytes();
    opts.all_root = a.no_owners;
    opts.clamp_mtime = a.common.clamp_mtime;
    opts.compression = a
        .comp
        .as_deref()
        .map(|c| parse_comp(c, a.level))
        .transpose()?;
    if let Some(c) = opts.compression.as_mut() {
        c.early_abort = !a.no_early_abort;
    }
    if opts.compression.is_none() {
        if a.level.is_some() {
            anyhow::bail!("--level needs --comp");
        }
        for (flag, on) in [
            ("--fragments", a.fragments),
            ("--ztailpacking", a.ztailpacking),
            ("--cluster-size", a.cluster_size.is_some()),
            ("--no-early-abort", a.no_early_abort),
        ] {
            if on {
                anyhow::bail!("{flag} needs --comp");
            }
        }
    }
    if let Some(c) = a.cluster_size {
        opts.pcluster_size = c;
    }
    opts.fragments = a.fragments;
    opts.ztailpacking = a.ztailpacking;
    opts.dedupe = a.dedupe;
    if a.processors == Some(0) {
        anyhow::bail!("--processors: must be at least 1");
    }
    for r in &a.reserve {
        opts.reserve.push(parse_reserve(r)?);
    }
    let mut scan = imgpipe_fstree::ScanOptions::default();
    scan.xattrs = !a.no_xattrs;
    // An output inside the tree is not packed (nor an older copy of it, nor our temporary).
    scan.exclude(out)?;
    scan.exclude(&imgpipe_repro::temp_path(out)?)?;
    let tree = crate::source::tree(&a.dir, &scan)?;
    let mut b = ErofsBuilder::new(opts).map_err(flag_error)?;
    b.add_tree(tree).map_err(flag_error)?;
    let pool = a
        .processors
        .map(|n| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .context("--processors: starting compression threads")
        })
        .transpose()?;
    let bar = progress::bytes(0, "writing");
    let bar2 = bar.clone();
    b.on_progress(move |p| {
        bar2.set_length(p.total);
        bar2.set_position(p.done);
    });
    let rep = target::write_buffered(out, |w| match &pool {
        Some(pool) => pool.install(|| b.build(w)),
        None => b.build(w),
    });
    bar.finish_and_clear();
    let rep = rep.map_err(|e| match e.downcast::<imgpipe_squashfs::Error>() {
        Ok(e) => flag_error(e),
        Err(e) => e,
    })?;
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
        for r in &rep.slots {
            println!(
                "slot {}: {} bytes at byte {}, its size ({}) at byte {}",
                r.path, r.capacity, r.offset, r.size_encoding, r.size_offset
            );
        }
    }
    Ok(())
}
