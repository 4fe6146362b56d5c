//! `%include` and `%ksappend`: relative resolution, sections spanning includes, cycles,
//! depth and size limits, missing files.

use std::collections::BTreeMap;

use imgpipe_kickstart::{Kickstart, Kind, Limits, MapResolver, Source, Version, parse_with};

fn parse(files: &[(&str, &str)], limits: Limits) -> Kickstart {
    let map: BTreeMap<String, String> = files
        .iter()
        .map(|(n, t)| ((*n).to_string(), (*t).to_string()))
        .collect();
    let top = Source {
        name: files[0].0.to_string(),
        text: files[0].1.to_string(),
    };
    parse_with(top, &mut MapResolver(map), limits)
}

#[test]
fn include_locations_are_per_file() {
    let ks = parse(
        &[
            ("top.ks", "lang C\n%include a.ks\nfrobnicate\n"),
            ("a.ks", "\n\npart / --size=1\npart / --size=2\nbogus\n"),
        ],
        Limits::default(),
    );
    let r = ks.validate(Version::F43);
    let got: Vec<(String, usize, Kind)> = r
        .diagnostics
        .iter()
        .map(|d| (d.location.file.clone(), d.location.line, d.kind))
        .collect();
    assert_eq!(
        got,
        [
            ("a.ks".to_string(), 4, Kind::Warning),
            ("a.ks".to_string(), 5, Kind::Error),
            ("top.ks".to_string(), 3, Kind::Error),
        ]
    );
    assert_eq!(
        ks.flattened,
        "lang C\n\n\npart / --size=1\npart / --size=2\nbogus\nfrobnicate\n"
    );
}

#[test]
fn a_section_may_take_lines_from_an_include() {
    let ks = parse(
        &[
            ("top.ks", "%packages\n%include pkgs.ks\nvim\n%end\n"),
            ("pkgs.ks", "@core\n# comment\nkernel\n"),
        ],
        Limits::default(),
    );
    assert!(ks.problems.is_empty(), "{:?}", ks.problems);
    let m = ks.model(Version::F43);
    let p = m.packages.unwrap();
    assert_eq!(p.packages, ["kernel", "vim"]);
    assert_eq!(p.groups[0].name, "core");
}

#[test]
fn cycles_and_depth_are_fatal() {
    let ks = parse(
        &[("a.ks", "%include b.ks\n"), ("b.ks", "%include a.ks\n")],
        Limits::default(),
    );
    let fatal: Vec<_> = ks
        .problems
        .iter()
        .filter(|p| p.kind == Kind::ErrorFatal)
        .collect();
    assert_eq!(fatal.len(), 1);
    assert!(fatal[0].message.contains("cycle"), "{}", fatal[0].message);
    assert_eq!(fatal[0].location.file, "b.ks");

    // A chain deeper than the limit.
    let names: Vec<String> = (0..30).map(|i| format!("f{i}.ks")).collect();
    let texts: Vec<String> = (0..30)
        .map(|i| format!("%include f{}.ks\n", i + 1))
        .collect();
    let files: Vec<(&str, &str)> = names
        .iter()
        .zip(&texts)
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    let ks = parse(&files, Limits::default());
    assert!(
        ks.problems
            .iter()
            .any(|p| p.kind == Kind::ErrorFatal && p.message.contains("nested deeper"))
    );
}

#[test]
fn include_bombs_hit_the_line_limit() {
    // Each level includes the next twice: 2^14 copies without a cap.
    let names: Vec<String> = (0..15).map(|i| format!("f{i}.ks")).collect();
    let texts: Vec<String> = (0..15)
        .map(|i| {
            if i == 14 {
                "lang C\n".to_string()
            } else {
                format!("%include f{0}.ks\n%include f{0}.ks\n", i + 1)
            }
        })
        .collect();
    let files: Vec<(&str, &str)> = names
        .iter()
        .zip(&texts)
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    let limits = Limits {
        max_lines: 10_000,
        ..Limits::default()
    };
    let ks = parse(&files, limits);
    assert!(
        ks.problems
            .iter()
            .any(|p| p.kind == Kind::ErrorFatal && p.message.contains("lines read"))
    );
    assert!(ks.items.len() <= 10_000);
}

#[test]
fn ksappend_counts_against_the_byte_cap() {
    // One 50 KB file appended on 2000 lines: 100 MB held at once without the cap.
    let big = "# padding\n".repeat(5_000);
    let top = "%ksappend big.ks\n".repeat(2_000);
    let limits = Limits {
        max_bytes: 1 << 20,
        ..Limits::default()
    };
    let ks = parse(&[("top.ks", &top), ("big.ks", &big)], limits);
    let fatal: Vec<_> = ks
        .problems
        .iter()
        .filter(|p| p.kind == Kind::ErrorFatal)
        .collect();
    assert_eq!(fatal.len(), 1, "{:?}", ks.problems);
    assert!(fatal[0].message.contains("bytes read"), "{:?}", fatal[0]);
    assert_eq!(fatal[0].location.line, 21, "the first append past 1 MiB");
    assert!(ks.flattened.len() < 2 << 20);
}

#[test]
fn missing_includes_are_notices_or_fatal() {
    let files = [("top.ks", "lang C\n%include gone.ks\nbogus\n")];
    let ks = parse(&files, Limits::default());
    let r = ks.validate(Version::F43);
    assert_eq!(r.diagnostics.len(), 2);
    assert!(
        r.diagnostics.iter().any(|d| d.kind == Kind::Notice
            && d.message.contains("gone.ks")
            && d.location.line == 2)
    );
    let strict = Limits {
        missing_include_is_fatal: true,
        ..Limits::default()
    };
    let ks = parse(&files, strict);
    let r = ks.validate(Version::F43);
    // Parsing stops at the include: `bogus` is never seen.
    assert_eq!(r.diagnostics.len(), 1);
    assert_eq!(r.diagnostics[0].kind, Kind::ErrorFatal);
}

#[test]
fn ksappend_is_spliced_and_keeps_line_numbers() {
    let ks = parse(
        &[
            ("top.ks", "lang C\n%ksappend extra.ks\nbogus1\n"),
            ("extra.ks", "bogus2\n"),
        ],
        Limits::default(),
    );
    let r = ks.validate(Version::F43);
    let got: Vec<(&str, usize)> = r
        .diagnostics
        .iter()
        .map(|d| (d.location.file.as_str(), d.location.line))
        .collect();
    assert_eq!(got, [("extra.ks", 1), ("top.ks", 3)]);
    let missing = parse(
        &[("top.ks", "lang C\n%ksappend none.ks\nbogus\n")],
        Limits::default(),
    );
    let r = missing.validate(Version::F43);
    assert_eq!(r.diagnostics.len(), 1);
    assert_eq!(r.diagnostics[0].kind, Kind::ErrorFatal);
    assert_eq!(r.diagnostics[0].location.line, 2);
}

/// Runs `f` on another thread; `None` when it has not finished within `secs` seconds (the
/// thread is left behind: what a hang would do).
fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(secs)).ok()
}

#[test]
fn includes_of_fifos_devices_and_directories_are_refused_at_once() {
    // A FIFO nobody writes to blocked the open forever; /dev/zero never ends.
    let t = tempfile::tempdir().unwrap();
    let fifo = t.path().join("fifo");
    let ok = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(ok.success());
    std::fs::create_dir(t.path().join("dir")).unwrap();
    let top = t.path().join("top.ks");
    std::fs::write(
        &top,
        format!(
            "lang C\n%include {}\n%include /dev/zero\n%include dir\nrootpw x\n",
            fifo.display()
        ),
    )
    .unwrap();
    let ks = within(10, move || Kickstart::load(&top).unwrap()).expect("include blocked");
    let notices: Vec<&str> = ks
        .problems
        .iter()
        .filter(|d| d.kind == Kind::Notice)
        .map(|d| d.message.as_str())
        .collect();
    assert_eq!(notices.len(), 3, "{notices:?}");
    assert!(
        notices.iter().all(|m| m.contains("not a regular file")),
        "{notices:?}"
    );
    // Parsing went on past them.
    assert!(ks.flattened.contains("rootpw x"), "{}", ks.flattened);
}

#[test]
fn include_cycles_are_found_on_canonical_paths() {
    // `./a.ks` including `a.ks` names one file twice: a cycle at once, not at the depth limit.
    let t = tempfile::tempdir().unwrap();
    std::fs::write(t.path().join("a.ks"), "lang C\n%include ./a.ks\n").unwrap();
    std::fs::write(t.path().join("top.ks"), "%include a.ks\n").unwrap();
    let ks = Kickstart::load(&t.path().join("top.ks")).unwrap();
    let fatal: Vec<&str> = ks
        .problems
        .iter()
        .filter(|d| d.kind == Kind::ErrorFatal)
        .map(|d| d.message.as_str())
        .collect();
    assert_eq!(fatal.len(), 1, "{:?}", ks.problems);
    assert!(fatal[0].contains("cycle"), "{fatal:?}");
}

#[test]
fn an_include_larger_than_the_cap_is_refused_before_reading() {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(t.path().join("big.ks"), vec![b'#'; 10_000]).unwrap();
    std::fs::write(t.path().join("top.ks"), "%include big.ks\n").unwrap();
    let limits = Limits {
        max_bytes: 5_000,
        ..Limits::default()
    };
    let ks = Kickstart::load_with(&t.path().join("top.ks"), limits).unwrap();
    assert!(
        ks.problems
            .iter()
            .any(|d| d.message.contains("larger than 5000 bytes")),
        "{:?}",
        ks.problems
    );
}
