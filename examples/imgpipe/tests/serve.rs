//! `imgpipe serve` over loopback: downloads whole and by ranges equal `imgpipe inject -o -`
//! byte for byte; HEAD, entity tags, 304, 404/413/400; concurrent downloads; SIGTERM ends it
//! with exit 0. The server runs on a free port (`--listen 127.0.0.1:0`) and is killed by a
//! guard whatever happens.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use imgpipe_testsupport::{pattern, set_mtimes, tempdir};
use sha2::{Digest, Sha256};

fn imgpipe_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imgpipe"))
        .current_dir(dir)
        .args(args)
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap()
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "status {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
}

fn write(path: &Path, data: impl AsRef<[u8]>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
}

/// A small live ISO with a 64 KiB slot `srv/piece.html` in its EROFS root, in `d/live.iso`.
fn base(d: &Path) {
    base_with_slot(d, "64K");
}

/// [`base`] with a slot of `size`.
fn base_with_slot(d: &Path, size: &str) {
    let reserve = format!("srv/piece.html:{size}");
    write(&d.join("root/boot/vmlinuz-6.1.0-test"), pattern(100_000));
    write(&d.join("root/boot/initrd.img-6.1.0-test"), pattern(50_001));
    write(&d.join("root/etc/hostname"), "kiosk\n");
    write(&d.join("ks.cfg"), "lang en_US.UTF-8\n");
    write(&d.join("bootx64.efi"), pattern(40_000));
    set_mtimes(d, 1_600_000_000);
    ok(&imgpipe_in(
        d,
        &[
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
            "--seed",
            "00112233445566778899aabbccddeeff",
            "--reserve",
            &reserve,
        ],
    ));
}

/// The server; killed when dropped.
struct Server {
    child: Child,
    addr: String,
    log: BufReader<std::process::ChildStderr>,
}

impl Server {
    /// Stops it and returns what it wrote to stderr after its first line.
    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut rest = String::new();
        self.log.read_to_string(&mut rest).unwrap();
        rest
    }

    /// Its peak resident memory so far (VmHWM), in bytes.
    fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        kb << 10
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(d: &Path, extra: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_imgpipe"))
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
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut log = BufReader::new(child.stderr.take().unwrap());
    log.read_line(&mut line).unwrap();
    let mut server = Server {
        child,
        addr: String::new(),
        log,
    };
    server.addr = line
        .trim()
        .strip_prefix("serving live.iso slot srv/piece.html on http://")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_owned();
    server
}

struct Reply {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

/// One HTTP/1.1 request on its own connection, the raw path as given.
fn request(addr: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    Reply {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

/// `inject live.iso --put srv/piece.html=PIECE -o -`: what a download must equal.
fn injected(d: &Path, piece: &str) -> Vec<u8> {
    let put = format!("srv/piece.html={piece}");
    let o = imgpipe_in(d, &["inject", "live.iso", "--put", &put, "-o", "-"]);
    ok(&o);
    o.stdout
}

fn sha(b: &[u8]) -> Vec<u8> {
    Sha256::digest(b).to_vec()
}

#[test]
fn downloads_equal_injection_whole_by_ranges_and_concurrently() {
    let t = tempdir();
    let d = t.path();
    base(d);
    let piece = b"<html>piece 42</html>\n".repeat(100);
    write(&d.join("pieces/k42"), &piece);
    write(&d.join("pieces/k43"), b"<html>another</html>\n");
    write(&d.join("pieces/big"), vec![b'x'; 65_537]);
    write(&d.join("pieces/full"), vec![b'y'; 65_536]);
    std::fs::create_dir_all(d.join("pieces/subdir")).unwrap();
    let want = injected(d, "pieces/k42");
    let server = serve(d, &[]);
    let a = server.addr.as_str();

    // Whole, with exact length and headers.
    let r = request(a, "GET", "/k42.iso", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-length"], want.len().to_string());
    assert_eq!(r.headers["accept-ranges"], "bytes");
    assert!(r.body == want, "the download differs from inject -o -");
    let tag = r.headers["etag"].clone();

    // curl agrees, when it is there.
    if let Some(curl) = imgpipe_testsupport::tool("curl") {
        let out = d.join("curl.iso");
        let o = Command::new(curl)
            .args(["-sSf", "-o"])
            .arg(&out)
            .arg(format!("http://{a}/k42.iso"))
            .output()
            .unwrap();
        ok(&o);
        assert!(std::fs::read(&out).unwrap() == want);
    }

    // HEAD: the length, no body.
    let r = request(a, "HEAD", "/k42.iso", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-length"], want.len().to_string());
    assert!(r.body.is_empty());
    assert_eq!(r.headers["etag"], tag);

    // Ranges: the first bytes, across the slot's start and end, the last bytes, open-ended.
    let slot_at = {
        let needle = &piece[..64];
        want.windows(64).position(|w| w == needle).unwrap()
    };
    let n = want.len();
    for (spec, lo, hi) in [
        ("bytes=0-99".to_owned(), 0, 99),
        (
            format!("bytes={}-{}", slot_at - 1000, slot_at + 1000),
            slot_at - 1000,
            slot_at + 1000,
        ),
        (
            format!("bytes={}-{}", slot_at + 65_000, slot_at + 70_000),
            slot_at + 65_000,
            slot_at + 70_000,
        ),
        ("bytes=-777".to_owned(), n - 777, n - 1),
        (format!("bytes={}-", n - 300_000), n - 300_000, n - 1),
    ] {
        let r = request(a, "GET", "/k42.iso", &[("Range", &spec)]);
        assert_eq!(r.status, 206, "{spec}");
        assert_eq!(
            r.headers["content-range"],
            format!("bytes {lo}-{hi}/{n}"),
            "{spec}"
        );
        assert_eq!(r.headers["content-length"], (hi - lo + 1).to_string());
        assert!(r.body == want[lo..=hi], "{spec}: wrong bytes");
    }
    let r = request(a, "GET", "/k42.iso", &[("Range", &format!("bytes={n}-"))]);
    assert_eq!(r.status, 416);
    assert_eq!(r.headers["content-range"], format!("bytes */{n}"));
    // If-Range with a stale tag: the whole image.
    let r = request(
        a,
        "GET",
        "/k42.iso",
        &[("Range", "bytes=0-9"), ("If-Range", "\"stale\"")],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), n);

    // Entity tags: stable, different for another piece; 304 on a match.
    assert_eq!(request(a, "HEAD", "/k42.iso", &[]).headers["etag"], tag);
    let other = request(a, "HEAD", "/k43.iso", &[]);
    assert_eq!(other.status, 200);
    assert_ne!(other.headers["etag"], tag);
    let r = request(a, "GET", "/k42.iso", &[("If-None-Match", &tag)]);
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert_eq!(r.headers["etag"], tag);
    let r = request(a, "GET", "/k42.iso", &[("If-None-Match", "\"nope\"")]);
    assert_eq!(r.status, 200);
    // A full slot is fine; one byte more is 413.
    assert_eq!(request(a, "HEAD", "/full.iso", &[]).status, 200);
    let r = request(a, "GET", "/big.iso", &[]);
    assert_eq!(r.status, 413);
    assert!(String::from_utf8_lossy(&r.body).contains("65537 bytes; the slot holds at most 65536"));

    // Unknown pieces, and hostile names, none of which reaches the file system.
    for (path, code) in [
        ("/nope.iso", 404),
        ("/subdir.iso", 404),
        ("/k42", 404),
        ("/", 404),
        ("/pieces/k42.iso", 400),
        ("/..%2Flive.iso", 400),
        ("/%2e%2e.iso", 400),
        ("/k42%00.iso", 400),
        ("/a%2Fk42.iso", 400),
        ("/../k42.iso", 400),
        ("/.k42.iso", 400),
        ("/%zz.iso", 400),
    ] {
        assert_eq!(request(a, "GET", path, &[]).status, code, "{path}");
    }
    assert_eq!(request(a, "POST", "/k42.iso", &[]).status, 405);

    // 20 downloads at once all hash right.
    let want_sha = sha(&want);
    let threads: Vec<_> = (0..20)
        .map(|_| {
            let a = a.to_owned();
            std::thread::spawn(move || sha(&request(&a, "GET", "/k42.iso", &[]).body))
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), want_sha);
    }
}

#[test]
fn sigterm_ends_it_with_exit_0_and_bad_bases_are_refused() {
    let t = tempdir();
    let d = t.path();
    base(d);
    write(&d.join("pieces/k"), b"hi\n");
    let mut server = serve(d, &["--max-streams", "2"]);
    let whole = request(&server.addr, "GET", "/k.iso", &[]);
    assert_eq!(whole.status, 200);
    // A download under way when SIGTERM comes still finishes.
    let mut s = TcpStream::connect(&server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(b"GET /k.iso HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 100];
    s.read_exact(&mut first).unwrap();
    let pid = server.child.id().to_string();
    ok(&Command::new("kill").args(["-TERM", &pid]).output().unwrap());
    // Up to 20 s (400 polls 50 ms apart).
    let mut polls = 0;
    let status = loop {
        if let Some(s) = server.child.try_wait().unwrap() {
            break s;
        }
        polls += 1;
        assert!(polls < 400, "still running after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
    assert!(TcpStream::connect(&server.addr).is_err());
    let mut raw = first.to_vec();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    assert!(
        raw[split + 4..] == whole.body[..],
        "the stream was cut short"
    );

    // A base without a slot table, an unknown slot, a missing piece directory: one line, exit 2.
    write(&d.join("plain.img"), vec![0u8; 65_536]);
    let live = std::fs::read(d.join("live.iso")).unwrap();
    write(&d.join("cut.iso"), &live[..live.len() - 4096]);
    for (args, needle) in [
        (
            &["--image", "cut.iso", "--slot", "srv/piece.html"][..],
            "truncated image",
        ),
        (
            &["--image", "plain.img", "--slot", "srv/piece.html"][..],
            "built without --reserve",
        ),
        (
            &["--image", "live.iso", "--slot", "srv/other"][..],
            "no such slot in live.iso; it has srv/piece.html",
        ),
    ] {
        let mut a = vec!["serve", "--pieces", "pieces", "--listen", "127.0.0.1:0"];
        a.extend_from_slice(args);
        let o = imgpipe_in(d, &a);
        assert_eq!(o.status.code(), Some(2));
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(e.contains(needle), "{e}");
        assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    }
    let o = imgpipe_in(
        d,
        &[
            "serve",
            "--image",
            "live.iso",
            "--slot",
            "srv/piece.html",
            "--pieces",
            "missing",
            "--listen",
            "127.0.0.1:0",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--pieces missing: not a directory"));
}

/// A GET on its own connection whose headers are read; the body is read by the caller.
fn start_get(addr: &str, path: &str, headers: &[(&str, &str)]) -> (BufReader<TcpStream>, u64) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut r = BufReader::new(s);
    let mut len = None;
    loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().ok();
        }
    }
    (r, len.unwrap())
}

/// The rest of a body, up to the end of the stream or an error (a cut-short download).
fn read_rest(r: &mut impl Read, into: &mut Vec<u8>) {
    let mut buf = [0u8; 65_536];
    loop {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => into.extend_from_slice(&buf[..n]),
        }
    }
}

#[test]
fn fifty_downloads_at_once_all_hash_right_and_hold_no_piece_each() {
    let t = tempdir();
    let d = t.path();
    base_with_slot(d, "4M");
    // A piece of nearly 4 MiB: a server holding one copy per download would need 200 MiB.
    let piece: Vec<u8> = pattern(4_000_000).iter().map(|b| b ^ 0x5a).collect();
    write(&d.join("pieces/big"), &piece);
    let want = injected(d, "pieces/big");
    let want_sha = sha(&want);
    let server = serve(d, &[]);
    let a = server.addr.clone();
    let slot_at = want.windows(64).position(|w| w == &piece[..64]).unwrap();
    assert!(want[slot_at..slot_at + piece.len()] == piece[..]);

    // 50 downloads, all started before any body is read: every stream is in flight at once.
    const N: usize = 50;
    let ready = std::sync::Arc::new(std::sync::Barrier::new(N + 1));
    let threads: Vec<_> = (0..N)
        .map(|_| {
            let (a, ready) = (a.clone(), ready.clone());
            std::thread::spawn(move || {
                let (mut r, len) = start_get(&a, "/big.iso", &[]);
                ready.wait();
                let mut body = Vec::new();
                read_rest(&mut r, &mut body);
                assert_eq!(body.len() as u64, len);
                sha(&body)
            })
        })
        .collect();
    ready.wait();
    for t in threads {
        assert_eq!(t.join().unwrap(), want_sha, "a download differs");
    }
    let peak = server.peak_rss();
    let bound = (64 + N as u64) << 20;
    assert!(
        peak < bound,
        "peak {} MiB, bound {} MiB",
        peak >> 20,
        bound >> 20
    );
}

#[test]
fn a_piece_removed_mid_download_is_served_whole_and_a_rewritten_one_cuts_it_short() {
    let t = tempdir();
    let d = t.path();
    // A piece far larger than what the server reads ahead of a client that waits (its
    // queue and the sockets' buffers: a few MiB).
    base_with_slot(d, "48M");
    let piece: Vec<u8> = pattern(40_000_000).iter().map(|b| b ^ 0x5a).collect();
    write(&d.join("pieces/big"), &piece);
    let want = injected(d, "pieces/big");
    let server = serve(d, &[]);
    let a = server.addr.clone();

    // The slot's place in the image: downloads below start just before it.
    let slot_at = want.windows(64).position(|w| w == &piece[..64]).unwrap();
    let range = format!("bytes={}-", slot_at - 1000);

    // The piece removed mid-download: the open piece is served whole.
    let (mut r, len) = start_get(&a, "/big.iso", &[("Range", &range)]);
    let mut body = vec![0u8; 100];
    r.read_exact(&mut body).unwrap();
    std::fs::remove_file(d.join("pieces/big")).unwrap();
    read_rest(&mut r, &mut body);
    assert_eq!(body.len() as u64, len);
    assert!(
        body == want[slot_at - 1000..],
        "a removed piece changed the download"
    );
    assert_eq!(request(&a, "GET", "/big.iso", &[]).status, 404);

    // The piece rewritten mid-download: the download is cut short, never a mix of two pieces.
    write(&d.join("pieces/big"), &piece);
    let (mut r, len) = start_get(&a, "/big.iso", &[("Range", &range)]);
    let mut body = vec![0u8; 100];
    r.read_exact(&mut body).unwrap();
    let mut other = piece.clone();
    other.reverse();
    write(&d.join("pieces/big"), &other);
    read_rest(&mut r, &mut body);
    assert!(
        (body.len() as u64) < len,
        "a rewritten piece was served on (same as the first: {})",
        body[..] == want[slot_at - 1000..]
    );
    assert!(
        body[..] == want[slot_at - 1000..slot_at - 1000 + body.len()],
        "what was sent is not the first piece"
    );
    // The server goes on, with the new piece.
    let r = request(&a, "GET", "/big.iso", &[]);
    assert_eq!(r.status, 200);
    assert!(r.body[slot_at..slot_at + other.len()] == other[..]);
    let log = server.stop();
    assert!(
        log.contains("/big.iso cut short") && log.contains("changed while it was being served"),
        "{log}"
    );
}
