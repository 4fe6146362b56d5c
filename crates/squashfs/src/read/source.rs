//! Where image bytes come from: positioned reads, so parallel readers need no shared cursor.

use std::io::{Read, Seek, SeekFrom};
use std::sync::Mutex;

/// Positioned reads over an image's container (a file, a byte buffer, a mutex-guarded
/// stream). Implemented for [`std::fs::File`] (`pread`, lock-free), [`Bytes`] and
/// [`SeekSource`].
pub trait ReadAt: Send + Sync {
    /// Fills `buf` from absolute position `pos`.
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> std::io::Result<()>;
    /// Total length of the container.
    fn len(&self) -> std::io::Result<u64>;
    /// Whether the container is empty.
    fn is_empty(&self) -> std::io::Result<bool> {
        Ok(self.len()? == 0)
    }
}

impl ReadAt for std::fs::File {
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> std::io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, pos)
    }
    fn len(&self) -> std::io::Result<u64> {
        Ok(self.metadata()?.len())
    }
}

/// An image held in memory (a `Vec<u8>`, a memory map, `&'static [u8]`).
#[derive(Debug, Clone)]
pub struct Bytes<T>(pub T);

impl<T: AsRef<[u8]> + Send + Sync> ReadAt for Bytes<T> {
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> std::io::Result<()> {
        let b = self.0.as_ref();
        let src = usize::try_from(pos)
            .ok()
            .and_then(|p| b.get(p..p.checked_add(buf.len())?))
            .ok_or(std::io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn len(&self) -> std::io::Result<u64> {
        Ok(self.0.as_ref().len() as u64)
    }
}

/// Any `Read + Seek` stream behind a mutex (reads are serialised; decompression is not).
#[derive(Debug)]
pub struct SeekSource<R>(Mutex<R>);

impl<R> SeekSource<R> {
    /// Wraps a stream.
    pub fn new(r: R) -> Self {
        Self(Mutex::new(r))
    }
}

impl<R: Read + Seek + Send> ReadAt for SeekSource<R> {
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> std::io::Result<()> {
        let mut r = self
            .0
            .lock()
            .map_err(|_| std::io::Error::other("source lock poisoned"))?;
        r.seek(SeekFrom::Start(pos))?;
        r.read_exact(buf)
    }
    fn len(&self) -> std::io::Result<u64> {
        let mut r = self
            .0
            .lock()
            .map_err(|_| std::io::Error::other("source lock poisoned"))?;
        r.seek(SeekFrom::End(0))
    }
}
