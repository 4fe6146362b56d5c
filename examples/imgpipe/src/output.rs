//! Shared output conventions: stdout that survives `| head`, errors with their cause chain,
//! JSON reports, exit codes.

use std::io::Write;
use std::process::ExitCode;

use serde::Serialize;

/// Exit status for success, "identical" and "valid".
pub const SUCCESS: u8 = 0;
/// Exit status for a negative answer: different, invalid, wrong passphrase.
pub const NEGATIVE: u8 = 1;
/// Exit status for usage and input errors, and for output that cannot be written.
pub const INPUT_ERROR: u8 = 2;

/// Prints `imgpipe: error: <error>: <cause>: <cause>...` as one line on stderr.
pub fn print_error(e: &anyhow::Error) {
    let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
    eprintln!("imgpipe: error: {}", chain.join(": "));
}

/// Whether `e` (or one of its causes) is a write to a closed pipe.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                .is_some_and(|k| k == std::io::ErrorKind::BrokenPipe)
    })
}

/// Ends the process after a failed write to stdout: quietly with exit 0 when the reader
/// went away (as coreutils do under `| head`), else with the error and exit 2.
fn stdout_failed(e: std::io::Error) -> ! {
    // Nothing half-written may stay beside an output (a report is printed after the commit,
    // but be safe).
    imgpipe_repro::discard_pending_outputs();
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(i32::from(SUCCESS));
    }
    eprintln!("imgpipe: error: writing to stdout: {e}");
    std::process::exit(i32::from(INPUT_ERROR));
}

/// What the crate's `print!`/`println!` call: write to the locked stdout, ending the process
/// as [`stdout_failed`] says when that fails.
pub fn stdout_write(args: std::fmt::Arguments<'_>) {
    if let Err(e) = std::io::stdout().lock().write_fmt(args) {
        stdout_failed(e);
    }
}

/// What the crate's `eprint!`/`eprintln!` call: write to stderr, ignoring failure.
pub fn stderr_write(args: std::fmt::Arguments<'_>) {
    let _ = std::io::stderr().lock().write_fmt(args);
}

/// Writes bytes to stdout; the error is returned (see [`is_broken_pipe`]).
pub fn write_stdout(bytes: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()
}

/// Flushes stdout, so that a full disk is reported rather than lost at exit.
pub fn flush_stdout() -> anyhow::Result<()> {
    std::io::stdout()
        .lock()
        .flush()
        .map_err(|e| anyhow::Error::new(e).context("writing to stdout"))
}

/// Writes `value` as pretty JSON followed by a newline on stdout.
pub fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    serde_json::to_writer_pretty(&mut out, value).map_err(anyhow::Error::from)?;
    writeln!(out)
        .and_then(|()| out.flush())
        .map_err(|e| anyhow::Error::new(e).context("writing to stdout"))
}

/// Prints `value` as JSON with `--json`, else the one-line `text` on stdout.
pub fn summary<T: Serialize>(
    json: bool,
    value: &T,
    text: std::fmt::Arguments<'_>,
) -> anyhow::Result<()> {
    if json {
        return print_json(value);
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}").map_err(|e| anyhow::Error::new(e).context("writing to stdout"))
}

/// An exit code from one of the constants above.
pub fn exit(code: u8) -> ExitCode {
    ExitCode::from(code)
}

/// `1 file`, `2 files`, `0 files`.
pub fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// The build epoch: `--epoch` when given, else `SOURCE_DATE_EPOCH`, else 0.
///
/// The binary is the only place that reads the environment; libraries take the epoch as a
/// parameter.
pub fn epoch(flag: Option<u64>) -> anyhow::Result<imgpipe_repro::Epoch> {
    if let Some(secs) = flag {
        return Ok(imgpipe_repro::Epoch(secs));
    }
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => Ok(imgpipe_repro::Epoch::from_source_date_epoch(&v)?),
        Err(_) => Ok(imgpipe_repro::Epoch(0)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn plurals() {
        assert_eq!(super::plural(0, "file", "files"), "0 files");
        assert_eq!(super::plural(1, "file", "files"), "1 file");
        assert_eq!(super::plural(2, "file", "files"), "2 files");
    }
}
