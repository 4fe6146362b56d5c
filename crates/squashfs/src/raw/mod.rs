//! Raw on-disk structures, each with `parse` and `write_to` / `to_bytes` side by side.
//!
//! The squashfs 4.0 layout (as written by squashfs-tools and read by Linux `fs/squashfs`):
//! superblock, optional compressor options, data and fragment blocks, inode table, directory
//! table, fragment table, export table, id table, xattr table. Tables other than inodes and
//! directories are arrays stored in metadata blocks and found through an index of `u64`
//! block positions.

mod dir;
mod inode;
mod metadata;
mod superblock;
mod tables;

use crate::error::{Error, Result};

/// A source of little-endian fields: a byte slice or a stream of metadata blocks.
pub(crate) trait Input {
    /// Fills `buf` or fails with [`Error::Truncated`] naming `structure`.
    fn read_into(&mut self, buf: &mut [u8], structure: &'static str) -> Result<()>;
    /// Absolute byte offset for error messages (of the metadata block, inside metadata).
    fn offset(&self) -> u64;

    fn u16(&mut self, structure: &'static str) -> Result<u16> {
        let mut b = [0; 2];
        self.read_into(&mut b, structure)?;
        Ok(u16::from_le_bytes(b))
    }
    fn u32(&mut self, structure: &'static str) -> Result<u32> {
        let mut b = [0; 4];
        self.read_into(&mut b, structure)?;
        Ok(u32::from_le_bytes(b))
    }
    fn u64(&mut self, structure: &'static str) -> Result<u64> {
        let mut b = [0; 8];
        self.read_into(&mut b, structure)?;
        Ok(u64::from_le_bytes(b))
    }
    /// Reads `n` bytes; callers bound `n` before calling.
    fn bytes(&mut self, n: usize, structure: &'static str) -> Result<Vec<u8>> {
        let mut v = vec![0; n];
        self.read_into(&mut v, structure)?;
        Ok(v)
    }
}

/// [`Input`] over a byte slice that starts at absolute offset `base`.
#[derive(Debug)]
pub(crate) struct SliceInput<'a> {
    data: &'a [u8],
    pos: usize,
    base: u64,
}

impl<'a> SliceInput<'a> {
    pub(crate) fn new(data: &'a [u8], base: u64) -> Self {
        Self { data, pos: 0, base }
    }
    pub(crate) fn consumed(&self) -> usize {
        self.pos
    }
}

impl Input for SliceInput<'_> {
    fn read_into(&mut self, buf: &mut [u8], structure: &'static str) -> Result<()> {
        let end = self.pos.checked_add(buf.len());
        match end.and_then(|e| self.data.get(self.pos..e)) {
            Some(src) => {
                buf.copy_from_slice(src);
                self.pos += buf.len();
                Ok(())
            }
            None => Err(Error::Truncated {
                structure,
                offset: self.offset(),
                needed: buf.len() as u64,
                available: (self.data.len() - self.pos) as u64,
            }),
        }
    }
    fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }
}

pub use dir::{DirEntry, DirHeader, DirIndex, MAX_NAME, parse_directory};
pub(crate) use dir::{read_listing, valid_name};
pub(crate) use inode::MAX_SYMLINK;
pub use inode::{
    DirInode, FileInode, Inode, InodeData, InodeKind, NO_FRAGMENT, NO_XATTR, decode_dev, encode_dev,
};
pub use metadata::{METADATA_SIZE, MetadataHeader};
pub use superblock::{Compressor, SQUASHFS_MAGIC, SuperBlock, flags};
pub(crate) use tables::XATTR_VALUE_OOL;
pub use tables::{
    CompressorOptions, FragmentEntry, XattrIdEntry, XattrIdTableHeader, XattrKey, data_block_size,
    encode_data_block_size,
};
