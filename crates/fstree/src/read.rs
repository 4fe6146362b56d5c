//! The one reading trait that every format reader implements.

use std::io::Write;

use crate::entry::Entry;

/// A content sink that can skip runs of zeros the image stores as holes (sparse blocks,
/// NULL chunks) instead of receiving them as bytes.
pub trait HoleWrite: Write {
    /// `len` zero bytes follow at the current position.
    fn hole(&mut self, len: u64) -> std::io::Result<()>;
}

/// A piece of a file's content as the image stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Extent {
    /// Where the piece starts in the file's content.
    pub file_offset: u64,
    /// Content bytes it holds.
    pub len: u64,
    /// Where its stored bytes start, relative to the image start.
    pub image_offset: u64,
    /// Stored length (equal to `len` unless compressed).
    pub stored_len: u64,
    /// Whether the stored bytes are compressed (then equal stored bytes with equal
    /// compressor settings mean equal content, but the stored bytes are not the content).
    pub compressed: bool,
}

/// A piece of a file's stored bytes, as [`FsRead::stored_pieces`] lists them: like an
/// [`Extent`], but the stored bytes may hold more than this file (a compressed squashfs
/// fragment block shared by several files' tails), the file's bytes starting at
/// `inner_offset` of the decoded piece. Two files whose pieces match one to one (all fields
/// but `image_offset`) with equal stored bytes have equal content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredPiece {
    /// Where the piece starts in the file's content.
    pub file_offset: u64,
    /// Content bytes it gives the file.
    pub len: u64,
    /// Where its stored bytes start, relative to the image start.
    pub image_offset: u64,
    /// Stored length.
    pub stored_len: u64,
    /// Whether the stored bytes are compressed.
    pub compressed: bool,
    /// Where the file's bytes start in the decoded piece (0 unless it is shared).
    pub inner_offset: u64,
}

impl From<Extent> for StoredPiece {
    fn from(e: Extent) -> Self {
        Self {
            file_offset: e.file_offset,
            len: e.len,
            image_offset: e.image_offset,
            stored_len: e.stored_len,
            compressed: e.compressed,
            inner_offset: 0,
        }
    }
}

/// Which facts a format keeps, so comparisons across formats look only at those.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Holds {
    /// Permission bits.
    pub mode: bool,
    /// uid and gid.
    pub owner: bool,
    /// Modification time in seconds (FAT: two-second resolution).
    pub mtime: bool,
    /// Nanoseconds of the modification time.
    pub mtime_nsec: bool,
    /// Extended attributes.
    pub xattrs: bool,
    /// Symbolic links, devices, fifos and sockets.
    pub special_files: bool,
    /// Hard links.
    pub hard_links: bool,
}

impl Holds {
    /// Everything a POSIX filesystem holds.
    pub const POSIX: Self = Self {
        mode: true,
        owner: true,
        mtime: true,
        mtime_nsec: true,
        xattrs: true,
        special_files: true,
        hard_links: true,
    };
}

/// A filesystem image opened for reading: walk its entries, stream a file's content, and
/// say where a file's bytes lie in the image.
///
/// Implemented by the ISO9660, squashfs, EROFS and FAT readers, so listing, extraction,
/// diffing and carrying a tree into another format need no per-format code.
pub trait FsRead {
    /// The reader's own handle on an entry (an inode, a directory record), enough to read it
    /// again without a lookup.
    type Node: Clone + Send + Sync;
    /// The reader's error type.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The facts this format keeps.
    fn holds(&self) -> Holds;

    /// Every entry, root first, each directory before its contents, siblings in byte order of
    /// their names. Bounded by the reader's limits.
    fn walk(&self) -> Result<Vec<(Entry, Self::Node)>, Self::Error>;

    /// Writes the content of a regular file to `out`; returns the bytes written.
    fn read_content(&self, node: &Self::Node, out: &mut dyn Write) -> Result<u64, Self::Error>;

    /// [`read_content`](Self::read_content), passing the runs of zeros the image stores as
    /// holes to [`HoleWrite::hole`] instead of as bytes, so a huge sparse file costs time
    /// in proportion to its stored bytes. Returns the content length (holes included). The
    /// default writes every byte.
    fn read_content_holes(
        &self,
        node: &Self::Node,
        out: &mut dyn HoleWrite,
    ) -> Result<u64, Self::Error> {
        self.read_content(node, out)
    }

    /// Where the file's content lies in the image, in content order, where the layout says
    /// (`None` when it does not, e.g. inline data). Holes are absent from the list.
    fn extents(&self, node: &Self::Node) -> Result<Option<Vec<Extent>>, Self::Error> {
        let _ = node;
        Ok(None)
    }

    /// The file's stored pieces, shared ones included ([`StoredPiece`]), where the layout
    /// says: what lets a comparison find equal content by equal stored bytes without
    /// decoding them. The default is [`extents`](Self::extents).
    fn stored_pieces(&self, node: &Self::Node) -> Result<Option<Vec<StoredPiece>>, Self::Error> {
        Ok(self
            .extents(node)?
            .map(|v| v.into_iter().map(StoredPiece::from).collect()))
    }

    /// What decodes the compressed [`StoredPiece`]s (the algorithm and whatever else their
    /// decoding depends on), as text: equal compressed bytes mean equal content only under
    /// the same codec. `None` (the default): compressed pieces are never compared stored.
    fn stored_codec(&self) -> Option<String> {
        None
    }

    /// The image's size in bytes, where the reader knows it: what bounds the work and output
    /// of extraction and diffs (`None`: no bound derived from it).
    fn image_len(&self) -> Option<u64> {
        None
    }
}
