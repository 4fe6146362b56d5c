//! LUKS2 summary: identity, cipher, data segment, keyslots with their KDF cost, tokens; and
//! the `luks dump` text.

use std::fmt::Write as _;

use imgpipe_luks::{CopyReport, Inspection, Kdf, Luks2Header};

use super::{Text, human, plural, size_with_bytes};

/// As `cryptsetup luksDump` puts it, in fewer lines.
pub(super) fn luks(t: &mut Text, l: &Inspection) {
    t.field("Version", l.version);
    t.field("UUID", &l.uuid);
    t.field(
        "Label",
        if l.label.is_empty() {
            "(none)"
        } else {
            &l.label
        },
    );
    t.field_if("Subsystem", &l.subsystem);
    t.field(
        "Header",
        format!(
            "{} per copy, {} of keyslot area",
            human(l.hdr_size),
            human(l.keyslots_size)
        ),
    );
    t.field("Primary header", copy(&l.primary));
    t.field("Secondary header", copy(&l.secondary));
    let crypt = l.segment_details.iter().find(|s| s.encryption.is_some());
    if let Some(s) = crypt {
        let bits = l.keyslot_details.first().map(|k| k.key_bits);
        let cipher = s.encryption.clone().unwrap_or_default();
        t.field(
            "Cipher",
            match bits {
                Some(b) => format!("{cipher}, {b}-bit key"),
                None => cipher,
            },
        );
        if let Some(ss) = s.sector_size {
            t.field("Sector size", plural(u64::from(ss), "byte"));
        }
        t.field("Data offset", size_with_bytes(s.offset));
        t.field(
            "Data size",
            s.size
                .map_or_else(|| "to the end of the device".to_owned(), size_with_bytes),
        );
    }
    t.field("Keyslots", l.keyslot_details.len());
    if !l.keyslot_details.is_empty() {
        let rows: Vec<Vec<String>> = l
            .keyslot_details
            .iter()
            .map(|k| {
                vec![
                    k.id.to_string(),
                    kdf(&k.kdf_params),
                    format!("{} bits", k.key_bits),
                    k.encryption.clone(),
                    format!("{} at {}", human(k.area_size), k.area_offset),
                    match k.priority {
                        0 => "ignore",
                        2 => "prefer",
                        _ => "normal",
                    }
                    .to_owned(),
                ]
            })
            .collect();
        t.table(
            &["#", "KDF", "key", "area cipher", "area", "priority"],
            &[true, false, true, false, false, false],
            &rows,
        );
    }
    t.field("Segments", l.segment_details.len());
    if !l.segment_details.is_empty() {
        let rows: Vec<Vec<String>> = l
            .segment_details
            .iter()
            .map(|s| {
                vec![
                    s.id.to_string(),
                    s.kind.clone(),
                    s.offset.to_string(),
                    s.size.map_or_else(|| "dynamic".to_owned(), human),
                    s.encryption.clone().unwrap_or_else(|| "-".to_owned()),
                    s.sector_size
                        .map_or_else(|| "-".to_owned(), |n| n.to_string()),
                ]
            })
            .collect();
        t.table(
            &["#", "type", "offset", "size", "cipher", "sector"],
            &[true, false, true, true, false, true],
            &rows,
        );
    }
    t.field("Tokens", l.tokens);
    if !l.requirements.is_empty() {
        t.field(
            "Requirements",
            format!("{} (cannot be opened here)", l.requirements.join(", ")),
        );
    }
}

/// `pbkdf2-sha256, 1000 iterations` or `argon2id, time 4, memory 1 GiB, 4 lanes`.
fn kdf(k: &Kdf) -> String {
    match k {
        Kdf::Pbkdf2 {
            hash, iterations, ..
        } => format!(
            "pbkdf2-{}, {}",
            hash.name(),
            plural(*iterations, "iteration")
        ),
        Kdf::Argon2 {
            time, memory, cpus, ..
        } => format!(
            "{}, time {time}, memory {}, {}",
            k.type_name(),
            human(u64::from(*memory).saturating_mul(1024)),
            plural(*cpus, "lane")
        ),
    }
}

/// `ok (seqid 3)` or what is wrong with the copy.
fn copy(c: &CopyReport) -> String {
    match (&c.problem, c.seqid) {
        (Some(p), _) => format!("at {}: damaged: {p}", c.offset),
        (None, Some(s)) if c.checksum_ok => format!("at {}: ok (seqid {s})", c.offset),
        (None, _) if c.checksum_ok => format!("at {}: ok", c.offset),
        (None, _) => format!("at {}: checksum mismatch", c.offset),
    }
}

/// `writeln!` into a `String`, which cannot fail.
macro_rules! wl {
    ($o:expr, $($t:tt)*) => {{
        let _ = writeln!($o, $($t)*);
    }};
}

/// The text of `imgpipe luks dump`: both header copies' state and the metadata, laid out as
/// `cryptsetup luksDump` lays them out (unlike the summary of `inspect`, which it does not
/// share lines with).
pub fn dump(hdr: &Luks2Header) -> String {
    let mut o = String::new();
    dump_to(&mut o, hdr);
    o
}

fn dump_to(o: &mut String, hdr: &Luks2Header) {
    let md = &hdr.metadata;
    wl!(o, "LUKS header information");
    wl!(o, "Version:        2");
    wl!(o, "Epoch (seqid):  {}", hdr.seqid);
    wl!(o, "Metadata area:  {} [bytes]", hdr.hdr_size);
    wl!(o, "Keyslots area:  {} [bytes]", md.config.keyslots_size);
    wl!(o, "UUID:           {}", hdr.uuid);
    wl!(o, "Label:          {}", or_none(&hdr.label, "(no label)"));
    wl!(
        o,
        "Subsystem:      {}",
        or_none(&hdr.subsystem, "(no subsystem)")
    );
    for (name, c) in ["primary", "secondary"].iter().zip(&hdr.copies) {
        match &c.problem {
            None => wl!(o, "Header copy:    {name} at {} ok", c.offset),
            Some(p) => wl!(o, "Header copy:    {name} at {} DAMAGED: {p}", c.offset),
        }
    }
    let reqs = md.config.mandatory_requirements();
    if !reqs.is_empty() {
        wl!(o, "Requirements:   {}", reqs.join(" "));
    }
    wl!(o, "\nData segments:");
    for (id, s) in &md.segments {
        wl!(o, "  {id}: {}", s.kind);
        wl!(o, "\toffset: {} [bytes]", s.offset);
        match s.size {
            imgpipe_luks::raw::SegmentSize::Dynamic => wl!(o, "\tlength: (whole device)"),
            imgpipe_luks::raw::SegmentSize::Bytes(b) => wl!(o, "\tlength: {b} [bytes]"),
        }
        if let Some(c) = &s.crypt {
            wl!(o, "\tcipher: {}", c.encryption);
            wl!(o, "\tsector: {} [bytes]", c.sector_size);
        }
    }
    wl!(o, "\nKeyslots:");
    for (id, k) in &md.keyslots {
        wl!(o, "  {id}: luks2");
        wl!(o, "\tKey:        {} bits", k.key_size * 8);
        let prio = match k.priority {
            Some(0) => "ignored",
            Some(2) => "preferred",
            _ => "normal",
        };
        wl!(o, "\tPriority:   {prio}");
        wl!(o, "\tCipher:     {}", k.area.encryption);
        wl!(o, "\tCipher key: {} bits", k.area.key_size * 8);
        wl!(o, "\tPBKDF:      {}", k.kdf.type_name());
        match &k.kdf {
            Kdf::Pbkdf2 {
                hash, iterations, ..
            } => {
                wl!(o, "\tHash:       {}", hash.name());
                wl!(o, "\tIterations: {iterations}");
            }
            Kdf::Argon2 {
                time, memory, cpus, ..
            } => {
                wl!(o, "\tTime cost:  {time}");
                wl!(o, "\tMemory:     {memory}");
                wl!(o, "\tThreads:    {cpus}");
            }
        }
        wl!(o, "\tAF stripes: {}", k.af.stripes);
        wl!(o, "\tAF hash:    {}", k.af.hash.name());
        wl!(o, "\tArea offset: {} [bytes]", k.area.offset);
        wl!(o, "\tArea length: {} [bytes]", k.area.size);
    }
    wl!(o, "Tokens:");
    for (id, t) in &md.tokens {
        let kind = t.get("type").and_then(|v| v.as_str()).unwrap_or("?");
        wl!(o, "  {id}: {kind}");
    }
    wl!(o, "Digests:");
    for (id, d) in &md.digests {
        wl!(o, "  {id}: pbkdf2");
        wl!(o, "\tHash:       {}", d.hash.name());
        wl!(o, "\tIterations: {}", d.iterations);
    }
}

fn or_none<'a>(s: &'a str, none: &'a str) -> &'a str {
    if s.is_empty() { none } else { s }
}
