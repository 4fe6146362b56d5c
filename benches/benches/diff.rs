//! `imgpipe diff` against `sha256sum A B` on the same pair: two live-ISO-shaped builds (a
//! squashfs made by `mksquashfs`, zstd, inside an ISO made by `xorriso`) of a rootfs-like
//! tree (a bounded copy of /usr, or `IMGPIPE_BENCH_TREE`), the second with three files
//! changed early in the tree, so that everything stored after them in the squashfs moves.
//! The release gate users run is "the two SHA-256 agree"; the target is a diagnosis
//! (which files inside which layer) in at most half of `sha256sum`'s wall time.
//!
//! Each side runs `IMGPIPE_BENCH_RUNS` times (default 5), alternating, with a warm page
//! cache, then (as root, through /proc/sys/vm/drop_caches) with a cold one; medians and
//! their ratio are printed (ratio >= 2 meets the target).
//!
//! Environment: `IMGPIPE_BENCH_TREE`, `IMGPIPE_BENCH_MB` (default 1024),
//! `IMGPIPE_BENCH_RUNS`, `IMGPIPE_BENCH_DIR` (default /var/tmp).

use std::path::Path;
use std::process::Command;

use imgpipe_benches::{copy_usr, have, median, print_ratio, sh, timed};
use imgpipe_repro::{ImageDiffOptions, diff_images};

fn drop_caches() -> bool {
    let _ = Command::new("sync").status();
    std::fs::write("/proc/sys/vm/drop_caches", "3\n").is_ok()
}

fn build(tree: &Path, out: &Path, d: &Path) {
    let iso_dir = d.join("iso-dir");
    let _ = std::fs::remove_dir_all(&iso_dir);
    std::fs::create_dir_all(iso_dir.join("LiveOS")).unwrap();
    sh(Command::new("mksquashfs")
        .arg(tree)
        .arg(iso_dir.join("LiveOS/squashfs.img"))
        .args(["-comp", "zstd", "-noappend", "-quiet", "-no-progress"])
        .env("SOURCE_DATE_EPOCH", "1700000000"));
    sh(Command::new("xorriso")
        .args(["-as", "mkisofs", "-R", "-J", "-V", "LIVE", "-o"])
        .arg(out)
        .arg(&iso_dir)
        .env("SOURCE_DATE_EPOCH", "1700000000"));
    std::fs::remove_dir_all(&iso_dir).unwrap();
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("diff: bench");
        return;
    }
    for t in ["mksquashfs", "xorriso", "sha256sum"] {
        if !have(t) {
            println!("diff bench skipped: {t} is not installed (scripts/test.sh installs it)");
            return;
        }
    }
    let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_owned());
    let runs: usize = env("IMGPIPE_BENCH_RUNS", "5").parse().unwrap_or(5);
    let mb: u64 = env("IMGPIPE_BENCH_MB", "1024").parse().unwrap_or(1024);
    let tmp = tempfile::tempdir_in(env("IMGPIPE_BENCH_DIR", "/var/tmp")).unwrap();
    let d = tmp.path();
    let tree = match std::env::var("IMGPIPE_BENCH_TREE") {
        Ok(t) => std::path::PathBuf::from(t),
        Err(_) => {
            let t = d.join("tree");
            copy_usr(&t, mb);
            t
        }
    };
    let (a, b) = (d.join("a.iso"), d.join("b.iso"));
    build(&tree, &a, d);
    // The second build: the same tree with three files changed, early in name order.
    let changed = d.join("tree-b");
    sh(Command::new("cp").arg("-a").arg(&tree).arg(&changed));
    let mut files = Vec::new();
    let mut stack = vec![changed.clone()];
    while let Some(dir) = stack.pop() {
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .collect();
        names.sort();
        names.reverse();
        for p in names {
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p);
            } else if m.is_file() && m.len() > 100_000 && files.len() < 3 {
                files.push(p);
            }
        }
        if files.len() == 3 {
            break;
        }
    }
    for f in &files {
        let mut data = std::fs::read(f).unwrap();
        data.extend_from_slice(b"changed\n");
        std::fs::write(f, data).unwrap();
    }
    build(&changed, &b, d);
    std::fs::remove_dir_all(&changed).unwrap();
    let size = std::fs::metadata(&a).unwrap().len();
    println!(
        "diff: two ISOs of {} MiB, {} files changed inside the squashfs",
        size >> 20,
        files.len()
    );
    let ours = || {
        let (fa, fb) = (
            std::fs::File::open(&a).unwrap(),
            std::fs::File::open(&b).unwrap(),
        );
        let r = diff_images(&fa, &fb, ImageDiffOptions::default(), &mut |_| {}).unwrap();
        assert!(!r.identical);
        let n = r.files.as_ref().map_or(0, |f| f.differences.len());
        assert!(n >= files.len(), "{n} differences");
    };
    let theirs = || {
        sh(Command::new("sha256sum").arg(&a).arg(&b));
    };
    for (name, cold) in [("diff (warm cache)", false), ("diff (cold cache)", true)] {
        if cold && !drop_caches() {
            println!("diff (cold cache): skipped (dropping the page cache needs root)");
            continue;
        }
        theirs(); // warms the cache (and is dropped again below when cold)
        let (mut o, mut t) = (Vec::new(), Vec::new());
        for _ in 0..runs.max(1) {
            if cold {
                drop_caches();
            }
            o.push(timed(ours));
            if cold {
                drop_caches();
            }
            t.push(timed(theirs));
        }
        print_ratio(name, median(o), median(t));
    }
}
