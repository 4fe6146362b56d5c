//! The compressed EROFS writer against the kernel and erofs-utils 1.8.6: for every
//! algorithm, big pclusters (64 KiB, 1 MiB), fragments, ztailpacking and dedupe, the image
//! mounts (`mount -o loop,ro -t erofs`) with the source's tree and metadata (mode, owner,
//! mtime, link targets, hard links, xattrs, device numbers), `fsck.erofs` checks it and
//! extracts the same tree, and `dump.erofs` reads it. The bytes do not depend on the thread
//! count. A reserved slot can be rewritten in place and the kernel reads the new content.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use imgpipe_fstree::{ScanOptions, Tree, scan};
use imgpipe_squashfs::Bytes;
use imgpipe_squashfs::erofs::{
    ErofsAlgorithm, ErofsBuildReport, ErofsBuilder, ErofsCompression, ErofsReader,
    ErofsWriteOptions,
};
use imgpipe_testsupport::{
    Compare, TreeOptions, diff_trees, erofs_utils, is_root, run, run_status, set_mtimes, tempdir,
    tricky_tree,
};

const T: i64 = 1_700_000_000;
const UUID: [u8; 16] = *b"imgpipe-erofs-zz";

/// The tricky tree plus compressible content of many sizes: text, a file of two segments,
/// equal files, xattrs (shared and inline), an extended-inode owner.
fn source(root: &Path) {
    tricky_tree(root, TreeOptions::default());
    let text: Vec<u8> = (0..400_000u32)
        .flat_map(|i| format!("line {i} of some text {}\n", i % 97).into_bytes())
        .collect();
    let w = |p: &str, data: &[u8]| {
        let path = root.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap()
    };
    w("text/all.txt", &text);
    for (i, n) in [1usize, 100, 4095, 4096, 4097, 5000, 12_288, 70_000, 200_000]
        .into_iter()
        .enumerate()
    {
        w(&format!("text/part-{i}"), &text[i * 7..i * 7 + n]);
    }
    w("text/copy-a", &text[..90_000]);
    w("text/copy-b", &text[..90_000]);
    // Files equal but for their last bytes: their pclusters but the last are shared when
    // fragments or dedupe are on.
    for (name, tail) in [
        ("near-a", &b"one ending"[..]),
        ("near-b", b"another ending"),
    ] {
        let mut near = imgpipe_testsupport::pattern(1_100_000);
        near.extend_from_slice(&text[..200_000]);
        near.extend_from_slice(tail);
        w(&format!("text/{name}"), &near);
    }
    // Compressible and incompressible runs (stored pclusters).
    let mut big = Vec::with_capacity(3 << 20);
    while big.len() < (3 << 20) + 1234 {
        big.extend_from_slice(&text[..100_000]);
        big.extend_from_slice(&imgpipe_testsupport::pattern(20_000));
    }
    big.truncate((3 << 20) + 1234);
    w("text/mixed.bin", &big);
    // Noise (stored pclusters, which early abort stores without compressing) between text.
    w("text/noisy.bin", &noisy(&text));
    let set = |p: &str, name: &str, value: &[u8]| {
        rustix::fs::lsetxattr(root.join(p), name, value, rustix::fs::XattrFlags::empty()).unwrap()
    };
    for p in ["README", "text/all.txt", "text/part-3", "bin/tool"] {
        set(p, "user.label", b"system_u:object_r:shared_t:s0");
    }
    set(
        "text/part-5",
        "user.comment",
        b"inline xattr on a compressed file",
    );
    if is_root() {
        rustix::fs::chown(
            root.join("text/part-2"),
            Some(rustix::fs::Uid::from_raw(70_000)),
            Some(rustix::fs::Gid::from_raw(1234)),
        )
        .unwrap();
    }
    set_mtimes(root, T);
}

/// Noise, text, noise, text: runs of stored pclusters with compressed ones between them.
fn noisy(text: &[u8]) -> Vec<u8> {
    let mut v = imgpipe_testsupport::noise(70_000, 3);
    v.extend_from_slice(&text[..100_000]);
    v.extend(imgpipe_testsupport::noise(200_000, 4));
    v.extend_from_slice(&text[..10_000]);
    v
}

fn options(
    comp: Option<(ErofsAlgorithm, Option<u32>)>,
    f: impl Fn(&mut ErofsWriteOptions),
) -> ErofsWriteOptions {
    let mut o = ErofsWriteOptions::new(T as u64, UUID);
    o.compression = comp.map(|(a, l)| match l {
        Some(l) => ErofsCompression::with_level(a, l),
        None => ErofsCompression::new(a),
    });
    f(&mut o);
    o
}

fn build(tree: &Tree, opts: ErofsWriteOptions) -> (Vec<u8>, ErofsBuildReport) {
    let mut b = ErofsBuilder::new(opts).unwrap();
    b.add_fstree(tree).unwrap();
    let mut out = std::io::Cursor::new(Vec::new());
    let report = b.build(&mut out).unwrap();
    let bytes = out.into_inner();
    assert_eq!(bytes.len() as u64, report.image_size);
    (bytes, report)
}

/// A kernel loop mount, unmounted on drop; `None` when not root.
struct Mounted(tempfile::TempDir);

impl Mounted {
    fn new(image: &Path) -> Option<Self> {
        if !is_root() {
            eprintln!("skipping kernel mount: not root");
            return None;
        }
        let dir = tempdir();
        let out = run_status(
            "mount",
            [
                OsStr::new("-o"),
                OsStr::new("loop,ro"),
                OsStr::new("-t"),
                OsStr::new("erofs"),
                image.as_os_str(),
                dir.path().as_os_str(),
            ],
        );
        assert!(
            out.status.success(),
            "mount {}: {}",
            image.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Some(Self(dir))
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Err(e) = imgpipe_testsupport::try_unmount(self.0.path()) {
            eprintln!("warning: {e}");
        }
    }
}

/// An entry's xattrs, sorted.
type Xattrs = Vec<(String, Vec<u8>)>;

/// What `diff_trees` does not look at: xattrs and which names share an inode.
fn links_and_xattrs(root: &Path) -> BTreeMap<PathBuf, (Xattrs, usize)> {
    let mut by_ino: BTreeMap<u64, Vec<PathBuf>> = BTreeMap::new();
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            if m.is_dir() {
                stack.push(p.clone());
            } else {
                by_ino.entry(m.ino()).or_default().push(rel.clone());
            }
            let mut names = vec![0u8; 4096];
            let n = rustix::fs::llistxattr(&p, &mut names[..]).unwrap_or(0);
            let mut xs: Xattrs = names[..n]
                .split(|&b| b == 0)
                .filter(|s| !s.is_empty())
                .map(|name| {
                    let name = String::from_utf8_lossy(name).into_owned();
                    let mut v = vec![0u8; 65536];
                    let k = rustix::fs::lgetxattr(&p, name.as_str(), &mut v[..]).unwrap();
                    v.truncate(k);
                    (name, v)
                })
                .filter(|(name, _)| !name.starts_with("security."))
                .collect();
            xs.sort();
            out.insert(rel, (xs, 0));
        }
    }
    for names in by_ino.values() {
        for n in names {
            if let Some(v) = out.get_mut(n) {
                v.1 = names.len();
            }
        }
    }
    out
}

/// Checks `img` with our reader, erofs-utils 1.8.6 and (with `mount`) the kernel against `src`.
fn check(name: &str, img: &Path, src: &Path, tmp: &Path, mount: bool) {
    {
        let r = ErofsReader::open_at(
            Bytes(std::fs::read(img).unwrap()),
            0,
            imgpipe_squashfs::Limits::default(),
        )
        .unwrap();
        let out = tmp.join(format!("ours-{name}"));
        let mut opts = imgpipe_squashfs::ExtractOptions::default();
        opts.owners = is_root();
        opts.xattrs = is_root();
        opts.devices = is_root();
        opts.special_files = true;
        r.extract(&out, opts).unwrap();
        let what = Compare {
            owner: is_root(),
            ..Compare::default()
        };
        let d = diff_trees(src, &out, what);
        assert!(d.is_empty(), "{name}: our reader: {d:#?}");
        if is_root() {
            // Xattrs only: the shared extractor links files whose stored extents are the
            // same (dedupe), by design.
            let xattrs = |p: &Path| -> Vec<(PathBuf, Xattrs)> {
                links_and_xattrs(p)
                    .into_iter()
                    .map(|(k, (x, _))| (k, x))
                    .collect()
            };
            assert_eq!(
                xattrs(src),
                xattrs(&out),
                "{name}: xattrs through our reader"
            );
        }
        std::fs::remove_dir_all(&out).unwrap();
    }
    if let Some(fsck) = erofs_utils("fsck.erofs") {
        run(&fsck, [img]);
        let out = tmp.join(format!("extract-{name}"));
        let arg = format!("--extract={}", out.display());
        run(&fsck, [OsStr::new(&arg), img.as_os_str()]);
        let what = Compare {
            owner: is_root(),
            ..Compare::default()
        };
        let d = diff_trees(src, &out, what);
        assert!(d.is_empty(), "{name}: fsck.erofs --extract: {d:#?}");
    }
    if let Some(dump) = erofs_utils("dump.erofs") {
        let sb = imgpipe_testsupport::stdout_of(&dump, [OsStr::new("-s"), img.as_os_str()]);
        assert!(sb.contains("sb_csum"), "{name}: {sb}");
        let f = imgpipe_testsupport::stdout_of(
            &dump,
            [OsStr::new("--path=/text/all.txt"), img.as_os_str()],
        );
        assert!(f.contains("Size: "), "{name}: {f}");
    }
    if let Some(m) = mount.then(|| Mounted::new(img)).flatten() {
        let d = diff_trees(src, m.0.path(), Compare::default());
        assert!(d.is_empty(), "{name}: kernel mount: {d:#?}");
        let (want, got) = (links_and_xattrs(src), links_and_xattrs(m.0.path()));
        assert_eq!(want, got, "{name}: xattrs or hard links through the kernel");
    }
}

#[test]
fn every_compressor_and_layout_mounts_and_checks() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    source(&src);
    let tree = scan(&src, &ScanOptions::default()).unwrap();
    use ErofsAlgorithm::*;
    type Case = (
        &'static str,
        ErofsAlgorithm,
        Option<u32>,
        fn(&mut ErofsWriteOptions),
    );
    let cases: [Case; 11] = [
        ("lz4", Lz4, None, |_| {}),
        ("lz4hc", Lz4hc, Some(12), |_| {}),
        ("lzma", Lzma, None, |_| {}),
        ("deflate", Deflate, None, |_| {}),
        ("zstd", Zstd, Some(9), |_| {}),
        ("lz4hc-64k", Lz4hc, None, |o| o.pcluster_size = 65536),
        ("lzma-1m", Lzma, Some(3), |o| o.pcluster_size = 1 << 20),
        ("zstd-fragments", Zstd, None, |o| o.fragments = true),
        ("lz4-ztailpacking", Lz4, None, |o| o.ztailpacking = true),
        ("deflate-dedupe", Deflate, None, |o| o.dedupe = true),
        ("lzma-kiosk", Lzma, Some(0), |o| {
            o.pcluster_size = 1 << 20;
            o.fragments = true;
            o.ztailpacking = true;
        }),
    ];
    for (name, alg, level, f) in cases {
        let opts = options(Some((alg, level)), |o| {
            f(o);
            o.threads = Some(2);
        });
        let (bytes, report) = build(&tree, opts.clone());
        eprintln!("{name}: {} bytes, {report:?}", bytes.len());
        assert!(report.compressed_files > 5, "{name}: {report:?}");
        if opts.fragments {
            assert!(report.fragment_bytes > 0, "{name}");
            // The tree's duplicate files share one fragment (the mount and fsck below read
            // them through it).
            assert!(report.deduplicated_fragments >= 2, "{name}: {report:?}");
        }
        if opts.dedupe {
            assert!(report.deduplicated_files >= 2, "{name}: {report:?}");
        }
        if opts.dedupe || opts.fragments {
            // near-a and near-b share their pclusters but the last (one with 1 MiB ones).
            assert!(report.deduplicated_pclusters >= 1, "{name}: {report:?}");
        } else {
            assert_eq!(report.deduplicated_pclusters, 0, "{name}");
        }
        let img = tmp.path().join(format!("{name}.erofs"));
        std::fs::write(&img, &bytes).unwrap();
        check(name, &img, &src, tmp.path(), true);
        // One thread gives the same bytes.
        let mut one = opts.clone();
        one.threads = Some(1);
        assert!(build(&tree, one).0 == bytes, "{name}: 1 vs 2 threads");
        std::fs::remove_file(&img).unwrap();
    }
}

/// Early abort stores noise without compressing it, exactly as a compression that gained
/// nothing stores it: files of noise and of text give the same image either way. With
/// noise and text in one file and 1 MiB pclusters the stored runs are cut where the probe
/// says, and the image still mounts, checks and extracts, at about the same size.
#[test]
fn early_abort_stores_noise_as_a_failed_compression_does() {
    let tmp = tempdir();
    let text: Vec<u8> = (0..60_000u32)
        .flat_map(|i| format!("line {i} of some text {}\n", i % 97).into_bytes())
        .collect();
    let apart = tmp.path().join("apart");
    std::fs::create_dir_all(apart.join("text")).unwrap();
    std::fs::write(apart.join("text/all.txt"), &text).unwrap();
    std::fs::write(
        apart.join("text/noise.bin"),
        imgpipe_testsupport::noise(300_000, 5),
    )
    .unwrap();
    let mixed = tmp.path().join("mixed");
    std::fs::create_dir_all(mixed.join("text")).unwrap();
    std::fs::write(mixed.join("text/all.txt"), &text).unwrap();
    std::fs::write(mixed.join("text/noisy.bin"), noisy(&text)).unwrap();
    for dir in [&apart, &mixed] {
        set_mtimes(dir, T);
    }
    use ErofsAlgorithm::*;
    let cases: [(&str, ErofsAlgorithm, Option<u32>, u32); 3] = [
        ("lzma", Lzma, None, 4096),
        ("lzma-64k", Lzma, Some(9), 65536),
        ("lzma-1m", Lzma, Some(0), 1 << 20),
    ];
    for (name, alg, level, pcluster) in cases {
        for (src, same, what) in [
            (&apart, pcluster == 4096, "apart"),
            (&mixed, false, "mixed"),
        ] {
            let name = format!("{name}-{what}");
            let tree = scan(src, &ScanOptions::default()).unwrap();
            let opts = |abort: bool| {
                options(Some((alg, level)), |o| {
                    o.pcluster_size = pcluster;
                    if let Some(c) = o.compression.as_mut() {
                        c.early_abort = abort;
                    }
                })
            };
            let (on, _) = build(&tree, opts(true));
            let (off, _) = build(&tree, opts(false));
            if same {
                assert!(on == off, "{name}: early abort changed the image");
            } else {
                let ratio = on.len() as f64 / off.len() as f64;
                assert!((0.99..=1.01).contains(&ratio), "{name}: {ratio}");
            }
            let img = tmp.path().join(format!("{name}.erofs"));
            std::fs::write(&img, &on).unwrap();
            check(&name, &img, src, tmp.path(), true);
            std::fs::remove_file(&img).unwrap();
        }
    }
}

/// The packed inode's compressed segments go out among the files' data as they are done,
/// so its pclusters jump from one segment to the next; each segment starts a compact index
/// pack of its own, which says the jump.
#[test]
fn a_packed_inode_of_several_segments_keeps_compact_indexes() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    // 260 files of 64 KiB stored (incompressible, different in each) and a 150 KB
    // compressible tail: 39 MB of fragments, three 16 MiB segments (one is written while
    // the next fills), with the files' own blocks between them.
    let noise = imgpipe_testsupport::pattern((64 << 10) + 260 * 13);
    for i in 0..260usize {
        let dir = src.join(format!("d{}", i % 7));
        std::fs::create_dir_all(&dir).unwrap();
        let mut data = noise[i * 13..i * 13 + (64 << 10)].to_vec();
        data.extend(
            (0..)
                .flat_map(|j| format!("file {i} line {j} {}\n", (i * 31 + j) % 1013).into_bytes())
                .take(150_000 + i),
        );
        std::fs::write(dir.join(format!("f{i}")), data).unwrap();
    }
    set_mtimes(&src, T);
    let tree = scan(&src, &ScanOptions::default()).unwrap();
    let opts = options(Some((ErofsAlgorithm::Lz4, None)), |o| {
        o.pcluster_size = 64 << 10;
        o.fragments = true;
        o.threads = Some(2);
    });
    let (bytes, report) = build(&tree, opts.clone());
    assert!(report.fragment_bytes > 34 << 20, "{report:?}");
    let img = tmp.path().join("packed.erofs");
    std::fs::write(&img, &bytes).unwrap();
    check_plain("packed", &img, &src, tmp.path());
    let mut one = opts;
    one.threads = Some(1);
    assert!(build(&tree, one).0 == bytes, "1 vs 2 threads");
    let Some(dump) = erofs_utils("dump.erofs") else {
        return;
    };
    let sb = imgpipe_testsupport::stdout_of(&dump, [OsStr::new("-s"), img.as_os_str()]);
    let nid = sb
        .lines()
        .find_map(|l| l.strip_prefix("Filesystem packed nid:"))
        .map(|n| n.trim().to_string())
        .unwrap();
    let arg = format!("--nid={nid}");
    let info = imgpipe_testsupport::stdout_of(
        &dump,
        [OsStr::new(&arg), OsStr::new("-e"), img.as_os_str()],
    );
    // Layout 3: compact indexes.
    assert!(info.contains("Layout: 3"), "{info}");
    // Extents: "N: lstart..lend | len : pstart..pend | plen"; some pcluster does not
    // follow the one before it on disk.
    let phys: Vec<(u64, u64)> = info
        .lines()
        .filter_map(|l| {
            let p = l.split('|').nth(1)?.split(':').nth(1)?;
            let (a, b) = p.trim().split_once("..")?;
            Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
        })
        .collect();
    assert!(phys.len() > 100, "{info}");
    assert!(
        phys.windows(2).any(|w| w[1].0 != w[0].1),
        "no jump between segments: {info}"
    );
}

/// Compressed files with 8 and 16 KiB blocks take four-byte compact indexes, as
/// mkfs.erofs writes them there (two-byte packs are for 4 KiB lclusters only), and 64 KiB
/// blocks full ones; our reader and `fsck.erofs --extract` read each (this kernel mounts
/// 4 KiB blocks only).
#[test]
fn larger_blocks_take_the_indexes_mkfs_erofs_gives_them() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    source(&src);
    // One file of a few hundred lclusters, compressible.
    let text: Vec<u8> = (0..)
        .flat_map(|j| format!("line {j} of {}\n", j % 977).into_bytes())
        .take(3 << 20)
        .collect();
    std::fs::write(src.join("big.txt"), text).unwrap();
    set_mtimes(&src, T);
    let tree = scan(&src, &ScanOptions::default()).unwrap();
    let dump = erofs_utils("dump.erofs");
    let layout = |img: &Path| -> Option<String> {
        let info = imgpipe_testsupport::stdout_of(
            dump.as_ref()?,
            [OsStr::new("--path=/big.txt"), img.as_os_str()],
        );
        // "NID: 4   Links: 1   Layout: 3   Compression ratio: ..."
        let (_, after) = info.split_once("Layout:")?;
        after.split_whitespace().next().map(str::to_owned)
    };
    use ErofsAlgorithm::*;
    type Case = (&'static str, ErofsAlgorithm, u32, u32, bool, &'static str);
    let cases: [Case; 5] = [
        ("lz4hc-8k", Lz4hc, 8192, 8192, false, "3"),
        ("zstd-16k", Zstd, 16384, 16384, false, "3"),
        ("lz4-16k-big-fragments", Lz4, 16384, 65536, true, "3"),
        ("deflate-16k-ztail", Deflate, 16384, 16384, false, "3"),
        ("lz4hc-64k", Lz4hc, 65536, 65536, false, "1"),
    ];
    for (name, alg, block, pcluster, fragments, want) in cases {
        let opts = options(Some((alg, None)), |o| {
            o.block_size = block;
            o.pcluster_size = pcluster;
            o.fragments = fragments;
            o.ztailpacking = name.ends_with("ztail");
            o.threads = Some(2);
        });
        let (bytes, _) = build(&tree, opts.clone());
        let img = tmp.path().join(format!("{name}.erofs"));
        std::fs::write(&img, &bytes).unwrap();
        check(name, &img, &src, tmp.path(), block == 4096);
        if dump.is_some() {
            assert_eq!(
                layout(&img).as_deref(),
                Some(want),
                "{name}: /big.txt's layout"
            );
        }
        let mut one = opts;
        one.threads = Some(1);
        assert!(build(&tree, one).0 == bytes, "{name}: 1 vs 2 threads");
    }
    // mkfs.erofs chooses the same: compact indexes at 16 KiB (it compresses nothing with
    // 16 KiB blocks and pclusters of one block, hence -C).
    if let Some(mkfs) = erofs_utils("mkfs.erofs") {
        let img = tmp.path().join("mkfs-16k.erofs");
        run(
            &mkfs,
            [
                OsStr::new("--quiet"),
                OsStr::new("-b16384"),
                OsStr::new("-zlz4hc"),
                OsStr::new("-C65536"),
                img.as_os_str(),
                src.as_os_str(),
            ],
        );
        assert_eq!(layout(&img).as_deref(), Some("3"), "mkfs.erofs -b16384");
    }
}

/// The reader, `fsck.erofs` and a kernel mount see `src` in `img` (contents and modes).
fn check_plain(name: &str, img: &Path, src: &Path, tmp: &Path) {
    let r = ErofsReader::open_at(
        Bytes(std::fs::read(img).unwrap()),
        0,
        imgpipe_squashfs::Limits::default(),
    )
    .unwrap();
    let out = tmp.join(format!("ours-{name}"));
    r.extract(&out, imgpipe_squashfs::ExtractOptions::default())
        .unwrap();
    let d = diff_trees(src, &out, Compare::default());
    assert!(d.is_empty(), "{name}: our reader: {d:#?}");
    if let Some(fsck) = erofs_utils("fsck.erofs") {
        let out = tmp.join(format!("extract-{name}"));
        let arg = format!("--extract={}", out.display());
        run(&fsck, [OsStr::new(&arg), img.as_os_str()]);
        let d = diff_trees(src, &out, Compare::default());
        assert!(d.is_empty(), "{name}: fsck.erofs --extract: {d:#?}");
    }
    if let Some(m) = Mounted::new(img) {
        let d = diff_trees(src, m.0.path(), Compare::default());
        assert!(d.is_empty(), "{name}: kernel mount: {d:#?}");
    }
}

#[test]
fn a_reserved_slot_is_rewritten_in_place() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("etc")).unwrap();
    std::fs::write(src.join("etc/config.json"), b"{\"v\":1}\n").unwrap();
    std::fs::write(src.join("etc/other"), "x".repeat(10_000)).unwrap();
    set_mtimes(&src, T);
    let tree = scan(&src, &ScanOptions::default()).unwrap();
    for comp in [None, Some((ErofsAlgorithm::Lzma, None))] {
        let opts = options(comp, |o| {
            o.reserve = vec![(b"etc/config.json".to_vec(), 100_000)];
        });
        let (mut bytes, report) = build(&tree, opts);
        let slot = report.slots.first().unwrap().clone();
        assert_eq!(slot.path, "etc/config.json");
        assert_eq!(slot.capacity, 102_400, "rounded up to whole blocks");
        assert_eq!(slot.offset % 4096, 0);
        assert_eq!(slot.size, 8);
        assert_eq!(slot.size_encoding, "le32");
        let at = slot.offset as usize;
        assert_eq!(&bytes[at..at + 8], b"{\"v\":1}\n");
        assert!(
            bytes[at + 8..at + slot.capacity as usize]
                .iter()
                .all(|&b| b == 0)
        );
        let so = slot.size_offset as usize;
        assert_eq!(&bytes[so..so + 4], &8u32.to_le_bytes());

        // Swap in new content and patch the size: no rebuild.
        let new: Vec<u8> = (0..15_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        bytes[at..at + new.len()].copy_from_slice(&new);
        bytes[so..so + 4].copy_from_slice(&(new.len() as u32).to_le_bytes());
        let img = tmp.path().join("slot.erofs");
        std::fs::write(&img, &bytes).unwrap();
        if let Some(fsck) = erofs_utils("fsck.erofs") {
            run(&fsck, [&img]);
        }
        if let Some(m) = Mounted::new(&img) {
            assert_eq!(
                std::fs::read(m.0.path().join("etc/config.json")).unwrap(),
                new
            );
            assert_eq!(
                std::fs::read(m.0.path().join("etc/other")).unwrap(),
                "x".repeat(10_000).into_bytes()
            );
        }
    }
    // A slot larger than 4 GiB needs a 64-bit size: an extended inode.
    let opts = options(None, |o| {
        o.reserve = vec![(b"etc/config.json".to_vec(), 5 << 30)];
    });
    let mut b = ErofsBuilder::new(opts).unwrap();
    b.add_fstree(&tree).unwrap();
    let report = b.build(&mut Sink(0)).unwrap();
    assert_eq!(report.slots[0].size_encoding, "le64");
    assert_eq!(report.slots[0].capacity, 5 << 30);
    // What cannot be reserved is refused by name.
    for (path, cap) in [
        (&b"etc/missing"[..], 4096u64),
        (b"etc", 4096),
        (b"etc/other", 10),
    ] {
        let opts = options(None, |o| o.reserve = vec![(path.to_vec(), cap)]);
        let mut b = ErofsBuilder::new(opts).unwrap();
        b.add_fstree(&tree).unwrap();
        assert!(b.build(&mut std::io::Cursor::new(Vec::new())).is_err());
    }
}

/// A writer that keeps nothing (a 5 GiB image is only counted).
struct Sink(u64);

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl std::io::Seek for Sink {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        if let std::io::SeekFrom::Start(n) = to {
            self.0 = n;
        }
        Ok(self.0)
    }
}
