//! Issue 16 end to end: crafted hostile images through the commands users run, with the
//! exit code and a wide bound on the time, memory or bytes written each may take.

use std::ffi::OsStr;
use std::fs;
use std::io::Cursor;
use std::path::Path;
use std::process::{Command, Output};

use imgpipe_testsupport::tempdir;

fn imgpipe<S: AsRef<OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imgpipe"))
        .args(args)
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap()
}

/// Runs imgpipe under an address-space limit of `mib` MiB (`ulimit -v`).
fn imgpipe_capped(mib: u64, args: &[&OsStr]) -> Output {
    let script = format!("ulimit -v {} && exec \"$0\" \"$@\"", mib * 1024);
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_imgpipe"))
        .args(args)
        .output()
        .unwrap()
}

fn code(o: &Output) -> Option<i32> {
    o.status.code()
}

fn show(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Disk space a tree takes (blocks allocated, each inode once), in bytes.
fn du(p: &Path) -> u64 {
    fn walk(p: &Path, seen: &mut std::collections::BTreeSet<u64>) -> u64 {
        use std::os::unix::fs::MetadataExt;
        let mut n = 0;
        for e in fs::read_dir(p).unwrap() {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if seen.insert(m.ino()) {
                n += m.blocks() * 512;
            }
            if m.is_dir() {
                n += walk(&e.path(), seen);
            }
        }
        n
    }
    if !p.exists() {
        return 0;
    }
    walk(p, &mut Default::default())
}

fn both_endian(v: u32) -> Vec<u8> {
    let mut b = v.to_le_bytes().to_vec();
    b.extend_from_slice(&v.to_be_bytes());
    b
}

/// Points every directory record of a one-block file at block `to` with length `len`.
fn repoint(img: &mut [u8], block: u32, to: u32, len: u32) {
    let mut from = both_endian(block);
    from.extend_from_slice(&both_endian(1));
    let mut new = both_endian(to);
    new.extend_from_slice(&both_endian(len));
    let mut at = 0;
    while let Some(p) = img[at..].windows(16).position(|w| w == from) {
        img[at + p..at + p + 16].copy_from_slice(&new);
        at += p + 16;
    }
}

/// An ISO of `n` one-byte files whose records all claim the whole image.
fn iso_sharing_the_image(n: usize, distinct_dates: bool) -> Vec<u8> {
    use imgpipe_isofs::{Builder, Metadata, Options, Reader};
    let mut b = Builder::new(Options::new("SHARED", 1_700_000_000));
    for i in 0..n {
        let mut m = Metadata::file(0o644);
        if distinct_dates {
            m.mtime = Some(1_600_000_000 + i as i64 * 60);
        }
        b.add_file(&format!("f{i:04}"), m, vec![b'x']).unwrap();
    }
    let mut out = Cursor::new(Vec::new());
    b.build(&mut out).unwrap();
    let mut img = out.into_inner();
    let len = img.len() as u32;
    let mut r = Reader::open(Cursor::new(img.clone())).unwrap();
    let blocks: Vec<u32> = (0..n)
        .map(|i| r.lookup(&format!("f{i:04}")).unwrap().extents[0].block)
        .collect();
    for blk in blocks {
        repoint(&mut img, blk, 0, len);
    }
    img
}

#[test]
fn iso_records_sharing_the_image_extract_in_bounded_space() {
    let t = tempdir();
    let iso = t.path().join("shared.iso");
    fs::write(&iso, iso_sharing_the_image(400, false)).unwrap();
    let len = fs::metadata(&iso).unwrap().len();
    let dest = t.path().join("out");
    let o = imgpipe(&[
        OsStr::new("iso"),
        OsStr::new("extract"),
        iso.as_os_str(),
        dest.as_os_str(),
    ]);
    assert_eq!(code(&o), Some(0), "{}", show(&o));
    // 400 copies were 400 x the image; now copies up to the 64 MiB output budget, then links.
    assert!(
        du(&dest) < (64 << 20) + 2 * len + (1 << 20),
        "{} bytes",
        du(&dest)
    );

    // With a date per record the copies count against the output budget: exit 2, and the
    // bytes written stay near the 64 MiB floor.
    let iso = t.path().join("dated.iso");
    fs::write(&iso, iso_sharing_the_image(400, true)).unwrap();
    let dest = t.path().join("dated");
    let o = imgpipe(&[
        OsStr::new("iso"),
        OsStr::new("extract"),
        iso.as_os_str(),
        dest.as_os_str(),
    ]);
    assert_eq!(code(&o), Some(2), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("max_output_ratio"),
        "{}",
        show(&o)
    );
    assert!(du(&dest) < (128 << 20), "{} bytes", du(&dest));
    // Raised by the flag, the same image extracts.
    let dest = t.path().join("raised");
    let o = imgpipe(&[
        OsStr::new("iso"),
        OsStr::new("extract"),
        iso.as_os_str(),
        dest.as_os_str(),
        OsStr::new("--max-output-ratio"),
        OsStr::new("1000"),
    ]);
    assert_eq!(code(&o), Some(0), "{}", show(&o));
}

/// An ISO holding `k` files that are the image itself.
fn iso_of_itself(variant: u8, k: usize) -> Vec<u8> {
    use imgpipe_isofs::{Builder, Metadata, Options, Reader};
    let mut b = Builder::new(Options::new("SELF", 1_700_000_000));
    b.add_file("v", Metadata::file(0o644), vec![variant; 100])
        .unwrap();
    for i in 0..k {
        b.add_file(&format!("w{i:03}"), Metadata::file(0o644), vec![b'w'])
            .unwrap();
    }
    let mut out = Cursor::new(Vec::new());
    b.build(&mut out).unwrap();
    let mut img = out.into_inner();
    let len = img.len() as u32;
    let mut r = Reader::open(Cursor::new(img.clone())).unwrap();
    let blocks: Vec<u32> = (0..k)
        .map(|i| r.lookup(&format!("w{i:03}")).unwrap().extents[0].block)
        .collect();
    for blk in blocks {
        repoint(&mut img, blk, 0, len);
    }
    img
}

#[test]
fn diff_of_isos_whose_files_are_themselves_is_quick() {
    let t = tempdir();
    let (a, b) = (t.path().join("a.iso"), t.path().join("b.iso"));
    fs::write(&a, iso_of_itself(1, 40)).unwrap();
    fs::write(&b, iso_of_itself(2, 40)).unwrap();
    #[allow(clippy::disallowed_methods)] // a time bound, not output
    let start = std::time::Instant::now();
    let o = imgpipe(&[
        OsStr::new("diff"),
        a.as_os_str(),
        b.as_os_str(),
        OsStr::new("--json"),
    ]);
    // 40 files opening the image down to depth 4 was 40^4 comparisons.
    assert!(start.elapsed().as_secs() < 30, "took {:?}", start.elapsed());
    assert_eq!(code(&o), Some(1), "{}", show(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("holds a filesystem it lies in"), "{out}");
}

/// A squashfs image (4 KiB blocks, metadata stored uncompressed) with one sparse file of
/// `blocks` blocks reached through `names` names. (crates/squashfs/tests/hostile.rs makes
/// the same image in 20 KiB with compressed metadata.)
fn squashfs_many_names(blocks: u64, names: usize) -> Vec<u8> {
    use std::io::Write;
    let meta = |stream: &[u8]| {
        let mut out = Vec::new();
        let mut starts = Vec::new();
        for chunk in stream.chunks(8192) {
            starts.push(out.len() as u32);
            out.extend_from_slice(&(chunk.len() as u16 | 0x8000).to_le_bytes());
            out.extend_from_slice(chunk);
        }
        (out, starts)
    };
    let mut stream = Vec::new();
    // The file: extended file inode (type 9), number 1.
    stream.extend_from_slice(&9u16.to_le_bytes());
    stream.extend_from_slice(&0o644u16.to_le_bytes());
    stream.extend_from_slice(&[0; 4]);
    stream.extend_from_slice(&1_700_000_000u32.to_le_bytes());
    stream.extend_from_slice(&1u32.to_le_bytes());
    stream.extend_from_slice(&96u64.to_le_bytes());
    stream.extend_from_slice(&(blocks * 4096).to_le_bytes());
    stream.extend_from_slice(&0u64.to_le_bytes());
    stream.extend_from_slice(&(names as u32).to_le_bytes());
    stream.extend_from_slice(&u32::MAX.to_le_bytes());
    stream.extend_from_slice(&0u32.to_le_bytes());
    stream.extend_from_slice(&u32::MAX.to_le_bytes());
    stream.resize(stream.len() + 4 * blocks as usize, 0);
    let mut listing = Vec::new();
    let mut k = 0;
    while k < names {
        let run = (names - k).min(256);
        listing.extend_from_slice(&(run as u32 - 1).to_le_bytes());
        listing.extend_from_slice(&0u32.to_le_bytes());
        listing.extend_from_slice(&1u32.to_le_bytes());
        for i in k..k + run {
            let name = format!("n{i:05}");
            listing.extend_from_slice(&0u16.to_le_bytes());
            listing.extend_from_slice(&0i16.to_le_bytes());
            listing.extend_from_slice(&2u16.to_le_bytes());
            listing.extend_from_slice(&(name.len() as u16 - 1).to_le_bytes());
            listing.extend_from_slice(name.as_bytes());
        }
        k += run;
    }
    let root_at = stream.len();
    stream.extend_from_slice(&1u16.to_le_bytes());
    stream.extend_from_slice(&0o755u16.to_le_bytes());
    stream.extend_from_slice(&[0; 4]);
    stream.extend_from_slice(&1_700_000_000u32.to_le_bytes());
    stream.extend_from_slice(&2u32.to_le_bytes());
    stream.extend_from_slice(&0u32.to_le_bytes());
    stream.extend_from_slice(&2u32.to_le_bytes());
    stream.extend_from_slice(&(listing.len() as u16 + 3).to_le_bytes());
    stream.extend_from_slice(&0u16.to_le_bytes());
    stream.extend_from_slice(&3u32.to_le_bytes());
    let (itable, starts) = meta(&stream);
    let (dtable, _) = meta(&listing);
    let inode_table = 96u64;
    let dir_table = inode_table + itable.len() as u64;
    let id_block = dir_table + dtable.len() as u64;
    let id_index = id_block + 6;
    let root_ref = (u64::from(starts[root_at / 8192]) << 16) | (root_at % 8192) as u64;
    let sb = imgpipe_squashfs::raw::SuperBlock {
        inode_count: 2,
        mod_time: 0,
        block_size: 4096,
        frag_count: 0,
        compressor: imgpipe_squashfs::Compressor::Gzip,
        block_log: 12,
        flags: 0x0010 | 0x0200,
        id_count: 1,
        version_major: 4,
        version_minor: 0,
        root_inode: root_ref,
        bytes_used: id_index + 8,
        id_table: id_index,
        xattr_table: u64::MAX,
        inode_table,
        dir_table,
        frag_table: u64::MAX,
        export_table: u64::MAX,
    };
    let mut img = Vec::new();
    img.write_all(&sb.to_bytes()).unwrap();
    img.extend_from_slice(&itable);
    img.extend_from_slice(&dtable);
    img.extend_from_slice(&(4u16 | 0x8000).to_le_bytes());
    img.extend_from_slice(&0u32.to_le_bytes());
    img.extend_from_slice(&id_block.to_le_bytes());
    img
}

#[test]
fn squashfs_inode_with_many_names_lists_and_extracts_in_bounded_memory() {
    // 300 names of one inode with a 2^20-word block list: the old walk held 1.2 GB; now
    // `ls` and `extract` run under a 1 GiB address-space limit.
    let t = tempdir();
    let img = t.path().join("names.sqfs");
    fs::write(&img, squashfs_many_names(1 << 20, 300)).unwrap();
    let o = imgpipe_capped(
        1024,
        &[OsStr::new("squashfs"), OsStr::new("ls"), img.as_os_str()],
    );
    assert_eq!(code(&o), Some(0), "{}", show(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 301);
    let dest = t.path().join("out");
    let o = imgpipe_capped(
        1024,
        &[
            OsStr::new("squashfs"),
            OsStr::new("extract"),
            img.as_os_str(),
            dest.as_os_str(),
        ],
    );
    assert_eq!(code(&o), Some(0), "{}", show(&o));
    // One sparse 4 GiB file and 299 links: almost nothing on disk.
    assert!(du(&dest) < 1 << 20, "{} bytes", du(&dest));
}

#[test]
fn kickstart_include_of_a_fifo_does_not_block() {
    let t = tempdir();
    let fifo = t.path().join("fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let ks = t.path().join("a.ks");
    fs::write(
        &ks,
        format!(
            "lang en_US.UTF-8\n%include {}\nrootpw --lock\n",
            fifo.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_imgpipe"))
        .args([OsStr::new("ks"), OsStr::new("validate"), ks.as_os_str()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut status = None;
    for _ in 0..200 {
        if let Some(s) = child.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    if status.is_none() {
        child.kill().unwrap();
        child.wait().unwrap();
        panic!("ks validate blocked on a FIFO include");
    }
    // The missing include is a notice: the file is otherwise judged as usual.
    assert!(matches!(status.unwrap().code(), Some(0 | 1)));
}

/// Runs imgpipe under a 512 MiB address-space cap and a 10 s time limit.
fn imgpipe_jailed(args: &[&OsStr]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 524288 && exec timeout 10 \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_imgpipe"))
        .args(args)
        .output()
        .unwrap()
}

/// Every 1/40th truncated prefix and 40 single-byte mutations of a seed image (from
/// fuzz/corpus) run through `cmd` (the image's path replaces `{}`), each under a 512 MiB
/// address-space cap and 10 s: each must end with an answer or an error (exit 0, 1 or 2),
/// never a signal, an abort or the time limit.
fn fails_cleanly_when_damaged(seed: &str, cmd: &[&str]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let img = fs::read(root.join(seed)).unwrap();
    let t = tempdir();
    let key = t.path().join("key");
    fs::write(&key, b"pw").unwrap();
    let file = t.path().join("damaged");
    let run = |bytes: &[u8], what: &str| -> Option<i32> {
        fs::write(&file, bytes).unwrap();
        let dest = t.path().join("dest");
        let _ = fs::remove_dir_all(&dest);
        let args: Vec<&OsStr> = cmd
            .iter()
            .map(|a| match *a {
                "{}" => file.as_os_str(),
                "{key}" => key.as_os_str(),
                "{dest}" => dest.as_os_str(),
                other => OsStr::new(other),
            })
            .collect();
        let o = imgpipe_jailed(&args);
        assert!(
            matches!(o.status.code(), Some(0..=2)),
            "{seed} {what}: {}",
            show(&o)
        );
        o.status.code()
    };
    // The jail itself leaves room for the work: the intact image succeeds in it.
    assert_eq!(run(&img, "intact"), Some(0), "{seed}");
    let step = (img.len() / 40).max(1);
    for n in (0..img.len()).step_by(step) {
        run(&img[..n], &format!("prefix {n}"));
    }
    for k in 0..40usize {
        let mut m = img.clone();
        let at = (k * 7919 + 13) % m.len();
        m[at] ^= 0x5a;
        run(&m, &format!("byte {at} mutated"));
    }
}

#[test]
fn damaged_iso_fails_cleanly_in_512_mib_and_10_s() {
    fails_cleanly_when_damaged(
        "iso_read/xorriso-rr-joliet.iso",
        &["iso", "extract", "{}", "{dest}"],
    );
}

#[test]
fn damaged_squashfs_fails_cleanly_in_512_mib_and_10_s() {
    fails_cleanly_when_damaged(
        "squashfs_extract/multi-block.sqfs",
        &["squashfs", "extract", "{}", "{dest}"],
    );
}

#[test]
fn damaged_fat_fails_cleanly_in_512_mib_and_10_s() {
    fails_cleanly_when_damaged("fat_extract/mkfs.img", &["fat", "extract", "{}", "{dest}"]);
}

#[test]
fn damaged_luks_fails_cleanly_in_512_mib_and_10_s() {
    fails_cleanly_when_damaged(
        "luks_unlock/cryptsetup-pbkdf2-header.img",
        &["luks", "unlock", "{}", "--passphrase-file", "{key}"],
    );
}

#[test]
fn damaged_kickstart_fails_cleanly_in_512_mib_and_10_s() {
    fails_cleanly_when_damaged("kickstart_inspect/minimal.ks", &["ks", "validate", "{}"]);
}

#[test]
fn damaged_compressed_erofs_fails_cleanly_in_512_mib_and_10_s() {
    for seed in [
        "erofs_image/lzma-bigpcluster",
        "erofs_image/lz4hc-fragments-ztailpacking",
        "erofs_image/zstd-dedupe",
        "erofs_image/deflate-legacy",
    ] {
        fails_cleanly_when_damaged(seed, &["erofs", "extract", "{}", "{dest}"]);
    }
}
