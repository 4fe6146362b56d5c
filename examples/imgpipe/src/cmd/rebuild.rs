//! `imgpipe rebuild MANIFEST`: the clean-room proof of an `imgpipe build`
//! (imgpipe_repro::build::rebuild does the work; this parses flags and renders).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use imgpipe_repro::build::{Event, RebuildReport, rebuild};

use crate::{output, progress};

/// Arguments of `imgpipe rebuild`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The manifest `imgpipe build --manifest` wrote (its recipe's paths are read from the
    /// manifest's directory).
    manifest: PathBuf,
    /// Where the rebuild writes (a fresh directory is made inside; default: the system's
    /// temporary directory).
    #[arg(long, value_name = "DIR")]
    work: Option<PathBuf>,
    /// Keep the rebuilt outputs.
    #[arg(long)]
    keep: bool,
    /// The LUKS2 passphrase, when the recorded build encrypted its disk.
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
    /// Print a JSON report.
    #[arg(long)]
    json: bool,
}

/// Runs `imgpipe rebuild`.
pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let pass = a
        .passphrase_file
        .as_ref()
        .map(|f| {
            std::fs::read(f)
                .with_context(|| format!("--passphrase-file: cannot read {}", f.display()))
        })
        .transpose()?;
    let base = a.work.clone().unwrap_or_else(std::env::temp_dir);
    let work = imgpipe_repro::WorkDir::create_in(&base, "imgpipe-rebuild")
        .with_context(|| format!("--work: cannot create a directory in {}", base.display()))?;
    let mut bar = progress::bytes(0, "starting");
    let rep = rebuild(&a.manifest, work.path(), pass, &mut |e| match e {
        Event::Step { what, total } => {
            bar.finish_and_clear();
            bar = progress::bytes(total, what);
        }
        Event::Progress(done) => bar.set_position(done),
        _ => {}
    });
    bar.finish_and_clear();
    let rep = rep?;
    let kept = a.keep.then(|| work.keep());
    if a.json {
        output::print_json(&rep)?;
    } else {
        print(&rep);
        if let Some(k) = kept {
            println!("  rebuilt outputs kept in {}", k.display());
        }
    }
    Ok(output::exit(if rep.proven {
        output::SUCCESS
    } else {
        output::NEGATIVE
    }))
}

fn print(rep: &RebuildReport) {
    if !rep.changed_inputs.is_empty() {
        println!("not proven: inputs changed since the recorded build:");
        for (name, was, is) in &rep.changed_inputs {
            println!("  {name}: sha256 {was} recorded, {is} now");
        }
        return;
    }
    if rep.proven {
        let names: Vec<&str> = rep.outputs.iter().map(|o| o.name.as_str()).collect();
        println!(
            "proven: {} rebuilt byte-identical from the recorded inputs",
            names.join(", ")
        );
        return;
    }
    println!("not proven:");
    for o in &rep.outputs {
        if o.identical {
            println!("  {}: identical", o.name);
            continue;
        }
        println!(
            "  {}: sha256 {} recorded, {} rebuilt",
            o.name, o.recorded, o.rebuilt
        );
        if let Some(files) = o.diff.as_ref().and_then(|d| d.files.as_ref()) {
            super::diff::print_files(files, "    ");
        }
    }
}
