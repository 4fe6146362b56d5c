//! A reader's tree carried into each writer shows the same tree as its source: through the
//! kernel (`mount -o loop,ro`, as root; skipped when mounting fails) and the reference tools
//! (`unsquashfs -lln`, `xorriso -find`, `mdir -/ -b`).
//!
//! Carried: host → squashfs; ISO → squashfs; squashfs → ISO; EROFS (made by mkfs.erofs) →
//! squashfs; squashfs → FAT, ISO → FAT and host → FAT, with files and names FAT holds. The
//! source is a host tree; every image in between is written by our writers (the EROFS one
//! by mkfs.erofs) and read back by our readers through `Tree::from_reader`.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use imgpipe_fstree::{FileType, FsRead, Holds, ScanOptions, Tree};
use sha2::{Digest, Sha256};

/// What to compare: the facts both sides hold.
#[derive(Clone, Copy)]
struct Keep {
    mode: bool,
    owner: bool,
    mtime: bool,
    special: bool,
    links: bool,
}

const POSIX: Keep = Keep {
    mode: true,
    owner: true,
    mtime: true,
    special: true,
    links: true,
};

impl Keep {
    fn and(self, h: Holds) -> Self {
        Self {
            mode: self.mode && h.mode,
            owner: self.owner && h.owner,
            mtime: self.mtime && h.mtime,
            special: self.special && h.special_files,
            links: self.links && h.hard_links,
        }
    }
}

/// One line per entry: path → type, mode, owner, time, size, target, device, link group,
/// content hash (each where kept).
fn facts(tree: &Tree, keep: Keep) -> BTreeMap<String, String> {
    let mut first: BTreeMap<u64, String> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for n in tree.iter() {
        let e = &n.entry;
        let path = e.display_path();
        if !keep.special && !matches!(e.file_type, FileType::File | FileType::Dir) {
            continue;
        }
        let mut s = format!("{}", e.file_type);
        if keep.mode {
            s += &format!(" {:o}", e.meta.mode);
        }
        if keep.owner {
            s += &format!(" {}:{}", e.meta.uid, e.meta.gid);
        }
        if keep.mtime && e.file_type != FileType::Symlink {
            s += &format!(" t={}", e.meta.mtime);
        }
        if e.file_type != FileType::Dir {
            s += &format!(" size={}", e.size);
        }
        if let Some(t) = &e.target {
            s += &format!(" -> {}", String::from_utf8_lossy(t));
        }
        if let Some((ma, mi)) = e.rdev {
            s += &format!(" dev={ma},{mi}");
        }
        if let (true, Some(l)) = (keep.links, e.link) {
            let f = first.entry(l).or_insert_with(|| path.clone());
            s += &format!(" link={f}");
        }
        if e.file_type == FileType::File {
            let mut h = HashWriter(Sha256::new());
            n.content.write_to(&mut h).unwrap();
            let d = h.0.finalize();
            s += &format!(" sha={:02x}{:02x}{:02x}{:02x}", d[0], d[1], d[2], d[3]);
        }
        out.insert(path, s);
    }
    out
}

struct HashWriter(Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.update(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn assert_same(what: &str, want: &BTreeMap<String, String>, got: &BTreeMap<String, String>) {
    let mut diffs = Vec::new();
    for (p, w) in want {
        match got.get(p) {
            Some(g) if g == w => {}
            Some(g) => diffs.push(format!("{p}: source `{w}`, got `{g}`")),
            None => diffs.push(format!("{p}: missing")),
        }
    }
    for p in got.keys().filter(|p| !want.contains_key(*p)) {
        diffs.push(format!("{p}: extra"));
    }
    assert!(diffs.is_empty(), "{what}:\n{}", diffs.join("\n"));
}

/// A source tree: nested directories, files of several sizes (empty, tail only, several
/// blocks), odd modes and owners, a symlink, a hard-link pair, a FIFO and (as root) devices.
/// `fat`: files and directories only, with names FAT holds.
fn source(root: &Path, fat: bool) {
    let w = |p: &str, data: &[u8], mode: u32| {
        std::fs::write(root.join(p), data).unwrap();
        std::fs::set_permissions(root.join(p), std::fs::Permissions::from_mode(mode)).unwrap();
    };
    for d in ["etc", "usr/share/doc", "empty dir"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    w("etc/hostname", b"carried\n", 0o644);
    w("etc/empty", b"", 0o600);
    w(
        "usr/share/doc/Big File.bin",
        &imgpipe_testsupport::pattern(300_000),
        0o644,
    );
    w("usr/share/doc/zeros", &vec![0u8; 70_000], 0o444);
    if !fat {
        w("usr/setuid", b"#!/bin/sh\n", 0o4755);
        std::fs::set_permissions(
            root.join("empty dir"),
            std::fs::Permissions::from_mode(0o1777),
        )
        .unwrap();
        std::os::unix::fs::symlink("../etc/hostname", root.join("usr/link")).unwrap();
        std::fs::hard_link(root.join("etc/hostname"), root.join("usr/hard")).unwrap();
        imgpipe_testsupport::run("mkfifo", [root.join("fifo")]);
        if imgpipe_testsupport::is_root() {
            let null = root.join("null");
            imgpipe_testsupport::run(
                "mknod",
                [null.as_os_str(), "c".as_ref(), "1".as_ref(), "3".as_ref()],
            );
            let _ = std::os::unix::fs::chown(root.join("etc/hostname"), Some(1000), Some(100));
            let _ = std::os::unix::fs::lchown(root.join("usr/link"), Some(7), Some(8));
        }
    }
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
    imgpipe_testsupport::set_mtimes(root, 1_650_000_000);
}

fn scan(dir: &Path) -> Tree {
    let mut opts = ScanOptions::default();
    opts.xattrs = false;
    imgpipe_fstree::scan(dir, &opts).unwrap()
}

/// A reader's tree: file content streams from the image when a writer asks.
fn carry<R>(reader: R) -> (Tree, Holds)
where
    R: FsRead + Send + Sync + 'static,
    R::Node: 'static,
{
    let holds = reader.holds();
    (Tree::from_reader(Arc::new(reader)).unwrap(), holds)
}

fn squashfs(tree: &Tree, out: &Path) {
    let mut b =
        imgpipe_squashfs::Builder::new(imgpipe_squashfs::WriteOptions::new(1_700_000_000)).unwrap();
    b.add_fstree(tree).unwrap();
    b.build(&mut File::create(out).unwrap()).unwrap();
}

fn iso(tree: &Tree, out: &Path) {
    let mut b = imgpipe_isofs::Builder::new(imgpipe_isofs::Options::new("CARRY", 1_700_000_000));
    b.add_fstree(tree).unwrap();
    b.build(File::create(out).unwrap()).unwrap();
}

fn fat(tree: &Tree, out: &Path) {
    let mut b = imgpipe_gptpart::FatBuilder::new(4 << 20)
        .label("CARRY")
        .epoch(1_700_000_000);
    b.add_fstree(tree).unwrap();
    b.build(File::create(out).unwrap()).unwrap();
}

/// The facts the kernel shows of `img` mounted read-only, or `None` when it cannot mount.
fn mounted(img: &Path, keep: Keep) -> Option<BTreeMap<String, String>> {
    let mnt = img.with_extension("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let ok = std::process::Command::new("mount")
        .args(["-o", "loop,ro"])
        .arg(img)
        .arg(&mnt)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("cannot mount {}: kernel comparison skipped", img.display());
        return None;
    }
    let got = std::panic::catch_unwind(|| facts(&scan(&mnt), keep));
    imgpipe_testsupport::unmount(&mnt);
    Some(got.unwrap())
}

/// The facts of what a reference tool extracted from an image into a new directory
/// (`args` with `{img}` and `{dest}` filled in), or `None` without the tool.
fn extracted(
    tool: &str,
    args: &[&str],
    img: &Path,
    keep: Keep,
) -> Option<BTreeMap<String, String>> {
    let tool = imgpipe_testsupport::tool(tool)?;
    let dest = img.with_extension("out");
    let _ = std::fs::remove_dir_all(&dest);
    std::fs::create_dir(&dest).unwrap();
    let args: Vec<String> = args
        .iter()
        .map(|a| {
            a.replace("{img}", &img.display().to_string())
                .replace("{dest}", &dest.display().to_string())
        })
        .collect();
    imgpipe_testsupport::run(tool, &args);
    Some(facts(&scan(&dest), keep))
}

/// `unsquashfs -lln`: (`ls -l` mode string, owner, path[ -> target]) per entry.
fn unsquashfs_listing(img: &Path) -> Option<Vec<String>> {
    let tool = imgpipe_testsupport::tool("unsquashfs")?;
    let out = imgpipe_testsupport::stdout_of(tool, ["-lln".as_ref(), img.as_os_str()]);
    Some(
        out.lines()
            .filter(|l| l.contains("squashfs-root"))
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let path = l.split_once("squashfs-root").unwrap().1;
                format!("{} {} /{}", f[0], f[1], path.trim_start_matches('/'))
            })
            .collect(),
    )
}

/// The same shape from a tree.
fn ls_listing(tree: &Tree) -> Vec<String> {
    tree.iter()
        .map(|n| {
            let e = &n.entry;
            let mut s = format!(
                "{} {}/{} {}",
                e.mode_string(),
                e.meta.uid,
                e.meta.gid,
                e.display_path()
            );
            if let Some(t) = &e.target {
                s += &format!(" -> {}", String::from_utf8_lossy(t));
            }
            s
        })
        .collect()
}

#[test]
fn host_to_squashfs() {
    let t = imgpipe_testsupport::tempdir();
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    source(&src, false);
    let tree = scan(&src);
    let img = t.path().join("host.sqfs");
    squashfs(&tree, &img);
    if let Some(got) = unsquashfs_listing(&img) {
        let want = ls_listing(&tree);
        let norm = |v: Vec<String>| -> Vec<String> {
            v.into_iter()
                .map(|s| s.trim_end_matches('/').to_string())
                .collect()
        };
        assert_eq!(norm(got), norm(want), "unsquashfs -lln");
    }
    if let Some(got) = mounted(&img, POSIX) {
        assert_same("host → squashfs, mounted", &facts(&tree, POSIX), &got);
    }
}

#[test]
fn iso_to_squashfs() {
    let t = imgpipe_testsupport::tempdir();
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    source(&src, false);
    let host = scan(&src);
    let iso_img = t.path().join("a.iso");
    iso(&host, &iso_img);
    let reader = imgpipe_isofs::Reader::open(File::open(&iso_img).unwrap()).unwrap();
    let (tree, holds) = carry(reader);
    let keep = POSIX.and(holds);
    // The ISO reader's tree is the source tree (as far as Rock Ridge holds it).
    assert_same(
        "host → ISO, read back",
        &facts(&host, keep),
        &facts(&tree, keep),
    );
    let img = t.path().join("from-iso.sqfs");
    squashfs(&tree, &img);
    if let Some(got) = unsquashfs_listing(&img) {
        let norm = |v: Vec<String>| -> Vec<String> {
            v.into_iter()
                .map(|s| s.trim_end_matches('/').to_string())
                .collect()
        };
        assert_eq!(norm(got), norm(ls_listing(&host)), "unsquashfs -lln");
    }
    if let Some(got) = mounted(&img, keep) {
        assert_same("host → ISO → squashfs, mounted", &facts(&host, keep), &got);
    }
    // The kernel's view of the ISO itself (it gives every record its own inode number, so
    // hard links are not compared there).
    let no_links = Keep {
        links: false,
        ..keep
    };
    if let Some(got) = mounted(&iso_img, no_links) {
        assert_same("host → ISO, mounted", &facts(&host, no_links), &got);
    }
    // xorriso's view of the ISO: what it extracts (owners only as root; the root
    // directory is the destination's own).
    let as_xorriso = Keep {
        owner: imgpipe_testsupport::is_root(),
        ..no_links
    };
    let xorriso = [
        "-osirrox", "on", "-indev", "{img}", "-extract", "/", "{dest}",
    ];
    if let Some(mut got) = extracted("xorriso", &xorriso, &iso_img, as_xorriso) {
        // xorriso extracts no device files and does not give symlinks their owner.
        let mut like = host.clone();
        let (mut devices, mut links) = (Vec::new(), Vec::new());
        for n in host.iter() {
            match n.entry.file_type {
                FileType::Char | FileType::Block => devices.push(n.entry.path.clone()),
                FileType::Symlink => links.push(n.entry.path.clone()),
                _ => {}
            }
        }
        for p in devices {
            like.remove(&p);
        }
        for p in links {
            let e = &mut like.get_mut(&p).unwrap().entry;
            (e.meta.uid, e.meta.gid) = (0, 0);
        }
        let mut want = facts(&like, as_xorriso);
        want.remove("/");
        got.remove("/");
        assert_same("host → ISO, xorriso -extract", &want, &got);
    }
}

#[test]
fn iso_to_fat_and_host_to_fat() {
    let t = imgpipe_testsupport::tempdir();
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    source(&src, true);
    let host = scan(&src);
    let iso_img = t.path().join("a.iso");
    iso(&host, &iso_img);
    let reader = imgpipe_isofs::Reader::open(File::open(&iso_img).unwrap()).unwrap();
    let (tree, _) = carry(reader);
    let names_sizes_content = Keep {
        mode: false,
        owner: false,
        mtime: false,
        special: false,
        links: false,
    };
    let want = facts(&host, names_sizes_content);
    for (what, from) in [("ISO → FAT", &tree), ("host → FAT", &host)] {
        let img = t.path().join("a.fat");
        fat(from, &img);
        if let Some(mdir) = imgpipe_testsupport::tool("mdir") {
            let out = imgpipe_testsupport::stdout_of(
                mdir,
                ["-i".as_ref(), img.as_os_str(), "-/".as_ref(), "-b".as_ref()],
            );
            let mut got: Vec<String> = out
                .lines()
                .map(|l| l.trim_start_matches("::").trim_end_matches('/').to_string())
                .filter(|l| !l.is_empty())
                .collect();
            got.sort();
            let mut paths: Vec<String> = want.keys().filter(|p| *p != "/").cloned().collect();
            paths.sort();
            assert_eq!(got, paths, "{what}: mdir -/ -b");
        }
        if let Some(got) = mounted(&img, names_sizes_content) {
            assert_same(&format!("{what}, mounted"), &want, &got);
        }
        let mcopy = ["-s", "-n", "-i", "{img}", "::*", "{dest}/"];
        if let Some(got) = extracted("mcopy", &mcopy, &img, names_sizes_content) {
            assert_same(&format!("{what}, mcopy -s"), &want, &got);
        }
        std::fs::remove_file(&img).unwrap();
    }
}

/// Our squashfs of the host tree, read back with the squashfs reader.
fn squashfs_tree(host: &Tree, img: &Path) -> (Tree, Holds) {
    squashfs(host, img);
    let src = File::open(img).unwrap();
    carry(imgpipe_squashfs::Reader::open(src).unwrap())
}

#[test]
fn squashfs_to_iso() {
    let t = imgpipe_testsupport::tempdir();
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    source(&src, false);
    let host = scan(&src);
    let (tree, holds) = squashfs_tree(&host, &t.path().join("a.sqfs"));
    assert_same(
        "host → squashfs, read back",
        &facts(&host, POSIX.and(holds)),
        &facts(&tree, POSIX.and(holds)),
    );
    let iso_img = t.path().join("from-sqfs.iso");
    iso(&tree, &iso_img);
    let reader = imgpipe_isofs::Reader::open(File::open(&iso_img).unwrap()).unwrap();
    let (back, iso_holds) = carry(reader);
    let keep = POSIX.and(holds).and(iso_holds);
    assert_same(
        "host → squashfs → ISO, read back",
        &facts(&host, keep),
        &facts(&back, keep),
    );
    let no_links = Keep {
        links: false,
        ..keep
    };
    if let Some(got) = mounted(&iso_img, no_links) {
        assert_same(
            "host → squashfs → ISO, mounted",
            &facts(&host, no_links),
            &got,
        );
    }
    // xorriso's view: files, directories, symlinks and FIFOs with modes, owners (as root)
    // and times; it extracts no device files and gives symlinks no owner.
    let as_xorriso = Keep {
        owner: false,
        ..no_links
    };
    let xorriso = [
        "-osirrox", "on", "-indev", "{img}", "-extract", "/", "{dest}",
    ];
    if let Some(mut got) = extracted("xorriso", &xorriso, &iso_img, as_xorriso) {
        let mut like = host.clone();
        let devices: Vec<Vec<u8>> = host
            .iter()
            .filter(|n| matches!(n.entry.file_type, FileType::Char | FileType::Block))
            .map(|n| n.entry.path.clone())
            .collect();
        for p in devices {
            like.remove(&p);
        }
        let mut want = facts(&like, as_xorriso);
        want.remove("/");
        got.remove("/");
        assert_same("host → squashfs → ISO, xorriso -extract", &want, &got);
    }
}

#[test]
fn erofs_to_squashfs() {
    let Some(mkfs) = imgpipe_testsupport::tool("mkfs.erofs") else {
        return;
    };
    let t = imgpipe_testsupport::tempdir();
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    source(&src, false);
    let host = scan(&src);
    let erofs_img = t.path().join("a.erofs");
    imgpipe_testsupport::run(
        mkfs,
        [
            "--preserve-mtime".as_ref(),
            erofs_img.as_os_str(),
            src.as_os_str(),
        ],
    );
    let reader = imgpipe_squashfs::erofs::ErofsReader::open_at(
        File::open(&erofs_img).unwrap(),
        0,
        imgpipe_squashfs::Limits::default(),
    )
    .unwrap();
    let (tree, holds) = carry(reader);
    let keep = POSIX.and(holds);
    assert_same(
        "host → EROFS, read back",
        &facts(&host, keep),
        &facts(&tree, keep),
    );
    if let Some(got) = mounted(&erofs_img, keep) {
        assert_same("host → EROFS, mounted", &facts(&host, keep), &got);
    }
    let img = t.path().join("from-erofs.sqfs");
    squashfs(&tree, &img);
    if let Some(got) = unsquashfs_listing(&img) {
        assert_eq!(got, ls_listing(&host), "unsquashfs -lln");
    }
    if let Some(got) = mounted(&img, keep) {
        assert_same(
            "host → EROFS → squashfs, mounted",
            &facts(&host, keep),
            &got,
        );
    }
}

#[test]
fn squashfs_to_fat() {
    let t = imgpipe_testsupport::tempdir();
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    source(&src, true);
    let host = scan(&src);
    let (tree, _) = squashfs_tree(&host, &t.path().join("a.sqfs"));
    let img = t.path().join("from-sqfs.fat");
    fat(&tree, &img);
    let reader = imgpipe_gptpart::FatVolume::open(File::open(&img).unwrap()).unwrap();
    let (back, holds) = carry(reader);
    let keep = Keep {
        mtime: false, // every FAT timestamp is the build epoch
        ..POSIX.and(holds)
    };
    let want = facts(&host, keep);
    assert_same(
        "host → squashfs → FAT, read back",
        &want,
        &facts(&back, keep),
    );
    let mcopy = ["-s", "-n", "-i", "{img}", "::*", "{dest}/"];
    if let Some(mut got) = extracted("mcopy", &mcopy, &img, keep) {
        let mut want = want.clone();
        want.remove("/");
        got.remove("/");
        assert_same("host → squashfs → FAT, mcopy -s", &want, &got);
    }
    if let Some(got) = mounted(&img, keep) {
        assert_same("host → squashfs → FAT, mounted", &want, &got);
    }
    // And squashfs refuses nothing FAT needs, but FAT refuses what it cannot hold.
    let with_link = t.path().join("src2");
    std::fs::create_dir(&with_link).unwrap();
    source(&with_link, false);
    let (tree, _) = squashfs_tree(&scan(&with_link), &t.path().join("b.sqfs"));
    let mut b = imgpipe_gptpart::FatBuilder::new(4 << 20);
    let err = b.add_fstree(&tree).unwrap_err().to_string();
    assert!(
        err.contains("/fifo") || err.contains("/null") || err.contains("/usr/link"),
        "{err}"
    );
}
