//! `imgpipe build`: a bootable, byte-reproducible live ISO (and disk image) from a kickstart
//! and a root tree (imgpipe_repro::build does the work; this parses flags and renders).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use imgpipe_repro::build::{BuildRequest, Encryption, Event, Layout, Manifest, RootFs};
use imgpipe_squashfs::erofs::ErofsWriteOptions;
use imgpipe_squashfs::{Compression, Compressor, WriteOptions, bcj};

use crate::{output, progress, target};

/// Arguments of `imgpipe build`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The kickstart: validated first (an error stops the build); its settings are applied
    /// to the image, and what is not applied is listed.
    #[arg(long, value_name = "KS")]
    kickstart: PathBuf,
    /// The root tree (as dnf --installroot, debootstrap or mkosi make it); never modified.
    #[arg(long, value_name = "DIR")]
    root: PathBuf,
    /// The live ISO to write (hybrid: BIOS and UEFI, CD and USB).
    #[arg(short, long, value_name = "OUT.iso")]
    output: PathBuf,
    /// Also write a GPT disk image (ESP + the root image in its own partition; boots UEFI).
    #[arg(long, value_name = "OUT.img")]
    disk: Option<PathBuf>,
    /// A partition of the disk in `gpt create`'s language (repeatable): one type=esp (the
    /// build fills it), one type=root-x86-64 (the root image), others with fat=DIR or
    /// file=PATH; size=rest fits the ESP, root or file= partition to its contents. Default:
    /// the kickstart's part lines.
    #[arg(long, value_name = "SPEC", requires = "disk")]
    part: Vec<String>,
    /// Reserve a slot in the root file system (EROFS): the file PATH (created empty when
    /// the tree lacks it) gets SIZE bytes (K/M/G) of contiguous, uncompressed space, filled
    /// later by `imgpipe inject` (repeatable).
    #[arg(long, value_name = "PATH:SIZE")]
    reserve: Vec<String>,
    /// Reserve a slot in the ISO 9660 tree: the ISO's file PATH (FILE's bytes, else the
    /// ISO's own file, else an empty one) gets an extent of SIZE bytes (K/M/G); `imgpipe
    /// inject` later writes a piece there and patches its size in the primary and Joliet
    /// records (repeatable).
    #[arg(long, value_name = "PATH:SIZE[=FILE]")]
    reserve_iso: Vec<String>,
    /// Reserve a slot in the ESP: the FAT file PATH (FILE's bytes, else empty) gets one
    /// contiguous run of clusters of SIZE bytes (K/M/G) in the disk's ESP and in the ISO's
    /// efiboot.img; `imgpipe inject` later writes a piece there and patches its directory
    /// entry and cluster chain (repeatable).
    #[arg(long, value_name = "PATH:SIZE[=FILE]")]
    reserve_esp: Vec<String>,
    /// Write the build manifest (JSON: inputs, epoch, seed, outputs and their layout).
    #[arg(long, value_name = "FILE")]
    manifest: Option<PathBuf>,
    /// The one label: ISO volume id, root=live:CDLABEL=, GRUB's search, the root partition's
    /// name (at most 32 ASCII letters, digits, '_', '-', '.').
    #[arg(long)]
    label: String,
    /// Replace `root=live:CDLABEL=LABEL rd.live.image` (or `boot=live`) on the ISO's kernel
    /// command line.
    #[arg(long, value_name = "ARGS")]
    root_arg: Option<String>,
    /// Medium layout: dracut (/LiveOS/squashfs.img) or debian (/live/filesystem.squashfs).
    #[arg(long, value_enum, default_value = "dracut")]
    layout: LayoutArg,
    /// Root image format.
    #[arg(long, value_enum, default_value = "squashfs")]
    rootfs: RootFsArg,
    /// Compressor: squashfs gzip|xz|lzo|lz4|zstd (default xz); EROFS
    /// lz4|lz4hc|lzma|deflate|zstd[,LEVEL] (default lzma).
    #[arg(long)]
    comp: Option<String>,
    /// Compression level.
    #[arg(long)]
    level: Option<u32>,
    /// squashfs block size (default 128K).
    #[arg(long, value_parser = crate::size::parse_size_u32)]
    block_size: Option<u32>,
    /// EROFS physical cluster size (as mkfs.erofs -C).
    #[arg(long, value_parser = crate::size::parse_size_u32)]
    cluster_size: Option<u32>,
    /// EROFS: pack tails and small files into fragments.
    #[arg(long)]
    fragments: bool,
    /// EROFS: inline compressed tails.
    #[arg(long)]
    ztailpacking: bool,
    /// EROFS: store identical files once, and share equal pclusters.
    #[arg(long)]
    dedupe: bool,
    /// squashfs xz: the BCJ filter to try on each block beside plain xz, the smaller result
    /// kept (as mksquashfs -Xbcj): x86 (the default, as livemedia-creator on x86-64: a few
    /// percent smaller for machine code) or none.
    #[arg(long, value_name = "x86|none")]
    xz_bcj: Option<String>,
    /// squashfs lz4: high compression (LZ4HC), as mksquashfs -Xhc.
    #[arg(long)]
    lz4_hc: bool,
    /// xz and lzma: compress every block or pcluster, as mksquashfs and mkfs.erofs do
    /// (default: input that lz4 and zstd level 1 cannot shrink is stored without trying).
    #[arg(long)]
    no_early_abort: bool,
    /// Compression threads (default: one per CPU); the bytes do not depend on it.
    #[arg(long)]
    processors: Option<usize>,
    /// The kernel, instead of the tree's /boot/vmlinuz-*.
    #[arg(long, value_name = "FILE", requires = "initrd")]
    kernel: Option<PathBuf>,
    /// The initrd, instead of the tree's.
    #[arg(long, value_name = "FILE", requires = "kernel")]
    initrd: Option<PathBuf>,
    /// Which of the tree's kernels, when it has several.
    #[arg(long, value_name = "VERSION")]
    kernel_version: Option<String>,
    /// GRUB x86_64-efi image (default: /boot/efi/EFI/*/grubx64.efi in the tree).
    #[arg(long, value_name = "FILE")]
    efi_loader: Option<PathBuf>,
    /// GRUB i386-pc-eltorito image (without one the ISO boots UEFI only).
    #[arg(long, value_name = "FILE")]
    bios_loader: Option<PathBuf>,
    /// GRUB's boot_hybrid.img, the MBR that boots BIOS from USB.
    #[arg(long, value_name = "FILE")]
    bios_hybrid_mbr: Option<PathBuf>,
    /// The kickstart version whose rules apply.
    #[arg(long, default_value = "F43")]
    ks_version: String,
    /// Build time in Unix seconds; every time is clamped to it (default: SOURCE_DATE_EPOCH,
    /// else the newest modification time among the inputs).
    #[arg(long)]
    epoch: Option<u64>,
    /// Seed every identifier, salt and key derives from (default: derived from the digest
    /// of the inputs).
    #[arg(long, value_parser = crate::flags::parse_seed)]
    seed: Option<imgpipe_repro::Seed>,
    /// Put the disk image's root in LUKS2 (needs --disk and --passphrase-file).
    #[arg(long, requires_all = ["disk", "passphrase_file"])]
    encrypt: bool,
    /// The LUKS2 passphrase: the file's bytes, exactly (as cryptsetup --key-file).
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
    /// Argon2id memory cost in KiB.
    #[arg(long, default_value_t = 1_048_576)]
    pbkdf_memory: u32,
    /// Argon2id time cost (passes).
    #[arg(long, default_value_t = 4)]
    pbkdf_time: u32,
    /// Argon2id lanes.
    #[arg(long, default_value_t = 4)]
    pbkdf_parallel: u32,
    /// Replace outputs that hold a recognised image.
    #[arg(long)]
    force: bool,
    /// Print the manifest as JSON.
    #[arg(long)]
    json: bool,
    /// Then build again into a temporary directory with another number of threads, and
    /// compare every output (and the manifest) byte for byte: exit 1 with the diagnosis
    /// when one differs. The first build's outputs stay either way.
    #[arg(long)]
    verify: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LayoutArg {
    Dracut,
    Debian,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum RootFsArg {
    Squashfs,
    Erofs,
}

fn rootfs(a: &Args) -> anyhow::Result<RootFs> {
    Ok(match a.rootfs {
        RootFsArg::Squashfs => {
            for (flag, on) in [
                ("--cluster-size", a.cluster_size.is_some()),
                ("--fragments", a.fragments),
                ("--ztailpacking", a.ztailpacking),
                ("--dedupe", a.dedupe),
            ] {
                anyhow::ensure!(!on, "{flag} is an EROFS option: add --rootfs erofs");
            }
            let comp = a.comp.as_deref().unwrap_or("xz");
            let (name, lvl) =
                match comp.split_once(',') {
                    Some((n, l)) => (
                        n,
                        Some(l.parse::<u32>().with_context(|| {
                            format!("--comp {comp:?}: the level is not a number")
                        })?),
                    ),
                    None => (comp, a.level),
                };
            let c = Compressor::from_name(name).with_context(|| {
                format!("--comp {name:?}: unknown squashfs compressor (gzip, xz, lzo, lz4, zstd)")
            })?;
            anyhow::ensure!(
                a.xz_bcj.is_none() || c == Compressor::Xz,
                "--xz-bcj is an xz option (--comp {})",
                c.name()
            );
            anyhow::ensure!(
                !a.lz4_hc || c == Compressor::Lz4,
                "--lz4-hc is an lz4 option (--comp {})",
                c.name()
            );
            let mut o = WriteOptions::new(0);
            o.compression = Compression::with_level(c, lvl);
            o.compression.early_abort = !a.no_early_abort;
            o.compression.lz4_hc = a.lz4_hc;
            o.compression.xz_bcj = match a.xz_bcj.as_deref() {
                None if c == Compressor::Xz => bcj::X86,
                None | Some("none") => 0,
                Some(name) => bcj::from_name(name).with_context(|| {
                    format!("--xz-bcj {name:?}: unknown BCJ filter (x86, or none)")
                })?,
            };
            if let Some(b) = a.block_size {
                o.block_size = b;
            }
            RootFs::Squashfs(Box::new(o))
        }
        RootFsArg::Erofs => {
            anyhow::ensure!(
                a.block_size.is_none(),
                "--block-size is a squashfs option; EROFS takes --cluster-size"
            );
            for (flag, on, hint) in [
                ("--xz-bcj", a.xz_bcj.is_some(), "EROFS has no BCJ filter"),
                ("--lz4-hc", a.lz4_hc, "EROFS: --comp lz4hc"),
            ] {
                anyhow::ensure!(!on, "{flag} is a squashfs option ({hint})");
            }
            let mut o = ErofsWriteOptions::new(0, [0; 16]);
            o.compression = Some(crate::cmd::erofs::parse_comp(
                a.comp.as_deref().unwrap_or("lzma"),
                a.level,
            )?);
            if let Some(c) = o.compression.as_mut() {
                c.early_abort = !a.no_early_abort;
            }
            if let Some(c) = a.cluster_size {
                o.pcluster_size = c;
            }
            o.fragments = a.fragments;
            o.ztailpacking = a.ztailpacking;
            o.dedupe = a.dedupe;
            o.threads = a.processors;
            RootFs::Erofs(Box::new(o))
        }
    })
}

/// Runs `imgpipe build`.
pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let version = imgpipe_kickstart::Version::from_name(&a.ks_version)
        .with_context(|| format!("--ks-version {:?}: unknown version", a.ks_version))?;
    anyhow::ensure!(a.processors != Some(0), "--processors: must be at least 1");
    for (flag, p) in [
        ("-o/--output", Some(&a.output)),
        ("--disk", a.disk.as_ref()),
        ("--manifest", a.manifest.as_ref()),
    ] {
        if let Some(p) = p {
            target::check_output(flag, p)?;
            if flag != "--manifest" {
                target::refuse_recognised(p, a.force)?;
            }
        }
    }
    anyhow::ensure!(
        a.passphrase_file.is_none() || a.encrypt,
        "--passphrase-file needs --encrypt"
    );
    let mut req = BuildRequest::new(&a.kickstart, &a.root, &a.output, &a.label);
    req.ks_version = version;
    req.disk = a.disk.clone();
    req.disk_parts = a.part.clone();
    for r in &a.reserve {
        let (path, size) = r
            .rsplit_once(':')
            .with_context(|| format!("--reserve {r:?}: expected PATH:SIZE"))?;
        let size =
            crate::size::parse_size(size).map_err(|e| anyhow::anyhow!("--reserve {r:?}: {e}"))?;
        anyhow::ensure!(size > 0, "--reserve {r:?}: SIZE must be above 0");
        anyhow::ensure!(
            !path.trim_start_matches('/').is_empty() && !path.split('/').any(|c| c == ".."),
            "--reserve {r:?}: PATH must name a file inside the root"
        );
        req.reserve
            .push((path.trim_start_matches('/').to_owned(), size));
    }
    for r in &a.reserve_iso {
        req.reserve_iso
            .push(slot_with_content("--reserve-iso", r, "the ISO")?);
    }
    for r in &a.reserve_esp {
        req.reserve_esp
            .push(slot_with_content("--reserve-esp", r, "the ESP")?);
    }
    req.manifest = a.manifest.clone();
    req.root_arg = a.root_arg.clone();
    req.layout = match a.layout {
        LayoutArg::Dracut => Layout::Dracut,
        LayoutArg::Debian => Layout::Debian,
    };
    req.rootfs = rootfs(&a)?;
    req.kernel = a.kernel.clone();
    req.initrd = a.initrd.clone();
    req.kernel_version = a.kernel_version.clone();
    req.efi_loader = a.efi_loader.clone();
    req.bios_loader = a.bios_loader.clone();
    req.bios_hybrid_mbr = a.bios_hybrid_mbr.clone();
    req.epoch = match a.epoch {
        Some(e) => Some(e),
        None => match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(v) => Some(
                imgpipe_repro::Epoch::from_source_date_epoch(&v)
                    .context("SOURCE_DATE_EPOCH")?
                    .0,
            ),
            Err(_) => None,
        },
    };
    req.seed = a.seed;
    if a.encrypt {
        let file = a
            .passphrase_file
            .as_ref()
            .context("--encrypt needs --passphrase-file")?;
        // The file's bytes exactly, as `luks format --passphrase-file` and cryptsetup's
        // --key-file take them.
        let pass = std::fs::read(file)
            .with_context(|| format!("--passphrase-file: cannot read {}", file.display()))?;
        anyhow::ensure!(
            !pass.is_empty(),
            "--passphrase-file {}: empty passphrase",
            file.display()
        );
        req.encrypt = Some(Encryption {
            passphrase: pass,
            memory_kib: a.pbkdf_memory,
            time: a.pbkdf_time,
            lanes: a.pbkdf_parallel,
        });
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(a.processors.unwrap_or(0))
        .build()
        .context("--processors: starting threads")?;
    let mut bar = progress::bytes(0, "starting");
    let mut notices = Vec::new();
    let result = pool.install(|| {
        imgpipe_repro::build::build(&req, &mut |e| match e {
            Event::Step { what, total } => {
                bar.finish_and_clear();
                bar = progress::bytes(total, what);
            }
            Event::Progress(done) => bar.set_position(done),
            Event::Notice(n) => {
                bar.suspend(|| eprintln!("imgpipe build: {n}"));
                notices.push(n);
            }
            _ => {}
        })
    });
    bar.finish_and_clear();
    let manifest = result?;
    if !a.verify {
        print(&a, &manifest)?;
        return Ok(output::exit(output::SUCCESS));
    }
    let first_threads = pool.current_num_threads();
    let threads = if first_threads > 1 { 1 } else { 2 };
    let work = imgpipe_repro::WorkDir::create_in(&std::env::temp_dir(), "imgpipe-build-verify")
        .context("--verify: cannot create a directory in the temporary directory")?;
    let second_pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("--verify: starting threads")?;
    let spin = progress::spinner("building again to verify");
    let twice = second_pool.install(|| {
        imgpipe_repro::build::build_twice(
            &req,
            &manifest,
            first_threads,
            threads,
            work.path(),
            &mut |_| {},
        )
    });
    spin.finish_and_clear();
    let twice = twice.context("--verify: the second build")?;
    drop(work);
    if a.json {
        #[derive(serde::Serialize)]
        struct Both<'a> {
            manifest: &'a Manifest,
            verify: &'a imgpipe_repro::build::TwiceReport,
        }
        output::print_json(&Both {
            manifest: &manifest,
            verify: &twice,
        })?;
    } else {
        print(&a, &manifest)?;
        print_twice(&twice);
    }
    Ok(output::exit(if twice.reproducible {
        output::SUCCESS
    } else {
        output::NEGATIVE
    }))
}

fn print_twice(t: &imgpipe_repro::build::TwiceReport) {
    let (x, y) = t.threads;
    if t.reproducible {
        let names: Vec<&str> = t.outputs.iter().map(|o| o.name.as_str()).collect();
        println!(
            "verified: {} byte-identical when built again at another path with {y} thread(s) instead of {x}",
            names.join(", ")
        );
        return;
    }
    println!("not reproducible (built again at another path with {y} thread(s) instead of {x}):");
    for o in &t.outputs {
        if o.identical {
            println!("  {}: identical", o.name);
            continue;
        }
        println!(
            "  {}: sha256 {} then {}",
            o.name,
            o.first.get(..16).unwrap_or(""),
            o.second.get(..16).unwrap_or("")
        );
        if let Some(files) = o.diff.as_ref().and_then(|d| d.files.as_ref()) {
            super::diff::print_files(files, "    ");
        }
    }
}

fn print(a: &Args, m: &Manifest) -> anyhow::Result<()> {
    if a.json {
        return output::print_json(m);
    }
    let outs: Vec<String> = m
        .outputs
        .iter()
        .map(|o| {
            format!(
                "{} ({}, sha256 {})",
                o.name,
                output::plural(o.size, "byte", "bytes"),
                o.sha256.get(..16).unwrap_or("")
            )
        })
        .collect();
    println!(
        "{}: {} root image of {}, {} applied, {} not applied, epoch {}, seed {}{}",
        outs.join(", "),
        m.rootfs,
        output::plural(m.tree.entries, "entry", "entries"),
        output::plural(
            m.kickstart.applied.len() as u64,
            "kickstart command",
            "kickstart commands"
        ),
        m.kickstart.not_applied.len(),
        m.epoch,
        m.seed,
        if m.bios { "" } else { ", UEFI only" }
    );
    Ok(())
}

/// A `PATH:SIZE[=FILE]` slot of `flag`, PATH inside `inside`.
fn slot_with_content(
    flag: &str,
    r: &str,
    inside: &str,
) -> anyhow::Result<(String, u64, Option<PathBuf>)> {
    let (spec, file) = match r.split_once('=') {
        Some((spec, file)) => (spec, Some(PathBuf::from(file))),
        None => (r, None),
    };
    let (path, size) = spec
        .rsplit_once(':')
        .with_context(|| format!("{flag} {r:?}: expected PATH:SIZE[=FILE]"))?;
    let size = crate::size::parse_size(size).map_err(|e| anyhow::anyhow!("{flag} {r:?}: {e}"))?;
    anyhow::ensure!(size > 0, "{flag} {r:?}: SIZE must be above 0");
    anyhow::ensure!(
        !path.trim_start_matches('/').is_empty() && !path.split('/').any(|c| c == ".."),
        "{flag} {r:?}: PATH must name a file inside {inside}"
    );
    Ok((path.trim_start_matches('/').to_owned(), size, file))
}
