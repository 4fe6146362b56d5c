//! Metadata block writers: compress each 8 KiB as it fills so references into already
//! written blocks (block start << 16 | offset) are known when the next structure needs them.

use crate::compress::{self, Compression};
use crate::error::Result;
use crate::raw::{METADATA_SIZE, MetadataHeader};

#[derive(Debug)]
pub(crate) struct MetaWriter {
    comp: Compression,
    compressed: bool,
    block_size: u32,
    pub(crate) out: Vec<u8>,
    buf: Vec<u8>,
    /// Compressed start of every block flushed so far.
    block_starts: Vec<u32>,
}

impl MetaWriter {
    pub(crate) fn new(comp: Compression, compressed: bool, block_size: u32) -> Self {
        Self {
            comp,
            compressed,
            block_size,
            out: Vec::new(),
            buf: Vec::with_capacity(METADATA_SIZE),
            block_starts: Vec::new(),
        }
    }

    /// (start of the current block relative to the table, offset in it).
    pub(crate) fn pos(&self) -> (u32, u16) {
        (self.out.len() as u32, self.buf.len() as u16)
    }

    /// The reference of the current position.
    pub(crate) fn reference(&self) -> u64 {
        ((self.out.len() as u64) << 16) | self.buf.len() as u64
    }

    /// Uncompressed bytes written so far.
    pub(crate) fn upos(&self) -> u64 {
        (self.block_starts.len() * METADATA_SIZE + self.buf.len()) as u64
    }

    /// Compressed start of the block holding uncompressed position `u` (flushed or current).
    pub(crate) fn block_start_of(&self, u: u64) -> u32 {
        let k = (u / METADATA_SIZE as u64) as usize;
        self.block_starts
            .get(k)
            .copied()
            .unwrap_or(self.out.len() as u32)
    }

    pub(crate) fn write(&mut self, mut bytes: &[u8]) -> Result<()> {
        while !bytes.is_empty() {
            let n = (METADATA_SIZE - self.buf.len()).min(bytes.len());
            self.buf.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if self.buf.len() == METADATA_SIZE {
                self.flush()?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.block_starts.push(self.out.len() as u32);
        let z = if self.compressed {
            compress::compress(self.comp, self.block_size, &self.buf)?
        } else {
            None
        };
        let (data, compressed) = match &z {
            Some(z) => (&z[..], true),
            None => (&self.buf[..], false),
        };
        let h = MetadataHeader {
            stored_len: data.len() as u16,
            compressed,
        };
        self.out.extend_from_slice(&h.to_word().to_le_bytes());
        self.out.extend_from_slice(data);
        self.buf.clear();
        Ok(())
    }

    pub(crate) fn finish(mut self) -> Result<Vec<u8>> {
        self.flush()?;
        Ok(self.out)
    }
}

/// Writes an indexed table (ids, fragments, export, xattr ids) that starts at image
/// position `at`: its metadata blocks, then the `u64` index. Returns the bytes and the
/// position of the index.
pub(crate) fn indexed_table(
    comp: Compression,
    compressed: bool,
    block_size: u32,
    at: u64,
    entries: &[u8],
) -> Result<(Vec<u8>, u64)> {
    let mut blocks = Vec::new();
    let mut index = Vec::new();
    for chunk in entries.chunks(METADATA_SIZE) {
        index.push(at + blocks.len() as u64);
        let mut w = MetaWriter::new(comp, compressed, block_size);
        w.write(chunk)?;
        blocks.extend_from_slice(&w.finish()?);
    }
    let index_pos = at + blocks.len() as u64;
    for p in index {
        blocks.extend_from_slice(&p.to_le_bytes());
    }
    Ok((blocks, index_pos))
}
