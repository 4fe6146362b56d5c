//! The one host scanner: a directory of the host becomes a [`Tree`], for every writer.
//!
//! Directories are listed and their entries `lstat`ed in parallel on the current rayon pool,
//! one breadth-first frontier at a time (so depth costs no stack), and the tree is then
//! assembled in one fixed order, so the result does not depend on timing or `read_dir`
//! order.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::entry::{Entry, FileType, Metadata, Xattr, split_dev};
use crate::error::{Error, Result};
use crate::tree::{Content, Tree};

/// How to scan a host directory. `ScanOptions::default()` reads xattrs, does not follow
/// symlinks, excludes nothing and caps the tree at 16 million entries and 4096 levels.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScanOptions {
    /// Read extended attributes (every name the host returns, sorted; default on).
    pub xattrs: bool,
    /// Describe what symlinks point to instead of the links (as `cp -L`; for formats without
    /// symlinks). A loop then ends at `max_depth`.
    pub follow_symlinks: bool,
    /// Host paths to leave out, as given to [`ScanOptions::exclude`].
    pub exclude: Vec<PathBuf>,
    /// Most entries (the root included).
    pub max_entries: u64,
    /// Deepest directory level below the root.
    pub max_depth: u32,
}

impl Default for ScanOptions {
    fn default() -> Self {
        Self {
            xattrs: true,
            follow_symlinks: false,
            exclude: Vec::new(),
            max_entries: 1 << 24,
            max_depth: 4096,
        }
    }
}

impl ScanOptions {
    /// Leaves the host path `path` (which need not exist yet) out of the scan: give it an
    /// output file that lies inside the scanned tree, so an image neither packs itself nor
    /// an older copy of itself. Its parent directory is resolved now.
    pub fn exclude(&mut self, path: &Path) -> Result<()> {
        let name = path.file_name().ok_or_else(|| Error::Io {
            what: "excluding",
            path: path.to_path_buf(),
            source: std::io::ErrorKind::InvalidInput.into(),
        })?;
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let parent = fs::canonicalize(parent).map_err(io("resolving", parent))?;
        self.exclude.push(parent.join(name));
        Ok(())
    }
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// One host directory entry.
struct Listed {
    name: Vec<u8>,
    host: PathBuf,
    meta: fs::Metadata,
    xattrs: Vec<Xattr>,
    target: Option<Vec<u8>>,
    /// Listing id, for directories.
    dir: Option<usize>,
}

/// Scans the host directory `root` into a [`Tree`]: the root takes `root`'s metadata (a
/// symlink given as `root` is followed), files become [`Content::Host`] with the size they
/// had now, symlinks keep their target bytes, devices their (major, minor), and names
/// that share a (device, inode) get one [`Entry::link`] value (numbered in tree order from
/// 1; a file whose other names are outside the tree gets none).
///
/// # Errors
/// [`Error::Io`] naming the host path that could not be listed, `lstat`ed or read, and
/// [`Error::LimitExceeded`] beyond `opts.max_entries` or `opts.max_depth`.
pub fn scan(root: &Path, opts: &ScanOptions) -> Result<Tree> {
    let m = fs::metadata(root).map_err(io("reading", root))?;
    if !m.is_dir() {
        return Err(Error::Io {
            what: "scanning",
            path: root.to_path_buf(),
            source: std::io::ErrorKind::NotADirectory.into(),
        });
    }
    let xattrs = if opts.xattrs {
        host_xattrs(root, true)?
    } else {
        Vec::new()
    };
    let mut tree = Tree::new(host_meta(&m, xattrs));
    // Excluded paths are compared against the walk's paths from the canonical root.
    let base = if opts.exclude.is_empty() {
        root.to_path_buf()
    } else {
        fs::canonicalize(root).map_err(io("resolving", root))?
    };
    let mut listings: Vec<Option<Vec<Listed>>> =
        list_all(base, opts)?.into_iter().map(Some).collect();
    let mut inodes: BTreeMap<(u64, u64), Vec<Vec<u8>>> = BTreeMap::new();
    let mut stack: Vec<(usize, Vec<u8>)> = vec![(0, Vec::new())];
    while let Some((id, prefix)) = stack.pop() {
        let entries = listings
            .get_mut(id)
            .and_then(Option::take)
            .unwrap_or_default();
        let mut subdirs = Vec::new();
        for e in entries {
            let mut path = prefix.clone();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(&e.name);
            let m = &e.meta;
            let ft = m.file_type();
            let file_type = if ft.is_dir() {
                FileType::Dir
            } else if ft.is_file() {
                FileType::File
            } else if ft.is_symlink() {
                FileType::Symlink
            } else if ft.is_block_device() {
                FileType::Block
            } else if ft.is_char_device() {
                FileType::Char
            } else if ft.is_fifo() {
                FileType::Fifo
            } else {
                FileType::Socket
            };
            let mut entry = Entry::new(path.clone(), file_type, host_meta(m, e.xattrs));
            let mut content = Content::None;
            match file_type {
                FileType::File => {
                    entry.size = m.len();
                    content = Content::Host(e.host);
                }
                FileType::Symlink => {
                    let t = e.target.unwrap_or_default();
                    entry.size = t.len() as u64;
                    entry.target = Some(t);
                }
                FileType::Block | FileType::Char => entry.rdev = Some(split_dev(m.rdev())),
                FileType::Dir => {
                    if let Some(d) = e.dir {
                        subdirs.push((d, path.clone()));
                    }
                }
                FileType::Fifo | FileType::Socket => {}
            }
            if file_type != FileType::Dir && m.nlink() > 1 {
                inodes
                    .entry((m.dev(), m.ino()))
                    .or_default()
                    .push(path.clone());
            }
            tree.insert(entry, content)?;
        }
        // Reverse so the smallest name is expanded first.
        stack.extend(subdirs.into_iter().rev());
    }
    number_links(&mut tree, inodes);
    Ok(tree)
}

/// Gives every group of two or more names of one inode a link number, in tree order.
fn number_links(tree: &mut Tree, inodes: BTreeMap<(u64, u64), Vec<Vec<u8>>>) {
    let mut group_of: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
    let groups: Vec<Vec<Vec<u8>>> = inodes.into_values().filter(|g| g.len() > 1).collect();
    for (g, paths) in groups.iter().enumerate() {
        for p in paths {
            group_of.insert(p.clone(), g);
        }
    }
    if group_of.is_empty() {
        return;
    }
    let order: Vec<(Vec<u8>, usize)> = tree
        .iter()
        .filter_map(|n| Some((n.entry.path.clone(), *group_of.get(&n.entry.path)?)))
        .collect();
    let mut number: BTreeMap<usize, u64> = BTreeMap::new();
    for (path, g) in order {
        let next = number.len() as u64 + 1;
        let n = *number.entry(g).or_insert(next);
        if let Some(node) = tree.get_mut(&path) {
            node.entry.link = Some(n);
        }
    }
}

/// Lists `root` and everything below it: listing 0 is `root`'s, sorted by name; a directory
/// entry's `dir` is the id of its own listing.
fn list_all(root: PathBuf, opts: &ScanOptions) -> Result<Vec<Vec<Listed>>> {
    use rayon::prelude::*;
    let mut listings: Vec<Vec<Listed>> = vec![Vec::new()];
    let mut frontier: Vec<(usize, PathBuf)> = vec![(0, root)];
    let mut depth = 0u32;
    let mut count = 1u64;
    while !frontier.is_empty() {
        depth += 1;
        if depth > opts.max_depth {
            return Err(Error::LimitExceeded {
                what: "directory depth",
                limit: u64::from(opts.max_depth),
            });
        }
        let listed: Vec<Result<Vec<Listed>>> = frontier
            .par_iter()
            .map(|(_, host)| list_dir(host, opts))
            .collect();
        let mut next = Vec::new();
        for ((id, _), entries) in frontier.iter().zip(listed) {
            let mut entries = entries?;
            count = count.saturating_add(entries.len() as u64);
            if count > opts.max_entries {
                return Err(Error::LimitExceeded {
                    what: "entries",
                    limit: opts.max_entries,
                });
            }
            for e in entries.iter_mut().filter(|e| e.meta.is_dir()) {
                e.dir = Some(listings.len());
                listings.push(Vec::new());
                next.push((listings.len() - 1, e.host.clone()));
            }
            if let Some(slot) = listings.get_mut(*id) {
                *slot = entries;
            }
        }
        frontier = next;
    }
    Ok(listings)
}

/// One directory's entries, sorted by name, each `lstat`ed (in parallel).
fn list_dir(host: &Path, opts: &ScanOptions) -> Result<Vec<Listed>> {
    use rayon::prelude::*;
    let mut names: Vec<Vec<u8>> = Vec::new();
    for e in fs::read_dir(host).map_err(io("listing", host))? {
        let e = e.map_err(io("listing", host))?;
        names.push(e.file_name().into_vec());
    }
    names.sort();
    names.retain(|n| !opts.exclude.contains(&host.join(OsStr::from_bytes(n))));
    names
        .into_par_iter()
        .map(|name| {
            let hp = host.join(OsStr::from_bytes(&name));
            let meta = if opts.follow_symlinks {
                fs::metadata(&hp)
            } else {
                fs::symlink_metadata(&hp)
            }
            .map_err(io("reading", &hp))?;
            let target = if meta.file_type().is_symlink() {
                let t = fs::read_link(&hp).map_err(io("reading link", &hp))?;
                Some(t.into_os_string().into_vec())
            } else {
                None
            };
            let xattrs = if opts.xattrs {
                host_xattrs(&hp, opts.follow_symlinks)?
            } else {
                Vec::new()
            };
            Ok(Listed {
                name,
                host: hp,
                meta,
                xattrs,
                target,
                dir: None,
            })
        })
        .collect()
}

fn host_meta(m: &fs::Metadata, xattrs: Vec<Xattr>) -> Metadata {
    Metadata {
        mode: m.mode() & 0o7777,
        uid: m.uid(),
        gid: m.gid(),
        mtime: m.mtime(),
        mtime_nsec: u32::try_from(m.mtime_nsec()).unwrap_or(0),
        xattrs,
    }
}

/// The xattrs of a host path, sorted by name (of the link itself unless `follow`).
fn host_xattrs(p: &Path, follow: bool) -> Result<Vec<Xattr>> {
    use rustix::io::Errno;
    let err = |e: Errno| Error::Io {
        what: "reading xattrs of",
        path: p.to_path_buf(),
        source: e.into(),
    };
    let mut list = vec![0u8; 4096];
    let n = loop {
        let r = if follow {
            rustix::fs::listxattr(p, &mut list[..])
        } else {
            rustix::fs::llistxattr(p, &mut list[..])
        };
        match r {
            Ok(n) => break n,
            Err(Errno::RANGE) if list.len() < 1 << 20 => list.resize(list.len() * 4, 0),
            Err(Errno::NOTSUP | Errno::NOSYS) => return Ok(Vec::new()),
            Err(e) => return Err(err(e)),
        }
    };
    let mut out = Vec::new();
    let names = list.get(..n).unwrap_or_default();
    for name in names.split(|&c| c == 0).filter(|n| !n.is_empty()) {
        // 64 KiB is the largest value Linux stores.
        let mut v = vec![0u8; 65_536];
        let name_os = OsStr::from_bytes(name);
        let r = if follow {
            rustix::fs::getxattr(p, name_os, &mut v[..])
        } else {
            rustix::fs::lgetxattr(p, name_os, &mut v[..])
        };
        let len = match r {
            Ok(l) => l,
            Err(Errno::NODATA) => continue,
            Err(e) => return Err(err(e)),
        };
        v.truncate(len);
        out.push((name.to_vec(), v));
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn sample(root: &Path) {
        fs::create_dir_all(root.join("a/deep/er")).unwrap();
        fs::create_dir(root.join("b")).unwrap();
        fs::write(root.join("a/f"), b"hello").unwrap();
        fs::write(root.join("a/deep/er/g"), b"x").unwrap();
        fs::write(root.join("z"), b"0123456789").unwrap();
        fs::set_permissions(root.join("z"), fs::Permissions::from_mode(0o4750)).unwrap();
        fs::hard_link(root.join("z"), root.join("a/hard")).unwrap();
        fs::hard_link(root.join("z"), root.join("b/hard2")).unwrap();
        std::os::unix::fs::symlink("../z", root.join("a/link")).unwrap();
        imgpipe_testsupport::run("mkfifo", [root.join("b/fifo")]);
    }

    #[test]
    fn scans_types_sizes_links_in_tree_order() {
        let t = imgpipe_testsupport::tempdir();
        sample(t.path());
        let tree = scan(t.path(), &ScanOptions::default()).unwrap();
        let got: Vec<(String, FileType, u64, Option<u64>)> = tree
            .iter()
            .map(|n| {
                (
                    n.entry.display_path(),
                    n.entry.file_type,
                    n.entry.size,
                    n.entry.link,
                )
            })
            .collect();
        use FileType::*;
        assert_eq!(
            got,
            [
                ("/".into(), Dir, 0, None),
                ("/a".into(), Dir, 0, None),
                ("/a/deep".into(), Dir, 0, None),
                ("/a/deep/er".into(), Dir, 0, None),
                ("/a/deep/er/g".into(), File, 1, None),
                ("/a/f".into(), File, 5, None),
                ("/a/hard".into(), File, 10, Some(1)),
                ("/a/link".into(), Symlink, 4, None),
                ("/b".into(), Dir, 0, None),
                ("/b/fifo".into(), Fifo, 0, None),
                ("/b/hard2".into(), File, 10, Some(1)),
                ("/z".into(), File, 10, Some(1)),
            ]
        );
        let z = tree.get(b"z").unwrap();
        assert_eq!(z.entry.meta.mode, 0o4750);
        let mut body = Vec::new();
        z.content.write_to(&mut body).unwrap();
        assert_eq!(body, b"0123456789");
        assert_eq!(
            tree.get(b"a/link").unwrap().entry.target.as_deref(),
            Some(&b"../z"[..])
        );
    }

    #[test]
    fn same_tree_at_any_thread_count() {
        let t = imgpipe_testsupport::tempdir();
        sample(t.path());
        for i in 0..40 {
            fs::write(t.path().join(format!("b/n{}", 39 - i)), [i as u8]).unwrap();
        }
        let at = |n: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .unwrap();
            let tree = pool.install(|| scan(t.path(), &ScanOptions::default()).unwrap());
            tree.iter().map(|n| n.entry.clone()).collect::<Vec<_>>()
        };
        let one = at(1);
        assert_eq!(one, at(4));
        assert_eq!(one.len(), 52);
    }

    #[test]
    fn excludes_follows_and_limits() {
        let t = imgpipe_testsupport::tempdir();
        sample(t.path());
        let mut o = ScanOptions::default();
        o.exclude(&t.path().join("a/deep")).unwrap();
        o.exclude(&t.path().join("not-there-yet.img")).unwrap();
        let tree = scan(t.path(), &o).unwrap();
        assert!(tree.get(b"a/deep").is_none());
        assert!(tree.get(b"a/f").is_some());

        let o = ScanOptions {
            follow_symlinks: true,
            ..ScanOptions::default()
        };
        let tree = scan(t.path(), &o).unwrap();
        let l = &tree.get(b"a/link").unwrap().entry;
        assert_eq!((l.file_type, l.size), (FileType::File, 10));

        let o = ScanOptions {
            max_depth: 2,
            ..ScanOptions::default()
        };
        assert!(matches!(
            scan(t.path(), &o),
            Err(Error::LimitExceeded { limit: 2, .. })
        ));
        let o = ScanOptions {
            max_entries: 5,
            ..ScanOptions::default()
        };
        assert!(matches!(
            scan(t.path(), &o),
            Err(Error::LimitExceeded { limit: 5, .. })
        ));
        assert!(matches!(
            scan(&t.path().join("z"), &ScanOptions::default()),
            Err(Error::Io { .. })
        ));
    }

    #[test]
    fn reads_xattrs_when_asked() {
        let t = imgpipe_testsupport::tempdir();
        fs::write(t.path().join("f"), b"").unwrap();
        if rustix::fs::setxattr(
            t.path().join("f"),
            "user.test",
            b"v",
            rustix::fs::XattrFlags::empty(),
        )
        .is_err()
        {
            return; // the filesystem under the temporary directory has no user xattrs
        }
        let tree = scan(t.path(), &ScanOptions::default()).unwrap();
        let x = &tree.get(b"f").unwrap().entry.meta.xattrs;
        assert!(x.contains(&(b"user.test".to_vec(), b"v".to_vec())), "{x:?}");
        let o = ScanOptions {
            xattrs: false,
            ..ScanOptions::default()
        };
        let tree = scan(t.path(), &o).unwrap();
        assert!(tree.get(b"f").unwrap().entry.meta.xattrs.is_empty());
    }
}
