//! Flags shared by several command groups, so one idea has one name everywhere.

/// `--epoch`, `--clamp-mtime` and `--seed`: every `create` takes them.
#[derive(Debug, Clone, clap::Args)]
pub struct CreateCommon {
    /// Build time in Unix seconds: every timestamp the format stores for the build
    /// (default: SOURCE_DATE_EPOCH, else 0).
    #[arg(long)]
    pub epoch: Option<u64>,
    /// Lower every file time later than the epoch to the epoch (and store a time the format
    /// cannot hold as the nearest one it can, instead of refusing the entry).
    #[arg(long)]
    pub clamp_mtime: bool,
    /// Seed every identifier (GUIDs, UUIDs, serial numbers) derives from: 32 hex digits (a
    /// UUID, dashes allowed), or any other even number of hex digits as material. Formats
    /// without identifiers accept and ignore it. Default: derived from the arguments.
    #[arg(long, value_parser = parse_seed)]
    pub seed: Option<imgpipe_repro::Seed>,
    /// Replace OUT even when it holds a recognised filesystem or partition table.
    #[arg(long)]
    pub force: bool,
}

/// `--seed` for clap: the one parser every command's seed goes through.
pub fn parse_seed(text: &str) -> Result<imgpipe_repro::Seed, String> {
    imgpipe_repro::Seed::parse_hex(text).ok_or_else(|| {
        format!(
            "{text:?} is not a seed: 32 hex digits (a UUID, dashes allowed), or another even number of hex digits"
        )
    })
}

impl CreateCommon {
    /// The epoch: `--epoch`, else SOURCE_DATE_EPOCH, else 0.
    pub fn epoch(&self) -> anyhow::Result<u64> {
        Ok(crate::output::epoch(self.epoch)?.0)
    }
}

/// `--owners`/`--no-owners` for extraction: one default everywhere (restored when running
/// as root, as tar does).
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct Owners {
    /// Restore owners (the default when running as root).
    #[arg(long, overrides_with = "no_owners")]
    pub owners: bool,
    /// Do not restore owners.
    #[arg(long, overrides_with = "owners")]
    pub no_owners: bool,
}

impl Owners {
    /// Whether to restore owners: `--owners`, else not `--no-owners` and running as root.
    pub fn get(self) -> bool {
        self.owners || (!self.no_owners && running_as_root())
    }
}

/// Whether the effective user is root.
pub fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the effective uid; avoids unsafe libc calls in the binary.
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `--devices` and `--max-output-ratio` for extraction: one meaning everywhere.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct ExtractBounds {
    /// Create character and block device nodes from the image (default: skipped and
    /// listed, since an untrusted image can hold a world-writable `mem` or disk node).
    #[arg(long)]
    pub devices: bool,
    /// Stop once the bytes written that are not the image's own uncompressed bytes (compressed
    /// data, regions claimed twice) pass N times the image's size (at least 64 MiB); holes and
    /// files sharing another's bytes (written as hard links) do not count.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub max_output_ratio: u64,
}

impl ExtractBounds {
    /// Sets the options these flags control.
    pub fn apply(self, opts: &mut imgpipe_fstree::ExtractOptions) {
        opts.devices = self.devices;
        opts.max_output_ratio = self.max_output_ratio;
    }
}

/// Says on stderr which special files an extraction skipped, and how to get them.
pub fn report_skipped(rep: &imgpipe_fstree::ExtractReport) {
    if rep.skipped == 0 {
        return;
    }
    let shown = rep.skipped_paths.len() as u64;
    eprintln!(
        "skipped {} (device nodes need --devices and root):",
        crate::output::plural(rep.skipped, "special file", "special files")
    );
    for p in &rep.skipped_paths {
        eprintln!("  {p}");
    }
    if rep.skipped > shown {
        eprintln!("  ... and {} more", rep.skipped - shown);
    }
}
