//! `imgpipe`: a thin command line over the imgpipe crates.
//!
//! Conventions every subcommand follows:
//! - exit 0: success, identical, valid; 1: a negative answer (different, invalid, wrong
//!   passphrase); 2: usage or input error, or output that could not be written (`> /dev/full`);
//!   130 and 143: stopped by SIGINT and SIGTERM, leaving no output behind;
//! - errors go to stderr as `imgpipe: error: ...` followed by the cause chain;
//! - every report has a `--json` form;
//! - a closed stdout (`imgpipe ... | head -1`) ends the program quietly with exit 0;
//! - images are written through one atomic writer (`imgpipe_repro::AtomicFile`);
//! - long operations show progress on a terminal and stay quiet otherwise.

// Every `print!`/`println!` below this point (all of `cmd`) goes through the locked stdout of
// `output::stdout_write`: a closed pipe ends the program quietly, a write error exits 2. The
// std macros would panic instead. These definitions shadow the prelude's by textual scope.
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::output::stdout_write(format_args!($($arg)*))
    };
}
macro_rules! println {
    () => {
        $crate::output::stdout_write(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::stdout_write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

// `eprint!`/`eprintln!` ignore a stderr that cannot be written (`2>&1 | head` after the
// reader left): a message that nobody can read is no reason to panic.
#[allow(unused_macros)] // Kept so that a future `eprint!` is covered too.
macro_rules! eprint {
    ($($arg:tt)*) => {
        $crate::output::stderr_write(format_args!($($arg)*))
    };
}
macro_rules! eprintln {
    () => {
        $crate::output::stderr_write(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::stderr_write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

mod cmd;
mod flags;
mod output;
mod progress;
mod size;
mod source;
mod target;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand};

/// Reproducible OS images: inspect, build and diff ISO9660, squashfs, EROFS, GPT, MBR, FAT,
/// LUKS2 and kickstart files.
#[derive(Debug, Parser)]
#[command(name = "imgpipe", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build a bootable, byte-reproducible live ISO (and disk image) from a kickstart and a
    /// root tree.
    Build(Box<cmd::build::Args>),
    /// Put pieces into an image's reserved slots (O(piece) work): into a copy, in place, or
    /// streamed to stdout.
    Inject(cmd::inject::Args),
    /// Serve per-download images over HTTP: `GET /NAME.iso` streams the base with the piece
    /// NAME in its slot (ranges, entity tags, bounded concurrency, graceful SIGTERM).
    Serve(cmd::serve::Args),
    /// Prove a build from its manifest: the recorded inputs still have their digests and
    /// give the recorded outputs byte for byte (exit 0), or what changed (exit 1).
    Rebuild(cmd::rebuild::Args),
    /// Build twice (the second under variations) and compare the outputs: exit 0
    /// reproducible, 1 not (which files, which variations), 2 could not run.
    Verify(cmd::verify::Args),
    /// Recognise an image or kickstart file and describe it.
    Inspect(cmd::inspect::Args),
    /// Compare two builds: identical, or which byte ranges (in which structures) differ.
    Diff(cmd::diff::Args),
    /// ISO9660 images: create, info, ls, extract.
    Iso(cmd::iso::Args),
    /// squashfs images: create, info, ls, extract.
    Squashfs(cmd::squashfs::Args),
    /// EROFS images: create (uncompressed or compressed), info, ls, extract.
    Erofs(cmd::erofs::Args),
    /// GPT disk images: create, show, grow, info.
    Gpt(cmd::gpt::Args),
    /// FAT file systems: create, info, ls, extract.
    Fat(cmd::fat::Args),
    /// LUKS2 volumes: format, dump, unlock, keyslots, payload encryption.
    Luks(cmd::luks::Args),
    /// Kickstart files: validate, flatten, format.
    Ks(cmd::ks::Args),
    /// Print a shell completion script on stdout (e.g. `imgpipe completions bash >
    /// ~/.local/share/bash-completion/completions/imgpipe`).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write one man page per command into DIR (`imgpipe.1`, `imgpipe-iso-create.1`, ...).
    Manpages {
        /// The directory (created if missing).
        dir: PathBuf,
    },
}

/// Large buffers (file pieces being compressed, 16 MiB each) come and go throughout an
/// image build. After the first is freed glibc's malloc raises its mmap threshold above them
/// and serves the later ones from per-thread arenas, each keeping its own peak: a fixed
/// threshold hands them back to the system when freed, and two arenas are enough.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn tune_malloc() {
    // SAFETY: mallopt only sets allocator parameters; it runs before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_malloc() {}

fn main() -> ExitCode {
    tune_malloc();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are successes; everything else is a usage error (exit 2).
            let code = if e.use_stderr() {
                output::INPUT_ERROR
            } else {
                output::SUCCESS
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    // `serve` stops gracefully on SIGTERM/SIGINT itself (exit 0).
    if !matches!(cli.command, Command::Serve(_)) {
        target::install_signal_handler();
    }
    let result = match cli.command {
        Command::Build(a) => cmd::build::run(*a),
        Command::Verify(a) => cmd::verify::run(a),
        Command::Rebuild(a) => cmd::rebuild::run(a),
        Command::Inject(a) => cmd::inject::run(a),
        Command::Serve(a) => cmd::serve::run(a),
        Command::Inspect(a) => cmd::inspect::run(a),
        Command::Diff(a) => cmd::diff::run(a),
        Command::Iso(a) => cmd::iso::run(a),
        Command::Squashfs(a) => cmd::squashfs::run(a),
        Command::Erofs(a) => cmd::erofs::run(a),
        Command::Gpt(a) => cmd::gpt::run(a),
        Command::Fat(a) => cmd::fat::run(a),
        Command::Luks(a) => cmd::luks::run(a),
        Command::Ks(a) => cmd::ks::run(a),
        Command::Completions { shell } => completions(shell),
        Command::Manpages { dir } => manpages(&dir),
    };
    target::wait_if_stopping();
    // Buffered output is written now, so a full disk is an error rather than lost output.
    let result = result.and_then(|code| output::flush_stdout().map(|()| code));
    match result {
        Ok(code) => code,
        Err(e) if output::is_broken_pipe(&e) => output::exit(output::SUCCESS),
        Err(e) => {
            output::print_error(&e);
            ExitCode::from(output::INPUT_ERROR)
        }
    }
}

fn completions(shell: clap_complete::Shell) -> anyhow::Result<ExitCode> {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "imgpipe", &mut buf);
    output::write_stdout(&buf)?;
    Ok(output::exit(output::SUCCESS))
}

fn manpages(dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut n = 0u64;
    let mut stack = vec![(
        String::from("imgpipe"),
        String::from("imgpipe"),
        Cli::command(),
    )];
    while let Some((name, bin, cmd)) = stack.pop() {
        for sub in cmd.get_subcommands() {
            if sub.get_name() != "help" {
                let n = sub.get_name();
                stack.push((format!("{name}-{n}"), format!("{bin} {n}"), sub.clone()));
            }
        }
        // The title is `imgpipe-iso-create`; the synopsis reads `imgpipe iso create`.
        let cmd = cmd.display_name(name.clone()).bin_name(bin);
        let path = dir.join(format!("{name}.1"));
        let mut buf = Vec::new();
        clap_mangen::Man::new(cmd)
            .render(&mut buf)
            .with_context(|| format!("rendering {}", path.display()))?;
        std::fs::write(&path, buf).with_context(|| format!("writing {}", path.display()))?;
        n += 1;
    }
    println!(
        "{}: {}",
        dir.display(),
        output::plural(n, "man page", "man pages")
    );
    Ok(output::exit(output::SUCCESS))
}
