//! Encoding the compressed-file map (`erofs_fs.h`): the 8-byte `z_erofs_map_header` after
//! the inode and its xattrs (8-aligned), then the logical-cluster indexes, either full (8
//! bytes each, `struct z_erofs_lcluster_index`, after 8 reserved bytes) or compact (packs of
//! two 4-byte or sixteen 2-byte entries, each pack ending in the block address of its first
//! head, the pclusters of the file following each other on disk).
//!
//! One index per logical cluster: a head (`HEAD1`, or `PLAIN` for stored data) where an
//! extent starts, with the extent's offset in that cluster; a `NONHEAD` for each further
//! cluster it covers, holding the distances back to its head and on to the next one, the
//! first of them holding the pcluster's block count instead (`D0_CBLKCNT`) when big
//! pclusters are on. A trailing `PLAIN` index closes a last cluster that no extent starts in.

/// `Z_EROFS_LCLUSTER_TYPE_PLAIN`.
pub(super) const LC_PLAIN: u8 = 0;
/// `Z_EROFS_LCLUSTER_TYPE_HEAD1`.
pub(super) const LC_HEAD1: u8 = 1;
/// `Z_EROFS_LCLUSTER_TYPE_NONHEAD`.
pub(super) const LC_NONHEAD: u8 = 2;
/// `Z_EROFS_LI_D0_CBLKCNT`.
const D0_CBLKCNT: u16 = 1 << 11;

/// `h_advise` bits.
pub(super) const ADVISE_COMPACTED_2B: u16 = 0x0001;
pub(super) const ADVISE_BIG_PCLUSTER_1: u16 = 0x0002;
pub(super) const ADVISE_BIG_PCLUSTER_2: u16 = 0x0004;
pub(super) const ADVISE_INLINE_PCLUSTER: u16 = 0x0008;
pub(super) const ADVISE_FRAGMENT_PCLUSTER: u16 = 0x0020;

/// One extent of a compressed file, in file order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ZExtent {
    /// Decompressed bytes.
    pub length: u32,
    /// Physical bytes (whole blocks; 0 for a fragment in the packed inode).
    pub plen: u32,
    /// Stored, not compressed.
    pub raw: bool,
    /// Block address of the pcluster (set when it is written).
    pub blkaddr: u32,
    /// Its pcluster is in the data area at `blkaddr` (not a fragment, not kept inline).
    pub on_disk: bool,
}

/// One logical-cluster index, before encoding.
#[derive(Debug, Clone, Copy, Default)]
struct Lcluster {
    ty: u8,
    clusterofs: u16,
    delta: [u16; 2],
    /// A head's pcluster address, and whether the address matters (an on-disk pcluster).
    blkaddr: u32,
    real: bool,
}

/// The indexes of `extents` (the order erofs-utils writes them).
fn lclusters(extents: &[ZExtent], bbits: u32, big_pcluster: bool) -> Vec<Lcluster> {
    let mut out = Vec::new();
    let lcsize = 1u32 << bbits;
    let mut cur = 0u32; // offset in the current logical cluster
    for e in extents {
        let start_ofs = cur as u16;
        let mut clusterofs = cur;
        let mut count = e.length;
        let mut d0 = 0u32;
        let mut d1 = (clusterofs + count) >> bbits;
        let head = if e.raw { LC_PLAIN } else { LC_HEAD1 };
        // A fragment's head holds the high half of the fragment offset (0 below 4 GiB).
        let blkaddr = if e.plen == 0 { 0 } else { e.blkaddr };
        if d1 == 0 {
            // The tail extent, inside one cluster.
            out.push(Lcluster {
                ty: head,
                clusterofs: cur as u16,
                blkaddr,
                real: e.on_disk,
                ..Lcluster::default()
            });
            cur = 0;
            continue;
        }
        loop {
            let lc = if d0 == 1 && big_pcluster {
                Lcluster {
                    ty: LC_NONHEAD,
                    clusterofs: start_ofs,
                    delta: [(e.plen >> bbits) as u16 | D0_CBLKCNT, d1 as u16],
                    ..Lcluster::default()
                }
            } else if d0 > 0 {
                Lcluster {
                    ty: LC_NONHEAD,
                    clusterofs: start_ofs,
                    delta: [d0.min(u32::from(D0_CBLKCNT) - 1) as u16, d1 as u16],
                    ..Lcluster::default()
                }
            } else {
                Lcluster {
                    ty: head,
                    clusterofs: start_ofs,
                    blkaddr,
                    real: e.on_disk,
                    ..Lcluster::default()
                }
            };
            out.push(lc);
            count -= lcsize - clusterofs;
            clusterofs = 0;
            d0 += 1;
            d1 = d1.saturating_sub(1);
            if clusterofs + count < lcsize {
                break;
            }
        }
        cur = clusterofs + count;
    }
    if cur != 0 {
        out.push(Lcluster {
            ty: LC_PLAIN,
            clusterofs: cur as u16,
            ..Lcluster::default()
        });
    }
    out
}

/// The 8-byte map header.
pub(super) fn map_header(
    advise: u16,
    alg: u8,
    lclusterbits_minus_blk: u8,
    idata: u16,
    fragmentoff: Option<u32>,
) -> [u8; 8] {
    let mut h = [0u8; 8];
    match fragmentoff {
        Some(off) => h[..4].copy_from_slice(&off.to_le_bytes()),
        None => h[2..4].copy_from_slice(&idata.to_le_bytes()),
    }
    h[4..6].copy_from_slice(&advise.to_le_bytes());
    h[6] = alg;
    h[7] = lclusterbits_minus_blk;
    h
}

/// The map header of a file stored whole in the packed inode.
pub(super) fn whole_fragment_header(fragmentoff: u64) -> [u8; 8] {
    (fragmentoff | 1 << 63).to_le_bytes()
}

/// The number of logical clusters of a `size`-byte file.
pub(super) fn lcluster_count(size: u64, bbits: u32) -> u64 {
    size.div_ceil(1 << bbits)
}

/// The byte length of the compact indexes for `total` clusters when the map header ends at
/// `mpos` bytes after the (32-aligned) inode start.
pub(super) fn compact_len(total: u64, mpos: u64, two_byte: bool) -> u64 {
    let (initial, two, end) = compact_split(total, mpos, two_byte);
    initial * 4 + two * 2 + end.next_multiple_of(2) * 4
}

pub(super) fn compact_split(total: u64, mpos: u64, two_byte: bool) -> (u64, u64, u64) {
    if !two_byte {
        return (0, 0, total);
    }
    let mut initial = (32 - mpos % 32) / 4;
    if initial == 8 {
        initial = 0;
    }
    if initial > total {
        return (0, 0, total);
    }
    let two = (total - initial) / 16 * 16;
    (initial, two, total - initial - two)
}

/// Which compact indexes a file with `bbits`-bit logical clusters takes, as mkfs.erofs
/// chooses them: with 4 KiB lclusters two-byte packs of sixteen, with four-byte packs
/// around them (`Some(true)`); with 8 or 16 KiB four-byte packs alone (`Some(false)`). The
/// kernel reads two-byte packs for 4 KiB lclusters only and compact indexes up to 16 KiB
/// (`z_erofs_load_compact_lcluster`): larger blocks take full indexes (`None`).
pub(super) fn compact_form(bbits: u32) -> Option<bool> {
    match bbits {
        12 => Some(true),
        13 | 14 => Some(false),
        _ => None,
    }
}

/// Compact indexes (without the map header) for `extents`, the first pcluster at block
/// `start`. Each pack stores one base address, and the kernel derives every head's address
/// in the pack from it and the block counts before it; a pack's base follows the heads'
/// real addresses, so pclusters may jump between packs (a packed inode written in pieces),
/// never inside one. `None` when the addresses cannot be said this way: use [`full_indexes`].
pub(super) fn compact_indexes(
    extents: &[ZExtent],
    bbits: u32,
    big_pcluster: bool,
    mpos: u64,
    two_byte: bool,
    start: u32,
) -> Option<Vec<u8>> {
    let lcs = lclusters(extents, bbits, big_pcluster);
    let (mut initial, mut two, mut end) = compact_split(lcs.len() as u64, mpos, two_byte);
    let mut out = Vec::new();
    let mut blkaddr = start;
    let mut dummy_head = false;
    if !big_pcluster {
        blkaddr = blkaddr.wrapping_sub(1);
        dummy_head = true;
    }
    let mut st = PackState {
        blkaddr,
        dummy_head,
        big_pcluster,
        bbits,
        lobits: bbits.max(12),
    };
    let mut it = lcs.into_iter();
    let mut take = |n: usize| -> Vec<Lcluster> {
        let mut v: Vec<Lcluster> = it.by_ref().take(n).collect();
        v.resize(n, Lcluster::default());
        v
    };
    while initial > 0 {
        st.pack(&mut out, &take(2), 4)?;
        initial -= 2;
    }
    while two > 0 {
        st.pack(&mut out, &take(16), 2)?;
        two -= 16;
    }
    while end > 0 {
        st.pack(&mut out, &take(2), 4)?;
        end = end.saturating_sub(2);
    }
    Some(out)
}

/// Full indexes (without the map header and the 8 bytes after it): 8 bytes per logical
/// cluster, each head with its own block address, so pclusters may be anywhere (shared
/// with other files by dedupe).
pub(super) fn full_indexes(extents: &[ZExtent], bbits: u32, big_pcluster: bool) -> Vec<u8> {
    let lcs = lclusters(extents, bbits, big_pcluster);
    let mut out = Vec::with_capacity(lcs.len() * 8);
    for c in lcs {
        out.extend_from_slice(&u16::from(c.ty).to_le_bytes());
        if c.ty == LC_NONHEAD {
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(&c.delta[0].to_le_bytes());
            out.extend_from_slice(&c.delta[1].to_le_bytes());
        } else {
            out.extend_from_slice(&c.clusterofs.to_le_bytes());
            out.extend_from_slice(&c.blkaddr.to_le_bytes());
        }
    }
    out
}

/// The byte length of full indexes for `total` clusters.
pub(super) fn full_len(total: u64) -> u64 {
    total * 8
}

struct PackState {
    blkaddr: u32,
    dummy_head: bool,
    big_pcluster: bool,
    bbits: u32,
    lobits: u32,
}

impl PackState {
    fn pack(&mut self, out: &mut Vec<u8>, cv: &[Lcluster], destsize: usize) -> Option<()> {
        let vcnt = cv.len();
        let encodebits = (vcnt * destsize * 8 - 32) / vcnt;
        let mut stored = self.blkaddr;
        let mut update = self.big_pcluster;
        let mut blkaddr = self.blkaddr;
        let mut buf = vec![0u8; vcnt * destsize];
        let mut pos = 0usize;
        for (i, c) in cv.iter().enumerate() {
            let offset: u32;
            if c.ty == LC_NONHEAD {
                if c.delta[0] & D0_CBLKCNT != 0 {
                    let cblks = c.delta[0] & !D0_CBLKCNT;
                    offset = u32::from(c.delta[0]);
                    blkaddr = blkaddr.wrapping_add(u32::from(cblks));
                    self.dummy_head = false;
                } else if i + 1 == vcnt {
                    offset = u32::from(c.delta[1].min(D0_CBLKCNT - 1));
                } else {
                    offset = u32::from(c.delta[0]);
                }
            } else {
                offset = u32::from(c.clusterofs);
                if self.dummy_head {
                    blkaddr = blkaddr.wrapping_add(1);
                    if update {
                        stored = blkaddr;
                    }
                }
                self.dummy_head = true;
                update = false;
            }
            let v = (u32::from(c.ty) << self.lobits) | offset;
            let bits = u64::from(v) << (pos % 8);
            for k in 0..3 {
                if let Some(b) = buf.get_mut(pos / 8 + k) {
                    *b |= (bits >> (8 * k)) as u8;
                }
            }
            pos += encodebits;
        }
        let n = buf.len();
        let set_base = |buf: &mut [u8], base: u32| {
            if let Some(tail) = buf.get_mut(n - 4..) {
                tail.copy_from_slice(&base.to_le_bytes());
            }
        };
        set_base(&mut buf, stored);
        // The address the kernel derives for each on-disk head must be its own: move the
        // base by the first one's difference (a jump), then every other must agree.
        let derived = |buf: &[u8], slot: usize| {
            crate::erofs::raw::decode_compact(buf, slot, self.bbits, self.big_pcluster, 0)
                .ok()
                .map(|l| l.pblk)
        };
        let (mut settled, mut jump) = (false, 0u32);
        for (slot, c) in cv.iter().enumerate() {
            if c.ty == LC_NONHEAD || !c.real {
                continue;
            }
            let got = derived(&buf, slot)?;
            if got != c.blkaddr {
                if settled {
                    return None;
                }
                jump = c.blkaddr.wrapping_sub(got);
                stored = stored.wrapping_add(jump);
                set_base(&mut buf, stored);
                if derived(&buf, slot)? != c.blkaddr {
                    return None;
                }
            }
            settled = true;
        }
        let blkaddr = blkaddr.wrapping_add(jump);
        self.blkaddr = blkaddr;
        out.extend_from_slice(&buf);
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(length: u32, plen: u32, raw: bool, blkaddr: u32) -> ZExtent {
        ZExtent {
            length,
            plen,
            raw,
            blkaddr,
            on_disk: true,
        }
    }

    #[test]
    fn one_index_per_cluster() {
        // 10000 bytes: a compressed extent of 9000 (1 block), then a raw tail of 1000.
        let e = [ext(9000, 4096, false, 10), ext(1000, 4096, true, 11)];
        let lcs = lclusters(&e, 12, false);
        assert_eq!(lcs.len(), 3);
        assert_eq!(lcs[0].ty, LC_HEAD1);
        assert_eq!(lcs[1].ty, LC_NONHEAD);
        assert_eq!(lcs[1].delta, [1, 1]);
        assert_eq!(lcs[2].ty, LC_PLAIN);
        assert_eq!(lcs[2].clusterofs, 9000 - 8192);
        // Compact 4B: two packs of 8 bytes.
        let c = compact_indexes(&e, 12, false, 40, false, 10).unwrap();
        assert_eq!(c.len(), compact_len(3, 40, false) as usize);
        assert_eq!(c.len(), 16);
        // Without big pclusters a pack holds the block before its first head's.
        assert_eq!(u32::from_le_bytes(c[4..8].try_into().unwrap()), 9);
        assert_eq!(u32::from_le_bytes(c[12..16].try_into().unwrap()), 10);
    }

    #[test]
    fn compact_two_byte_split() {
        // mpos 40: 6 four-byte entries reach the next 32-byte boundary.
        assert_eq!(compact_split(100, 40, true), (6, 80, 14));
        assert_eq!(compact_split(3, 40, true), (0, 0, 3));
        assert_eq!(compact_len(100, 40, true), 24 + 160 + 56);
    }

    #[test]
    fn compact_packs_say_jumps_at_their_starts_only() {
        // 20 extents of two clusters in one block each: heads at clusters 0, 2, .. 38.
        // With the map header ending at 40, clusters 0..6 sit in three 4-byte packs, then
        // 16-cluster packs start at 6 and 22.
        let at = |jump_from: usize| -> Vec<ZExtent> {
            (0..20)
                .map(|k| {
                    let blk = if k < jump_from { 100 + k } else { 500 + k };
                    ext(8192, 4096, false, blk as u32)
                })
                .collect()
        };
        // A jump where a pack starts (extent 11, cluster 22) is said by that pack's base.
        let c = compact_indexes(&at(11), 12, true, 40, true, 100).unwrap();
        let pack = |k: usize| &c[24 + 32 * k..24 + 32 * (k + 1)];
        let pblk = |k: usize, slot: usize| {
            crate::erofs::raw::decode_compact(pack(k), slot, 12, true, 0)
                .unwrap()
                .pblk
        };
        assert_eq!(pblk(0, 14), 110);
        assert_eq!(pblk(1, 0), 511);
        assert_eq!(pblk(1, 2), 512);
        // One inside a pack (extent 9, cluster 18) cannot be said.
        assert!(compact_indexes(&at(9), 12, true, 40, true, 100).is_none());
        // Full indexes say any address.
        let f = full_indexes(&at(9), 12, true);
        assert_eq!(f.len() as u64, full_len(40));
        assert_eq!(
            u32::from_le_bytes(f[8 * 18 + 4..8 * 18 + 8].try_into().unwrap()),
            509
        );
    }
}
