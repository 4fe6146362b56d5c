//! Reading images: [`Reader`] over any [`ReadAt`] source, at any offset inside it.

mod extract;
mod fsread;

pub use fsread::InodeHandle;
pub(crate) use fsread::file_type;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::sync::{Arc, Mutex};

use rayon::prelude::*;

pub(crate) use extract::extract_error;
pub use extract::{ExtractOptions, ExtractReport};
use imgpipe_fstree::ReadAt;

use crate::codec as compress;
use crate::error::{Error, Result};
use crate::raw::{
    CompressorOptions, DirEntry, FragmentEntry, Inode, InodeData, InodeKind, Input, METADATA_SIZE,
    MetadataHeader, NO_FRAGMENT, NO_XATTR, SuperBlock, XattrIdEntry, XattrIdTableHeader, XattrKey,
    data_block_size, flags, read_listing,
};

/// Caps that keep a hostile image from exhausting memory or time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most entries a walk or extraction visits.
    pub max_entries: u64,
    /// Deepest directory nesting.
    pub max_depth: usize,
    /// Most data blocks one file may claim (4 bytes each in memory).
    pub max_file_blocks: u64,
    /// Most xattrs on one inode.
    pub max_xattrs: u32,
    /// Decompressed metadata blocks kept in the cache (8 KiB each).
    pub metadata_cache_blocks: usize,
    /// Decompressed fragment blocks kept in the cache.
    pub fragment_cache_blocks: usize,
    /// Largest file [`Reader::read_file_to_vec`] returns.
    pub max_in_memory_file: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_entries: 50_000_000,
            max_depth: 1024,
            max_file_blocks: 1 << 24,
            max_xattrs: 4096,
            metadata_cache_blocks: 2048,
            fragment_cache_blocks: 32,
            max_in_memory_file: 1 << 30,
        }
    }
}

/// A region of the image holding a sequence of metadata blocks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Table {
    start: u64,
    end: u64,
}

#[derive(Debug)]
struct MetaBlock {
    data: Vec<u8>,
    next: u64,
}

/// A cursor over consecutive metadata blocks of one table.
struct MetaCursor<'r> {
    r: &'r Reader,
    table: Table,
    pos: u64,
    block: Arc<MetaBlock>,
    off: usize,
}

impl<'r> MetaCursor<'r> {
    fn new(r: &'r Reader, table: Table, block_rel: u64, offset: usize) -> Result<Self> {
        let pos = table.start.checked_add(block_rel).ok_or(Error::Malformed {
            structure: "metadata reference",
            field: "block",
            offset: table.start,
            reason: "overflows",
        })?;
        let block = r.meta_block(pos, table)?;
        if offset > block.data.len() {
            return Err(Error::Malformed {
                structure: "metadata reference",
                field: "offset",
                offset: pos,
                reason: "beyond the end of the metadata block",
            });
        }
        Ok(Self {
            r,
            table,
            pos,
            block,
            off: offset,
        })
    }
}

impl Input for MetaCursor<'_> {
    fn read_into(&mut self, buf: &mut [u8], structure: &'static str) -> Result<()> {
        let mut done = 0;
        while done < buf.len() {
            if self.off >= self.block.data.len() {
                let next = self.block.next;
                if next >= self.table.end {
                    return Err(Error::Truncated {
                        structure,
                        offset: self.pos,
                        needed: (buf.len() - done) as u64,
                        available: 0,
                    });
                }
                self.block = self.r.meta_block(next, self.table)?;
                self.pos = next;
                self.off = 0;
            }
            let src = &self.block.data[self.off..];
            let n = src.len().min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&src[..n]);
            done += n;
            self.off += n;
        }
        Ok(())
    }
    fn offset(&self) -> u64 {
        self.pos
    }
}

/// A piece of file content: data, or a run of zeros from a sparse block.
pub(crate) enum Chunk<'a> {
    Data(&'a [u8]),
    Zeros(usize),
}

/// One entry of a [`Reader::walk`]: its path and inode.
#[derive(Debug, Clone)]
pub struct WalkEntry {
    /// Path inside the image, components joined by `/`, no leading `/`; empty for the root.
    pub path: Vec<u8>,
    /// The inode reference (block << 16 | offset): the inode's identity (hard links share
    /// it; the inode number an image claims is not trusted for that).
    pub inode_ref: u64,
    /// The inode, shared by every name of it (parsed once per walk).
    pub inode: Arc<Inode>,
}

/// A squashfs 4.0 image opened for reading.
///
/// Every position is relative to the image start (which may sit at an offset inside the
/// source) and every table is bounded by the next table, so hostile references fail instead
/// of reading elsewhere.
pub struct Reader {
    src: Box<dyn ReadAt>,
    base: u64,
    sb: SuperBlock,
    options: Option<CompressorOptions>,
    ids: Vec<u32>,
    limits: Limits,
    bounds: Vec<u64>,
    meta_cache: Mutex<BTreeMap<u64, Arc<MetaBlock>>>,
    frag_cache: Mutex<BTreeMap<u32, Arc<Vec<u8>>>>,
    xattr: Option<(XattrIdTableHeader, u64)>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("base", &self.base)
            .field("superblock", &self.sb)
            .finish_non_exhaustive()
    }
}

fn malformed(
    structure: &'static str,
    field: &'static str,
    offset: u64,
    reason: &'static str,
) -> Error {
    Error::Malformed {
        structure,
        field,
        offset,
        reason,
    }
}

impl Reader {
    /// Opens the image at the start of `src` with default [`Limits`].
    pub fn open(src: impl ReadAt + 'static) -> Result<Self> {
        Self::open_at(src, 0, Limits::default())
    }

    /// Opens the image starting at byte `offset` of `src` (an image embedded in a disk or
    /// ISO file).
    pub fn open_at(src: impl ReadAt + 'static, offset: u64, limits: Limits) -> Result<Self> {
        let src: Box<dyn ReadAt> = Box::new(src);
        let total = src.len().map_err(|source| Error::Io {
            what: "reading the image length",
            source,
        })?;
        let avail = total.saturating_sub(offset);
        let mut b = [0u8; SuperBlock::SIZE];
        if avail < SuperBlock::SIZE as u64 {
            return Err(Error::Truncated {
                structure: "squashfs superblock",
                offset,
                needed: SuperBlock::SIZE as u64,
                available: avail,
            });
        }
        src.read_exact_at(&mut b, offset)
            .map_err(|source| Error::Io {
                what: "reading the superblock",
                source,
            })?;
        let sb = SuperBlock::parse(&b, 0)?;
        if sb.bytes_used > avail || sb.bytes_used < SuperBlock::SIZE as u64 {
            return Err(Error::Truncated {
                structure: "squashfs image",
                offset: 0,
                needed: sb.bytes_used,
                available: avail,
            });
        }
        let used = sb.bytes_used;
        let within = |v: u64, field| {
            if v == u64::MAX || (v >= SuperBlock::SIZE as u64 && v < used) {
                Ok(())
            } else {
                Err(malformed(
                    "squashfs superblock",
                    field,
                    0,
                    "table position outside the image",
                ))
            }
        };
        within(sb.inode_table, "inode_table_start")?;
        within(sb.dir_table, "directory_table_start")?;
        within(sb.id_table, "id_table_start")?;
        within(sb.frag_table, "fragment_table_start")?;
        within(sb.export_table, "export_table_start")?;
        within(sb.xattr_table, "xattr_id_table_start")?;
        if sb.inode_table == u64::MAX || sb.dir_table == u64::MAX || sb.id_table == u64::MAX {
            return Err(malformed(
                "squashfs superblock",
                "inode_table_start",
                0,
                "inode, directory and id tables are mandatory",
            ));
        }
        let mut r = Self {
            src,
            base: offset,
            sb,
            options: None,
            ids: Vec::new(),
            limits,
            bounds: Vec::new(),
            meta_cache: Mutex::new(BTreeMap::new()),
            frag_cache: Mutex::new(BTreeMap::new()),
            xattr: None,
        };
        r.collect_bounds()?;
        if r.sb.flags & flags::COMPRESSOR_OPTIONS != 0 {
            let t = Table {
                start: SuperBlock::SIZE as u64,
                end: r.table_end(SuperBlock::SIZE as u64),
            };
            let blk = r.meta_block(t.start, t)?;
            // Decompression never needs the options, so a block we cannot parse is not fatal,
            // as in unsquashfs: backhand 0.25.5 writes a 7-byte gzip block (a one-byte window
            // size where the format has two bytes).
            r.options = CompressorOptions::parse(r.sb.compressor, &blk.data, t.start).ok();
        }
        let n = usize::from(r.sb.id_count);
        if n == 0 {
            return Err(malformed("squashfs superblock", "id_count", 26, "no ids"));
        }
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            let b: [u8; 4] = r.indexed_entry(r.sb.id_table, n as u64, i as u64, "id table")?;
            ids.push(u32::from_le_bytes(b));
        }
        r.ids = ids;
        if r.sb.xattr_table != u64::MAX {
            let h: [u8; 16] = r.read_array(r.sb.xattr_table, "xattr id table header")?;
            let h = XattrIdTableHeader::parse(&h);
            if h.kv_start >= r.sb.bytes_used {
                return Err(malformed(
                    "xattr id table header",
                    "xattr_table_start",
                    r.sb.xattr_table,
                    "outside the image",
                ));
            }
            r.xattr = Some((h, r.sb.xattr_table + XattrIdTableHeader::SIZE as u64));
        }
        Ok(r)
    }

    /// Table starts and the first block of every indexed table, so a table ends where the
    /// next thing begins.
    fn collect_bounds(&mut self) -> Result<()> {
        let sb = &self.sb;
        let mut b = vec![
            SuperBlock::SIZE as u64,
            sb.inode_table,
            sb.dir_table,
            sb.id_table,
            sb.bytes_used,
        ];
        for t in [sb.frag_table, sb.export_table, sb.id_table, sb.xattr_table] {
            if t != u64::MAX {
                b.push(t);
            }
        }
        let mut firsts = vec![];
        if sb.frag_table != u64::MAX && sb.frag_count > 0 {
            firsts.push(sb.frag_table);
        }
        if sb.export_table != u64::MAX {
            firsts.push(sb.export_table);
        }
        firsts.push(sb.id_table);
        for t in firsts {
            let p: [u8; 8] = self.read_array(t, "table index")?;
            b.push(u64::from_le_bytes(p));
        }
        if sb.xattr_table != u64::MAX {
            let h: [u8; 16] = self.read_array(sb.xattr_table, "xattr id table header")?;
            let h = XattrIdTableHeader::parse(&h);
            b.push(h.kv_start);
            if h.ids > 0 {
                let p: [u8; 8] = self.read_array(sb.xattr_table + 16, "xattr id table index")?;
                b.push(u64::from_le_bytes(p));
            }
        }
        b.retain(|&v| v <= sb.bytes_used);
        b.sort_unstable();
        b.dedup();
        self.bounds = b;
        Ok(())
    }

    fn table_end(&self, start: u64) -> u64 {
        self.bounds
            .iter()
            .copied()
            .find(|&b| b > start)
            .unwrap_or(self.sb.bytes_used)
    }

    fn table(&self, start: u64) -> Table {
        Table {
            start,
            end: self.table_end(start),
        }
    }

    /// The superblock.
    pub fn superblock(&self) -> &SuperBlock {
        &self.sb
    }

    /// The compressor options block, when the image has one we can parse.
    pub fn compressor_options(&self) -> Option<CompressorOptions> {
        self.options
    }

    /// The id table (uids and gids).
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    /// Reads `buf.len()` bytes at image position `pos`, inside `bytes_used`.
    fn read_exact(&self, pos: u64, buf: &mut [u8], structure: &'static str) -> Result<()> {
        let end = pos.checked_add(buf.len() as u64);
        if end.is_none_or(|e| e > self.sb.bytes_used) {
            return Err(Error::Truncated {
                structure,
                offset: pos,
                needed: buf.len() as u64,
                available: self.sb.bytes_used.saturating_sub(pos),
            });
        }
        self.src
            .read_exact_at(buf, self.base + pos)
            .map_err(|source| Error::Io {
                what: "reading the image",
                source,
            })
    }

    fn read_array<const N: usize>(&self, pos: u64, structure: &'static str) -> Result<[u8; N]> {
        let mut b = [0u8; N];
        self.read_exact(pos, &mut b, structure)?;
        Ok(b)
    }

    fn meta_block(&self, pos: u64, table: Table) -> Result<Arc<MetaBlock>> {
        if let Some(b) = self
            .meta_cache
            .lock()
            .ok()
            .and_then(|c| c.get(&pos).cloned())
        {
            return Ok(b);
        }
        const S: &str = "metadata block";
        if pos < table.start || pos.saturating_add(2) > table.end {
            return Err(malformed(S, "position", pos, "outside its table"));
        }
        let h: [u8; 2] = self.read_array(pos, S)?;
        let h = MetadataHeader::parse(u16::from_le_bytes(h), pos)?;
        let len = u64::from(h.stored_len);
        let next = pos + 2 + len;
        if next > table.end {
            return Err(Error::Truncated {
                structure: S,
                offset: pos,
                needed: len,
                available: table.end - pos - 2,
            });
        }
        let mut raw = vec![0u8; h.stored_len as usize];
        self.read_exact(pos + 2, &mut raw, S)?;
        let data = if h.compressed {
            compress::decompress(self.sb.compressor, &raw, METADATA_SIZE).map_err(|reason| {
                Error::Decompress {
                    structure: S,
                    offset: pos,
                    compressor: self.sb.compressor.name(),
                    reason,
                }
            })?
        } else {
            raw
        };
        if data.is_empty() {
            return Err(malformed(S, "data", pos, "decompresses to nothing"));
        }
        let block = Arc::new(MetaBlock { data, next });
        if let Ok(mut c) = self.meta_cache.lock() {
            if c.len() >= self.limits.metadata_cache_blocks {
                c.clear();
            }
            c.insert(pos, block.clone());
        }
        Ok(block)
    }

    /// Entry `i` (of `count`) of an indexed table whose index is at `index_pos`.
    fn indexed_entry<const E: usize>(
        &self,
        index_pos: u64,
        count: u64,
        i: u64,
        structure: &'static str,
    ) -> Result<[u8; E]> {
        if i >= count {
            return Err(malformed(
                structure,
                "index",
                index_pos,
                "entry number out of range",
            ));
        }
        let byte = i * E as u64;
        let blk = byte / METADATA_SIZE as u64;
        let off = (byte % METADATA_SIZE as u64) as usize;
        let p: [u8; 8] = self.read_array(index_pos + blk * 8, structure)?;
        let p = u64::from_le_bytes(p);
        let t = self.table(p);
        let mut c = MetaCursor::new(self, t, 0, off)?;
        let mut out = [0u8; E];
        c.read_into(&mut out, structure)?;
        Ok(out)
    }

    /// The uid or gid an id-table index names.
    pub fn id(&self, idx: u16) -> Result<u32> {
        self.ids
            .get(usize::from(idx))
            .copied()
            .ok_or(Error::Malformed {
                structure: "inode",
                field: "uid/gid index",
                offset: self.sb.id_table,
                reason: "beyond the id table",
            })
    }

    /// Reads the inode at reference `r` (block << 16 | offset into the inode table).
    pub fn inode(&self, r: u64) -> Result<Inode> {
        let off = (r & 0xffff) as usize;
        if off >= METADATA_SIZE || r >> 48 != 0 {
            return Err(malformed(
                "inode reference",
                "offset",
                self.sb.inode_table,
                "out of range",
            ));
        }
        let t = self.table(self.sb.inode_table);
        let mut c = MetaCursor::new(self, t, r >> 16, off)?;
        Inode::read(&mut c, self.sb.block_log, self.limits.max_file_blocks)
    }

    /// The inode at reference `r` without a file's block list (empty): constant memory and
    /// time whatever the list's length. [`Reader::inode`] reads the list when it is used.
    pub fn inode_header(&self, r: u64) -> Result<Inode> {
        let off = (r & 0xffff) as usize;
        if off >= METADATA_SIZE || r >> 48 != 0 {
            return Err(malformed(
                "inode reference",
                "offset",
                self.sb.inode_table,
                "out of range",
            ));
        }
        let t = self.table(self.sb.inode_table);
        let mut c = MetaCursor::new(self, t, r >> 16, off)?;
        Inode::read_header(&mut c, self.sb.block_log, self.limits.max_file_blocks)
    }

    /// The root directory's inode.
    pub fn root(&self) -> Result<Inode> {
        let i = self.inode(self.sb.root_inode)?;
        if i.kind != InodeKind::Dir {
            return Err(malformed(
                "squashfs superblock",
                "root_inode",
                32,
                "root is not a directory",
            ));
        }
        Ok(i)
    }

    /// The entries of a directory, sorted by name.
    pub fn read_dir(&self, dir: &Inode) -> Result<Vec<DirEntry>> {
        let InodeData::Dir(d) = &dir.data else {
            return Err(malformed("inode", "inode_type", 0, "not a directory"));
        };
        if d.file_size < 3 {
            return Err(malformed(
                "directory inode",
                "file_size",
                0,
                "smaller than 3",
            ));
        }
        let size = u64::from(d.file_size - 3);
        if size == 0 {
            return Ok(Vec::new());
        }
        let t = self.table(self.sb.dir_table);
        let mut c = MetaCursor::new(self, t, u64::from(d.start_block), usize::from(d.offset))?;
        read_listing(&mut c, size)
    }

    /// Looks up a `/`-separated path (leading `/` optional) from the root.
    pub fn lookup(&self, path: &[u8]) -> Result<(u64, Inode)> {
        let mut r = self.sb.root_inode;
        let mut inode = self.root()?;
        for comp in path.split(|&c| c == b'/').filter(|c| !c.is_empty()) {
            let not_found = || Error::NotFound {
                path: lossy_path(path),
            };
            if inode.kind != InodeKind::Dir {
                return Err(not_found());
            }
            let entries = self.read_dir(&inode)?;
            let e = entries
                .binary_search_by(|e| e.name.as_slice().cmp(comp))
                .ok()
                .and_then(|i| entries.get(i))
                .ok_or_else(not_found)?;
            r = e.inode_ref();
            inode = self.inode(r)?;
        }
        Ok((r, inode))
    }

    /// Every entry in depth-first, name-sorted order, the root first. Directory loops, depth
    /// and entry count beyond the [`Limits`] are errors. Each inode is read once, whatever
    /// the number of names it has, and shared by them.
    pub fn walk(&self) -> Result<Vec<WalkEntry>> {
        self.walk_with(true)
    }

    /// [`Reader::walk`] with files' block lists left unread (`full == false`): memory
    /// proportional to the entries, not to what their inodes claim.
    pub(crate) fn walk_with(&self, full: bool) -> Result<Vec<WalkEntry>> {
        let read = |r: u64| {
            if full {
                self.inode(r)
            } else {
                self.inode_header(r)
            }
        };
        let root = read(self.sb.root_inode)?;
        if root.kind != InodeKind::Dir {
            return Err(malformed(
                "squashfs superblock",
                "root_inode",
                32,
                "root is not a directory",
            ));
        }
        let mut out = vec![WalkEntry {
            path: Vec::new(),
            inode_ref: self.sb.root_inode,
            inode: Arc::new(root),
        }];
        // Inodes by reference: a file reached through many names is parsed once.
        let mut inodes: BTreeMap<u64, Arc<Inode>> = BTreeMap::new();
        let mut seen_dirs = BTreeSet::from([self.sb.root_inode]);
        // (index into out of the directory, depth)
        let mut stack = vec![(0usize, 0usize)];
        while let Some((di, depth)) = stack.pop() {
            let (dir_path, entries) = {
                let d = &out[di];
                (d.path.clone(), self.read_dir(&d.inode)?)
            };
            if depth >= self.limits.max_depth && !entries.is_empty() {
                return Err(Error::LimitExceeded {
                    what: "directory depth",
                    limit: self.limits.max_depth as u64,
                });
            }
            if (out.len() + entries.len()) as u64 > self.limits.max_entries {
                return Err(Error::LimitExceeded {
                    what: "entries",
                    limit: self.limits.max_entries,
                });
            }
            // Insert children right after the directory to keep pre-order: collect, then
            // push subdirectories in reverse so the smallest name is visited first.
            let mut children = Vec::with_capacity(entries.len());
            for e in entries {
                let r = e.inode_ref();
                let inode = match inodes.get(&r) {
                    Some(i) => i.clone(),
                    None => {
                        let i = Arc::new(read(r)?);
                        if i.kind != InodeKind::Dir {
                            inodes.insert(r, i.clone());
                        }
                        i
                    }
                };
                if inode.kind != e.kind {
                    return Err(malformed(
                        "directory entry",
                        "type",
                        self.sb.dir_table,
                        "disagrees with the inode",
                    ));
                }
                if inode.kind == InodeKind::Dir && !seen_dirs.insert(r) {
                    return Err(malformed(
                        "directory entry",
                        "inode",
                        self.sb.dir_table,
                        "directory reached twice (loop or hard-linked directory)",
                    ));
                }
                let mut path = dir_path.clone();
                if !path.is_empty() {
                    path.push(b'/');
                }
                path.extend_from_slice(&e.name);
                children.push(WalkEntry {
                    path,
                    inode_ref: r,
                    inode,
                });
            }
            let first = out.len();
            out.extend(children);
            for i in (first..out.len()).rev() {
                if out[i].inode.kind == InodeKind::Dir {
                    stack.push((i, depth + 1));
                }
            }
        }
        // Children were appended after all earlier entries; sort by path components to get
        // the pre-order listing unsquashfs prints.
        out.sort_by(|a, b| {
            a.path
                .split(|&c| c == b'/')
                .cmp(b.path.split(|&c| c == b'/'))
        });
        Ok(out)
    }

    fn fragment(&self, idx: u32) -> Result<Arc<Vec<u8>>> {
        if let Some(f) = self
            .frag_cache
            .lock()
            .ok()
            .and_then(|c| c.get(&idx).cloned())
        {
            return Ok(f);
        }
        let e = self.fragment_entry(idx)?;
        let data = Arc::new(self.data_block(e.start, e.size, None, "fragment block")?);
        if let Ok(mut c) = self.frag_cache.lock() {
            if c.len() >= self.limits.fragment_cache_blocks {
                c.pop_first();
            }
            c.insert(idx, data.clone());
        }
        Ok(data)
    }

    /// Entry `idx` of the fragment table: where the fragment block lies.
    pub(crate) fn fragment_entry(&self, idx: u32) -> Result<FragmentEntry> {
        if self.sb.frag_table == u64::MAX {
            return Err(malformed(
                "file inode",
                "fragment",
                0,
                "image has no fragment table",
            ));
        }
        let e: [u8; 16] = self.indexed_entry(
            self.sb.frag_table,
            u64::from(self.sb.frag_count),
            u64::from(idx),
            "fragment table",
        )?;
        Ok(FragmentEntry::parse(&e))
    }

    /// Reads and decompresses one data block stored at `pos` with size word `word`;
    /// `expect` is the exact uncompressed size (None: at most a block).
    fn data_block(
        &self,
        pos: u64,
        word: u32,
        expect: Option<usize>,
        structure: &'static str,
    ) -> Result<Vec<u8>> {
        let (len, compressed) = data_block_size(word);
        let mut raw = vec![0u8; len as usize];
        self.read_exact(pos, &mut raw, structure)?;
        self.decode_block(pos, &raw, compressed, expect, structure)
    }

    fn decode_block(
        &self,
        pos: u64,
        raw: &[u8],
        compressed: bool,
        expect: Option<usize>,
        structure: &'static str,
    ) -> Result<Vec<u8>> {
        let cap = self.sb.block_size as usize;
        let data = if compressed {
            compress::decompress(self.sb.compressor, raw, cap).map_err(|reason| {
                Error::Decompress {
                    structure,
                    offset: pos,
                    compressor: self.sb.compressor.name(),
                    reason,
                }
            })?
        } else {
            raw.to_vec()
        };
        if expect.is_some_and(|e| e != data.len()) || data.len() > cap {
            return Err(malformed(
                structure,
                "size",
                pos,
                "decompresses to the wrong length",
            ));
        }
        Ok(data)
    }

    /// Streams a regular file's content to `w`, decompressing blocks in parallel. Returns
    /// the bytes written.
    pub fn read_file(&self, inode: &Inode, w: &mut dyn Write) -> Result<u64> {
        let zeros = vec![0u8; self.sb.block_size as usize];
        self.read_file_chunks(inode, &mut |c| {
            match c {
                Chunk::Data(d) => w.write_all(d),
                Chunk::Zeros(n) => w.write_all(&zeros[..n]),
            }
            .map_err(|source| Error::Io {
                what: "writing file content",
                source,
            })
        })
    }

    /// The content as a sequence of data pieces and runs of zeros (sparse blocks), in order.
    pub(crate) fn read_file_chunks(
        &self,
        inode: &Inode,
        emit: &mut dyn FnMut(Chunk<'_>) -> Result<()>,
    ) -> Result<u64> {
        let InodeData::File(f) = &inode.data else {
            return Err(malformed("inode", "inode_type", 0, "not a regular file"));
        };
        let bs = u64::from(self.sb.block_size);
        let mut pos = f.blocks_start;
        let mut written = 0u64;
        // Groups of blocks read with one positioned read and decompressed in parallel.
        const GROUP: usize = 32;
        for (gi, group) in f.block_sizes.chunks(GROUP).enumerate() {
            let stored: u64 = group.iter().map(|&w| u64::from(data_block_size(w).0)).sum();
            let mut raw = vec![0u8; stored as usize];
            self.read_exact(pos, &mut raw, "data block")?;
            let mut jobs = Vec::with_capacity(group.len());
            let mut at = 0usize;
            for (k, &word) in group.iter().enumerate() {
                let index = (gi * GROUP + k) as u64;
                let expect = (f.file_size - index * bs).min(bs) as usize;
                let (len, compressed) = data_block_size(word);
                let len = len as usize;
                jobs.push((pos + at as u64, word, at..at + len, compressed, expect));
                at += len;
            }
            pos += stored;
            let blocks: Vec<Result<Option<Vec<u8>>>> = jobs
                .par_iter()
                .map(|(p, word, range, compressed, expect)| {
                    if *word == 0 || !compressed {
                        return Ok(None);
                    }
                    let src = &raw[range.clone()];
                    self.decode_block(*p, src, true, Some(*expect), "data block")
                        .map(Some)
                })
                .collect();
            for (b, (p, word, range, _, expect)) in blocks.into_iter().zip(&jobs) {
                match b? {
                    Some(d) => emit(Chunk::Data(&d))?,
                    None if *word == 0 => emit(Chunk::Zeros(*expect))?,
                    None => {
                        if range.len() != *expect {
                            return Err(malformed(
                                "data block",
                                "size",
                                *p,
                                "stored length differs from the block length",
                            ));
                        }
                        emit(Chunk::Data(&raw[range.clone()]))?
                    }
                }
                written += *expect as u64;
            }
        }
        if f.fragment != NO_FRAGMENT {
            let tail = f.file_size - written;
            let frag = self.fragment(f.fragment)?;
            let start = f.frag_offset as usize;
            let piece = usize::try_from(tail)
                .ok()
                .and_then(|t| frag.get(start..start.checked_add(t)?))
                .ok_or(malformed(
                    "file inode",
                    "fragment_offset",
                    self.sb.inode_table,
                    "tail beyond the fragment block",
                ))?;
            emit(Chunk::Data(piece))?;
            written += tail;
        }
        if written != f.file_size {
            return Err(malformed(
                "file inode",
                "file_size",
                self.sb.inode_table,
                "blocks and fragment do not add up to the size",
            ));
        }
        Ok(written)
    }

    /// A regular file's content in memory (at most [`Limits::max_in_memory_file`] bytes).
    pub fn read_file_to_vec(&self, inode: &Inode) -> Result<Vec<u8>> {
        if let InodeData::File(f) = &inode.data
            && f.file_size > self.limits.max_in_memory_file
        {
            return Err(Error::LimitExceeded {
                what: "file size read into memory",
                limit: self.limits.max_in_memory_file,
            });
        }
        let mut v = Vec::new();
        self.read_file(inode, &mut v)?;
        Ok(v)
    }

    /// The uid and gid of an inode.
    pub fn owner(&self, inode: &Inode) -> Result<(u32, u32)> {
        Ok((self.id(inode.uid_idx)?, self.id(inode.gid_idx)?))
    }

    /// An inode's xattrs as (full name, value) pairs, in stored order.
    pub fn xattrs(&self, inode: &Inode) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        if inode.xattr == NO_XATTR {
            return Ok(Vec::new());
        }
        let Some((h, index)) = self.xattr else {
            return Err(malformed("inode", "xattr", 0, "image has no xattr table"));
        };
        let e: [u8; 16] = self.indexed_entry(
            index,
            u64::from(h.ids),
            u64::from(inode.xattr),
            "xattr id table",
        )?;
        let e = XattrIdEntry::parse(&e);
        if e.count > self.limits.max_xattrs {
            return Err(Error::LimitExceeded {
                what: "xattrs on one inode",
                limit: u64::from(self.limits.max_xattrs),
            });
        }
        let t = self.table(h.kv_start);
        let mut c = MetaCursor::new(self, t, e.xattr_ref >> 16, (e.xattr_ref & 0xffff) as usize)?;
        let mut out = Vec::new();
        for _ in 0..e.count {
            let key = XattrKey::read(&mut c)?;
            let vsize = c.u32("xattr value")?;
            let value = if key.kind & crate::raw::XATTR_VALUE_OOL != 0 {
                if vsize != 8 {
                    return Err(malformed(
                        "xattr value",
                        "size",
                        c.offset(),
                        "reference not 8 bytes",
                    ));
                }
                let r = c.u64("xattr value")?;
                let mut c2 = MetaCursor::new(self, t, r >> 16, (r & 0xffff) as usize)?;
                let n = c2.u32("xattr value")?;
                read_value(&mut c2, n)?
            } else {
                read_value(&mut c, vsize)?
            };
            let name = key.full_name().ok_or(malformed(
                "xattr key",
                "type",
                c.offset(),
                "unknown prefix",
            ))?;
            out.push((name, value));
        }
        Ok(out)
    }

    /// The inode reference stored in the export table for inode number `n`.
    pub fn export_lookup(&self, n: u32) -> Result<u64> {
        if self.sb.export_table == u64::MAX {
            return Err(Error::Unsupported {
                feature: "export lookup in an image without an export table",
            });
        }
        if n == 0 {
            return Err(malformed(
                "export table",
                "inode number",
                self.sb.export_table,
                "zero",
            ));
        }
        let b: [u8; 8] = self.indexed_entry(
            self.sb.export_table,
            u64::from(self.sb.inode_count),
            u64::from(n - 1),
            "export table",
        )?;
        Ok(u64::from_le_bytes(b))
    }
}

fn read_value(c: &mut impl Input, n: u32) -> Result<Vec<u8>> {
    // Linux caps xattr values at 64 KiB.
    if n > 65_536 {
        return Err(malformed(
            "xattr value",
            "size",
            c.offset(),
            "larger than 64 KiB",
        ));
    }
    c.bytes(n as usize, "xattr value")
}

pub(crate) fn lossy_path(p: &[u8]) -> std::path::PathBuf {
    String::from_utf8_lossy(p).into_owned().into()
}
