//! A serde-serializable description of an EROFS image (what `imgpipe inspect` prints).

use std::io::{Read, Seek};

use serde::Serialize;

use super::raw::{
    CompressionConfig, EROFS_MAGIC, EROFS_SUPERBLOCK_OFFSET, ErofsSuperBlock,
    FEATURE_INCOMPAT_COMPR_CFGS, compression_name,
};
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
    /// Compatible features (bit mask).
    pub feature_compat: u32,
    /// Every feature flag set, by the name dump.erofs gives it (compatible ones first),
    /// then `unknown-compat-0x..`/`unknown-incompat-0x..` for bits without a name.
    pub features: Vec<String>,
    /// The compression algorithms the image may use (`lz4`, `lzma`, `deflate`, `zstd`).
    pub compression: Vec<String>,
    /// Their config records after the superblock (`COMPR_CFGS`), in algorithm order.
    pub compression_configs: Vec<CompressionConfig>,
    /// The packed inode's nid (fragments, long xattr prefixes), when there is one.
    pub packed_nid: Option<u64>,
    /// Number of long xattr name prefixes.
    pub xattr_prefixes: u8,
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
    let (names, compat_unknown, incompat_unknown) = sb.feature_names();
    let mut features: Vec<String> = names.into_iter().map(str::to_owned).collect();
    if compat_unknown != 0 {
        features.push(format!("unknown-compat-{compat_unknown:#x}"));
    }
    if incompat_unknown != 0 {
        features.push(format!("unknown-incompat-{incompat_unknown:#x}"));
    }
    let algs = sb.compr_algs();
    let compression = (0..16u8)
        .filter(|a| algs & (1 << a) != 0)
        .map(|a| compression_name(a).map_or_else(|| format!("unknown-{a}"), str::to_owned))
        .collect();
    let mut compression_configs = Vec::new();
    if sb.feature_incompat & FEATURE_INCOMPAT_COMPR_CFGS != 0 {
        let at = EROFS_SUPERBLOCK_OFFSET + sb.sb_size();
        let mut b = vec![0u8; 64];
        if read_at(&mut r, at, &mut b, "EROFS compression config").is_ok() {
            compression_configs = CompressionConfig::parse_all(&b, sb.available_compr_algs, at)?;
        }
    }
    Ok(ErofsInspection {
        block_size: 1 << sb.blkszbits,
        inodes: sb.inos,
        blocks: sb.blocks,
        build_time: sb.build_time,
        uuid,
        volume_name: String::from_utf8_lossy(&sb.volume_name[..end]).into_owned(),
        feature_incompat: sb.feature_incompat,
        feature_compat: sb.feature_compat,
        features,
        compression,
        compression_configs,
        packed_nid: (sb.packed_nid != 0).then_some(sb.packed_nid),
        xattr_prefixes: sb.xattr_prefix_count,
    })
}
