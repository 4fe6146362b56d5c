//! `imgpipe luks ...`: LUKS2 volumes over crates/luks (issue 4).
//!
//! Passphrase files are used byte for byte, trailing newline included, exactly as
//! cryptsetup's `--key-file` does, so the same file opens the volume with both tools.

mod format;
mod keyslot;
mod payload;

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use imgpipe_luks::{
    Argon2Variant, Error as LuksError, HashAlg, KdfParams, KeyslotParams, Limits, Luks2Header,
    Metadata,
};
use imgpipe_repro::Seed;
use imgpipe_repro::luks::{KeySource, LuksStep};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::cmd::describe::luks_dump;
use crate::cmd::inspect::{Format, InfoArgs, info};
use crate::output;

/// Arguments of `imgpipe luks`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Pbkdf {
    Argon2id,
    Argon2i,
    Pbkdf2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Hash {
    Sha1,
    Sha256,
    Sha512,
}

impl From<Hash> for HashAlg {
    fn from(h: Hash) -> Self {
        match h {
            Hash::Sha1 => HashAlg::Sha1,
            Hash::Sha256 => HashAlg::Sha256,
            Hash::Sha512 => HashAlg::Sha512,
        }
    }
}

/// KDF options shared by format, add-key and change-key.
#[derive(Debug, Clone, clap::Args)]
struct KdfArgs {
    /// Key derivation function of the new keyslot.
    #[arg(long, value_enum, default_value = "argon2id")]
    pbkdf: Pbkdf,
    /// Argon2 memory cost in KiB (cryptsetup accepts 32 .. 4194304).
    #[arg(long, default_value_t = 1_048_576)]
    pbkdf_memory: u32,
    /// Argon2 time cost (passes).
    #[arg(long, default_value_t = 4)]
    pbkdf_time: u32,
    /// Argon2 lanes.
    #[arg(long, default_value_t = 4)]
    pbkdf_parallel: u32,
    /// PBKDF2 iterations (at least 1000).
    #[arg(long, default_value_t = 1_000_000)]
    iterations: u32,
    /// PBKDF2 hash (also the anti-forensic hash).
    #[arg(long, value_enum, default_value = "sha256")]
    hash: Hash,
    /// Keyslot priority: 0 ignore, 1 normal, 2 prefer.
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=2))]
    priority: Option<u8>,
    /// Seed for a reproducible result instead of the OS random source: 32 hex digits (a
    /// UUID, dashes allowed), or another even number of hex digits.
    #[arg(long, value_parser = crate::flags::parse_seed)]
    seed: Option<Seed>,
}

impl KdfArgs {
    fn params(&self) -> KeyslotParams {
        let kdf = match self.pbkdf {
            Pbkdf::Pbkdf2 => KdfParams::Pbkdf2 {
                hash: self.hash.into(),
                iterations: self.iterations,
            },
            Pbkdf::Argon2id | Pbkdf::Argon2i => KdfParams::Argon2 {
                variant: if self.pbkdf == Pbkdf::Argon2i {
                    Argon2Variant::Argon2i
                } else {
                    Argon2Variant::Argon2id
                },
                time: self.pbkdf_time,
                memory: self.pbkdf_memory,
                cpus: self.pbkdf_parallel,
            },
        };
        KeyslotParams {
            kdf,
            af_hash: self.hash.into(),
            priority: self.priority.filter(|&p| p != 1),
        }
    }
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Describe the image (as `imgpipe inspect`, refusing other formats): text, or JSON.
    Info(InfoArgs),
    /// Write a new LUKS2 header and keyslot 0 (the data area is not touched).
    Format(format::FormatArgs),
    /// Print both header copies' state and the metadata.
    Dump(DumpArgs),
    /// Check a passphrase (exit 1 when no keyslot accepts it).
    Unlock(keyslot::UnlockArgs),
    /// Add a keyslot for a new passphrase (unlocking with an existing one).
    AddKey(keyslot::AddKeyArgs),
    /// Remove the keyslot a passphrase opens, or a keyslot by id.
    RemoveKey(keyslot::RemoveKeyArgs),
    /// Change the passphrase of the keyslot a passphrase opens.
    ChangeKey(keyslot::ChangeKeyArgs),
    /// Encrypt a plaintext file into the data segment.
    Encrypt(payload::EncryptArgs),
    /// Decrypt the data segment into a plaintext file.
    Decrypt(payload::DecryptArgs),
}

fn passphrase(path: &Path) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Zeroizing::new(bytes))
}

fn open_rw(path: &Path) -> anyhow::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open {} for writing", path.display()))
}

fn open_ro(path: &Path) -> anyhow::Result<File> {
    File::open(path).with_context(|| format!("cannot open {}", path.display()))
}

/// `--max-kdf-work` of the commands that unlock (and of `diff --passphrase-file`).
#[derive(Debug, Clone, Copy, clap::Args)]
pub(crate) struct KdfBudget {
    /// Most key-derivation work one unlock may do across every keyslot it tries: Argon2
    /// memory KiB x passes plus PBKDF2 iterations (default 2^29, about a hundred of
    /// cryptsetup's 1 GiB x 4 keyslots); keyslots past it are skipped.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_unlock_work)]
    max_kdf_work: u64,
}

impl KdfBudget {
    pub(crate) fn limits(self) -> Limits {
        Limits {
            max_unlock_work: self.max_kdf_work,
            ..Limits::default()
        }
    }
}

fn read_header(file: &mut File, path: &Path, limits: Limits) -> anyhow::Result<Luks2Header> {
    let hdr = Luks2Header::read_with_limits(file, limits)
        .with_context(|| format!("{}: not a usable LUKS2 header", path.display()))?;
    for c in &hdr.copies {
        if let Some(p) = &c.problem {
            eprintln!(
                "imgpipe: warning: {}: header copy at offset {}: {p}",
                path.display(),
                c.offset
            );
        }
    }
    Ok(hdr)
}

/// The seed of `--seed`: 32 hex digits are the seed itself, other hex is seed material.
/// The OS random source, used without `--seed`.
type OsRng = rand_core::UnwrapErr<getrandom::SysRng>;

/// Where salts and keys come from: the seed's keyed streams, or the OS source.
fn keys(seed: Option<Seed>, os: &mut OsRng) -> KeySource<'_> {
    match seed {
        Some(s) => KeySource::Seed(s),
        None => KeySource::Rng(os),
    }
}

/// A wrong passphrase is a negative answer (exit 1), not an input error.
fn wrong_passphrase(what: &Path) -> ExitCode {
    eprintln!(
        "imgpipe: error: {}: {}",
        what.display(),
        LuksError::WrongPassphrase
    );
    output::exit(output::NEGATIVE)
}

/// The error of a library call, worded with the flags and the image it concerns.
fn luks_error(e: imgpipe_repro::Error, image: &Path) -> anyhow::Error {
    let imgpipe_repro::Error::Luks { step, source } = e else {
        return e.into();
    };
    let what = match step {
        LuksStep::Unlock => image.display().to_string(),
        LuksStep::Format => {
            return flag_error(source).context(format!("cannot format {}", image.display()));
        }
        LuksStep::CheckRemovable => {
            return match source {
                LuksError::LastKeyslot(id) => anyhow::anyhow!(
                    "keyslot {id} is the last one: the volume would become unusable (use --force)"
                ),
                other => other.into(),
            };
        }
        LuksStep::AddKeyslot => "cannot add the keyslot".to_owned(),
        LuksStep::ChangeKeyslot => "cannot change the keyslot".to_owned(),
        LuksStep::RemoveKeyslot => "cannot remove the keyslot".to_owned(),
        LuksStep::DataSegment => "cannot use the data segment".to_owned(),
        LuksStep::Decrypt => "cannot decrypt the payload".to_owned(),
        _ => step.to_string(),
    };
    anyhow::Error::new(source).context(what)
}

#[derive(Serialize)]
struct Dump<'a> {
    uuid: &'a str,
    label: &'a str,
    subsystem: &'a str,
    hdr_size: u64,
    seqid: u64,
    copies: &'a [imgpipe_luks::CopyReport; 2],
    metadata: &'a Metadata,
}

/// Names the flag behind an option the LUKS crate refuses.
fn flag_error(e: LuksError) -> anyhow::Error {
    if let LuksError::InvalidOption { option, reason } = &e {
        let flag = match *option {
            "hdr_size" => "--header-size",
            "data_offset" => "--data-offset",
            "sector_size" => "--sector-size",
            "pbkdf2 iterations" => "--iterations",
            "argon2 time" => "--pbkdf-time",
            "argon2 memory" => "--pbkdf-memory",
            "argon2 parallel" => "--pbkdf-parallel",
            _ => return e.into(),
        };
        return anyhow::anyhow!("{flag}: {reason}");
    }
    e.into()
}

#[derive(Debug, clap::Args)]
struct DumpArgs {
    /// Image or detached header.
    image: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn dump(a: DumpArgs) -> anyhow::Result<ExitCode> {
    let mut f = open_ro(&a.image)?;
    let hdr = read_header(&mut f, &a.image, Limits::default())?;
    if a.json {
        output::print_json(&Dump {
            uuid: &hdr.uuid,
            label: &hdr.label,
            subsystem: &hdr.subsystem,
            hdr_size: hdr.hdr_size,
            seqid: hdr.seqid,
            copies: &hdr.copies,
            metadata: &hdr.metadata,
        })?;
    } else {
        print!("{}", luks_dump(&hdr));
    }
    Ok(output::exit(output::SUCCESS))
}

/// Runs `imgpipe luks`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut os: OsRng = rand_core::UnwrapErr(getrandom::SysRng);
    match args.command {
        Command::Info(a) => info(a, Format::Luks2),
        Command::Format(a) => format::format(a, &mut os),
        Command::Dump(a) => dump(a),
        Command::Unlock(a) => keyslot::unlock(a),
        Command::AddKey(a) => keyslot::add_key(a, &mut os),
        Command::RemoveKey(a) => keyslot::remove_key(a),
        Command::ChangeKey(a) => keyslot::change_key(a, &mut os),
        Command::Encrypt(a) => payload::encrypt(a),
        Command::Decrypt(a) => payload::decrypt(a),
    }
}
