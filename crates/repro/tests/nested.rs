//! File-level divergence diagnosis through nested filesystems: a squashfs inside an ISO, and
//! an ESP (FAT) plus a squashfs root inside a GPT disk, all written by this workspace's own
//! writers in two variants that differ in known ways.

use std::fs::File;
use std::io::{Cursor, Seek, SeekFrom};
use std::path::Path;

use imgpipe_repro::{FileDifference, NestedOptions, diagnose_files};

const T: u32 = 1_700_000_000;

/// A small root filesystem; `variant` changes one file's content, one mode and one entry.
fn squashfs(variant: u8) -> Vec<u8> {
    use imgpipe_squashfs::{Builder, EntryMeta, WriteOptions};
    let mut b = Builder::new(WriteOptions::new(T)).unwrap();
    for d in ["etc", "usr", "usr/bin"] {
        b.add_dir(d, EntryMeta::new(0o755, T)).unwrap();
    }
    let host = if variant == 0 { "live-a\n" } else { "live-b\n" };
    b.add_file(
        "etc/hostname",
        EntryMeta::new(0o644, T),
        host.as_bytes().to_vec(),
    )
    .unwrap();
    b.add_file(
        "etc/os-release",
        EntryMeta::new(0o644, T),
        b"ID=test\n".to_vec(),
    )
    .unwrap();
    let mode = if variant == 0 { 0o755 } else { 0o700 };
    b.add_file("usr/bin/tool", EntryMeta::new(mode, T), vec![7u8; 300_000])
        .unwrap();
    if variant == 0 {
        b.add_file("only-a", EntryMeta::new(0o644, T), b"x".to_vec())
            .unwrap();
    }
    let mut out = Cursor::new(Vec::new());
    b.build(&mut out).unwrap();
    out.into_inner()
}

fn iso(variant: u8, path: &Path) {
    use imgpipe_isofs::{Builder, Metadata, Options};
    let mut b = Builder::new(Options::new("LIVE", T.into()));
    b.add_dir("boot", Metadata::directory(0o755)).unwrap();
    b.add_file(
        "boot/grub.cfg",
        Metadata::file(0o644),
        b"menuentry {}\n".to_vec(),
    )
    .unwrap();
    b.add_dir("LiveOS", Metadata::directory(0o755)).unwrap();
    b.add_file(
        "LiveOS/squashfs.img",
        Metadata::file(0o644),
        squashfs(variant),
    )
    .unwrap();
    b.add_file("zz-after", Metadata::file(0o644), b"same\n".to_vec())
        .unwrap();
    b.build(&mut File::create(path).unwrap()).unwrap();
}

fn disk(variant: u8, path: &Path) {
    disk_with(variant, &squashfs(variant), path);
}

/// [`disk`] with `root` in its root partition.
fn disk_with(variant: u8, root: &[u8], path: &Path) {
    use imgpipe_gptpart::{
        FatBuilder, GptBuilder, PartitionSize, PartitionSpec, Seed, partition_type,
    };
    let seed = Seed::parse("0123456789abcdef0123456789abcdef").unwrap();
    let layout = GptBuilder::new(24 << 20, seed)
        .partition(
            PartitionSpec::new(
                partition_type("esp").unwrap(),
                PartitionSize::Bytes(8 << 20),
            )
            .name("ESP"),
        )
        .partition(
            PartitionSpec::new(partition_type("root-x86-64").unwrap(), PartitionSize::Rest)
                .name("root"),
        )
        .plan()
        .unwrap();
    let (esp_at, esp_len) = layout.partition_range(1).unwrap();
    let (root_at, _) = layout.partition_range(2).unwrap();
    let mut esp = FatBuilder::new(esp_len)
        .label("ESP")
        .volume_id(0x1234_5678)
        .epoch(T.into());
    esp.add_file("EFI/BOOT/BOOTX64.EFI", b"MZ...".to_vec())
        .unwrap();
    let entry = if variant == 0 {
        "title A\n"
    } else {
        "title B!\n"
    };
    esp.add_file("loader/entries/linux.conf", entry.as_bytes().to_vec())
        .unwrap();
    let mut f = File::create(path).unwrap();
    f.set_len(24 << 20).unwrap();
    layout.write_table(&mut f).unwrap();
    f.seek(SeekFrom::Start(esp_at)).unwrap();
    esp.build(&mut f).unwrap();
    f.seek(SeekFrom::Start(root_at)).unwrap();
    std::io::Write::write_all(&mut f, root).unwrap();
}

fn diff(a: &Path, b: &Path) -> Vec<FileDifference> {
    let r = diagnose_files(
        &File::open(a).unwrap(),
        &File::open(b).unwrap(),
        NestedOptions::default(),
    )
    .unwrap();
    assert_eq!(r.omitted, 0);
    r.differences
}

/// The three differences between the trees of `squashfs(0)` (A) and `squashfs(1)` (B),
/// under the layer `within`.
fn variant_differences(d: &[FileDifference], within: &[&str]) {
    assert!(
        has(d, within, "/etc/hostname", "content (7 vs 7 bytes)"),
        "{d:#?}"
    );
    assert!(
        has(d, within, "/usr/bin/tool", "mode 0755 -> 0700"),
        "{d:#?}"
    );
    assert!(has(d, within, "/only-a", "only in A"), "{d:#?}");
}

/// An ISO holding `root` as `/LiveOS/NAME`.
fn iso_holding(name: &str, root: Vec<u8>, path: &Path) {
    use imgpipe_isofs::{Builder, Metadata, Options};
    let mut b = Builder::new(Options::new("LIVE", T.into()));
    b.add_dir("LiveOS", Metadata::directory(0o755)).unwrap();
    b.add_file(&format!("LiveOS/{name}"), Metadata::file(0o644), root)
        .unwrap();
    b.build(&mut File::create(path).unwrap()).unwrap();
}

fn has(d: &[FileDifference], within: &[&str], path: &str, what: &str) -> bool {
    d.iter()
        .any(|x| x.within == within && x.path == path && x.what.starts_with(what))
}

#[test]
fn a_squashfs_inside_an_iso_is_compared_file_by_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a.iso"), tmp.path().join("b.iso"));
    iso(0, &a);
    iso(1, &b);
    let d = diff(&a, &b);
    let sq = ["iso9660", "/LiveOS/squashfs.img (squashfs)"];
    variant_differences(&d, &sq);
    assert_eq!(d.len(), 3, "nothing else differs: {d:#?}");

    // The same build twice: nothing at all.
    let c = tmp.path().join("c.iso");
    iso(0, &c);
    assert!(diff(&a, &c).is_empty());
}

#[test]
fn partitions_of_a_disk_are_opened_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a.img"), tmp.path().join("b.img"));
    disk(0, &a);
    disk(1, &b);
    let d = diff(&a, &b);
    let esp = ["gpt", "partition 1 (ESP) (fat)"];
    let root = ["gpt", "partition 2 (root) (squashfs)"];
    assert!(
        has(
            &d,
            &esp,
            "/loader/entries/linux.conf",
            "content (8 vs 9 bytes)"
        ),
        "{d:#?}"
    );
    assert!(has(&d, &root, "/etc/hostname", "content"), "{d:#?}");
    assert!(has(&d, &root, "/only-a", "only in A"), "{d:#?}");
    assert!(!d.iter().any(|x| x.path.contains("BOOTX64")), "{d:#?}");
}

#[test]
fn a_damaged_nested_filesystem_is_reported_not_fatal() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a.iso"), tmp.path().join("b.iso"));
    iso(0, &a);
    iso(0, &b);
    // Break the squashfs superblock's inode table pointer inside B's ISO.
    let mut bytes = std::fs::read(&b).unwrap();
    let at = bytes
        .windows(4)
        .position(|w| w == b"hsqs")
        .expect("squashfs inside the ISO");
    bytes[at + 64..at + 72].copy_from_slice(&u64::MAX.to_le_bytes());
    std::fs::write(&b, bytes).unwrap();
    let d = diff(&a, &b);
    assert!(
        d.iter()
            .any(|x| x.path == "/LiveOS/squashfs.img" && x.what.contains("reading")),
        "{d:#?}"
    );
}

#[test]
fn erofs_images_from_mkfs_erofs_are_compared_file_by_file() {
    let Some(mkfs) = imgpipe_testsupport::tool("mkfs.erofs") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut images = Vec::new();
    for (name, host, mode) in [("a", "live-a\n", 0o644), ("b", "live-bb\n", 0o600)] {
        let root = tmp.path().join(format!("{name}-root"));
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/hostname"), host).unwrap();
        std::fs::write(root.join("etc/os-release"), "ID=demo\n").unwrap();
        std::os::unix::fs::symlink("etc/os-release", root.join("os-release")).unwrap();
        std::fs::set_permissions(
            root.join("etc/os-release"),
            std::os::unix::fs::PermissionsExt::from_mode(mode),
        )
        .unwrap();
        let img = tmp.path().join(format!("{name}.erofs"));
        imgpipe_testsupport::run(
            &mkfs,
            [
                "--quiet".as_ref(),
                "-T1700000000".as_ref(),
                img.as_os_str(),
                root.as_os_str(),
            ],
        );
        images.push(img);
    }
    let d = diff(&images[0], &images[1]);
    assert!(
        has(&d, &["erofs"], "/etc/hostname", "content (7 vs 8 bytes)"),
        "{d:#?}"
    );
    assert!(
        has(&d, &["erofs"], "/etc/os-release", "mode 0644 -> 0600"),
        "{d:#?}"
    );
    assert_eq!(d.len(), 2, "{d:#?}");
}

/// An ISO holding `inner.iso` (a small ISO that differs per variant) and `k` one-byte files
/// `s*` and `k` files `w*` whose records are then pointed at `inner.iso`'s extent and at the
/// whole image respectively.
fn self_referencing_iso(variant: u8, k: usize) -> Vec<u8> {
    use imgpipe_isofs::{Builder, Metadata, Options, Reader};
    let mut inner = Builder::new(Options::new("INNER", T.into()));
    inner
        .add_file("v", Metadata::file(0o644), vec![variant; 3000])
        .unwrap();
    let mut ib = Cursor::new(Vec::new());
    inner.build(&mut ib).unwrap();
    let inner = ib.into_inner();
    let mut b = Builder::new(Options::new("OUTER", T.into()));
    b.add_file("inner.iso", Metadata::file(0o644), inner.clone())
        .unwrap();
    for i in 0..k {
        b.add_file(&format!("s{i:03}"), Metadata::file(0o644), vec![b's'])
            .unwrap();
        b.add_file(&format!("w{i:03}"), Metadata::file(0o644), vec![b'w'])
            .unwrap();
    }
    let mut out = Cursor::new(Vec::new());
    b.build(&mut out).unwrap();
    let mut img = out.into_inner();
    let mut r = Reader::open(Cursor::new(img.clone())).unwrap();
    let inner_at = r.lookup("inner.iso").unwrap().extents[0].block;
    let both = |v: u32| {
        let mut b = v.to_le_bytes().to_vec();
        b.extend_from_slice(&v.to_be_bytes());
        b
    };
    let mut patches = Vec::new();
    for i in 0..k {
        let s = r.lookup(&format!("s{i:03}")).unwrap().extents[0].block;
        patches.push((s, inner_at, inner.len() as u32));
        let w = r.lookup(&format!("w{i:03}")).unwrap().extents[0].block;
        patches.push((w, 0, img.len() as u32));
    }
    for (blk, to_blk, to_len) in patches {
        let mut from = both(blk);
        from.extend_from_slice(&both(1));
        let mut to = both(to_blk);
        to.extend_from_slice(&both(to_len));
        let mut at = 0;
        while let Some(p) = img[at..].windows(16).position(|w| w == from) {
            img[at + p..at + p + 16].copy_from_slice(&to);
            at += p + 16;
        }
    }
    img
}

#[test]
fn files_that_are_the_image_or_share_a_region_are_compared_once() {
    // 30 files that are the whole image and 30 that are `inner.iso`: before, each opened the
    // image again down to the depth limit (30^4 comparisons); now the image is never opened
    // inside itself and inner.iso is compared once.
    let t = imgpipe_testsupport::tempdir();
    let (a, b) = (t.path().join("a.iso"), t.path().join("b.iso"));
    std::fs::write(&a, self_referencing_iso(1, 30)).unwrap();
    std::fs::write(&b, self_referencing_iso(2, 30)).unwrap();
    #[allow(clippy::disallowed_methods)] // a time bound, not output
    let start = std::time::Instant::now();
    let r = diagnose_files(
        &File::open(&a).unwrap(),
        &File::open(&b).unwrap(),
        NestedOptions::default(),
    )
    .unwrap();
    assert!(start.elapsed().as_secs() < 20, "took {:?}", start.elapsed());
    assert_eq!(
        r.compared,
        ["iso9660", "iso9660 > /inner.iso (iso9660)"],
        "{r:#?}"
    );
    let what = |p: &str| {
        r.differences
            .iter()
            .find(|d| d.path == p)
            .map(|d| d.what.clone())
            .unwrap_or_default()
    };
    assert!(
        what("/w000").contains("holds a filesystem it lies in"),
        "{r:#?}"
    );
    assert!(what("/s007").contains("the same bytes as"), "{r:#?}");
    assert!(what("/v").starts_with("content"), "{r:#?}");
}

/// A LUKS2 volume (seeded, cheap PBKDF2, passphrase `pw`) holding `payload`, as bytes.
fn luks_volume(payload: &[u8]) -> Vec<u8> {
    use imgpipe_luks::{FormatOptions, HashAlg, KdfParams, KeyslotParams};
    use imgpipe_repro::luks::{KeySource, format, unlock_segment};
    let cheap = KeyslotParams {
        kdf: KdfParams::Pbkdf2 {
            hash: HashAlg::Sha256,
            iterations: 1000,
        },
        ..KeyslotParams::default()
    };
    let opts = FormatOptions {
        data_offset: 1 << 20,
        keyslot: cheap,
        digest_iterations: 1000,
        ..FormatOptions::default()
    };
    let seed = imgpipe_repro::Seed::from_material(b"nested luks");
    let mut dev = Cursor::new(vec![0u8; (1 << 20) + payload.len().next_multiple_of(4096)]);
    let hdr = format(&mut dev, opts, b"pw", KeySource::Seed(seed)).unwrap();
    let seg = unlock_segment(&hdr, &mut dev, b"pw").unwrap().unwrap();
    seg.encrypt_stream(payload, &mut dev, &mut |_| {}).unwrap();
    dev.into_inner()
}

/// An ISO holding `/LiveOS/root.luks`, a LUKS2 volume around the squashfs of `variant`.
fn iso_with_volume(variant: u8, path: &Path) {
    iso_holding("root.luks", luks_volume(&squashfs(variant)), path);
}

/// An encrypted file inside an ISO: with passphrases the squashfs inside its payload is
/// compared file by file (ISO > LUKS2 > squashfs); without, it is said to be encrypted;
/// a passphrase that opens no keyslot ends the diff, naming the side and the layer.
#[test]
fn a_squashfs_inside_a_luks2_file_inside_an_iso() {
    use std::sync::Arc;

    use imgpipe_repro::{Error, ImageDiffOptions, Passphrases, diff_images};
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a.iso"), tmp.path().join("b.iso"));
    iso_with_volume(0, &a);
    iso_with_volume(1, &b);
    let run = |keys: Option<Passphrases>| {
        let mut opts = ImageDiffOptions::default();
        opts.passphrases = keys.map(Arc::new);
        let (fa, fb) = (File::open(&a).unwrap(), File::open(&b).unwrap());
        diff_images(&fa, &fb, opts, &mut |_| {})
    };
    let d = run(Some(Passphrases::same(b"pw".to_vec())))
        .unwrap()
        .files
        .unwrap()
        .differences;
    let sq = ["iso9660", "/LiveOS/root.luks (luks2)", "payload (squashfs)"];
    variant_differences(&d, &sq);
    assert_eq!(d.len(), 3, "nothing else differs: {d:#?}");

    let d = run(None).unwrap().files.unwrap().differences;
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(d[0].within, ["iso9660"]);
    assert_eq!(d[0].path, "/LiveOS/root.luks");
    assert!(d[0].what.ends_with(imgpipe_repro::ENCRYPTED_HINT), "{d:#?}");

    for (keys, second) in [
        (Passphrases::new(b"no".to_vec(), b"pw".to_vec()), false),
        (Passphrases::new(b"pw".to_vec(), b"no".to_vec()), true),
    ] {
        match run(Some(keys)) {
            Err(Error::WrongPassphrase { second: s, layer }) => {
                assert_eq!(s, second);
                assert_eq!(layer, "iso9660 > /LiveOS/root.luks (luks2)");
            }
            other => panic!("{other:?}"),
        }
    }
}

/// Equal compressed bytes under two compressors are not equal content: a squashfs whose
/// superblock names another compressor over the very same blocks (its metadata stored
/// uncompressed, so both open) is never reported identical.
#[test]
fn equal_stored_bytes_under_another_compressor_are_not_equal_content() {
    let Some(mksquashfs) = imgpipe_testsupport::tool("mksquashfs") else {
        assert!(std::env::var_os("CI").is_none(), "mksquashfs is needed");
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("tree");
    std::fs::create_dir_all(tree.join("usr/bin")).unwrap();
    std::fs::write(tree.join("usr/bin/tool"), vec![b'a'; 300_000]).unwrap();
    let a = t.path().join("a.sqfs");
    imgpipe_testsupport::run(
        mksquashfs.to_str().unwrap(),
        [
            tree.to_str().unwrap(),
            a.to_str().unwrap(),
            "-noI",
            "-noId",
            "-noX",
            "-no-fragments",
            "-comp",
            "gzip",
            "-quiet",
            "-no-progress",
        ],
    );
    let mut b = std::fs::read(&a).unwrap();
    // The superblock's compressor id (u16 at byte 20): gzip (1) becomes zstd (6).
    assert_eq!(b[20..22], 1u16.to_le_bytes());
    b[20..22].copy_from_slice(&6u16.to_le_bytes());
    std::fs::write(t.path().join("b.sqfs"), &b).unwrap();
    match diagnose_files(
        &File::open(&a).unwrap(),
        &File::open(t.path().join("b.sqfs")).unwrap(),
        NestedOptions::default(),
    ) {
        Ok(r) => assert!(
            r.differences.iter().any(|x| x.path == "/usr/bin/tool"),
            "the compressed file was taken as equal: {r:?}"
        ),
        Err(e) => assert!(e.to_string().contains("decompress data block"), "{e}"),
    }
}

/// `squashfs(variant)` repacked as EROFS through [`imgpipe_repro::image_tree`].
fn erofs_of(variant: u8, dir: &Path) -> Vec<u8> {
    use imgpipe_squashfs::erofs::{ErofsBuilder, ErofsWriteOptions};
    let sq = dir.join(format!("src-{variant}.sqfs"));
    std::fs::write(&sq, squashfs(variant)).unwrap();
    let (_, tree) = imgpipe_repro::image_tree(&sq).unwrap().unwrap();
    let mut b = ErofsBuilder::new(ErofsWriteOptions::new(T.into(), [7; 16])).unwrap();
    b.add_fstree(&tree).unwrap();
    let mut out = Cursor::new(Vec::new());
    b.build(&mut out).unwrap();
    out.into_inner()
}

/// A squashfs root and its EROFS repack: the change of format is reported, then their
/// files are compared as any two trees are.
#[test]
fn a_squashfs_and_an_erofs_of_it_are_compared_file_by_file() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |n: &str| tmp.path().join(n);
    std::fs::write(p("a.sqfs"), squashfs(0)).unwrap();
    std::fs::write(p("same.erofs"), erofs_of(0, tmp.path())).unwrap();
    std::fs::write(p("other.erofs"), erofs_of(1, tmp.path())).unwrap();
    let format = |d: &[FileDifference]| has(d, &[], "/", "format squashfs -> erofs");

    // The same tree: the format is all.
    let d = diff(&p("a.sqfs"), &p("same.erofs"));
    assert!(format(&d), "{d:#?}");
    assert_eq!(d.len(), 1, "{d:#?}");

    // Another tree: its differences, as between two squashfs images.
    let d = diff(&p("a.sqfs"), &p("other.erofs"));
    let w = ["squashfs -> erofs"];
    assert!(format(&d), "{d:#?}");
    variant_differences(&d, &w);
    assert_eq!(d.len(), 4, "{d:#?}");

    // Inside an ISO: the root image's new format at its path, then its files.
    iso_holding("squashfs.img", squashfs(0), &p("a.iso"));
    iso_holding("squashfs.img", erofs_of(1, tmp.path()), &p("b.iso"));
    let d = diff(&p("a.iso"), &p("b.iso"));
    assert!(
        has(
            &d,
            &["iso9660"],
            "/LiveOS/squashfs.img",
            "format squashfs -> erofs"
        ),
        "{d:#?}"
    );
    let inner = ["iso9660", "/LiveOS/squashfs.img (squashfs -> erofs)"];
    assert!(
        has(&d, &inner, "/etc/hostname", "content (7 vs 7 bytes)"),
        "{d:#?}"
    );
    assert!(has(&d, &inner, "/only-a", "only in A"), "{d:#?}");
    assert_eq!(d.len(), 4, "{d:#?}");
}

/// Two disks whose root partitions hold a squashfs and an EROFS image of another tree (a
/// `build --disk` before and after `--rootfs erofs`): the partition's change of format, then
/// the tree's three differences under `partition 2 (root) (squashfs -> erofs)`.
#[test]
fn a_root_partition_from_squashfs_to_erofs_is_compared_file_by_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a.img"), tmp.path().join("b.img"));
    disk(0, &a);
    disk_with(0, &erofs_of(1, tmp.path()), &b);
    let d = diff(&a, &b);
    let part = "partition 2 (root)";
    assert!(
        has(&d, &["gpt"], part, "format squashfs -> erofs"),
        "{d:#?}"
    );
    let w = ["gpt", "partition 2 (root) (squashfs -> erofs)"];
    variant_differences(&d, &w);
    assert_eq!(d.len(), 4, "{d:#?}");
}

/// A disk whose root partition is encrypted against one whose root is not (`build --disk`
/// with and without `--encrypt`): the change of format; with the passphrase, the plain
/// root's files against the payload's; either way round. The same for a file inside an ISO
/// and for two bare images.
#[test]
fn a_root_partition_encrypted_on_one_side_is_compared_with_its_payload() {
    use std::sync::Arc;

    use imgpipe_repro::{ImageDiffOptions, Passphrases, diff_images};
    let tmp = tempfile::tempdir().unwrap();
    let (plain, enc) = (tmp.path().join("plain.img"), tmp.path().join("enc.img"));
    disk(0, &plain);
    disk_with(0, &luks_volume(&squashfs(1)), &enc);
    let run = |a: &Path, b: &Path, keys: bool| {
        let mut opts = ImageDiffOptions::default();
        opts.passphrases = keys.then(|| Arc::new(Passphrases::same(b"pw".to_vec())));
        let (fa, fb) = (File::open(a).unwrap(), File::open(b).unwrap());
        diff_images(&fa, &fb, opts, &mut |_| {})
            .unwrap()
            .files
            .unwrap()
            .differences
    };
    let part = "partition 2 (root)";

    let d = run(&plain, &enc, true);
    assert!(
        has(&d, &["gpt"], part, "format squashfs -> luks2"),
        "{d:#?}"
    );
    let w = [
        "gpt",
        "partition 2 (root) (squashfs -> luks2 > payload (squashfs))",
    ];
    variant_differences(&d, &w);
    assert_eq!(d.len(), 4, "{d:#?}");

    // The other way round: the payload is A's.
    let d = run(&enc, &plain, true);
    assert!(
        has(&d, &["gpt"], part, "format luks2 -> squashfs"),
        "{d:#?}"
    );
    let w = [
        "gpt",
        "partition 2 (root) (luks2 > payload (squashfs) -> squashfs)",
    ];
    assert!(has(&d, &w, "/only-a", "only in B"), "{d:#?}");
    assert_eq!(d.len(), 4, "{d:#?}");

    // Without a passphrase: the change of format alone.
    let d = run(&plain, &enc, false);
    assert!(
        has(&d, &["gpt"], part, "format squashfs -> luks2"),
        "{d:#?}"
    );
    assert_eq!(d.len(), 1, "{d:#?}");

    // The same for a file inside an ISO.
    let (a, b) = (tmp.path().join("a.iso"), tmp.path().join("b.iso"));
    iso_holding("root.img", squashfs(0), &a);
    iso_holding("root.img", luks_volume(&squashfs(1)), &b);
    let d = run(&a, &b, true);
    let file = "/LiveOS/root.img";
    assert!(
        has(&d, &["iso9660"], file, "format squashfs -> luks2"),
        "{d:#?}"
    );
    let w = [
        "iso9660",
        "/LiveOS/root.img (squashfs -> luks2 > payload (squashfs))",
    ];
    assert!(has(&d, &w, "/usr/bin/tool", "mode 0755 -> 0700"), "{d:#?}");
    assert_eq!(d.len(), 4, "{d:#?}");

    // And for the images themselves: a bare root against a bare LUKS2 volume.
    let (a, b) = (tmp.path().join("root.img"), tmp.path().join("root.luks"));
    std::fs::write(&a, squashfs(0)).unwrap();
    std::fs::write(&b, luks_volume(&squashfs(1))).unwrap();
    let d = run(&a, &b, true);
    assert!(has(&d, &[], "/", "format squashfs -> luks2"), "{d:#?}");
    variant_differences(&d, &["squashfs -> luks2 > payload (squashfs)"]);
    assert_eq!(d.len(), 4, "{d:#?}");
    let d = run(&b, &a, true);
    assert!(has(&d, &[], "/", "format luks2 -> squashfs"), "{d:#?}");
    let w = ["luks2 > payload (squashfs) -> squashfs"];
    assert!(has(&d, &w, "/only-a", "only in B"), "{d:#?}");
    assert_eq!(d.len(), 4, "{d:#?}");
    let d = run(&a, &b, false);
    assert!(has(&d, &[], "/", "format squashfs -> luks2"), "{d:#?}");
    assert_eq!(d.len(), 1, "{d:#?}");
}

/// Two LUKS2 volumes, one around a squashfs root and one around an EROFS repack: unlocked,
/// the payloads' change of format is reported, then their files are compared (the same
/// tree: the format is all; another tree: its three differences under
/// `payload (squashfs -> erofs)`).
#[test]
fn luks2_payloads_of_two_formats_are_compared_file_by_file() {
    use std::sync::Arc;

    use imgpipe_repro::{ImageDiffOptions, Passphrases, diff_images};
    let tmp = tempfile::tempdir().unwrap();
    let p = |n: &str| tmp.path().join(n);
    std::fs::write(p("a.luks"), luks_volume(&squashfs(0))).unwrap();
    std::fs::write(p("same.luks"), luks_volume(&erofs_of(0, tmp.path()))).unwrap();
    std::fs::write(p("other.luks"), luks_volume(&erofs_of(1, tmp.path()))).unwrap();
    let run = |b: &str| {
        let mut opts = ImageDiffOptions::default();
        opts.passphrases = Some(Arc::new(Passphrases::same(b"pw".to_vec())));
        let (fa, fb) = (File::open(p("a.luks")).unwrap(), File::open(p(b)).unwrap());
        diff_images(&fa, &fb, opts, &mut |_| {})
            .unwrap()
            .files
            .unwrap()
            .differences
    };
    let format = |d: &[FileDifference]| has(d, &["luks2"], "payload", "format squashfs -> erofs");

    let d = run("same.luks");
    assert!(format(&d), "{d:#?}");
    assert_eq!(d.len(), 1, "{d:#?}");

    let d = run("other.luks");
    let w = ["luks2", "payload (squashfs -> erofs)"];
    assert!(format(&d), "{d:#?}");
    variant_differences(&d, &w);
    assert_eq!(d.len(), 4, "{d:#?}");
}
