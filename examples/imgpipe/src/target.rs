//! Where images are written: checks made before any work, the refusal to overwrite a
//! recognised image without `--force`, the atomic writer, and the signal handler that makes
//! SIGINT and SIGTERM leave nothing behind.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, bail};
use imgpipe_repro::AtomicFile;

/// Installs the SIGINT/SIGTERM handler: it sends SIGTERM to the process groups of the builds
/// `verify` runs ([`imgpipe_repro::running_child_groups`]), removes every pending temporary
/// output ([`imgpipe_repro::discard_pending_outputs`]) and exits 130 or 143, as shells report
/// a process that the signal killed.
pub fn install_signal_handler() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
        return;
    };
    let _ = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                STOPPING.store(true, std::sync::atomic::Ordering::SeqCst);
                // Builds run by `verify` stop first: they write into what is removed next.
                for group in imgpipe_repro::running_child_groups() {
                    if let Some(pid) = i32::try_from(group)
                        .ok()
                        .and_then(rustix::process::Pid::from_raw)
                    {
                        let _ =
                            rustix::process::kill_process_group(pid, rustix::process::Signal::TERM);
                    }
                }
                imgpipe_repro::discard_pending_outputs();
                std::process::exit(128 + sig);
            }
        });
}

/// Set by the signal handler before it stops anything.
static STOPPING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Called before the command's result is reported: once a signal arrived, the handler owns
/// the ending (it removes what is pending, then exits 130 or 143), so a failure it caused
/// itself (a build it stopped) is neither reported nor allowed to end the process first.
pub fn wait_if_stopping() {
    if STOPPING.load(std::sync::atomic::Ordering::SeqCst) {
        loop {
            std::thread::park();
        }
    }
}

/// Checks an output path given by `flag` before any work: not a directory, in a directory
/// that exists. A temporary file a killed run left beside it is removed now, before a
/// builder could scan it (an output inside the input tree).
pub fn check_output(flag: &str, out: &Path) -> anyhow::Result<()> {
    imgpipe_repro::check_output(out).with_context(|| flag.to_string())?;
    let tmp = imgpipe_repro::temp_path(out).with_context(|| flag.to_string())?;
    match std::fs::remove_file(&tmp) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", tmp.display())),
    }
}

/// Checks `out` (given by `flag`) and refuses to replace an existing file that holds a
/// recognised filesystem or partition table unless `force`.
pub fn check_replace(flag: &str, out: &Path, force: bool) -> anyhow::Result<()> {
    check_output(flag, out)?;
    refuse_recognised(out, force)
}

/// Refuses, unless `force`, when `path` exists and holds a recognised image; says which.
pub fn refuse_recognised(path: &Path, force: bool) -> anyhow::Result<()> {
    if force {
        return Ok(());
    }
    if let Some(what) = recognise(path)? {
        bail!(
            "{} already holds {what}: use --force to overwrite it",
            path.display()
        );
    }
    Ok(())
}

/// What `path` holds when it is an image `imgpipe inspect` recognises (a kickstart file does
/// not count); `None` when it does not exist or holds anything else.
fn recognise(path: &Path) -> anyhow::Result<Option<&'static str>> {
    use imgpipe_repro::Format;
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot open {}", path.display())),
    };
    let mut head = Vec::new();
    (&mut f)
        .take(imgpipe_repro::HEAD_LEN)
        .read_to_end(&mut head)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(match imgpipe_repro::detect(&head) {
        Some(Format::Luks2) => Some("a LUKS2 volume"),
        Some(Format::Squashfs) => Some("a squashfs image"),
        Some(Format::Erofs) => Some("an EROFS image"),
        Some(Format::Iso9660) => Some("an ISO9660 image"),
        Some(Format::Gpt) => Some("a GPT partition table"),
        Some(Format::Fat) => Some("a FAT file system"),
        Some(Format::Mbr) => Some("an MBR partition table"),
        // Kickstart files are text, not images; formats added later count as images.
        Some(Format::Kickstart) | None => None,
        Some(_) => Some("a recognised image"),
    })
}

/// Opens the atomic writer for `out`; the caller writes, then calls [`AtomicFile::commit`].
pub fn create(out: &Path) -> anyhow::Result<AtomicFile> {
    AtomicFile::create(out).with_context(|| format!("cannot create {}", out.display()))
}

/// Commits `f`, naming its destination in the error.
pub fn commit(f: AtomicFile) -> anyhow::Result<()> {
    let out = f.path().to_path_buf();
    f.commit()
        .with_context(|| format!("cannot write {}", out.display()))
}

/// Writes `out` atomically through a 1 MiB buffer: `build` fills the buffer, the buffer is
/// flushed, the file committed; on any error nothing is left at `out` or beside it.
pub fn write_buffered<T, E>(
    out: &Path,
    build: impl FnOnce(&mut std::io::BufWriter<&std::fs::File>) -> Result<T, E>,
) -> anyhow::Result<T>
where
    anyhow::Error: From<E>,
{
    use std::io::Write;
    let file = create(out)?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file.file());
    let rep = build(&mut w)
        .map_err(anyhow::Error::from)
        .and_then(|r| w.flush().map(|()| r).map_err(anyhow::Error::new))
        .with_context(|| format!("writing {}", out.display()))?;
    drop(w);
    commit(file)?;
    Ok(rep)
}
