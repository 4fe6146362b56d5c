//! ISO9660 summary: identifiers, dates, extensions, El Torito, the hybrid system area.

use imgpipe_isofs::Inspection;
use imgpipe_isofs::raw::{BootEntry, Emulation};

use super::{Text, date, human, plural, yes_no};

/// As `xorriso -pvd_info` and `-report_el_torito` put it, in fewer lines.
pub(super) fn iso(t: &mut Text, i: &Inspection) {
    let p = &i.primary;
    t.field("Volume ID", &p.volume_id);
    t.field_if("System ID", &p.system_id);
    t.field_if("Volume set ID", &p.volume_set_id);
    t.field_if("Publisher ID", &p.publisher_id);
    t.field_if("Data preparer ID", &p.data_preparer_id);
    t.field_if("Application ID", &p.application_id);
    let block = u64::from(p.logical_block_size);
    t.field(
        "Volume size",
        format!(
            "{} of {} ({})",
            plural(p.volume_space_size, "block"),
            plural(block, "byte"),
            human(u64::from(p.volume_space_size).saturating_mul(block))
        ),
    );
    let when = |d: Option<i64>| d.map_or_else(|| "not set".to_owned(), date);
    t.field("Created", when(p.creation));
    if p.modification != p.creation {
        t.field("Modified", when(p.modification));
    }
    t.field("Rock Ridge", yes_no(i.rock_ridge));
    t.field(
        "Joliet",
        match &i.joliet_volume_id {
            Some(id) if i.joliet && !id.trim().is_empty() => {
                format!("yes (volume ID {:?})", id.trim())
            }
            _ => yes_no(i.joliet).to_owned(),
        },
    );
    el_torito(t, i);
    system_area(t, i);
}

fn el_torito(t: &mut Text, i: &Inspection) {
    let (Some(br), Some(cat)) = (&i.el_torito, &i.boot_catalog) else {
        t.field(
            "El Torito",
            if i.el_torito.is_some() {
                "boot record without a catalog"
            } else {
                "no"
            },
        );
        return;
    };
    t.field(
        "El Torito",
        format!(
            "{}, catalog at block {}",
            match cat.entries.len() {
                1 => "1 boot entry".to_owned(),
                n => format!("{n} boot entries"),
            },
            br.catalog_lba
        ),
    );
    let rows: Vec<Vec<String>> = cat
        .entries
        .iter()
        .enumerate()
        .map(|(n, e)| boot_entry(n, e))
        .collect();
    t.table(
        &[
            "#",
            "platform",
            "bootable",
            "emulation",
            "load size",
            "image at",
            "section",
        ],
        &[true, false, false, false, true, true, false],
        &rows,
    );
}

fn boot_entry(n: usize, e: &BootEntry) -> Vec<String> {
    let platform = match e.platform {
        0 => "BIOS".to_owned(),
        1 => "PowerPC".to_owned(),
        2 => "Mac".to_owned(),
        0xEF => "UEFI".to_owned(),
        x => format!("{x:#04x}"),
    };
    let emulation = match e.emulation {
        Emulation::NoEmulation => "none".to_owned(),
        Emulation::Floppy12 => "1.2M floppy".to_owned(),
        Emulation::Floppy144 => "1.44M floppy".to_owned(),
        Emulation::Floppy288 => "2.88M floppy".to_owned(),
        Emulation::HardDisk => "hard disk".to_owned(),
        Emulation::Other(x) => format!("{x:#04x}"),
    };
    // The count is of 512-byte virtual sectors.
    let load = plural(e.sector_count, "sector");
    let name = if n == 0 {
        "default".to_owned()
    } else if e.section_id.trim().is_empty() {
        "-".to_owned()
    } else {
        e.section_id.trim().to_owned()
    };
    vec![
        (n + 1).to_string(),
        platform,
        yes_no(e.bootable).to_owned(),
        emulation,
        load,
        format!("block {}", e.load_rba),
        name,
    ]
}

/// The MBR/GPT of a hybrid image, as `fdisk -l` would list them.
fn system_area(t: &mut Text, i: &Inspection) {
    let sa = &i.system_area;
    let tables = match (sa.mbr, sa.gpt) {
        (true, true) => "hybrid: MBR and GPT",
        (true, false) => "hybrid: MBR",
        (false, true) => "hybrid: GPT",
        (false, false) if sa.used => "boot code, no partition table",
        (false, false) => "empty",
    };
    t.field("System area", tables);
    if sa.partitions.is_empty() {
        return;
    }
    let rows: Vec<Vec<String>> = sa
        .partitions
        .iter()
        .map(|p| {
            vec![
                p.table.to_uppercase(),
                p.index.to_string(),
                p.start.to_string(),
                p.start
                    .saturating_add(p.sectors)
                    .saturating_sub(1)
                    .to_string(),
                human(p.sectors.saturating_mul(512)),
                super::disk::type_name(&p.partition_type),
            ]
        })
        .collect();
    t.table(
        &["table", "#", "start", "end", "size", "type"],
        &[false, true, true, true, true, false],
        &rows,
    );
}
