//! Shared output conventions: errors with their cause chain, JSON reports, exit codes.

use std::io::Write;
use std::process::ExitCode;

use serde::Serialize;

/// Exit status for success, "identical" and "valid".
pub const SUCCESS: u8 = 0;
/// Exit status for a negative answer: different, invalid, wrong passphrase.
pub const NEGATIVE: u8 = 1;
/// Exit status for usage and input errors.
pub const INPUT_ERROR: u8 = 2;

/// Prints `imgpipe: error: <error>: <cause>: <cause>...` as one line on stderr.
pub fn print_error(e: &anyhow::Error) {
    let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
    eprintln!("imgpipe: error: {}", chain.join(": "));
}

/// Writes `value` as pretty JSON followed by a newline on stdout.
pub fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// An exit code from one of the constants above.
pub fn exit(code: u8) -> ExitCode {
    ExitCode::from(code)
}

/// The build epoch: `--epoch` when given, else `SOURCE_DATE_EPOCH`, else 0.
///
/// The binary is the only place that reads the environment; libraries take the epoch as a
/// parameter.
#[allow(dead_code)] // used by the create subcommands as they land
pub fn epoch(flag: Option<u64>) -> anyhow::Result<imgpipe_repro::Epoch> {
    if let Some(secs) = flag {
        return Ok(imgpipe_repro::Epoch(secs));
    }
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => Ok(imgpipe_repro::Epoch::from_source_date_epoch(&v)?),
        Err(_) => Ok(imgpipe_repro::Epoch(0)),
    }
}
