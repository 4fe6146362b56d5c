//! GPT and MBR cross-validation against sgdisk, sfdisk and systemd-repart, in both directions.

use std::fs;
use std::io::{Cursor, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use imgpipe_gptpart::{
    Error, GptBuilder, GptCopy, GptLayout, HybridEntry, PartitionSize, PartitionSpec, Seed,
    attributes, partition_type, read_gpt, relocate_backup,
};
use imgpipe_testsupport::{run, run_status, tempdir, tool};

const MIB: u64 = 1 << 20;

fn seed(s: &str) -> Seed {
    Seed::parse(s).unwrap()
}

fn sample_layout(seed: Seed, sector_size: u64) -> GptLayout {
    GptBuilder::new(64 * MIB, seed)
        .sector_size(sector_size)
        .partition(
            PartitionSpec::new(
                partition_type("esp").unwrap(),
                PartitionSize::Bytes(8 * MIB),
            )
            .name("ESP"),
        )
        .partition(
            PartitionSpec::new(
                partition_type("linux-generic").unwrap(),
                PartitionSize::Bytes(3 * MIB + 512),
            )
            .name("d\u{e9}j\u{e0} vu")
            .attributes(attributes::READ_ONLY | attributes::NO_AUTO),
        )
        .partition(
            PartitionSpec::new(
                partition_type("linux-generic").unwrap(),
                PartitionSize::Rest,
            )
            .name("data"),
        )
        .partition(
            PartitionSpec::new(
                partition_type("root-x86-64").unwrap(),
                PartitionSize::Bytes(4 * MIB),
            )
            .name("root")
            .attributes(attributes::GROWFS),
        )
        .plan()
        .unwrap()
}

fn write_image(path: &Path, layout: &GptLayout) {
    let f = fs::File::create(path).unwrap();
    f.set_len(layout.disk_size()).unwrap();
    layout.write_table(&f).unwrap();
}

fn sgdisk_clean(sgdisk: &Path, img: &Path) {
    let out = run_status(sgdisk, [Path::new("-v"), img]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("No problems found"),
        "sgdisk -v: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sfdisk_json(sfdisk: &Path, img: &Path) -> serde_json::Value {
    let out = run(sfdisk, [Path::new("-J"), img]);
    serde_json::from_slice(&out.stdout).unwrap()
}

fn sfdisk_verify(sfdisk: &Path, img: &Path) {
    let out = run_status(sfdisk, [Path::new("--verify"), img]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "sfdisk --verify: {text}");
    assert!(
        text.contains("No errors detected"),
        "sfdisk --verify: {text}"
    );
    for bad in ["overlap", "misaligned", "corrupt", "mismatch", "wrong"] {
        assert!(
            !text.to_lowercase().contains(bad),
            "sfdisk --verify: {text}"
        );
    }
}

/// fdisk's `v` command with a forced logical sector size (sfdisk 2.38 has no such option).
fn fdisk_verify(fdisk: &Path, img: &Path, sector_size: u64) -> String {
    let mut child = Command::new(fdisk)
        .arg("-b")
        .arg(sector_size.to_string())
        .arg(img)
        .env("LC_ALL", "C")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"v\nq\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("No errors detected"), "fdisk v: {text}");
    assert!(
        out.stderr.is_empty(),
        "fdisk: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
fn sgdisk_and_sfdisk_accept_ours_512() {
    let (Some(sgdisk), Some(sfdisk)) = (tool("sgdisk"), tool("sfdisk")) else {
        return;
    };
    let t = tempdir();
    let img = t.path().join("disk.img");
    let s = seed("0123456789abcdef0123456789abcdef");
    let layout = sample_layout(s, 512);
    write_image(&img, &layout);
    sgdisk_clean(&sgdisk, &img);
    sfdisk_verify(&sfdisk, &img);
    let v = sfdisk_json(&sfdisk, &img);
    let pt = &v["partitiontable"];
    assert_eq!(pt["label"], "gpt");
    assert_eq!(pt["id"], s.disk_guid().to_string());
    assert_eq!(pt["firstlba"], 34);
    assert_eq!(pt["lastlba"], 64 * 2048 - 34);
    let parts = pt["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 4, "{v:#}");
    for (p, planned) in parts.iter().zip(layout.partitions()) {
        assert_eq!(p["start"], planned.entry.first_lba, "{v:#}");
        assert_eq!(p["size"], planned.size / 512, "{v:#}");
        assert_eq!(p["type"], planned.entry.type_guid.to_string());
        assert_eq!(p["uuid"], planned.entry.unique_guid.to_string());
        assert_eq!(p["name"], planned.entry.name.as_str());
    }
    assert_eq!(parts[0]["start"], 2048);
    assert_eq!(parts[1]["start"], 2048 + 8 * 2048);
    // 3 MiB + 512 bytes round up to 6145 sectors; the next partition starts aligned.
    assert_eq!(parts[1]["size"], 6145);
    assert_eq!(parts[2]["start"], 2048 + 12 * 2048);
    assert_eq!(parts[1]["attrs"], "GUID:60,63");
    assert_eq!(parts[3]["attrs"], "GUID:59");
    // The rest partition stays aligned so the root partition after it is too.
    assert_eq!(parts[3]["start"].as_u64().unwrap() % 2048, 0);
    assert_eq!(
        parts[3]["start"].as_u64().unwrap() + 4 * 2048 - 1,
        64 * 2048 - 34 - (64 * 2048 - 34 + 1) % 2048
    );
    // And sgdisk agrees with our reading of names and attributes.
    let info = String::from_utf8_lossy(
        &run(&sgdisk, ["-i".as_ref(), "2".as_ref(), img.as_os_str()]).stdout,
    )
    .into_owned();
    assert!(
        info.contains("Partition name: 'd\u{e9}j\u{e0} vu'"),
        "{info}"
    );
    assert!(info.contains("Attribute flags: 9000000000000000"), "{info}");
}

#[test]
fn fdisk_accepts_ours_4096() {
    let Some(fdisk) = tool("fdisk") else { return };
    let t = tempdir();
    let img = t.path().join("disk4k.img");
    let layout = sample_layout(seed("00112233445566778899aabbccddeeff"), 4096);
    write_image(&img, &layout);
    fdisk_verify(&fdisk, &img, 4096);
    let out = run(
        &fdisk,
        ["-b", "4096", "-l", "-o", "Start,End,Type-UUID,UUID,Name"]
            .map(Path::new)
            .iter()
            .chain([&img.as_path()]),
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("Disklabel type: gpt"), "{text}");
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip_while(|l| !l.starts_with("Start"))
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 4, "{text}");
    for (row, p) in rows.iter().zip(layout.partitions()) {
        assert_eq!(row[0], p.entry.first_lba.to_string(), "{text}");
        assert_eq!(row[1], p.entry.last_lba.to_string(), "{text}");
        assert_eq!(row[2], p.entry.type_guid.to_string());
        assert_eq!(row[3], p.entry.unique_guid.to_string());
    }
    assert_eq!(rows[0][0], "256");
    let back = read_gpt(fs::File::open(&img).unwrap()).unwrap();
    assert_eq!(back.sector_size, 4096);
    assert_eq!(back.header.first_usable_lba, 6);
    assert_eq!(back.partitions.len(), 4);
    assert!(back.is_clean(), "{back:?}");
}

#[test]
fn we_read_sgdisk_and_sfdisk_tables() {
    let (Some(sgdisk), Some(sfdisk)) = (tool("sgdisk"), tool("sfdisk")) else {
        return;
    };
    let t = tempdir();
    let img = t.path().join("sg.img");
    fs::File::create(&img).unwrap().set_len(32 * MIB).unwrap();
    run(
        &sgdisk,
        [
            "-U",
            "11111111-2222-3333-4444-555555555555",
            "-n",
            "1:2048:+4M",
            "-t",
            "1:ef00",
            "-c",
            "1:EFI System",
            "-u",
            "1:AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE",
            "-n",
            "2:0:+1M",
            "-t",
            "2:8200",
            "-A",
            "2:set:63",
            "-n",
            "3:0:0",
            "-t",
            "3:8304",
            "-c",
            "3:root",
        ]
        .map(Path::new)
        .iter()
        .chain([&img.as_path()]),
    );
    let d = read_gpt(fs::File::open(&img).unwrap()).unwrap();
    assert!(d.is_clean(), "{d:?}");
    assert!(d.protective_mbr);
    assert_eq!(
        d.disk_guid.to_string(),
        "11111111-2222-3333-4444-555555555555"
    );
    assert_eq!(d.partitions.len(), 3);
    let v = sfdisk_json(&sfdisk, &img);
    for (p, ours) in v["partitiontable"]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&d.partitions)
    {
        assert_eq!(p["start"], ours.first_lba);
        assert_eq!(p["size"], ours.last_lba - ours.first_lba + 1);
        assert_eq!(p["type"], ours.type_guid.to_string());
        assert_eq!(p["uuid"], ours.unique_guid.to_string());
        assert_eq!(p["name"].as_str().unwrap_or(""), ours.name);
    }
    assert_eq!(d.partitions[0].type_name, Some("esp"));
    assert_eq!(d.partitions[0].name, "EFI System");
    assert_eq!(d.partitions[1].type_name, Some("swap"));
    assert_eq!(d.partitions[1].flags, ["no-auto"]);
    assert_eq!(d.partitions[2].type_name, Some("root-x86-64"));
    assert_eq!(d.partitions[2].last_lba, 32 * 2048 - 34);

    // sfdisk's own GPT.
    let img2 = t.path().join("sf.img");
    fs::File::create(&img2).unwrap().set_len(16 * MIB).unwrap();
    let mut child = Command::new(&sfdisk)
        .args(["-q", "--no-reread", "--no-tell-kernel"])
        .arg(&img2)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"label: gpt\nsize=4M, type=U, name=esp\ntype=L, name=\"rest of it\"\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    let d = read_gpt(fs::File::open(&img2).unwrap()).unwrap();
    assert!(d.is_clean(), "{d:?}");
    let v = sfdisk_json(&sfdisk, &img2);
    let parts = v["partitiontable"]["partitions"].as_array().unwrap();
    assert_eq!(d.partitions.len(), parts.len());
    assert_eq!(d.partitions[1].name, "rest of it");
    assert_eq!(d.partitions[1].type_name, Some("linux-generic"));
    assert_eq!(parts[1]["start"], d.partitions[1].first_lba);
    assert_eq!(v["partitiontable"]["id"], d.disk_guid.to_string());
}

/// systemd-repart writes the same GUIDs as we derive for one layout.
#[test]
fn guids_match_systemd_repart() {
    let Some(repart) = tool("systemd-repart") else {
        return;
    };
    let t = tempdir();
    let defs = t.path().join("defs");
    fs::create_dir(&defs).unwrap();
    let def = |name: &str, ty: &str, label: &str| {
        fs::write(
            defs.join(name),
            format!("[Partition]\nType={ty}\nLabel={label}\nSizeMinBytes=8M\nSizeMaxBytes=8M\n"),
        )
        .unwrap();
    };
    def("10-esp.conf", "esp", "ESP");
    def("20-root.conf", "root-x86-64", "root-a");
    def("30-root.conf", "root-x86-64", "root-b");
    def("40-swap.conf", "swap", "swap");
    let seed_text = "c0ffee00-1234-4abc-8def-0123456789ab";
    let img = t.path().join("repart.img");
    run(
        &repart,
        [
            "--empty=create".to_string(),
            "--size=64M".into(),
            format!("--definitions={}", defs.display()),
            format!("--seed={seed_text}"),
            "--dry-run=no".into(),
            img.display().to_string(),
        ],
    );
    let theirs = read_gpt(fs::File::open(&img).unwrap()).unwrap();
    assert!(theirs.is_clean(), "{theirs:?}");
    let s = seed(seed_text);
    let mut b = GptBuilder::new(64 * MIB, s);
    for (ty, label) in [
        ("esp", "ESP"),
        ("root-x86-64", "root-a"),
        ("root-x86-64", "root-b"),
        ("swap", "swap"),
    ] {
        // repart sets grow-fs on root partitions unless told otherwise.
        let attrs = if ty.starts_with("root") {
            attributes::GROWFS
        } else {
            0
        };
        b = b.partition(
            PartitionSpec::new(partition_type(ty).unwrap(), PartitionSize::Bytes(8 * MIB))
                .name(label)
                .attributes(attrs),
        );
    }
    let ours = b.plan().unwrap();
    assert_eq!(theirs.disk_guid, ours.disk_guid());
    assert_eq!(theirs.partitions.len(), 4);
    for (t, o) in theirs.partitions.iter().zip(ours.partitions()) {
        assert_eq!(t.unique_guid, o.entry.unique_guid, "{t:?}");
        assert_eq!(t.type_guid, o.entry.type_guid);
        assert_eq!(t.name, o.entry.name);
        assert_eq!(t.attributes, o.entry.attributes);
        assert_eq!(
            (t.first_lba, t.last_lba),
            (o.entry.first_lba, o.entry.last_lba)
        );
    }
    // Identical placement and GUIDs, so an identical entry array. (The headers differ only
    // in the first usable LBA: repart reserves up to 1 MiB, we follow sgdisk's 34.)
    let mut mine = Cursor::new(vec![0u8; 64 * MIB as usize]);
    ours.write_table(&mut mine).unwrap();
    let repart_bytes = fs::read(&img).unwrap();
    let mine = mine.into_inner();
    assert!(
        mine[1024..17408] == repart_bytes[1024..17408],
        "entry array differs"
    );
}

#[test]
fn type_table_matches_systemd_id128() {
    let Some(id128) = tool("systemd-id128") else {
        return;
    };
    let out = run(&id128, ["show"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let known: std::collections::BTreeMap<&str, &str> = text
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(char::is_whitespace))
        .map(|(a, b)| (a, b.trim()))
        .collect();
    let mut checked = 0;
    for (alias, guid) in imgpipe_gptpart::PARTITION_TYPES {
        if let Some(hex) = known.get(alias) {
            let want: String = guid.to_string().replace('-', "").to_lowercase();
            assert_eq!(*hex, want, "{alias}");
            checked += 1;
        }
    }
    assert!(checked >= 40, "only {checked} aliases checked");
}

#[test]
fn damaged_primary_falls_back_to_backup() {
    let layout = sample_layout(seed("0123456789abcdef0123456789abcdef"), 512);
    let mut disk = Cursor::new(vec![0u8; layout.disk_size() as usize]);
    layout.write_table(&mut disk).unwrap();
    let mut bytes = disk.into_inner();
    // Corrupt one entry of the primary array: its CRC no longer matches.
    bytes[1024 + 60] ^= 0xFF;
    let d = read_gpt(Cursor::new(&bytes)).unwrap();
    assert_eq!(d.source, GptCopy::Backup);
    let why = d.primary_problem.clone().unwrap();
    assert!(why.contains("partition_entry_array_crc32"), "{why}");
    assert_eq!(d.partitions.len(), 4);
    assert_eq!(d.partitions[0].name, "ESP");
    // Primary header destroyed entirely.
    bytes[512..1024].fill(0);
    let d = read_gpt(Cursor::new(&bytes)).unwrap();
    assert_eq!(d.source, GptCopy::Backup);
    assert_eq!(d.partitions.len(), 4);
    // Backup damaged too: a clean error that names both.
    let n = bytes.len();
    bytes[n - 512 + 30] ^= 1;
    let e = read_gpt(Cursor::new(&bytes)).unwrap_err();
    assert!(matches!(e, Error::NoValidGpt { .. }), "{e}");
    // Repairing through relocate_backup rewrites both copies from the good one.
    let mut bytes2 = {
        let mut c = Cursor::new(vec![0u8; layout.disk_size() as usize]);
        layout.write_table(&mut c).unwrap();
        c.into_inner()
    };
    bytes2[600] ^= 1;
    let mut c = Cursor::new(bytes2);
    let d = relocate_backup(&mut c, layout.disk_size()).unwrap();
    assert!(d.is_clean(), "{d:?}");
    assert_eq!(d.source, GptCopy::Primary);
}

#[test]
fn truncated_and_absurd_inputs_fail_cleanly() {
    let layout = sample_layout(seed("0123456789abcdef0123456789abcdef"), 512);
    let mut disk = Cursor::new(vec![0u8; layout.disk_size() as usize]);
    layout.write_table(&mut disk).unwrap();
    let bytes = disk.into_inner();
    for len in [0, 1, 511, 512, 600, 1023, 1024, 5000, 17407, 17408, 1 << 20] {
        let r = read_gpt(Cursor::new(&bytes[..len]));
        if let Ok(d) = &r {
            // The primary alone can be valid; the missing backup must be reported.
            assert!(d.backup_problem.is_some(), "{len}: {d:?}");
        }
    }
    // Absurd entry count with a valid CRC.
    let mut b = bytes.clone();
    b[512 + 80..512 + 84].copy_from_slice(&u32::MAX.to_le_bytes());
    b[512 + 16..512 + 20].fill(0);
    let crc = crc32fast::hash(&b[512..512 + 92]);
    b[512 + 16..512 + 20].copy_from_slice(&crc.to_le_bytes());
    let d = read_gpt(Cursor::new(&b)).unwrap();
    assert_eq!(d.source, GptCopy::Backup);
    assert!(d.primary_problem.unwrap().contains("limit"));
    // Builder errors.
    let s = seed("0123456789abcdef0123456789abcdef");
    let esp = partition_type("esp").unwrap();
    let too_big = GptBuilder::new(8 * MIB, s)
        .partition(PartitionSpec::new(esp, PartitionSize::Bytes(8 * MIB)))
        .plan();
    assert!(
        matches!(too_big, Err(Error::DoesNotFit { index: 1, .. })),
        "{too_big:?}"
    );
    let two_rest = GptBuilder::new(8 * MIB, s)
        .partition(PartitionSpec::new(esp, PartitionSize::Rest))
        .partition(PartitionSpec::new(esp, PartitionSize::Rest))
        .plan();
    assert!(two_rest.is_err());
    assert!(GptBuilder::new(8 * MIB + 1, s).plan().is_err());
    assert!(
        GptBuilder::new(8 * MIB, s)
            .sector_size(1024)
            .plan()
            .is_err()
    );
    assert!(GptBuilder::new(16 * 1024, s).plan().is_err());
    let long_name = GptBuilder::new(8 * MIB, s)
        .partition(PartitionSpec::new(esp, PartitionSize::Bytes(MIB)).name("n".repeat(37)))
        .plan();
    assert!(matches!(long_name, Err(Error::InvalidName { .. })));
}

#[test]
fn one_seed_identical_bytes_other_seed_only_guids_differ() {
    let a = seed("0123456789abcdef0123456789abcdef");
    let b = seed("fedcba9876543210fedcba9876543210");
    let bytes = |s| {
        let mut c = Cursor::new(vec![0u8; 64 * MIB as usize]);
        sample_layout(s, 512).write_table(&mut c).unwrap();
        c.into_inner()
    };
    let (a1, a2, b1) = (bytes(a), bytes(a), bytes(b));
    assert!(a1 == a2);
    assert!(a1 != b1);
    let (ra, rb) = (
        read_gpt(Cursor::new(&a1)).unwrap(),
        read_gpt(Cursor::new(&b1)).unwrap(),
    );
    assert_ne!(ra.disk_guid, rb.disk_guid);
    for (pa, pb) in ra.partitions.iter().zip(&rb.partitions) {
        assert_ne!(pa.unique_guid, pb.unique_guid);
        let mut pb = pb.clone();
        pb.unique_guid = pa.unique_guid;
        assert_eq!(pa, &pb);
    }
    // Byte positions that differ: only GUID fields and CRC fields.
    let guid_or_crc = |off: usize| {
        let in_sector = off % 512;
        let header = off == 512 + in_sector || off >= a1.len() - 512;
        let array =
            (1024..17408).contains(&off) || (a1.len() - 512 - 16384..a1.len() - 512).contains(&off);
        (header
            && ((56..72).contains(&in_sector)
                || (16..20).contains(&in_sector)
                || (88..92).contains(&in_sector)))
            || (array && ((off - 1024) % 128 >= 16 && (off - 1024) % 128 < 32))
    };
    let diffs: Vec<usize> = (0..a1.len()).filter(|&i| a1[i] != b1[i]).collect();
    assert!(!diffs.is_empty());
    for off in diffs {
        assert!(guid_or_crc(off), "byte {off} differs");
    }
}

#[test]
fn growing_moves_the_backup_to_the_end() {
    let Some(sgdisk) = tool("sgdisk") else { return };
    let t = tempdir();
    let img = t.path().join("grow.img");
    write_image(
        &img,
        &sample_layout(seed("0123456789abcdef0123456789abcdef"), 512),
    );
    let mut f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&img)
        .unwrap();
    f.set_len(96 * MIB).unwrap();
    let before = read_gpt(&mut f).unwrap();
    assert!(before.backup_problem.is_some(), "{before:?}");
    let after = relocate_backup(&mut f, 96 * MIB).unwrap();
    drop(f);
    assert!(after.is_clean(), "{after:?}");
    assert_eq!(after.last_usable_lba(), 96 * 2048 - 34);
    assert_eq!(after.partitions, before.partitions);
    sgdisk_clean(&sgdisk, &img);
    // Growing by a few sectors only (the new backup array covers the old backup header).
    let mut f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&img)
        .unwrap();
    let d = relocate_backup(&mut f, 96 * MIB + 4096).unwrap();
    assert!(d.is_clean(), "{d:?}");
    assert_eq!(fs::metadata(&img).unwrap().len(), 96 * MIB + 4096);
    sgdisk_clean(&sgdisk, &img);
}

#[test]
fn hybrid_mbr_is_accepted() {
    let Some(sgdisk) = tool("sgdisk") else { return };
    let t = tempdir();
    let img = t.path().join("hybrid.img");
    let layout = GptBuilder::new(32 * MIB, seed("0123456789abcdef0123456789abcdef"))
        .partition(PartitionSpec::new(
            partition_type("esp").unwrap(),
            PartitionSize::Bytes(8 * MIB),
        ))
        .partition(PartitionSpec::new(
            partition_type("linux-generic").unwrap(),
            PartitionSize::Rest,
        ))
        .hybrid_mbr(vec![HybridEntry {
            partition: 1,
            mbr_type: 0xEF,
            bootable: true,
        }])
        .plan()
        .unwrap();
    write_image(&img, &layout);
    let mbr = layout.mbr();
    assert_eq!(mbr.partitions[0].partition_type, 0xEF);
    assert_eq!(mbr.partitions[0].first_lba, 2048);
    assert_eq!(mbr.partitions[1].partition_type, 0xEE);
    assert_eq!(mbr.partitions[1].sectors, 2047);
    sgdisk_clean(&sgdisk, &img);
    let d = read_gpt(fs::File::open(&img).unwrap()).unwrap();
    assert!(d.protective_mbr);
    assert_eq!(d.mbr_partitions.len(), 2);
    let out = String::from_utf8_lossy(&run(&sgdisk, ["-O".as_ref(), img.as_os_str()]).stdout)
        .into_owned();
    let row = out
        .lines()
        .find(|l| l.trim_start().starts_with("1 "))
        .unwrap_or_default();
    assert_eq!(
        row.split_whitespace().collect::<Vec<_>>(),
        ["1", "*", "2048", "18431", "primary", "0xEF"],
        "{out}"
    );
}

#[test]
fn classic_mbr_both_directions() {
    use imgpipe_gptpart::{MbrBuilder, MbrPartitionSpec, inspect_mbr};
    let Some(sfdisk) = tool("sfdisk") else { return };
    let t = tempdir();
    let img = t.path().join("mbr.img");
    let mbr = MbrBuilder::new(32 * MIB, 0x1234_5678)
        .partition(MbrPartitionSpec {
            partition_type: 0xEF,
            size: PartitionSize::Bytes(8 * MIB),
            bootable: true,
        })
        .partition(MbrPartitionSpec {
            partition_type: 0x83,
            size: PartitionSize::Rest,
            bootable: false,
        })
        .partition(MbrPartitionSpec {
            partition_type: 0x82,
            size: PartitionSize::Bytes(2 * MIB),
            bootable: false,
        })
        .plan()
        .unwrap();
    let f = fs::File::create(&img).unwrap();
    f.set_len(32 * MIB).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &mbr.to_bytes(), 0).unwrap();
    sfdisk_verify(&sfdisk, &img);
    let v = sfdisk_json(&sfdisk, &img);
    let pt = &v["partitiontable"];
    assert_eq!(pt["label"], "dos");
    assert_eq!(pt["id"], "0x12345678");
    let parts = pt["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 3);
    assert_eq!(parts[0]["start"], 2048);
    assert_eq!(parts[0]["size"], 8 * 2048);
    assert_eq!(parts[0]["type"], "ef");
    assert_eq!(parts[0]["bootable"], true);
    assert_eq!(parts[1]["type"], "83");
    assert_eq!(parts[1]["start"], 9 * 2048);
    assert_eq!(parts[2]["start"].as_u64().unwrap() + 2 * 2048, 32 * 2048);
    // And sfdisk's own table reads back the same through ours.
    let img2 = t.path().join("theirs.img");
    fs::File::create(&img2).unwrap().set_len(32 * MIB).unwrap();
    let mut child = Command::new(&sfdisk)
        .args(["-q", "--no-reread", "--no-tell-kernel"])
        .arg(&img2)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"label: dos\nlabel-id: 0x12345678\nsize=8M, type=ef, bootable\nsize=21M, type=83\ntype=82\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    let theirs = inspect_mbr(fs::File::open(&img2).unwrap()).unwrap();
    assert_eq!(theirs.disk_signature, 0x1234_5678);
    let mine: Vec<_> = mbr.partitions.iter().filter(|p| !p.is_empty()).collect();
    for ((_, t), m) in theirs.partitions.iter().zip(&mine) {
        assert_eq!(t.partition_type, m.partition_type);
        assert_eq!(t.first_lba, m.first_lba);
        assert_eq!(t.status, m.status);
        assert_eq!(t.first_chs, m.first_chs, "CHS as sfdisk writes it");
    }
    assert_eq!(
        theirs.partitions[0].1, *mine[0],
        "whole entry, CHS included"
    );
    // Too many partitions.
    let mut b = MbrBuilder::new(32 * MIB, 0);
    for _ in 0..5 {
        b = b.partition(MbrPartitionSpec {
            partition_type: 0x83,
            size: PartitionSize::Bytes(MIB),
            bootable: false,
        });
    }
    assert!(b.plan().is_err());
}
