//! The text form of `imgpipe inspect` and `<group> info`: a hand-written summary per format,
//! rendered from the typed inspection (`imgpipe_repro::Inspection`), never from JSON keys.
//!
//! Every report starts with `FILE: FORMAT, SIZE (N bytes)`, then a `warning:` line for a
//! truncated image, then aligned `Label: value` lines and, where a format has them, small
//! tables (partitions, boot entries, keyslots) indented under their label.

mod disk;
mod fs;
mod iso;
mod luks;

use std::fmt::Display;

use imgpipe_repro::{Inspection, Report};

pub use luks::dump as luks_dump;

/// The text report of `report` for the file shown as `name`.
pub fn text(name: &str, report: &Report) -> String {
    let mut t = Text::default();
    match &report.details {
        Inspection::Squashfs(s) => fs::squashfs(&mut t, s),
        Inspection::Erofs(e) => fs::erofs(&mut t, e),
        Inspection::Fat(b) => fs::fat(&mut t, b),
        Inspection::Kickstart(k) => fs::kickstart(&mut t, k),
        Inspection::Iso9660(i) => iso::iso(&mut t, i),
        Inspection::Gpt(d) => disk::gpt(&mut t, d),
        Inspection::Mbr(m) => disk::mbr(&mut t, m),
        Inspection::Luks2(l) => luks::luks(&mut t, l),
        // A format added to the registry later is still reported, by its JSON.
        other => t.field(
            "Details",
            serde_json::to_string(other).unwrap_or_else(|e| e.to_string()),
        ),
    }
    let mut out = format!(
        "{name}: {}, {}\n",
        report.format,
        size_with_bytes(report.size)
    );
    if let Some(w) = report.warning() {
        out.push_str(&format!("warning: {w}\n"));
    }
    out.push_str(&t.finish());
    out
}

/// The GPT part of a report alone (what `gpt create`, `gpt show` and `gpt grow` print).
pub fn gpt_text(d: &imgpipe_gptpart::GptDisk) -> String {
    let mut t = Text::default();
    disk::gpt(&mut t, d);
    t.finish()
}

/// One line of a report.
enum Row {
    /// `Label: value`, the values aligned.
    Field(String, String),
    /// A line printed as it is (table rows, indented).
    Line(String),
}

/// A report being built: fields and table lines in order.
#[derive(Default)]
pub(super) struct Text {
    rows: Vec<Row>,
}

impl Text {
    /// Adds `Label: value`.
    pub(super) fn field(&mut self, label: &str, value: impl Display) {
        self.rows
            .push(Row::Field(label.to_owned(), value.to_string()));
    }

    /// Adds `Label: value` when `value` is not empty.
    pub(super) fn field_if(&mut self, label: &str, value: &str) {
        if !value.trim().is_empty() {
            self.field(label, value.trim());
        }
    }

    /// Adds a table indented by two spaces: a header row, then `rows`; the columns whose
    /// `right` flag is set are right-aligned (numbers), the last column is never padded.
    pub(super) fn table(&mut self, header: &[&str], right: &[bool], rows: &[Vec<String>]) {
        let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
        for r in rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let head: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
        for r in std::iter::once(&head).chain(rows) {
            let mut line = String::from(" ");
            let last = r.len().saturating_sub(1);
            for (i, (c, w)) in r.iter().zip(&widths).enumerate() {
                line.push(' ');
                let pad = w.saturating_sub(c.chars().count());
                if right.get(i).copied().unwrap_or(false) {
                    line.push_str(&" ".repeat(pad));
                    line.push_str(c);
                } else {
                    line.push_str(c);
                    if i != last {
                        line.push_str(&" ".repeat(pad));
                    }
                }
                if i != last {
                    line.push(' ');
                }
            }
            self.rows.push(Row::Line(line.trim_end().to_owned()));
        }
    }

    /// The report: labels padded so that every value starts in the same column.
    fn finish(self) -> String {
        let width = self
            .rows
            .iter()
            .filter_map(|r| match r {
                Row::Field(l, _) => Some(l.chars().count() + 1),
                Row::Line(_) => None,
            })
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for r in self.rows {
            match r {
                Row::Field(l, v) if v.is_empty() => out.push_str(&format!("{l}:\n")),
                Row::Field(l, v) => out.push_str(&format!("{:<width$} {v}\n", format!("{l}:"))),
                Row::Line(s) => {
                    out.push_str(&s);
                    out.push('\n');
                }
            }
        }
        out
    }
}

/// `512 B`, `4 KiB`, `1.5 MiB`: a size in binary units, to one decimal when not whole.
pub(super) fn human(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut unit = 0;
    let mut scale = 1u64;
    while unit + 1 < UNITS.len() && bytes / scale >= 1024 {
        scale *= 1024;
        unit += 1;
    }
    let name = UNITS.get(unit).copied().unwrap_or("B");
    if bytes.is_multiple_of(scale) {
        return format!("{} {name}", bytes / scale);
    }
    let v = bytes as f64 / scale as f64;
    let short = format!("{v:.1}");
    // 15.97 MiB is not 16.0 MiB: a rounded value never looks whole.
    if short.ends_with(".0") {
        format!("{v:.2} {name}")
    } else {
        format!("{short} {name}")
    }
}

/// `4 KiB (4096 bytes)`, or `100 bytes` when that is all.
pub(super) fn size_with_bytes(bytes: u64) -> String {
    if bytes < 1024 {
        plural(bytes, "byte")
    } else {
        format!("{} ({})", human(bytes), plural(bytes, "byte"))
    }
}

/// `1 sector`, `2 sectors`.
pub(super) fn plural(n: impl Into<u64>, word: &str) -> String {
    let n = n.into();
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// `2026-01-02 03:04:05 UTC`.
pub(super) fn date(secs: i64) -> String {
    format!("{} UTC", imgpipe_fstree::civil::format_utc(secs))
}

/// `yes` or `no`.
pub(super) fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// A list of words, or `none`.
pub(super) fn words(list: &[String]) -> String {
    if list.is_empty() {
        "none".into()
    } else {
        list.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_in_binary_units() {
        assert_eq!(human(0), "0 B");
        assert_eq!(human(4096), "4 KiB");
        assert_eq!(human(1536 * 1024), "1.5 MiB");
        assert_eq!(human(16_744_448), "15.97 MiB");
        assert_eq!(size_with_bytes(100), "100 bytes");
        assert_eq!(size_with_bytes(8 << 20), "8 MiB (8388608 bytes)");
    }

    #[test]
    fn fields_align_and_tables_indent() {
        let mut t = Text::default();
        t.field("A", 1);
        t.field("Longer", "x");
        t.table(
            &["#", "name"],
            &[true, false],
            &[vec!["1".into(), "a".into()]],
        );
        assert_eq!(t.finish(), "A:      1\nLonger: x\n  #  name\n  1  a\n");
    }
}
