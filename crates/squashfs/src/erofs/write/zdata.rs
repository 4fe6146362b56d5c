//! Compressing one segment of a file into pclusters, as mkfs.erofs 1.8.6 decides them: each
//! pcluster takes as much input as compresses into `pcluster` bytes; a pcluster that saves no
//! whole block is stored instead (one block per extent); the last piece of a segment of at
//! most a block is stored; with fragments the last piece of a file (up to a pcluster) goes
//! to the packed inode when it compresses into less than a pcluster; with ztailpacking a last
//! piece that compresses into less than a block is kept for inline storage after the inode.

use super::fitblk::Fitter;
use super::zindex::ZExtent;
use crate::error::Result;

/// How much input one destination-size call sees at most: mkfs.erofs's queue (8000 KiB),
/// so a file up to that size that compresses into one pcluster can go whole into the
/// packed inode as it does there. A decoded pcluster stays below the kernel's 12 MiB.
const WINDOW: usize = 8000 << 10;

/// Per-build settings of the segment compressor.
#[derive(Debug, Clone, Copy)]
pub(super) struct ZConfig {
    pub blksz: u32,
    pub pcluster: u32,
    pub ztailpacking: bool,
    pub fragments: bool,
    /// Store a pcluster's worth of input that lz4 and zstd level 1 cannot shrink without
    /// trying the compressor ([`crate::codec::fast_codecs_shrink`]).
    pub early_abort: bool,
}

/// What a segment became: pclusters (`data`, whole blocks, extents' `blkaddr` relative to
/// its first block), and possibly an inline tail or a fragment.
#[derive(Debug, Default)]
pub(super) struct ZUnit {
    pub extents: Vec<ZExtent>,
    pub data: Vec<u8>,
    /// Inline pcluster (bytes, compressed?) for ztailpacking.
    pub inline: Option<(Vec<u8>, bool)>,
    /// Tail bytes for the packed inode.
    pub fragment: Option<Vec<u8>>,
}

impl ZUnit {
    fn next_blk(&self, blksz: u32) -> u32 {
        (self.data.len() / blksz as usize) as u32
    }

    fn raw_block(&mut self, cfg: &ZConfig, bytes: &[u8]) {
        let blk = self.next_blk(cfg.blksz);
        self.data.extend_from_slice(bytes);
        self.data.resize((blk as usize + 1) * cfg.blksz as usize, 0);
        self.extents.push(ZExtent {
            length: bytes.len() as u32,
            plen: cfg.blksz,
            raw: true,
            blkaddr: blk,
            on_disk: true,
        });
    }
}

/// Compresses `src`, the `last`-th segment or not, of a file.
pub(super) fn compress_segment(
    fitter: &mut Fitter,
    cfg: &ZConfig,
    src: &[u8],
    last: bool,
) -> Result<ZUnit> {
    let blksz = cfg.blksz as usize;
    let pcluster = cfg.pcluster as usize;
    let mut u = ZUnit::default();
    fitter.start_segment();
    let mut cbuf = Vec::with_capacity(pcluster);
    let mut head = 0usize;
    let may_packing = cfg.fragments && last;
    let may_inline = cfg.ztailpacking && last && !may_packing;
    while head < src.len() {
        let rest = src.get(head..).unwrap_or_default();
        let rem = rest.len();
        if rem <= pcluster {
            if may_packing {
                u.extents.push(fragment_extent(&u, cfg, rem));
                u.fragment = Some(rest.to_vec());
                break;
            }
            if !may_inline && rem <= blksz {
                u.raw_block(cfg, rest);
                break;
            }
        }
        let window = rest.get(..rem.min(WINDOW)).unwrap_or(rest);
        // Early abort: input the fast codecs cannot shrink is stored, a pcluster of it.
        let probe = window.get(..pcluster).unwrap_or(window);
        let skip = cfg.early_abort && !crate::codec::fast_codecs_shrink(probe);
        let consumed = if skip {
            cbuf.clear();
            probe.len()
        } else {
            fitter.compress(window, pcluster, &mut cbuf)?
        };
        let csize = cbuf.len();
        let whole = consumed == rem;
        let cost = if may_inline && whole && csize < blksz {
            csize
        } else {
            csize.next_multiple_of(blksz)
        };
        if skip || consumed == 0 || cost >= consumed {
            if may_inline && rem < blksz {
                u.extents.push(ZExtent {
                    length: rem as u32,
                    plen: cfg.blksz,
                    raw: true,
                    blkaddr: u.next_blk(cfg.blksz),
                    on_disk: false,
                });
                u.inline = Some((rest.to_vec(), false));
                break;
            }
            // Stored: block-sized extents for what the compressor took.
            let mut processed = if skip {
                consumed
            } else {
                consumed.min(cost).max(1)
            };
            let mut size = rem;
            loop {
                let count = blksz.min(size);
                let at = src.len() - size;
                u.raw_block(cfg, src.get(at..at + count).unwrap_or_default());
                size -= count;
                if processed < blksz + count || size == 0 {
                    break;
                }
                processed -= count;
            }
            head = src.len() - size;
        } else if may_packing && whole && csize < pcluster {
            u.extents.push(fragment_extent(&u, cfg, rem));
            u.fragment = Some(rest.to_vec());
            break;
        } else if may_inline && whole && csize < blksz {
            u.extents.push(ZExtent {
                length: rem as u32,
                plen: cfg.blksz,
                raw: false,
                blkaddr: u.next_blk(cfg.blksz),
                on_disk: false,
            });
            u.inline = Some((cbuf.clone(), true));
            break;
        } else {
            // Compressed data sits at the end of its blocks, after zeros (0padding).
            let plen = csize.next_multiple_of(blksz);
            let blk = u.next_blk(cfg.blksz);
            u.data.resize(u.data.len() + plen - csize, 0);
            u.data.extend_from_slice(&cbuf);
            u.extents.push(ZExtent {
                length: consumed as u32,
                plen: plen as u32,
                raw: false,
                blkaddr: blk,
                on_disk: true,
            });
            head += consumed;
        }
    }
    Ok(u)
}

fn fragment_extent(u: &ZUnit, cfg: &ZConfig, len: usize) -> ZExtent {
    ZExtent {
        length: len as u32,
        plen: 0,
        raw: false,
        blkaddr: u.next_blk(cfg.blksz),
        on_disk: false,
    }
}
