//! `imgpipe luks ...`: LUKS2 volumes over crates/luks (issue 4).
//!
//! Passphrase files are used byte for byte, trailing newline included, exactly as
//! cryptsetup's `--key-file` does, so the same file opens the volume with both tools.

use std::fs::{File, OpenOptions};
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::builder::TypedValueParser as _;
use imgpipe_luks::{
    Argon2Variant, Error as LuksError, FormatOptions, HashAlg, Inspection, KdfParams,
    KeyslotParams, Luks2Header, Metadata,
};
use imgpipe_repro::Seed;
use imgpipe_repro::luks::{KeySource, KeyslotChoice, LuksStep};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::cmd::describe::luks_dump;
use crate::cmd::inspect::{Format, InfoArgs, info};
use crate::size::parse_size;
use crate::{output, target};

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
    /// Seed (hex) for a reproducible result instead of the OS random source.
    #[arg(long)]
    seed: Option<String>,
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
    Format {
        /// Image file (created if missing).
        image: PathBuf,
        /// File whose bytes are the passphrase.
        #[arg(long)]
        passphrase_file: PathBuf,
        /// Set the image size: bytes, or with K, M, G, T (required when the image does not
        /// exist).
        #[arg(long, value_parser = parse_size)]
        size: Option<u64>,
        /// Volume key size in bits.
        #[arg(long, default_value_t = 512, value_parser = clap::builder::PossibleValuesParser::new(["256", "512"]).map(|s| s.parse::<u32>().unwrap_or(512)))]
        key_size: u32,
        /// Encryption sector size in bytes.
        #[arg(long, default_value_t = 512, value_parser = clap::builder::PossibleValuesParser::new(["512", "1024", "2048", "4096"]).map(|s| s.parse::<u32>().unwrap_or(512)))]
        sector_size: u32,
        /// Header copy size (16K .. 4M, a power of two).
        #[arg(long, default_value = "16K", value_parser = parse_size)]
        header_size: u64,
        /// Data offset (0 makes a detached header).
        #[arg(long, default_value = "16M", value_parser = parse_size)]
        data_offset: u64,
        /// Keyslots area size (default: up to the data offset).
        #[arg(long, value_parser = parse_size)]
        keyslots_size: Option<u64>,
        /// PBKDF2 iterations of the volume key digest.
        #[arg(long, default_value_t = 100_000)]
        digest_iterations: u32,
        /// Label (as cryptsetup --label).
        #[arg(long, default_value = "")]
        label: String,
        /// Subsystem.
        #[arg(long, default_value = "")]
        subsystem: String,
        /// UUID (default: random, or derived from --seed).
        #[arg(long)]
        uuid: Option<String>,
        #[command(flatten)]
        kdf: KdfArgs,
        /// Overwrite a file that holds a LUKS header, a filesystem or a partition table (its
        /// keyslots and data become unrecoverable).
        #[arg(long)]
        force: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print both header copies' state and the metadata.
    Dump {
        /// Image or detached header.
        image: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check a passphrase (exit 1 when no keyslot accepts it).
    Unlock {
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
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Add a keyslot for a new passphrase (unlocking with an existing one).
    AddKey {
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
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove the keyslot a passphrase opens, or a keyslot by id.
    RemoveKey {
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
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change the passphrase of the keyslot a passphrase opens.
    ChangeKey {
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
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Encrypt a plaintext file into the data segment.
    Encrypt {
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
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Decrypt the data segment into a plaintext file.
    Decrypt {
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
        /// Replace OUTPUT even when it holds a recognised filesystem or partition table.
        #[arg(long)]
        force: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
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

fn read_header(file: &mut File, path: &Path) -> anyhow::Result<Luks2Header> {
    let hdr = Luks2Header::read(file)
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
fn seed(text: Option<&str>) -> anyhow::Result<Option<Seed>> {
    text.map(|t| Seed::parse_hex(t).context("--seed must be an even number of hex digits"))
        .transpose()
}

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

/// Unlocks the volume whose header is in `header` (or `image`) and returns its data segment;
/// `Err(code)` when the passphrase opens no keyslot (exit 1, message printed).
fn unlock_segment(
    image: &Path,
    header: Option<&Path>,
    passphrase_file: &Path,
) -> anyhow::Result<Result<imgpipe_luks::DataSegment, ExitCode>> {
    let pass = passphrase(passphrase_file)?;
    let hdr_path = header.unwrap_or(image);
    let mut hf = open_ro(hdr_path)?;
    let hdr = read_header(&mut hf, hdr_path)?;
    match imgpipe_repro::luks::unlock_segment(&hdr, &mut hf, &pass) {
        Ok(Some(seg)) => Ok(Ok(seg)),
        Ok(None) => Ok(Err(wrong_passphrase(hdr_path))),
        Err(e) => Err(luks_error(e, hdr_path)),
    }
}

/// Prints `keyslot N <done>` (or its JSON) after a keyslot operation, syncing the image
/// first; exit 1 when the passphrase opened no keyslot.
fn keyslot_done(
    result: imgpipe_repro::Result<Option<u32>>,
    f: &File,
    image: &Path,
    done: &str,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let Some(id) = result.map_err(|e| luks_error(e, image))? else {
        return Ok(wrong_passphrase(image));
    };
    f.sync_all().context("cannot sync the image")?;
    output::summary(
        json,
        &serde_json::json!({ "keyslot": id }),
        format_args!("keyslot {id} {done}"),
    )?;
    Ok(output::exit(output::SUCCESS))
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

/// Runs `imgpipe luks`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut os: OsRng = rand_core::UnwrapErr(getrandom::SysRng);
    match args.command {
        Command::Info(a) => info(a, Format::Luks2),
        Command::Format {
            image,
            passphrase_file,
            size,
            key_size,
            sector_size,
            header_size,
            data_offset,
            keyslots_size,
            digest_iterations,
            label,
            subsystem,
            uuid,
            kdf,
            force,
            json,
        } => {
            // Every argument is checked before the image is created or touched.
            let pass = passphrase(&passphrase_file)?;
            target::check_output("IMAGE", &image)?;
            let exists = image.exists();
            if exists {
                target::refuse_recognised(&image, force)?;
            }
            let len = match (size, exists) {
                (Some(s), _) => s,
                (None, false) => bail!("{} does not exist: give --size", image.display()),
                (None, true) => std::fs::metadata(&image)
                    .with_context(|| format!("cannot stat {}", image.display()))?
                    .len(),
            };
            if data_offset != 0 && len <= data_offset {
                bail!(
                    "{} would be {len} bytes, not larger than --data-offset {data_offset}",
                    image.display()
                );
            }
            let opts = FormatOptions {
                hdr_size: header_size,
                keyslots_size,
                data_offset,
                sector_size,
                key_size: (key_size / 8) as usize,
                keyslot: kdf.params(),
                digest_iterations,
                label,
                subsystem,
                uuid,
                ..FormatOptions::default()
            };
            // With --seed, the UUID, volume key and salts come from their own keyed streams.
            let keys = keys(seed(kdf.seed.as_deref())?, &mut os);
            let format = |f: &mut File| -> anyhow::Result<Luks2Header> {
                if size.is_some() {
                    f.set_len(len).context("cannot set the image size")?;
                }
                imgpipe_repro::luks::format(f, opts, &pass, keys).map_err(|e| luks_error(e, &image))
            };
            let hdr = if exists {
                // An existing image (or device) is formatted in place, as cryptsetup does.
                let mut f = open_rw(&image)?;
                let hdr = format(&mut f)?;
                f.sync_all().context("cannot sync the image")?;
                hdr
            } else {
                let out = target::create(&image)?;
                let mut f = out.file().try_clone().context("cannot use the image")?;
                let hdr = format(&mut f)?;
                drop(f);
                target::commit(out)?;
                hdr
            };
            if json {
                output::print_json(&Inspection::of(&hdr))?;
            } else {
                println!("{}: LUKS2 volume {} formatted", image.display(), hdr.uuid);
            }
            Ok(output::exit(output::SUCCESS))
        }
        Command::Dump { image, json } => {
            let mut f = open_ro(&image)?;
            let hdr = read_header(&mut f, &image)?;
            if json {
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
        Command::Unlock {
            image,
            passphrase_file,
            key_slot,
            dump_volume_key,
            json,
        } => {
            let pass = passphrase(&passphrase_file)?;
            let mut f = open_ro(&image)?;
            let hdr = read_header(&mut f, &image)?;
            let u = match hdr.try_unlock(&mut f, &pass, key_slot) {
                Ok(Some(u)) => u,
                Ok(None) => return Ok(wrong_passphrase(&image)),
                Err(e) => return Err(anyhow::Error::new(e).context(image.display().to_string())),
            };
            let hex = u.volume_key.to_hex();
            if json {
                #[derive(Serialize)]
                struct Unlocked<'a> {
                    keyslot: u32,
                    #[serde(skip_serializing_if = "Option::is_none")]
                    volume_key: Option<&'a str>,
                }
                output::print_json(&Unlocked {
                    keyslot: u.keyslot,
                    volume_key: dump_volume_key.then_some(hex.as_str()),
                })?;
            } else if dump_volume_key {
                println!("{}", hex.as_str());
            } else {
                eprintln!("keyslot {} unlocked", u.keyslot);
            }
            Ok(output::exit(output::SUCCESS))
        }
        Command::AddKey {
            image,
            passphrase_file,
            new_passphrase_file,
            key_slot,
            kdf,
            json,
        } => {
            let pass = passphrase(&passphrase_file)?;
            let new = passphrase(&new_passphrase_file)?;
            let mut f = open_rw(&image)?;
            let mut hdr = read_header(&mut f, &image)?;
            let keys = keys(seed(kdf.seed.as_deref())?, &mut os);
            let r = imgpipe_repro::luks::add_key(
                &mut hdr,
                &mut f,
                &pass,
                &new,
                &kdf.params(),
                key_slot,
                keys,
            );
            keyslot_done(r, &f, &image, "added", json)
        }
        Command::RemoveKey {
            image,
            passphrase_file,
            key_slot,
            force,
            json,
        } => {
            let mut f = open_rw(&image)?;
            let mut hdr = read_header(&mut f, &image)?;
            let pass;
            let which = match (key_slot, passphrase_file) {
                (Some(id), _) => KeyslotChoice::Id(id),
                (None, Some(p)) => {
                    pass = passphrase(&p)?;
                    KeyslotChoice::Passphrase(&pass)
                }
                (None, None) => bail!("give --passphrase-file or --key-slot"),
            };
            let r = imgpipe_repro::luks::remove_key(&mut hdr, &mut f, which, force);
            keyslot_done(r, &f, &image, "removed", json)
        }
        Command::ChangeKey {
            image,
            passphrase_file,
            new_passphrase_file,
            kdf,
            json,
        } => {
            let pass = passphrase(&passphrase_file)?;
            let new = passphrase(&new_passphrase_file)?;
            let mut f = open_rw(&image)?;
            let mut hdr = read_header(&mut f, &image)?;
            let keys = keys(seed(kdf.seed.as_deref())?, &mut os);
            let r =
                imgpipe_repro::luks::change_key(&mut hdr, &mut f, &pass, &new, &kdf.params(), keys);
            keyslot_done(r, &f, &image, "changed", json)
        }
        Command::Encrypt {
            image,
            passphrase_file,
            input,
            header,
            json,
        } => {
            let seg = match unlock_segment(&image, header.as_deref(), &passphrase_file)? {
                Ok(seg) => seg,
                Err(code) => return Ok(code),
            };
            let plain = open_ro(&input)?;
            let total = plain.metadata().map(|m| m.len()).unwrap_or(0);
            let mut dev = open_rw(&image)?;
            let bar = crate::progress::bytes(total, "encrypting");
            let n = seg
                .encrypt_stream(BufReader::new(plain), &mut dev, &mut |d| {
                    bar.set_position(d)
                })
                .context("cannot encrypt the payload")?;
            bar.finish_and_clear();
            dev.sync_all().context("cannot sync the image")?;
            output::summary(
                json,
                &serde_json::json!({ "bytes": n, "offset": seg.offset }),
                format_args!(
                    "{} encrypted at offset {}",
                    output::plural(n, "byte", "bytes"),
                    seg.offset
                ),
            )?;
            Ok(output::exit(output::SUCCESS))
        }
        Command::Decrypt {
            image,
            passphrase_file,
            output: out_path,
            header,
            force,
            json,
        } => {
            target::check_replace("-o/--output", &out_path, force)?;
            let seg = match unlock_segment(&image, header.as_deref(), &passphrase_file)? {
                Ok(seg) => seg,
                Err(code) => return Ok(code),
            };
            let mut dev = open_ro(&image)?;
            let size = dev.metadata().context("cannot stat the image")?.len();
            let len = seg.payload_len(size);
            let bar = crate::progress::bytes(len, "decrypting");
            imgpipe_repro::luks::decrypt_to_file(&seg, &mut dev, len, &out_path, &mut |d| {
                bar.set_position(d)
            })
            .map_err(|e| luks_error(e, &image))?;
            bar.finish_and_clear();
            if json {
                output::print_json(&serde_json::json!({ "bytes": len, "output": out_path }))?;
            } else {
                eprintln!("{} decrypted", output::plural(len, "byte", "bytes"));
            }
            Ok(output::exit(output::SUCCESS))
        }
    }
}
