//! A serde-serializable description of a LUKS2 volume (what `imgpipe inspect` prints).

use std::io::{Read, Seek, SeekFrom};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::raw::{BINARY_HEADER_SIZE, BinaryHeader, MAGIC_PRIMARY};

/// Header sizes (binary header + JSON area) that LUKS2 allows.
pub const ALLOWED_HDR_SIZES: [u64; 9] = [
    0x4000, 0x8000, 0x10000, 0x20000, 0x40000, 0x80000, 0x100000, 0x200000, 0x400000,
];

/// Whether `head` (the first bytes of a device or image) starts with a LUKS2 header.
pub fn detect(head: &[u8]) -> bool {
    head.len() >= 8 && head[..6] == MAGIC_PRIMARY && head[6..8] == [0, 2]
}

/// What one header copy looks like.
#[derive(Debug, Clone, Serialize)]
pub struct HeaderCopy {
    /// Absolute offset of the copy.
    pub offset: u64,
    /// Sequence id.
    pub seqid: u64,
    /// Whether the sha256 checksum over the copy matches.
    pub checksum_ok: bool,
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
    /// The primary copy.
    pub primary: HeaderCopy,
    /// The secondary copy, when it parses.
    pub secondary: Option<HeaderCopy>,
    /// Keyslot ids in the JSON area of the primary copy.
    pub keyslots: Vec<String>,
    /// Number of segments.
    pub segments: usize,
}

fn read_copy<R: Read + Seek>(r: &mut R, offset: u64, hdr_size: u64) -> Result<Vec<u8>> {
    r.seek(SeekFrom::Start(offset))
        .map_err(|source| Error::Io {
            what: "seeking to a LUKS2 header copy",
            source,
        })?;
    let mut area = Vec::new();
    r.take(hdr_size)
        .read_to_end(&mut area)
        .map_err(|source| Error::Io {
            what: "reading a LUKS2 header copy",
            source,
        })?;
    if (area.len() as u64) < hdr_size {
        return Err(Error::Truncated {
            structure: "LUKS2 header area",
            offset,
            needed: hdr_size,
            available: area.len() as u64,
        });
    }
    Ok(area)
}

/// Reads both header copies and summarises the volume.
pub fn inspect<R: Read + Seek>(mut r: R) -> Result<Inspection> {
    let mut first = vec![0u8; BINARY_HEADER_SIZE];
    let got = read_copy(&mut r, 0, BINARY_HEADER_SIZE as u64)?;
    first.copy_from_slice(&got);
    let hdr = BinaryHeader::parse(&first, 0)?;
    if !ALLOWED_HDR_SIZES.contains(&hdr.hdr_size) {
        return Err(Error::Malformed {
            structure: "primary LUKS2 binary header",
            field: "hdr_size",
            offset: 8,
            reason: "not one of the sizes LUKS2 allows (16 KiB .. 4 MiB, powers of two)",
        });
    }
    let area = read_copy(&mut r, 0, hdr.hdr_size)?;
    let primary = HeaderCopy {
        offset: 0,
        seqid: hdr.seqid,
        checksum_ok: hdr.checksum_matches(&area),
    };
    let secondary = read_copy(&mut r, hdr.hdr_size, hdr.hdr_size)
        .ok()
        .and_then(|a| {
            BinaryHeader::parse(&a, hdr.hdr_size)
                .ok()
                .map(|h| HeaderCopy {
                    offset: hdr.hdr_size,
                    seqid: h.seqid,
                    checksum_ok: h.checksum_matches(&a),
                })
        });
    let json = &area[BINARY_HEADER_SIZE..];
    let end = json.iter().position(|&b| b == 0).unwrap_or(json.len());
    let value: serde_json::Value =
        serde_json::from_slice(&json[..end]).map_err(|_| Error::Malformed {
            structure: "LUKS2 JSON area",
            field: "json",
            offset: BINARY_HEADER_SIZE as u64,
            reason: "not valid JSON",
        })?;
    let keyslots = value
        .get("keyslots")
        .and_then(|k| k.as_object())
        .map(|k| k.keys().cloned().collect())
        .unwrap_or_default();
    let segments = value
        .get("segments")
        .and_then(|s| s.as_object())
        .map_or(0, |s| s.len());
    Ok(Inspection {
        version: hdr.version,
        uuid: hdr.uuid(),
        label: hdr.label(),
        subsystem: hdr.subsystem(),
        hdr_size: hdr.hdr_size,
        primary,
        secondary,
        keyslots,
        segments,
    })
}
