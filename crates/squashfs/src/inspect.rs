//! A serde-serializable description of a squashfs image (what `imgpipe inspect` prints); the
//! EROFS one is in [`crate::erofs`].

use std::io::{Read, Seek, SeekFrom};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::raw::{
    Compressor, CompressorOptions, METADATA_SIZE, MetadataHeader, SQUASHFS_MAGIC, SuperBlock, flags,
};

/// Whether `head` (the first bytes of an image) starts with a squashfs 4.0 superblock.
pub fn detect_squashfs(head: &[u8]) -> bool {
    head.len() >= SuperBlock::SIZE && head[..4] == SQUASHFS_MAGIC.to_le_bytes()
}

/// Summary of a squashfs image.
#[derive(Debug, Clone, Serialize)]
pub struct SquashfsInspection {
    /// Compressor.
    pub compressor: Compressor,
    /// Data block size.
    pub block_size: u32,
    /// Number of inodes.
    pub inode_count: u32,
    /// Number of fragments.
    pub fragment_count: u32,
    /// Image modification time.
    pub mod_time: u32,
    /// Bytes used.
    pub bytes_used: u64,
    /// Superblock flags.
    pub flags: u16,
    /// Whether an export table is present.
    pub exportable: bool,
    /// Whether an xattr table is present.
    pub xattrs: bool,
    /// The compressor options block, when there is one and it parses.
    pub compressor_options: Option<CompressorOptions>,
}

/// Reads `buf.len()` bytes at `at` of `r` (a superblock or an options block).
pub(crate) fn read_at<R: Read + Seek>(
    r: &mut R,
    at: u64,
    buf: &mut [u8],
    structure: &'static str,
) -> Result<()> {
    r.seek(SeekFrom::Start(at)).map_err(|source| Error::Io {
        what: "seeking to a superblock",
        source,
    })?;
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => {
                return Err(Error::Truncated {
                    structure,
                    offset: at,
                    needed: buf.len() as u64,
                    available: got as u64,
                });
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(Error::Io {
                    what: "reading a superblock",
                    source,
                });
            }
        }
    }
    Ok(())
}

/// Reads the squashfs superblock at the reader's start and summarises it.
pub fn inspect_squashfs<R: Read + Seek>(mut r: R) -> Result<SquashfsInspection> {
    let mut b = [0u8; SuperBlock::SIZE];
    read_at(&mut r, 0, &mut b, "squashfs superblock")?;
    let sb = SuperBlock::parse(&b, 0)?;
    let compressor_options = if sb.flags & flags::COMPRESSOR_OPTIONS != 0 {
        options_block(&mut r, sb.compressor)
    } else {
        None
    };
    Ok(SquashfsInspection {
        compressor: sb.compressor,
        block_size: sb.block_size,
        inode_count: sb.inode_count,
        fragment_count: sb.frag_count,
        mod_time: sb.mod_time,
        bytes_used: sb.bytes_used,
        flags: sb.flags,
        exportable: sb.export_table != u64::MAX,
        xattrs: sb.xattr_table != u64::MAX,
        compressor_options,
    })
}

/// The options block right after the superblock (one metadata block); `None` when it does
/// not read or parse (decompression never needs it, so neither does a summary).
fn options_block<R: Read + Seek>(r: &mut R, compressor: Compressor) -> Option<CompressorOptions> {
    let at = SuperBlock::SIZE as u64;
    let mut word = [0u8; 2];
    read_at(r, at, &mut word, "compressor options").ok()?;
    let h = MetadataHeader::parse(u16::from_le_bytes(word), at).ok()?;
    let mut data = vec![0u8; usize::from(h.stored_len)];
    read_at(r, at + 2, &mut data, "compressor options").ok()?;
    if h.compressed {
        data = crate::codec::decompress(compressor, &data, METADATA_SIZE).ok()?;
    }
    CompressorOptions::parse(compressor, &data, at + 2).ok()
}
