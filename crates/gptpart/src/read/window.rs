//! A byte range of a larger stream, seen as a stream of its own (a partition inside a disk).

use std::io::{self, Read, Seek, SeekFrom};

/// `len` bytes of `inner` starting at `offset`, readable and seekable as if they were a file;
/// reads stop at the end of the range.
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
        if n == 0 {
            return Ok(0);
        }
        let at = self
            .offset
            .checked_add(self.pos)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "offset overflows"))?;
        self.inner.seek(SeekFrom::Start(at))?;
        let got = self.inner.read(&mut buf[..n])?;
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
    use std::io::Cursor;

    #[test]
    fn reads_only_the_range() {
        let data: Vec<u8> = (0..100).collect();
        let mut w = Window::new(Cursor::new(data), 10, 20);
        assert_eq!(w.seek(SeekFrom::End(0)).unwrap(), 20);
        w.seek(SeekFrom::Start(15)).unwrap();
        let mut out = Vec::new();
        w.read_to_end(&mut out).unwrap();
        assert_eq!(out, (25..30).collect::<Vec<u8>>());
        assert!(w.seek(SeekFrom::Current(-100)).is_err());
    }
}
