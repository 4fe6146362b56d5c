//! The one listing every `<format> ls` prints: [`imgpipe_fstree::Listing`] as JSON, or one
//! `ls -l`-like line per entry with UTC dates.

use std::io::Write;

use imgpipe_fstree::{FsRead, Listing};

use crate::output;

/// Prints a listing as `ls -l`-like lines (UTC dates), or as the JSON document
/// `{"schema": 1, "format": ..., "entries": [...]}`: the same shape for every format.
pub(crate) fn print_listing(listing: &Listing, json: bool) -> anyhow::Result<()> {
    if json {
        return output::print_json(listing);
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for e in &listing.entries {
        writeln!(out, "{}", e.text_line())?;
    }
    out.flush()?;
    Ok(())
}

/// The listing of any image through its reader's [`FsRead`] walk.
pub(crate) fn list<R: FsRead>(format: &'static str, r: &R) -> anyhow::Result<Listing> {
    let walked = r.walk()?;
    Ok(Listing::new(format, walked.iter().map(|(e, _)| e)))
}
