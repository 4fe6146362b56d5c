//! ISO9660: ours vs `xorriso -as mkisofs -R -J` on a generated tree, and extraction of
//! xorriso's image by our reader vs `xorriso -osirrox on -extract`.
//!
//! `cargo bench -p imgpipe-benches --bench isofs` first runs a small criterion bench (build
//! and read of an in-memory image), then the comparison: wall time, throughput and peak RSS
//! of both sides, with ratios (> 1 means we are faster / leaner).
//!
//! Environment: `IMGPIPE_BENCH_TREE=/some/dir` benchmarks that tree instead of the generated
//! one; `IMGPIPE_BENCH_MB` sizes the generated tree (default 1024: a few 100 MB files, a few
//! thousand small ones in nested directories).

use std::io::{BufWriter, Cursor, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use criterion::Criterion;
use imgpipe_benches::time_ours;
use imgpipe_isofs::{Builder, EntryKind, ExtractOptions, Metadata, Options, Reader};

fn criterion_part() {
    let mut c = Criterion::default().configure_from_args().sample_size(10);
    let data = imgpipe_testsupport::pattern(1 << 20);
    let build = || {
        let mut b = Builder::new(Options::new("BENCH", 0));
        for i in 0..256 {
            b.add_file(
                &format!("d{}/f{i}", i % 16),
                Metadata::file(0o644),
                data[..(i + 1) * 4_000].to_vec(),
            )
            .unwrap();
        }
        let mut out = Cursor::new(Vec::new());
        b.build(&mut out).unwrap();
        out.into_inner()
    };
    c.bench_function(
        "iso build 256 files, Rock Ridge + Joliet (in memory)",
        |b| b.iter(build),
    );
    let img = build();
    c.bench_function("iso walk + read 256 files", |b| {
        b.iter(|| {
            let mut r = Reader::open(Cursor::new(&img)).unwrap();
            for (_, e) in r.entries().unwrap() {
                if e.kind == EntryKind::File {
                    r.copy_to(&e, &mut std::io::sink()).unwrap();
                }
            }
        })
    });
}

/// Writes the generated tree: large files and many small ones. Returns the content bytes.
fn generate(dst: &Path, mb: u64) -> u64 {
    let chunk = imgpipe_testsupport::pattern(1 << 20);
    let mut total = 0u64;
    let budget = mb << 20;
    // 60 %: big files of 100 MiB at most.
    let mut i = 0;
    while total < budget * 6 / 10 {
        let size = (100u64 << 20).min(budget * 6 / 10 - total).max(1);
        let p = dst.join(format!("big/file{i:03}.bin"));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let mut f = BufWriter::new(std::fs::File::create(&p).unwrap());
        let mut left = size;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            f.write_all(&chunk[..n]).unwrap();
            left -= n as u64;
        }
        total += size;
        i += 1;
    }
    // 40 %: small files of 1-200 KiB, 50 per directory, three levels deep.
    let mut k = 0u64;
    while total < budget {
        let size = ((k * 7919) % 200 + 1) * 1024;
        let p = dst.join(format!(
            "small/a{}/b{}/c{}/f{k}.dat",
            k / 5000,
            k / 250 % 20,
            k / 50 % 5
        ));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let off = (k as usize * 4096) % (chunk.len() / 2);
        std::fs::write(&p, &chunk[off..off + size as usize]).unwrap();
        total += size;
        k += 1;
    }
    total
}

/// Peak RSS of a child run through `/usr/bin/time`, with its wall time.
fn timed_child(program: &str, args: &[&std::ffi::OsStr]) -> Option<(Duration, u64)> {
    let out = Command::new("/usr/bin/time")
        .args(["-f", "IMGPIPE_TIME %e %M", program])
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!("{program} failed: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err.lines().find(|l| l.starts_with("IMGPIPE_TIME"))?;
    let mut f = line.split_whitespace().skip(1);
    let secs: f64 = f.next()?.parse().ok()?;
    let kib: u64 = f.next()?.parse().ok()?;
    Some((Duration::from_secs_f64(secs), kib))
}

/// Resets this process's peak RSS (Linux: `5` to clear_refs).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn our_peak_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn report(name: &str, bytes: u64, ours: (Duration, u64), theirs: (Duration, u64)) {
    let mbs = |d: Duration| bytes as f64 / (1 << 20) as f64 / d.as_secs_f64().max(1e-9);
    println!(
        "{name}: ours {:.2} s ({:.0} MB/s, peak {} MiB), xorriso {:.2} s ({:.0} MB/s, peak {} MiB), speed ratio {:.2}x, memory ratio {:.2}x",
        ours.0.as_secs_f64(),
        mbs(ours.0),
        ours.1 >> 10,
        theirs.0.as_secs_f64(),
        mbs(theirs.0),
        theirs.1 >> 10,
        theirs.0.as_secs_f64() / ours.0.as_secs_f64().max(1e-9),
        theirs.1 as f64 / ours.1.max(1) as f64,
    );
}

fn main() {
    // The comparison first: the criterion part's allocations would inflate our peak RSS.
    comparison();
    criterion_part();
}

fn comparison() {
    let Some(xorriso) = ["/usr/bin/xorriso", "/bin/xorriso"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        println!("xorriso not installed: skipping the comparison");
        return;
    };
    let work = imgpipe_testsupport::tempdir();
    let tree: PathBuf = match std::env::var_os("IMGPIPE_BENCH_TREE") {
        Some(t) => t.into(),
        None => {
            let mb = std::env::var("IMGPIPE_BENCH_MB")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(1024);
            let t = work.path().join("tree");
            let bytes = generate(&t, mb);
            println!("generated tree: {} MiB", bytes >> 20);
            t
        }
    };
    let ours_iso = work.path().join("ours.iso");
    let theirs_iso = work.path().join("xorriso.iso");
    reset_peak();
    let mut bytes = 0;
    let t_ours = time_ours(1, || {
        let mut b = Builder::new(Options::new("BENCH", 0));
        b.add_tree(&tree).unwrap();
        let f = std::fs::File::create(&ours_iso).unwrap();
        let rep = b.build(BufWriter::with_capacity(1 << 20, f)).unwrap();
        bytes = rep.data_bytes;
    });
    let rss_ours = our_peak_kib();
    let Some(theirs) = timed_child(
        xorriso,
        &[
            "-as".as_ref(),
            "mkisofs".as_ref(),
            "-R".as_ref(),
            "-J".as_ref(),
            "-quiet".as_ref(),
            "-o".as_ref(),
            theirs_iso.as_os_str(),
            tree.as_os_str(),
        ],
    ) else {
        return;
    };
    report("iso create", bytes, (t_ours, rss_ours), theirs);

    // Extraction of xorriso's image.
    let ours_out = work.path().join("x-ours");
    reset_peak();
    let t_ours = time_ours(1, || {
        let f = std::fs::File::open(&theirs_iso).unwrap();
        let mut r = Reader::open(std::io::BufReader::new(f)).unwrap();
        r.extract(&ours_out, ExtractOptions::default()).unwrap();
    });
    let rss_ours = our_peak_kib();
    let theirs_out = work.path().join("x-xorriso");
    let Some(theirs) = timed_child(
        xorriso,
        &[
            "-osirrox".as_ref(),
            "on".as_ref(),
            "-indev".as_ref(),
            theirs_iso.as_os_str(),
            "-extract".as_ref(),
            "/".as_ref(),
            theirs_out.as_os_str(),
        ],
    ) else {
        return;
    };
    report("iso extract", bytes, (t_ours, rss_ours), theirs);
}
