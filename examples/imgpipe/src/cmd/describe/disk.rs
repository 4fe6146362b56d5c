//! GPT and MBR summaries: the partition tables as `sgdisk -p` and `fdisk -l` list them.

use imgpipe_gptpart::{GptDisk, Guid, MbrInspection};

use super::{Text, human, plural};

/// Header facts, then one row per partition: number, start, end, size, type, name.
pub(super) fn gpt(t: &mut Text, d: &GptDisk) {
    let ss = d.sector_size.max(1);
    t.field("Disk GUID", d.disk_guid);
    t.field("Sector size", plural(ss, "byte"));
    t.field(
        "Disk size",
        format!(
            "{} ({})",
            plural(d.disk_size / ss, "sector"),
            human(d.disk_size)
        ),
    );
    t.field(
        "Usable sectors",
        format!("{} to {}", d.first_usable_lba(), d.last_usable_lba()),
    );
    t.field(
        "Table",
        match (&d.primary_problem, &d.backup_problem) {
            (Some(p), _) => format!("read from the BACKUP copy; the primary is damaged: {p}"),
            (None, Some(b)) => format!("primary ok; backup damaged: {b}"),
            (None, None) => "primary and backup ok".to_owned(),
        },
    );
    t.field(
        "Protective MBR",
        match (d.protective_mbr, d.mbr_partitions.len()) {
            (false, _) => "no".to_owned(),
            (true, n) if n > 1 => format!("hybrid ({n} MBR entries)"),
            (true, _) => "yes".to_owned(),
        },
    );
    t.field(
        "Partitions",
        format!(
            "{} of {} entries",
            d.partitions.len(),
            d.header.num_partition_entries
        ),
    );
    if d.partitions.is_empty() {
        return;
    }
    let any_flags = d.partitions.iter().any(|p| !p.flags.is_empty());
    let rows: Vec<Vec<String>> = d
        .partitions
        .iter()
        .map(|p| {
            let mut row = vec![
                p.index.to_string(),
                p.first_lba.to_string(),
                p.last_lba.to_string(),
                human(p.size),
                p.type_name
                    .map_or_else(|| p.type_guid.to_string(), str::to_owned),
            ];
            if any_flags {
                row.push(if p.flags.is_empty() {
                    "-".to_owned()
                } else {
                    p.flags.join("+")
                });
            }
            row.push(p.name.clone());
            row
        })
        .collect();
    let mut header = vec!["#", "start", "end", "size", "type"];
    if any_flags {
        header.push("flags");
    }
    header.push("name");
    t.table(&header, &[true, true, true, true], &rows);
}

/// Disk signature and the used entries.
pub(super) fn mbr(t: &mut Text, m: &MbrInspection) {
    t.field("Disk signature", format!("{:#010x}", m.disk_signature));
    t.field("Partitions", m.partitions.len());
    let rows: Vec<Vec<String>> = m
        .partitions
        .iter()
        .map(|(n, p)| {
            let first = u64::from(p.first_lba);
            let sectors = u64::from(p.sectors);
            vec![
                n.to_string(),
                if p.status == 0x80 { "*" } else { "" }.to_owned(),
                first.to_string(),
                first.saturating_add(sectors).saturating_sub(1).to_string(),
                sectors.to_string(),
                human(sectors.saturating_mul(512)),
                format!("{:02x} {}", p.partition_type, mbr_type(p.partition_type)),
            ]
        })
        .collect();
    if !rows.is_empty() {
        t.table(
            &["#", "boot", "start", "end", "sectors", "size", "type"],
            &[true, false, true, true, true, true, false],
            &rows,
        );
    }
}

/// The common MBR partition type bytes, named as `fdisk` names them.
fn mbr_type(b: u8) -> &'static str {
    match b {
        0x01 => "FAT12",
        0x04 | 0x06 | 0x0e => "FAT16",
        0x05 | 0x0f => "Extended",
        0x07 => "HPFS/NTFS/exFAT",
        0x0b | 0x0c => "FAT32",
        0x17 | 0x96 | 0xcd => "ISO9660",
        0x82 => "Linux swap",
        0x83 => "Linux",
        0x8e => "Linux LVM",
        0xee => "GPT protective",
        0xef => "EFI System",
        0xfd => "Linux raid",
        _ => "",
    }
}

/// A partition type as the ISO system area records it (`0xef` or a GPT type GUID), named.
pub(super) fn type_name(t: &str) -> String {
    if let Some(hex) = t.strip_prefix("0x") {
        return match u8::from_str_radix(hex, 16) {
            Ok(b) if !mbr_type(b).is_empty() => format!("{b:02x} {}", mbr_type(b)),
            _ => t.to_owned(),
        };
    }
    match t.parse::<Guid>().ok().and_then(imgpipe_gptpart::type_alias) {
        Some(alias) => alias.to_owned(),
        None => t.to_owned(),
    }
}
