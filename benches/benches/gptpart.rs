//! FAT and GPT writing: a 64 MiB ESP holding 50 MB of files, ours (in memory, written once)
//! against `mkfs.vfat` + `mcopy -s`, printing the ratio; plus planning and writing a GPT.
//! `cargo bench -p imgpipe-benches --bench gptpart`.

use std::fs;
use std::path::Path;
use std::process::Command;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use imgpipe_benches::{print_ratio, time_ours};
use imgpipe_gptpart::{FatBuilder, GptBuilder, PartitionSize, PartitionSpec, Seed, partition_type};

const ESP: u64 = 64 << 20;

/// 50 MB in 10 files of 4 MB (kernels, initrds) and 100 of 100 kB (drivers, configs).
fn esp_tree(root: &Path) -> u64 {
    let mut total = 0;
    for i in 0..10 {
        let dir = root.join(format!("EFI/Linux/entry-{i}"));
        fs::create_dir_all(&dir).unwrap();
        let data = imgpipe_testsupport::pattern(4_000_000 + i);
        total += data.len() as u64;
        fs::write(dir.join("vmlinuz-6.10.efi"), data).unwrap();
    }
    let drivers = root.join("EFI/drivers");
    fs::create_dir_all(&drivers).unwrap();
    for i in 0..100 {
        let data = imgpipe_testsupport::pattern(100_000 + i);
        total += data.len() as u64;
        fs::write(drivers.join(format!("driver number {i}.efi")), data).unwrap();
    }
    total
}

fn fat(c: &mut Criterion) {
    let t = imgpipe_testsupport::tempdir();
    let src = t.path().join("src");
    let total = esp_tree(&src);
    let mut b = FatBuilder::new(ESP).label("ESP").epoch(1_700_000_000);
    b.add_tree(&src).unwrap();
    let mut g = c.benchmark_group("fat");
    g.throughput(Throughput::Bytes(total));
    g.sample_size(10);
    g.bench_function("64 MiB FAT16 ESP with 50 MB of files, in memory", |bench| {
        bench.iter(|| std::hint::black_box(b.build_vec().unwrap()))
    });
    g.finish();
    compare_mkfs(&src, t.path());
}

fn compare_mkfs(src: &Path, t: &Path) {
    let (Some(mkfs), Some(mcopy)) = (which("mkfs.vfat"), which("mcopy")) else {
        println!("mkfs.vfat or mcopy not found: no comparison");
        return;
    };
    let ours_img = t.join("ours.img");
    let ours = time_ours(3, || {
        let mut b = FatBuilder::new(ESP).label("ESP").epoch(1_700_000_000);
        b.add_tree(src).unwrap();
        // As `imgpipe fat create` does: a sparse file, written front to back once.
        let f = fs::File::create(&ours_img).unwrap();
        f.set_len(ESP).unwrap();
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        b.build_sparse(&mut w).unwrap();
        std::io::Write::flush(&mut w).unwrap();
    });
    let theirs_img = t.join("theirs.img");
    let entries: Vec<_> = fs::read_dir(src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let theirs = time_ours(3, || {
        let _ = fs::remove_file(&theirs_img);
        let ok = Command::new(&mkfs)
            .args(["-C", "-n", "ESP"])
            .arg(&theirs_img)
            .arg((ESP / 1024).to_string())
            .output()
            .unwrap()
            .status
            .success();
        assert!(ok, "mkfs.vfat failed");
        let ok = Command::new(&mcopy)
            .env("MTOOLS_SKIP_CHECK", "1")
            .arg("-s")
            .arg("-i")
            .arg(&theirs_img)
            .args(&entries)
            .arg("::")
            .output()
            .unwrap()
            .status
            .success();
        assert!(ok, "mcopy failed");
    });
    print_ratio(
        "64 MiB ESP with 50 MB of files, ours vs mkfs.vfat + mcopy",
        ours,
        theirs,
    );
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists())
}

fn gpt(c: &mut Criterion) {
    let seed = Seed::parse("0123456789abcdef0123456789abcdef").unwrap();
    let esp = partition_type("esp").unwrap();
    let root = partition_type("root-x86-64").unwrap();
    c.bench_function("plan and encode a 4-partition GPT", |bench| {
        bench.iter(|| {
            let layout = GptBuilder::new(8 << 30, seed)
                .partition(PartitionSpec::new(esp, PartitionSize::Bytes(512 << 20)).name("ESP"))
                .partition(PartitionSpec::new(root, PartitionSize::Bytes(4 << 30)))
                .partition(PartitionSpec::new(root, PartitionSize::Bytes(1 << 30)))
                .partition(PartitionSpec::new(
                    partition_type("home").unwrap(),
                    PartitionSize::Rest,
                ))
                .plan()
                .unwrap();
            std::hint::black_box(layout.table_regions())
        })
    });
}

criterion_group!(benches, fat, gpt);
criterion_main!(benches);
