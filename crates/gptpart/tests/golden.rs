//! Golden output: a fixed disk (GPT + FAT ESP) must keep its exact bytes across versions, so
//! a change to the output is always a deliberate one (update the hash and say why).

use std::io::{Cursor, Seek, SeekFrom};

use imgpipe_gptpart::{
    FatBuilder, GptBuilder, PartitionSize, PartitionSpec, Seed, attributes, partition_type,
};
use sha2::{Digest, Sha256};

fn golden_disk() -> Vec<u8> {
    let seed = Seed::parse("0123456789abcdef0123456789abcdef").unwrap();
    let layout = GptBuilder::new(4 << 20, seed)
        .alignment(64 << 10)
        .partition(
            PartitionSpec::new(
                partition_type("esp").unwrap(),
                PartitionSize::Bytes(2 << 20),
            )
            .name("ESP"),
        )
        .partition(
            PartitionSpec::new(partition_type("root-x86-64").unwrap(), PartitionSize::Rest)
                .name("root")
                .attributes(attributes::GROWFS),
        )
        .plan()
        .unwrap();
    let (off, len) = layout.partition_range(1).unwrap();
    let mut esp = FatBuilder::new(len)
        .label("ESP")
        .volume_id(seed.volume_id(b"1"))
        .epoch(1_700_000_000)
        .hidden_sectors((off / 512) as u32);
    esp.add_file("EFI/BOOT/BOOTX64.EFI", b"MZ golden".to_vec())
        .unwrap();
    esp.add_file(
        "loader/entries/Golden Entry.conf",
        b"title golden\n".to_vec(),
    )
    .unwrap();
    let mut disk = Cursor::new(vec![0u8; 4 << 20]);
    layout.write_table(&mut disk).unwrap();
    disk.seek(SeekFrom::Start(off)).unwrap();
    esp.build(&mut disk).unwrap();
    disk.into_inner()
}

#[test]
fn golden_sha256() {
    let hex: String = Sha256::digest(golden_disk())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        hex,
        "3ecdbec136355ac2f65dbc6b5eb29650a36425e248abc2918ca7ec4e8660cd97"
    );
}

#[test]
fn golden_disk_is_valid() {
    let (Some(sgdisk), Some(fsck)) = (
        imgpipe_testsupport::tool("sgdisk"),
        imgpipe_testsupport::tool("fsck.vfat"),
    ) else {
        return;
    };
    let t = imgpipe_testsupport::tempdir();
    let disk = golden_disk();
    let img = t.path().join("golden.img");
    std::fs::write(&img, &disk).unwrap();
    let out = imgpipe_testsupport::run_status(&sgdisk, [std::path::Path::new("-v"), &img]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("No problems found"));
    let esp = t.path().join("esp.img");
    std::fs::write(&esp, &disk[64 << 10..(64 << 10) + (2 << 20)]).unwrap();
    let out = imgpipe_testsupport::run(&fsck, [std::path::Path::new("-n"), &esp]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);
}
