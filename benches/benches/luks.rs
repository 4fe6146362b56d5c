//! LUKS2: payload throughput (aes-xts-plain64) against `openssl speed -evp aes-256-xts`, and
//! argon2id at 1 GiB / t=9 / 4 lanes against cryptsetup unlocking the same volume (CPU and
//! wall time). Prints the ratios; `cargo bench -p imgpipe-benches --bench luks`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use imgpipe_benches::{print_ratio, time_ours};
use imgpipe_luks::{DataSegment, Luks2Header, VolumeKey, Xts};

const KEY: [u8; 64] = [0x42; 64];

fn xts(c: &mut Criterion) {
    let vk = VolumeKey::new(KEY.to_vec());
    let mut buf = imgpipe_testsupport::pattern(16 << 20);
    let mut g = c.benchmark_group("luks payload");
    g.throughput(Throughput::Bytes(buf.len() as u64));
    for sector in [512u32, 4096] {
        let seg = DataSegment::from_key(&vk, 0, sector, 0).unwrap();
        g.bench_function(
            format!("encrypt 16 MiB, {sector}-byte sectors, parallel"),
            |b| b.iter(|| seg.encrypt(&mut buf, 0).unwrap()),
        );
    }
    let x = Xts::new(&KEY).unwrap();
    g.bench_function("encrypt 16 MiB, 4096-byte sectors, one thread", |b| {
        b.iter(|| x.encrypt_sectors(&mut buf, 4096, 0, 8))
    });
    g.finish();
    compare_openssl();
    compare_argon2();
}

/// OpenSSL's single-thread aes-256-xts speed on 4096-byte buffers, bytes per second.
fn openssl_speed() -> Option<f64> {
    let out = Command::new("openssl")
        .args([
            "speed",
            "-evp",
            "aes-256-xts",
            "-seconds",
            "2",
            "-bytes",
            "4096",
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with("AES-256-XTS"))?;
    let k: f64 = line
        .split_whitespace()
        .last()?
        .trim_end_matches('k')
        .parse()
        .ok()?;
    Some(k * 1000.0)
}

fn compare_openssl() {
    // `openssl speed` reports bytes per second of CPU time by default, so ours is measured
    // in CPU time too (this process's user + system time over 1 GiB, one thread): wall time
    // on a shared machine would compare load, not code.
    let Some(theirs) = openssl_speed() else {
        println!("openssl not found: no aes-xts comparison");
        return;
    };
    let mut buf = imgpipe_testsupport::pattern(64 << 20);
    let x = Xts::new(&KEY).unwrap();
    let rounds = 16;
    let before = cpu_times().unwrap_or_default().0;
    let wall = time_ours(1, || {
        for _ in 0..rounds {
            x.encrypt_sectors(&mut buf, 4096, 0, 8);
        }
    });
    let cpu = cpu_times().unwrap_or_default().0.saturating_sub(before);
    let bytes = (buf.len() * rounds) as f64;
    let reference = Duration::from_secs_f64(bytes / theirs);
    println!(
        "openssl speed -evp aes-256-xts (one thread, CPU time): {:.0} MB/s; ours {:.0} MB/s CPU, {:.0} MB/s wall",
        theirs / 1e6,
        bytes / cpu.as_secs_f64().max(1e-9) / 1e6,
        bytes / wall.as_secs_f64().max(1e-9) / 1e6,
    );
    print_ratio(
        "aes-xts-plain64 1 GiB one thread vs openssl (CPU time)",
        cpu,
        reference,
    );
}

/// User + system CPU time of this process and of its waited-for children, from /proc.
fn cpu_times() -> Option<(Duration, Duration)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // Fields after the command: state is index 0, utime 11, stime 12, cutime 13, cstime 14.
    let tick = 100.0; // USER_HZ on Linux
    let own = (f.get(11)? + f.get(12)?) as f64 / tick;
    let children = (f.get(13)? + f.get(14)?) as f64 / tick;
    Some((
        Duration::from_secs_f64(own),
        Duration::from_secs_f64(children),
    ))
}

fn compare_argon2() {
    let cs = [
        "/usr/sbin/cryptsetup",
        "/sbin/cryptsetup",
        "/usr/bin/cryptsetup",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists());
    let Some(cs) = cs else {
        println!("cryptsetup not found: no argon2id comparison");
        return;
    };
    let dir = imgpipe_testsupport::tempdir();
    let img = dir.path().join("v.img");
    let key = dir.path().join("key");
    std::fs::write(&key, "benchmark passphrase").unwrap();
    std::fs::File::create(&img)
        .unwrap()
        .set_len(20 << 20)
        .unwrap();
    let (img_s, key_s) = (img.to_str().unwrap(), key.to_str().unwrap());
    let format = Command::new(cs)
        .args([
            "luksFormat",
            "--type",
            "luks2",
            "-q",
            "--disable-locks",
            "--pbkdf",
            "argon2id",
            "--pbkdf-force-iterations",
            "9",
            "--pbkdf-memory",
            "1048576",
            "--pbkdf-parallel",
            "4",
            "--key-file",
            key_s,
            img_s,
        ])
        .status()
        .unwrap();
    assert!(format.success());
    let before = cpu_times().unwrap_or_default();
    let theirs_wall = imgpipe_benches::time_tool(
        cs,
        &[
            "open",
            "--disable-locks",
            "--test-passphrase",
            "--key-file",
            key_s,
            img_s,
        ],
        1,
    )
    .expect("cryptsetup open --test-passphrase failed");
    let mid = cpu_times().unwrap_or_default();
    let mut f = std::fs::File::open(&img).unwrap();
    let hdr = Luks2Header::read(&mut f).unwrap();
    let ours_wall = time_ours(1, || {
        hdr.unlock(&mut f, b"benchmark passphrase").unwrap();
    });
    let after = cpu_times().unwrap_or_default();
    let theirs_cpu = mid.1.saturating_sub(before.1);
    let ours_cpu = after.0.saturating_sub(mid.0);
    print_ratio(
        "argon2id 1 GiB t=9 p=4 unlock, wall",
        ours_wall,
        theirs_wall,
    );
    print_ratio("argon2id 1 GiB t=9 p=4 unlock, CPU", ours_cpu, theirs_cpu);
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = xts
}
criterion_main!(benches);
