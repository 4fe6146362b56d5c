//! Helpers shared by the integration tests: run xorriso and parse its listings.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::Path;
use std::process::Command;

use imgpipe_isofs::{Builder, EntryKind, Options, Reader};

/// One line of `xorriso -find / -exec lsdl`: mode string, size (or "maj,min"), link target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub mode: String,
    pub size: String,
    pub target: Option<String>,
}

fn unquote(s: &str) -> (String, &str) {
    // Concatenated '...' segments and "..." segments, as xorriso quotes names.
    let mut out = String::new();
    let mut rest = s;
    loop {
        if let Some(r) = rest.strip_prefix('\'') {
            let end = r.find('\'').expect("closing quote");
            out.push_str(&r[..end]);
            rest = &r[end + 1..];
        } else if let Some(r) = rest.strip_prefix('"') {
            let end = r.find('"').expect("closing quote");
            out.push_str(&r[..end]);
            rest = &r[end + 1..];
        } else {
            return (out, rest);
        }
    }
}

/// Lists an image with xorriso (Rock Ridge view), keyed by path without the leading `/`.
pub fn xorriso_listing(xorriso: &Path, iso: &Path) -> BTreeMap<String, Listed> {
    let out = Command::new(xorriso)
        .env("LC_ALL", "C.UTF-8")
        .args(["-abort_on", "FAILURE", "-indev"])
        .arg(iso)
        .args(["-find", "/", "-exec", "lsdl"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "xorriso failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut map = BTreeMap::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        // xorriso shows the El Torito boot catalog as type `e`; it is a regular file.
        let mode = fields.next().unwrap().replacen('e', "-", 1);
        let _nlink = fields.next();
        let _uid = fields.next();
        let _gid = fields.next();
        let size = fields.next().unwrap().to_string();
        // Date: three fields, then the quoted path.
        let q = line.find(" '").unwrap() + 1;
        let (path, rest) = unquote(&line[q..]);
        let target = rest.strip_prefix(" -> ").map(|t| unquote(t).0);
        let path = path.trim_start_matches('/').to_string();
        if path.is_empty() {
            continue;
        }
        map.insert(path, Listed { mode, size, target });
    }
    map
}

/// Lists an image with our reader in the same shape.
pub fn our_listing(iso: &[u8]) -> BTreeMap<String, Listed> {
    let mut r = Reader::open(Cursor::new(iso)).unwrap();
    r.entries()
        .unwrap()
        .into_iter()
        .map(|(p, e)| {
            let size = match e.kind {
                EntryKind::CharDevice | EntryKind::BlockDevice => {
                    let (a, b) = e.device.unwrap();
                    format!("{a},{b}")
                }
                EntryKind::File => e.size.to_string(),
                _ => "0".to_string(),
            };
            (
                p,
                Listed {
                    mode: e.mode_string(),
                    size,
                    target: e.link_target.clone(),
                },
            )
        })
        .collect()
}

/// Builds an image of a host directory into memory.
pub fn build_tree(src: &Path, options: Options) -> Vec<u8> {
    let mut b = Builder::new(options);
    b.add_tree(src).unwrap();
    let mut out = Cursor::new(Vec::new());
    b.build(&mut out).unwrap();
    out.into_inner()
}

/// Runs a reference tool in a UTF-8 locale (xorriso converts names to the locale's charset).
pub fn run_utf8<I, S>(program: &Path, args: I)
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out = Command::new(program)
        .env("LC_ALL", "C.UTF-8")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} failed: {}",
        program.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Asserts two listings are equal, printing only the differences.
pub fn assert_same_listing(
    ours: &BTreeMap<String, Listed>,
    theirs: &BTreeMap<String, Listed>,
    what: &str,
) {
    let mut diffs = Vec::new();
    for (p, l) in ours {
        match theirs.get(p) {
            None => diffs.push(format!("only ours: {p} {l:?}")),
            Some(t) if t != l => diffs.push(format!("{p}: ours {l:?} theirs {t:?}")),
            _ => {}
        }
    }
    for (p, t) in theirs {
        if !ours.contains_key(p) {
            diffs.push(format!("only theirs: {p} {t:?}"));
        }
    }
    diffs.truncate(20);
    assert!(
        diffs.is_empty(),
        "{what}: listings differ:\n{}",
        diffs.join("\n")
    );
}
