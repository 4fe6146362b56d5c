//! `imgpipe inject IMAGE --put SLOT=FILE [-o OUT | -o - | --in-place]`: a piece into a
//! reserved slot in O(piece) work (imgpipe_repro::inject does the work).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use imgpipe_repro::inject::{Overlay, PieceFile, SlotTable, apply};

use crate::{output, target};

/// Arguments of `imgpipe inject`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image built with slots (`imgpipe build --reserve`).
    image: PathBuf,
    /// SLOT=FILE: put FILE's bytes in the slot (a path as --reserve named it); repeatable.
    #[arg(long, value_name = "SLOT=FILE", required_unless_present = "list")]
    put: Vec<String>,
    /// Write the result to OUT (a copy-on-write or kernel-side copy of IMAGE, then the
    /// patches), or stream it to stdout with `-o -`.
    #[arg(short, long, value_name = "OUT", required_unless_present_any = ["in_place", "list"])]
    output: Option<PathBuf>,
    /// Patch IMAGE itself.
    #[arg(long, conflicts_with = "output")]
    in_place: bool,
    /// List the image's slots instead.
    #[arg(long, conflicts_with_all = ["put", "output", "in_place"])]
    list: bool,
    /// Replace OUT even when it holds a recognised image.
    #[arg(long)]
    force: bool,
    /// Print a JSON report.
    #[arg(long)]
    json: bool,
}

fn open(p: &Path) -> anyhow::Result<File> {
    File::open(p).with_context(|| format!("cannot open {}", p.display()))
}

/// Runs `imgpipe inject`.
pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let base = open(&a.image)?;
    let table = SlotTable::read(&base).with_context(|| format!("{}", a.image.display()))?;
    if a.list {
        if a.json {
            output::print_json(&table)?;
        } else {
            for s in &table.slots {
                println!(
                    "{}: {} of {} bytes used, at {} in {}",
                    s.name, s.size, s.capacity, s.offset, s.within
                );
            }
        }
        return Ok(output::exit(output::SUCCESS));
    }
    // Every piece is read and checked before anything is written.
    let mut pieces = Vec::new();
    for p in &a.put {
        let (slot, file) = p
            .split_once('=')
            .with_context(|| format!("--put {p:?}: expected SLOT=FILE"))?;
        let f = PieceFile::open(Path::new(file))
            .with_context(|| format!("--put {p:?}: cannot read {file}"))?;
        // Its size is checked before it is read: a huge file is refused, not loaded.
        let capacity = table.slot(slot)?.capacity;
        anyhow::ensure!(
            f.len() <= capacity,
            "--put {p:?}: the piece is {} bytes; the slot holds at most {capacity}",
            f.len()
        );
        let mut bytes = Vec::with_capacity(usize::try_from(f.len()).unwrap_or(0));
        f.for_each_chunk(|b| bytes.extend_from_slice(b))
            .with_context(|| format!("--put {p:?}: cannot read {file}"))?;
        pieces.push((slot.to_owned(), bytes));
    }
    let puts: Vec<(&str, &[u8])> = pieces
        .iter()
        .map(|(s, b)| (s.as_str(), b.as_slice()))
        .collect();
    let patches = table.patches(&puts)?;
    let report = serde_json::json!({
        "slots": pieces.iter().map(|(s, b)| serde_json::json!({"slot": s, "bytes": b.len()})).collect::<Vec<_>>(),
    });
    match (&a.output, a.in_place) {
        (_, true) => {
            let f = File::options()
                .read(true)
                .write(true)
                .open(&a.image)
                .with_context(|| format!("cannot open {} for writing", a.image.display()))?;
            apply(&f, &patches)?;
            f.sync_all().context("syncing the image")?;
        }
        (Some(out), false) if out.as_os_str() == "-" => {
            let mut o = Overlay::new(base, patches)?;
            let mut stdout = std::io::stdout().lock();
            std::io::copy(&mut o, &mut stdout).context("writing to stdout")?;
            stdout.flush().context("writing to stdout")?;
            return Ok(output::exit(output::SUCCESS));
        }
        (Some(out), false) => {
            target::check_replace("-o/--output", out, a.force)?;
            let f = target::create(out)?;
            // std::io::copy between files is copy_file_range: a reflink where the file
            // system shares extents, a kernel-side copy otherwise.
            let mut src = base;
            let mut dst = f.file();
            std::io::copy(&mut src, &mut dst).context("copying the image")?;
            apply(f.file(), &patches)?;
            target::commit(f)?;
        }
        (None, false) => anyhow::bail!("give -o OUT, -o - or --in-place"),
    }
    output::summary(
        a.json,
        &report,
        format_args!(
            "{}: {} injected",
            a.output.as_deref().unwrap_or(&a.image).display(),
            output::plural(pieces.len() as u64, "piece", "pieces")
        ),
    )?;
    Ok(output::exit(output::SUCCESS))
}
