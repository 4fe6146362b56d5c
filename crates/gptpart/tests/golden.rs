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

fn fat_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A FAT volume from a host tree (`add_tree`): nested directories, long and short names, a
/// symlink (followed: FAT has none), and an empty directory.
#[test]
fn golden_fat_host_tree() {
    use std::os::unix::fs::PermissionsExt;
    let t = imgpipe_testsupport::tempdir();
    let src = t.path().join("src");
    for d in ["EFI/BOOT", "loader/entries", "empty"] {
        std::fs::create_dir_all(src.join(d)).unwrap();
    }
    std::fs::write(src.join("EFI/BOOT/BOOTX64.EFI"), b"MZ golden").unwrap();
    std::fs::write(
        src.join("loader/entries/Golden Entry.conf"),
        b"title golden\n",
    )
    .unwrap();
    std::fs::write(
        src.join("loader/big.bin"),
        imgpipe_testsupport::pattern(70_000),
    )
    .unwrap();
    std::fs::write(src.join("readme.txt"), b"lower case 8.3\n").unwrap();
    std::os::unix::fs::symlink("readme.txt", src.join("README-LINK")).unwrap();
    std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o755)).unwrap();
    imgpipe_testsupport::set_mtimes(&src, 1_700_000_000);
    let mut fat = FatBuilder::new(2 << 20)
        .label("GOLDEN")
        .volume_id(0x1234_5678)
        .epoch(1_700_000_000);
    fat.add_tree(&src).unwrap();
    assert_eq!(
        fat_hex(&fat.build_vec().unwrap()),
        "f628aad4f4cb0738c8751d76f04f46a712ab5169dbc7aceb41d5665f6da9b4aa"
    );
}
