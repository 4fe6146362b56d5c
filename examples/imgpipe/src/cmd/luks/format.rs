//! `imgpipe luks format`: flags to [`FormatOptions`], one call to [`imgpipe_repro::luks::format`].

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::builder::TypedValueParser as _;
use imgpipe_luks::{FormatOptions, Inspection, Luks2Header};

use super::{KdfArgs, OsRng, keys, luks_error, open_rw, passphrase};
use crate::size::parse_size;
use crate::{output, target};

#[derive(Debug, clap::Args)]
pub(super) struct FormatArgs {
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
}

/// Runs `imgpipe luks format`.
pub(super) fn format(a: FormatArgs, os: &mut OsRng) -> anyhow::Result<ExitCode> {
    let FormatArgs {
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
    } = a;
    // Every argument is checked before the image is created or touched.
    let pass = passphrase(&passphrase_file)?;
    let exists = image.exists();
    if !exists || image.is_dir() {
        // A new image goes through the atomic writer; an existing file or block device is
        // formatted in place, as cryptsetup does.
        target::check_output("IMAGE", &image)?;
    }
    if exists {
        target::refuse_recognised(&image, force)?;
        if !force && holds_data(&image)? {
            bail!(
                "{} holds data: use --force to format it (as cryptsetup asks before it overwrites)",
                image.display()
            );
        }
    }
    // The size of what is there: a block device reports 0 in its metadata, so seek.
    let current = if exists {
        open_rw(&image)?
            .seek(SeekFrom::End(0))
            .with_context(|| format!("cannot size {}", image.display()))?
    } else {
        0
    };
    let len = match (size, exists) {
        (Some(s), true) if s < current => bail!(
            "--size {s} is smaller than {} ({current} bytes): it would cut data off",
            image.display()
        ),
        (Some(s), _) => s,
        (None, false) => bail!("{} does not exist: give --size", image.display()),
        (None, true) => current,
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
    let keys = keys(kdf.seed, os);
    let format = |f: &mut File| -> anyhow::Result<Luks2Header> {
        let grow = size.is_some() && len != current;
        if grow {
            f.set_len(len).context("cannot set the image size")?;
        }
        let formatted =
            imgpipe_repro::luks::format(f, opts, &pass, keys).map_err(|e| luks_error(e, &image));
        if formatted.is_err() && grow && exists {
            // A refused format leaves an existing file at its size.
            let _ = f.set_len(current);
        }
        formatted
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

/// Whether `path` has anything but zeros in its first 64 KiB (an empty or zero-filled file,
/// made to be formatted, does not).
fn holds_data(path: &std::path::Path) -> anyhow::Result<bool> {
    use std::io::Read;
    let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut head = Vec::new();
    f.take(64 * 1024)
        .read_to_end(&mut head)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(head.iter().any(|&b| b != 0))
}
