//! The in-memory tree a [`Builder`](super::Builder) collects before planning the image.

use std::collections::BTreeMap;

use crate::raw::InodeKind;

pub(crate) use imgpipe_fstree::Content;

#[derive(Debug, Clone)]
pub(crate) enum NodeKind {
    Dir(BTreeMap<Vec<u8>, usize>),
    File {
        content: Content,
        size: u64,
    },
    Symlink(Vec<u8>),
    Device {
        kind: InodeKind,
        rdev: u32,
    },
    Ipc(InodeKind),
    /// A further name for node `.0` (hard link).
    Link(usize),
}

#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) mode: u16,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) mtime: u32,
    pub(crate) xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    pub(crate) kind: NodeKind,
    /// Path for error messages.
    pub(crate) path: Vec<u8>,
}

impl Node {
    pub(crate) fn inode_kind(&self) -> InodeKind {
        match &self.kind {
            NodeKind::Dir(_) => InodeKind::Dir,
            NodeKind::File { .. } => InodeKind::File,
            NodeKind::Symlink(_) => InodeKind::Symlink,
            NodeKind::Device { kind, .. } | NodeKind::Ipc(kind) => *kind,
            NodeKind::Link(_) => InodeKind::File,
        }
    }
}
