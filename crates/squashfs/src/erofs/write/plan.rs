//! The layout plan: every inode's form, xattr body, data layout, node id and blocks, fixed
//! before a byte is written.

use std::collections::BTreeMap;

use imgpipe_fstree::{Content, Entry, FileType, Tree};

use super::ErofsWriteOptions;
use crate::erofs::raw::{
    FLAT_INLINE, FLAT_PLAIN, InodeHeader, NULL_ADDR, XATTR_BODY_HEADER_SIZE, XattrEntry, dir_size,
    dirent_file_type,
};
use crate::error::{Error, Result};
use crate::raw::encode_dev;

/// Where the first inode goes: right after the superblock in block 0 (nid 36).
pub(super) const FIRST_INODE_AT: u64 = 1024 + 128;

/// One inode of the image.
#[derive(Debug)]
pub(super) struct Inode<'t> {
    /// The first entry that names it (its metadata and content are used).
    pub entry: &'t Entry,
    pub content: &'t Content,
    pub nlink: u32,
    pub extended: bool,
    /// The encoded xattr body (header and entries), empty without xattrs.
    pub xattrs: Vec<u8>,
    pub xattr_icount: u16,
    pub layout: u8,
    /// `i_size`: content, directory or target bytes.
    pub size: u64,
    /// Bytes stored after the inode (the tail), 0 for flat plain.
    pub inline_len: u64,
    /// Data blocks.
    pub blocks: u64,
    pub nid: u64,
    /// First data block (`NULL_ADDR` when there is none and the layout is inline).
    pub blkaddr: u32,
    /// `i_u` for devices.
    pub rdev: u32,
    /// Directory entries (name, inode index, `EROFS_FT_*`), `.` and `..` included, sorted.
    pub children: Vec<(&'t [u8], usize, u8)>,
    /// Symlink target.
    pub target: &'t [u8],
    /// Time as stored (clamped).
    pub mtime: i64,
    pub mtime_nsec: u32,
    /// Owner as stored.
    pub uid: u32,
    pub gid: u32,
    /// A reserved slot: the capacity of this file's one contiguous uncompressed extent.
    pub reserve: Option<u64>,
}

impl Inode<'_> {
    pub fn inode_size(&self) -> u64 {
        if self.extended {
            InodeHeader::EXTENDED_SIZE as u64
        } else {
            InodeHeader::COMPACT_SIZE as u64
        }
    }

    /// Bytes of the inode in the metadata area: header, xattrs, inline data.
    pub fn meta_len(&self) -> u64 {
        self.inode_size() + self.xattrs.len() as u64 + self.inline_len
    }
}

/// The whole layout.
#[derive(Debug)]
pub(super) struct Plan<'t> {
    /// Inodes in layout order (breadth first); the root is 0.
    pub inodes: Vec<Inode<'t>>,
    pub blksz: u64,
    /// The shared xattr area (entries at 4-byte ids) and its first block.
    pub shared_xattrs: Vec<u8>,
    pub xattr_blkaddr: u32,
    pub shared_xattr_count: usize,
    /// First data block.
    pub data_start: u64,
    /// Total blocks.
    pub blocks: u32,
}

/// The image's block count when the metadata area ends at byte `meta_end` and `next` blocks
/// are placed. fsck.erofs (1.8.6, `erofs_verify_xattr`) reads the 12-byte xattr header after
/// every inode, also one without xattrs, and fails when those bytes lie past the end of the
/// image; so an image whose last inode ends within 12 bytes of its end gets one more block.
pub(super) fn image_blocks(meta_end: u64, next: u64, blksz: u64) -> u64 {
    next.max((meta_end + XATTR_BODY_HEADER_SIZE as u64).div_ceil(blksz))
}

fn bad(path: &[u8], reason: &'static str) -> Error {
    Error::BadEntry {
        path: crate::read::lossy_path(path),
        reason,
    }
}

impl<'t> Plan<'t> {
    /// The layout with the metadata first (block 0 on), then the data: uncompressed images.
    pub fn new(tree: &'t Tree, opts: &ErofsWriteOptions) -> Result<Self> {
        let mut plan = Self::structure(tree, opts)?;
        plan.place_meta_first(opts)?;
        Ok(plan)
    }

    /// Inodes in order, hard links, directories' entries, xattr bodies; nothing placed.
    pub fn structure(tree: &'t Tree, opts: &ErofsWriteOptions) -> Result<Self> {
        let blksz = u64::from(opts.block_size);
        let Some(root) = tree.iter().next() else {
            return Err(bad(b"", "tree without a root"));
        };
        let mut inodes = vec![Self::inode(&root.entry, &root.content, opts)?];
        // Breadth first: each directory's children get consecutive inodes.
        let mut links: BTreeMap<u64, usize> = BTreeMap::new();
        // The directory holding each inode's first name (the root holds itself).
        let mut parents = vec![0usize];
        let mut next_dir = 0usize;
        while next_dir < inodes.len() {
            let dir = next_dir;
            next_dir += 1;
            let Some(d) = inodes.get(dir) else { break };
            if d.entry.file_type != FileType::Dir {
                continue;
            }
            let path = &d.entry.path;
            let mut children: Vec<(&'t [u8], usize, u8)> = Vec::new();
            let mut subdirs = 0u32;
            for node in tree.children(path) {
                let e = &node.entry;
                let name = e.name();
                if name.len() > 255 {
                    return Err(bad(&e.path, "name over 255 bytes (EROFS_NAME_LEN)"));
                }
                let link = e.link.filter(|_| e.file_type != FileType::Dir);
                let index = match link.and_then(|l| links.get(&l).copied()) {
                    Some(i) => {
                        // A further name of an inode already planned.
                        if let Some(first) = inodes.get_mut(i) {
                            if first.entry.file_type != e.file_type {
                                return Err(bad(&e.path, "hard link to an entry of another type"));
                            }
                            first.nlink = first.nlink.saturating_add(1);
                        }
                        i
                    }
                    None => {
                        let i = inodes.len();
                        inodes.push(Self::inode(e, &node.content, opts)?);
                        parents.push(dir);
                        if let Some(l) = link {
                            links.insert(l, i);
                        }
                        i
                    }
                };
                if e.file_type == FileType::Dir {
                    subdirs += 1;
                }
                children.push((name, index, dirent_file_type(e.file_type)));
            }
            let parent = parents.get(dir).copied().unwrap_or_default();
            children.push((b".", dir, 2));
            children.push((b"..", parent, 2));
            children.sort_by(|a, b| a.0.cmp(b.0));
            if let Some(d) = inodes.get_mut(dir) {
                d.nlink = 2u32.saturating_add(subdirs);
                d.children = children;
            }
        }
        if u32::try_from(inodes.len()).is_err() {
            return Err(Error::LimitExceeded {
                what: "EROFS inodes (32-bit i_ino)",
                limit: u64::from(u32::MAX),
            });
        }

        // Xattrs: those on more than two inodes once in the shared area, the rest inline.
        let mut count: BTreeMap<(&[u8], &[u8]), u32> = BTreeMap::new();
        if opts.shared_xattrs {
            for ino in &inodes {
                for (name, value) in &ino.entry.meta.xattrs {
                    let c = count.entry((name, value)).or_default();
                    *c = c.saturating_add(1);
                }
            }
        }
        let mut shared = Vec::new();
        let mut shared_ids: BTreeMap<(&[u8], &[u8]), u32> = BTreeMap::new();
        for ((name, value), _) in count.into_iter().filter(|(_, c)| *c > 2) {
            let mut one = Vec::new();
            let x = XattrEntry {
                name: name.to_vec(),
                value: value.to_vec(),
            };
            // Unstorable ones are refused below, naming an entry that has them.
            if x.encode(&mut one).is_err() {
                continue;
            }
            // An entry never crosses a block boundary when it fits in one.
            let len = one.len() as u64;
            let at = shared.len() as u64;
            if len <= blksz && at % blksz + len > blksz {
                shared.resize(at.next_multiple_of(blksz) as usize, 0);
            }
            let id = u32::try_from(shared.len() / 4).map_err(|_| Error::LimitExceeded {
                what: "EROFS shared xattr area (32-bit ids)",
                limit: u64::from(u32::MAX),
            })?;
            shared_ids.insert((name, value), id);
            shared.extend_from_slice(&one);
        }
        for ino in &mut inodes {
            Self::xattr_body(ino, &shared_ids)?;
        }
        let shared_xattr_count = shared_ids.len();
        for (path, capacity) in &opts.reserve {
            let ino = inodes
                .iter_mut()
                .find(|i| i.entry.path == path.as_slice())
                .ok_or(Error::InvalidOption {
                    option: "reserve",
                    reason: "names no entry of the tree",
                })?;
            if ino.entry.file_type != FileType::File {
                return Err(bad(
                    &ino.entry.path,
                    "a reserved slot must be a regular file",
                ));
            }
            if ino.entry.size > *capacity {
                return Err(bad(
                    &ino.entry.path,
                    "content larger than its reserved slot",
                ));
            }
            ino.reserve = Some(capacity.next_multiple_of(blksz));
        }
        for ino in &mut inodes {
            Self::size_and_form(ino, blksz, opts);
        }
        Ok(Self {
            inodes,
            blksz,
            shared_xattrs: shared,
            xattr_blkaddr: 0,
            shared_xattr_count,
            data_start: 0,
            blocks: 0,
        })
    }

    fn place_meta_first(&mut self, _opts: &ErofsWriteOptions) -> Result<()> {
        let blksz = self.blksz;
        let inodes = &mut self.inodes;
        let shared = &self.shared_xattrs;
        // Node ids in order.
        let mut at = FIRST_INODE_AT;
        for ino in inodes.iter_mut() {
            Self::layout(ino, blksz);
            at = at.next_multiple_of(32);
            let need = ino.meta_len();
            if need <= blksz && at % blksz + need > blksz {
                at = at.next_multiple_of(blksz);
            }
            ino.nid = at / 32;
            at += need;
        }
        let mut data_start = at.div_ceil(blksz);
        let xattr_blkaddr = if shared.is_empty() {
            0
        } else {
            let a = data_start;
            data_start += (shared.len() as u64).div_ceil(blksz);
            u32::try_from(a).map_err(|_| Error::LimitExceeded {
                what: "EROFS blocks (32-bit block addresses)",
                limit: u64::from(u32::MAX),
            })?
        };
        let mut next = data_start;
        for ino in inodes.iter_mut() {
            if ino.blocks > 0 {
                ino.blkaddr = u32::try_from(next).map_err(|_| Error::LimitExceeded {
                    what: "EROFS blocks (32-bit block addresses)",
                    limit: u64::from(u32::MAX),
                })?;
                next += ino.blocks;
            } else if ino.layout == FLAT_INLINE {
                ino.blkaddr = NULL_ADDR;
            }
        }
        let blocks =
            u32::try_from(image_blocks(at, next, blksz)).map_err(|_| Error::LimitExceeded {
                what: "EROFS blocks (32-bit block count)",
                limit: u64::from(u32::MAX),
            })?;
        if inodes.first().is_none_or(|r| r.nid > u64::from(u16::MAX)) {
            return Err(bad(b"", "root inode beyond nid 65535"));
        }
        self.xattr_blkaddr = xattr_blkaddr;
        self.data_start = data_start;
        self.blocks = blocks;
        Ok(())
    }

    /// An inode for `e` with everything that does not depend on its place.
    fn inode(e: &'t Entry, content: &'t Content, opts: &ErofsWriteOptions) -> Result<Inode<'t>> {
        let m = &e.meta;
        if m.mode & !0o7777 != 0 {
            return Err(bad(&e.path, "mode has bits beyond 0o7777"));
        }
        if m.mtime_nsec >= 1_000_000_000 {
            return Err(bad(&e.path, "mtime nanoseconds over 999999999"));
        }
        let (uid, gid) = if opts.all_root {
            (0, 0)
        } else {
            (m.uid, m.gid)
        };
        let epoch = i64::try_from(opts.epoch).unwrap_or(i64::MAX);
        let (mtime, mtime_nsec) = if opts.clamp_mtime && m.mtime >= epoch {
            (epoch, 0)
        } else {
            (m.mtime, m.mtime_nsec)
        };
        let mut rdev = 0;
        let mut target: &[u8] = &[];
        match e.file_type {
            FileType::Char | FileType::Block => {
                let (major, minor) = e
                    .rdev
                    .ok_or_else(|| bad(&e.path, "device without device numbers"))?;
                if major > 0xfff || minor > 0xf_ffff {
                    return Err(bad(
                        &e.path,
                        "device numbers beyond 12 bits major, 20 bits minor",
                    ));
                }
                rdev = encode_dev(major, minor);
            }
            FileType::Symlink => {
                target = e
                    .target
                    .as_deref()
                    .ok_or_else(|| bad(&e.path, "symlink without a target"))?;
                if target.is_empty() || target.len() > 4095 {
                    return Err(bad(&e.path, "symlink target empty or over 4095 bytes"));
                }
            }
            _ => {}
        }
        Ok(Inode {
            entry: e,
            content,
            nlink: 1,
            extended: false,
            xattrs: Vec::new(),
            xattr_icount: 0,
            layout: FLAT_PLAIN,
            size: 0,
            inline_len: 0,
            blocks: 0,
            nid: 0,
            blkaddr: 0,
            rdev,
            children: Vec::new(),
            target,
            mtime,
            mtime_nsec,
            uid,
            gid,
            reserve: None,
        })
    }

    /// The xattr body: header, ids of shared entries (at most 255), inline entries.
    fn xattr_body(ino: &mut Inode<'_>, shared_ids: &BTreeMap<(&[u8], &[u8]), u32>) -> Result<()> {
        let e = ino.entry;
        if e.meta.xattrs.is_empty() {
            return Ok(());
        }
        let mut ids = Vec::new();
        let mut inline = Vec::new();
        for (name, value) in &e.meta.xattrs {
            match shared_ids.get(&(name.as_slice(), value.as_slice())) {
                Some(id) if ids.len() < 255 => ids.push(*id),
                _ => XattrEntry {
                    name: name.clone(),
                    value: value.clone(),
                }
                .encode(&mut inline)
                .map_err(|reason| bad(&e.path, reason))?,
            }
        }
        let mut body = vec![0u8; XATTR_BODY_HEADER_SIZE];
        if let Some(c) = body.get_mut(4) {
            *c = ids.len() as u8;
        }
        for id in ids {
            body.extend_from_slice(&id.to_le_bytes());
        }
        body.extend_from_slice(&inline);
        // i_xattr_icount counts the body in 4-byte units past a 12-byte header, plus one.
        ino.xattr_icount = u16::try_from((body.len() - XATTR_BODY_HEADER_SIZE) / 4 + 1)
            .map_err(|_| bad(&e.path, "xattrs over 256 KiB (16-bit i_xattr_icount)"))?;
        ino.xattrs = body;
        Ok(())
    }

    /// `i_size` and the inode form.
    fn size_and_form(ino: &mut Inode<'_>, blksz: u64, opts: &ErofsWriteOptions) {
        let e = ino.entry;
        ino.size = match e.file_type {
            FileType::File => e.size,
            FileType::Dir => {
                let lens: Vec<usize> = ino.children.iter().map(|c| c.0.len()).collect();
                dir_size(&lens, blksz as usize)
            }
            FileType::Symlink => ino.target.len() as u64,
            _ => 0,
        };
        ino.extended = ino.uid > u32::from(u16::MAX)
            || ino.gid > u32::from(u16::MAX)
            || ino.size > u64::from(u32::MAX)
            || ino.nlink > u32::from(u16::MAX)
            || i64::try_from(opts.epoch).ok() != Some(ino.mtime)
            || ino.mtime_nsec != 0
            || ino.reserve.is_some_and(|c| c > u64::from(u32::MAX));
    }

    /// The flat data layout: inline when the tail fits after the inode, else plain (a
    /// reserved slot is always plain, over its whole capacity).
    pub fn layout(ino: &mut Inode<'_>, blksz: u64) {
        if let Some(capacity) = ino.reserve {
            ino.layout = FLAT_PLAIN;
            ino.blocks = capacity / blksz;
            return;
        }
        if ino.size == 0 {
            return;
        }
        let tail = ino.size % blksz;
        let head = ino.inode_size() + ino.xattrs.len() as u64;
        if tail > 0 && head + tail <= blksz {
            ino.layout = FLAT_INLINE;
            ino.inline_len = tail;
            ino.blocks = ino.size / blksz;
        } else {
            ino.layout = FLAT_PLAIN;
            ino.blocks = ino.size.div_ceil(blksz);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::image_blocks;

    #[test]
    fn an_inode_at_the_image_end_leaves_room_for_fscks_xattr_read() {
        // Metadata ending exactly at a block end with nothing after it: one more block.
        assert_eq!(image_blocks(4096, 1, 4096), 2);
        // The 12 bytes fit in the last block: no more.
        assert_eq!(image_blocks(4084, 1, 4096), 1);
        assert_eq!(image_blocks(4085, 1, 4096), 2);
        // Blocks placed after the metadata already hold those bytes.
        assert_eq!(image_blocks(4096, 3, 4096), 3);
    }
}
