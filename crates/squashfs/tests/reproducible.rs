//! Same tree + same epoch -> identical bytes: at 1 and at N threads, from another build
//! directory made in another creation order under another umask.

use std::path::Path;

use imgpipe_squashfs::{Builder, Compression, Compressor, WriteOptions};
use imgpipe_testsupport::{TreeOptions, run, tempdir, tricky_tree};

fn image(src: &Path, threads: usize, comp: Compressor) -> Vec<u8> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let mut opts = WriteOptions::new(1_234_567_890);
        opts.compression = Compression::new(comp);
        opts.block_size = 16_384;
        let mut b = Builder::new(opts).unwrap();
        b.add_tree(src).unwrap();
        let mut out = std::io::Cursor::new(Vec::new());
        b.build(&mut out).unwrap();
        out.into_inner()
    })
}

fn extra_files(root: &Path, reverse: bool) {
    let mut names: Vec<usize> = (0..60).collect();
    if reverse {
        names.reverse();
    }
    for i in names {
        let data = imgpipe_testsupport::pattern(i * 1000 + 17);
        std::fs::write(root.join(format!("many/f{i:03}")), data).unwrap();
    }
}

#[test]
fn identical_bytes_across_threads_build_dirs_umask_and_creation_order() {
    let tmp = tempdir();
    let a = tmp.path().join("first-build-dir");
    std::fs::create_dir(&a).unwrap();
    tricky_tree(&a, TreeOptions::default());
    std::fs::create_dir(a.join("many")).unwrap();
    extra_files(&a, false);
    std::fs::set_permissions(
        a.join("many"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    imgpipe_testsupport::set_mtimes(&a, 1_700_000_000);

    // A second copy elsewhere: `cp -a` creates entries in readdir order under umask 077,
    // and the extra files are rewritten in the reverse order.
    let b = tmp.path().join("another/deeper/build");
    std::fs::create_dir_all(b.parent().unwrap()).unwrap();
    let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    run("cp", ["-a".as_ref(), a.as_os_str(), b.as_os_str()]);
    for i in 0..60 {
        std::fs::remove_file(b.join(format!("many/f{i:03}"))).unwrap();
    }
    extra_files(&b, true);
    rustix::process::umask(old);
    for i in 0..60 {
        std::fs::set_permissions(
            b.join(format!("many/f{i:03}")),
            std::os::unix::fs::PermissionsExt::from_mode(0o644),
        )
        .unwrap();
    }
    imgpipe_testsupport::set_mtimes(&b, 1_700_000_000);
    let d = imgpipe_testsupport::diff_trees(&a, &b, imgpipe_testsupport::Compare::default());
    assert!(d.is_empty(), "the two source trees differ: {d:?}");

    for comp in [Compressor::Zstd, Compressor::Gzip, Compressor::Lz4] {
        let one = image(&a, 1, comp);
        assert_eq!(one, image(&a, 3, comp), "{comp:?}: 1 vs 3 threads");
        assert_eq!(
            one,
            image(&b, 2, comp),
            "{comp:?}: other build dir / order / umask"
        );
        assert!(one.len() > 100_000);
    }

    // EROFS, compressed: a file over two 16 MiB segments joins the trees.
    for root in [&a, &b] {
        let mut big = Vec::with_capacity(17 << 20);
        let mut i = 0u32;
        while big.len() < (17 << 20) + 777 {
            big.extend_from_slice(format!("row {i} {}\n", i % 13).as_bytes());
            i += 1;
        }
        std::fs::write(root.join("many/big"), &big).unwrap();
        imgpipe_testsupport::set_mtimes(root, 1_700_000_000);
    }
    use imgpipe_squashfs::erofs::{ErofsAlgorithm, ErofsCompression};
    for (alg, level, pcluster) in [
        (ErofsAlgorithm::Lz4hc, 9, 65536),
        (ErofsAlgorithm::Lzma, 0, 1 << 20),
    ] {
        let one = erofs_image(&a, 1, ErofsCompression::with_level(alg, level), pcluster);
        let c = ErofsCompression::with_level(alg, level);
        assert!(
            one == erofs_image(&a, 3, c, pcluster),
            "{alg:?}: 1 vs 3 threads"
        );
        assert!(
            one == erofs_image(&b, 2, c, pcluster),
            "{alg:?}: other build dir / order / umask"
        );
        // Run inside a one-thread pool (as `imgpipe --processors 1` does): the background
        // compression of the packed inode must not wait on the only worker.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        assert!(
            one == pool.install(|| erofs_image(&a, 0, c, pcluster)),
            "{alg:?}: inside a one-thread pool"
        );
    }
}

fn erofs_image(
    src: &Path,
    threads: usize,
    comp: imgpipe_squashfs::erofs::ErofsCompression,
    pcluster: u32,
) -> Vec<u8> {
    use imgpipe_squashfs::erofs::{ErofsBuilder, ErofsWriteOptions};
    let tree = imgpipe_fstree::scan(src, &imgpipe_fstree::ScanOptions::default()).unwrap();
    let mut opts = ErofsWriteOptions::new(1_234_567_890, [3; 16]);
    opts.compression = Some(comp);
    opts.pcluster_size = pcluster;
    opts.fragments = true;
    opts.ztailpacking = true;
    opts.dedupe = true;
    opts.threads = (threads > 0).then_some(threads);
    let mut b = ErofsBuilder::new(opts).unwrap();
    b.add_fstree(&tree).unwrap();
    let mut out = std::io::Cursor::new(Vec::new());
    b.build(&mut out).unwrap();
    out.into_inner()
}

/// Over 32 MiB of content crosses several batches: reader, compressors and writer overlap,
/// and the bytes still do not depend on the thread count; progress reaches the total.
#[test]
fn many_batches_same_bytes_at_any_thread_count_and_progress_reaches_the_total() {
    use std::sync::{Arc, Mutex};
    let tmp = tempdir();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let block = imgpipe_testsupport::pattern(1 << 20);
    for i in 0..80u32 {
        // Every file differs (no dedup), some share a size, tails go to fragments.
        let mut data = block[..(1 << 20) - (i as usize % 7) * 4099].to_vec();
        data[..4].copy_from_slice(&i.to_le_bytes());
        std::fs::write(src.join(format!("f{i:02}")), data).unwrap();
    }
    std::fs::write(
        src.join("zz-copy-of-f00"),
        std::fs::read(src.join("f00")).unwrap(),
    )
    .unwrap();
    let build = |threads: usize| {
        let seen: Arc<Mutex<Vec<(u64, u64)>>> = Arc::default();
        let s2 = seen.clone();
        let img = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                let mut opts = WriteOptions::new(7);
                opts.compression = Compression::new(Compressor::Lz4);
                let mut b = Builder::new(opts).unwrap();
                b.add_tree(&src).unwrap();
                b.on_progress(move |p| s2.lock().unwrap().push((p.done, p.total)));
                let mut out = std::io::Cursor::new(Vec::new());
                let rep = b.build(&mut out).unwrap();
                assert_eq!(rep.duplicates, 1);
                (out.into_inner(), rep.content_bytes)
            });
        let seen = seen.lock().unwrap().clone();
        (img, seen)
    };
    let ((one, total), seen) = build(1);
    assert!(seen.len() >= 3, "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0), "{seen:?}");
    assert!(seen.iter().all(|&(_, t)| t == total), "{seen:?}");
    assert_eq!(seen.last().unwrap().0, total);
    assert_eq!(build(2).0.0, one);
    assert_eq!(build(5).0.0, one);
}
