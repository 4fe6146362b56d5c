//! `imgpipe build`: a bootable, byte-reproducible live ISO (and optionally a GPT disk image)
//! from a kickstart and a root tree.
//!
//! ```no_run
//! use imgpipe_repro::build::{BuildRequest, build};
//!
//! let mut req = BuildRequest::new("ks.cfg", "rootfs/", "live.iso", "MYLIVE");
//! req.efi_loader = Some("bootx64.efi".into());
//! req.disk = Some("live.img".into());
//! let manifest = build(&req, &mut |_event| {})?;
//! println!("{} {}", manifest.outputs[0].name, manifest.outputs[0].sha256);
//! # Ok::<(), imgpipe_repro::Error>(())
//! ```
//!
//! # What goes where
//! - The root tree is scanned once and never modified; the kickstart's settings are applied
//!   to the in-memory tree ([`KickstartReport`] says what was applied and what not).
//! - The root image (squashfs or EROFS) is at `/LiveOS/squashfs.img` with the kernel and
//!   initrd at `/images/pxeboot/` (dracut's layout, `root=live:CDLABEL=LABEL`), or with
//!   [`Layout::Debian`] at `/live/filesystem.squashfs`, `/live/vmlinuz`, `/live/initrd.img`
//!   (`boot=live`).
//! - The ISO: Rock Ridge and Joliet; El Torito BIOS (the GRUB eltorito image at
//!   `/boot/grub/eltorito.img`) and UEFI (a FAT `efiboot.img` appended as the GPT's ESP,
//!   holding the GRUB EFI image as `/EFI/BOOT/BOOTX64.EFI`); the isohybrid MBR; a GPT. The
//!   same `grub.cfg` is at `/boot/grub/grub.cfg` and `/EFI/BOOT/grub.cfg` on the ISO and at
//!   `/EFI/BOOT/grub.cfg` and `/boot/grub/grub.cfg` in the ESP; it finds the ISO by its
//!   label. (GRUB for UEFI started from El Torito reads its prefix `/EFI/BOOT` on the
//!   ISO 9660 volume, not in the ESP: without the ISO's copy a UEFI CD stops at `grub>`.)
//! - The disk: a GPT with an ESP (FAT32: loader, `grub.cfg`, kernel, initrd; GRUB finds it by
//!   its FAT serial) and the root partition, named with the label, holding the root image
//!   (inside LUKS2 with [`BuildRequest::encrypt`]); the kernel finds it as
//!   `root=PARTLABEL=LABEL`.
//!
//! # Determinism
//! The epoch is [`BuildRequest::epoch`], else the newest modification time among the inputs;
//! every time in every output is clamped to it. The seed is [`BuildRequest::seed`], else the
//! SHA-256 of the digests of every input (the tree as a sorted list of path, metadata and
//! content hash). Outputs and the manifest name host files by their file names only, so a
//! build in another directory gives the same bytes.

mod crypt;
mod disk;
mod grub;
mod inputs;
pub mod label;
mod overlay;
mod recipe;
mod twice;

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use imgpipe_fstree::{Content, Entry, FileType, Metadata, ScanOptions, Tree};
use imgpipe_gptpart::{FatBuilder, FatType};
use imgpipe_isofs::{BiosBoot, Builder as IsoBuilder, EfiBoot, HybridMbr, Options as IsoOptions};
use imgpipe_kickstart::{Kickstart, Version};
use imgpipe_squashfs::erofs::{ErofsReservedSlot, ErofsWriteOptions};
use serde::Serialize;
use sha2::{Digest, Sha256};

pub use inputs::TreeDigest;
pub use label::check_label;
pub use overlay::{Applied, KickstartReport};
pub use recipe::{RebuildReport, RebuiltOutput, Recipe, RootFsRecipe, rebuild};
pub use twice::{TwiceOutput, TwiceReport, build_twice};

use crate::error::{Error, Result};
use crate::output::{AtomicFile, check_output};
use crate::seed::{Purpose, Seed};
use inputs::{Input, beside, bytes, file_name, hex};

/// Where the live medium keeps the root image, kernel and initrd.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// dracut's: `/LiveOS/squashfs.img`, `/images/pxeboot/{vmlinuz,initrd.img}`,
    /// `root=live:CDLABEL=LABEL rd.live.image`.
    #[default]
    Dracut,
    /// Debian live-boot's: `/live/filesystem.squashfs`, `/live/{vmlinuz,initrd.img}`,
    /// `boot=live`.
    Debian,
}

impl Layout {
    fn root_image(self) -> &'static str {
        match self {
            Layout::Dracut => "LiveOS/squashfs.img",
            Layout::Debian => "live/filesystem.squashfs",
        }
    }

    fn kernel(self) -> &'static str {
        match self {
            Layout::Dracut => "images/pxeboot/vmlinuz",
            Layout::Debian => "live/vmlinuz",
        }
    }

    fn initrd(self) -> &'static str {
        match self {
            Layout::Dracut => "images/pxeboot/initrd.img",
            Layout::Debian => "live/initrd.img",
        }
    }
}

/// The root image's format and options (its epoch, UUID and clamping are the build's).
#[derive(Debug, Clone)]
pub enum RootFs {
    /// squashfs.
    Squashfs(Box<imgpipe_squashfs::WriteOptions>),
    /// EROFS.
    Erofs(Box<ErofsWriteOptions>),
}

impl RootFs {
    fn name(&self) -> &'static str {
        match self {
            RootFs::Squashfs(_) => "squashfs",
            RootFs::Erofs(_) => "erofs",
        }
    }
}

/// LUKS2 around the disk image's root partition.
#[derive(Clone)]
pub struct Encryption {
    /// The passphrase of keyslot 0.
    pub passphrase: Vec<u8>,
    /// argon2id memory in KiB.
    pub memory_kib: u32,
    /// argon2id passes.
    pub time: u32,
    /// argon2id lanes.
    pub lanes: u32,
}

impl std::fmt::Debug for Encryption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encryption")
            .field("passphrase", &"<hidden>")
            .field("memory_kib", &self.memory_kib)
            .field("time", &self.time)
            .field("lanes", &self.lanes)
            .finish()
    }
}

/// What to build.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BuildRequest {
    /// The kickstart file (`%include` followed relative to it).
    pub kickstart: PathBuf,
    /// The version whose rules validate it.
    pub ks_version: Version,
    /// The root tree (never modified).
    pub root: PathBuf,
    /// The ISO to write.
    pub iso: PathBuf,
    /// A GPT disk image to write too.
    pub disk: Option<PathBuf>,
    /// A JSON manifest to write.
    pub manifest: Option<PathBuf>,
    /// The one label ([`check_label`]).
    pub label: String,
    /// Replaces `root=live:CDLABEL=LABEL rd.live.image` (or `boot=live`) on the ISO's
    /// kernel command line.
    pub root_arg: Option<String>,
    /// The medium's layout.
    pub layout: Layout,
    /// The root image's format.
    pub rootfs: RootFs,
    /// A kernel from the host instead of the tree's.
    pub kernel: Option<PathBuf>,
    /// An initrd from the host instead of the tree's.
    pub initrd: Option<PathBuf>,
    /// Which of the tree's kernels.
    pub kernel_version: Option<String>,
    /// The GRUB x86_64-efi image.
    pub efi_loader: Option<PathBuf>,
    /// The GRUB i386-pc-eltorito image.
    pub bios_loader: Option<PathBuf>,
    /// GRUB's `boot_hybrid.img`.
    pub bios_hybrid_mbr: Option<PathBuf>,
    /// The build epoch (`None`: the newest modification time among the inputs).
    pub epoch: Option<u64>,
    /// The seed (`None`: derived from the digest of the inputs).
    pub seed: Option<Seed>,
    /// LUKS2 around the disk's root partition.
    pub encrypt: Option<Encryption>,
    /// The disk's partitions in `gpt create`'s `--part` language (one `type=esp` the build
    /// fills with the boot files, one `type=root-x86-64` that gets the root image, others
    /// with their own `fat=`/`file=` contents or empty); `size=rest` sizes the ESP, the root
    /// or a `file=` partition to what it holds. Empty: the kickstart's `part` lines.
    pub disk_parts: Vec<String>,
    /// Reserved slots in the root file system (EROFS only): the file at each path (created
    /// empty when the tree lacks it) gets a contiguous, uncompressed extent of the capacity,
    /// recorded in the manifest and in the slot table of the ISO and the disk
    /// ([`crate::inject`]).
    pub reserve: Vec<(String, u64)>,
    /// Reserved slots in the ISO 9660 tree: (path, capacity, initial content). The file at
    /// the path (the content's bytes, else the ISO tree's own file, else an empty one) keeps
    /// its length as its size while its extent holds the capacity; the slot table lists the
    /// size fields of its primary and Joliet records (`within` is `iso9660`).
    pub reserve_iso: Vec<(String, u64, Option<PathBuf>)>,
    /// Reserved slots in the ESP: (path, capacity, initial content). The FAT file at the
    /// path (the content's bytes, else empty) gets one contiguous run of clusters of the
    /// capacity, in the disk's ESP and in the ISO's `efiboot.img`, each sized to hold it;
    /// each slot table lists its size field and the FAT fields that follow the size
    /// (`within` ends in `(fat)`).
    pub reserve_esp: Vec<(String, u64, Option<PathBuf>)>,
}

impl BuildRequest {
    /// A request with squashfs in dracut's layout, loaders looked up in the tree: xz with
    /// the x86 BCJ filter tried on each block, as livemedia-creator makes it on x86-64
    /// (`mksquashfs -comp xz -Xbcj x86`).
    pub fn new(
        kickstart: impl Into<PathBuf>,
        root: impl Into<PathBuf>,
        iso: impl Into<PathBuf>,
        label: impl Into<String>,
    ) -> Self {
        let mut sq = imgpipe_squashfs::WriteOptions::new(0);
        sq.compression = imgpipe_squashfs::Compression::new(imgpipe_squashfs::Compressor::Xz);
        sq.compression.xz_bcj = imgpipe_squashfs::bcj::X86;
        Self {
            kickstart: kickstart.into(),
            ks_version: Version::F43,
            root: root.into(),
            iso: iso.into(),
            disk: None,
            manifest: None,
            label: label.into(),
            root_arg: None,
            layout: Layout::Dracut,
            rootfs: RootFs::Squashfs(Box::new(sq)),
            kernel: None,
            initrd: None,
            kernel_version: None,
            efi_loader: None,
            bios_loader: None,
            bios_hybrid_mbr: None,
            epoch: None,
            seed: None,
            encrypt: None,
            disk_parts: Vec::new(),
            reserve: Vec::new(),
            reserve_iso: Vec::new(),
            reserve_esp: Vec::new(),
        }
    }
}

/// What a build reports while it runs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// A step starts; `total` bytes of work when known.
    Step {
        /// What it does.
        what: &'static str,
        /// Bytes of work.
        total: u64,
    },
    /// Bytes of the current step done so far.
    Progress(u64),
    /// Something the user should know (a UEFI-only ISO, a setting not applied).
    Notice(String),
}

/// One input's fingerprint.
#[derive(Debug, Clone, Serialize)]
pub struct InputRecord {
    /// Its name: a host file's name, or its path in the tree.
    pub name: String,
    /// Its size.
    pub size: u64,
    /// SHA-256 of its bytes.
    pub sha256: String,
}

/// Where a file landed in an output.
#[derive(Debug, Clone, Serialize)]
pub struct Placed {
    /// Its path inside the medium or file system.
    pub path: String,
    /// Byte offset in the output.
    pub offset: u64,
    /// Its size.
    pub size: u64,
}

/// A partition of an output.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionRecord {
    /// 1-based index.
    pub index: u32,
    /// Its name (PARTLABEL).
    pub name: String,
    /// Its type GUID.
    pub type_guid: String,
    /// Its unique GUID.
    pub guid: String,
    /// Byte offset.
    pub offset: u64,
    /// Length in bytes.
    pub size: u64,
}

/// One output file.
#[derive(Debug, Clone, Serialize)]
pub struct OutputRecord {
    /// `iso` or `disk`.
    pub kind: &'static str,
    /// Its file name.
    pub name: String,
    /// Its size.
    pub size: u64,
    /// SHA-256 of its bytes.
    pub sha256: String,
    /// Its partitions.
    pub partitions: Vec<PartitionRecord>,
    /// The root image, kernel, initrd and boot images, where they landed.
    pub files: Vec<Placed>,
    /// The kernel command line its boot menu passes.
    pub cmdline: String,
    /// Its reserved slots (also in its slot table).
    pub slots: Vec<crate::inject::Slot>,
}

/// The build manifest: enough to name layers in a diff and to check a rebuild.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    /// The manifest's schema version.
    pub schema: u32,
    /// `imgpipe` and its version.
    pub tool: String,
    /// The label.
    pub label: String,
    /// The build epoch.
    pub epoch: u64,
    /// The seed, hex.
    pub seed: String,
    /// The root image's format.
    pub rootfs: &'static str,
    /// The layout.
    pub layout: Layout,
    /// Whether the ISO boots BIOS (else UEFI only).
    pub bios: bool,
    /// The kernel's version, when it came from the tree.
    pub kernel_version: Option<String>,
    /// The kickstart, kernel, initrd, loaders.
    pub inputs: Vec<InputRecord>,
    /// The root tree's digest.
    pub tree: TreeDigest,
    /// The root image: its size and SHA-256.
    pub root_image: InputRecord,
    /// The kickstart commands applied and not applied.
    pub kickstart: KickstartReport,
    /// The outputs.
    pub outputs: Vec<OutputRecord>,
    /// Every option of the build, for `rebuild`.
    pub recipe: Recipe,
}

/// The version string the manifest records.
pub const TOOL: &str = concat!("imgpipe ", env!("CARGO_PKG_VERSION"));

fn step(what: impl Into<String>) -> impl FnOnce(String) -> Error {
    let step = what.into();
    move |message| Error::Step { step, message }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// The largest boot loader or MBR file read into memory.
const MAX_LOADER: u64 = 64 << 20;

/// Builds what `req` asks for. Every output is written through the atomic writer and
/// committed only when all of them are complete: a failed build leaves nothing behind.
pub fn build(req: &BuildRequest, on: &mut dyn FnMut(Event)) -> Result<Manifest> {
    check_label(&req.label)?;
    let outputs: Vec<(&'static str, &Path)> = [
        ("-o/--output", Some(req.iso.as_path())),
        ("--disk", req.disk.as_deref()),
        ("--manifest", req.manifest.as_deref()),
    ]
    .into_iter()
    .filter_map(|(f, p)| Some((f, p?)))
    .collect();
    for (i, (flag, p)) in outputs.iter().enumerate() {
        check_output(p).map_err(|e| Error::Argument {
            flag,
            value: p.display().to_string(),
            reason: e.to_string(),
        })?;
        if outputs.iter().skip(i + 1).any(|(_, q)| q == p) {
            return Err(Error::Argument {
                flag,
                value: p.display().to_string(),
                reason: "two outputs cannot share one file".into(),
            });
        }
    }
    if req.kernel.is_some() != req.initrd.is_some() {
        return Err(Error::Argument {
            flag: if req.kernel.is_some() {
                "--initrd"
            } else {
                "--kernel"
            },
            value: String::new(),
            reason: "--kernel and --initrd go together".into(),
        });
    }
    if let RootFs::Squashfs(o) = &req.rootfs {
        // The medium boots x86-64 (GRUB's i386-pc and x86_64-efi images): its kernel's xz
        // decoder is only sure to have the x86 filter (Debian 12's has that one alone,
        // CONFIG_XZ_DEC_X86); a block another filter won would not read.
        let bcj = imgpipe_squashfs::bcj::X86;
        if let Some(name) = imgpipe_squashfs::bcj::names(o.compression.xz_bcj & !bcj).next() {
            return Err(Error::Argument {
                flag: "--xz-bcj",
                value: name.to_owned(),
                reason: "the medium boots an x86-64 kernel, whose xz decoder is only sure to have the x86 filter".into(),
            });
        }
    }

    // The kickstart first: an invalid one stops the build before any work.
    let ks_input = Input::host("--kickstart", &req.kickstart)?;
    let ks = Kickstart::load(&req.kickstart).map_err(|e| Error::Step {
        step: format!("reading {}", req.kickstart.display()),
        message: chain(&e),
    })?;
    let report = ks.validate(req.ks_version);
    if !report.is_valid() {
        let errors: Vec<String> = report
            .errors()
            .map(|d| format!("{}: {}", d.location, d.message))
            .collect();
        return Err(Error::Kickstart {
            path: req.kickstart.clone(),
            version: req.ks_version.name().to_owned(),
            errors,
        });
    }
    for w in report.warnings() {
        on(Event::Notice(format!(
            "{}: warning: {}",
            w.location, w.message
        )));
    }

    // The tree, scanned once; outputs inside it are left out.
    let meta = std::fs::metadata(&req.root).map_err(|source| Error::HostIo {
        what: "--root: cannot read",
        path: req.root.clone(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(Error::Argument {
            flag: "--root",
            value: req.root.display().to_string(),
            reason: "not a directory".into(),
        });
    }
    on(Event::Step {
        what: "scanning the root tree",
        total: 0,
    });
    let mut scan = ScanOptions::default();
    for (_, p) in &outputs {
        scan.exclude(p).map_err(|e| step("--root")(e.to_string()))?;
        scan.exclude(&crate::output::temp_path(p)?)
            .map_err(|e| step("--root")(e.to_string()))?;
    }
    let mut tree = imgpipe_fstree::scan(&req.root, &scan).map_err(|e| Error::Step {
        step: format!("scanning {}", req.root.display()),
        message: e.to_string(),
    })?;

    // Kernel, initrd, loaders: given, or found in the tree.
    let (kernel_version, kernel, initrd) = match (&req.kernel, &req.initrd) {
        (Some(k), Some(i)) => (
            None,
            Input::host("--kernel", k)?,
            Input::host("--initrd", i)?,
        ),
        _ => {
            let k = inputs::find_kernel(&tree, &req.root, req.kernel_version.as_deref())?;
            (k.version, k.kernel, k.initrd)
        }
    };
    let efi = match &req.efi_loader {
        Some(p) => Input::host("--efi-loader", p)?,
        None => inputs::find_in_tree(
            &tree,
            &["boot/efi/EFI/*/grubx64.efi", "usr/lib/grub/x86_64-efi/monolithic/grubx64.efi"],
        )
        .ok_or_else(|| Error::Step {
            step: format!("finding a UEFI boot loader in {}", req.root.display()),
            message: "none at /boot/efi/EFI/*/grubx64.efi: give --efi-loader (a GRUB x86_64-efi image, e.g. from grub-mkimage -O x86_64-efi)".into(),
        })?,
    };
    let bios = match &req.bios_loader {
        Some(p) => Some(Input::host("--bios-loader", p)?),
        None => inputs::find_in_tree(
            &tree,
            &[
                "usr/lib/grub/i386-pc/eltorito.img",
                "boot/grub2/i386-pc/eltorito.img",
            ],
        ),
    };
    let hybrid = match &req.bios_hybrid_mbr {
        Some(p) => Some(Input::host("--bios-hybrid-mbr", p)?),
        None if bios.is_some() => inputs::find_in_tree(
            &tree,
            &[
                "usr/lib/grub/i386-pc/boot_hybrid.img",
                "usr/lib/grub2/i386-pc/boot_hybrid.img",
            ],
        ),
        None => None,
    };
    match (&bios, &hybrid) {
        (None, _) => on(Event::Notice(
            "no BIOS loader (--bios-loader): the ISO boots UEFI only".into(),
        )),
        (Some(_), None) => on(Event::Notice(
            "no isohybrid MBR (--bios-hybrid-mbr): the ISO boots BIOS from CD, not from USB".into(),
        )),
        _ => {}
    }
    let efi_bytes = efi.read_small(MAX_LOADER)?;
    let bios_bytes = bios
        .as_ref()
        .map(|b| b.read_small(MAX_LOADER))
        .transpose()?;
    let mbr_code = hybrid.as_ref().map(|h| h.read_small(512)).transpose()?;
    if let (Some(code), Some(h)) = (&mbr_code, &hybrid)
        && !(432..=512).contains(&code.len())
    {
        return Err(Error::Step {
            step: format!("--bios-hybrid-mbr {}", h.name),
            message: format!("MBR boot code is 432 to 512 bytes, not {}", code.len()),
        });
    }

    // Fingerprints: the seed and the epoch come from them unless given.
    on(Event::Step {
        what: "hashing the inputs",
        total: tree_bytes(&tree),
    });
    let done = std::sync::atomic::AtomicU64::new(0);
    let digest = inputs::tree_digest(&tree, &|n| {
        done.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    })?;
    let mut records = Vec::new();
    let mut newest = digest.newest_mtime;
    let host_inputs = [
        Some(&ks_input),
        Some(&kernel),
        Some(&initrd),
        Some(&efi),
        bios.as_ref(),
        hybrid.as_ref(),
    ];
    let roles = [
        "kickstart",
        "kernel",
        "initrd",
        "efi-loader",
        "bios-loader",
        "bios-hybrid-mbr",
    ];
    for (role, i) in roles.iter().zip(host_inputs) {
        let Some(i) = i else { continue };
        newest = newest.max(i.mtime);
        records.push(InputRecord {
            name: format!("{role}: {}", i.name),
            size: i.size,
            sha256: i.sha256()?,
        });
    }
    let epoch = req.epoch.unwrap_or(u64::try_from(newest).unwrap_or(0));
    let seed = req.seed.unwrap_or_else(|| {
        let mut h = Sha256::new();
        h.update(b"imgpipe build\0");
        h.update(digest.sha256.as_bytes());
        for r in &records {
            h.update(r.name.as_bytes());
            h.update(b"\0");
            h.update(r.sha256.as_bytes());
            h.update(b"\0");
        }
        h.update(
            format!(
                "{}\0{:?}\0{}\0{:?}\0{}",
                req.label,
                req.layout,
                req.rootfs.name(),
                req.root_arg,
                req.encrypt.is_some()
            )
            .as_bytes(),
        );
        Seed::from_material(&h.finalize())
    });
    let epoch_i = i64::try_from(epoch).unwrap_or(i64::MAX);
    for n in tree.iter_mut() {
        if n.entry.meta.mtime > epoch_i {
            n.entry.meta.mtime = epoch_i;
            n.entry.meta.mtime_nsec = 0;
        }
    }

    // The kickstart, as an overlay.
    let ks_report = overlay::apply(
        &ks,
        req.ks_version,
        &mut tree,
        epoch_i,
        seed,
        req.disk.is_some(),
    )?;
    for n in &ks_report.not_applied {
        on(Event::Notice(format!(
            "{}: {} not applied: {}",
            n.location, n.command, n.detail
        )));
    }
    let model = ks.model(req.ks_version);
    let append = model
        .bootloader
        .as_ref()
        .and_then(|b| b.append.clone())
        .unwrap_or_default();
    let timeout = model
        .bootloader
        .as_ref()
        .and_then(|b| b.timeout)
        .map_or(5, |t| u64::try_from(t).unwrap_or(0));

    // A slot's name (its path) picks it in the ISO's table: one slot a name.
    let mut names: Vec<(&str, &'static str)> = req
        .reserve
        .iter()
        .map(|r| (r.0.as_str(), "--reserve"))
        .chain(
            req.reserve_iso
                .iter()
                .map(|r| (r.0.as_str(), "--reserve-iso")),
        )
        .chain(
            req.reserve_esp
                .iter()
                .map(|r| (r.0.as_str(), "--reserve-esp")),
        )
        .map(|(p, f)| (p.trim_start_matches('/'), f))
        .collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(Error::Argument {
            flag: w[1].1,
            value: w[0].0.to_owned(),
            reason: "two slots of one name: --reserve, --reserve-iso and --reserve-esp paths must differ".into(),
        });
    }
    let esp_slots = esp_reservations(req)?;
    // Reserved slots: EROFS stores a file's size in an uncompressed inode, patchable in place;
    // squashfs keeps it in a compressed inode table.
    if !req.reserve.is_empty() {
        if let RootFs::Squashfs(_) = req.rootfs {
            return Err(Error::Argument {
                flag: "--reserve",
                value: req.reserve.first().map(|r| r.0.clone()).unwrap_or_default(),
                reason: "a squashfs root cannot take a slot: its inode table is compressed, so a size cannot be patched in place; use --rootfs erofs".into(),
            });
        }
        for (path, _) in &req.reserve {
            let p = path.trim_start_matches('/');
            if tree.get(p.as_bytes()).is_none() {
                let e = Entry::new(p, FileType::File, Metadata::new(0o644, epoch_i));
                tree.insert_with_parents(e, bytes(Vec::new()), &Metadata::new(0o755, epoch_i))
                    .map_err(|e| step(format!("--reserve {path}"))(e.to_string()))?;
            }
        }
    }
    // The root image, into a temporary file beside the ISO.
    let root_tmp = AtomicFile::create(&beside(&req.iso, ".rootfs"))?;
    let erofs_slots = write_root_image(req, &tree, epoch, seed, &root_tmp, on)?;
    let root_len = root_tmp
        .file()
        .metadata()
        .map_err(io("sizing the root image"))?
        .len();
    let root_image = InputRecord {
        name: format!("/{}", req.layout.root_image()),
        size: root_len,
        sha256: Input {
            name: "the root image".into(),
            content: Content::Host(root_tmp.temp_path().to_path_buf()),
            size: root_len,
            mtime: 0,
        }
        .sha256()?,
    };

    // The ISO.
    let live_arg = req.root_arg.clone().unwrap_or_else(|| match req.layout {
        Layout::Dracut => format!("root=live:CDLABEL={} rd.live.image", req.label),
        Layout::Debian => "boot=live".to_owned(),
    });
    let iso_cmdline = join_args(&live_arg, &append);
    let kernel_path = format!("/{}", req.layout.kernel());
    let initrd_path = format!("/{}", req.layout.initrd());
    let iso_cfg = grub::config(
        grub::Search::Label(&req.label),
        &grub::Entry {
            title: &req.label,
            kernel: &kernel_path,
            initrd: &initrd_path,
            cmdline: &iso_cmdline,
        },
        timeout,
    );
    let efiboot_tmp = AtomicFile::create(&beside(&req.iso, ".efiboot"))?;
    let efiboot_slots = {
        let reserved = esp_slots.iter().map(|s| s.room()).sum::<u64>();
        let mut size = round_up(
            efi_bytes.len() as u64 + 2 * iso_cfg.len() as u64 + (1 << 20) + reserved,
            1 << 20,
        )
        .max(2 << 20);
        if !esp_slots.is_empty() {
            // FAT16 at least: a FAT12 entry shares bytes with its neighbour.
            size = size.max(4 << 20);
        }
        let mut fb = FatBuilder::new(size)
            .epoch(epoch)
            .label("EFIBOOT")
            .volume_id(seed.u32(&Purpose::Other {
                label: "efiboot-volume-id",
                index: 0,
            }));
        add_esp_files(&mut fb, &efi_bytes, &iso_cfg, None)?;
        for s in &esp_slots {
            s.add_to(&mut fb)?;
        }
        fb.build(BufWriter::new(efiboot_tmp.file()))
            .map_err(|e| step("building efiboot.img")(chain(&e)))?
            .reserved
    };
    let mut iso_tree = Tree::new(Metadata::new(0o755, epoch_i));
    let dir = Metadata::new(0o755, epoch_i);
    let add = |t: &mut Tree, path: &str, content: Content, size: u64| -> Result<()> {
        let mut e = Entry::new(path, FileType::File, Metadata::new(0o644, epoch_i));
        e.size = size;
        t.insert_with_parents(e, content, &dir)
            .map_err(|e| step(format!("adding /{path} to the ISO"))(e.to_string()))
    };
    add(
        &mut iso_tree,
        req.layout.root_image(),
        Content::Host(root_tmp.temp_path().to_path_buf()),
        root_len,
    )?;
    add(
        &mut iso_tree,
        req.layout.kernel(),
        kernel.content.clone(),
        kernel.size,
    )?;
    add(
        &mut iso_tree,
        req.layout.initrd(),
        initrd.content.clone(),
        initrd.size,
    )?;
    add(
        &mut iso_tree,
        "boot/grub/grub.cfg",
        bytes(iso_cfg.clone()),
        iso_cfg.len() as u64,
    )?;
    // A UEFI GRUB started from El Torito (a CD) takes the ISO 9660 volume as its root.
    add(
        &mut iso_tree,
        "EFI/BOOT/grub.cfg",
        bytes(iso_cfg.clone()),
        iso_cfg.len() as u64,
    )?;
    if let Some(b) = &bios_bytes {
        add(
            &mut iso_tree,
            "boot/grub/eltorito.img",
            bytes(b.clone()),
            b.len() as u64,
        )?;
    }
    // Slots in the ISO tree: their initial content, or an empty placeholder.
    for (path, _, content) in &req.reserve_iso {
        let p = path.trim_start_matches('/');
        match content {
            Some(file) => {
                let size = std::fs::metadata(file)
                    .map_err(io("reading a --reserve-iso content"))?
                    .len();
                add(&mut iso_tree, p, Content::Host(file.clone()), size)?;
            }
            None if iso_tree.get(p.as_bytes()).is_none() => {
                add(&mut iso_tree, p, bytes(Vec::new()), 0)?;
            }
            None => {}
        }
    }
    let mut o = IsoOptions::new(&req.label, epoch_i);
    o.rock_ridge = true;
    o.joliet = true;
    o.clamp_mtime = true;
    o.clamp_times = true;
    o.boot_catalog = "boot/grub/boot.cat".into();
    if bios_bytes.is_some() {
        o.bios_boot = Some(BiosBoot {
            path: "boot/grub/eltorito.img".into(),
            load_size: Some(4),
            boot_info_table: true,
            grub2_boot_info: true,
        });
    }
    o.efi_boot = Some(EfiBoot::Appended {
        file: efiboot_tmp.temp_path().to_path_buf(),
    });
    o.hybrid_mbr = mbr_code.map(HybridMbr::detect);
    o.gpt = true;
    let mut ib = IsoBuilder::new(o);
    ib.add_fstree(&iso_tree)
        .map_err(|e| step("collecting the ISO tree")(chain(&e)))?;
    for (path, capacity, _) in &req.reserve_iso {
        ib.reserve_extent(path.trim_start_matches('/'), *capacity, 2048)
            .map_err(|e| step(format!("--reserve-iso {path}"))(chain(&e)))?;
    }
    let iso_out = AtomicFile::create(&req.iso)?;
    on(Event::Step {
        what: "writing the ISO",
        total: ib.data_bytes(),
    });
    let mut hw = HashingWriter::new(BufWriter::with_capacity(1 << 20, iso_out.file()));
    let iso_report = crate::iso::build_hybrid(ib, seed, &mut hw)?;
    let (iso_sha, iso_size) = hw.finish().map_err(io("writing the ISO"))?;
    let iso_layout = disk::iso_layout(
        iso_out.file(),
        &[
            req.layout.root_image(),
            req.layout.kernel(),
            req.layout.initrd(),
            "boot/grub/eltorito.img",
        ],
    )?;
    let iso_root_at = iso_layout.1.first().map_or(0, |f| f.offset);
    let mut iso_slots = slots_at(
        &erofs_slots,
        iso_root_at,
        &format!("iso9660 > /{} (erofs)", req.layout.root_image()),
    );
    iso_slots.extend(iso_report.slots.iter().map(|s| {
        crate::inject::Slot {
            name: s.path.trim_start_matches('/').to_owned(),
            within: "iso9660".into(),
            offset: s.offset,
            capacity: s.capacity,
            size: s.size,
            size_fields: s
                .size_fields
                .iter()
                .map(|f| crate::inject::SizeField {
                    offset: f.offset,
                    encoding: if f.big_endian { "be32" } else { "le32" }.into(),
                    ..Default::default()
                })
                .collect(),
        }
    }));
    if !efiboot_slots.is_empty() {
        let efiboot = efiboot_tmp.temp_path().display().to_string();
        let at = iso_report
            .boot_files
            .iter()
            .find(|f| f.path == efiboot)
            .map(|f| f.offset)
            .ok_or_else(|| step("placing the ESP slots")("efiboot.img is not in the ISO".into()))?;
        iso_slots.extend(
            efiboot_slots
                .iter()
                .map(|r| fat_slot(r, at, "iso9660 > efiboot.img (fat)")),
        );
    }
    let (iso_sha, iso_size) = if iso_slots.is_empty() {
        (iso_sha, iso_size)
    } else {
        write_table(iso_out.file(), &iso_slots)?;
        disk::file_sha256(iso_out.file())?
    };
    let mut outputs_rec = vec![OutputRecord {
        kind: "iso",
        name: file_name(&req.iso),
        size: iso_size,
        sha256: iso_sha,
        partitions: iso_layout.0,
        files: iso_layout.1,
        cmdline: iso_cmdline,
        slots: iso_slots,
    }];

    // The disk.
    let disk_out = match &req.disk {
        None => None,
        Some(path) => {
            let out = AtomicFile::create(path)?;
            let rec = disk::write_disk(
                &disk::DiskInputs {
                    name: file_name(path),
                    label: &req.label,
                    model: &model,
                    rootfs: req.rootfs.name(),
                    root_image: root_tmp.temp_path(),
                    root_len,
                    kernel: &kernel,
                    initrd: &initrd,
                    efi: &efi_bytes,
                    append: &append,
                    timeout,
                    epoch,
                    seed,
                    encrypt: req.encrypt.as_ref(),
                    parts: &req.disk_parts,
                    slots: &erofs_slots,
                    esp_slots: &esp_slots,
                },
                out.file(),
                on,
            )?;
            outputs_rec.push(rec);
            Some(out)
        }
    };

    let manifest = Manifest {
        schema: 1,
        tool: TOOL.into(),
        label: req.label.clone(),
        epoch,
        seed: hex(&seed.0),
        rootfs: req.rootfs.name(),
        layout: req.layout,
        bios: bios_bytes.is_some(),
        kernel_version,
        inputs: records,
        tree: digest,
        root_image,
        kickstart: ks_report,
        outputs: outputs_rec,
        recipe: Recipe::of(req),
    };
    let manifest_out = match &req.manifest {
        None => None,
        Some(p) => {
            let f = AtomicFile::create(p)?;
            let mut text = serde_json::to_vec_pretty(&manifest)
                .map_err(|e| step("writing the manifest")(e.to_string()))?;
            text.push(b'\n');
            f.file()
                .write_all(&text)
                .map_err(io("writing the manifest"))?;
            Some(f)
        }
    };
    // Everything is complete: commit together.
    iso_out.commit()?;
    if let Some(d) = disk_out {
        d.commit()?;
    }
    if let Some(m) = manifest_out {
        m.commit()?;
    }
    drop(root_tmp);
    drop(efiboot_tmp);
    Ok(manifest)
}

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { what, source }
}

fn round_up(n: u64, to: u64) -> u64 {
    n.div_ceil(to).saturating_mul(to)
}

fn join_args(a: &str, b: &str) -> String {
    match (a.trim(), b.trim()) {
        (a, "") => a.to_owned(),
        ("", b) => b.to_owned(),
        (a, b) => format!("{a} {b}"),
    }
}

fn tree_bytes(tree: &Tree) -> u64 {
    tree.iter()
        .filter(|n| n.entry.file_type == FileType::File)
        .map(|n| n.entry.size)
        .sum()
}

/// The ESP's files: the loader as the removable-media path, the configuration where GRUB
/// images with either prefix read it, and the kernel and initrd when they live there.
fn add_esp_files(
    fb: &mut FatBuilder,
    efi: &[u8],
    cfg: &str,
    boot: Option<(&Input, &Input)>,
) -> Result<()> {
    let fat = |what: &str| {
        let what = what.to_owned();
        move |e: imgpipe_gptpart::Error| step(format!("adding {what} to the ESP"))(chain(&e))
    };
    fb.add_file("EFI/BOOT/BOOTX64.EFI", efi.to_vec())
        .map_err(fat("the EFI loader"))?;
    fb.add_file("EFI/BOOT/grub.cfg", cfg.as_bytes().to_vec())
        .map_err(fat("grub.cfg"))?;
    fb.add_file("boot/grub/grub.cfg", cfg.as_bytes().to_vec())
        .map_err(fat("grub.cfg"))?;
    if let Some((k, i)) = boot {
        fb.add_content("boot/vmlinuz", k.content.clone(), k.size)
            .map_err(fat("the kernel"))?;
        fb.add_content("boot/initrd.img", i.content.clone(), i.size)
            .map_err(fat("the initrd"))?;
    }
    Ok(())
}

fn write_root_image(
    req: &BuildRequest,
    tree: &Tree,
    epoch: u64,
    seed: Seed,
    out: &AtomicFile,
    on: &mut dyn FnMut(Event),
) -> Result<Vec<ErofsReservedSlot>> {
    let total = tree_bytes(tree);
    on(Event::Step {
        what: "compressing the root image",
        total,
    });
    let (tx, rx) = std::sync::mpsc::channel::<u64>();
    let file = out
        .file()
        .try_clone()
        .map_err(io("opening the root image"))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let sq = |e: imgpipe_squashfs::Error| {
        step(format!("writing the {} root image", req.rootfs.name()))(chain(&e))
    };
    let run = |w: &mut BufWriter<std::fs::File>,
               tx: std::sync::mpsc::Sender<u64>|
     -> Result<Vec<ErofsReservedSlot>> {
        let mut slots = Vec::new();
        match &req.rootfs {
            RootFs::Squashfs(o) => {
                let mut o = **o;
                o.mod_time = u32::try_from(epoch).unwrap_or(u32::MAX);
                o.clamp_mtime = Some(o.mod_time);
                o.clamp_times = true;
                let mut b = imgpipe_squashfs::Builder::new(o).map_err(sq)?;
                let tx = tx.clone();
                b.on_progress(move |p| {
                    let _ = tx.send(p.done);
                });
                b.add_fstree(tree).map_err(sq)?;
                b.build(w).map_err(sq)?;
            }
            RootFs::Erofs(o) => {
                let mut o = (**o).clone();
                o.epoch = epoch;
                o.clamp_mtime = true;
                o.uuid = seed.uuid(&Purpose::FilesystemUuid {
                    label: "erofs",
                    index: 0,
                });
                if o.volume_name.is_empty() {
                    o.volume_name = req.label.as_bytes().iter().copied().take(16).collect();
                }
                o.reserve = req
                    .reserve
                    .iter()
                    .map(|(p, n)| (p.trim_start_matches('/').as_bytes().to_vec(), *n))
                    .collect();
                let mut b = imgpipe_squashfs::erofs::ErofsBuilder::new(o).map_err(sq)?;
                let tx = tx.clone();
                b.on_progress(move |p| {
                    let _ = tx.send(p.done);
                });
                b.add_fstree(tree).map_err(sq)?;
                slots = b.build(w).map_err(sq)?.slots;
            }
        }
        w.flush().map_err(io("writing the root image"))?;
        Ok(slots)
    };
    // The worker thread compresses in a pool as large as the caller's (`--processors`).
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(rayon::current_num_threads())
        .build()
        .map_err(|e| step("starting compression threads")(e.to_string()))?;
    std::thread::scope(|s| {
        let worker = s.spawn(|| pool.install(|| run(&mut w, tx)));
        // Progress reaches the caller on this thread.
        for done in rx.iter() {
            on(Event::Progress(done));
        }
        worker
            .join()
            .unwrap_or_else(|_| Err(step("writing the root image")("a worker panicked".into())))
    })
}

/// Hashes what passes through, and counts it.
struct HashingWriter<W> {
    inner: W,
    hash: Sha256,
    len: u64,
}

impl<W: Write> HashingWriter<W> {
    fn new(inner: W) -> Self {
        Self {
            inner,
            hash: Sha256::new(),
            len: 0,
        }
    }

    fn finish(mut self) -> std::io::Result<(String, u64)> {
        self.inner.flush()?;
        Ok((hex(&self.hash.finalize()), self.len))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(buf.get(..n).unwrap_or_default());
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The FAT type and size of a disk's ESP holding `content` bytes (FAT32, at least 64 MiB).
fn esp_size(content: u64, requested: Option<u64>) -> (u64, FatType) {
    let size = requested
        .unwrap_or_else(|| round_up(content + content / 8 + (32 << 20), 1 << 20).max(64 << 20));
    (size, FatType::Fat32)
}

/// The slots of a root image that starts at `at` in an output, as its slot table lists them.
fn slots_at(slots: &[ErofsReservedSlot], at: u64, within: &str) -> Vec<crate::inject::Slot> {
    slots
        .iter()
        .map(|s| crate::inject::Slot {
            name: s.path.trim_start_matches('/').to_owned(),
            within: within.to_owned(),
            offset: at + s.offset,
            capacity: s.capacity,
            size: s.size,
            size_fields: vec![crate::inject::SizeField {
                offset: at + s.size_offset,
                encoding: s.size_encoding.to_owned(),
                ..Default::default()
            }],
        })
        .collect()
}

/// A FAT file's slot at `at` in an output: its size field and the FAT fields that follow
/// the size, as plain functions of the piece's length ([`crate::inject`]).
pub(crate) fn fat_slot(
    r: &imgpipe_gptpart::FatReservedFile,
    at: u64,
    within: &str,
) -> crate::inject::Slot {
    use crate::inject::SizeField;
    let mut fields = vec![SizeField {
        offset: at + r.size_offset,
        encoding: "le32".into(),
        ..Default::default()
    }];
    fields.extend(
        r.first_cluster_fields
            .iter()
            .map(|(offset, value)| SizeField {
                offset: at + offset,
                encoding: "le16-if-any".into(),
                value: u64::from(*value),
                ..Default::default()
            }),
    );
    fields.extend(r.fat_entries.iter().map(|offset| {
        SizeField {
            offset: at + offset,
            encoding: if r.fat_entry_bytes == 2 {
                "le16-chain"
            } else {
                "le32-chain"
            }
            .into(),
            unit: r.cluster_size,
            count: u64::from(r.clusters),
            value: u64::from(r.first_cluster),
            end: u64::from(r.end_of_chain),
        }
    }));
    fields.extend(r.free_count_fields.iter().map(|offset| SizeField {
        offset: at + offset,
        encoding: "le32-free".into(),
        unit: r.cluster_size,
        value: u64::from(r.free_count_empty),
        ..Default::default()
    }));
    crate::inject::Slot {
        name: r.path.clone(),
        within: within.to_owned(),
        offset: at + r.offset,
        capacity: r.capacity,
        size: r.size,
        size_fields: fields,
    }
}

/// A `--reserve-esp` slot, its content's size known.
#[derive(Debug, Clone)]
pub(crate) struct EspSlot {
    path: String,
    capacity: u64,
    content: Option<(PathBuf, u64)>,
}

impl EspSlot {
    /// What it adds to a FAT volume, clusters and FAT rounding included.
    fn room(&self) -> u64 {
        round_up(self.capacity, 32 << 10) + self.capacity / 64
    }

    fn add_to(&self, fb: &mut FatBuilder) -> Result<()> {
        let (content, size) = match &self.content {
            Some((file, size)) => (Content::Host(file.clone()), *size),
            None => (bytes(Vec::new()), 0),
        };
        fb.reserve_content(&self.path, self.capacity, content, size)
            .map_err(|e| step(format!("--reserve-esp {}", self.path))(chain(&e)))
    }
}

/// The `--reserve-esp` slots, checked before anything is written: each content fits its
/// capacity, and each path is a FAT name clear of the ESP's own files.
fn esp_reservations(req: &BuildRequest) -> Result<Vec<EspSlot>> {
    let mut out = Vec::new();
    let mut probe = FatBuilder::new(64 << 20);
    add_esp_files(&mut probe, &[], "", None)?;
    for (path, capacity, content) in &req.reserve_esp {
        let path = path.trim_start_matches('/').to_owned();
        let content = match content {
            Some(file) => {
                let size = std::fs::metadata(file)
                    .map_err(|source| Error::HostIo {
                        what: "--reserve-esp: cannot read",
                        path: file.clone(),
                        source,
                    })?
                    .len();
                if size > *capacity {
                    return Err(Error::Argument {
                        flag: "--reserve-esp",
                        value: path,
                        reason: format!(
                            "the content is {size} bytes; the slot holds at most {capacity}"
                        ),
                    });
                }
                Some((file.clone(), size))
            }
            None => None,
        };
        let slot = EspSlot {
            path,
            capacity: *capacity,
            content,
        };
        for p in ["boot/vmlinuz", "boot/initrd.img"] {
            if slot.path.eq_ignore_ascii_case(p) {
                return Err(Error::Argument {
                    flag: "--reserve-esp",
                    value: slot.path,
                    reason: "the disk's ESP holds the kernel and initrd there".into(),
                });
            }
        }
        slot.add_to(&mut probe)?;
        out.push(slot);
    }
    Ok(out)
}

/// Writes the slot table into an output's first 32 KiB.
fn write_table(file: &std::fs::File, slots: &[crate::inject::Slot]) -> Result<()> {
    use std::os::unix::fs::FileExt;
    // Written last: the file has its final length.
    let image_len = file
        .metadata()
        .map_err(io("reading an output's size"))?
        .len();
    let table = crate::inject::SlotTable {
        version: 1,
        image_len,
        slots: slots.to_vec(),
    };
    file.write_all_at(&table.encode()?, crate::inject::TABLE_OFFSET)
        .map_err(io("writing the slot table"))
}
