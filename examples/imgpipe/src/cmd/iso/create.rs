//! `imgpipe iso create`: flags to an [`IsoRequest`], one [`IsoPlan`], the report.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use imgpipe_isofs::{BiosBoot, EfiBoot, MbrFlavor};
use imgpipe_repro::iso::{IsoPlan, IsoRequest, Reservation};

use crate::flags::CreateCommon;
use crate::size::parse_size;
use crate::{output, progress, target};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum FlavorArg {
    /// Recognise GRUB's boot_hybrid.img, else isolinux.
    Auto,
    /// syslinux isohdpfx.bin: boot image block * 4 at byte 432.
    Isolinux,
    /// GRUB boot_hybrid.img: block * 4 + 4.
    Grub2,
}

#[derive(Debug, clap::Args)]
pub(super) struct CreateArgs {
    /// Output image.
    #[arg(short, long)]
    output: PathBuf,
    /// Volume label (the volume identifier, as xorriso -V).
    #[arg(long, default_value = "CDROM", alias = "volid", alias = "volume-id")]
    label: String,
    #[command(flatten)]
    common: CreateCommon,
    /// No Rock Ridge.
    #[arg(long)]
    no_rock: bool,
    /// No Joliet tree.
    #[arg(long)]
    no_joliet: bool,
    /// Relocate directories deeper than 8 levels to /rr_moved (Rock Ridge CL/PL/RE).
    #[arg(long)]
    relocate_deep: bool,
    /// BIOS El Torito boot image (path inside DIR), no emulation.
    #[arg(long, requires = "boot_catalog")]
    bios_boot: Option<String>,
    /// Boot catalog path inside the image.
    #[arg(long)]
    boot_catalog: Option<String>,
    /// 512-byte sectors the BIOS loads (default: the whole image).
    #[arg(long, requires = "bios_boot")]
    boot_load_size: Option<u16>,
    /// Patch the boot info table into the BIOS boot image.
    #[arg(long, requires = "bios_boot")]
    boot_info_table: bool,
    /// Patch GRUB's address at byte 2548 of the BIOS boot image.
    #[arg(long, requires = "bios_boot")]
    grub2_boot_info: bool,
    /// UEFI El Torito image (a FAT ESP image inside DIR).
    #[arg(long, conflicts_with = "efi_partition")]
    efi_boot: Option<String>,
    /// UEFI ESP image appended after the ISO data as a partition.
    #[arg(long)]
    efi_partition: Option<PathBuf>,
    /// MBR boot code (isohdpfx.bin or boot_hybrid.img) for an isohybrid system area.
    #[arg(long, requires = "bios_boot")]
    isohybrid_mbr: Option<PathBuf>,
    /// Which boot code --isohybrid-mbr is.
    #[arg(long, value_enum, default_value = "auto")]
    mbr_flavor: FlavorArg,
    /// Write a GPT (protective MBR, ESP and ISO data partitions).
    #[arg(long)]
    gpt: bool,
    /// `mkisofs -sort` file: lines of `PATH WEIGHT`; higher weights are placed first.
    #[arg(long)]
    sort: Option<PathBuf>,
    /// Reserve a fixed-size slot for a file: PATH:SIZE[:ALIGN] (sizes as --size elsewhere:
    /// bytes, K, M, G, T; ALIGN default 2048).
    #[arg(long)]
    reserve: Vec<String>,
    /// Print the build report as JSON.
    #[arg(long)]
    json: bool,
    /// The directory to put in the image.
    dir: PathBuf,
}

/// Runs `imgpipe iso create`.
pub(super) fn create(a: CreateArgs) -> anyhow::Result<ExitCode> {
    // Everything is checked before the output is created.
    target::check_replace("-o/--output", &a.output, a.common.force)?;
    if !a.dir.is_dir() {
        bail!("{}: not a directory", a.dir.display());
    }
    let epoch = a.common.epoch()?;
    let epoch = i64::try_from(epoch).context("--epoch: out of range")?;
    let mut req = IsoRequest::new(&a.dir, &a.label, epoch);
    req.rock_ridge = !a.no_rock;
    req.joliet = !a.no_joliet;
    req.clamp_mtime = a.common.clamp_mtime;
    req.relocate_deep = a.relocate_deep;
    req.boot_catalog = a.boot_catalog.clone();
    req.bios_boot = a.bios_boot.as_ref().map(|p| BiosBoot {
        path: p.clone(),
        load_size: a.boot_load_size,
        boot_info_table: a.boot_info_table,
        grub2_boot_info: a.grub2_boot_info,
    });
    req.efi_boot = match (&a.efi_boot, &a.efi_partition) {
        (Some(p), _) => Some(EfiBoot::InTree { path: p.clone() }),
        (None, Some(f)) => Some(EfiBoot::Appended { file: f.clone() }),
        (None, None) => None,
    };
    req.isohybrid_mbr = a.isohybrid_mbr.clone();
    req.mbr_flavor = match a.mbr_flavor {
        FlavorArg::Auto => None,
        FlavorArg::Isolinux => Some(MbrFlavor::Isolinux),
        FlavorArg::Grub2 => Some(MbrFlavor::Grub2),
    };
    req.gpt = a.gpt;
    req.sort = a.sort.clone();
    req.reserve = a
        .reserve
        .iter()
        .map(reservation)
        .collect::<anyhow::Result<_>>()?;
    // A GPT is planned by gptpart, its GUIDs from the seed rule (imgpipe_repro::iso).
    req.seed = a.common.seed;
    let plan = IsoPlan::prepare(&req)?;
    let file = target::create(&a.output)?;
    let bar = progress::bytes(plan.data_bytes(), "writing");
    let mut w = BufWriter::with_capacity(1 << 20, bar.wrap_write(file.file()));
    let rep = plan
        .write_to(&mut w)
        .map_err(anyhow::Error::from)
        .and_then(|r| w.flush().map(|()| r).map_err(anyhow::Error::from))
        .with_context(|| format!("cannot write {}", a.output.display()))?;
    drop(w);
    bar.finish_and_clear();
    target::commit(file)?;
    if a.json {
        output::print_json(&rep)?;
    } else {
        println!(
            "{}: {}, {}, {} blocks of ISO9660",
            a.output.display(),
            output::plural(rep.size, "byte", "bytes"),
            output::plural(rep.entries, "entry", "entries"),
            rep.volume_blocks
        );
        for s in &rep.slots {
            println!(
                "reserved slot {}: offset {} size {}",
                s.path, s.offset, s.size
            );
        }
    }
    Ok(output::exit(output::SUCCESS))
}

/// One `--reserve PATH:SIZE[:ALIGN]`.
fn reservation(r: &String) -> anyhow::Result<Reservation> {
    let mut parts = r.splitn(3, ':');
    let path = parts.next().unwrap_or_default();
    let size = parse_size(parts.next().context("--reserve needs PATH:SIZE[:ALIGN]")?)
        .map_err(|e| anyhow::anyhow!("--reserve: {e}"))?;
    let align = parts
        .next()
        .map(parse_size)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--reserve: {e}"))?
        .unwrap_or(2048);
    Ok(Reservation {
        path: path.to_owned(),
        size,
        align,
        spec: r.to_owned(),
    })
}
