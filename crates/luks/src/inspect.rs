//! A serde-serializable description of a LUKS2 volume (what `imgpipe inspect` prints).

use std::io::{Read, Seek};

use serde::Serialize;

use crate::error::Result;
use crate::header::ALLOWED_HDR_SIZES;
use crate::header::{CopyReport, Luks2Header};
use crate::raw::{MAGIC_PRIMARY, MAGIC_SECONDARY, SegmentSize};

/// Whether `head` (the first bytes of a device or image) holds a LUKS2 header: the primary
/// at byte 0, or, when the primary is wiped or damaged, the secondary copy at one of the
/// offsets the format allows that lie inside `head` (cryptsetup's default puts it at 16 KiB).
/// [`inspect`] and [`Luks2Header::read`] then fall back to that copy.
pub fn detect(head: &[u8]) -> bool {
    let at = |o: usize, magic: [u8; 6]| {
        head.get(o..o + 8)
            .is_some_and(|b| b[..6] == magic && b[6..8] == [0, 2])
    };
    at(0, MAGIC_PRIMARY)
        || ALLOWED_HDR_SIZES
            .iter()
            .any(|&o| at(o as usize, MAGIC_SECONDARY))
}

#[cfg(test)]
mod tests {
    use super::detect;

    #[test]
    fn primary_or_secondary_copy() {
        let mut head = vec![0u8; 64 * 1024];
        assert!(!detect(&head));
        head[0x4000..0x4008].copy_from_slice(b"SKUL\xba\xbe\0\x02");
        assert!(detect(&head), "secondary at 16 KiB");
        assert!(!detect(&head[..0x4004]), "cut short");
        head[0x4007] = 1;
        assert!(!detect(&head), "LUKS1 has no secondary");
        head[..8].copy_from_slice(b"LUKS\xba\xbe\0\x02");
        assert!(detect(&head));
        // A secondary magic at an offset the format never uses is not enough.
        let mut odd = vec![0u8; 64 * 1024];
        odd[0x5000..0x5008].copy_from_slice(b"SKUL\xba\xbe\0\x02");
        assert!(!detect(&odd));
    }
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
    /// The KDF with its cost (iterations, or time, memory and lanes), for the text report
    /// (not in the JSON, whose shape is fixed).
    #[serde(skip)]
    pub kdf_params: crate::Kdf,
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
                    kdf_params: k.kdf.clone(),
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
