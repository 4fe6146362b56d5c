//! The FAT reader in the shared vocabulary: [`imgpipe_fstree::FsRead`].
//!
//! The reader's node is its own [`FatEntry`]: the short name, attribute bits and first
//! cluster stay available there.

use std::io::{Read, Seek, Write};
use std::path::Path;

use imgpipe_fstree::{Entry, Extent, ExtractOptions, FileType, FsRead, Holds, Metadata};

use super::fat::{FatEntry, FatVolume};
use crate::error::{Error, Result};
use crate::raw::attr;

impl FatEntry {
    /// This entry in the shared vocabulary, at `path` (relative, no leading `/`).
    ///
    /// FAT keeps no mode or owner: directories are `0o755`, files `0o644` (without the write
    /// bits when read-only), owned by root. The mtime is the write time read as UTC (0 when
    /// the stored date is invalid).
    pub fn to_fs_entry(&self, path: &[u8]) -> Entry {
        let (file_type, mut mode) = if self.is_dir {
            (FileType::Dir, 0o755)
        } else {
            (FileType::File, 0o644)
        };
        if self.attributes & attr::READ_ONLY != 0 {
            mode &= !0o222;
        }
        let mtime = self
            .modified
            .and_then(|t| i64::try_from(t).ok())
            .unwrap_or(0);
        let mut e = Entry::new(path, file_type, Metadata::new(mode, mtime));
        e.size = if self.is_dir { 0 } else { u64::from(self.size) };
        e
    }
}

/// FAT's root directory: it has no entry of its own, so no time.
fn root_entry() -> (Entry, FatEntry) {
    let node = FatEntry {
        name: String::new(),
        short_name: String::new(),
        is_dir: true,
        size: 0,
        first_cluster: 0,
        attributes: attr::DIRECTORY,
        modified: None,
    };
    (node.to_fs_entry(b""), node)
}

impl<R: Read + Seek + Send> FsRead for FatVolume<R> {
    type Node = FatEntry;
    type Error = Error;

    /// Names, sizes and write times (two-second resolution) only.
    fn holds(&self) -> Holds {
        Holds {
            mode: false,
            owner: false,
            mtime: true,
            mtime_nsec: false,
            xattrs: false,
            special_files: false,
            hard_links: false,
        }
    }

    fn walk(&self) -> Result<Vec<(Entry, FatEntry)>> {
        let mut out = vec![root_entry()];
        for (path, e) in self.walk_all()? {
            // A long name is one path component: `/` or `\\` inside one would put the entry
            // in another directory for every consumer of the walk.
            let n = e.name.as_str();
            if n.is_empty() || n == "." || n == ".." || n.contains(['/', '\\', '\0']) {
                return Err(Error::InvalidName {
                    name: e.name.clone(),
                    reason: "not one path component (empty, `.`, `..`, or holds / \\ NUL)",
                });
            }
            out.push((e.to_fs_entry(path.as_bytes()), e));
        }
        // Directory order on disk is creation order; the shared order is by name bytes.
        out.sort_by(|a, b| {
            a.0.path
                .split(|&c| c == b'/')
                .cmp(b.0.path.split(|&c| c == b'/'))
        });
        Ok(out)
    }

    fn image_len(&self) -> Option<u64> {
        Some(u64::from(self.boot.total_sectors) * u64::from(self.boot.bytes_per_sector))
    }

    fn read_content(&self, node: &FatEntry, out: &mut dyn Write) -> Result<u64> {
        self.copy_data(node, out)
    }

    /// The file's cluster chain as runs of consecutive clusters, the last one cut at the
    /// file size; offsets are relative to the volume start.
    fn extents(&self, node: &FatEntry) -> Result<Option<Vec<Extent>>> {
        if node.is_dir {
            return Ok(None);
        }
        if node.size == 0 {
            return Ok(Some(Vec::new()));
        }
        let chain = self.chain(node.first_cluster)?;
        let cs = self.boot.cluster_size();
        let mut left = u64::from(node.size);
        let mut out: Vec<Extent> = Vec::new();
        let mut prev: Option<u32> = None;
        for c in chain {
            if left == 0 {
                break;
            }
            let n = left.min(cs);
            match out.last_mut() {
                Some(last) if prev.and_then(|p| p.checked_add(1)) == Some(c) => {
                    last.len += n;
                    last.stored_len += n;
                }
                _ => out.push(Extent {
                    file_offset: u64::from(node.size) - left,
                    len: n,
                    image_offset: self.cluster_offset(c),
                    stored_len: n,
                    compressed: false,
                }),
            }
            prev = Some(c);
            left -= n;
        }
        Ok(Some(out))
    }
}

impl<R: Read + Seek + Send> FatVolume<R> {
    /// Extracts everything into `dest` (created if missing) with the shared extractor,
    /// [`imgpipe_fstree::extract`]; returns the files written.
    ///
    /// # Security
    /// Nothing is written outside `dest`: unsafe names (empty, `.`, `..`, `/`, NUL),
    /// duplicates and pre-existing files are refused ([`Error::InvalidName`]), an existing
    /// symlink in the way is never followed. File times are set from the volume.
    pub fn extract(&mut self, dest: &Path) -> Result<u64> {
        let report =
            imgpipe_fstree::extract(&*self, dest, ExtractOptions::default()).map_err(|e| {
                use imgpipe_fstree::Error as E;
                let lossy = |p: &[u8]| String::from_utf8_lossy(p).into_owned();
                match e {
                    E::Reader(inner) => match inner.downcast::<Error>() {
                        Ok(own) => *own,
                        Err(other) => Error::Io {
                            what: "reading the volume",
                            source: std::io::Error::other(other),
                        },
                    },
                    E::Escape { path, reason } | E::Refused { path, reason } => {
                        Error::InvalidName {
                            name: lossy(&path),
                            reason,
                        }
                    }
                    E::InvalidPath { path } | E::Duplicate { path } => Error::InvalidName {
                        name: lossy(&path),
                        reason: "unsafe to extract (invalid or duplicate path)",
                    },
                    E::Io { what, path, source } => Error::Io {
                        what,
                        source: std::io::Error::new(
                            source.kind(),
                            format!("{}: {source}", path.display()),
                        ),
                    },
                    other => Error::Io {
                        what: "extracting",
                        source: std::io::Error::other(other),
                    },
                }
            })?;
        Ok(report.files)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use imgpipe_fstree::{FileType, FsRead};

    use crate::{FatBuilder, FatVolume};

    #[test]
    fn walks_in_name_order_and_reports_cluster_runs() {
        let mut b = FatBuilder::new(4 << 20).epoch(1_700_000_000);
        b.add_file("zeta/b.txt", b"bee".to_vec()).unwrap();
        b.add_file("alpha.bin", vec![7u8; 10_000]).unwrap();
        b.add_file("zeta/a.txt", b"a".to_vec()).unwrap();
        let mut img = Cursor::new(vec![0u8; 4 << 20]);
        b.build(&mut img).unwrap();
        let img = img.into_inner();
        let v = FatVolume::open(Cursor::new(&img[..])).unwrap();
        let walked = FsRead::walk(&v).unwrap();
        let paths: Vec<String> = walked.iter().map(|(e, _)| e.display_path()).collect();
        assert_eq!(
            paths,
            ["/", "/alpha.bin", "/zeta", "/zeta/a.txt", "/zeta/b.txt"]
        );
        let (e, node) = &walked[1];
        assert_eq!(e.file_type, FileType::File);
        assert_eq!(
            (e.size, e.meta.mtime, e.meta.mode),
            (10_000, 1_700_000_000, 0o644)
        );
        let ext = v.extents(node).unwrap().unwrap();
        assert_eq!(ext.iter().map(|x| x.len).sum::<u64>(), 10_000);
        let mut via_extents = Vec::new();
        for x in &ext {
            let at = x.image_offset as usize;
            via_extents.extend_from_slice(&img[at..at + x.len as usize]);
        }
        let mut body = Vec::new();
        assert_eq!(v.read_content(node, &mut body).unwrap(), 10_000);
        assert_eq!(body, via_extents);
        assert!(!v.holds().mode && !v.holds().special_files);
        assert_eq!(walked[2].0.file_type, FileType::Dir);
    }
}
