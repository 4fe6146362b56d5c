//! The ISO9660 reader in the shared vocabulary: [`imgpipe_fstree::FsRead`], so listing,
//! extraction, diffing and carrying the tree into another format need no ISO-specific code.
//!
//! The reader's node is its own [`Entry`](super::Entry): the directory record resolved with
//! Rock Ridge, which keeps what only ISO9660 has (extents, the hidden flag, zisofs, the
//! record's offset, access and change times).

use std::io::{Read, Seek, Write};
use std::path::Path;

use imgpipe_fstree::{ExtractOptions, ExtractReport, FileType, FsRead, Holds, Metadata};

use super::{Entry, EntryKind, Namespace, Reader};
use crate::error::{Error, Result};
use crate::raw::SECTOR_SIZE;

impl EntryKind {
    /// The shared file type.
    pub fn file_type(self) -> FileType {
        match self {
            Self::File => FileType::File,
            Self::Directory => FileType::Dir,
            Self::Symlink => FileType::Symlink,
            Self::CharDevice => FileType::Char,
            Self::BlockDevice => FileType::Block,
            Self::Fifo => FileType::Fifo,
            Self::Socket => FileType::Socket,
        }
    }
}

impl Entry {
    /// This entry in the shared vocabulary, at `path` (relative, no leading `/`).
    ///
    /// Without Rock Ridge the mode is the reader's default (`0o555` for directories, `0o444`
    /// otherwise) and the owner root; [`FsRead::holds`] says these are not stored. The mtime
    /// is Rock Ridge's TF modify time, else the record's date (0 when unset). The hard-link
    /// identity is the Rock Ridge file serial number of a non-directory with more than one
    /// link.
    pub fn to_fs_entry(&self, path: &[u8]) -> imgpipe_fstree::Entry {
        let file_type = self.kind.file_type();
        let mut meta = Metadata::new(self.mode, self.mtime.unwrap_or(0));
        meta.uid = self.uid;
        meta.gid = self.gid;
        let mut e = imgpipe_fstree::Entry::new(path, file_type, meta);
        e.size = match file_type {
            FileType::File => self.size,
            FileType::Symlink => self
                .link_target_bytes
                .as_ref()
                .map_or(0, |t| t.len() as u64),
            _ => 0,
        };
        e.target = self.link_target_bytes.clone();
        e.rdev = self
            .device
            .filter(|_| matches!(file_type, FileType::Char | FileType::Block));
        e.link = self
            .ino
            .filter(|_| self.nlink > 1 && file_type != FileType::Dir)
            .map(u64::from);
        e
    }
}

impl<R: Read + Seek + Send> FsRead for Reader<R> {
    type Node = Entry;
    type Error = Error;

    /// With Rock Ridge: mode, owner, mtime (seconds), special files and hard links (file
    /// serial numbers). Joliet and plain ISO9660 keep names, sizes and the record date only.
    /// Neither keeps xattrs or nanoseconds.
    fn holds(&self) -> Holds {
        let rr = self.namespace == Namespace::RockRidge;
        Holds {
            mode: rr,
            owner: rr,
            mtime: true,
            mtime_nsec: false,
            xattrs: false,
            special_files: rr,
            hard_links: rr,
        }
    }

    fn walk(&self) -> Result<Vec<(imgpipe_fstree::Entry, Entry)>> {
        let mut out = vec![(self.root.to_fs_entry(b""), self.root.clone())];
        self.walk_from(self.root.clone(), self.namespace, |p, e| {
            // A name is one path component: `/` inside one (Rock Ridge NM, Joliet) would put
            // the entry in another directory for every consumer of the walk.
            let n = &e.name_bytes;
            if n.is_empty() || n == b"." || n == b".." || n.contains(&b'/') || n.contains(&0) {
                return Err(Error::UnsafePath {
                    path: String::from_utf8_lossy(p).into_owned(),
                    reason: "a name that is empty, `.`, `..`, or holds `/` or NUL",
                });
            }
            out.push((e.to_fs_entry(p), e.clone()));
            Ok(())
        })?;
        // walk_from lists a directory's children before descending; the shared order is
        // depth-first (sort is stable, so duplicate names keep their record order).
        out.sort_by(|a, b| {
            a.0.path
                .split(|&c| c == b'/')
                .cmp(b.0.path.split(|&c| c == b'/'))
        });
        Ok(out)
    }

    /// The bytes of the file's extents. A zisofs-compressed file's stored (compressed) bytes
    /// are written as they are.
    fn read_content(&self, node: &Entry, out: &mut dyn Write) -> Result<u64> {
        self.copy_data(node, out)
    }

    fn image_len(&self) -> Option<u64> {
        Some(self.len)
    }

    /// One extent per directory record of the file (multi-extent files have several).
    fn extents(&self, node: &Entry) -> Result<Option<Vec<imgpipe_fstree::Extent>>> {
        if node.kind != EntryKind::File {
            return Ok(None);
        }
        let mut at = 0u64;
        let mut out = Vec::with_capacity(node.extents.len());
        for x in &node.extents {
            let len = u64::from(x.length);
            if len > 0 {
                out.push(imgpipe_fstree::Extent {
                    file_offset: at,
                    len,
                    image_offset: u64::from(x.block) * SECTOR_SIZE as u64,
                    stored_len: len,
                    compressed: node.zisofs,
                });
            }
            at += len;
        }
        Ok(Some(out))
    }
}

impl<R: Read + Seek + Send> Reader<R> {
    /// Extracts every entry into `dest` (created if missing) with the shared extractor,
    /// [`imgpipe_fstree::extract`].
    ///
    /// # Security
    /// Nothing is written outside `dest`: unsafe names (`..`, `/`, NUL), duplicates, an entry
    /// below something that is not a directory it extracted, and pre-existing files are
    /// refused ([`Error::UnsafePath`]); files are created fresh and their metadata is set
    /// through the open descriptor.
    pub fn extract(&mut self, dest: &Path, opts: ExtractOptions) -> Result<ExtractReport> {
        imgpipe_fstree::extract(&*self, dest, opts).map_err(from_extract_error)
    }
}

/// The shared extractor's error in this crate's terms (the reader's own errors come back
/// as they were).
fn from_extract_error(e: imgpipe_fstree::Error) -> Error {
    use imgpipe_fstree::Error as E;
    let lossy = |p: &[u8]| String::from_utf8_lossy(p).into_owned();
    match e {
        E::Reader(inner) => match inner.downcast::<Error>() {
            Ok(own) => *own,
            Err(other) => Error::Io {
                what: "reading the image",
                source: std::io::Error::other(other),
            },
        },
        E::Escape { path, reason } | E::Refused { path, reason } => Error::UnsafePath {
            path: lossy(&path),
            reason,
        },
        E::InvalidPath { path } => Error::UnsafePath {
            path: lossy(&path),
            reason: "invalid path component",
        },
        E::Duplicate { path } => Error::UnsafePath {
            path: lossy(&path),
            reason: "two entries with the same name",
        },
        E::Io { what, path, source } => Error::IoPath { what, path, source },
        E::LimitExceeded { what, limit } => Error::LimitExceeded {
            what,
            limit,
            offset: 0,
        },
        other => Error::Io {
            what: "extracting",
            source: std::io::Error::other(other),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use imgpipe_fstree::{FileType, FsRead};

    use crate::{Builder, Metadata, Options, Reader};

    fn image(rock_ridge: bool) -> Vec<u8> {
        let mut o = Options::new("T", 1_700_000_000);
        o.rock_ridge = rock_ridge;
        let mut b = Builder::new(o);
        b.add_dir("b", Metadata::directory(0o750)).unwrap();
        b.add_file("b/z.txt", Metadata::file(0o600), b"zz".to_vec())
            .unwrap();
        b.add_dir("b/a", Metadata::directory(0o755)).unwrap();
        b.add_file("a.txt", Metadata::file(0o644), b"hello\n".to_vec())
            .unwrap();
        if rock_ridge {
            b.add_symlink("l", Metadata::symlink(), "a.txt").unwrap();
        }
        let mut img = Cursor::new(Vec::new());
        b.build(&mut img).unwrap();
        img.into_inner()
    }

    #[test]
    fn walks_depth_first_in_name_order_with_shared_entries() {
        let img = image(true);
        let r = Reader::open(Cursor::new(&img[..])).unwrap();
        let walked = FsRead::walk(&r).unwrap();
        let paths: Vec<String> = walked.iter().map(|(e, _)| e.display_path()).collect();
        assert_eq!(paths, ["/", "/a.txt", "/b", "/b/a", "/b/z.txt", "/l"]);
        let get = |p: &str| {
            walked
                .iter()
                .find(|(e, _)| e.display_path() == p)
                .unwrap()
                .clone()
        };
        let (b, _) = get("/b");
        assert_eq!(
            (b.file_type, b.meta.mode, b.size),
            (FileType::Dir, 0o750, 0)
        );
        let (l, _) = get("/l");
        assert_eq!(l.file_type, FileType::Symlink);
        assert_eq!(l.target.as_deref(), Some(&b"a.txt"[..]));
        assert_eq!(l.size, 5);
        let (f, node) = get("/a.txt");
        assert_eq!((f.meta.mode, f.size, f.link), (0o644, 6, None));
        let mut body = Vec::new();
        assert_eq!(r.read_content(&node, &mut body).unwrap(), 6);
        assert_eq!(body, b"hello\n");
        let ext = r.extents(&node).unwrap().unwrap();
        assert_eq!(ext.len(), 1);
        let at = ext[0].image_offset as usize;
        assert_eq!(&img[at..at + 6], b"hello\n");
        assert!(r.holds().mode && r.holds().owner && !r.holds().xattrs);
    }

    #[test]
    fn without_rock_ridge_holds_no_mode_or_owner() {
        let img = image(false);
        let r = Reader::open(Cursor::new(&img[..])).unwrap();
        let h = r.holds();
        assert!(!h.mode && !h.owner && !h.special_files && h.mtime);
        let walked = FsRead::walk(&r).unwrap();
        assert!(walked.iter().all(|(e, _)| e.meta.mtime == 1_700_000_000));
    }
}
