//! `imgpipe inspect FILE [--json]`: recognise a format and describe it; `<group> info` is the
//! same report limited to one format.
//!
//! Detection and the typed inspections live in `imgpipe_repro` (the format registry); this
//! module only opens the file and renders the report as text or JSON.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::describe;
use crate::output;
use anyhow::{Context, bail};
use imgpipe_repro::Report;

pub use imgpipe_repro::Format;

/// Arguments of `imgpipe inspect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image, device or kickstart file.
    file: PathBuf,
    /// Print a JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Arguments of `<group> info`.
#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    /// The image.
    file: PathBuf,
    /// Byte offset of the image inside the file.
    #[arg(long, default_value_t = 0, value_parser = crate::size::parse_size)]
    offset: u64,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Recognises and describes `path` from byte `offset` on.
pub fn report_at(path: &Path, offset: u64) -> anyhow::Result<Report> {
    let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let len = f
        .metadata()
        .with_context(|| format!("cannot size {}", path.display()))?
        .len();
    let r = if offset == 0 {
        imgpipe_repro::inspect(std::io::BufReader::new(f))
    } else {
        if offset > len && len != 0 {
            bail!(
                "--offset {offset} is beyond the end of {} ({len} bytes)",
                path.display()
            );
        }
        // Block devices report length 0: let the window run to the end of what can be read.
        let window_len = if len == 0 {
            u64::MAX - offset
        } else {
            len - offset
        };
        imgpipe_repro::inspect(imgpipe_gptpart::Window::new(f, offset, window_len))
    };
    match r.with_context(|| format!("{}: cannot be read", path.display()))? {
        Some(rep) => Ok(rep),
        None => bail!("{}: unrecognised format", path.display()),
    }
}

/// Recognises and describes `path`.
pub fn report(path: &Path) -> anyhow::Result<Report> {
    report_at(path, 0)
}

/// Prints a report: JSON (`format`, `size`, `truncated` when it is, `details`) or the text
/// summary of [`describe::text`] (`FILE: FORMAT, SIZE`, a warning line for a truncated image,
/// then aligned `Label: value` lines).
///
/// `name` is how the first line names the image (the path, and the offset when not 0).
pub fn render(name: &str, report: &Report, json: bool) -> anyhow::Result<()> {
    if json {
        return output::print_json(report);
    }
    print!("{}", describe::text(name, report));
    output::flush_stdout()
}

/// Runs `<group> info`: `inspect` limited to `format`.
pub fn info(args: InfoArgs, format: Format) -> anyhow::Result<ExitCode> {
    let r = report_at(&args.file, args.offset)?;
    if r.format != format {
        bail!(
            "{}: not a {format} image (it is {})",
            args.file.display(),
            r.format
        );
    }
    let name = match args.offset {
        0 => args.file.display().to_string(),
        at => format!("{} at offset {at}", args.file.display()),
    };
    render(&name, &r, args.json)?;
    Ok(output::exit(output::SUCCESS))
}

/// Runs `imgpipe inspect`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let report = report(&args.file)?;
    render(&args.file.display().to_string(), &report, args.json)?;
    Ok(output::exit(output::SUCCESS))
}
