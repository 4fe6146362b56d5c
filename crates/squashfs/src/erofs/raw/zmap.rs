//! EROFS compressed-inode maps (`erofs_fs.h`: `struct z_erofs_map_header`,
//! `struct z_erofs_lcluster_index`, the compact 4B/2B index packs) and the per-algorithm
//! configuration records after the superblock (`z_erofs_*_cfgs`), each parsed and encoded
//! side by side.
//!
//! A compressed inode's data is cut into logical clusters (lclusters) of
//! `1 << lclusterbits` bytes. After the inode and its xattrs, aligned to 8 bytes, comes the
//! 8-byte [`MapHeader`], then one index per lcluster: 8-byte [`LclusterIndex`]es (full,
//! `COMPRESSED_FULL`; they start 8 bytes after the header) or packs of compact indexes
//! (`COMPRESSED_COMPACT`; right after the header, see [`CompactLayout`]). A HEAD (or PLAIN)
//! lcluster starts an extent at `clusterofs` inside it and names the first block of its
//! physical cluster (pcluster); NONHEAD lclusters continue it and give the distance back to
//! their head (`delta[0]`) and on to the next head (`delta[1]`). The first NONHEAD after a
//! head of a big pcluster carries the pcluster's block count instead (`D0_CBLKCNT`).
//! Every form decodes to one [`Lcluster`].

use super::malformed;
use crate::error::Result;
use imgpipe_fstree::le::{le_u16, le_u32};

/// `Z_EROFS_ADVISE_COMPACTED_2B`: compact indexes use 2-byte slots in the middle.
pub const ADVISE_COMPACTED_2B: u16 = 0x0001;
/// `Z_EROFS_ADVISE_BIG_PCLUSTER_1`: HEAD1 pclusters may span several blocks.
pub const ADVISE_BIG_PCLUSTER_1: u16 = 0x0002;
/// `Z_EROFS_ADVISE_BIG_PCLUSTER_2`: HEAD2 pclusters may span several blocks.
pub const ADVISE_BIG_PCLUSTER_2: u16 = 0x0004;
/// `Z_EROFS_ADVISE_INLINE_PCLUSTER`: the last pcluster is inline after the indexes
/// (ztailpacking), `h_idata_size` bytes.
pub const ADVISE_INLINE_PCLUSTER: u16 = 0x0008;
/// `Z_EROFS_ADVISE_INTERLACED_PCLUSTER`: uncompressed pclusters are stored rotated.
pub const ADVISE_INTERLACED_PCLUSTER: u16 = 0x0010;
/// `Z_EROFS_ADVISE_FRAGMENT_PCLUSTER`: the last extent lives in the packed inode.
pub const ADVISE_FRAGMENT_PCLUSTER: u16 = 0x0020;
/// `Z_EROFS_FRAGMENT_INODE_BIT` of `h_clusterbits`: the whole file lives in the packed inode.
pub const FRAGMENT_INODE_BIT: u8 = 7;

/// `Z_EROFS_LCLUSTER_TYPE_PLAIN`: the head of an uncompressed pcluster.
pub const LCLUSTER_TYPE_PLAIN: u8 = 0;
/// `Z_EROFS_LCLUSTER_TYPE_HEAD1`: the head of a pcluster compressed with algorithm 1.
pub const LCLUSTER_TYPE_HEAD1: u8 = 1;
/// `Z_EROFS_LCLUSTER_TYPE_NONHEAD`: a lcluster continuing the extent of an earlier head.
pub const LCLUSTER_TYPE_NONHEAD: u8 = 2;
/// `Z_EROFS_LCLUSTER_TYPE_HEAD2`: the head of a pcluster compressed with algorithm 2.
pub const LCLUSTER_TYPE_HEAD2: u8 = 3;

/// `Z_EROFS_LI_PARTIAL_REF` (full indexes, heads): the extent uses only a prefix of what
/// its pcluster decompresses to (deduplicated extents).
pub const LI_PARTIAL_REF: u16 = 1 << 15;
/// `Z_EROFS_LI_D0_CBLKCNT`: `delta[0]` of the first NONHEAD holds the pcluster's block count.
pub const LI_D0_CBLKCNT: u16 = 1 << 11;

/// `Z_EROFS_COMPRESSION_LZ4`.
pub const COMPRESSION_LZ4: u8 = 0;
/// `Z_EROFS_COMPRESSION_LZMA` (MicroLZMA).
pub const COMPRESSION_LZMA: u8 = 1;
/// `Z_EROFS_COMPRESSION_DEFLATE` (raw DEFLATE).
pub const COMPRESSION_DEFLATE: u8 = 2;
/// `Z_EROFS_COMPRESSION_ZSTD`.
pub const COMPRESSION_ZSTD: u8 = 3;
/// `Z_EROFS_PCLUSTER_MAX_SIZE`: largest encoded pcluster.
pub const PCLUSTER_MAX_SIZE: u64 = 1 << 20;
/// `Z_EROFS_PCLUSTER_MAX_DSIZE`: largest decoded pcluster.
pub const PCLUSTER_MAX_DSIZE: u64 = 12 << 20;

/// The name of compression algorithm `alg` (`lz4`, `lzma`, `deflate`, `zstd`).
pub fn compression_name(alg: u8) -> Option<&'static str> {
    Some(match alg {
        COMPRESSION_LZ4 => "lz4",
        COMPRESSION_LZMA => "lzma",
        COMPRESSION_DEFLATE => "deflate",
        COMPRESSION_ZSTD => "zstd",
        _ => return None,
    })
}

/// Where the map header of a compressed inode starts: `inode_end` (the end of the inode and
/// its xattr body) rounded up to 8.
pub fn map_header_offset(inode_end: u64) -> u64 {
    inode_end.next_multiple_of(8)
}

/// Where full indexes start (`Z_EROFS_FULL_INDEX_ALIGN`): 8 bytes after the map header,
/// which keeps the legacy 16-byte header size.
pub fn full_index_offset(inode_end: u64) -> u64 {
    map_header_offset(inode_end) + MapHeader::SIZE as u64 + 8
}

/// Where compact indexes start: right after the map header.
pub fn compact_index_offset(inode_end: u64) -> u64 {
    map_header_offset(inode_end) + MapHeader::SIZE as u64
}

/// `struct z_erofs_map_header`: 8 bytes before the indexes of a compressed inode.
///
/// When bit 7 of `h_clusterbits` is set the whole file lives in the packed inode and the
/// other 63 bits are its offset there ([`MapHeader::whole_file_fragment`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MapHeader {
    /// `h_fragmentoff`: the fragment's offset in the packed inode (low 32 bits); its upper
    /// half is also `h_idata_size`, the size of an inline (ztailpacking) pcluster.
    pub fragmentoff: u32,
    /// `h_advise`: the `ADVISE_*` bits.
    pub advise: u16,
    /// `h_algorithmtype`: bits 0-3 the algorithm of HEAD1, bits 4-7 of HEAD2.
    pub algorithmtype: u8,
    /// `h_clusterbits`: bits 0-2 `lclusterbits - blkszbits`, bit 7 [`FRAGMENT_INODE_BIT`].
    pub clusterbits: u8,
}

impl MapHeader {
    /// Encoded size.
    pub const SIZE: usize = 8;

    /// Parses the header from `b`, read at absolute offset `at`.
    pub fn parse(b: &[u8], at: u64) -> Result<Self> {
        let b = b.get(..Self::SIZE).ok_or(malformed(
            "EROFS z_erofs_map_header",
            "h_fragmentoff",
            at,
            "truncated",
        ))?;
        Ok(Self {
            fragmentoff: le_u32(b, 0),
            advise: le_u16(b, 4),
            algorithmtype: b[6],
            clusterbits: b[7],
        })
    }

    /// Encodes the header.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        b[..4].copy_from_slice(&self.fragmentoff.to_le_bytes());
        b[4..6].copy_from_slice(&self.advise.to_le_bytes());
        b[6] = self.algorithmtype;
        b[7] = self.clusterbits;
        b
    }

    /// The header of a file stored whole in the packed inode at `offset` (below `1 << 63`).
    pub fn for_whole_file_fragment(offset: u64) -> Self {
        let v = (offset | 1 << 63).to_le_bytes();
        Self {
            fragmentoff: u32::from_le_bytes([v[0], v[1], v[2], v[3]]),
            advise: u16::from_le_bytes([v[4], v[5]]),
            algorithmtype: v[6],
            clusterbits: v[7],
        }
    }

    /// The offset in the packed inode when the whole file lives there.
    pub fn whole_file_fragment(&self) -> Option<u64> {
        if self.clusterbits >> FRAGMENT_INODE_BIT == 0 {
            return None;
        }
        Some(u64::from_le_bytes(self.to_bytes()) ^ (1 << 63))
    }

    /// `h_idata_size`: bytes of the inline pcluster (ztailpacking).
    pub fn idata_size(&self) -> u16 {
        (self.fragmentoff >> 16) as u16
    }

    /// log2 of the lcluster size for a block size of `1 << blkszbits`.
    pub fn lclusterbits(&self, blkszbits: u8) -> u32 {
        u32::from(blkszbits) + u32::from(self.clusterbits & 7)
    }

    /// The algorithm of HEAD1 (`head2` false) or HEAD2 lclusters.
    pub fn algorithm(&self, head2: bool) -> u8 {
        if head2 {
            self.algorithmtype >> 4
        } else {
            self.algorithmtype & 15
        }
    }
}

/// `struct z_erofs_lcluster_index`: one full (8-byte) index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LclusterIndex {
    /// `di_advise`: bits 0-1 the lcluster type, [`LI_PARTIAL_REF`].
    pub advise: u16,
    /// `di_clusterofs`: where the head's extent starts inside the lcluster.
    pub clusterofs: u16,
    /// `di_u`: `blkaddr` of a head, or `delta[0] | delta[1] << 16` of a NONHEAD.
    pub u: u32,
}

impl LclusterIndex {
    /// Encoded size.
    pub const SIZE: usize = 8;

    /// A HEAD1/HEAD2/PLAIN index.
    pub fn head(kind: u8, clusterofs: u16, blkaddr: u32, partial_ref: bool) -> Self {
        let partial = if partial_ref { LI_PARTIAL_REF } else { 0 };
        Self {
            advise: u16::from(kind & 3) | partial,
            clusterofs,
            u: blkaddr,
        }
    }

    /// A NONHEAD index (`delta[0]` may carry [`LI_D0_CBLKCNT`]).
    pub fn nonhead(delta0: u16, delta1: u16) -> Self {
        Self {
            advise: u16::from(LCLUSTER_TYPE_NONHEAD),
            clusterofs: 0,
            u: u32::from(delta0) | u32::from(delta1) << 16,
        }
    }

    /// Parses an index from `b`, read at absolute offset `at`.
    pub fn parse(b: &[u8], at: u64) -> Result<Self> {
        let b = b.get(..Self::SIZE).ok_or(malformed(
            "EROFS z_erofs_lcluster_index",
            "di_advise",
            at,
            "truncated",
        ))?;
        Ok(Self {
            advise: le_u16(b, 0),
            clusterofs: le_u16(b, 2),
            u: le_u32(b, 4),
        })
    }

    /// Encodes the index.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        b[..2].copy_from_slice(&self.advise.to_le_bytes());
        b[2..4].copy_from_slice(&self.clusterofs.to_le_bytes());
        b[4..].copy_from_slice(&self.u.to_le_bytes());
        b
    }

    /// The lcluster type (`LCLUSTER_TYPE_*`).
    pub fn kind(&self) -> u8 {
        (self.advise & 3) as u8
    }

    /// `delta[0]` and `delta[1]` of a NONHEAD.
    pub fn delta(&self) -> [u16; 2] {
        [self.u as u16, (self.u >> 16) as u16]
    }

    /// Decodes the index for an inode with `lclusterbits`; `big_pcluster` says whether the
    /// inode allows big pclusters (a block count elsewhere is malformed). `at` is the
    /// index's absolute offset, for errors.
    pub fn decode(&self, lclusterbits: u32, big_pcluster: bool, at: u64) -> Result<Lcluster> {
        let kind = self.kind();
        if kind == LCLUSTER_TYPE_NONHEAD {
            let [d0, d1] = self.delta();
            let (delta0, compressed_blocks) = if d0 & LI_D0_CBLKCNT != 0 {
                if !big_pcluster {
                    return Err(malformed(
                        "EROFS z_erofs_lcluster_index",
                        "di_u.delta[0]",
                        at + 4,
                        "block count without big pclusters",
                    ));
                }
                (1, Some(d0 & !LI_D0_CBLKCNT))
            } else {
                (d0, None)
            };
            return Ok(Lcluster {
                kind,
                clusterofs: 0,
                pblk: 0,
                delta: [delta0, d1],
                compressed_blocks,
                partial_ref: false,
            });
        }
        if u32::from(self.clusterofs) >= 1 << lclusterbits.min(16) {
            return Err(malformed(
                "EROFS z_erofs_lcluster_index",
                "di_clusterofs",
                at + 2,
                "not inside the lcluster",
            ));
        }
        Ok(Lcluster {
            kind,
            clusterofs: self.clusterofs,
            pblk: self.u,
            delta: [0, 0],
            compressed_blocks: None,
            partial_ref: self.advise & LI_PARTIAL_REF != 0,
        })
    }
}

/// One lcluster as the reader sees it, whichever index form stored it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lcluster {
    /// `LCLUSTER_TYPE_*`.
    pub kind: u8,
    /// Heads: where the extent starts inside the lcluster.
    pub clusterofs: u16,
    /// Heads: the first block of the pcluster.
    pub pblk: u32,
    /// NONHEADs: distance back to the head, and on to the next head (0 when unknown).
    pub delta: [u16; 2],
    /// The first NONHEAD of a big pcluster: the pcluster's block count.
    pub compressed_blocks: Option<u16>,
    /// Heads (full indexes only): the extent uses a prefix of the pcluster's output.
    pub partial_ref: bool,
}

impl Lcluster {
    /// Whether this lcluster starts an extent (PLAIN, HEAD1, HEAD2).
    pub fn is_head(&self) -> bool {
        self.kind != LCLUSTER_TYPE_NONHEAD
    }
}

/// Where each compact index lies: `compacted_4b_initial` 4-byte slots (to reach 32-byte
/// alignment), then `compacted_2b` 2-byte slots in packs of 16 (when
/// [`ADVISE_COMPACTED_2B`]), then 4-byte slots in packs of 2. Each pack ends with a 32-bit
/// base block address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactLayout {
    /// Absolute offset of the first index (after the map header).
    pub ebase: u64,
    /// Index count (`i_size` in blocks, as the kernel counts).
    pub total: u64,
    /// 4-byte slots before the 2-byte ones.
    pub initial_4b: u64,
    /// 2-byte slots.
    pub compacted_2b: u64,
}

/// One compact index located: its pack and its slot in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactSlot {
    /// Absolute offset of the pack.
    pub pack: u64,
    /// Pack length: 8 (two 4-byte slots) or 32 (sixteen 2-byte slots).
    pub pack_len: usize,
    /// Slot in the pack.
    pub slot: usize,
}

impl CompactLayout {
    /// The layout of `total` indexes starting at absolute offset `ebase`, 2-byte slots used
    /// when `compacted_2b`.
    pub fn new(ebase: u64, total: u64, compacted_2b: bool) -> Self {
        let initial_4b = ((32 - ebase % 32) / 4) & 7;
        let c2b = if compacted_2b && initial_4b < total {
            (total - initial_4b) / 16 * 16
        } else {
            0
        };
        Self {
            ebase,
            total,
            initial_4b,
            compacted_2b: c2b,
        }
    }

    /// Where index `lcn` lies; `None` past the last one.
    pub fn locate(&self, lcn: u64) -> Option<CompactSlot> {
        if lcn >= self.total {
            return None;
        }
        let (pos, two) = if lcn < self.initial_4b {
            (self.ebase + lcn * 4, false)
        } else {
            let l = lcn - self.initial_4b;
            let base = self.ebase + self.initial_4b * 4;
            if l < self.compacted_2b {
                (base + l * 2, true)
            } else {
                (
                    base + self.compacted_2b * 2 + (l - self.compacted_2b) * 4,
                    false,
                )
            }
        };
        let (pack_len, unit) = if two { (32u64, 2u64) } else { (8, 4) };
        let pack = pos / pack_len * pack_len;
        Some(CompactSlot {
            pack,
            pack_len: pack_len as usize,
            slot: ((pos - pack) / unit) as usize,
        })
    }

    /// Bytes all the packs take, from `ebase`.
    pub fn encoded_len(&self) -> u64 {
        let rest = self
            .total
            .saturating_sub(self.initial_4b + self.compacted_2b);
        let initial = self.initial_4b.min(self.total);
        (initial + rest).next_multiple_of(2) * 4 + self.compacted_2b * 2
    }
}

fn compact_bits(pack: &[u8], lobits: u32, encodebits: usize, i: usize) -> (u32, u8) {
    let pos = encodebits * i;
    let mut w = [0u8; 4];
    for (k, x) in w.iter_mut().enumerate() {
        *x = pack.get(pos / 8 + k).copied().unwrap_or(0);
    }
    let v = u32::from_le_bytes(w) >> (pos & 7);
    (v & ((1 << lobits) - 1), ((v >> lobits) & 3) as u8)
}

/// Decodes slot `slot` of a compact pack (8 or 32 bytes, read at absolute offset `at`) of
/// an inode with `lclusterbits` and, when `big_pcluster`, big pclusters. A head's block
/// address is the pack's base plus the blocks of the pclusters before it in the pack.
pub fn decode_compact(
    pack: &[u8],
    slot: usize,
    lclusterbits: u32,
    big_pcluster: bool,
    at: u64,
) -> Result<Lcluster> {
    let bad = |field, reason| malformed("EROFS compact lcluster index", field, at, reason);
    let vcnt = match pack.len() {
        8 if lclusterbits <= 14 => 2usize,
        32 if lclusterbits <= 12 => 16,
        _ => {
            return Err(bad(
                "lclusterbits",
                "pack size unusable at this lcluster size",
            ));
        }
    };
    if slot >= vcnt {
        return Err(bad("slot", "past the pack"));
    }
    let lobits = lclusterbits.max(12);
    let encodebits = ((pack.len() - 4) * 8) / vcnt;
    let bits = |i: usize| compact_bits(pack, lobits, encodebits, i);
    let (lo, kind) = bits(slot);
    let cblkcnt = u32::from(LI_D0_CBLKCNT);
    if kind == LCLUSTER_TYPE_NONHEAD {
        // Lookahead: the distance to the next head, as far as this pack says.
        let mut d1 = 0u32;
        let mut last = lo;
        let mut i = slot;
        let mut ended = false;
        while i < vcnt {
            let (l, t) = bits(i);
            if t != LCLUSTER_TYPE_NONHEAD {
                ended = true;
                break;
            }
            last = l;
            d1 += 1;
            i += 1;
        }
        if !ended && last & cblkcnt == 0 {
            d1 += last.saturating_sub(1);
        }
        let d1 = d1.min(u32::from(u16::MAX)) as u16;
        if lo & cblkcnt != 0 {
            if !big_pcluster {
                return Err(bad("delta[0]", "block count without big pclusters"));
            }
            return Ok(Lcluster {
                kind,
                delta: [1, d1],
                compressed_blocks: Some((lo & !cblkcnt) as u16),
                ..Lcluster::default()
            });
        }
        let d0 = if slot + 1 != vcnt {
            lo
        } else {
            // The last slot of a pack stores delta[1]; delta[0] comes from the one before.
            let (prev, t) = bits(slot - 1);
            let p = if t != LCLUSTER_TYPE_NONHEAD {
                0
            } else if prev & cblkcnt != 0 {
                1
            } else {
                prev
            };
            p + 1
        };
        return Ok(Lcluster {
            kind,
            delta: [d0.min(u32::from(u16::MAX)) as u16, d1],
            ..Lcluster::default()
        });
    }
    if lo >= 1 << lclusterbits {
        return Err(bad("clusterofs", "not inside the lcluster"));
    }
    let mut i = slot as isize;
    let nblk: u32 = if !big_pcluster {
        let mut n = 1u32;
        while i > 0 {
            i -= 1;
            let (l, t) = bits(i as usize);
            if t == LCLUSTER_TYPE_NONHEAD {
                i -= l as isize;
            }
            if i >= 0 {
                n += 1;
            }
        }
        n
    } else {
        let mut n = 0u32;
        while i > 0 {
            i -= 1;
            let (l, t) = bits(i as usize);
            if t == LCLUSTER_TYPE_NONHEAD {
                if l & cblkcnt != 0 {
                    i -= 1;
                    n += l & !cblkcnt;
                    continue;
                }
                if l <= 1 {
                    return Err(bad("delta[0]", "a big pcluster's NONHEAD with distance 1"));
                }
                i -= l as isize - 2;
                continue;
            }
            n += 1;
        }
        n
    };
    let base = le_u32(pack, pack.len() - 4);
    let pblk = base
        .checked_add(nblk)
        .ok_or(bad("blkaddr", "block address overflows"))?;
    Ok(Lcluster {
        kind,
        clusterofs: lo as u16,
        pblk,
        ..Lcluster::default()
    })
}

/// Encodes full indexes `full` (one per lcluster, heads' block addresses consecutive from
/// `pstart_blk` on, as a non-deduplicated file has them) as compact indexes starting at
/// absolute offset `ebase`, the way `mkfs.erofs` converts them: 2-byte slots when
/// `compacted_2b` (lcluster size at most 4 KiB), block counts when `big_pcluster`.
/// Returns the pack bytes ([`CompactLayout::encoded_len`] of them).
pub fn encode_compact(
    full: &[LclusterIndex],
    ebase: u64,
    lclusterbits: u32,
    compacted_2b: bool,
    big_pcluster: bool,
    pstart_blk: u32,
) -> std::result::Result<Vec<u8>, &'static str> {
    if lclusterbits > 14 {
        return Err("compact indexes need lclusters of at most 16 KiB");
    }
    if compacted_2b && lclusterbits > 12 {
        return Err("compact 2-byte indexes need lclusters of at most 4 KiB");
    }
    let total = full.len() as u64;
    let layout = CompactLayout::new(ebase, total, compacted_2b);
    let (initial, c2b) = if !compacted_2b || layout.initial_4b > total {
        (0, 0)
    } else {
        (layout.initial_4b as usize, layout.compacted_2b as usize)
    };
    let mut out = Vec::with_capacity(layout.encoded_len() as usize);
    let mut blkaddr = pstart_blk;
    let mut dummy_head = false;
    if !big_pcluster {
        blkaddr = blkaddr.wrapping_sub(1);
        dummy_head = true;
    }
    let mut rest = full;
    let mut emit = |n: usize, unit: usize, rest: &mut &[LclusterIndex]| {
        let mut cv = [LclusterIndex::default(); 16];
        let take = n.min(rest.len());
        cv[..take].copy_from_slice(&rest[..take]);
        *rest = &rest[take..];
        write_pack(
            &mut out,
            &cv[..n],
            &mut blkaddr,
            unit,
            lclusterbits,
            &mut dummy_head,
            big_pcluster,
        );
    };
    for _ in 0..initial / 2 {
        emit(2, 4, &mut rest);
    }
    for _ in 0..c2b / 16 {
        emit(16, 2, &mut rest);
    }
    while !rest.is_empty() {
        emit(2, 4, &mut rest);
    }
    Ok(out)
}

fn write_pack(
    out: &mut Vec<u8>,
    cv: &[LclusterIndex],
    blkaddr_ret: &mut u32,
    unit: usize,
    lclusterbits: u32,
    dummy_head: &mut bool,
    mut update_blkaddr: bool,
) {
    let vcnt = cv.len();
    let lobits = lclusterbits.max(12);
    let encodebits = (vcnt * unit * 8 - 32) / vcnt;
    let mut blkaddr = *blkaddr_ret;
    let mut pack = vec![0u8; vcnt * unit + 2];
    let mut pos = 0usize;
    for (i, c) in cv.iter().enumerate() {
        let kind = c.kind();
        let offset = if kind == LCLUSTER_TYPE_NONHEAD {
            let [d0, d1] = c.delta();
            if d0 & LI_D0_CBLKCNT != 0 {
                blkaddr = blkaddr.wrapping_add(u32::from(d0 & !LI_D0_CBLKCNT));
                *dummy_head = false;
                u32::from(d0)
            } else if i + 1 == vcnt {
                u32::from(d1.min(LI_D0_CBLKCNT - 1))
            } else {
                u32::from(d0)
            }
        } else {
            if *dummy_head {
                blkaddr = blkaddr.wrapping_add(1);
                if update_blkaddr {
                    *blkaddr_ret = blkaddr;
                }
            }
            *dummy_head = true;
            update_blkaddr = false;
            u32::from(c.clusterofs)
        };
        let v = u32::from(kind) << lobits | offset;
        let rem = pos & 7;
        let byte = pos / 8;
        pack[byte] = (v << rem) as u8 | (pack[byte] & ((1u8 << rem) - 1));
        pack[byte + 1] = (v >> (8 - rem)) as u8;
        pack[byte + 2] = (v >> (16 - rem)) as u8;
        pos += encodebits;
    }
    pack.truncate(vcnt * unit);
    let n = pack.len();
    pack[n - 4..].copy_from_slice(&blkaddr_ret.to_le_bytes());
    *blkaddr_ret = blkaddr;
    out.extend_from_slice(&pack);
}

/// One per-algorithm configuration record after the superblock (`COMPR_CFGS`): for each
/// bit of `available_compr_algs`, in algorithm order, a 16-bit length and the payload;
/// records start 4-byte aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "algorithm", rename_all = "lowercase")]
pub enum CompressionConfig {
    /// `struct z_erofs_lz4_cfgs` (14 bytes).
    Lz4 {
        /// `max_distance`: the LZ4 window.
        max_distance: u16,
        /// `max_pclusterblks`: the largest pcluster in blocks.
        max_pclusterblks: u16,
    },
    /// `struct z_erofs_lzma_cfgs` (14 bytes).
    Lzma {
        /// `dict_size`.
        dict_size: u32,
        /// `format` (0: MicroLZMA).
        format: u16,
    },
    /// `struct z_erofs_deflate_cfgs` (6 bytes).
    Deflate {
        /// `windowbits` (8..=15).
        windowbits: u8,
    },
    /// `struct z_erofs_zstd_cfgs` (6 bytes).
    Zstd {
        /// `format`.
        format: u8,
        /// `windowlog`: the window log minus 10.
        windowlog: u8,
    },
}

impl CompressionConfig {
    /// The `COMPRESSION_*` id.
    pub fn algorithm(&self) -> u8 {
        match self {
            Self::Lz4 { .. } => COMPRESSION_LZ4,
            Self::Lzma { .. } => COMPRESSION_LZMA,
            Self::Deflate { .. } => COMPRESSION_DEFLATE,
            Self::Zstd { .. } => COMPRESSION_ZSTD,
        }
    }

    /// The payload (without the length field).
    pub fn payload(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(14);
        match *self {
            Self::Lz4 {
                max_distance,
                max_pclusterblks,
            } => {
                b.extend_from_slice(&max_distance.to_le_bytes());
                b.extend_from_slice(&max_pclusterblks.to_le_bytes());
                b.resize(14, 0);
            }
            Self::Lzma { dict_size, format } => {
                b.extend_from_slice(&dict_size.to_le_bytes());
                b.extend_from_slice(&format.to_le_bytes());
                b.resize(14, 0);
            }
            Self::Deflate { windowbits } => {
                b.push(windowbits);
                b.resize(6, 0);
            }
            Self::Zstd { format, windowlog } => {
                b.extend_from_slice(&[format, windowlog]);
                b.resize(6, 0);
            }
        }
        b
    }

    /// Parses the payload of algorithm `alg`'s record (read at absolute offset `at`).
    pub fn parse(alg: u8, p: &[u8], at: u64) -> Result<Self> {
        let short = || {
            malformed(
                "EROFS compression config",
                "size",
                at,
                "shorter than the algorithm's record",
            )
        };
        Ok(match alg {
            COMPRESSION_LZ4 => {
                let p = p.get(..4).ok_or_else(short)?;
                Self::Lz4 {
                    max_distance: le_u16(p, 0),
                    max_pclusterblks: le_u16(p, 2),
                }
            }
            COMPRESSION_LZMA => {
                let p = p.get(..6).ok_or_else(short)?;
                Self::Lzma {
                    dict_size: le_u32(p, 0),
                    format: le_u16(p, 4),
                }
            }
            COMPRESSION_DEFLATE => Self::Deflate {
                windowbits: *p.first().ok_or_else(short)?,
            },
            COMPRESSION_ZSTD => {
                let p = p.get(..2).ok_or_else(short)?;
                Self::Zstd {
                    format: p[0],
                    windowlog: p[1],
                }
            }
            _ => {
                return Err(malformed(
                    "EROFS superblock",
                    "available_compr_algs",
                    at,
                    "unknown compression algorithm",
                ));
            }
        })
    }

    /// Parses the records of every algorithm in `algs` (a bitmap) from `b`, the bytes right
    /// after the superblock and its extension slots (absolute offset `at`).
    pub fn parse_all(b: &[u8], algs: u16, at: u64) -> Result<Vec<Self>> {
        let mut out = Vec::new();
        let mut off = 0usize;
        for alg in 0..16u8 {
            if algs & (1 << alg) == 0 {
                continue;
            }
            off = off.next_multiple_of(4);
            let pos = at + off as u64;
            let len = b.get(off..off + 2).map(|l| le_u16(l, 0)).ok_or(malformed(
                "EROFS compression config",
                "size",
                pos,
                "truncated",
            ))?;
            let p = b.get(off + 2..off + 2 + usize::from(len)).ok_or(malformed(
                "EROFS compression config",
                "size",
                pos,
                "runs past the superblock block",
            ))?;
            out.push(Self::parse(alg, p, pos)?);
            off += 2 + usize::from(len);
        }
        Ok(out)
    }

    /// Encodes records for `cfgs` (in algorithm order), each 4-byte aligned.
    pub fn encode_all(cfgs: &[Self]) -> Vec<u8> {
        let mut out = Vec::new();
        for c in cfgs {
            out.resize(out.len().next_multiple_of(4), 0);
            let p = c.payload();
            out.extend_from_slice(&(p.len() as u16).to_le_bytes());
            out.extend_from_slice(&p);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_header_round_trip_and_fragments() {
        let h = MapHeader {
            fragmentoff: 0x0123_0000,
            advise: ADVISE_COMPACTED_2B | ADVISE_INLINE_PCLUSTER,
            algorithmtype: 0x31,
            clusterbits: 2,
        };
        let b = h.to_bytes();
        assert_eq!(MapHeader::parse(&b, 0).unwrap(), h);
        assert_eq!(h.idata_size(), 0x123);
        assert_eq!(h.lclusterbits(12), 14);
        assert_eq!((h.algorithm(false), h.algorithm(true)), (1, 3));
        assert_eq!(h.whole_file_fragment(), None);
        let f = MapHeader::for_whole_file_fragment(0x1_2345_6789);
        assert_eq!(f.whole_file_fragment(), Some(0x1_2345_6789));
        assert_eq!(
            MapHeader::parse(&f.to_bytes(), 0)
                .unwrap()
                .whole_file_fragment(),
            Some(0x1_2345_6789)
        );
        for n in 0..MapHeader::SIZE {
            assert!(MapHeader::parse(&b[..n], 0).is_err());
        }
        assert_eq!(full_index_offset(32 + 12), 64);
        assert_eq!(compact_index_offset(64), 72);
    }

    #[test]
    fn full_index_round_trip_and_decode() {
        let head = LclusterIndex::head(LCLUSTER_TYPE_HEAD1, 100, 77, true);
        let cnt = LclusterIndex::nonhead(LI_D0_CBLKCNT | 3, 2);
        let non = LclusterIndex::nonhead(2, 1);
        for x in [head, cnt, non] {
            assert_eq!(LclusterIndex::parse(&x.to_bytes(), 0).unwrap(), x);
            for n in 0..8 {
                assert!(LclusterIndex::parse(&x.to_bytes()[..n], 0).is_err());
            }
        }
        let h = head.decode(12, true, 0).unwrap();
        assert!(h.is_head() && h.partial_ref);
        assert_eq!((h.clusterofs, h.pblk), (100, 77));
        let c = cnt.decode(12, true, 0).unwrap();
        assert_eq!((c.delta, c.compressed_blocks), ([1, 2], Some(3)));
        assert!(cnt.decode(12, false, 0).is_err());
        assert_eq!(non.decode(12, false, 0).unwrap().delta, [2, 1]);
        assert!(
            LclusterIndex::head(LCLUSTER_TYPE_PLAIN, 4096, 1, false)
                .decode(12, false, 0)
                .is_err()
        );
    }

    /// A file of pclusters given as (head type, clusterofs, logical lclusters, blocks):
    /// its full indexes with consecutive block addresses from `start`.
    fn full_indexes(parts: &[(u8, u16, u16, u16)], start: u32, big: bool) -> Vec<LclusterIndex> {
        let mut v = Vec::new();
        let mut blk = start;
        for &(kind, ofs, lcs, blocks) in parts {
            v.push(LclusterIndex::head(kind, ofs, blk, false));
            for d0 in 1..lcs {
                let d1 = lcs - d0;
                if d0 == 1 && big {
                    v.push(LclusterIndex::nonhead(LI_D0_CBLKCNT | blocks, d1));
                } else {
                    v.push(LclusterIndex::nonhead(d0, d1));
                }
            }
            blk += u32::from(blocks);
        }
        v
    }

    #[test]
    fn compact_encodes_what_it_decodes() {
        for big in [false, true] {
            for two in [false, true] {
                for ebase in [72u64, 80, 88, 96] {
                    let parts: Vec<(u8, u16, u16, u16)> = (0..40u16)
                        .map(|k| {
                            let lcs = 1 + k % 5;
                            let blocks = if big { 1 + k % lcs } else { 1 };
                            let kind = if k % 7 == 3 {
                                LCLUSTER_TYPE_PLAIN
                            } else {
                                LCLUSTER_TYPE_HEAD1
                            };
                            (kind, if k == 0 { 0 } else { k * 13 % 4096 }, lcs, blocks)
                        })
                        .collect();
                    let full = full_indexes(&parts, 1000, big);
                    let enc = encode_compact(&full, ebase, 12, two, big, 1000).unwrap();
                    let layout = CompactLayout::new(ebase, full.len() as u64, two);
                    assert_eq!(
                        enc.len() as u64,
                        layout.encoded_len(),
                        "{big} {two} {ebase}"
                    );
                    for (lcn, want) in full.iter().enumerate() {
                        let s = layout.locate(lcn as u64).unwrap();
                        let off = (s.pack - ebase) as usize;
                        let pack = &enc[off..off + s.pack_len];
                        let got = decode_compact(pack, s.slot, 12, big, s.pack).unwrap();
                        let want = want.decode(12, big, 0).unwrap();
                        assert_eq!(got.kind, want.kind, "{lcn}");
                        if want.is_head() {
                            assert_eq!((got.clusterofs, got.pblk), (want.clusterofs, want.pblk));
                        } else {
                            assert_eq!(got.delta[0], want.delta[0], "{lcn} {big} {two}");
                            assert_eq!(got.compressed_blocks, want.compressed_blocks);
                        }
                    }
                    assert!(layout.locate(full.len() as u64).is_none());
                }
            }
        }
    }

    proptest::proptest! {
        /// Any file of consecutive pclusters: compact encoding decodes to what its full
        /// indexes say, at every alignment, with and without 2-byte slots and big pclusters.
        #[test]
        fn compact_round_trips(
            parts in proptest::collection::vec((proptest::bool::ANY, 0u16..4096, 1u16..8, 1u16..8), 1..120),
            big in proptest::bool::ANY,
            two in proptest::bool::ANY,
            align in 0u64..4,
        ) {
            let parts: Vec<(u8, u16, u16, u16)> = parts
                .iter()
                .enumerate()
                .map(|(k, &(plain, ofs, lcs, blocks))| {
                    let kind = if plain { LCLUSTER_TYPE_PLAIN } else { LCLUSTER_TYPE_HEAD1 };
                    let blocks = if big && lcs > 1 { blocks.min(lcs) } else { 1 };
                    (kind, if k == 0 { 0 } else { ofs }, lcs, blocks)
                })
                .collect();
            let full = full_indexes(&parts, 77, big);
            let ebase = 64 + 8 * align;
            let enc = encode_compact(&full, ebase, 12, two, big, 77).unwrap();
            let layout = CompactLayout::new(ebase, full.len() as u64, two);
            proptest::prop_assert_eq!(enc.len() as u64, layout.encoded_len());
            for (lcn, want) in full.iter().enumerate() {
                let s = layout.locate(lcn as u64).unwrap();
                let off = (s.pack - ebase) as usize;
                let got = decode_compact(&enc[off..off + s.pack_len], s.slot, 12, big, 0).unwrap();
                let want = want.decode(12, big, 0).unwrap();
                proptest::prop_assert_eq!(got.kind, want.kind);
                if want.is_head() {
                    proptest::prop_assert_eq!((got.clusterofs, got.pblk), (want.clusterofs, want.pblk));
                } else {
                    proptest::prop_assert_eq!(got.delta[0], want.delta[0]);
                    proptest::prop_assert_eq!(got.compressed_blocks, want.compressed_blocks);
                }
            }
        }

        /// Map headers and full indexes: every 8 bytes parse and encode back to themselves.
        #[test]
        fn header_and_index_bytes_round_trip(b in proptest::array::uniform8(0u8..)) {
            proptest::prop_assert_eq!(MapHeader::parse(&b, 0).unwrap().to_bytes(), b);
            proptest::prop_assert_eq!(LclusterIndex::parse(&b, 0).unwrap().to_bytes(), b);
        }
    }

    #[test]
    fn compact_rejects_bad_packs() {
        assert!(decode_compact(&[0; 8], 2, 12, false, 0).is_err());
        assert!(decode_compact(&[0; 32], 0, 13, false, 0).is_err());
        assert!(decode_compact(&[0; 7], 0, 12, false, 0).is_err());
        // A NONHEAD claiming a block count without big pclusters.
        let v = u32::from(LCLUSTER_TYPE_NONHEAD) << 12 | u32::from(LI_D0_CBLKCNT) | 2;
        let mut p = [0u8; 8];
        p[..2].copy_from_slice(&(v as u16).to_le_bytes());
        assert!(decode_compact(&p, 0, 12, false, 0).is_err());
        assert!(decode_compact(&p, 0, 12, true, 0).is_ok());
        // A head past the end of its lcluster (lobits 12 > lclusterbits 9).
        let mut p = [0u8; 8];
        p[..2].copy_from_slice(&(u16::from(LCLUSTER_TYPE_HEAD1) << 12 | 600).to_le_bytes());
        assert!(decode_compact(&p, 0, 9, false, 0).is_err());
    }

    #[test]
    fn configs_round_trip() {
        let cfgs = [
            CompressionConfig::Lz4 {
                max_distance: 65535,
                max_pclusterblks: 16,
            },
            CompressionConfig::Lzma {
                dict_size: 1 << 20,
                format: 0,
            },
            CompressionConfig::Deflate { windowbits: 15 },
            CompressionConfig::Zstd {
                format: 0,
                windowlog: 7,
            },
        ];
        let b = CompressionConfig::encode_all(&cfgs);
        assert_eq!(b.len(), 16 + 16 + 8 + 8);
        assert_eq!(CompressionConfig::parse_all(&b, 0xf, 1152).unwrap(), cfgs);
        assert_eq!(
            CompressionConfig::parse_all(&b[..16], 0x1, 1152).unwrap(),
            cfgs[..1]
        );
        for n in 0..b.len() {
            assert!(
                CompressionConfig::parse_all(&b[..n], 0xf, 1152).is_err(),
                "{n}"
            );
        }
        assert!(CompressionConfig::parse_all(&b, 0x10, 1152).is_err());
        assert_eq!(compression_name(COMPRESSION_ZSTD), Some("zstd"));
    }
}
