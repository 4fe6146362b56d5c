//! `imgpipe diff A B [--json]`: are two builds byte-identical, and where do they differ.
//!
//! Exit 0 when identical, 1 when different, 2 when an input cannot be read. Both inputs are
//! streamed, so memory stays bounded whatever their size. Each differing range is attributed
//! to the top-level structure of the first image that holds it (a GPT partition, the ISO9660
//! system area or descriptor set, a LUKS2 header copy). When the images differ and are ISO9660,
//! GPT, squashfs, EROFS or FAT, the files are compared too, down through nested filesystems (the
//! squashfs inside the ISO, the ESP and root inside the disk): which file, inside which
//! filesystem, differs in what (`imgpipe_repro::diagnose_files`). With `--passphrase-file`,
//! LUKS2 volumes met on the way (the image itself, an encrypted partition) are unlocked and
//! their payloads compared the same way, decrypted as they are read; without, an encrypted
//! payload that differs says so. A passphrase that opens no keyslot is an input error (exit 2).

use std::fs::File;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use imgpipe_repro::{DiffOptions, ImageDiffOptions, NestedOptions};

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
    /// Also report what is noise by default, marked as such: identical content stored at
    /// other offsets, sub-second mtimes.
    #[arg(long)]
    strict: bool,
    /// Also write the report as one self-contained HTML page (layers, differences, reasons;
    /// nothing fetched from elsewhere), for CI artefact stores.
    #[arg(long, value_name = "FILE")]
    html: Option<std::path::PathBuf>,
    /// Also write both versions of each differing file (of at most 16 MiB) into DIR, which
    /// must not exist: `DIR/a/LAYER.../PATH` and `DIR/b/...`, with `DIR/report.json`.
    #[arg(long, value_name = "DIR")]
    report_dir: Option<std::path::PathBuf>,
    /// The most bytes `--report-dir` writes in all (the files beyond it are left out and
    /// counted).
    #[arg(long, value_name = "SIZE", default_value = "100M", value_parser = crate::size::parse_size)]
    report_max: u64,
    /// Unlock the LUKS2 volumes met in both images (the image itself, a partition or a file
    /// holding one) with the passphrase in FILE (its bytes exactly, as `imgpipe luks` and
    /// cryptsetup's --key-file read it) and compare the files of their payloads.
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<std::path::PathBuf>,
    /// The second image's passphrase, when it is not --passphrase-file's.
    #[arg(long, value_name = "FILE", requires = "passphrase_file")]
    passphrase_file_b: Option<std::path::PathBuf>,
    #[command(flatten)]
    budget: super::luks::KdfBudget,
}

/// The passphrases of `--passphrase-file` (and `--passphrase-file-b`), if given.
fn passphrases(args: &Args) -> anyhow::Result<Option<imgpipe_repro::Passphrases>> {
    let read = |flag: &str, p: &Path| {
        std::fs::read(p).with_context(|| format!("{flag}: cannot read {}", p.display()))
    };
    let Some(fa) = &args.passphrase_file else {
        return Ok(None);
    };
    let a = read("--passphrase-file", fa)?;
    let keys = match &args.passphrase_file_b {
        Some(fb) => imgpipe_repro::Passphrases::new(a, read("--passphrase-file-b", fb)?),
        None => imgpipe_repro::Passphrases::same(a),
    };
    Ok(Some(keys.with_limits(args.budget.limits())))
}

/// A path inside the report directory for `within` (the layers below the outermost, each
/// without its ` (format)`) and the file's `path`: untrusted names, so every component is
/// kept inside (`.`, `..` and empty ones become `_`).
fn report_path(side: &str, within: &[String], path: &str) -> std::path::PathBuf {
    let mut out = std::path::PathBuf::from(side);
    let layers = within.iter().skip(1).map(|l| match l.rsplit_once(" (") {
        Some((p, _)) => p,
        None => l.as_str(),
    });
    for part in layers.chain(std::iter::once(path)) {
        for c in part.split('/').filter(|c| !c.is_empty()) {
            out.push(if c == "." || c == ".." { "_" } else { c });
        }
    }
    out
}

/// The file differences grouped by layer, each layer's line then its entries, indented.
pub fn print_files(n: &imgpipe_repro::NestedDiff, indent: &str) {
    let mut layer: Option<&[String]> = None;
    for f in &n.differences {
        // A difference of the images themselves (their formats) heads no layer.
        let sub = if f.within.is_empty() { "" } else { "  " };
        if layer != Some(f.within.as_slice()) && !f.within.is_empty() {
            println!("{indent}{}:", f.within.join(" > "));
        }
        layer = Some(f.within.as_slice());
        println!("{indent}{sub}{}: {}", f.path, f.what);
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
    // The report is written into a scratch directory beside DIR, renamed to DIR at the end
    // (removed on an error or a signal).
    let report = match &args.report_dir {
        Some(dir) => {
            anyhow::ensure!(
                !dir.exists(),
                "--report-dir: {} already exists",
                dir.display()
            );
            let parent = match dir.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => std::path::PathBuf::from("."),
            };
            anyhow::ensure!(
                parent.is_dir(),
                "--report-dir: {} is in a directory that does not exist",
                dir.display()
            );
            Some(
                imgpipe_repro::WorkDir::create_in(&parent, ".imgpipe-report").with_context(
                    || format!("--report-dir: cannot write in {}", parent.display()),
                )?,
            )
        }
        None => None,
    };
    let (mut written, mut skipped, mut write_err) = (0u64, 0u64, None);
    let len = a
        .metadata()
        .with_context(|| format!("cannot open {}", args.a.display()))?
        .len();
    let mut opts = ImageDiffOptions::default();
    opts.passphrases = passphrases(&args)?.map(std::sync::Arc::new);
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
    let files = opts.files.is_some();
    let bar = progress::bytes(len, "comparing");
    // When the bytes are read, a spinner while the files inside are compared.
    let (mut seen, mut spin) = (0u64, None);
    let mut save = |d: &imgpipe_repro::FileDifference, va: &[u8], vb: &[u8]| {
        let Some(w) = &report else { return };
        if write_err.is_some() {
            return;
        }
        let n = (va.len() + vb.len()) as u64;
        if written + n > args.report_max {
            skipped += 1;
            return;
        }
        for (side, data) in [("a", va), ("b", vb)] {
            let p = w.path().join(report_path(side, &d.within, &d.path));
            let r = p
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::write(&p, data));
            if let Err(e) = r {
                write_err = Some(format!("--report-dir: writing {}: {e}", p.display()));
                return;
            }
        }
        written += n;
    };
    let rep = imgpipe_repro::diff_images_with(
        &a,
        &b,
        opts,
        &mut |n| {
            bar.inc(n);
            seen += n;
            if seen >= len && spin.is_none() && files {
                bar.finish_and_clear();
                spin = Some(progress::spinner("comparing files inside the images"));
            }
        },
        report
            .is_some()
            .then_some(&mut save as imgpipe_repro::ContentSink<'_>),
    );
    let rep = match rep {
        Ok(r) => r,
        Err(imgpipe_repro::Error::WrongPassphrase { second, layer }) => {
            let (flag, image) = match (second, &args.passphrase_file_b) {
                (true, Some(_)) => ("--passphrase-file-b", &args.b),
                (true, None) => ("--passphrase-file", &args.b),
                (false, _) => ("--passphrase-file", &args.a),
            };
            // The image itself, or the volume at `layer` inside it.
            if layer == imgpipe_repro::Format::Luks2.name() {
                anyhow::bail!("{flag}: opens no keyslot of {}", image.display());
            }
            anyhow::bail!(
                "{flag}: opens no keyslot of the LUKS2 volume {layer} in {}",
                image.display()
            );
        }
        Err(e) => return Err(anyhow::Error::new(e).context("comparing the two files")),
    };
    bar.finish_and_clear();
    if let Some(s) = spin {
        s.finish_and_clear();
    }
    if let Some(e) = write_err {
        anyhow::bail!(e);
    }
    if let (Some(w), Some(dir)) = (report, &args.report_dir) {
        let json = serde_json::to_vec_pretty(&rep).context("--report-dir: report.json")?;
        std::fs::write(w.path().join("report.json"), json)
            .with_context(|| format!("--report-dir: writing {}", dir.display()))?;
        let tmp = w.keep();
        std::fs::rename(&tmp, dir).with_context(|| {
            let _ = std::fs::remove_dir_all(&tmp);
            format!("--report-dir: renaming into {}", dir.display())
        })?;
        if skipped > 0 {
            eprintln!(
                "imgpipe diff: --report-dir: {skipped} differing file pair(s) left out: past --report-max"
            );
        }
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

#[cfg(test)]
mod tests {
    use super::report_path;

    #[test]
    fn report_paths_stay_inside() {
        let within = [
            "iso9660".to_owned(),
            "/LiveOS/squashfs.img (squashfs)".to_owned(),
        ];
        assert_eq!(
            report_path("a", &within, "/etc/hostname"),
            std::path::Path::new("a/LiveOS/squashfs.img/etc/hostname")
        );
        let hostile = ["iso9660".to_owned(), "/../.. (squashfs)".to_owned()];
        let p = report_path("b", &hostile, "/../../etc//./passwd");
        assert_eq!(p, std::path::Path::new("b/_/_/_/_/etc/_/passwd"));
        assert!(
            p.components()
                .all(|c| matches!(c, std::path::Component::Normal(_)))
        );
    }
}
