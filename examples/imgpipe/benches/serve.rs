//! `imgpipe serve` against nginx on the same downloads: a live ISO of about
//! `IMGPIPE_BENCH_MB` MiB (default 1024) built with a 4 MiB slot in its EROFS root, a 3 MB
//! piece, and `IMGPIPE_BENCH_CONNS` (default 50) concurrent `curl` downloads over
//! loopback. nginx (sendfile on) serves the image `imgpipe inject` made with the piece in
//! place, as a static file; `imgpipe serve` streams the base with the piece patched in per
//! request. Each side runs `IMGPIPE_BENCH_RUNS` times (default 3), alternating; the medians
//! of the aggregate throughput and their ratio are printed (the target: at least
//! 0.7x nginx), then one more round in which every download is hashed and checked, and the
//! server's peak resident memory against the bound of 64 MiB plus 1 MiB per connection.
//!
//! `cargo bench -p imgpipe --bench serve`. Environment: `IMGPIPE_BENCH_MB`,
//! `IMGPIPE_BENCH_CONNS`, `IMGPIPE_BENCH_RUNS`, `IMGPIPE_BENCH_DIR` (default /var/tmp).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use imgpipe_testsupport::tool;

const IMGPIPE: &str = env!("CARGO_BIN_EXE_imgpipe");

fn run(cmd: &mut Command) {
    let o = cmd.output().expect("running a command");
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `mb` MiB of incompressible bytes (xorshift), written in 1 MiB pieces.
fn noise(path: &Path, mb: u64) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..mb {
        for w in block.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            w.copy_from_slice(&x.to_le_bytes());
        }
        f.write_all(&block).unwrap();
    }
    f.flush().unwrap();
}

/// Stops a server when dropped: SIGTERM, so that nginx's master stops its workers too
/// (SIGKILL would leave them running).
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

/// A free loopback port (bound, then released for the server to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something accepts connections on `addr`.
fn wait_listening(addr: &str) {
    for _ in 0..200 {
        if std::net::TcpStream::connect(addr).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("nothing listens on {addr}");
}

/// The wall time of `conns` concurrent downloads of `url`, each through `sink` (a shell
/// pipeline reading stdin; its output is returned, one line per download).
#[allow(clippy::disallowed_methods)] // benchmarks measure wall time by design
fn downloads(url: &str, conns: usize, sink: &str) -> (Duration, Vec<String>) {
    let start = std::time::Instant::now();
    let children: Vec<Child> = (0..conns)
        .map(|_| {
            Command::new("sh")
                .args(["-c", &format!("curl -sSf '{url}' | {sink}")])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut lines = Vec::new();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "a download failed");
        lines.push(String::from_utf8_lossy(&o.stdout).trim().to_owned());
    }
    (start.elapsed(), lines)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        >> 10
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("serve: bench");
        return;
    }
    if tool("curl").is_none() {
        println!("serve bench skipped: curl is not installed");
        return;
    }
    let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_owned());
    let mb: u64 = env("IMGPIPE_BENCH_MB", "1024").parse().unwrap_or(1024);
    let conns: usize = env("IMGPIPE_BENCH_CONNS", "50").parse().unwrap_or(50);
    let runs: usize = env("IMGPIPE_BENCH_RUNS", "3").parse().unwrap_or(3);
    let tmp = tempfile::tempdir_in(env("IMGPIPE_BENCH_DIR", "/var/tmp")).unwrap();
    let d = tmp.path();

    // The base: a live ISO whose EROFS root holds `mb` MiB of incompressible data and a
    // 4 MiB slot.
    for dir in ["root/boot", "root/etc", "root/usr", "pieces", "www"] {
        std::fs::create_dir_all(d.join(dir)).unwrap();
    }
    noise(&d.join("root/usr/data"), mb);
    std::fs::write(d.join("root/boot/vmlinuz-6.1.0-bench"), vec![1u8; 100_000]).unwrap();
    std::fs::write(
        d.join("root/boot/initrd.img-6.1.0-bench"),
        vec![2u8; 50_000],
    )
    .unwrap();
    std::fs::write(d.join("root/etc/hostname"), "kiosk\n").unwrap();
    std::fs::write(d.join("ks.cfg"), "lang en_US.UTF-8\n").unwrap();
    std::fs::write(d.join("bootx64.efi"), vec![3u8; 40_000]).unwrap();
    let piece: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(d.join("pieces/k42"), &piece).unwrap();
    run(Command::new(IMGPIPE).current_dir(d).args([
        "build",
        "--kickstart",
        "ks.cfg",
        "--root",
        "root",
        "-o",
        "live.iso",
        "--label",
        "KIOSK",
        "--efi-loader",
        "bootx64.efi",
        "--rootfs",
        "erofs",
        "--comp",
        "lz4",
        "--epoch",
        "1700000000",
        "--reserve",
        "srv/piece.html:4M",
    ]));
    std::fs::remove_dir_all(d.join("root")).unwrap();
    run(Command::new(IMGPIPE).current_dir(d).args([
        "inject",
        "live.iso",
        "--put",
        "srv/piece.html=pieces/k42",
        "-o",
        "www/k42.iso",
    ]));
    let size = std::fs::metadata(d.join("www/k42.iso")).unwrap().len();
    let sha = Command::new("sha256sum")
        .arg(d.join("www/k42.iso"))
        .output()
        .unwrap();
    let want = String::from_utf8_lossy(&sha.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();

    // Ours.
    let mut child = Command::new(IMGPIPE)
        .current_dir(d)
        .args([
            "serve",
            "--image",
            "live.iso",
            "--slot",
            "srv/piece.html",
            "--pieces",
            "pieces",
            "--listen",
            "127.0.0.1:0",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let ours_pid = child.id();
    let _ours = Guard(child);
    let ours_url = format!(
        "http://{}/k42.iso",
        line.trim().rsplit("http://").next().unwrap()
    );

    // nginx, when installed: sendfile, its usual static-file setup.
    let nginx = tool("nginx").map(|bin| {
        let port = free_port();
        std::fs::create_dir_all(d.join("nginx")).unwrap();
        let conf = d.join("nginx/nginx.conf");
        std::fs::write(
            &conf,
            format!(
                "worker_processes auto;\ndaemon off;\npid {p}/nginx.pid;\nerror_log {p}/error.log;\n\
                 events {{ worker_connections 1024; }}\n\
                 http {{ access_log off; sendfile on; tcp_nopush on;\n\
                 client_body_temp_path {p}; proxy_temp_path {p}; fastcgi_temp_path {p};\n\
                 uwsgi_temp_path {p}; scgi_temp_path {p};\n\
                 server {{ listen 127.0.0.1:{port}; root {www}; }} }}\n",
                p = d.join("nginx").display(),
                www = d.join("www").display()
            ),
        )
        .unwrap();
        let child = Command::new(bin)
            .arg("-e")
            .arg(d.join("nginx/error.log"))
            .arg("-p")
            .arg(d.join("nginx"))
            .arg("-c")
            .arg(&conf)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr = format!("127.0.0.1:{port}");
        wait_listening(&addr);
        (Guard(child), format!("http://{addr}/k42.iso"))
    });

    println!(
        "serve bench: {:.0} MiB image, {conns} concurrent downloads, {runs} runs each",
        size as f64 / (1u64 << 20) as f64
    );
    let total = (size * conns as u64) as f64 / (1u64 << 20) as f64;
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        ours.push(downloads(&ours_url, conns, "cat > /dev/null").0);
        if let Some((_, url)) = &nginx {
            theirs.push(downloads(url, conns, "cat > /dev/null").0);
        }
    }
    let ours = median(ours);
    println!(
        "imgpipe serve: median {:.2} s, {:.0} MiB/s aggregate",
        ours.as_secs_f64(),
        total / ours.as_secs_f64()
    );
    if nginx.is_some() {
        let theirs = median(theirs);
        println!(
            "nginx (static file, sendfile): median {:.2} s, {:.0} MiB/s aggregate",
            theirs.as_secs_f64(),
            total / theirs.as_secs_f64()
        );
        println!(
            "serve throughput / nginx: {:.2}x (target >= 0.7x)",
            theirs.as_secs_f64() / ours.as_secs_f64()
        );
    } else {
        println!("nginx comparison skipped: nginx is not installed");
    }

    // Every download hashed: all equal the injected image.
    let (_, sums) = downloads(&ours_url, conns, "sha256sum");
    let right = sums.iter().filter(|s| s.starts_with(&want)).count();
    println!("hashed downloads: {right} of {conns} equal the injected image");
    assert_eq!(right, conns, "a download differs from the injected image");
    let peak = peak_rss_mib(ours_pid);
    println!(
        "imgpipe serve peak memory: {peak} MiB (bound {} MiB: 64 MiB + 1 MiB per connection)",
        64 + conns
    );
}
