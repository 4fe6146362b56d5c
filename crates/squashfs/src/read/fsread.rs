//! [`FsRead`] for the squashfs [`Reader`]: entries in the shared vocabulary, content, and the
//! data blocks of a file as extents.

use std::io::Write;
use std::sync::Arc;

use imgpipe_fstree::{Entry, Extent, FileType, FsRead, Holds, Metadata, StoredPiece};

use super::Reader;
use crate::error::{Error, Result};
use crate::raw::{Inode, InodeData, InodeKind, NO_FRAGMENT, data_block_size, decode_dev};

/// The shared file type of an inode kind.
pub(crate) fn file_type(k: InodeKind) -> FileType {
    match k {
        InodeKind::Dir => FileType::Dir,
        InodeKind::File => FileType::File,
        InodeKind::Symlink => FileType::Symlink,
        InodeKind::BlockDev => FileType::Block,
        InodeKind::CharDev => FileType::Char,
        InodeKind::Fifo => FileType::Fifo,
        InodeKind::Socket => FileType::Socket,
    }
}

/// The squashfs reader's handle on an entry ([`FsRead::Node`]): where its inode lies and the
/// inode without a file's block list, shared by every name of it. The block list is read
/// when the content or the extents are asked for, so a walk's memory does not grow with
/// what an inode claims.
#[derive(Debug, Clone)]
pub struct InodeHandle {
    /// The inode reference (block << 16 | offset): the inode's identity.
    pub inode_ref: u64,
    /// The inode; a file's `block_sizes` is empty here.
    pub inode: Arc<Inode>,
}

impl Reader {
    /// The shared [`Entry`] for `inode` (found at reference `inode_ref`) at `path`: owners
    /// resolved through the id table, xattrs sorted by name, a hard-link identity on files
    /// with more than one name. The identity is the inode's location, not the inode number
    /// the image claims, so two distinct inodes sharing a number stay two files.
    pub fn entry(&self, path: &[u8], inode_ref: u64, inode: &Inode) -> Result<Entry> {
        let (uid, gid) = self.owner(inode)?;
        let mut xattrs = self.xattrs(inode)?;
        xattrs.sort();
        let meta = Metadata {
            mode: u32::from(inode.mode & 0o7777),
            uid,
            gid,
            mtime: i64::from(inode.mtime),
            mtime_nsec: 0,
            xattrs,
        };
        let mut e = Entry::new(path, file_type(inode.kind), meta);
        match &inode.data {
            InodeData::File(f) => {
                e.size = f.file_size;
                if inode.nlink > 1 {
                    e.link = Some(inode_ref);
                }
            }
            InodeData::Symlink(t) => {
                e.size = t.len() as u64;
                e.target = Some(t.clone());
            }
            InodeData::Device(d) => e.rdev = Some(decode_dev(*d)),
            InodeData::Dir(_) | InodeData::Ipc => {}
        }
        Ok(e)
    }

    fn file_extents(&self, inode: &Inode) -> Result<Option<Vec<Extent>>> {
        Ok(self.file_pieces(inode, false)?.map(|v| {
            v.into_iter()
                .map(|p| Extent {
                    file_offset: p.file_offset,
                    len: p.len,
                    image_offset: p.image_offset,
                    stored_len: p.stored_len,
                    compressed: p.compressed,
                })
                .collect()
        }))
    }

    /// The file's stored pieces; with `shared`, a tail in a compressed fragment block is the
    /// whole block (the file's bytes at its offset inside), else such a file has none.
    fn file_pieces(&self, inode: &Inode, shared: bool) -> Result<Option<Vec<StoredPiece>>> {
        let InodeData::File(f) = &inode.data else {
            return Ok(None);
        };
        let bs = u64::from(self.superblock().block_size);
        let mut out = Vec::with_capacity(f.block_sizes.len() + 1);
        let mut pos = f.blocks_start;
        let mut file_offset = 0u64;
        for &word in &f.block_sizes {
            let len = f.file_size.saturating_sub(file_offset).min(bs);
            let (stored, compressed) = data_block_size(word);
            if word != 0 && stored == 0 {
                // Not a hole, yet stored in no byte: reading it fails too.
                return Err(Error::Malformed {
                    structure: "data block",
                    field: "size",
                    offset: pos,
                    reason: "a stored block of zero bytes",
                });
            }
            let end = pos.checked_add(u64::from(stored));
            if end.is_none_or(|end| end > self.superblock().bytes_used) {
                return Err(Error::Truncated {
                    structure: "data block",
                    offset: pos,
                    needed: u64::from(stored),
                    available: self.superblock().bytes_used.saturating_sub(pos),
                });
            }
            // A zero size word is a sparse block: a hole, stored nowhere.
            if word != 0 {
                out.push(StoredPiece {
                    file_offset,
                    len,
                    image_offset: pos,
                    stored_len: u64::from(stored),
                    compressed,
                    inner_offset: 0,
                });
            }
            pos += u64::from(stored);
            file_offset += len;
        }
        if f.fragment != NO_FRAGMENT && file_offset < f.file_size {
            // The tail is a piece of a fragment block shared with other files. Stored
            // uncompressed, the piece itself is the extent; compressed, no stored range holds
            // this file's bytes alone, so the file has no extents to report.
            let frag = self.fragment_entry(f.fragment)?;
            let (stored, compressed) = data_block_size(frag.size);
            let len = f.file_size - file_offset;
            if compressed {
                if !shared {
                    return Ok(None);
                }
                if frag
                    .start
                    .checked_add(u64::from(stored))
                    .is_none_or(|end| end > self.superblock().bytes_used)
                {
                    return Err(Error::Truncated {
                        structure: "fragment block",
                        offset: frag.start,
                        needed: u64::from(stored),
                        available: self.superblock().bytes_used.saturating_sub(frag.start),
                    });
                }
                out.push(StoredPiece {
                    file_offset,
                    len,
                    image_offset: frag.start,
                    stored_len: u64::from(stored),
                    compressed: true,
                    inner_offset: u64::from(f.frag_offset),
                });
                return Ok(Some(out));
            }
            let start = frag.start.checked_add(u64::from(f.frag_offset));
            let end = start.and_then(|s| s.checked_add(len));
            if end.is_none_or(|end| {
                end > self.superblock().bytes_used
                    || end > frag.start.saturating_add(u64::from(stored))
            }) {
                return Err(Error::Truncated {
                    structure: "fragment block",
                    offset: frag.start,
                    needed: u64::from(f.frag_offset).saturating_add(len),
                    available: u64::from(stored),
                });
            }
            out.push(StoredPiece {
                file_offset,
                len,
                image_offset: start.unwrap_or(frag.start),
                stored_len: len,
                compressed: false,
                inner_offset: 0,
            });
        }
        Ok(Some(out))
    }
}

impl FsRead for Reader {
    type Node = InodeHandle;
    type Error = Error;

    /// squashfs keeps everything POSIX has but nanoseconds.
    fn holds(&self) -> Holds {
        Holds {
            mtime_nsec: false,
            ..Holds::POSIX
        }
    }

    fn walk(&self) -> Result<Vec<(Entry, InodeHandle)>> {
        self.walk_with(false)?
            .into_iter()
            .map(|w| {
                let e = self.entry(&w.path, w.inode_ref, &w.inode)?;
                Ok((
                    e,
                    InodeHandle {
                        inode_ref: w.inode_ref,
                        inode: w.inode,
                    },
                ))
            })
            .collect()
    }

    fn read_content(&self, node: &InodeHandle, out: &mut dyn Write) -> Result<u64> {
        // The block list is read on use, once per content read.
        let inode = self.inode(node.inode_ref)?;
        self.read_file(&inode, out)
    }

    fn read_content_holes(
        &self,
        node: &InodeHandle,
        out: &mut dyn imgpipe_fstree::HoleWrite,
    ) -> Result<u64> {
        let inode = self.inode(node.inode_ref)?;
        let io = |source| Error::Io {
            what: "writing file content",
            source,
        };
        self.read_file_chunks(&inode, &mut |c| match c {
            super::Chunk::Data(d) => out.write_all(d).map_err(io),
            super::Chunk::Zeros(n) => out.hole(n as u64).map_err(io),
        })
    }

    fn image_len(&self) -> Option<u64> {
        Some(self.superblock().bytes_used)
    }

    fn extents(&self, node: &InodeHandle) -> Result<Option<Vec<Extent>>> {
        if !matches!(node.inode.data, InodeData::File(_)) {
            return Ok(None);
        }
        self.file_extents(&self.inode(node.inode_ref)?)
    }

    fn stored_codec(&self) -> Option<String> {
        Some(format!(
            "squashfs {:?} {:?}",
            self.superblock().compressor,
            self.compressor_options()
        ))
    }

    fn stored_pieces(&self, node: &InodeHandle) -> Result<Option<Vec<StoredPiece>>> {
        if !matches!(node.inode.data, InodeData::File(_)) {
            return Ok(None);
        }
        self.file_pieces(&self.inode(node.inode_ref)?, true)
    }
}
