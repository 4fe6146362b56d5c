//! A serde-serializable description of a LUKS2 volume (what `imgpipe inspect` prints).

use std::io::{Read, Seek};

use serde::Serialize;

use crate::error::Result;
use crate::header::{CopyReport, Luks2Header};
use crate::raw::{MAGIC_PRIMARY, SegmentSize};

/// Whether `head` (the first bytes of a device or image) starts with a LUKS2 primary
/// header. (A volume whose primary is wiped is still readable by [`inspect`], which probes
/// for the secondary copy, but is not recognised from its first bytes.)
pub fn detect(head: &[u8]) -> bool {
    head.len() >= 8 && head[..6] == MAGIC_PRIMARY && head[6..8] == [0, 2]
}

/// One keyslot, summarised.
#[derive(Debug, Clone, Serialize)]
pub struct KeyslotSummary {
    /// Keyslot id.
    pub id: u32,
    /// Volume key size in bits.
    pub key_bits: u32,
    /// `pbkdf2`, `argon2i` or `argon2id`.
    pub kdf: &'static str,
    /// Area cipher.
    pub encryption: String,
    /// Area offset.
    pub area_offset: u64,
    /// Area size.
    pub area_size: u64,
    /// Priority (0 ignore, 1 normal, 2 prefer).
    pub priority: u8,
}

/// One segment, summarised.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentSummary {
    /// Segment id.
    pub id: u32,
    /// `crypt`, `linear`...
    #[serde(rename = "type")]
    pub kind: String,
    /// Byte offset.
    pub offset: u64,
    /// Size in bytes, `None` for `dynamic`.
    pub size: Option<u64>,
    /// Cipher, for crypt segments.
    pub encryption: Option<String>,
    /// Sector size, for crypt segments.
    pub sector_size: Option<u32>,
}

/// Summary of a LUKS2 volume.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// Always 2.
    pub version: u16,
    /// Volume UUID.
    pub uuid: String,
    /// Label (may be empty).
    pub label: String,
    /// Subsystem (may be empty).
    pub subsystem: String,
    /// Binary header plus JSON area size.
    pub hdr_size: u64,
    /// Sequence id of the copy in use.
    pub seqid: u64,
    /// Keyslots area size.
    pub keyslots_size: u64,
    /// The primary copy: seqid and checksum, or what is wrong with it.
    pub primary: CopyReport,
    /// The secondary copy: seqid and checksum, or what is wrong with it.
    pub secondary: CopyReport,
    /// Keyslot ids.
    pub keyslots: Vec<String>,
    /// Number of segments.
    pub segments: usize,
    /// Keyslots in detail.
    pub keyslot_details: Vec<KeyslotSummary>,
    /// Segments in detail.
    pub segment_details: Vec<SegmentSummary>,
    /// Number of tokens.
    pub tokens: usize,
    /// `requirements.mandatory` flags (non-empty means this crate will not unlock it).
    pub requirements: Vec<String>,
}

impl Inspection {
    /// Summarises a header that was read.
    pub fn of(h: &Luks2Header) -> Self {
        let md = &h.metadata;
        Self {
            version: 2,
            uuid: h.uuid.clone(),
            label: h.label.clone(),
            subsystem: h.subsystem.clone(),
            hdr_size: h.hdr_size,
            seqid: h.seqid,
            keyslots_size: md.config.keyslots_size,
            primary: h.copies[0].clone(),
            secondary: h.copies[1].clone(),
            keyslots: md.keyslots.keys().map(ToString::to_string).collect(),
            segments: md.segments.len(),
            keyslot_details: md
                .keyslots
                .iter()
                .map(|(id, k)| KeyslotSummary {
                    id: *id,
                    key_bits: k.key_size.saturating_mul(8),
                    kdf: k.kdf.type_name(),
                    encryption: k.area.encryption.clone(),
                    area_offset: k.area.offset,
                    area_size: k.area.size,
                    priority: k.priority.unwrap_or(1),
                })
                .collect(),
            segment_details: md
                .segments
                .iter()
                .map(|(id, s)| SegmentSummary {
                    id: *id,
                    kind: s.kind.clone(),
                    offset: s.offset,
                    size: match s.size {
                        SegmentSize::Dynamic => None,
                        SegmentSize::Bytes(b) => Some(b),
                    },
                    encryption: s.crypt.as_ref().map(|c| c.encryption.clone()),
                    sector_size: s.crypt.as_ref().map(|c| c.sector_size),
                })
                .collect(),
            tokens: md.tokens.len(),
            requirements: md
                .config
                .mandatory_requirements()
                .into_iter()
                .map(str::to_owned)
                .collect(),
        }
    }
}

/// Reads both header copies and summarises the volume.
pub fn inspect<R: Read + Seek>(mut r: R) -> Result<Inspection> {
    Ok(Inspection::of(&Luks2Header::read(&mut r)?))
}
