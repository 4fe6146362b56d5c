//! `imgpipe squashfs ...`: create, list and extract squashfs images (crates/squashfs).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use imgpipe_squashfs::{
    Builder, Compression, Compressor, ExtractOptions, Limits, Reader, WriteOptions, bcj,
};

use crate::cmd::inspect::{Format, InfoArgs, info};
use crate::cmd::listing::{list, print_listing};
use crate::flags::CreateCommon;
use crate::{output, progress, target};

/// Arguments of `imgpipe squashfs`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Describe the image (as `imgpipe inspect`, refusing other formats): text, or JSON.
    Info(InfoArgs),
    /// Write a squashfs image of a directory, byte-reproducibly.
    Create(Box<CreateArgs>),
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

/// Arguments of `squashfs create`.
#[derive(Debug, clap::Args)]
pub(crate) struct CreateArgs {
    /// The directory to pack, or a filesystem image (ISO9660, squashfs, EROFS, FAT) whose
    /// tree is repacked without extracting it.
    dir: PathBuf,
    /// The image to write.
    #[arg(short, long)]
    output: PathBuf,
    /// Compressor.
    #[arg(long, default_value = "gzip", value_parser = ["gzip", "xz", "lzo", "lz4", "zstd"])]
    comp: String,
    /// Compression level (gzip 1-9, xz 0-9, zstd 1-22; default as mksquashfs).
    #[arg(long)]
    level: Option<u32>,
    /// xz: BCJ filters to try on each block beside plain xz, comma-separated (x86,
    /// powerpc, ia64, arm, armthumb, sparc; none, the default); the smallest result is
    /// kept, as mksquashfs -Xbcj. A block the x86 filter would leave unchanged (text) is
    /// compressed once: the result is the same.
    #[arg(long, value_delimiter = ',')]
    xz_bcj: Vec<String>,
    /// lz4: high compression (LZ4HC), as mksquashfs -Xhc.
    #[arg(long)]
    lz4_hc: bool,
    /// xz: compress every block, as mksquashfs does (default: a block that lz4 and zstd
    /// level 1 cannot shrink, such as a gzip or PNG file's, is stored without running xz
    /// on it; a few percent faster on a /usr tree for 0.02 % more image).
    #[arg(long)]
    no_early_abort: bool,
    /// Compression threads (default: one per CPU).
    #[arg(long)]
    processors: Option<usize>,
    /// Block size: a power of two from 4K to 1M (bytes, or with K/M, as mksquashfs -b 128K).
    #[arg(long, default_value = "128K", value_parser = crate::size::parse_size_u32)]
    block_size: u32,
    /// Do not pack small files and tail ends into fragments.
    #[arg(long)]
    no_fragments: bool,
    /// Pack only whole small files into fragments, not tail ends of larger files.
    #[arg(long)]
    no_tail_ends: bool,
    /// Do not store identical files once.
    #[arg(long)]
    no_dedup: bool,
    /// Do not store xattrs.
    #[arg(long)]
    no_xattrs: bool,
    /// Do not write the NFS export table.
    #[arg(long)]
    no_exports: bool,
    /// Record the owners of the host files (the default).
    #[arg(long, overrides_with = "no_owners")]
    owners: bool,
    /// Record every file as owned by root (as mksquashfs -all-root).
    #[arg(long, alias = "all-root", overrides_with = "owners")]
    no_owners: bool,
    #[command(flatten)]
    common: CreateCommon,
    /// Print a JSON report.
    #[arg(long)]
    json: bool,
}

/// Arguments of `squashfs extract` and `erofs extract`.
#[derive(Debug, clap::Args)]
pub(crate) struct ExtractArgs {
    /// The image.
    pub(crate) image: PathBuf,
    /// The destination directory.
    pub(crate) dest: PathBuf,
    /// Byte offset of the image inside the file.
    #[arg(long, default_value_t = 0, value_parser = crate::size::parse_size)]
    pub(crate) offset: u64,
    #[command(flatten)]
    owners: crate::flags::Owners,
    /// Do not restore xattrs (default: restored when running as root).
    #[arg(long)]
    no_xattrs: bool,
    /// Refuse symlinks whose target leaves DEST (absolute or too many `..`).
    #[arg(long)]
    refuse_link_escapes: bool,
    #[command(flatten)]
    bounds: crate::flags::ExtractBounds,
    /// Print a JSON report.
    #[arg(long)]
    json: bool,
}

impl ExtractArgs {
    /// Owners and xattrs are restored when running as root unless refused.
    pub(crate) fn options(&self) -> ExtractOptions {
        let root = crate::flags::running_as_root();
        let mut opts = ExtractOptions::default();
        opts.owners = self.owners.get();
        opts.xattrs = root && !self.no_xattrs;
        opts.refuse_link_escapes = self.refuse_link_escapes;
        self.bounds.apply(&mut opts);
        opts
    }

    /// Prints the report as JSON or one line.
    pub(crate) fn print(&self, rep: &imgpipe_squashfs::ExtractReport) -> anyhow::Result<()> {
        crate::flags::report_skipped(rep);
        if self.json {
            return output::print_json(rep);
        }
        println!(
            "{}: {}, {}, {}, {}, {} ({} skipped), {}",
            self.dest.display(),
            output::plural(rep.dirs, "directory", "directories"),
            output::plural(rep.files, "file", "files"),
            output::plural(rep.hard_links, "hard link", "hard links"),
            output::plural(rep.symlinks, "symlink", "symlinks"),
            output::plural(rep.special, "special file", "special files"),
            rep.skipped,
            output::plural(rep.bytes, "byte", "bytes")
        );
        Ok(())
    }
}

fn open(image: &PathBuf, offset: u64) -> anyhow::Result<Reader> {
    let f = std::fs::File::open(image).with_context(|| format!("opening {}", image.display()))?;
    Reader::open_at(f, offset, Limits::default())
        .with_context(|| format!("reading {}", image.display()))
}

/// The flag behind a writer option the squashfs crate names.
fn flag_error(e: imgpipe_squashfs::Error) -> anyhow::Error {
    if let imgpipe_squashfs::Error::InvalidOption { option, reason } = &e {
        let flag = match *option {
            "block_size" => "--block-size",
            "level" => "--level",
            "xz_bcj" => "--xz-bcj",
            "lz4_hc" => "--lz4-hc",
            _ => return e.into(),
        };
        return anyhow::anyhow!("{flag}: {reason}");
    }
    e.into()
}

fn create(a: CreateArgs) -> anyhow::Result<()> {
    let out = &a.output;
    target::check_output("-o/--output", out)?;
    if !a.dir.exists() {
        bail!("{}: no such directory or image", a.dir.display());
    }
    let epoch = a.common.epoch()?;
    let epoch = u32::try_from(epoch).context("--epoch: squashfs times end in 2106")?;
    let compressor = Compressor::from_name(&a.comp).context("--comp: unknown compressor")?;
    let mut opts = WriteOptions::new(epoch);
    opts.compression = Compression::with_level(compressor, a.level);
    for name in a.xz_bcj.iter().filter(|n| *n != "none") {
        opts.compression.xz_bcj |= bcj::from_name(name)
            .with_context(|| format!("--xz-bcj: unknown BCJ filter {name:?}"))?;
    }
    opts.compression.lz4_hc = a.lz4_hc;
    opts.compression.early_abort = !a.no_early_abort;
    opts.block_size = a.block_size;
    opts.fragments = !a.no_fragments;
    opts.tail_ends = !a.no_tail_ends;
    opts.dedup = !a.no_dedup;
    opts.xattrs = !a.no_xattrs;
    opts.exportable = !a.no_exports;
    opts.all_root = a.no_owners;
    opts.clamp_mtime = a.common.clamp_mtime.then_some(epoch);
    opts.clamp_times = a.common.clamp_mtime;
    let mut b = Builder::new(opts).map_err(flag_error)?;
    target::refuse_recognised(out, a.common.force)?;
    let pool = a
        .processors
        .map(|n| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(n.max(1))
                .build()
                .context("--processors: starting compression threads")
        })
        .transpose()?;
    // An output inside the tree is not packed (nor an older copy of it, nor our temporary).
    b.exclude_host_path(out)?;
    b.exclude_host_path(&imgpipe_repro::temp_path(out)?)?;
    if crate::source::is_image(&a.dir) {
        b.add_fstree(&crate::source::image_tree(&a.dir)?)
            .map_err(flag_error)?;
    } else {
        b.add_tree(&a.dir)
            .with_context(|| format!("scanning {}", a.dir.display()))?;
    }
    let bar = progress::bytes(0, "compressing");
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
    let rep = rep?;
    if a.json {
        output::print_json(&rep)?;
    } else {
        println!(
            "{}: {}, {} ({} duplicates), {}, {} of content in {}",
            out.display(),
            output::plural(u64::from(rep.inodes), "inode", "inodes"),
            output::plural(rep.files, "file", "files"),
            rep.duplicates,
            output::plural(
                u64::from(rep.fragments),
                "fragment block",
                "fragment blocks"
            ),
            output::plural(rep.content_bytes, "byte", "bytes"),
            output::plural(rep.image_size, "byte", "bytes")
        );
    }
    Ok(())
}

/// Runs `imgpipe squashfs`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Info(a) => {
            return info(a, Format::Squashfs);
        }
        Command::Create(a) => create(*a)?,
        Command::Ls {
            image,
            offset,
            json,
        } => {
            let r = open(&image, offset)?;
            let listing =
                list("squashfs", &r).with_context(|| format!("cannot list {}", image.display()))?;
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
