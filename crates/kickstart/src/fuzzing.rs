//! The bodies of this crate's fuzz targets, written once: the few-line targets in `fuzz/`
//! and the corpus replay in `tests/fuzz_corpus.rs` both call them. A body panics only where
//! it asserts an invariant (the canonical form is a fixed point); each returns what it
//! managed, so a replay can demand that the committed seeds still parse.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;

use crate::{FsResolver, Kickstart, Kind, Limits, MapResolver, Source, Version, parse_with};

/// `kickstart_inspect`: detection and inspection of any bytes. Returns whether the input was
/// detected as a kickstart.
pub fn kickstart_inspect(data: &[u8]) -> bool {
    if !crate::detect(data) {
        return false;
    }
    let _ = crate::inspect(&String::from_utf8_lossy(data));
    true
}

/// `kickstart_parse`: parse, validate, model and rewrite a kickstart. The input is up to four
/// files separated by NUL bytes (`a.ks` is the top file; the others are `b.ks`, `c.ks`,
/// `d.ks` for `%include`/`%ksappend`). Never panics, never loops on includes; the canonical
/// form parses back to the same items and is a fixed point (format -> parse -> format gives
/// the same text). Returns whether the canonical round trip was checked.
pub fn kickstart_parse(data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let top = parts.next().unwrap_or("").to_string();
    let mut files = BTreeMap::new();
    for (name, body) in ["b.ks", "c.ks", "d.ks"].iter().zip(parts) {
        files.insert((*name).to_string(), body.to_string());
    }
    files.insert("a.ks".to_string(), top.clone());
    let limits = Limits {
        max_lines: 20_000,
        max_bytes: 1 << 20,
        ..Limits::default()
    };
    let ks = parse_with(
        Source {
            name: "a.ks".into(),
            text: top,
        },
        &mut MapResolver(files),
        limits,
    );
    for v in [Version::F43, Version::RHEL10] {
        let _ = ks.validate(v);
        let _ = ks.model(v);
    }
    if ks.problems.iter().any(|p| p.kind == Kind::ErrorFatal) || !ks.is_canonically_writable() {
        return false;
    }
    let written = ks.to_canonical_string();
    let again = Kickstart::parse_str("w.ks", &written);
    assert!(
        ks.same_items(&again),
        "round trip changed items:\n{written}"
    );
    assert_eq!(
        again.to_canonical_string(),
        written,
        "the canonical form is not a fixed point"
    );
    for v in [Version::F43, Version::RHEL10] {
        let normal = Kickstart::parse_str("n.ks", &ks.to_canonical_string_for(v));
        assert_eq!(ks.validate(v).is_valid(), normal.validate(v).is_valid());
    }
    true
}

/// The files `kickstart_include` writes from its input, in order: the top file first.
pub const INCLUDE_FILES: [&str; 4] = ["a.ks", "b.ks", "c.ks", "sub/d.ks"];

/// `kickstart_include`: `%include` and `%ksappend` through the real [`FsResolver`]. The
/// input is up to four files separated by NUL bytes, written as [`INCLUDE_FILES`] into
/// `dir` (created here, removed before returning), beside names that lead elsewhere:
/// `link.ks` (a symlink to `b.ks`), `sub/up.ks` (a symlink to `../a.ks`, the top file under
/// another name), `self.ks` (a symlink to itself), `fifo.ks` (a FIFO), `sock.ks` (a
/// socket), `dir.ks` (a directory) and `zero.ks` (a symlink to `/dev/zero`); `..` and
/// `sub/..` lead back up. The top file is parsed with the crate's limits (a smaller line and
/// byte cap). Never panics and always terminates (FIFOs never block; cycles through any
/// spelling stop at once); at most one problem is fatal, and the flattened text is bounded
/// by the byte cap. Returns whether the parse met no problem (every include found).
pub fn kickstart_include(data: &[u8], dir: &Path) -> bool {
    struct Remove<'a>(&'a Path);
    impl Drop for Remove<'_> {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(self.0);
        }
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let _guard = Remove(dir);
    let mut parts = data.split(|&b| b == 0);
    let mut top = Vec::new();
    for (i, name) in INCLUDE_FILES.iter().enumerate() {
        let body = parts.next().unwrap_or_default();
        std::fs::write(dir.join(name), body).unwrap();
        if i == 0 {
            top = body.to_vec();
        }
    }
    let link = |target: &str, name: &str| std::os::unix::fs::symlink(target, dir.join(name));
    link("b.ks", "link.ks").unwrap();
    link("../a.ks", "sub/up.ks").unwrap();
    link("self.ks", "self.ks").unwrap();
    link("/dev/zero", "zero.ks").unwrap();
    std::fs::create_dir(dir.join("dir.ks")).unwrap();
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        dir.join("fifo.ks"),
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .unwrap();
    let sock = std::os::unix::net::UnixListener::bind(dir.join("sock.ks")).unwrap();
    let limits = Limits {
        max_lines: 20_000,
        max_bytes: 1 << 20,
        ..Limits::default()
    };
    let top_path = dir.join("a.ks");
    let ks = parse_with(
        Source {
            name: top_path.to_string_lossy().into_owned(),
            text: String::from_utf8_lossy(&top).into_owned(),
        },
        &mut FsResolver::with_max_bytes(dir, limits.max_bytes),
        limits,
    );
    drop(sock);
    let fatal = ks
        .problems
        .iter()
        .filter(|p| p.kind == Kind::ErrorFatal)
        .count();
    assert!(fatal <= 1, "more than one fatal problem: {:?}", ks.problems);
    assert!(
        ks.flattened.len() as u64 <= 2 * limits.max_bytes,
        "flattened text of {} bytes past the byte cap",
        ks.flattened.len()
    );
    ks.problems.is_empty()
}
