//! Readers over `Read + Seek`.

pub(crate) mod fat;
mod fat_fs;
pub(crate) mod gpt;
pub(crate) mod window;

use std::io::{Read, Seek, SeekFrom};

use crate::error::{Error, Result};

/// Reads exactly `len` bytes at `at`, or fails with `Truncated` naming `structure`.
pub(crate) fn read_exact_at<R: Read + Seek>(
    r: &mut R,
    at: u64,
    len: usize,
    structure: &'static str,
) -> Result<Vec<u8>> {
    r.seek(SeekFrom::Start(at)).map_err(Error::io("seeking"))?;
    let mut buf = Vec::new();
    r.take(len as u64)
        .read_to_end(&mut buf)
        .map_err(Error::io("reading"))?;
    if buf.len() < len {
        return Err(Error::Truncated {
            structure,
            offset: at,
            needed: len as u64,
            available: buf.len() as u64,
        });
    }
    Ok(buf)
}

/// The length of a seekable stream.
pub(crate) fn stream_len<R: Seek>(r: &mut R) -> Result<u64> {
    r.seek(SeekFrom::End(0)).map_err(Error::io("seeking"))
}
