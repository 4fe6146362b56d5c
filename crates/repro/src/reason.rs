//! Why two versions of one file differ, for the usual culprits of irreproducibility: a gzip
//! header's time, name or OS; the ELF sections that differ (a build-id, a debuglink); a
//! Python `.pyc` header; the member times and order of a zip (jar, wheel), an `ar` archive
//! or a cpio archive (an initramfs, also gzip-compressed); for text, the first lines that
//! differ.
//!
//! [`explain`] reads both versions from memory and is bounded: every length and offset is
//! checked against the buffer, member lists stop at [`MAX_MEMBERS`], gzip is decompressed to
//! at most [`MAX_INFLATED`] bytes, and each reason says at most [`MAX_DETAILS`] things.
//!
//! ```
//! use imgpipe_repro::reason::explain;
//! let r = explain(b"one\ntwo\nthree\n", b"one\n2\nthree\n").unwrap();
//! assert_eq!(r.format, "text");
//! assert_eq!(r.details, ["line 2: -two +2"]);
//! ```

use std::collections::BTreeMap;
use std::io::Read;

use serde::Serialize;

/// The most members of an archive compared.
pub const MAX_MEMBERS: usize = 100_000;
/// The most bytes one gzip stream is inflated to before it is looked into.
pub const MAX_INFLATED: u64 = 64 << 20;
/// The most details one reason lists (the rest are counted in the last one).
pub const MAX_DETAILS: usize = 20;

/// Why a file differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    /// What the file was read as: `text`, `gzip`, `elf`, `pyc`, `zip`, `ar`, `cpio`.
    pub format: &'static str,
    /// What differs, most telling first (e.g. `header mtime 0 -> 1700000000`).
    pub details: Vec<String>,
}

/// Why `a` and `b` (two versions of one file) differ, when their format is one of the
/// culprits this knows; `None` for identical inputs or other formats.
pub fn explain(a: &[u8], b: &[u8]) -> Option<Reason> {
    if a == b {
        return None;
    }
    let r = if a.starts_with(&[0x1f, 0x8b]) && b.starts_with(&[0x1f, 0x8b]) {
        gzip(a, b)
    } else if a.starts_with(b"\x7fELF") && b.starts_with(b"\x7fELF") {
        elf(a, b)
    } else if a.starts_with(b"!<arch>\n") && b.starts_with(b"!<arch>\n") {
        ar(a, b)
    } else if a.starts_with(b"PK") && b.starts_with(b"PK") {
        zip(a, b)
    } else if is_cpio(a) && is_cpio(b) {
        cpio(a, b)
    } else if is_pyc(a) && is_pyc(b) {
        pyc(a, b)
    } else if is_text(a) && is_text(b) {
        Some(text(a, b))
    } else {
        None
    };
    r.map(|mut r| {
        if r.details.len() > MAX_DETAILS {
            let more = r.details.len() - (MAX_DETAILS - 1);
            r.details.truncate(MAX_DETAILS - 1);
            r.details.push(format!("... and {more} more"));
        }
        r
    })
}

fn reason(format: &'static str, details: Vec<String>) -> Option<Reason> {
    Some(Reason { format, details })
}

fn u16le(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        d.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn u32le(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        d.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_text(d: &[u8]) -> bool {
    !d.contains(&0) && std::str::from_utf8(d).is_ok()
}

/// The first lines that differ, after the common first and last lines: `line N: -old +new`
/// for one changed line, else the removed and added lines (at most 5 of each).
fn text(a: &[u8], b: &[u8]) -> Reason {
    let la: Vec<&[u8]> = a.split(|&c| c == b'\n').collect();
    let lb: Vec<&[u8]> = b.split(|&c| c == b'\n').collect();
    let pre = la.iter().zip(&lb).take_while(|(x, y)| x == y).count();
    let post = la[pre..]
        .iter()
        .rev()
        .zip(lb[pre..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (da, db) = (&la[pre..la.len() - post], &lb[pre..lb.len() - post]);
    let s = |l: &[u8]| {
        let t = String::from_utf8_lossy(l);
        if t.chars().count() > 120 {
            format!("{}...", t.chars().take(120).collect::<String>())
        } else {
            t.into_owned()
        }
    };
    let mut details = Vec::new();
    if let ([x], [y]) = (da, db) {
        details.push(format!("line {}: -{} +{}", pre + 1, s(x), s(y)));
    } else {
        details.push(format!(
            "lines {}..: {} removed, {} added",
            pre + 1,
            da.len(),
            db.len()
        ));
        details.extend(da.iter().take(5).map(|l| format!("-{}", s(l))));
        details.extend(db.iter().take(5).map(|l| format!("+{}", s(l))));
    }
    Reason {
        format: "text",
        details,
    }
}

/// A gzip member header: mtime, extra flags, OS, file name, and where the deflate data starts.
struct GzHeader {
    mtime: u32,
    xfl: u8,
    os: u8,
    name: Option<Vec<u8>>,
}

fn gz_header(d: &[u8]) -> Option<GzHeader> {
    let flags = *d.get(3)?;
    let mut at = 10usize;
    if flags & 0x04 != 0 {
        at = at.checked_add(2 + usize::from(u16le(d, at)?))?;
    }
    let name = if flags & 0x08 != 0 {
        let rest = d.get(at..)?;
        let end = rest.iter().position(|&c| c == 0)?;
        Some(rest[..end].to_vec())
    } else {
        None
    };
    Some(GzHeader {
        mtime: u32le(d, 4)?,
        xfl: *d.get(8)?,
        os: *d.get(9)?,
        name,
    })
}

fn inflate(d: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(d)
        .take(MAX_INFLATED + 1)
        .read_to_end(&mut out)
        .ok()?;
    (out.len() as u64 <= MAX_INFLATED).then_some(out)
}

fn gzip(a: &[u8], b: &[u8]) -> Option<Reason> {
    let (ha, hb) = (gz_header(a)?, gz_header(b)?);
    let mut details = Vec::new();
    if ha.mtime != hb.mtime {
        details.push(format!("header mtime {} -> {}", ha.mtime, hb.mtime));
    }
    if ha.name != hb.name {
        let n = |n: &Option<Vec<u8>>| {
            n.as_ref().map_or("(none)".to_owned(), |n| {
                String::from_utf8_lossy(n).into_owned()
            })
        };
        details.push(format!("header name {} -> {}", n(&ha.name), n(&hb.name)));
    }
    if ha.os != hb.os {
        details.push(format!("header OS {} -> {}", ha.os, hb.os));
    }
    if ha.xfl != hb.xfl {
        details.push(format!("header extra flags {} -> {}", ha.xfl, hb.xfl));
    }
    match (inflate(a), inflate(b)) {
        (Some(x), Some(y)) if x == y => {
            if details.is_empty() {
                details.push("the same content, compressed differently".into());
            }
        }
        (Some(x), Some(y)) => {
            details.push(format!(
                "decompressed content differs ({} vs {} bytes)",
                x.len(),
                y.len()
            ));
            if let Some(inner) = explain(&x, &y) {
                details.extend(
                    inner
                        .details
                        .into_iter()
                        .map(|d| format!("inside ({}): {d}", inner.format)),
                );
            }
        }
        _ => details.push("not decompressed (damaged or larger than 64 MiB)".into()),
    }
    reason("gzip", details)
}

/// ELF sections by name: (type, content bytes; empty for NOBITS).
fn elf_sections(d: &[u8]) -> Option<BTreeMap<String, &[u8]>> {
    let class64 = match d.get(4)? {
        1 => false,
        2 => true,
        _ => return None,
    };
    let le = match d.get(5)? {
        1 => true,
        2 => false,
        _ => return None,
    };
    let rd = |at: usize, n: usize| -> Option<u64> {
        let s = d.get(at..at.checked_add(n)?)?;
        let mut v = 0u64;
        for i in 0..n {
            let byte = if le { s[n - 1 - i] } else { s[i] };
            v = (v << 8) | u64::from(byte);
        }
        Some(v)
    };
    let (shoff, shentsize, shnum, shstrndx) = if class64 {
        (rd(0x28, 8)?, rd(0x3a, 2)?, rd(0x3c, 2)?, rd(0x3e, 2)?)
    } else {
        (rd(0x20, 4)?, rd(0x2e, 2)?, rd(0x30, 2)?, rd(0x32, 2)?)
    };
    let (shoff, shentsize) = (
        usize::try_from(shoff).ok()?,
        usize::try_from(shentsize).ok()?,
    );
    if shentsize < if class64 { 64 } else { 40 } {
        return None;
    }
    let header = |i: u64| -> Option<(u64, u64, u64, u64)> {
        let at = shoff.checked_add(usize::try_from(i).ok()?.checked_mul(shentsize)?)?;
        Some(if class64 {
            (rd(at, 4)?, rd(at + 4, 4)?, rd(at + 24, 8)?, rd(at + 32, 8)?)
        } else {
            (rd(at, 4)?, rd(at + 4, 4)?, rd(at + 16, 4)?, rd(at + 20, 4)?)
        })
    };
    let bytes = |ty: u64, off: u64, size: u64| -> Option<&[u8]> {
        if ty == 8 {
            return Some(&[]); // SHT_NOBITS (.bss) holds nothing in the file.
        }
        let off = usize::try_from(off).ok()?;
        d.get(off..off.checked_add(usize::try_from(size).ok()?)?)
    };
    let (_, st, so, ss) = header(shstrndx)?;
    let strtab = bytes(st, so, ss)?;
    let mut out = BTreeMap::new();
    for i in 0..shnum.min(MAX_MEMBERS as u64) {
        let (name, ty, off, size) = header(i)?;
        let name = strtab.get(usize::try_from(name).ok()?..)?;
        let name = String::from_utf8_lossy(&name[..name.iter().position(|&c| c == 0)?]);
        out.insert(name.into_owned(), bytes(ty, off, size).unwrap_or(&[]));
    }
    Some(out)
}

/// The build-id of a `.note.gnu.build-id` section (its descriptor, after the name `GNU\0`).
fn build_id(note: &[u8]) -> Option<String> {
    let namesz = usize::try_from(u32le(note, 0)?).ok()?;
    let descsz = usize::try_from(u32le(note, 4)?).ok()?;
    let desc = 12usize.checked_add(namesz.checked_add(3)? & !3)?;
    Some(hex(note.get(desc..desc.checked_add(descsz)?)?))
}

fn elf(a: &[u8], b: &[u8]) -> Option<Reason> {
    let (sa, sb) = (elf_sections(a)?, elf_sections(b)?);
    let mut details = Vec::new();
    for (name, x) in &sa {
        match sb.get(name) {
            None => details.push(format!("section {name} only in A")),
            Some(y) if x != y => details.push(match name.as_str() {
                ".note.gnu.build-id" => format!(
                    "build-id {} -> {}",
                    build_id(x).unwrap_or_default(),
                    build_id(y).unwrap_or_default()
                ),
                ".gnu_debuglink" => {
                    let n = |d: &[u8]| {
                        String::from_utf8_lossy(d.split(|&c| c == 0).next().unwrap_or_default())
                            .into_owned()
                    };
                    format!("debuglink {} -> {}", n(x), n(y))
                }
                _ => format!("section {name} ({} vs {} bytes)", x.len(), y.len()),
            }),
            Some(_) => {}
        }
    }
    details.extend(
        sb.keys()
            .filter(|n| !sa.contains_key(*n))
            .map(|n| format!("section {n} only in B")),
    );
    if details.is_empty() {
        details.push("every section is the same: the headers or the layout differ".into());
    }
    reason("elf", details)
}

/// A `.pyc` starts with the interpreter's magic number, whose last two bytes are `\r\n`.
fn is_pyc(d: &[u8]) -> bool {
    d.len() >= 16 && d[2..4] == *b"\r\n"
}

fn pyc(a: &[u8], b: &[u8]) -> Option<Reason> {
    let mut details = Vec::new();
    if a[..4] != b[..4] {
        details.push(format!(
            "magic (Python version) {} -> {}",
            u16le(a, 0)?,
            u16le(b, 0)?
        ));
    }
    let (fa, fb) = (u32le(a, 4)?, u32le(b, 4)?);
    if fa != fb {
        details.push(format!(
            "flags {fa} -> {fb} (0: timestamp, 1 or 3: hash-based)"
        ));
    }
    if fa == fb && fa & 1 == 0 {
        let (ma, mb) = (u32le(a, 8)?, u32le(b, 8)?);
        if ma != mb {
            details.push(format!("source mtime {ma} -> {mb}"));
        }
        let (za, zb) = (u32le(a, 12)?, u32le(b, 12)?);
        if za != zb {
            details.push(format!("source size {za} -> {zb}"));
        }
    } else if fa == fb && a[8..16] != b[8..16] {
        details.push(format!(
            "source hash {} -> {}",
            hex(&a[8..16]),
            hex(&b[8..16])
        ));
    }
    if a[16..] != b[16..] {
        details.push("the marshalled code differs".into());
    }
    reason("pyc", details)
}

/// One archive member: name, time, and a digest of the rest (content, mode, owner).
#[derive(PartialEq)]
struct Member {
    name: String,
    time: String,
    rest: Vec<u8>,
}

/// What two member lists differ in: order, presence, times, the rest.
fn members(format: &'static str, time: &str, ma: &[Member], mb: &[Member]) -> Option<Reason> {
    let mut details = Vec::new();
    let names = |m: &[Member]| m.iter().map(|x| x.name.clone()).collect::<Vec<_>>();
    let (na, nb) = (names(ma), names(mb));
    let (mut sa, mut sb) = (na.clone(), nb.clone());
    sa.sort();
    sb.sort();
    if na != nb && sa == sb {
        details.push("the same members in another order".into());
    }
    let by = |m: &[Member]| -> BTreeMap<String, usize> {
        m.iter()
            .enumerate()
            .map(|(i, x)| (x.name.clone(), i))
            .collect()
    };
    let (ia, ib) = (by(ma), by(mb));
    for (name, &i) in &ia {
        let Some(&j) = ib.get(name) else {
            details.push(format!("{name}: only in A"));
            continue;
        };
        let (x, y) = (&ma[i], &mb[j]);
        if x.time != y.time {
            details.push(format!("{name}: {time} {} -> {}", x.time, y.time));
        }
        if x.rest != y.rest {
            details.push(format!("{name}: content or attributes differ"));
        }
    }
    details.extend(
        ib.keys()
            .filter(|n| !ia.contains_key(*n))
            .map(|n| format!("{n}: only in B")),
    );
    if details.is_empty() {
        details.push("the same members, times and contents: the archive's own bytes differ".into());
    }
    reason(format, details)
}

/// `ar` members: 60-byte headers (name, mtime, owner, group, mode, size), contents padded
/// to even offsets.
fn ar_members(d: &[u8]) -> Option<Vec<Member>> {
    let field = |at: usize, n: usize| -> Option<String> {
        Some(
            String::from_utf8_lossy(d.get(at..at.checked_add(n)?)?)
                .trim_end()
                .to_owned(),
        )
    };
    let mut at = 8usize;
    let mut out = Vec::new();
    while at < d.len() && out.len() < MAX_MEMBERS {
        // GNU ar ends names with `/`.
        let name = field(at, 16)?;
        let name = name.strip_suffix('/').unwrap_or(&name).to_owned();
        let time = field(at + 16, 12)?;
        let size: usize = field(at + 48, 10)?.parse().ok()?;
        let start = at.checked_add(60)?;
        let content = d.get(start..start.checked_add(size)?)?;
        let mut rest = d.get(at + 28..at + 48)?.to_vec();
        rest.extend_from_slice(content);
        out.push(Member { name, time, rest });
        at = start + size + (size & 1);
    }
    Some(out)
}

fn ar(a: &[u8], b: &[u8]) -> Option<Reason> {
    members("ar", "mtime", &ar_members(a)?, &ar_members(b)?)
}

/// zip members from the central directory: name, DOS time and date, CRC, sizes.
fn zip_members(d: &[u8]) -> Option<Vec<Member>> {
    // The end of central directory record, at most 64 KiB of comment from the end.
    let from = d.len().saturating_sub(22 + 0xffff);
    let eocd = (from..=d.len().checked_sub(22)?)
        .rev()
        .find(|&i| d.get(i..i + 4) == Some(b"PK\x05\x06"))?;
    let count = usize::from(u16le(d, eocd + 10)?);
    let mut at = usize::try_from(u32le(d, eocd + 16)?).ok()?;
    let mut out = Vec::new();
    for _ in 0..count.min(MAX_MEMBERS) {
        if d.get(at..at + 4) != Some(b"PK\x01\x02") {
            return None;
        }
        let (t, day) = (u16le(d, at + 12)?, u16le(d, at + 14)?);
        let time = format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            1980 + (day >> 9),
            (day >> 5) & 15,
            day & 31,
            t >> 11,
            (t >> 5) & 63,
            (t & 31) * 2
        );
        let rest = d.get(at + 16..at + 28)?.to_vec(); // CRC and sizes.
        let (nl, el, cl) = (
            usize::from(u16le(d, at + 28)?),
            usize::from(u16le(d, at + 30)?),
            usize::from(u16le(d, at + 32)?),
        );
        let name = String::from_utf8_lossy(d.get(at + 46..at + 46 + nl)?).into_owned();
        out.push(Member { name, time, rest });
        at = at.checked_add(46 + nl + el + cl)?;
    }
    Some(out)
}

fn zip(a: &[u8], b: &[u8]) -> Option<Reason> {
    members("zip", "DOS time", &zip_members(a)?, &zip_members(b)?)
}

fn is_cpio(d: &[u8]) -> bool {
    d.starts_with(b"070701") || d.starts_with(b"070702")
}

/// cpio "newc" members (what an initramfs holds): 110-byte ASCII headers, the name and the
/// content each padded to 4 bytes, up to `TRAILER!!!`.
fn cpio_members(d: &[u8]) -> Option<Vec<Member>> {
    let hexf = |at: usize| -> Option<u64> {
        u64::from_str_radix(
            std::str::from_utf8(d.get(at..at.checked_add(8)?)?).ok()?,
            16,
        )
        .ok()
    };
    let pad = |n: usize| n.checked_add(3).map(|n| n & !3);
    let mut at = 0usize;
    let mut out = Vec::new();
    while out.len() < MAX_MEMBERS {
        if !is_cpio(d.get(at..)?) {
            return None;
        }
        let time = hexf(at + 6 + 5 * 8)?.to_string();
        let size = usize::try_from(hexf(at + 6 + 6 * 8)?).ok()?;
        let namesize = usize::try_from(hexf(at + 6 + 11 * 8)?).ok()?;
        let name_at = at.checked_add(110)?;
        let name = d.get(name_at..name_at.checked_add(namesize)?)?;
        let name = String::from_utf8_lossy(name.strip_suffix(&[0]).unwrap_or(name)).into_owned();
        let data_at = pad(name_at.checked_add(namesize)?)?;
        if name == "TRAILER!!!" {
            break;
        }
        let content = d.get(data_at..data_at.checked_add(size)?)?;
        // Mode, owner, group, links; then the content.
        let mut rest = d.get(at + 14..at + 46)?.to_vec();
        rest.extend_from_slice(content);
        out.push(Member { name, time, rest });
        at = pad(data_at.checked_add(size)?)?;
    }
    Some(out)
}

fn cpio(a: &[u8], b: &[u8]) -> Option<Reason> {
    members("cpio", "mtime", &cpio_members(a)?, &cpio_members(b)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_shows_the_changed_lines() {
        let r = explain(b"a\nb\nc\nd\n", b"a\nx\ny\nd\n").unwrap();
        assert_eq!(
            r.details,
            ["lines 2..: 2 removed, 2 added", "-b", "-c", "+x", "+y"]
        );
    }

    #[test]
    fn hostile_inputs_are_none_or_bounded() {
        // Headers that claim more than there is are not read past the buffer.
        let mut elf_a = b"\x7fELF\x02\x01".to_vec();
        elf_a.resize(64, 0xff);
        let mut elf_b = elf_a.clone();
        elf_b[63] = 0;
        assert!(explain(&elf_a, &elf_b).is_none());
        assert!(explain(b"!<arch>\nxx", b"!<arch>\nyy").is_none());
        assert!(explain(b"070701zzzz", b"070701yyyy").is_none());
        assert!(explain(b"PK\x05\x06", b"PK\x05\x07").is_none());
        let r = explain(
            b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03",
            b"\x1f\x8b\x08\x00\x01\x00\x00\x00\x00\x03",
        );
        assert!(r.is_some_and(|r| r.details[0] == "header mtime 0 -> 1"));
        // A detail list is capped.
        let a: String = (0..100).map(|i| format!("{i}\n")).collect();
        let b: String = (0..100).map(|i| format!("{i}x\n")).collect();
        assert_eq!(
            explain(a.as_bytes(), b.as_bytes()).unwrap().details.len(),
            11
        );
    }
}
