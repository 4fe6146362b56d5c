//! Where image bytes come from: positioned reads, so parallel readers need no shared cursor,
//! and windows that show a byte range of a larger image as an image of its own (a partition
//! inside a disk, a squashfs file inside an ISO).

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::{Arc, Mutex};

/// Positioned reads over an image's container (a file, a byte buffer, a mutex-guarded
/// stream, a window of another source).
pub trait ReadAt: Send + Sync {
    /// Fills `buf` from absolute position `pos`; fails with `UnexpectedEof` past the end.
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()>;
    /// Total length of the container.
    fn len(&self) -> io::Result<u64>;
    /// Whether the container is empty.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
}

impl ReadAt for std::fs::File {
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, pos)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }
}

impl<T: ReadAt + ?Sized> ReadAt for Arc<T> {
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        (**self).read_exact_at(buf, pos)
    }
    fn len(&self) -> io::Result<u64> {
        (**self).len()
    }
}

impl<T: ReadAt + ?Sized> ReadAt for &T {
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        (**self).read_exact_at(buf, pos)
    }
    fn len(&self) -> io::Result<u64> {
        (**self).len()
    }
}

impl<T: ReadAt + ?Sized> ReadAt for Box<T> {
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        (**self).read_exact_at(buf, pos)
    }
    fn len(&self) -> io::Result<u64> {
        (**self).len()
    }
}

/// An image held in memory (a `Vec<u8>`, a memory map, `&'static [u8]`).
#[derive(Debug, Clone)]
pub struct Bytes<T>(pub T);

impl<T: AsRef<[u8]> + Send + Sync> ReadAt for Bytes<T> {
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        let b = self.0.as_ref();
        let src = usize::try_from(pos)
            .ok()
            .and_then(|p| b.get(p..p.checked_add(buf.len())?))
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.as_ref().len() as u64)
    }
}

/// Any `Read + Seek` stream behind a mutex (reads are serialised; what callers do with the
/// bytes is not).
#[derive(Debug)]
pub struct SeekSource<R>(Mutex<R>);

impl<R> SeekSource<R> {
    /// Wraps a stream.
    pub fn new(r: R) -> Self {
        Self(Mutex::new(r))
    }

    /// The wrapped stream.
    pub fn into_inner(self) -> io::Result<R> {
        self.0
            .into_inner()
            .map_err(|_| io::Error::other("source lock poisoned"))
    }
}

impl<R: Read + Seek + Send> ReadAt for SeekSource<R> {
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        let mut r = self
            .0
            .lock()
            .map_err(|_| io::Error::other("source lock poisoned"))?;
        r.seek(SeekFrom::Start(pos))?;
        r.read_exact(buf)
    }
    fn len(&self) -> io::Result<u64> {
        let mut r = self
            .0
            .lock()
            .map_err(|_| io::Error::other("source lock poisoned"))?;
        r.seek(SeekFrom::End(0))
    }
}

/// `len` bytes of a positioned-read source starting at `offset`, itself a [`ReadAt`]: reads
/// past its end fail even when the outer source goes on.
#[derive(Debug, Clone)]
pub struct Slice<S> {
    inner: S,
    offset: u64,
    len: u64,
}

impl<S: ReadAt> Slice<S> {
    /// The range `offset .. offset + len` of `inner`.
    pub fn new(inner: S, offset: u64, len: u64) -> Self {
        Self { inner, offset, len }
    }

    /// Everything of `inner` from `offset` on.
    pub fn from_offset(inner: S, offset: u64) -> io::Result<Self> {
        let len = inner.len()?.saturating_sub(offset);
        Ok(Self::new(inner, offset, len))
    }

    /// Where the slice starts in the source it was cut from.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The source it was cut from.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

impl<S: ReadAt> ReadAt for Slice<S> {
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        let end = pos
            .checked_add(buf.len() as u64)
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        if end > self.len {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let at = self
            .offset
            .checked_add(pos)
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        self.inner.read_exact_at(buf, at)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.len)
    }
}

/// A [`ReadAt`] seen as a `Read + Seek` stream with its own cursor (for readers written
/// against streams).
#[derive(Debug, Clone)]
pub struct Cursor<S> {
    inner: S,
    pos: u64,
}

impl<S: ReadAt> Cursor<S> {
    /// A cursor at position 0.
    pub fn new(inner: S) -> Self {
        Self { inner, pos: 0 }
    }

    /// The source.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: ReadAt> Read for Cursor<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = self.inner.len()?;
        let n = (buf.len() as u64).min(len.saturating_sub(self.pos)) as usize;
        let Some(dst) = buf.get_mut(..n) else {
            return Ok(0);
        };
        if n == 0 {
            return Ok(0);
        }
        self.inner.read_exact_at(dst, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<S: ReadAt> Seek for Cursor<S> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let new = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.inner.len()?.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos =
            new.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before start"))?;
        Ok(self.pos)
    }
}

/// `len` bytes of a `Read + Seek` stream starting at `offset`, readable and seekable as if
/// they were a file; reads stop at the end of the range.
#[derive(Debug)]
pub struct Window<R> {
    inner: R,
    offset: u64,
    len: u64,
    pos: u64,
}

impl<R: Read + Seek> Window<R> {
    /// The range `offset .. offset + len` of `inner`.
    pub fn new(inner: R, offset: u64, len: u64) -> Self {
        Self {
            inner,
            offset,
            len,
            pos: 0,
        }
    }

    /// The wrapped stream.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read + Seek> Read for Window<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        let n = (buf.len() as u64).min(left) as usize;
        let Some(dst) = buf.get_mut(..n) else {
            return Ok(0);
        };
        if n == 0 {
            return Ok(0);
        }
        let at = self
            .offset
            .checked_add(self.pos)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "offset overflows"))?;
        self.inner.seek(SeekFrom::Start(at))?;
        let got = self.inner.read(dst)?;
        self.pos += got as u64;
        Ok(got)
    }
}

impl<R: Read + Seek> Seek for Window<R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let new = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let new =
            new.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before start"))?;
        self.pos = new;
        Ok(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_reads_only_the_range() {
        let data: Vec<u8> = (0..100).collect();
        let mut w = Window::new(io::Cursor::new(data), 10, 20);
        assert_eq!(w.seek(SeekFrom::End(0)).unwrap(), 20);
        w.seek(SeekFrom::Start(15)).unwrap();
        let mut out = Vec::new();
        w.read_to_end(&mut out).unwrap();
        assert_eq!(out, (25..30).collect::<Vec<u8>>());
        assert!(w.seek(SeekFrom::Current(-100)).is_err());
    }

    #[test]
    fn slices_nest_and_stop_at_their_end() {
        let data: Vec<u8> = (0..100).collect();
        let outer = Slice::new(Bytes(data), 10, 50);
        let inner = Slice::new(&outer, 5, 10);
        let mut b = [0u8; 4];
        inner.read_exact_at(&mut b, 6).unwrap();
        assert_eq!(b, [21, 22, 23, 24]);
        assert!(inner.read_exact_at(&mut b, 7).is_err());
        assert!(outer.read_exact_at(&mut b, u64::MAX - 1).is_err());
        assert_eq!(inner.len().unwrap(), 10);
        let mut c = Cursor::new(inner);
        let mut all = Vec::new();
        c.read_to_end(&mut all).unwrap();
        assert_eq!(all, (15..25).collect::<Vec<u8>>());
        assert_eq!(c.seek(SeekFrom::End(-2)).unwrap(), 8);
    }

    #[test]
    fn seek_source_reads_at_positions() {
        let s = SeekSource::new(io::Cursor::new(vec![1u8, 2, 3, 4]));
        let mut b = [0u8; 2];
        s.read_exact_at(&mut b, 2).unwrap();
        assert_eq!(b, [3, 4]);
        assert!(s.read_exact_at(&mut b, 3).is_err());
        assert_eq!(s.len().unwrap(), 4);
    }
}
