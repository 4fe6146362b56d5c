//! What a server of per-download images decides without knowing HTTP's wire format or the
//! image's: which piece a request names, which bytes a `Range` header asks for, and the
//! entity tag of a base with a piece in its slot.
//!
//! ```
//! use imgpipe_repro::serve::{BaseIdentity, RangeRequest, etag, piece_name, range};
//!
//! assert_eq!(piece_name("kiosk-42").unwrap(), "kiosk-42");
//! assert!(piece_name("../etc/passwd").is_err());
//! assert_eq!(range(Some("bytes=0-99"), 1000), RangeRequest::Partial { start: 0, end: 99 });
//! assert_eq!(range(Some("bytes=-10"), 1000), RangeRequest::Partial { start: 990, end: 999 });
//! assert_eq!(range(Some("bytes=1000-"), 1000), RangeRequest::Unsatisfiable);
//! let base = BaseIdentity::new(b"slot table bytes", 1000, 1_700_000_000, 0);
//! let tag = etag(&base, b"the piece");
//! assert!(tag.starts_with('"') && tag.ends_with('"'));
//! assert_ne!(tag, etag(&base, b"another piece"));
//! ```
//!
//! # Security
//! [`piece_name`] accepts only a single path component: a name with `/`, `..` or NUL, an
//! empty name, `.`, or a name starting with `.` never reaches the file system.

use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::inject::Overlay;

/// The name of a piece from a request path, checked: one plain file name. `/`, `..`, NUL,
/// an empty name and names starting with `.` are refused.
pub fn piece_name(name: &str) -> Result<&str> {
    let reason = if name.is_empty() {
        Some("empty")
    } else if name.contains('/') || name.contains('\\') {
        Some("a piece name has no `/`")
    } else if name.contains("..") {
        Some("a piece name has no `..`")
    } else if name.contains('\0') {
        Some("a piece name has no NUL")
    } else if name.starts_with('.') {
        Some("a piece name does not start with `.`")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::Argument {
            flag: "piece",
            value: name.escape_debug().to_string(),
            reason: reason.to_owned(),
        }),
        None => Ok(name),
    }
}

/// What a `Range` header asks of a representation of a given length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// No range (or one this server ignores, as RFC 9110 allows: other units, several
    /// ranges, bad syntax): the whole representation, 200.
    Full,
    /// Bytes `start..=end`, 206.
    Partial {
        /// The first byte.
        start: u64,
        /// The last byte (inclusive).
        end: u64,
    },
    /// A syntactically valid range that selects nothing: 416.
    Unsatisfiable,
}

/// Interprets a `Range` header value for a representation of `len` bytes (RFC 9110 §14.1.2:
/// `bytes=a-b`, `bytes=a-`, `bytes=-n`; a single range).
pub fn range(header: Option<&str>, len: u64) -> RangeRequest {
    let Some(h) = header else {
        return RangeRequest::Full;
    };
    let Some(spec) = h.trim().strip_prefix("bytes=") else {
        return RangeRequest::Full;
    };
    let spec = spec.trim();
    if spec.contains(',') {
        return RangeRequest::Full;
    }
    let Some((a, b)) = spec.split_once('-') else {
        return RangeRequest::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    let num = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            None
        } else {
            // Too many digits for u64: larger than any image, so "to the end".
            Some(s.parse().unwrap_or(u64::MAX))
        }
    };
    match (a.is_empty(), num(a), num(b)) {
        // bytes=-n: the last n bytes.
        (true, _, Some(n)) => {
            if n == 0 || len == 0 {
                RangeRequest::Unsatisfiable
            } else {
                RangeRequest::Partial {
                    start: len.saturating_sub(n),
                    end: len - 1,
                }
            }
        }
        (false, Some(start), end) => {
            if !b.is_empty() && end.is_none() {
                return RangeRequest::Full;
            }
            if let Some(e) = end
                && e < start
            {
                return RangeRequest::Full;
            }
            if start >= len {
                return RangeRequest::Unsatisfiable;
            }
            RangeRequest::Partial {
                start,
                end: end.map_or(len - 1, |e| e.min(len - 1)),
            }
        }
        _ => RangeRequest::Full,
    }
}

/// The identity of a base image, taken once when a server starts: the SHA-256 of its slot
/// table's bytes, its length and its modification time. A rebuilt or replaced base gets a
/// new identity, so its downloads get new entity tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BaseIdentity([u8; 32]);

impl BaseIdentity {
    /// The identity of a base whose slot table is `table` (its bytes as stored), of `len`
    /// bytes, modified at `mtime` seconds and `mtime_nsec` nanoseconds.
    pub fn new(table: &[u8], len: u64, mtime: i64, mtime_nsec: u32) -> Self {
        let mut h = Sha256::new();
        h.update(b"imgpipe base 1\0");
        h.update(Sha256::digest(table));
        h.update(len.to_le_bytes());
        h.update(mtime.to_le_bytes());
        h.update(mtime_nsec.to_le_bytes());
        Self(h.finalize().into())
    }

    /// Its digest.
    pub fn digest(&self) -> [u8; 32] {
        self.0
    }
}

/// The strong entity tag (quoted) of `base` with `piece` in its slot: 32 hex digits of the
/// SHA-256 of the base's identity and the piece's SHA-256.
pub fn etag(base: &BaseIdentity, piece: &[u8]) -> String {
    etag_of_digest(base, &Sha256::digest(piece).into())
}

/// [`etag`] from the piece's SHA-256, for a piece hashed as it was read.
pub fn etag_of_digest(base: &BaseIdentity, piece_sha256: &[u8; 32]) -> String {
    let mut h = Sha256::new();
    h.update(base.0);
    h.update(piece_sha256);
    let d: [u8; 32] = h.finalize().into();
    let mut s = String::with_capacity(34);
    s.push('"');
    for b in d.iter().take(16) {
        s.push_str(&format!("{b:02x}"));
    }
    s.push('"');
    s
}

/// Whether an `If-None-Match` header value matches `etag` (weak comparison, RFC 9110
/// §13.1.2: `*`, or any listed tag equal to it with or without `W/`).
pub fn if_none_match(header: &str, etag: &str) -> bool {
    header
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t == etag || t.strip_prefix("W/").is_some_and(|t| t == etag))
}

/// Buffers for streaming bodies, reused from one chunk to the next: a body is read into a
/// buffer that went out before, so memory stays at what is in flight and no buffer is
/// cleared or faulted in again. A [`Chunk`] returns its buffer here when dropped (after the
/// server wrote it); at most `keep` idle buffers are kept, the rest are freed.
#[derive(Debug)]
pub struct ChunkPool {
    size: usize,
    keep: usize,
    free: Mutex<Vec<Box<[u8]>>>,
}

impl ChunkPool {
    /// A pool of `size`-byte buffers keeping at most `keep` idle ones.
    pub fn new(size: usize, keep: usize) -> Arc<Self> {
        Arc::new(Self {
            size: size.max(1),
            keep,
            free: Mutex::new(Vec::new()),
        })
    }

    /// The size of its buffers.
    pub fn chunk_size(&self) -> usize {
        self.size
    }

    /// Reads `len` bytes (at most the buffer size) of `overlay` at `offset` into a pooled
    /// buffer. A base shorter than it was (truncated under the server) is an
    /// `UnexpectedEof` error, never a short chunk.
    pub fn read(
        self: &Arc<Self>,
        overlay: &Overlay,
        offset: u64,
        len: usize,
    ) -> std::io::Result<Chunk> {
        let len = len.min(self.size);
        let recycled = self.free.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut buf = recycled.unwrap_or_else(|| vec![0u8; self.size].into_boxed_slice());
        let mut filled = 0;
        while filled < len {
            let to = buf.get_mut(filled..len).unwrap_or_default();
            match overlay.read_at(to, offset + filled as u64)? {
                0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                n => filled += n,
            }
        }
        Ok(Chunk {
            buf: Some(buf),
            len,
            pool: Arc::clone(self),
        })
    }

    /// Idle buffers held now.
    pub fn idle(&self) -> usize {
        self.free.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// Bytes of a body read through a [`ChunkPool`]; its buffer goes back to the pool when
/// dropped.
#[derive(Debug)]
pub struct Chunk {
    buf: Option<Box<[u8]>>,
    len: usize,
    pool: Arc<ChunkPool>,
}

impl AsRef<[u8]> for Chunk {
    fn as_ref(&self) -> &[u8] {
        self.buf
            .as_deref()
            .and_then(|b| b.get(..self.len))
            .unwrap_or_default()
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take() {
            let mut free = self.pool.free.lock().unwrap_or_else(|e| e.into_inner());
            if free.len() < self.pool.keep {
                free.push(buf);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for bad in ["", "a/b", "/a", "..", "a..b", "a\0b", ".hidden", "a\\b"] {
            assert!(piece_name(bad).is_err(), "{bad:?}");
        }
        for good in ["a", "kiosk-42.html", "piece_1"] {
            assert_eq!(piece_name(good).unwrap(), good);
        }
    }

    #[test]
    fn ranges() {
        use RangeRequest::*;
        let r = |h: &str| range(Some(h), 100);
        assert_eq!(range(None, 100), Full);
        assert_eq!(r("bytes=0-0"), Partial { start: 0, end: 0 });
        assert_eq!(r("bytes=10-"), Partial { start: 10, end: 99 });
        assert_eq!(r("bytes=90-1000"), Partial { start: 90, end: 99 });
        assert_eq!(r("bytes=-1"), Partial { start: 99, end: 99 });
        assert_eq!(r("bytes=-1000"), Partial { start: 0, end: 99 });
        assert_eq!(
            r("bytes=0-99999999999999999999999"),
            Partial { start: 0, end: 99 }
        );
        assert_eq!(r("bytes=100-"), Unsatisfiable);
        assert_eq!(r("bytes=-0"), Unsatisfiable);
        assert_eq!(range(Some("bytes=0-"), 0), Unsatisfiable);
        for ignored in [
            "items=0-1",
            "bytes=5-1",
            "bytes=0-1,3-4",
            "bytes=a-b",
            "bytes=-",
            "bytes=1-x",
        ] {
            assert_eq!(r(ignored), Full, "{ignored}");
        }
    }

    #[test]
    fn tags() {
        let a = BaseIdentity::new(b"t", 10, 1, 0);
        let b = BaseIdentity::new(b"t", 10, 2, 0);
        assert_ne!(etag(&a, b"p"), etag(&b, b"p"));
        assert_eq!(etag(&a, b"p"), etag(&a, b"p"));
        let t = etag(&a, b"p");
        assert_eq!(t.len(), 34);
        assert!(if_none_match(&t, &t));
        assert!(if_none_match(&format!("\"x\", W/{t}"), &t));
        assert!(if_none_match("*", &t));
        assert!(!if_none_match("\"x\"", &t));
    }

    #[test]
    fn chunks_reuse_buffers_and_refuse_a_shrunk_base() {
        use crate::inject::Patch;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("base");
        let base: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &base).unwrap();
        let patch = Patch {
            offset: 4_000,
            len: 100,
            data: (&b"piece"[..]).into(),
        };
        let overlay = Overlay::new(std::fs::File::open(&path).unwrap(), vec![patch]).unwrap();
        let mut want = base.clone();
        want[4_000..4_100].fill(0);
        want[4_000..4_005].copy_from_slice(b"piece");

        let pool = ChunkPool::new(3_000, 2);
        let mut got = Vec::new();
        let mut at = 0u64;
        while at < overlay.len() {
            let len = (overlay.len() - at).min(3_000) as usize;
            let c = pool.read(&overlay, at, len).unwrap();
            assert_eq!(c.as_ref().len(), len);
            got.extend_from_slice(c.as_ref());
            at += len as u64;
            drop(c);
            assert_eq!(pool.idle(), 1, "the buffer came back");
        }
        assert_eq!(got, want);
        // Three in flight, two kept when they come back.
        let held: Vec<Chunk> = (0..3)
            .map(|i| pool.read(&overlay, i * 10, 10).unwrap())
            .collect();
        assert_eq!(pool.idle(), 0);
        assert_eq!(held[2].as_ref(), &want[20..30]);
        drop(held);
        assert_eq!(pool.idle(), 2);

        // The base shrinks under the server: an error, never a short or wrong chunk.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(5_000)
            .unwrap();
        let e = pool.read(&overlay, 3_000, 3_000).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
    }
}
