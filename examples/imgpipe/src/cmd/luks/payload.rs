//! `imgpipe luks encrypt|decrypt`: the payload in place, or out through the atomic writer
//! ([`imgpipe_repro::luks::decrypt_to_file`]).

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use imgpipe_luks::DataSegment;

use super::{KdfBudget, luks_error, open_ro, open_rw, passphrase, read_header, wrong_passphrase};
use crate::{output, target};

#[derive(Debug, clap::Args)]
pub(super) struct EncryptArgs {
    /// Image (or data device when --header is given).
    image: PathBuf,
    /// File whose bytes are the passphrase.
    #[arg(long)]
    passphrase_file: PathBuf,
    /// The plaintext.
    #[arg(long)]
    input: PathBuf,
    /// Detached header file.
    #[arg(long)]
    header: Option<PathBuf>,
    #[command(flatten)]
    budget: KdfBudget,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub(super) struct DecryptArgs {
    /// Image (or data device when --header is given).
    image: PathBuf,
    /// File whose bytes are the passphrase.
    #[arg(long)]
    passphrase_file: PathBuf,
    /// Where to write the plaintext.
    #[arg(short, long)]
    output: PathBuf,
    /// Detached header file.
    #[arg(long)]
    header: Option<PathBuf>,
    #[command(flatten)]
    budget: KdfBudget,
    /// Replace OUTPUT even when it holds a recognised filesystem or partition table.
    #[arg(long)]
    force: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Unlocks the volume whose header is in `header` (or `image`) and returns its data segment;
/// `Err(code)` when the passphrase opens no keyslot (exit 1, message printed).
fn unlock_segment(
    image: &Path,
    header: Option<&Path>,
    passphrase_file: &Path,
    budget: KdfBudget,
) -> anyhow::Result<Result<DataSegment, ExitCode>> {
    let pass = passphrase(passphrase_file)?;
    let hdr_path = header.unwrap_or(image);
    let mut hf = open_ro(hdr_path)?;
    let hdr = read_header(&mut hf, hdr_path, budget.limits())?;
    match imgpipe_repro::luks::unlock_segment(&hdr, &mut hf, &pass) {
        Ok(Some(seg)) => Ok(Ok(seg)),
        Ok(None) => Ok(Err(wrong_passphrase(hdr_path))),
        Err(e) => Err(luks_error(e, hdr_path)),
    }
}

/// Runs `imgpipe luks encrypt`.
pub(super) fn encrypt(a: EncryptArgs) -> anyhow::Result<ExitCode> {
    let seg = match unlock_segment(&a.image, a.header.as_deref(), &a.passphrase_file, a.budget)? {
        Ok(seg) => seg,
        Err(code) => return Ok(code),
    };
    let plain = open_ro(&a.input)?;
    let total = plain.metadata().map(|m| m.len()).unwrap_or(0);
    let mut dev = open_rw(&a.image)?;
    let bar = crate::progress::bytes(total, "encrypting");
    let n = seg
        .encrypt_stream(BufReader::new(plain), &mut dev, &mut |d| {
            bar.set_position(d)
        })
        .context("cannot encrypt the payload")?;
    bar.finish_and_clear();
    dev.sync_all().context("cannot sync the image")?;
    output::summary(
        a.json,
        &serde_json::json!({ "bytes": n, "offset": seg.offset }),
        format_args!(
            "{} encrypted at offset {}",
            output::plural(n, "byte", "bytes"),
            seg.offset
        ),
    )?;
    Ok(output::exit(output::SUCCESS))
}

/// Runs `imgpipe luks decrypt`.
pub(super) fn decrypt(a: DecryptArgs) -> anyhow::Result<ExitCode> {
    target::check_replace("-o/--output", &a.output, a.force)?;
    let seg = match unlock_segment(&a.image, a.header.as_deref(), &a.passphrase_file, a.budget)? {
        Ok(seg) => seg,
        Err(code) => return Ok(code),
    };
    let mut dev = open_ro(&a.image)?;
    let size = dev.metadata().context("cannot stat the image")?.len();
    let len = seg.payload_len(size);
    let bar = crate::progress::bytes(len, "decrypting");
    imgpipe_repro::luks::decrypt_to_file(&seg, &mut dev, len, &a.output, &mut |d| {
        bar.set_position(d)
    })
    .map_err(|e| luks_error(e, &a.image))?;
    bar.finish_and_clear();
    if a.json {
        output::print_json(&serde_json::json!({ "bytes": len, "output": a.output }))?;
    } else {
        eprintln!("{} decrypted", output::plural(len, "byte", "bytes"));
    }
    Ok(output::exit(output::SUCCESS))
}
