//! Recognising formats: the detection every `imgpipe inspect` runs first.

use criterion::{Criterion, criterion_group, criterion_main};

fn detect(c: &mut Criterion) {
    let head = imgpipe_testsupport::pattern(64 * 1024);
    c.bench_function("detect all formats on 64 KiB of noise", |b| {
        b.iter(|| {
            std::hint::black_box(
                imgpipe_luks::detect(&head)
                    || imgpipe_squashfs::detect_squashfs(&head)
                    || imgpipe_squashfs::detect_erofs(&head)
                    || imgpipe_isofs::detect(&head)
                    || imgpipe_gptpart::detect_gpt(&head).is_some()
                    || imgpipe_gptpart::detect_fat(&head)
                    || imgpipe_gptpart::detect_mbr(&head)
                    || imgpipe_kickstart::detect(&head),
            )
        })
    });
}

criterion_group!(benches, detect);
criterion_main!(benches);
