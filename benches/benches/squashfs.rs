//! squashfs: ours vs mksquashfs / unsquashfs on a rootfs-like tree (a bounded copy of /usr).
//!
//! `cargo bench -p imgpipe-benches --bench squashfs` first runs a small criterion bench
//! (build + read of an in-memory image), then the comparison: for each compressor, wall time
//! and image size of our writer against mksquashfs with the same compressor, level and block
//! size, and extraction of mksquashfs's image by our reader against `unsquashfs -d`; peak
//! RSS of both sides (extraction into /dev/shm when it exists; ours reset per run through /proc/self/clear_refs); a cold-cache walk
//! with `lstat` of every entry on kernel mounts of both images, and `ls -l` plus a lookup of
//! each name in a 20,000-entry directory. Ratios > 1 mean we are faster / smaller.
//!
//! Environment: `IMGPIPE_BENCH_TREE=/some/dir` benchmarks that tree instead of the copy;
//! `IMGPIPE_BENCH_MB` bounds the copy of /usr (default 1024); `IMGPIPE_BENCH_COMPS` picks the
//! compressors (default `zstd,xz,gzip,lz4`).

use std::ffi::OsStr;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use criterion::Criterion;
use imgpipe_benches::time_ours;
use imgpipe_squashfs::{
    Builder, Bytes, Compression, Compressor, EntryMeta, ExtractOptions, Reader, WriteOptions,
};

fn criterion_part() {
    let mut c = Criterion::default().configure_from_args().sample_size(10);
    let data = imgpipe_testsupport::pattern(1 << 20);
    let build = || {
        let mut o = WriteOptions::new(0);
        o.compression = Compression::new(Compressor::Lz4);
        let mut b = Builder::new(o).unwrap();
        for i in 0..64 {
            b.add_file(
                format!("f{i}"),
                EntryMeta::new(0o644, 0),
                data[..(i + 1) * 16_000].to_vec(),
            )
            .unwrap();
        }
        let mut out = std::io::Cursor::new(Vec::new());
        b.build(&mut out).unwrap();
        out.into_inner()
    };
    c.bench_function("squashfs build 64 files (lz4, in memory)", |b| {
        b.iter(build)
    });
    let img = build();
    c.bench_function("squashfs walk + read 64 files", |b| {
        b.iter(|| {
            let r = Reader::open(Bytes(img.clone())).unwrap();
            for e in r.walk().unwrap() {
                if e.inode.kind == imgpipe_squashfs::raw::InodeKind::File {
                    r.read_file(&e.inode, &mut std::io::sink()).unwrap();
                }
            }
        })
    });
}

/// Copies /usr (sorted walk) into `dst` until `limit` bytes of file content.
fn copy_usr(dst: &Path, limit: u64) -> u64 {
    let mut total = 0u64;
    let mut stack = vec![(PathBuf::from("/usr"), dst.to_path_buf())];
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
    total
}

fn rss_of(cmd: &mut Command) -> Option<(Duration, u64)> {
    // /usr/bin/time -f reports the child's peak RSS in KiB.
    let out = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%e %M")
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().last()?;
    let mut it = last.split_whitespace();
    let secs: f64 = it.next()?.parse().ok()?;
    let kib: u64 = it.next()?.parse().ok()?;
    Some((Duration::from_secs_f64(secs), kib))
}

/// Resets this process's peak RSS (Linux >= 4.0), so the next reading covers one run.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Flushes dirty pages so one run's writeback does not land in the next run's time.
fn settle() {
    let _ = Command::new("sync").status();
}

/// Drops the page, dentry and inode caches (root only), for cold-cache measurements.
fn drop_caches() -> bool {
    settle();
    std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok()
}

fn our_peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Mounts `image` read-only, runs `f` on the mount point, unmounts (also on panic).
fn with_mount<T>(image: &Path, f: impl FnOnce(&Path) -> T) -> Option<T> {
    struct Guard(PathBuf);
    impl Drop for Guard {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let dir = imgpipe_testsupport::tempdir();
    let ok = Command::new("mount")
        .args(["-o", "loop,ro", "-t", "squashfs"])
        .arg(image)
        .arg(dir.path())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        println!("squashfs kernel lookups: cannot mount (not root?), skipped");
        return None;
    }
    let _g = Guard(dir.path().to_path_buf());
    Some(f(dir.path()))
}

/// Every entry's `lstat` through a walk of the whole tree on cold kernel mounts of both
/// images (page, dentry and inode caches dropped first): `find -ls` on a live system.
fn kernel_walk(ours: &Path, theirs: &Path) {
    fn walk(root: &Path) -> u64 {
        let mut n = 0;
        let mut stack = vec![root.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let e = e.unwrap();
                let m = std::fs::symlink_metadata(e.path()).unwrap();
                n += m.len();
                if m.is_dir() {
                    stack.push(e.path());
                }
            }
        }
        n
    }
    let timed = |root: &Path| {
        if !drop_caches() {
            return None;
        }
        Some(time_ours(1, || {
            std::hint::black_box(walk(root));
        }))
    };
    let mut best: (Option<Duration>, Option<Duration>) = (None, None);
    for _ in 0..3 {
        let (Some(Some(a)), Some(Some(b))) = (with_mount(ours, timed), with_mount(theirs, timed))
        else {
            println!("squashfs kernel walk: needs root (mount, drop_caches), skipped");
            return;
        };
        best.0 = Some(best.0.map_or(a, |x: Duration| x.min(a)));
        best.1 = Some(best.1.map_or(b, |x: Duration| x.min(b)));
    }
    if let (Some(a), Some(b)) = best {
        imgpipe_benches::print_ratio("squashfs kernel cold walk + lstat of every entry", a, b);
    }
}

/// `ls -l` of a directory with 20,000 entries and a lookup of each name, on fresh kernel mounts
/// of our image and mksquashfs's: what a missing directory index makes slow.
fn kernel_lookups(mksquashfs: &Path, tmp: &Path) {
    let tree = tmp.join("bigdir-tree");
    let big = tree.join("big");
    std::fs::create_dir_all(&big).unwrap();
    for i in 0..20_000 {
        std::fs::write(
            big.join(format!("some-package-file-{i:06}.conf")),
            i.to_string(),
        )
        .unwrap();
    }
    let ours = tmp.join("lookup-ours.sqfs");
    let theirs = tmp.join("lookup-theirs.sqfs");
    let mut b = Builder::new(WriteOptions::new(0)).unwrap();
    b.add_tree(&tree).unwrap();
    b.build(&mut std::fs::File::create(&ours).unwrap()).unwrap();
    let ok = Command::new(mksquashfs)
        .args([tree.as_os_str(), theirs.as_os_str()])
        .args(["-noappend", "-quiet", "-no-progress"].map(OsStr::new))
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        return;
    }
    let walk = |root: &Path| {
        drop_caches();
        time_ours(1, || {
            let big = root.join("big");
            let mut n = 0;
            for e in std::fs::read_dir(&big).unwrap() {
                let e = e.unwrap();
                n += std::fs::symlink_metadata(e.path()).unwrap().len();
            }
            for i in (0..20_000).rev() {
                n += std::fs::symlink_metadata(big.join(format!("some-package-file-{i:06}.conf")))
                    .unwrap()
                    .len();
            }
            std::hint::black_box(n);
        })
    };
    let (Some(t_ours), Some(t_theirs)) = (with_mount(&ours, walk), with_mount(&theirs, walk))
    else {
        return;
    };
    imgpipe_benches::print_ratio("squashfs kernel cold ls -l + 20k lookups", t_ours, t_theirs);
    let _ = std::fs::remove_dir_all(&tree);
}

fn main() {
    criterion_part();
    let (Some(mksquashfs), Some(unsquashfs)) = (
        imgpipe_testsupport::tool("mksquashfs"),
        imgpipe_testsupport::tool("unsquashfs"),
    ) else {
        return;
    };
    let tmp = imgpipe_testsupport::tempdir();
    let tree = match std::env::var_os("IMGPIPE_BENCH_TREE") {
        Some(t) => PathBuf::from(t),
        None => {
            let mb: u64 = std::env::var("IMGPIPE_BENCH_MB")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(1024);
            let t = tmp.path().join("tree");
            let n = copy_usr(&t, mb << 20);
            println!("bench tree: {} MiB of files copied from /usr", n >> 20);
            t
        }
    };
    let shm = Path::new("/dev/shm/imgpipe-bench-extract");
    let xroot = if std::fs::create_dir_all(shm).is_ok() {
        shm.to_path_buf()
    } else {
        tmp.path().to_path_buf()
    };
    println!("extracting below {}", xroot.display());
    let comps = std::env::var("IMGPIPE_BENCH_COMPS").unwrap_or_else(|_| "zstd,xz,gzip,lz4".into());
    for name in comps.split(',') {
        let comp = Compressor::from_name(name).expect("compressor name");
        let ours = tmp.path().join(format!("ours-{name}.sqfs"));
        let theirs = tmp.path().join(format!("theirs-{name}.sqfs"));
        settle();
        reset_peak_rss();
        let create = || {
            let _ = std::fs::remove_file(&ours); // both sides write a fresh file
            settle();
            time_ours(1, || {
                let mut o = WriteOptions::new(0);
                o.compression = Compression::new(comp);
                let mut b = Builder::new(o).unwrap();
                b.add_tree(&tree).unwrap();
                let mut f = std::io::BufWriter::with_capacity(
                    1 << 20,
                    std::fs::File::create(&ours).unwrap(),
                );
                b.build(&mut f).unwrap();
            })
        };
        // Short runs are taken best of three on both sides: one writeback stall would
        // otherwise decide a two-second result.
        let mut t_ours = create();
        let rss_ours = our_peak_rss_kib();
        let runs = if t_ours < Duration::from_secs(10) {
            3
        } else {
            1
        };
        for _ in 1..runs {
            t_ours = t_ours.min(create());
        }
        settle();
        let mut cmd = Command::new(&mksquashfs);
        cmd.args([tree.as_os_str(), theirs.as_os_str()]).args(
            [
                "-comp",
                name,
                "-b",
                "131072",
                "-noappend",
                "-quiet",
                "-no-progress",
            ]
            .map(OsStr::new),
        );
        let mut best: Option<(Duration, u64)> = None;
        for _ in 0..runs {
            let _ = std::fs::remove_file(&theirs);
            settle();
            if let Some((t, rss)) = rss_of(&mut cmd) {
                best = Some(best.map_or((t, rss), |(bt, br)| (bt.min(t), br.max(rss))));
            }
        }
        let Some((t_theirs, rss_theirs)) = best else {
            println!("squashfs {name}: mksquashfs failed");
            continue;
        };
        let (s_ours, s_theirs) = (
            std::fs::metadata(&ours).unwrap().size(),
            std::fs::metadata(&theirs).unwrap().size(),
        );
        imgpipe_benches::print_ratio(&format!("squashfs create {name}"), t_ours, t_theirs);
        println!(
            "squashfs create {name}: size ours {s_ours} B, mksquashfs {s_theirs} B, size ratio {:.4} (< 1 means ours is smaller); peak RSS ours {} MiB, mksquashfs {} MiB",
            s_ours as f64 / s_theirs as f64,
            rss_ours >> 10,
            rss_theirs >> 10
        );
        if name == comps.split(',').next().unwrap_or_default() {
            kernel_walk(&ours, &theirs);
        }
        // Extraction of the same (mksquashfs) image, into tmpfs when there is one: on disk the
        // kernel's writeback of a gigabyte decides the time, not the extractor.
        let out_ours = xroot.join(format!("x-ours-{name}"));
        let out_theirs = xroot.join(format!("x-theirs-{name}"));
        let extract = || {
            let _ = std::fs::remove_dir_all(&out_ours);
            settle();
            time_ours(1, || {
                let r = Reader::open(std::fs::File::open(&theirs).unwrap()).unwrap();
                r.extract(&out_ours, ExtractOptions::default()).unwrap();
            })
        };
        reset_peak_rss();
        let mut t_x_ours = extract();
        let rss_x_ours = our_peak_rss_kib();
        let runs = if t_x_ours < Duration::from_secs(10) {
            3
        } else {
            1
        };
        for _ in 1..runs {
            t_x_ours = t_x_ours.min(extract());
        }
        let mut cmd = Command::new(&unsquashfs);
        cmd.args([
            "-q".as_ref(),
            "-n".as_ref(),
            "-d".as_ref(),
            out_theirs.as_os_str(),
            theirs.as_os_str(),
        ]);
        let mut best: Option<(Duration, u64)> = None;
        for _ in 0..runs {
            let _ = std::fs::remove_dir_all(&out_theirs);
            settle();
            if let Some((t, rss)) = rss_of(&mut cmd) {
                best = Some(best.map_or((t, rss), |(bt, br)| (bt.min(t), br.max(rss))));
            }
        }
        if let Some((t_x_theirs, rss)) = best {
            imgpipe_benches::print_ratio(&format!("squashfs extract {name}"), t_x_ours, t_x_theirs);
            println!(
                "squashfs extract {name}: peak RSS ours {} MiB, unsquashfs {} MiB",
                rss_x_ours >> 10,
                rss >> 10
            );
        }
        let _ = std::fs::remove_dir_all(&out_ours);
        let _ = std::fs::remove_dir_all(&out_theirs);
        let _ = std::fs::remove_file(&ours);
        let _ = std::fs::remove_file(&theirs);
    }
    if xroot == shm {
        let _ = std::fs::remove_dir_all(shm);
    }
    kernel_lookups(&mksquashfs, tmp.path());
    println!(
        "peak RSS of this bench process (ours, all runs): {} MiB",
        our_peak_rss_kib() >> 10
    );
}
