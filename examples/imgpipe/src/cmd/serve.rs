//! `imgpipe serve --image BASE --slot NAME --pieces DIR [--listen ADDR]`: per-download
//! images over HTTP. `GET /NAME.iso` streams BASE with `DIR/NAME` in the slot, read through
//! an [`Overlay`] in 256 KiB chunks (no copy, never the whole image in memory); HEAD, single
//! byte ranges, entity tags and `If-None-Match`; at most `--max-streams` bodies at once (the
//! rest wait, then get 503); SIGTERM or SIGINT stop accepting and let streams finish for a
//! few seconds. The decisions are imgpipe_repro::serve's; this file is the HTTP wiring.

use std::fs::File;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use imgpipe_repro::inject::{Overlay, PieceData, PieceFile, SlotTable};
use imgpipe_repro::serve::{
    BaseIdentity, ChunkPool, RangeRequest, etag_of_digest, if_none_match, piece_name, range,
};
use sha2::{Digest, Sha256};
use tokio::sync::{Semaphore, mpsc};

use crate::output;

/// Bytes read from the overlay per chunk of a body.
const CHUNK: usize = 256 * 1024;
/// Chunks queued per stream ahead of the client (memory per stream: about this plus one).
const QUEUED: usize = 2;
/// How long a request waits for a free stream before 503.
const QUEUE_WAIT: Duration = Duration::from_secs(30);
/// How long streams may go on after SIGTERM.
const DRAIN: Duration = Duration::from_secs(5);

/// Arguments of `imgpipe serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The base image, built with a slot (`imgpipe build --reserve`).
    #[arg(long, value_name = "BASE")]
    image: PathBuf,
    /// The slot the pieces go in (a path as --reserve named it).
    #[arg(long, value_name = "NAME")]
    slot: String,
    /// The directory of pieces: `GET /NAME.iso` puts `DIR/NAME` in the slot.
    #[arg(long, value_name = "DIR")]
    pieces: PathBuf,
    /// The address to listen on (port 0: any free port; the line on stderr names it).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// At most this many bodies stream at once; further requests wait up to 30 s, then 503.
    #[arg(long, value_name = "N", default_value_t = 64)]
    max_streams: usize,
}

#[derive(Debug)]
struct State {
    base: File,
    table: SlotTable,
    slot: String,
    capacity: u64,
    pieces: PathBuf,
    identity: BaseIdentity,
    streams: Arc<Semaphore>,
    chunks: Arc<ChunkPool>,
}

/// Runs `imgpipe serve`.
pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let base =
        File::open(&a.image).with_context(|| format!("cannot open {}", a.image.display()))?;
    let table =
        SlotTable::read(&base).map_err(|e| anyhow::anyhow!("{}: {e}", a.image.display()))?;
    let want = a.slot.trim_start_matches('/');
    let Some(slot) = table.slots.iter().find(|s| s.name == want) else {
        let have: Vec<&str> = table.slots.iter().map(|s| s.name.as_str()).collect();
        anyhow::bail!(
            "--slot {}: no such slot in {}; it has {}",
            a.slot,
            a.image.display(),
            if have.is_empty() {
                "none".to_owned()
            } else {
                have.join(", ")
            }
        );
    };
    let capacity = slot.capacity;
    if !a.pieces.is_dir() {
        anyhow::bail!("--pieces {}: not a directory", a.pieces.display());
    }
    anyhow::ensure!(a.max_streams > 0, "--max-streams: at least 1");
    let meta = base
        .metadata()
        .with_context(|| format!("reading {}", a.image.display()))?;
    let (mtime, mtime_nsec) = {
        use std::os::unix::fs::MetadataExt;
        (meta.mtime(), u32::try_from(meta.mtime_nsec()).unwrap_or(0))
    };
    let identity = BaseIdentity::new(&table.encode()?, meta.len(), mtime, mtime_nsec);
    let state = Arc::new(State {
        base,
        slot: want.to_owned(),
        table,
        capacity,
        pieces: a.pieces.clone(),
        identity,
        streams: Arc::new(Semaphore::new(a.max_streams)),
        chunks: ChunkPool::new(CHUNK, a.max_streams.saturating_mul(QUEUED + 2)),
    });

    let listener = std::net::TcpListener::bind(a.listen)
        .with_context(|| format!("--listen {}: cannot listen", a.listen))?;
    listener
        .set_nonblocking(true)
        .context("configuring the listening socket")?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)
            .context("configuring the listening socket")?;
        let app = axum::Router::new().fallback(move |m: Method, u: Uri, h: HeaderMap| {
            let state = state.clone();
            async move { handle(state, m, u, h).await }
        });
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
            .context("installing the SIGINT handler")?;
        let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
        let server = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = stop_rx.wait_for(|s| *s).await;
        });
        let mut server = tokio::spawn(server.into_future());
        let _ = writeln!(
            std::io::stderr(),
            "serving {} slot {} on http://{addr}",
            a.image.display(),
            a.slot
        );
        tokio::select! {
            r = &mut server => {
                r.context("the server stopped")?.context("the server stopped")?;
                return Ok(());
            }
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        let _ = stop_tx.send(true);
        // Streams under way may finish for a while; then the process ends regardless.
        let _ = tokio::time::timeout(DRAIN, &mut server).await;
        anyhow::Ok(())
    })?;
    // Blocking readers of streams cut short must not hold the exit up.
    rt.shutdown_timeout(Duration::from_millis(100));
    Ok(output::exit(output::SUCCESS))
}

fn status(code: StatusCode, message: &str) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{message}\n"),
    )
        .into_response()
}

/// `%XX` decoded; `None` for a bad escape or bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

enum Piece {
    Missing,
    TooLarge(u64),
    /// The open piece and its SHA-256.
    Open(Arc<PieceFile>, [u8; 32]),
}

/// Opens a piece and hashes it; it is read again, from the open file, as it is streamed.
fn open_piece(path: &Path, capacity: u64) -> std::io::Result<Piece> {
    let f = match PieceFile::open(path) {
        Ok(f) => f,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::InvalidInput
            ) =>
        {
            return Ok(Piece::Missing);
        }
        Err(e) => return Err(e),
    };
    if f.len() > capacity {
        return Ok(Piece::TooLarge(f.len()));
    }
    let mut h = Sha256::new();
    f.for_each_chunk(|b| h.update(b))?;
    Ok(Piece::Open(Arc::new(f), h.finalize().into()))
}

async fn handle(state: Arc<State>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    if method != Method::GET && method != Method::HEAD {
        let mut r = status(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let Some(path) = percent_decode(uri.path()) else {
        return status(StatusCode::BAD_REQUEST, "bad percent-encoding in the path");
    };
    let path = path.strip_prefix('/').unwrap_or(&path);
    let Some(name) = path.strip_suffix(".iso") else {
        return status(StatusCode::NOT_FOUND, "not found: ask for /NAME.iso");
    };
    let name = match piece_name(name) {
        Ok(n) => n.to_owned(),
        Err(e) => return status(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let file = state.pieces.join(&name);
    let capacity = state.capacity;
    let piece = match tokio::task::spawn_blocking(move || open_piece(&file, capacity)).await {
        Ok(Ok(p)) => p,
        _ => return status(StatusCode::INTERNAL_SERVER_ERROR, "cannot read the piece"),
    };
    let (piece, digest) = match piece {
        Piece::Missing => return status(StatusCode::NOT_FOUND, &format!("no piece {name}")),
        Piece::TooLarge(n) => {
            return status(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("the piece is {n} bytes; the slot holds at most {capacity}"),
            );
        }
        Piece::Open(f, digest) => (f, digest),
    };
    let tag = etag_of_digest(&state.identity, &digest);
    let patches = match state
        .table
        .patches_of(&[(state.slot.as_str(), PieceData::File(piece))])
    {
        Ok(p) => p,
        Err(e) => return status(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let Ok(tag_value) = HeaderValue::from_str(&tag) else {
        return status(StatusCode::INTERNAL_SERVER_ERROR, "entity tag");
    };
    let text = |h: header::HeaderName| headers.get(h).and_then(|v| v.to_str().ok());
    if text(header::IF_NONE_MATCH).is_some_and(|h| if_none_match(h, &tag)) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, tag_value)]).into_response();
    }
    let overlay = match state.base.try_clone() {
        Ok(f) => match Overlay::new(f, patches) {
            Ok(o) => o,
            Err(e) => return status(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        },
        Err(e) => return status(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let len = overlay.len();
    // If-Range with another tag: the whole image (RFC 9110 §13.1.5).
    let ranged = match text(header::IF_RANGE) {
        Some(t) if t != tag => RangeRequest::Full,
        _ => range(text(header::RANGE), len),
    };
    let (code, start, count) = match ranged {
        RangeRequest::Full => (StatusCode::OK, 0, len),
        RangeRequest::Partial { start, end } => {
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
        }
        RangeRequest::Unsatisfiable => {
            let mut r = status(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable");
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            r.headers_mut().insert(header::ETAG, tag_value);
            return r;
        }
    };
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::ETAG, tag_value);
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    if code == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{len}", start + count - 1))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}.iso\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if method == Method::HEAD {
        return (code, h).into_response();
    }
    // Back-pressure: wait for a free stream, for a while.
    let permit = match tokio::time::timeout(QUEUE_WAIT, state.streams.clone().acquire_owned()).await
    {
        Ok(Ok(p)) => p,
        _ => {
            let mut r = status(StatusCode::SERVICE_UNAVAILABLE, "too many downloads; retry");
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            return r;
        }
    };
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(QUEUED);
    let pool = state.chunks.clone();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let mut pos = start;
        let end = start + count;
        while pos < end {
            let want = usize::try_from((end - pos).min(CHUNK as u64)).unwrap_or(CHUNK);
            let item = pool.read(&overlay, pos, want).map(Bytes::from_owner);
            let failed = item.is_err();
            if let Err(e) = &item {
                // The client sees the body cut short; the log says why.
                // (A closed stderr must not stop the server.)
                let _ = writeln!(
                    std::io::stderr(),
                    "imgpipe serve: /{name}.iso cut short at byte {pos}: {e}"
                );
            }
            // The client left: stop reading.
            if tx.blocking_send(item).is_err() || failed {
                return;
            }
            pos += want as u64;
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    (code, h, Body::from_stream(body)).into_response()
}
