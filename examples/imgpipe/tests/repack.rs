//! `create` from another image: `squashfs create` and `erofs create` take a filesystem image
//! in place of a directory and repack its tree through the composition layer, without
//! extracting it; the tree survives squashfs -> compressed EROFS -> plain EROFS unchanged.

use std::ffi::OsStr;
use std::fs;
use std::process::{Command, Output};

use imgpipe_testsupport::{Compare, TreeOptions, diff_trees, set_mtimes, tempdir, tricky_tree};

fn imgpipe<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(env!("CARGO_BIN_EXE_imgpipe"))
        .args(args)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .unwrap()
}

fn ok(o: Output) {
    assert!(
        o.status.success(),
        "status {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn images_repack_into_each_other_without_extracting() {
    let t = tempdir();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    tricky_tree(&src, TreeOptions::default());
    set_mtimes(&src, 1_650_000_000);
    let p = |n: &str| t.path().join(n);
    let (sq, ez, ep) = (p("a.sqfs"), p("b.erofs"), p("c.erofs"));
    ok(imgpipe([
        "squashfs".as_ref(),
        "create".as_ref(),
        "-o".as_ref(),
        sq.as_os_str(),
        src.as_os_str(),
    ]));
    let create_erofs = |out: &std::path::Path, from: &std::path::Path, extra: &[&str]| {
        let mut args: Vec<&OsStr> = vec!["erofs".as_ref(), "create".as_ref(), "-o".as_ref()];
        args.push(out.as_os_str());
        args.extend(extra.iter().map(OsStr::new));
        args.push(from.as_os_str());
        ok(imgpipe(args));
    };
    create_erofs(&ez, &sq, &["--comp", "lz4hc", "--fragments"]);
    create_erofs(&ep, &ez, &[]);
    let dest = p("out");
    ok(imgpipe([
        "erofs".as_ref(),
        "extract".as_ref(),
        "--devices".as_ref(),
        ep.as_os_str(),
        dest.as_os_str(),
    ]));
    let diffs = diff_trees(&src, &dest, Compare::default());
    assert!(diffs.is_empty(), "{diffs:#?}");

    // A file that is no filesystem is named, exit code 2 for bad input.
    let junk = p("junk.bin");
    fs::write(&junk, vec![7u8; 8192]).unwrap();
    let o = imgpipe([
        "erofs".as_ref(),
        "create".as_ref(),
        "-o".as_ref(),
        p("x.erofs").as_os_str(),
        junk.as_os_str(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains("junk.bin") && err.contains("neither a directory nor"),
        "{err}"
    );
    assert!(!p("x.erofs").exists());
}
