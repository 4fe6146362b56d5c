//! `imgpipe luks unlock|add-key|remove-key|change-key`: each unlocks with a passphrase
//! ([`imgpipe_repro::luks`]) and reports the keyslot; a wrong passphrase is exit 1.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use imgpipe_repro::luks::KeyslotChoice;
use serde::Serialize;

use super::{
    KdfArgs, KdfBudget, OsRng, keys, luks_error, open_ro, open_rw, passphrase, read_header,
    wrong_passphrase,
};
use crate::output;

#[derive(Debug, clap::Args)]
pub(super) struct UnlockArgs {
    /// Image or detached header.
    image: PathBuf,
    /// File whose bytes are the passphrase.
    #[arg(long)]
    passphrase_file: PathBuf,
    /// Only try this keyslot.
    #[arg(long)]
    key_slot: Option<u32>,
    /// Print the volume key as hex on stdout.
    #[arg(long)]
    dump_volume_key: bool,
    #[command(flatten)]
    budget: KdfBudget,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub(super) struct AddKeyArgs {
    /// Image or detached header.
    image: PathBuf,
    /// An existing passphrase.
    #[arg(long)]
    passphrase_file: PathBuf,
    /// The new passphrase.
    #[arg(long)]
    new_passphrase_file: PathBuf,
    /// Keyslot id for the new key (default: lowest free).
    #[arg(long)]
    key_slot: Option<u32>,
    #[command(flatten)]
    kdf: KdfArgs,
    #[command(flatten)]
    budget: KdfBudget,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub(super) struct RemoveKeyArgs {
    /// Image or detached header.
    image: PathBuf,
    /// Remove the keyslot this passphrase opens.
    #[arg(long, required_unless_present = "key_slot")]
    passphrase_file: Option<PathBuf>,
    /// Remove this keyslot.
    #[arg(long, conflicts_with = "passphrase_file")]
    key_slot: Option<u32>,
    /// Allow removing the last keyslot (the data becomes unrecoverable).
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    budget: KdfBudget,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub(super) struct ChangeKeyArgs {
    /// Image or detached header.
    image: PathBuf,
    /// The current passphrase.
    #[arg(long)]
    passphrase_file: PathBuf,
    /// The new passphrase.
    #[arg(long)]
    new_passphrase_file: PathBuf,
    #[command(flatten)]
    kdf: KdfArgs,
    #[command(flatten)]
    budget: KdfBudget,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `imgpipe luks unlock`.
pub(super) fn unlock(a: UnlockArgs) -> anyhow::Result<ExitCode> {
    let pass = passphrase(&a.passphrase_file)?;
    let mut f = open_ro(&a.image)?;
    let hdr = read_header(&mut f, &a.image, a.budget.limits())?;
    let u = match hdr.try_unlock(&mut f, &pass, a.key_slot) {
        Ok(Some(u)) => u,
        Ok(None) => return Ok(wrong_passphrase(&a.image)),
        Err(e) => return Err(anyhow::Error::new(e).context(a.image.display().to_string())),
    };
    let hex = u.volume_key.to_hex();
    if a.json {
        #[derive(Serialize)]
        struct Unlocked<'a> {
            keyslot: u32,
            #[serde(skip_serializing_if = "Option::is_none")]
            volume_key: Option<&'a str>,
        }
        output::print_json(&Unlocked {
            keyslot: u.keyslot,
            volume_key: a.dump_volume_key.then_some(hex.as_str()),
        })?;
    } else if a.dump_volume_key {
        println!("{}", hex.as_str());
    } else {
        eprintln!("keyslot {} unlocked", u.keyslot);
    }
    Ok(output::exit(output::SUCCESS))
}

/// Runs `imgpipe luks add-key`.
pub(super) fn add_key(a: AddKeyArgs, os: &mut OsRng) -> anyhow::Result<ExitCode> {
    let pass = passphrase(&a.passphrase_file)?;
    let new = passphrase(&a.new_passphrase_file)?;
    let mut f = open_rw(&a.image)?;
    let mut hdr = read_header(&mut f, &a.image, a.budget.limits())?;
    let keys = keys(a.kdf.seed, os);
    let params = a.kdf.params();
    let r = imgpipe_repro::luks::add_key(&mut hdr, &mut f, &pass, &new, &params, a.key_slot, keys);
    done(r, &f, &a.image, "added", a.json)
}

/// Runs `imgpipe luks remove-key`.
pub(super) fn remove_key(a: RemoveKeyArgs) -> anyhow::Result<ExitCode> {
    let mut f = open_rw(&a.image)?;
    let mut hdr = read_header(&mut f, &a.image, a.budget.limits())?;
    let pass;
    let which = match (a.key_slot, &a.passphrase_file) {
        (Some(id), _) => KeyslotChoice::Id(id),
        (None, Some(p)) => {
            pass = passphrase(p)?;
            KeyslotChoice::Passphrase(&pass)
        }
        (None, None) => bail!("give --passphrase-file or --key-slot"),
    };
    let r = imgpipe_repro::luks::remove_key(&mut hdr, &mut f, which, a.force);
    done(r, &f, &a.image, "removed", a.json)
}

/// Runs `imgpipe luks change-key`.
pub(super) fn change_key(a: ChangeKeyArgs, os: &mut OsRng) -> anyhow::Result<ExitCode> {
    let pass = passphrase(&a.passphrase_file)?;
    let new = passphrase(&a.new_passphrase_file)?;
    let mut f = open_rw(&a.image)?;
    let mut hdr = read_header(&mut f, &a.image, a.budget.limits())?;
    let keys = keys(a.kdf.seed, os);
    let params = a.kdf.params();
    let r = imgpipe_repro::luks::change_key(&mut hdr, &mut f, &pass, &new, &params, keys);
    done(r, &f, &a.image, "changed", a.json)
}

/// Prints `keyslot N <what>` (or its JSON) after a keyslot operation, syncing the image
/// first; exit 1 when the passphrase opened no keyslot.
fn done(
    result: imgpipe_repro::Result<Option<u32>>,
    f: &File,
    image: &Path,
    what: &str,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let Some(id) = result.map_err(|e| luks_error(e, image))? else {
        return Ok(wrong_passphrase(image));
    };
    f.sync_all().context("cannot sync the image")?;
    output::summary(
        json,
        &serde_json::json!({ "keyslot": id }),
        format_args!("keyslot {id} {what}"),
    )?;
    Ok(output::exit(output::SUCCESS))
}
