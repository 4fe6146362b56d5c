//! Replays the fuzz corpus and regressions of this crate's targets (see `fuzz/`) through the
//! very bodies the targets run ([`imgpipe_gptpart::fuzzing`]), and checks that the committed
//! seeds are real disks, volumes and layouts.

use imgpipe_gptpart::fuzzing;
use imgpipe_testsupport::fuzz_inputs;

fn nonempty(target: &str) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let inputs = fuzz_inputs(target);
    assert!(!inputs.is_empty(), "no corpus for {target}");
    inputs
}

#[test]
fn gpt_inspect() {
    let mut read = 0;
    for (_, data) in nonempty("gpt_inspect") {
        read += usize::from(fuzzing::gpt_inspect(&data));
        // Every truncation fails cleanly or reads consistently.
        for len in (0..data.len()).step_by(509) {
            fuzzing::gpt_inspect(&data[..len]);
        }
    }
    assert!(read >= 2, "the seeds are valid disks");
}

#[test]
fn mbr() {
    let parsed = nonempty("mbr")
        .iter()
        .filter(|(_, d)| fuzzing::mbr(d))
        .count();
    assert!(parsed >= 1, "the seed MBR no longer parses");
}

#[test]
fn fat_boot_sector() {
    let parsed = nonempty("fat_boot_sector")
        .iter()
        .filter(|(_, d)| fuzzing::fat_boot_sector(d))
        .count();
    assert!(parsed >= 1, "the seed boot sector no longer parses");
}

#[test]
fn fat_volume() {
    let walked = nonempty("fat_volume")
        .iter()
        .filter(|(_, d)| fuzzing::fat_volume(d))
        .count();
    assert!(walked >= 2, "the seeds are valid volumes");
}

#[test]
fn gpt_roundtrip() {
    let planned = nonempty("gpt_roundtrip")
        .iter()
        .filter(|(_, d)| fuzzing::gpt_roundtrip(d))
        .count();
    assert!(planned >= 2, "the seeds are valid layouts");
}

#[test]
fn fat_roundtrip() {
    let built = nonempty("fat_roundtrip")
        .iter()
        .filter(|(_, d)| fuzzing::fat_roundtrip(d).is_some_and(|n| n >= 3))
        .count();
    assert!(built >= 1, "the seeds are valid trees");
}

#[test]
fn fat_extract() {
    let inputs = fuzz_inputs("fat_extract");
    assert!(!inputs.is_empty());
    for (path, data) in inputs {
        let sandbox = imgpipe_testsupport::tempdir();
        let ok = fuzzing::fat_extract(&data, &sandbox.path().join("s"));
        if path.components().any(|c| c.as_os_str() == "corpus") {
            assert!(ok, "{}", path.display());
        }
    }
}
