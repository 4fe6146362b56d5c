//! Replays the fuzz corpus and regressions of this crate's targets (see `fuzz/`).

use imgpipe_gptpart::raw::{FatBootSector, Mbr};
use imgpipe_testsupport::fuzz_inputs;

#[test]
fn gpt_inspect() {
    for (_, data) in fuzz_inputs("gpt_inspect") {
        let _ = imgpipe_gptpart::inspect_gpt(std::io::Cursor::new(&data));
    }
}

#[test]
fn mbr() {
    for (_, data) in fuzz_inputs("mbr") {
        if let Ok(m) = Mbr::parse(&data) {
            assert_eq!(Mbr::parse(&m.to_bytes()).ok(), Some(m));
        }
    }
}

#[test]
fn fat_boot_sector() {
    for (_, data) in fuzz_inputs("fat_boot_sector") {
        let _ = FatBootSector::parse(&data);
    }
}
