//! Mapping a compressed inode's content to its extents, as the kernel's `zmap.c` does: the
//! map header, full or compact indexes, heads found by looking back along `delta[0]`, the
//! extent's end at the next head, the pcluster's length from the first NONHEAD's block
//! count, the inline tail (ztailpacking) and the fragment in the packed inode.
//!
//! Every index read is bounded by the index count and the image; look-backs take at most
//! [`MAX_LOOKBACK_STEPS`] steps (a valid image needs one or two) and an extent decodes to
//! at most `Z_EROFS_PCLUSTER_MAX_DSIZE` bytes, so hostile indexes fail instead of looping
//! or allocating.

use super::{ErofsInode, ErofsReader};
use crate::erofs::decompress::Codec;
use crate::erofs::raw::{
    ADVISE_BIG_PCLUSTER_1, ADVISE_BIG_PCLUSTER_2, ADVISE_COMPACTED_2B, ADVISE_FRAGMENT_PCLUSTER,
    ADVISE_INLINE_PCLUSTER, ADVISE_INTERLACED_PCLUSTER, COMPRESSED_COMPACT, CompactLayout,
    FEATURE_INCOMPAT_BIG_PCLUSTER, LCLUSTER_TYPE_HEAD2, LCLUSTER_TYPE_PLAIN, Lcluster,
    LclusterIndex, MapHeader, PCLUSTER_MAX_DSIZE, PCLUSTER_MAX_SIZE, compact_index_offset,
    decode_compact, full_index_offset, malformed, map_header_offset,
};
use crate::error::{Error, Result};

/// Most `delta[0]` steps back to a head (valid images need at most a few).
pub(crate) const MAX_LOOKBACK_STEPS: u32 = 64;

#[derive(Debug, Clone, Copy)]
enum Form {
    /// Full indexes from this image offset.
    Full(u64),
    Compact(CompactLayout),
}

/// Where an extent's content comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// A pcluster at image offset `pa`, `plen` bytes, decoded by `codec`.
    Pcluster {
        /// Image offset (relative to the image start).
        pa: u64,
        /// Stored bytes.
        plen: u64,
        /// How they decode.
        codec: Codec,
    },
    /// The packed inode's content from this offset on.
    Fragment(u64),
}

/// One extent: content bytes `la..end` of the file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ZExtent {
    pub la: u64,
    pub end: u64,
    pub src: Source,
}

/// The map of one compressed inode, with a one-block cache of its index area.
pub(crate) struct ZMap<'r> {
    r: &'r ErofsReader,
    /// Absolute offset of the inode, for errors.
    at: u64,
    size: u64,
    bits: u32,
    nlcl: u64,
    header: MapHeader,
    form: Form,
    big1: bool,
    big2: bool,
    /// Head lcluster of the tail extent, when the inode has an inline or fragment tail.
    tail_head: Option<u64>,
    /// Inline pcluster: image offset and size.
    inline: Option<(u64, u64)>,
    fragment_off: Option<u64>,
    /// The whole file is in the packed inode, from this offset.
    pub whole_fragment: Option<u64>,
    block: Option<(u64, Vec<u8>)>,
}

impl<'r> ZMap<'r> {
    pub(crate) fn new(r: &'r ErofsReader, i: &ErofsInode) -> Result<Self> {
        let at = r.base + i.offset;
        let hpos = map_header_offset(i.inline_at());
        let hb = r.read(hpos, MapHeader::SIZE as u64, "EROFS z_erofs_map_header")?;
        let header = MapHeader::parse(&hb, r.base + hpos)?;
        let mut z = Self {
            r,
            at,
            size: i.size,
            bits: 0,
            nlcl: 0,
            header,
            form: Form::Full(0),
            big1: false,
            big2: false,
            tail_head: None,
            inline: None,
            fragment_off: None,
            whole_fragment: header.whole_file_fragment(),
            block: None,
        };
        if z.whole_fragment.is_some() {
            return Ok(z);
        }
        let bad =
            |field, reason| malformed("EROFS z_erofs_map_header", field, r.base + hpos, reason);
        let bits = header.lclusterbits(r.sb.blkszbits);
        if header.clusterbits & 0x78 != 0 || bits > 20 {
            return Err(bad(
                "h_clusterbits",
                "lcluster size over 1 MiB or reserved bits set",
            ));
        }
        z.bits = bits;
        z.nlcl = i.size.div_ceil(1 << bits);
        let advise = header.advise;
        z.big1 = advise & ADVISE_BIG_PCLUSTER_1 != 0;
        z.big2 = advise & ADVISE_BIG_PCLUSTER_2 != 0;
        if (z.big1 || z.big2) && r.sb.feature_incompat & FEATURE_INCOMPAT_BIG_PCLUSTER == 0 {
            return Err(bad(
                "h_advise",
                "big pclusters without the superblock feature",
            ));
        }
        z.form = if i.layout == COMPRESSED_COMPACT {
            if z.big1 != z.big2 {
                return Err(bad(
                    "h_advise",
                    "compact indexes with HEAD1 and HEAD2 big pclusters differing",
                ));
            }
            if bits > 14 {
                return Err(bad(
                    "h_clusterbits",
                    "compact indexes over 16 KiB lclusters",
                ));
            }
            let total = i.size.div_ceil(r.blksz);
            let layout = CompactLayout::new(
                compact_index_offset(i.inline_at()),
                total,
                advise & ADVISE_COMPACTED_2B != 0,
            );
            // Two-byte slots hold 12-bit cluster offsets (`unpack_compacted_index`).
            if layout.compacted_2b > 0 && bits != 12 {
                return Err(bad(
                    "h_advise",
                    "two-byte compact indexes over lclusters other than 4 KiB",
                ));
            }
            Form::Compact(layout)
        } else {
            Form::Full(full_index_offset(i.inline_at()))
        };
        if advise & (ADVISE_INLINE_PCLUSTER | ADVISE_FRAGMENT_PCLUSTER) != 0 && i.size > 0 {
            let last = (i.size - 1) >> bits;
            let (head_lcn, head) = z.head_of(i.size - 1)?;
            z.tail_head = Some(head_lcn);
            if advise & ADVISE_INLINE_PCLUSTER != 0 {
                // The inline pcluster follows the index (or pack) of the last lcluster.
                let next = match z.form {
                    Form::Full(start) => start + (last + 1) * LclusterIndex::SIZE as u64,
                    Form::Compact(l) => l
                        .locate(last)
                        .map(|s| s.pack + s.pack_len as u64)
                        .ok_or(bad("h_advise", "inline pcluster past the indexes"))?,
                };
                let n = u64::from(header.idata_size());
                if n == 0 || next % r.blksz + n > r.blksz {
                    return Err(bad(
                        "h_idata_size",
                        "inline pcluster empty or crossing a block",
                    ));
                }
                z.inline = Some((next, n));
            } else {
                let mut off = u64::from(header.fragmentoff);
                if matches!(z.form, Form::Full(_)) {
                    off |= u64::from(head.pblk) << 32;
                }
                z.fragment_off = Some(off);
                if head_lcn == 0 {
                    z.whole_fragment = Some(off);
                }
            }
        }
        Ok(z)
    }

    fn bad(&self, field: &'static str, reason: &'static str) -> Error {
        malformed("EROFS compressed inode", field, self.at, reason)
    }

    /// The index bytes at image offset `pos`, `len` bytes, inside one block.
    fn index_bytes(&mut self, pos: u64, len: usize) -> Result<&[u8]> {
        let blk = pos / self.r.blksz * self.r.blksz;
        if self.block.as_ref().is_none_or(|(b, _)| *b != blk) {
            let n = self.r.blksz.min(self.r.len.saturating_sub(blk));
            let data = self.r.read(blk, n, "EROFS lcluster index")?;
            self.block = Some((blk, data));
        }
        let off = (pos - blk) as usize;
        self.block
            .as_ref()
            .and_then(|(_, d)| d.get(off..off + len))
            .ok_or(Error::Truncated {
                structure: "EROFS lcluster index",
                offset: self.r.base + pos,
                needed: len as u64,
                available: 0,
            })
    }

    /// Decodes lcluster `lcn`.
    fn load(&mut self, lcn: u64) -> Result<Lcluster> {
        if lcn >= self.nlcl {
            return Err(self.bad("lcluster index", "past the last lcluster"));
        }
        let bits = self.bits;
        match self.form {
            Form::Full(start) => {
                let pos = start + lcn * LclusterIndex::SIZE as u64;
                let at = self.r.base + pos;
                let big = self.big1 || self.big2;
                let b = self.index_bytes(pos, LclusterIndex::SIZE)?;
                LclusterIndex::parse(b, at)?.decode(bits, big, at)
            }
            Form::Compact(l) => {
                let s = l
                    .locate(lcn)
                    .ok_or(self.bad("lcluster index", "past the compact indexes"))?;
                let at = self.r.base + s.pack;
                let big = self.big1;
                let pack = self.index_bytes(s.pack, s.pack_len)?;
                decode_compact(pack, s.slot, bits, big, at)
            }
        }
    }

    /// The head lcluster of the extent holding content byte `ofs`.
    fn head_of(&mut self, ofs: u64) -> Result<(u64, Lcluster)> {
        let mut lcn = ofs >> self.bits;
        let endoff = ofs & ((1 << self.bits) - 1);
        let m = self.load(lcn)?;
        let mut d = if m.is_head() {
            if endoff >= u64::from(m.clusterofs) {
                return Ok((lcn, m));
            }
            1
        } else {
            m.delta[0]
        };
        for _ in 0..MAX_LOOKBACK_STEPS {
            if d == 0 || u64::from(d) > lcn {
                return Err(self.bad("delta[0]", "bogus look-back distance"));
            }
            lcn -= u64::from(d);
            let m = self.load(lcn)?;
            if m.is_head() {
                return Ok((lcn, m));
            }
            d = m.delta[0];
        }
        Err(self.bad("delta[0]", "NONHEAD chain longer than a valid image has"))
    }

    /// The extent holding content byte `ofs` (below the size).
    pub(crate) fn extent_at(&mut self, ofs: u64) -> Result<ZExtent> {
        let (hl, head) = self.head_of(ofs)?;
        let la = hl << self.bits | u64::from(head.clusterofs);
        // The end: the next head, or the end of the file.
        let mut end = self.size;
        let mut lcn = hl + 1;
        let mut cblk = None;
        let limit = la + PCLUSTER_MAX_DSIZE;
        while lcn < self.nlcl && lcn << self.bits < limit.min(self.size) {
            let m = self.load(lcn)?;
            if lcn == hl + 1 {
                cblk = Some(m);
            }
            if m.is_head() {
                end = (lcn << self.bits | u64::from(m.clusterofs)).min(self.size);
                break;
            }
            lcn += u64::from(m.delta[1].max(1));
        }
        let is_tail = self.tail_head == Some(hl);
        // Only a fragment tail (content read from the packed inode as a stream) may be
        // longer than a decoded pcluster; an inline tail is a pcluster like any other (a
        // few KiB claiming a whole file's size would otherwise be decoded into one buffer).
        let fragment_tail = is_tail && self.inline.is_none() && self.fragment_off.is_some();
        if !fragment_tail && end - la > PCLUSTER_MAX_DSIZE {
            return Err(self.bad(
                "lcluster index",
                "extent longer than Z_EROFS_PCLUSTER_MAX_DSIZE",
            ));
        }
        if end <= la || end <= ofs {
            return Err(self.bad("di_clusterofs", "extent ends before it starts"));
        }
        let codec = match head.kind {
            LCLUSTER_TYPE_PLAIN => {
                if self.header.advise & ADVISE_INTERLACED_PCLUSTER != 0 {
                    Codec::Interlaced
                } else {
                    Codec::Shifted
                }
            }
            k => {
                let alg = self.header.algorithm(k == LCLUSTER_TYPE_HEAD2);
                if self.r.sb.compr_algs() & (1 << alg) == 0 {
                    return Err(
                        self.bad("h_algorithmtype", "algorithm the superblock does not list")
                    );
                }
                Codec::Compressed(alg)
            }
        };
        if is_tail {
            if let Some((pa, plen)) = self.inline {
                // mkfs.erofs stores an uncompressed inline tail as it is, never rotated, even
                // in an inode whose other plain pclusters are interlaced. (Linux 6.18 and
                // fsck.erofs 1.8.6 rotate it anyway and return bytes from beyond the tail,
                // e.g. the packed inode of `-Efragments,ztailpacking` images whose last
                // fragment does not compress; the bytes written are the file's.)
                let codec = if codec == Codec::Interlaced {
                    Codec::Shifted
                } else {
                    codec
                };
                if codec == Codec::Shifted && end - la > plen {
                    return Err(self.bad(
                        "h_idata_size",
                        "uncompressed inline tail shorter than its extent",
                    ));
                }
                return Ok(ZExtent {
                    la,
                    end,
                    src: Source::Pcluster { pa, plen, codec },
                });
            }
            if let Some(off) = self.fragment_off {
                return Ok(ZExtent {
                    la,
                    end,
                    src: Source::Fragment(off),
                });
            }
        }
        // The pcluster's block count (as erofs-utils 1.8 reads it: PLAIN heads follow HEAD2's
        // big-pcluster bit).
        let big = match head.kind {
            LCLUSTER_TYPE_PLAIN | LCLUSTER_TYPE_HEAD2 => self.big2,
            _ => self.big1,
        };
        let blocks = if !big || (hl + 1) << self.bits >= self.size {
            1
        } else {
            let m = match cblk {
                Some(m) => m,
                None => self.load(hl + 1)?,
            };
            if m.is_head() {
                1
            } else if m.delta[0] != 1 {
                return Err(self.bad("delta[0]", "bogus CBLKCNT after a big pcluster's head"));
            } else {
                u64::from(
                    m.compressed_blocks
                        .ok_or(self.bad("delta[0]", "no CBLKCNT after a big pcluster's head"))?,
                )
            }
        };
        let plen = blocks * self.r.blksz;
        if blocks == 0 || plen > PCLUSTER_MAX_SIZE {
            return Err(self.bad("delta[0]", "pcluster block count 0 or over 1 MiB"));
        }
        let pa = u64::from(head.pblk) * self.r.blksz;
        if pa.checked_add(plen).is_none_or(|e| e > self.r.len) {
            return Err(Error::Truncated {
                structure: "EROFS pcluster",
                offset: self.r.base + pa,
                needed: plen,
                available: self.r.len.saturating_sub(pa),
            });
        }
        if matches!(codec, Codec::Shifted | Codec::Interlaced) && end - la > plen {
            return Err(self.bad(
                "di_clusterofs",
                "uncompressed extent longer than its pcluster",
            ));
        }
        Ok(ZExtent {
            la,
            end,
            src: Source::Pcluster { pa, plen, codec },
        })
    }
}
