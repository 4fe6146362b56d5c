//! Inodes (the inode table): a 16-byte common header, then a body per type. Types 1..=7 are
//! the basic forms (directory, file, symlink, block device, character device, fifo, socket),
//! 8..=14 the extended forms of the same (64-bit sizes, link counts, xattr index, directory
//! index).

use serde::Serialize;

use super::dir::DirIndex;
use super::{Input, SliceInput};
use crate::error::{Error, Result};

/// `fragment` value meaning "this file has no fragment".
pub const NO_FRAGMENT: u32 = 0xffff_ffff;
/// `xattr` value meaning "no xattrs".
pub const NO_XATTR: u32 = 0xffff_ffff;
/// Longest symlink target accepted (Linux `PATH_MAX`).
pub(crate) const MAX_SYMLINK: u32 = 4096;

/// What an inode is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InodeKind {
    /// Directory.
    Dir,
    /// Regular file.
    File,
    /// Symbolic link.
    Symlink,
    /// Block device.
    BlockDev,
    /// Character device.
    CharDev,
    /// Named pipe.
    Fifo,
    /// Unix socket.
    Socket,
}

impl InodeKind {
    /// The basic type number (1..=7), as directory entries store it.
    pub fn basic_type(self) -> u16 {
        match self {
            Self::Dir => 1,
            Self::File => 2,
            Self::Symlink => 3,
            Self::BlockDev => 4,
            Self::CharDev => 5,
            Self::Fifo => 6,
            Self::Socket => 7,
        }
    }

    /// The kind for a basic or extended type number.
    pub fn from_type(t: u16) -> Option<(Self, bool)> {
        let (basic, extended) = match t {
            1..=7 => (t, false),
            8..=14 => (t - 7, true),
            _ => return None,
        };
        let kind = match basic {
            1 => Self::Dir,
            2 => Self::File,
            3 => Self::Symlink,
            4 => Self::BlockDev,
            5 => Self::CharDev,
            6 => Self::Fifo,
            _ => Self::Socket,
        };
        Some((kind, extended))
    }

    /// The `S_IFMT` bits of `st_mode`.
    pub fn mode_bits(self) -> u32 {
        match self {
            Self::Dir => 0o040000,
            Self::File => 0o100000,
            Self::Symlink => 0o120000,
            Self::BlockDev => 0o060000,
            Self::CharDev => 0o020000,
            Self::Fifo => 0o010000,
            Self::Socket => 0o140000,
        }
    }

    /// The `ls -l` type letter.
    pub fn letter(self) -> char {
        match self {
            Self::Dir => 'd',
            Self::File => '-',
            Self::Symlink => 'l',
            Self::BlockDev => 'b',
            Self::CharDev => 'c',
            Self::Fifo => 'p',
            Self::Socket => 's',
        }
    }
}

/// A directory inode's body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DirInode {
    /// Start of the listing's metadata block, relative to the directory table.
    pub start_block: u32,
    /// Offset of the listing inside that (uncompressed) block.
    pub offset: u16,
    /// Listing size in bytes plus 3 (squashfs counts `.` and `..`).
    pub file_size: u32,
    /// Inode number of the parent directory.
    pub parent_inode: u32,
    /// Directory index (extended form only).
    pub index: Vec<DirIndex>,
}

/// A regular file inode's body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileInode {
    /// Absolute position (from the image start) of the first data block.
    pub blocks_start: u64,
    /// File size in bytes.
    pub file_size: u64,
    /// Bytes saved by sparse (all-zero, not stored) blocks (extended form only).
    pub sparse: u64,
    /// Fragment index holding the tail, or [`NO_FRAGMENT`].
    pub fragment: u32,
    /// Offset of the tail inside the uncompressed fragment block.
    pub frag_offset: u32,
    /// One size word per full block (see [`data_block_size`](super::data_block_size)).
    pub block_sizes: Vec<u32>,
}

/// The type-specific part of an inode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InodeData {
    /// A directory.
    Dir(DirInode),
    /// A regular file.
    File(FileInode),
    /// A symlink and its target.
    Symlink(Vec<u8>),
    /// A device (kind says block or character); `rdev` in Linux's `new_encode_dev` form.
    Device(u32),
    /// A fifo or socket.
    Ipc,
}

/// One inode of the inode table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inode {
    /// What it is.
    pub kind: InodeKind,
    /// Whether the extended form (types 8..=14) is used.
    pub extended: bool,
    /// Permission bits (`0o7777`).
    pub mode: u16,
    /// Index into the id table for the owner.
    pub uid_idx: u16,
    /// Index into the id table for the group.
    pub gid_idx: u16,
    /// Modification time, seconds since the epoch.
    pub mtime: u32,
    /// Inode number, 1..=inode_count.
    pub inode_number: u32,
    /// Link count (basic files have none on disk: 1).
    pub nlink: u32,
    /// Xattr id, or [`NO_XATTR`] (extended forms only).
    pub xattr: u32,
    /// Type-specific data.
    pub data: InodeData,
}

fn bad(field: &'static str, offset: u64, reason: &'static str) -> Error {
    Error::Malformed {
        structure: "inode",
        field,
        offset,
        reason,
    }
}

/// Number of full-block size words a file inode carries.
pub(crate) fn block_count(file_size: u64, fragment: u32, block_log: u16) -> u64 {
    let bs = 1u64 << block_log;
    if fragment == NO_FRAGMENT {
        file_size.div_ceil(bs)
    } else {
        file_size >> block_log
    }
}

impl Inode {
    /// Parses one inode from `bytes` (which start at absolute offset `at`); returns it and
    /// the bytes consumed. `block_log` is the superblock's; `max_blocks` caps the block list.
    pub fn parse(bytes: &[u8], at: u64, block_log: u16, max_blocks: u64) -> Result<(Self, usize)> {
        let mut input = SliceInput::new(bytes, at);
        let inode = Self::read(&mut input, block_log, max_blocks)?;
        Ok((inode, input.consumed()))
    }

    pub(crate) fn read(input: &mut impl Input, block_log: u16, max_blocks: u64) -> Result<Self> {
        Self::read_with(input, block_log, max_blocks, true)
    }

    /// Reads an inode without a file's block list (left empty; its length is still checked
    /// against `max_blocks`): what a walk needs, in constant memory whatever the list's length.
    pub(crate) fn read_header(
        input: &mut impl Input,
        block_log: u16,
        max_blocks: u64,
    ) -> Result<Self> {
        Self::read_with(input, block_log, max_blocks, false)
    }

    fn read_with(
        input: &mut impl Input,
        block_log: u16,
        max_blocks: u64,
        with_blocks: bool,
    ) -> Result<Self> {
        const S: &str = "inode";
        let at = input.offset();
        let t = input.u16(S)?;
        let (kind, extended) =
            InodeKind::from_type(t).ok_or_else(|| bad("inode_type", at, "not in 1..=14"))?;
        let mode = input.u16(S)?;
        let uid_idx = input.u16(S)?;
        let gid_idx = input.u16(S)?;
        let mtime = input.u32(S)?;
        let inode_number = input.u32(S)?;
        if inode_number == 0 {
            return Err(bad("inode_number", at, "zero"));
        }
        let mut nlink = 1;
        let mut xattr = NO_XATTR;
        let data = match (kind, extended) {
            (InodeKind::Dir, false) => {
                let start_block = input.u32(S)?;
                nlink = input.u32(S)?;
                let file_size = u32::from(input.u16(S)?);
                let offset = input.u16(S)?;
                let parent_inode = input.u32(S)?;
                InodeData::Dir(DirInode {
                    start_block,
                    offset,
                    file_size,
                    parent_inode,
                    index: Vec::new(),
                })
            }
            (InodeKind::Dir, true) => {
                nlink = input.u32(S)?;
                let file_size = input.u32(S)?;
                let start_block = input.u32(S)?;
                let parent_inode = input.u32(S)?;
                let count = input.u16(S)?;
                let offset = input.u16(S)?;
                xattr = input.u32(S)?;
                let mut index = Vec::new();
                for _ in 0..count {
                    index.push(DirIndex::read(input)?);
                }
                InodeData::Dir(DirInode {
                    start_block,
                    offset,
                    file_size,
                    parent_inode,
                    index,
                })
            }
            (InodeKind::File, ext) => {
                let mut f = FileInode::default();
                if ext {
                    f.blocks_start = input.u64(S)?;
                    f.file_size = input.u64(S)?;
                    f.sparse = input.u64(S)?;
                    nlink = input.u32(S)?;
                    f.fragment = input.u32(S)?;
                    f.frag_offset = input.u32(S)?;
                    xattr = input.u32(S)?;
                } else {
                    f.blocks_start = u64::from(input.u32(S)?);
                    f.fragment = input.u32(S)?;
                    f.frag_offset = input.u32(S)?;
                    f.file_size = u64::from(input.u32(S)?);
                }
                let n = block_count(f.file_size, f.fragment, block_log);
                if n > max_blocks {
                    return Err(Error::LimitExceeded {
                        what: "data blocks of one file",
                        limit: max_blocks,
                    });
                }
                for _ in 0..if with_blocks { n } else { 0 } {
                    let w = input.u32(S)?;
                    if w & !(0x1ff_ffff) != 0 || (w & 0xff_ffff) > (1 << block_log) {
                        return Err(bad(
                            "block_sizes",
                            input.offset(),
                            "size word larger than the block size",
                        ));
                    }
                    f.block_sizes.push(w);
                }
                InodeData::File(f)
            }
            (InodeKind::Symlink, ext) => {
                nlink = input.u32(S)?;
                let size = input.u32(S)?;
                if size > MAX_SYMLINK {
                    return Err(bad("symlink_size", input.offset(), "longer than 4096"));
                }
                let target = input.bytes(size as usize, S)?;
                if ext {
                    xattr = input.u32(S)?;
                }
                InodeData::Symlink(target)
            }
            (InodeKind::BlockDev | InodeKind::CharDev, ext) => {
                nlink = input.u32(S)?;
                let rdev = input.u32(S)?;
                if ext {
                    xattr = input.u32(S)?;
                }
                InodeData::Device(rdev)
            }
            (InodeKind::Fifo | InodeKind::Socket, ext) => {
                nlink = input.u32(S)?;
                if ext {
                    xattr = input.u32(S)?;
                }
                InodeData::Ipc
            }
        };
        Ok(Self {
            kind,
            extended,
            mode,
            uid_idx,
            gid_idx,
            mtime,
            inode_number,
            nlink,
            xattr,
            data,
        })
    }

    /// Appends the encoded inode to `out`. Fails when a value does not fit the basic form
    /// or the data does not match the kind.
    pub fn write_to(&self, out: &mut Vec<u8>) -> Result<()> {
        let too_big = |option| Error::InvalidOption {
            option,
            reason: "value does not fit the basic inode form",
        };
        let t = self.kind.basic_type() + if self.extended { 7 } else { 0 };
        out.extend_from_slice(&t.to_le_bytes());
        out.extend_from_slice(&self.mode.to_le_bytes());
        out.extend_from_slice(&self.uid_idx.to_le_bytes());
        out.extend_from_slice(&self.gid_idx.to_le_bytes());
        out.extend_from_slice(&self.mtime.to_le_bytes());
        out.extend_from_slice(&self.inode_number.to_le_bytes());
        let put32 = |out: &mut Vec<u8>, v: u32| out.extend_from_slice(&v.to_le_bytes());
        match (&self.data, self.extended) {
            (InodeData::Dir(d), false) => {
                if !d.index.is_empty() {
                    return Err(too_big("directory index"));
                }
                put32(out, d.start_block);
                put32(out, self.nlink);
                let size = u16::try_from(d.file_size).map_err(|_| too_big("directory size"))?;
                out.extend_from_slice(&size.to_le_bytes());
                out.extend_from_slice(&d.offset.to_le_bytes());
                put32(out, d.parent_inode);
            }
            (InodeData::Dir(d), true) => {
                put32(out, self.nlink);
                put32(out, d.file_size);
                put32(out, d.start_block);
                put32(out, d.parent_inode);
                let n = u16::try_from(d.index.len()).map_err(|_| too_big("directory index"))?;
                out.extend_from_slice(&n.to_le_bytes());
                out.extend_from_slice(&d.offset.to_le_bytes());
                put32(out, self.xattr);
                for i in &d.index {
                    i.write_to(out)?;
                }
            }
            (InodeData::File(f), false) => {
                put32(
                    out,
                    u32::try_from(f.blocks_start).map_err(|_| too_big("blocks_start"))?,
                );
                put32(out, f.fragment);
                put32(out, f.frag_offset);
                put32(
                    out,
                    u32::try_from(f.file_size).map_err(|_| too_big("file_size"))?,
                );
                for &b in &f.block_sizes {
                    put32(out, b);
                }
            }
            (InodeData::File(f), true) => {
                out.extend_from_slice(&f.blocks_start.to_le_bytes());
                out.extend_from_slice(&f.file_size.to_le_bytes());
                out.extend_from_slice(&f.sparse.to_le_bytes());
                put32(out, self.nlink);
                put32(out, f.fragment);
                put32(out, f.frag_offset);
                put32(out, self.xattr);
                for &b in &f.block_sizes {
                    put32(out, b);
                }
            }
            (InodeData::Symlink(target), ext) => {
                put32(out, self.nlink);
                let n = u32::try_from(target.len())
                    .ok()
                    .filter(|&n| n <= MAX_SYMLINK)
                    .ok_or(Error::InvalidOption {
                        option: "symlink target",
                        reason: "longer than 4096 bytes",
                    })?;
                put32(out, n);
                out.extend_from_slice(target);
                if ext {
                    put32(out, self.xattr);
                }
            }
            (InodeData::Device(rdev), ext) => {
                put32(out, self.nlink);
                put32(out, *rdev);
                if ext {
                    put32(out, self.xattr);
                }
            }
            (InodeData::Ipc, ext) => {
                put32(out, self.nlink);
                if ext {
                    put32(out, self.xattr);
                }
            }
        }
        Ok(())
    }
}

/// Linux `new_encode_dev`: the form squashfs stores device numbers in.
pub fn encode_dev(major: u32, minor: u32) -> u32 {
    (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12)
}

/// Linux `new_decode_dev`: `(major, minor)`.
pub fn decode_dev(rdev: u32) -> (u32, u32) {
    (
        (rdev & 0xfff00) >> 8,
        (rdev & 0xff) | ((rdev >> 12) & 0xfff00),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Inode> {
        let base = |kind, extended, data| Inode {
            kind,
            extended,
            mode: 0o755,
            uid_idx: 1,
            gid_idx: 0,
            mtime: 1_700_000_000,
            inode_number: 7,
            nlink: if extended { 2 } else { 1 },
            xattr: if extended { 3 } else { NO_XATTR },
            data,
        };
        let file = FileInode {
            blocks_start: 96,
            file_size: 300_000,
            sparse: 0,
            fragment: 2,
            frag_offset: 100,
            block_sizes: vec![1000, 0x0100_0000 | 131_072],
        };
        vec![
            base(
                InodeKind::Dir,
                false,
                InodeData::Dir(DirInode {
                    start_block: 10,
                    offset: 20,
                    file_size: 30,
                    parent_inode: 8,
                    index: vec![],
                }),
            ),
            base(
                InodeKind::Dir,
                true,
                InodeData::Dir(DirInode {
                    start_block: 10,
                    offset: 20,
                    file_size: 30_000,
                    parent_inode: 8,
                    index: vec![DirIndex {
                        index: 8000,
                        start: 8200,
                        name: b"mmm".to_vec(),
                    }],
                }),
            ),
            base(InodeKind::File, false, InodeData::File(file.clone())),
            base(InodeKind::File, true, InodeData::File(file)),
            base(
                InodeKind::Symlink,
                false,
                InodeData::Symlink(b"../x".to_vec()),
            ),
            base(
                InodeKind::Symlink,
                true,
                InodeData::Symlink(b"/abs".to_vec()),
            ),
            base(
                InodeKind::CharDev,
                false,
                InodeData::Device(encode_dev(1, 3)),
            ),
            base(
                InodeKind::BlockDev,
                true,
                InodeData::Device(encode_dev(7, 300)),
            ),
            base(InodeKind::Fifo, false, InodeData::Ipc),
            base(InodeKind::Socket, true, InodeData::Ipc),
        ]
    }

    #[test]
    fn round_trip_every_type_and_truncations_fail() {
        for inode in samples() {
            let mut b = Vec::new();
            inode.write_to(&mut b).unwrap();
            let (back, used) = Inode::parse(&b, 0, 17, 1 << 20).unwrap();
            assert_eq!(back, inode);
            assert_eq!(used, b.len());
            for n in 0..b.len() {
                assert!(Inode::parse(&b[..n], 0, 17, 1 << 20).is_err(), "{n}");
            }
        }
    }

    #[test]
    fn dev_encoding_matches_linux() {
        assert_eq!(encode_dev(1, 3), 0x103);
        assert_eq!(decode_dev(encode_dev(259, 70000)), (259, 70000));
    }

    #[test]
    fn absurd_block_count_is_a_limit_error() {
        let mut b = Vec::new();
        let mut inode = samples().swap_remove(3);
        if let InodeData::File(f) = &mut inode.data {
            f.file_size = u64::MAX;
            f.block_sizes.clear();
        }
        inode.write_to(&mut b).unwrap();
        assert!(matches!(
            Inode::parse(&b, 0, 12, 1 << 20),
            Err(Error::LimitExceeded { .. })
        ));
    }
}
