//! squashfs, EROFS, FAT and kickstart summaries.

use imgpipe_gptpart::{FatBootSector, FatType};
use imgpipe_squashfs::raw::{CompressorOptions, flags};
use imgpipe_squashfs::{ErofsInspection, SquashfsInspection, bcj};

use super::{Text, date, human, plural, size_with_bytes, words};

/// As `unsquashfs -s` would put it, in fewer lines.
pub(super) fn squashfs(t: &mut Text, s: &SquashfsInspection) {
    let comp = s.compressor.name();
    t.field(
        "Compression",
        match &s.compressor_options {
            Some(o) => format!("{comp} ({})", compressor_options(o)),
            None => format!("{comp} ({})", default_options(s)),
        },
    );
    t.field("Block size", human(u64::from(s.block_size)));
    t.field("Inodes", s.inode_count);
    t.field("Fragments", s.fragment_count);
    t.field("Flags", words(&squashfs_flags(s)));
    t.field("Built", date(i64::from(s.mod_time)));
    t.field("Bytes used", size_with_bytes(s.bytes_used));
}

/// What squashfs-tools uses when no options block is stored (its `*_wrapper.h` defaults).
fn default_options(s: &SquashfsInspection) -> String {
    use imgpipe_squashfs::Compressor;
    match s.compressor {
        Compressor::Gzip => "defaults: level 9, window 15 bits".to_owned(),
        Compressor::Xz => format!(
            "defaults: dictionary {}, no BCJ filters",
            human(u64::from(s.block_size))
        ),
        Compressor::Zstd => "defaults: level 15".to_owned(),
        Compressor::Lzo => "defaults: lzo1x_999, level 8".to_owned(),
        _ => "default options".to_owned(),
    }
}

fn compressor_options(o: &CompressorOptions) -> String {
    match *o {
        CompressorOptions::Gzip {
            level,
            window_size,
            strategies,
        } => {
            // squashfs-tools gzip_wrapper.h: bit 0 is the default strategy.
            let names = ["filtered", "huffman-only", "run-length-encoded", "fixed"];
            let picked: Vec<&str> = names
                .iter()
                .enumerate()
                .filter(|(i, _)| strategies & (2 << i) != 0)
                .map(|(_, n)| *n)
                .collect();
            let mut s = format!("level {level}, window {window_size} bits");
            if !picked.is_empty() {
                s.push_str(&format!(", strategies {}", picked.join("+")));
            }
            s
        }
        CompressorOptions::Xz {
            dictionary_size,
            filters,
        } => {
            let picked: Vec<&str> = bcj::names(filters).collect();
            let f = if picked.is_empty() {
                "no BCJ filters".to_owned()
            } else {
                format!("BCJ filters {}", picked.join("+"))
            };
            format!("dictionary {}, {f}", human(u64::from(dictionary_size)))
        }
        CompressorOptions::Lz4 { version, flags } => {
            let hc = if flags & 1 != 0 {
                ", high compression"
            } else {
                ""
            };
            format!("format version {version}{hc}")
        }
        CompressorOptions::Zstd { level } => format!("level {level}"),
        CompressorOptions::Lzo { algorithm, level } => {
            let names = [
                "lzo1x_1",
                "lzo1x_1_11",
                "lzo1x_1_12",
                "lzo1x_1_15",
                "lzo1x_999",
            ];
            let name = names
                .get(algorithm as usize)
                .map_or_else(|| format!("algorithm {algorithm}"), |n| (*n).to_owned());
            if algorithm == 4 {
                format!("{name}, level {level}")
            } else {
                name
            }
        }
    }
}

/// The superblock flags in words, as `unsquashfs -s` spells them out.
fn squashfs_flags(s: &SquashfsInspection) -> Vec<String> {
    let f = s.flags;
    let mut out = Vec::new();
    if s.exportable || f & flags::EXPORTABLE != 0 {
        out.push("exportable (NFS)".to_owned());
    }
    if s.xattrs && f & flags::NO_XATTRS == 0 {
        out.push("xattrs".to_owned());
    }
    if f & flags::DUPLICATES != 0 {
        out.push("duplicates removed".to_owned());
    }
    if f & flags::NO_FRAGMENTS != 0 {
        out.push("no fragments".to_owned());
    } else if f & flags::ALWAYS_FRAGMENTS != 0 {
        out.push("tail-ends packed into fragments".to_owned());
    }
    let raw: Vec<&str> = [
        (flags::UNCOMPRESSED_INODES, "inodes"),
        (flags::UNCOMPRESSED_DATA, "data"),
        (flags::UNCOMPRESSED_FRAGMENTS, "fragments"),
        (flags::UNCOMPRESSED_XATTRS, "xattrs"),
        (flags::UNCOMPRESSED_IDS, "ids"),
    ]
    .iter()
    .filter(|(bit, _)| f & bit != 0)
    .map(|(_, n)| *n)
    .collect();
    if !raw.is_empty() {
        out.push(format!("uncompressed {}", raw.join("+")));
    }
    out
}

/// EROFS incompatible feature bits (Linux `fs/erofs/erofs_fs.h`); some bits carry two
/// names, one per kernel release that gave them meaning.
const EROFS_INCOMPAT: [(u32, &str); 8] = [
    (0x01, "zero-padding"),
    (0x02, "compression configs/big pclusters"),
    (0x04, "chunked files"),
    (0x08, "device table/compressed head2"),
    (0x10, "tail packing"),
    (0x20, "fragments/dedupe"),
    (0x40, "xattr prefixes"),
    (0x80, "48-bit layout"),
];

/// Block size, identity, features, build time.
pub(super) fn erofs(t: &mut Text, e: &ErofsInspection) {
    t.field("Block size", human(u64::from(e.block_size)));
    t.field(
        "Blocks",
        format!(
            "{} ({})",
            e.blocks,
            human(u64::from(e.blocks).saturating_mul(u64::from(e.block_size)))
        ),
    );
    t.field("Inodes", e.inodes);
    t.field("UUID", &e.uuid);
    t.field_if("Volume name", &e.volume_name);
    let mut feats: Vec<String> = EROFS_INCOMPAT
        .iter()
        .filter(|(bit, _)| e.feature_incompat & bit != 0)
        .map(|(_, n)| (*n).to_owned())
        .collect();
    let known = EROFS_INCOMPAT.iter().fold(0, |m, (b, _)| m | b);
    if e.feature_incompat & !known != 0 {
        feats.push(format!("unknown {:#x}", e.feature_incompat & !known));
    }
    t.field("Features", words(&feats));
    t.field("Feature flags", words(&e.features));
    t.field_if("Compression", &e.compression.join(", "));
    if let Some(nid) = e.packed_nid {
        t.field("Packed inode", format!("nid {nid}"));
    }
    t.field(
        "Built",
        i64::try_from(e.build_time).map_or_else(|_| e.build_time.to_string(), date),
    );
}

/// As `fsck.fat -v` describes a volume.
pub(super) fn fat(t: &mut Text, b: &FatBootSector) {
    let kind = match b.fat_type {
        FatType::Fat12 => "FAT12",
        FatType::Fat16 => "FAT16",
        FatType::Fat32 => "FAT32",
    };
    t.field("FAT type", kind);
    t.field(
        "Label",
        if b.volume_label.is_empty() || b.volume_label == "NO NAME" {
            "(none)"
        } else {
            &b.volume_label
        },
    );
    t.field(
        "Volume ID",
        format!("{:04X}-{:04X}", b.volume_id >> 16, b.volume_id & 0xFFFF),
    );
    t.field_if("OEM name", &b.oem_name);
    let bps = u64::from(b.bytes_per_sector);
    t.field("Sector size", plural(bps, "byte"));
    let cluster = bps * u64::from(b.sectors_per_cluster);
    t.field(
        "Cluster size",
        format!(
            "{} ({})",
            human(cluster),
            plural(b.sectors_per_cluster, "sector")
        ),
    );
    t.field(
        "Clusters",
        format!(
            "{} ({} of data)",
            b.clusters,
            human(u64::from(b.clusters) * cluster)
        ),
    );
    t.field(
        "Sectors",
        format!(
            "{} ({})",
            b.total_sectors,
            human(u64::from(b.total_sectors) * bps)
        ),
    );
    t.field("Reserved sectors", b.reserved_sectors);
    t.field(
        "FATs",
        format!("{} of {}", b.num_fats, plural(b.fat_size, "sector")),
    );
    if b.fat_type == FatType::Fat32 {
        t.field("Root cluster", b.root_cluster);
    } else {
        t.field("Root entries", b.root_entries);
    }
    t.field("Media", format!("{:#04x}", b.media));
    if b.hidden_sectors != 0 {
        t.field("Hidden sectors", b.hidden_sectors);
    }
}

/// Commands, sections, includes and the Fedora 43 verdict.
pub(super) fn kickstart(t: &mut Text, k: &imgpipe_kickstart::Inspection) {
    t.field("Lines", k.lines);
    t.field("Commands", words(&k.commands));
    t.field("Sections", words(&k.sections));
    if !k.includes.is_empty() {
        t.field("Includes", k.includes.join(", "));
    }
    let verdict = if k.valid_f43 { "valid" } else { "invalid" };
    t.field(
        "Fedora 43",
        format!(
            "{verdict} ({}, {})",
            plural(k.errors_f43 as u64, "error"),
            plural(k.warnings_f43 as u64, "warning")
        ),
    );
}
