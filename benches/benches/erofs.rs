//! EROFS: our compressed writer vs mkfs.erofs 1.8.6 (`--workers` = cores) on a rootfs-like
//! tree, side by side on the same input.
//!
//! `cargo bench -p imgpipe-benches --bench erofs` runs a small criterion bench (an in-memory
//! lz4 image), then for each setting — lz4hc; lzma with `-C1048576 -Efragments,ztailpacking`
//! (the kiosk image's); zstd — builds the image with both writers several times and prints
//! the median wall time, the image sizes and the peak RSS of each, with the ratios
//! (time ratio = ours / mkfs.erofs: below 1 means we are faster; size ratio = ours /
//! mkfs.erofs). Both images are checked with `fsck.erofs` once, and mkfs.erofs's image is
//! extracted by our reader and by `fsck.erofs --extract`, alternating (ratio = ours / theirs).
//!
//! Environment: `IMGPIPE_BENCH_TREE=/some/dir` benchmarks that tree (default: a copy of
//! /usr/share, /usr/bin and /usr/sbin bounded by `IMGPIPE_BENCH_MB`, default 1024);
//! `IMGPIPE_BENCH_RUNS` (default 3); `IMGPIPE_BENCH_SETTINGS` (default `lz4hc,lzma,zstd`).

use std::ffi::OsStr;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use criterion::Criterion;
use imgpipe_squashfs::erofs::{ErofsAlgorithm, ErofsBuilder, ErofsCompression, ErofsWriteOptions};

const EPOCH: u64 = 1_700_000_000;
const UUID: &str = "01234567-89ab-cdef-0123-456789abcdef";

fn criterion_part() {
    let mut c = Criterion::default().configure_from_args().sample_size(10);
    let data: Vec<u8> = (0..200_000u32)
        .flat_map(|i| format!("line {i} {}\n", i % 31).into_bytes())
        .collect();
    let mut tree = imgpipe_fstree::Tree::new(imgpipe_fstree::Metadata::new(0o755, 0));
    for i in 0..64usize {
        let mut e = imgpipe_fstree::Entry::new(
            format!("f{i}"),
            imgpipe_fstree::FileType::File,
            imgpipe_fstree::Metadata::new(0o644, 0),
        );
        let body = &data[..(i + 1) * 16_000];
        e.size = body.len() as u64;
        tree.insert(e, imgpipe_fstree::Content::Bytes(body.into()))
            .unwrap();
    }
    c.bench_function("erofs build 64 files (lz4, in memory)", |b| {
        b.iter(|| {
            let mut o = ErofsWriteOptions::new(0, [0; 16]);
            o.compression = Some(ErofsCompression::new(ErofsAlgorithm::Lz4));
            let mut b = ErofsBuilder::new(o).unwrap();
            b.add_fstree(&tree).unwrap();
            let mut out = std::io::Cursor::new(Vec::new());
            b.build(&mut out).unwrap();
        })
    });
}

/// Copies `dirs` (sorted walks) into `dst` until `limit` bytes of file content.
fn copy_tree(dirs: &[&str], dst: &Path, limit: u64) -> u64 {
    let mut total = 0u64;
    for top in dirs {
        let mut stack = vec![(PathBuf::from(top), dst.join(top.trim_start_matches('/')))];
        while let Some((s, d)) = stack.pop() {
            std::fs::create_dir_all(&d).unwrap();
            let Ok(rd) = std::fs::read_dir(&s) else {
                continue;
            };
            let mut names: Vec<_> = rd.filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
            names.sort();
            for n in names.into_iter().rev() {
                if total >= limit {
                    return total;
                }
                let (sp, dp) = (s.join(&n), d.join(&n));
                let Ok(m) = std::fs::symlink_metadata(&sp) else {
                    continue;
                };
                if m.is_dir() {
                    stack.push((sp, dp));
                } else if m.file_type().is_symlink() {
                    if let Ok(t) = std::fs::read_link(&sp) {
                        let _ = symlink(t, &dp);
                    }
                } else if m.is_file() && std::fs::copy(&sp, &dp).is_ok() {
                    total += m.len();
                }
            }
        }
    }
    total
}

/// Wall time and peak RSS (KiB) of a command, through /usr/bin/time.
fn time_rss(program: &Path, args: &[&OsStr]) -> Option<(Duration, u64)> {
    let out = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%e %M")
        .arg(program)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let mut it = err.lines().last()?.split_whitespace();
    let secs: f64 = it.next()?.parse().ok()?;
    let kib: u64 = it.next()?.parse().ok()?;
    Some((Duration::from_secs_f64(secs), kib))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

struct Setting {
    name: &'static str,
    alg: ErofsAlgorithm,
    pcluster: u32,
    fragments: bool,
    ztailpacking: bool,
    mkfs: &'static [&'static str],
}

const SETTINGS: [Setting; 3] = [
    Setting {
        name: "lz4hc",
        alg: ErofsAlgorithm::Lz4hc,
        pcluster: 0,
        fragments: false,
        ztailpacking: false,
        mkfs: &["-zlz4hc"],
    },
    Setting {
        name: "lzma",
        alg: ErofsAlgorithm::Lzma,
        pcluster: 1 << 20,
        fragments: true,
        ztailpacking: true,
        mkfs: &["-zlzma", "-C1048576", "-Efragments,ztailpacking"],
    },
    Setting {
        name: "zstd",
        alg: ErofsAlgorithm::Zstd,
        pcluster: 0,
        fragments: false,
        ztailpacking: false,
        mkfs: &["-zzstd"],
    },
];

/// The allocator settings the imgpipe binary makes before it starts (see its `tune_malloc`),
/// so that the peak measured in this process is the one a user of the command sees.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn tune_malloc() {
    // SAFETY: mallopt only sets allocator parameters; it runs before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_malloc() {}

#[allow(clippy::disallowed_methods)] // benchmarks measure wall time by design
fn main() {
    tune_malloc();
    criterion_part();
    let Some(mkfs) = imgpipe_testsupport::erofs_utils("mkfs.erofs") else {
        return;
    };
    let fsck = imgpipe_testsupport::erofs_utils("fsck.erofs");
    let work = tempfile::Builder::new()
        .prefix("imgpipe-erofs-bench")
        .tempdir()
        .unwrap();
    let tree_dir = match std::env::var_os("IMGPIPE_BENCH_TREE") {
        Some(t) => PathBuf::from(t),
        None => {
            let mb: u64 = std::env::var("IMGPIPE_BENCH_MB")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(1024);
            let dst = work.path().join("tree");
            let n = copy_tree(&["/usr/share", "/usr/bin", "/usr/sbin"], &dst, mb << 20);
            println!("tree: {} MB copied from /usr", n >> 20);
            dst
        }
    };
    let runs: usize = std::env::var("IMGPIPE_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let wanted = std::env::var("IMGPIPE_BENCH_SETTINGS").unwrap_or("lz4hc,lzma,zstd".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = format!("--workers={cores}");
    let stamp = format!("-T{EPOCH}");
    let uuid_arg = format!("-U{UUID}");
    let scan = imgpipe_fstree::ScanOptions::default();
    for s in SETTINGS
        .iter()
        .filter(|s| wanted.split(',').any(|w| w == s.name))
    {
        let theirs = work.path().join(format!("{}-mkfs.erofs", s.name));
        let ours = work.path().join(format!("{}-ours.erofs", s.name));
        let (mut t_theirs, mut t_ours) = (Vec::new(), Vec::new());
        let (mut rss_theirs, mut rss_ours) = (0u64, 0u64);
        for _ in 0..runs {
            let _ = std::fs::remove_file(&theirs);
            let mut args: Vec<&OsStr> = vec![
                OsStr::new("--quiet"),
                OsStr::new(&workers),
                OsStr::new(&stamp),
                OsStr::new(&uuid_arg),
            ];
            args.extend(s.mkfs.iter().map(OsStr::new));
            args.push(theirs.as_os_str());
            args.push(tree_dir.as_os_str());
            let Some((t, rss)) = time_rss(&mkfs, &args) else {
                eprintln!("{}: mkfs.erofs failed", s.name);
                break;
            };
            t_theirs.push(t);
            rss_theirs = rss_theirs.max(rss);

            let _ = std::fs::write("/proc/self/clear_refs", "5");
            let start = std::time::Instant::now();
            let mut tree = imgpipe_fstree::scan(&tree_dir, &scan).unwrap();
            // mkfs.erofs -T gives every inode that time: the same metadata on both sides
            // (an mtime other than the build time takes an extended inode).
            for node in tree.iter_mut() {
                node.entry.meta.mtime = EPOCH as i64;
                node.entry.meta.mtime_nsec = 0;
            }
            let mut o = ErofsWriteOptions::new(EPOCH, [1; 16]);
            o.compression = Some(ErofsCompression::new(s.alg));
            o.pcluster_size = s.pcluster;
            o.fragments = s.fragments;
            o.ztailpacking = s.ztailpacking;
            let mut b = ErofsBuilder::new(o).unwrap();
            b.add_tree(tree).unwrap();
            let f = std::fs::File::create(&ours).unwrap();
            let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
            b.build(&mut w).unwrap();
            drop(w);
            drop(b);
            t_ours.push(start.elapsed());
            rss_ours = rss_ours.max(peak_rss_kib());
        }
        if t_theirs.is_empty() {
            continue;
        }
        if let Some(fsck) = &fsck {
            for img in [&ours, &theirs] {
                let ok = Command::new(fsck)
                    .arg(img)
                    .output()
                    .is_ok_and(|o| o.status.success());
                assert!(ok, "fsck.erofs rejects {}", img.display());
            }
            // Extraction of mkfs.erofs's image: ours (in parallel) against
            // `fsck.erofs --extract`, alternating.
            let dest = work.path().join("extracted");
            let (mut x_ours, mut x_theirs) = (Vec::new(), Vec::new());
            for _ in 0..runs {
                let _ = std::fs::remove_dir_all(&dest);
                let arg = format!("--extract={}", dest.display());
                if let Some((t, _)) = time_rss(fsck, &[OsStr::new(&arg), theirs.as_os_str()]) {
                    x_theirs.push(t);
                }
                let _ = std::fs::remove_dir_all(&dest);
                let start = std::time::Instant::now();
                let f = std::fs::File::open(&theirs).unwrap();
                let r = imgpipe_squashfs::erofs::ErofsReader::open_at(
                    f,
                    0,
                    imgpipe_squashfs::Limits::default(),
                )
                .unwrap();
                r.extract(&dest, imgpipe_squashfs::ExtractOptions::default())
                    .unwrap();
                x_ours.push(start.elapsed());
            }
            let _ = std::fs::remove_dir_all(&dest);
            let (a, b) = (median(x_ours), median(x_theirs));
            println!(
                "erofs {:6}: extracting mkfs.erofs's image: ours {:.2} s, fsck.erofs --extract {:.2} s, ratio {:.2}x",
                s.name,
                a.as_secs_f64(),
                b.as_secs_f64(),
                a.as_secs_f64() / b.as_secs_f64().max(1e-9),
            );
        }
        let (a, b) = (median(t_ours), median(t_theirs));
        let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
        let (sa, sb) = (size(&ours), size(&theirs));
        println!(
            "erofs {:6}: time ours {:.2} s, mkfs.erofs {:.2} s, ratio {:.2}x; size ours {} mkfs.erofs {}, ratio {:.4}; peak RSS ours {} MiB, mkfs.erofs {} MiB",
            s.name,
            a.as_secs_f64(),
            b.as_secs_f64(),
            a.as_secs_f64() / b.as_secs_f64().max(1e-9),
            sa,
            sb,
            sa as f64 / sb.max(1) as f64,
            rss_ours >> 10,
            rss_theirs >> 10,
        );
    }
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
