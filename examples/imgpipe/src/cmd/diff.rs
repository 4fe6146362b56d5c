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
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use imgpipe_repro::{DiffOptions, ImageDiffOptions, NestedOptions, diff_images};

use crate::{output, progress};

/// Arguments of `imgpipe diff`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The first build.
    a: std::path::PathBuf,
    /// The second build.
    b: std::path::PathBuf,
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
    /// Stop the file comparison once it has hashed N times the two images' sizes (at least
    /// 1 GiB): what bounds the work hostile images can ask for.
    #[arg(long, value_name = "N", default_value_t = 64)]
    max_work_ratio: u64,
    /// Also report what is noise by default, marked as such: the stored order of a
    /// directory's entries, sub-second mtimes.
    #[arg(long)]
    strict: bool,
    /// Also write the report as one self-contained HTML page (layers, differences, reasons;
    /// nothing fetched from elsewhere), for CI artefact stores.
    #[arg(long, value_name = "FILE")]
    html: Option<std::path::PathBuf>,
}

/// The file differences grouped by layer, each layer's line then its entries, indented.
pub fn print_files(n: &imgpipe_repro::NestedDiff, indent: &str) {
    let mut layer: Option<&[String]> = None;
    for f in &n.differences {
        if layer != Some(f.within.as_slice()) {
            println!("{indent}{}:", f.within.join(" > "));
            layer = Some(f.within.as_slice());
        }
        println!("{indent}  {}: {}", f.path, f.what);
        if let Some(r) = &f.reason {
            for d in &r.details {
                println!("{indent}    {}: {d}", r.format);
            }
        }
    }
    if n.omitted > 0 {
        println!("{indent}... and {} more", n.omitted);
    }
}

fn open(p: &Path) -> anyhow::Result<File> {
    File::open(p).with_context(|| format!("cannot open {}", p.display()))
}

/// Runs `imgpipe diff`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    // Each image is opened once and read through once; the file comparison is handed the
    // differing ranges and does not read again what is known identical.
    let (a, b) = (open(&args.a)?, open(&args.b)?);
    if let Some(h) = &args.html {
        crate::target::check_output("--html", h)?;
    }
    let len = a
        .metadata()
        .with_context(|| format!("cannot open {}", args.a.display()))?
        .len();
    let mut opts = ImageDiffOptions::default();
    opts.bytes = DiffOptions {
        merge_gap: args.merge_gap,
        max_ranges: args.max_ranges,
    };
    opts.files = if args.no_files {
        None
    } else {
        let mut n = NestedOptions::default();
        n.max_differences = args.max_files;
        n.max_work_ratio = args.max_work_ratio;
        n.strict = args.strict;
        Some(n)
    };
    let bar = progress::bytes(len, "comparing");
    // When the bytes are read, a spinner while the files inside are compared.
    let (mut seen, mut spin) = (0u64, None);
    let rep = diff_images(&a, &b, opts, &mut |n| {
        bar.inc(n);
        seen += n;
        if seen >= len && spin.is_none() && opts.files.is_some() {
            bar.finish_and_clear();
            spin = Some(progress::spinner("comparing files inside the images"));
        }
    })
    .context("comparing the two files")?;
    bar.finish_and_clear();
    if let Some(s) = spin {
        s.finish_and_clear();
    }
    if let Some(h) = &args.html {
        let page = super::diff_html::page(
            &rep,
            &args.a.display().to_string(),
            &args.b.display().to_string(),
        );
        let f = crate::target::create(h)?;
        std::io::Write::write_all(&mut f.file(), page.as_bytes())
            .with_context(|| format!("--html: writing {}", h.display()))?;
        crate::target::commit(f)?;
    }
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
                print_files(n, "  ");
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
