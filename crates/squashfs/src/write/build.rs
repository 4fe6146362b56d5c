//! Planning and emitting: inode order and numbers, data, then the tables in the order the
//! kernel checks them (inodes, directories, fragments, export, ids, xattrs).

use std::collections::BTreeMap;
use std::io::{Seek, SeekFrom, Write};

use super::data::{FileJob, FileLayout, write_data};
use super::meta::{MetaWriter, indexed_table};
use super::tree::NodeKind;
use super::{BuildReport, Builder};
use crate::compress::Compression;
use crate::error::{Error, Result};
use crate::raw::{
    Compressor, CompressorOptions, DirEntry, DirHeader, DirIndex, DirInode, FileInode, Inode,
    InodeData, METADATA_SIZE, NO_XATTR, SuperBlock, XattrIdEntry, XattrIdTableHeader, XattrKey,
    flags,
};

type Xattr = (Vec<u8>, Vec<u8>);

/// A writer that counts what went through it.
struct Counting<'a, W: Write + Send> {
    inner: &'a mut W,
    pos: u64,
}

impl<W: Write + Send> Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn werr(source: std::io::Error) -> Error {
    Error::Io {
        what: "writing the image",
        source,
    }
}

impl Builder {
    /// Writes the image to `out` (from its current position 0). The same entries and options
    /// give the same bytes whatever the number of rayon threads.
    pub fn build<W: Write + Seek + Send>(mut self, out: &mut W) -> Result<BuildReport> {
        let opts = self.opts;
        let nodes = &self.nodes;
        // 1. Inode order: post-order, subdirectories first, then the other children, then
        //    the directory; a hard link's target is numbered where it is first reached.
        let mut order: Vec<usize> = Vec::new();
        let mut number = vec![0u32; nodes.len()];
        let mut nlink = vec![1u32; nodes.len()];
        for n in nodes {
            if let NodeKind::Link(t) = n.kind {
                nlink[t] += 1;
            }
        }
        let mut stack: Vec<(usize, bool)> = vec![(0, false)];
        while let Some((n, expanded)) = stack.pop() {
            let NodeKind::Dir(children) = &nodes[n].kind else {
                continue;
            };
            if expanded {
                for &c in children.values() {
                    let t = match nodes[c].kind {
                        NodeKind::Dir(_) => continue,
                        NodeKind::Link(t) => t,
                        _ => c,
                    };
                    if number[t] == 0 {
                        order.push(t);
                        number[t] = order.len() as u32;
                    }
                }
                order.push(n);
                number[n] = order.len() as u32;
                continue;
            }
            stack.push((n, true));
            let subdirs: Vec<usize> = children
                .values()
                .copied()
                .filter(|&c| matches!(nodes[c].kind, NodeKind::Dir(_)))
                .collect();
            nlink[n] = 2 + subdirs.len() as u32;
            for &c in subdirs.iter().rev() {
                stack.push((c, false));
            }
        }
        let inode_count = order.len() as u32;

        // 2. Ids and xattr sets, numbered in order of first use.
        let mut ids: Vec<u32> = nodes.iter().flat_map(|n| [n.uid, n.gid]).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() > 65_536 {
            return Err(Error::LimitExceeded {
                what: "distinct uids and gids",
                limit: 65_536,
            });
        }
        let id_index = |v: u32| ids.binary_search(&v).map(|i| i as u16).unwrap_or(0);
        let mut xattr_sets: Vec<&[Xattr]> = Vec::new();
        let mut xattr_of: BTreeMap<&[Xattr], u32> = BTreeMap::new();
        let mut xattr_id = vec![NO_XATTR; nodes.len()];
        for &n in &order {
            let x = &nodes[n].xattrs[..];
            if x.is_empty() {
                continue;
            }
            let id = *xattr_of.entry(x).or_insert_with(|| {
                xattr_sets.push(x);
                xattr_sets.len() as u32 - 1
            });
            xattr_id[n] = id;
        }

        // 3. Data.
        let options = compressor_options(opts.compression, opts.block_size);
        out.seek(SeekFrom::Start(0)).map_err(werr)?;
        let mut w = Counting { inner: out, pos: 0 };
        w.write_all(&[0u8; SuperBlock::SIZE]).map_err(werr)?;
        if let Some(o) = options {
            let mut m = MetaWriter::new(opts.compression, opts.compress_metadata, opts.block_size);
            m.write(&o.to_bytes())?;
            w.write_all(&m.finish()?).map_err(werr)?;
        }
        let file_nodes: Vec<usize> = order
            .iter()
            .copied()
            .filter(|&n| matches!(nodes[n].kind, NodeKind::File { .. }))
            .collect();
        let jobs: Vec<FileJob<'_>> = file_nodes
            .iter()
            .filter_map(|&n| match &nodes[n].kind {
                NodeKind::File { content, size } => Some(FileJob {
                    content,
                    size: *size,
                    path: &nodes[n].path,
                }),
                _ => None,
            })
            .collect();
        let start = w.pos;
        let progress = self.progress.0.take();
        let (data, end) = write_data(&mut w, start, opts, &jobs, progress)?;
        let mut layout_of: Vec<Option<&FileLayout>> = vec![None; nodes.len()];
        for (k, &n) in file_nodes.iter().enumerate() {
            layout_of[n] = data.layouts.get(k);
        }

        // 4. Inode and directory tables, interleaved in `order`.
        let mut inodes = MetaWriter::new(opts.compression, opts.compress_metadata, opts.block_size);
        let mut dirs = MetaWriter::new(opts.compression, opts.compress_metadata, opts.block_size);
        let mut inode_ref = vec![0u64; nodes.len()];
        let mut parent = vec![inode_count + 1; nodes.len()];
        for (i, n) in nodes.iter().enumerate() {
            if let NodeKind::Dir(ch) = &n.kind {
                for &c in ch.values() {
                    parent[c] = number[i];
                }
            }
        }
        let mut buf = Vec::with_capacity(256);
        for &n in &order {
            let node = &nodes[n];
            let xattr = xattr_id[n];
            let data = match &node.kind {
                NodeKind::Dir(children) => {
                    let (file_size, start_block, offset, index) =
                        write_listing(&mut dirs, nodes, children, &number, &inode_ref)?;
                    InodeData::Dir(DirInode {
                        start_block,
                        offset,
                        file_size,
                        parent_inode: parent[n],
                        index,
                    })
                }
                NodeKind::File { size, .. } => {
                    let l = layout_of[n].cloned().unwrap_or_default();
                    InodeData::File(FileInode {
                        blocks_start: l.blocks_start,
                        file_size: *size,
                        sparse: l.sparse,
                        fragment: l.fragment,
                        frag_offset: l.frag_offset,
                        block_sizes: l.block_sizes,
                    })
                }
                NodeKind::Symlink(t) => InodeData::Symlink(t.clone()),
                NodeKind::Device { rdev, .. } => InodeData::Device(*rdev),
                NodeKind::Ipc(_) => InodeData::Ipc,
                NodeKind::Link(_) => continue,
            };
            let extended = xattr != NO_XATTR
                || match &data {
                    InodeData::Dir(d) => !d.index.is_empty() || d.file_size > 0xffff,
                    InodeData::File(f) => {
                        nlink[n] > 1
                            || f.sparse > 0
                            || f.file_size > u64::from(u32::MAX)
                            || f.blocks_start > u64::from(u32::MAX)
                    }
                    _ => false,
                };
            let inode = Inode {
                kind: node.inode_kind(),
                extended,
                mode: node.mode,
                uid_idx: id_index(node.uid),
                gid_idx: id_index(node.gid),
                mtime: node.mtime,
                inode_number: number[n],
                nlink: nlink[n],
                xattr,
                data,
            };
            buf.clear();
            inode.write_to(&mut buf)?;
            inode_ref[n] = inodes.reference();
            inodes.write(&buf)?;
        }
        let root_ref = inode_ref[0];
        let inode_bytes = inodes.finish()?;
        let dir_bytes = dirs.finish()?;

        // 5. Tables.
        let inode_table = end;
        w.write_all(&inode_bytes).map_err(werr)?;
        let dir_table = w.pos;
        w.write_all(&dir_bytes).map_err(werr)?;
        let mut entries = Vec::new();
        for f in &data.fragments {
            f.write_to(&mut entries);
        }
        let (t, frag_table) = indexed_table(
            opts.compression,
            opts.compress_metadata,
            opts.block_size,
            w.pos,
            &entries,
        )?;
        w.write_all(&t).map_err(werr)?;
        let mut export_table = u64::MAX;
        if opts.exportable {
            let mut refs = vec![0u64; inode_count as usize];
            for &n in &order {
                refs[(number[n] - 1) as usize] = inode_ref[n];
            }
            let e: Vec<u8> = refs.iter().flat_map(|r| r.to_le_bytes()).collect();
            let (t, at) = indexed_table(
                opts.compression,
                opts.compress_metadata,
                opts.block_size,
                w.pos,
                &e,
            )?;
            w.write_all(&t).map_err(werr)?;
            export_table = at;
        }
        let e: Vec<u8> = ids.iter().flat_map(|r| r.to_le_bytes()).collect();
        let (t, id_table) = indexed_table(
            opts.compression,
            opts.compress_metadata,
            opts.block_size,
            w.pos,
            &e,
        )?;
        w.write_all(&t).map_err(werr)?;
        let mut xattr_table = u64::MAX;
        if !xattr_sets.is_empty() {
            let kv_start = w.pos;
            let mut kv = MetaWriter::new(opts.compression, opts.compress_metadata, opts.block_size);
            let mut id_entries = Vec::new();
            for set in &xattr_sets {
                let xref = kv.reference();
                let before = kv.upos();
                for (name, value) in set.iter() {
                    let key = XattrKey::from_full_name(name).ok_or(Error::InvalidOption {
                        option: "xattr",
                        reason: "unknown prefix",
                    })?;
                    buf.clear();
                    key.write_to(&mut buf)?;
                    buf.extend_from_slice(&(value.len() as u32).to_le_bytes());
                    buf.extend_from_slice(value);
                    kv.write(&buf)?;
                }
                XattrIdEntry {
                    xattr_ref: xref,
                    count: set.len() as u32,
                    size: (kv.upos() - before) as u32,
                }
                .write_to(&mut id_entries);
            }
            let kv_bytes = kv.finish()?;
            w.write_all(&kv_bytes).map_err(werr)?;
            let (t, idx) = indexed_table(
                opts.compression,
                opts.compress_metadata,
                opts.block_size,
                w.pos,
                &id_entries,
            )?;
            // The index follows the header, so write blocks, header, then the index.
            let blocks_len = (idx - w.pos) as usize;
            w.write_all(&t[..blocks_len]).map_err(werr)?;
            xattr_table = w.pos;
            let mut h = Vec::new();
            XattrIdTableHeader {
                kv_start,
                ids: xattr_sets.len() as u32,
            }
            .write_to(&mut h);
            w.write_all(&h).map_err(werr)?;
            w.write_all(&t[blocks_len..]).map_err(werr)?;
        }
        let bytes_used = w.pos;
        let pad = (4096 - bytes_used % 4096) % 4096;
        w.write_all(&vec![0u8; pad as usize]).map_err(werr)?;

        let mut fl = 0u16;
        if !opts.compress_metadata {
            fl |= flags::UNCOMPRESSED_INODES | flags::UNCOMPRESSED_XATTRS | flags::UNCOMPRESSED_IDS;
        }
        if !opts.compress_data {
            fl |= flags::UNCOMPRESSED_DATA | flags::UNCOMPRESSED_FRAGMENTS;
        }
        if !opts.fragments {
            fl |= flags::NO_FRAGMENTS;
        }
        if opts.fragments && opts.tail_ends {
            fl |= flags::ALWAYS_FRAGMENTS;
        }
        if opts.dedup {
            fl |= flags::DUPLICATES;
        }
        if opts.exportable {
            fl |= flags::EXPORTABLE;
        }
        if xattr_sets.is_empty() {
            fl |= flags::NO_XATTRS;
        }
        if options.is_some() {
            fl |= flags::COMPRESSOR_OPTIONS;
        }
        let sb = SuperBlock {
            inode_count,
            mod_time: opts.mod_time,
            block_size: opts.block_size,
            frag_count: data.fragments.len() as u32,
            compressor: opts.compression.compressor,
            block_log: opts.block_size.trailing_zeros() as u16,
            flags: fl,
            id_count: ids.len() as u16,
            version_major: 4,
            version_minor: 0,
            root_inode: root_ref,
            bytes_used,
            id_table,
            xattr_table,
            inode_table,
            dir_table,
            frag_table,
            export_table,
        };
        let out = w.inner;
        out.flush().map_err(werr)?;
        out.seek(SeekFrom::Start(0)).map_err(werr)?;
        out.write_all(&sb.to_bytes()).map_err(werr)?;
        out.seek(SeekFrom::Start(bytes_used + pad)).map_err(werr)?;
        out.flush().map_err(werr)?;
        Ok(BuildReport {
            inodes: inode_count,
            files: file_nodes.len() as u64,
            duplicates: data.duplicates,
            fragments: data.fragments.len() as u32,
            content_bytes: data.content_bytes,
            bytes_used,
            image_size: bytes_used + pad,
        })
    }
}

/// The options block mksquashfs writes for these settings (none where it writes none).
fn compressor_options(c: Compression, block_size: u32) -> Option<CompressorOptions> {
    let level = c.effective_level();
    match c.compressor {
        Compressor::Lz4 => Some(CompressorOptions::Lz4 {
            version: 1,
            flags: u32::from(c.lz4_hc),
        }),
        Compressor::Gzip if level != 9 => Some(CompressorOptions::Gzip {
            level,
            window_size: 15,
            strategies: 0,
        }),
        Compressor::Zstd if level != 15 => Some(CompressorOptions::Zstd { level }),
        Compressor::Xz if c.xz_bcj != 0 => Some(CompressorOptions::Xz {
            dictionary_size: block_size.max(8192),
            filters: c.xz_bcj,
        }),
        _ => None,
    }
}

/// Writes one directory's listing; returns (file_size, start_block, offset, index).
fn write_listing(
    dirs: &mut MetaWriter,
    nodes: &[super::tree::Node],
    children: &BTreeMap<Vec<u8>, usize>,
    number: &[u32],
    inode_ref: &[u64],
) -> Result<(u32, u32, u16, Vec<DirIndex>)> {
    let (start_block, offset) = dirs.pos();
    let ustart = dirs.upos();
    let mut listing: Vec<u8> = Vec::new();
    let mut index_at: Vec<(u32, Vec<u8>)> = Vec::new();
    let mut header: Option<(DirHeader, usize)> = None; // header and its position in listing
    let mut count = 0u32;
    for (name, &c) in children {
        let t = match nodes[c].kind {
            NodeKind::Link(t) => t,
            _ => c,
        };
        let r = inode_ref[t];
        let e = DirEntry {
            name: name.clone(),
            start: (r >> 16) as u32,
            offset: (r & 0xffff) as u16,
            inode_number: number[t],
            kind: nodes[t].inode_kind(),
        };
        let here = ustart + listing.len() as u64;
        let new_header = match &header {
            None => true,
            Some((h, hpos)) => {
                let delta = i64::from(e.inode_number) - i64::from(h.inode_number);
                let hblock = (ustart + *hpos as u64) / METADATA_SIZE as u64;
                count == 256
                    || h.start != e.start
                    || !(-32768..=32767).contains(&delta)
                    || here / METADATA_SIZE as u64 != hblock
            }
        };
        if new_header {
            if let Some((h, hpos)) = header.take() {
                let hb = DirHeader {
                    count: count - 1,
                    ..h
                };
                let mut tmp = Vec::with_capacity(12);
                hb.write_to(&mut tmp);
                listing[hpos..hpos + 12].copy_from_slice(&tmp);
            }
            let hpos = listing.len();
            let hblock = here / METADATA_SIZE as u64;
            if hpos > 0 && hblock != ustart / METADATA_SIZE as u64 {
                let last_block = index_at
                    .last()
                    .map(|(p, _)| (ustart + u64::from(*p)) / METADATA_SIZE as u64);
                if last_block != Some(hblock) {
                    index_at.push((hpos as u32, name.clone()));
                }
            }
            let h = DirHeader {
                count: 0,
                start: e.start,
                inode_number: e.inode_number,
            };
            h.write_to(&mut listing);
            header = Some((h, hpos));
            count = 0;
        }
        let base = header
            .as_ref()
            .map_or(e.inode_number, |(h, _)| h.inode_number);
        e.write_to(base, &mut listing)?;
        count += 1;
    }
    if let Some((h, hpos)) = header.take() {
        let hb = DirHeader {
            count: count - 1,
            ..h
        };
        let mut tmp = Vec::with_capacity(12);
        hb.write_to(&mut tmp);
        listing[hpos..hpos + 12].copy_from_slice(&tmp);
    }
    dirs.write(&listing)?;
    let index = index_at
        .into_iter()
        .map(|(pos, name)| DirIndex {
            index: pos,
            start: dirs.block_start_of(ustart + u64::from(pos)),
            name,
        })
        .collect();
    let size = u32::try_from(listing.len() + 3).map_err(|_| Error::LimitExceeded {
        what: "directory listing bytes",
        limit: u64::from(u32::MAX),
    })?;
    Ok((size, start_block, offset, index))
}
