//! A serde-serializable description of an EROFS image (what `imgpipe inspect` prints).

use std::io::{Read, Seek};

use serde::Serialize;

use super::raw::{EROFS_MAGIC, EROFS_SUPERBLOCK_OFFSET, ErofsSuperBlock};
use crate::error::Result;
use crate::inspect::read_at;

/// Whether `head` holds an EROFS superblock at byte 1024.
pub fn detect_erofs(head: &[u8]) -> bool {
    let at = EROFS_SUPERBLOCK_OFFSET as usize;
    head.get(at..at + 4) == Some(&EROFS_MAGIC.to_le_bytes()[..])
}

/// Summary of an EROFS image.
#[derive(Debug, Clone, Serialize)]
pub struct ErofsInspection {
    /// Block size in bytes.
    pub block_size: u32,
    /// Number of inodes.
    pub inodes: u64,
    /// Blocks in the image.
    pub blocks: u32,
    /// Build time.
    pub build_time: u64,
    /// UUID as text.
    pub uuid: String,
    /// Volume name.
    pub volume_name: String,
    /// Incompatible features (bit mask).
    pub feature_incompat: u32,
}

/// Reads the EROFS superblock and summarises it.
pub fn inspect_erofs<R: Read + Seek>(mut r: R) -> Result<ErofsInspection> {
    let mut b = [0u8; ErofsSuperBlock::SIZE];
    read_at(&mut r, EROFS_SUPERBLOCK_OFFSET, &mut b, "EROFS superblock")?;
    let sb = ErofsSuperBlock::parse(&b, EROFS_SUPERBLOCK_OFFSET)?;
    let mut uuid = String::with_capacity(36);
    for (k, byte) in sb.uuid.iter().enumerate() {
        if matches!(k, 4 | 6 | 8 | 10) {
            uuid.push('-');
        }
        uuid.push_str(&format!("{byte:02x}"));
    }
    let end = sb.volume_name.iter().position(|&c| c == 0).unwrap_or(16);
    Ok(ErofsInspection {
        block_size: 1 << sb.blkszbits,
        inodes: sb.inos,
        blocks: sb.blocks,
        build_time: sb.build_time,
        uuid,
        volume_name: String::from_utf8_lossy(&sb.volume_name[..end]).into_owned(),
        feature_incompat: sb.feature_incompat,
    })
}
