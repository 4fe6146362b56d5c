//! `imgpipe diff A B [--json]`: are two builds byte-identical, and where do they differ.
//!
//! Exit 0 when identical, 1 when different, 2 when an input cannot be read. Both inputs are
//! streamed, so memory stays bounded whatever their size. Each differing range is attributed
//! to the top-level structure of the first image that holds it (a GPT partition, the ISO9660
//! system area or descriptor set, a LUKS2 header copy). When the images differ and are ISO9660,
//! GPT, squashfs, EROFS or FAT, the files are compared too, down through nested filesystems (the
//! squashfs inside the ISO, the ESP and root inside the disk): which file, inside which
//! filesystem, differs in what (`imgpipe_repro::diagnose_files`).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use imgpipe_repro::{
    ByteRange, DiffOptions, NestedDiff, NestedOptions, RangeDiff, diagnose_files, diff_streams,
};
use serde::Serialize;

use crate::cmd::inspect::{Format, report};
use crate::{output, progress};

/// Arguments of `imgpipe diff`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The first build.
    a: PathBuf,
    /// The second build.
    b: PathBuf,
    /// Print a JSON report.
    #[arg(long)]
    json: bool,
    /// Report at most this many ranges (the rest are counted).
    #[arg(long, default_value_t = 100)]
    max_ranges: usize,
    /// Merge differing runs separated by fewer equal bytes than this.
    #[arg(long, default_value_t = 512)]
    merge_gap: u64,
    /// Only compare bytes; do not open the filesystems to say which files differ.
    #[arg(long)]
    no_files: bool,
    /// Report at most this many file differences (the rest are counted).
    #[arg(long, default_value_t = 1000)]
    max_files: usize,
}

/// One differing range and the regions it touches.
#[derive(Debug, Serialize)]
pub struct Difference {
    /// The bytes.
    #[serde(flatten)]
    pub range: ByteRange,
    /// Regions of the first image that overlap it.
    pub regions: Vec<String>,
}

/// The `--json` report.
#[derive(Debug, Serialize)]
pub struct DiffReport {
    /// Whether both files are byte-identical.
    pub identical: bool,
    /// Format of the first file, when recognised.
    pub format: Option<Format>,
    /// Sizes.
    pub len_a: u64,
    /// Sizes.
    pub len_b: u64,
    /// Total differing bytes.
    pub differing_bytes: u64,
    /// The differing ranges.
    pub differences: Vec<Difference>,
    /// Ranges beyond `--max-ranges`.
    pub ranges_omitted: u64,
    /// File-level differences through nested filesystems, when the format allows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<NestedDiff>,
    /// Why the file-level comparison stopped, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files_error: Option<String>,
}

fn open_counted(path: &Path, bar: &indicatif::ProgressBar) -> anyhow::Result<impl Read> {
    let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok(bar.wrap_read(BufReader::with_capacity(1 << 20, f)))
}

/// Runs `imgpipe diff`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let len = std::fs::metadata(&args.a)
        .with_context(|| format!("cannot open {}", args.a.display()))?
        .len();
    let bar = progress::bytes(len, "comparing");
    let a = open_counted(&args.a, &bar)?;
    let b = File::open(&args.b).with_context(|| format!("cannot open {}", args.b.display()))?;
    let opts = DiffOptions {
        merge_gap: args.merge_gap,
        max_ranges: args.max_ranges,
    };
    let d: RangeDiff = diff_streams(a, BufReader::with_capacity(1 << 20, b), opts)
        .context("comparing the two files")?;
    bar.finish_and_clear();
    let recognised = report(&args.a).ok();
    let known = recognised
        .as_ref()
        .map(|r| r.details.regions())
        .unwrap_or_default();
    let differences = d
        .ranges
        .iter()
        .map(|r| Difference {
            range: *r,
            regions: known
                .iter()
                .filter(|k| k.range.start < r.end() && r.start < k.range.end())
                .map(|k| k.name.clone())
                .collect(),
        })
        .collect();
    let nested = recognised
        .as_ref()
        .is_some_and(|r| r.format.is_filesystem());
    let (mut files, mut files_error) = (None, None);
    if !d.identical && nested && !args.no_files {
        let mut opts = NestedOptions::default();
        opts.max_differences = args.max_files;
        let open = |p: &Path| File::open(p).with_context(|| format!("cannot open {}", p.display()));
        let spin = progress::spinner("comparing files inside the images");
        match diagnose_files(&open(&args.a)?, &open(&args.b)?, opts) {
            Ok(n) => files = Some(n),
            Err(e) => files_error = Some(e.to_string()),
        }
        spin.finish_and_clear();
    }
    let rep = DiffReport {
        identical: d.identical,
        format: recognised.map(|r| r.format),
        len_a: d.len_a,
        len_b: d.len_b,
        differing_bytes: d.differing_bytes,
        differences,
        ranges_omitted: d.ranges_omitted,
        files,
        files_error,
    };
    if args.json {
        output::print_json(&rep)?;
    } else if rep.identical {
        println!("identical ({} bytes)", rep.len_a);
    } else {
        println!(
            "different: {} bytes differ ({} vs {} bytes)",
            rep.differing_bytes, rep.len_a, rep.len_b
        );
        for diff in &rep.differences {
            let r = diff.range;
            let inside = if diff.regions.is_empty() {
                String::new()
            } else {
                format!(" in {}", diff.regions.join(", "))
            };
            println!(
                "  0x{:x}..0x{:x} ({} bytes){inside}",
                r.start,
                r.end(),
                r.len
            );
        }
        if rep.ranges_omitted > 0 {
            println!("  ... and {} more ranges", rep.ranges_omitted);
        }
        if let Some(n) = &rep.files {
            if n.differences.is_empty() {
                println!("files: identical in {}", n.compared.join(", "));
            } else {
                println!("files that differ:");
                for f in &n.differences {
                    println!("  {}: {}: {}", f.within.join(" > "), f.path, f.what);
                }
                if n.omitted > 0 {
                    println!("  ... and {} more", n.omitted);
                }
            }
        }
        if let Some(e) = &rep.files_error {
            println!("files: not compared: {e}");
        }
    }
    Ok(output::exit(if rep.identical {
        output::SUCCESS
    } else {
        output::NEGATIVE
    }))
}
