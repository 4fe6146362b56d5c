//! Reading and writing both copies of a LUKS2 header (binary header + JSON area), choosing
//! the valid copy with the highest seqid, and reporting a damaged copy.

use std::io::{Read, Seek, SeekFrom, Write};

use serde::Serialize;

use crate::error::{Error, Result, io};
use crate::raw::{
    BINARY_HEADER_SIZE, BinaryHeader, HeaderKind, Limits, Metadata, known_requirement,
};

/// Header sizes (binary header + JSON area) that LUKS2 allows.
pub const ALLOWED_HDR_SIZES: [u64; 9] = [
    0x4000, 0x8000, 0x10000, 0x20000, 0x40000, 0x80000, 0x100000, 0x200000, 0x400000,
];

/// What was found in one header copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopyReport {
    /// Absolute offset of the copy (for a damaged secondary: where it was looked for).
    pub offset: u64,
    /// Its seqid when the copy is valid.
    pub seqid: Option<u64>,
    /// Whether the binary header parsed and its sha256 checksum matches.
    pub checksum_ok: bool,
    /// Why the copy is not usable, or that it is older than the other one.
    pub problem: Option<String>,
}

/// A LUKS2 header read from a device or image: the chosen copy's fields and metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Luks2Header {
    /// Binary header plus JSON area size.
    pub hdr_size: u64,
    /// Sequence id of the chosen copy.
    pub seqid: u64,
    /// Label (at most 47 bytes).
    pub label: String,
    /// Subsystem (at most 47 bytes).
    pub subsystem: String,
    /// UUID text.
    pub uuid: String,
    /// The JSON metadata.
    pub metadata: Metadata,
    /// Salts of the primary and secondary binary headers (kept on rewrite).
    pub salts: [[u8; 64]; 2],
    /// What was found in the primary and the secondary copy.
    pub copies: [CopyReport; 2],
    /// The limits the header was read with; unlocking and digest checks keep to them.
    pub limits: Limits,
}

fn read_exact_at<R: Read + Seek>(
    r: &mut R,
    offset: u64,
    len: u64,
    structure: &'static str,
) -> Result<Vec<u8>> {
    r.seek(SeekFrom::Start(offset))
        .map_err(io("seeking to a LUKS2 header copy"))?;
    let mut buf = Vec::new();
    r.take(len)
        .read_to_end(&mut buf)
        .map_err(io("reading a LUKS2 header copy"))?;
    if (buf.len() as u64) < len {
        return Err(Error::Truncated {
            structure,
            offset,
            needed: len,
            available: buf.len() as u64,
        });
    }
    Ok(buf)
}

struct Copy {
    bin: BinaryHeader,
    metadata: Metadata,
}

fn read_copy<R: Read + Seek>(
    r: &mut R,
    offset: u64,
    kind: HeaderKind,
    limits: Limits,
    checksum_ok: &mut bool,
) -> Result<Copy> {
    let structure = match kind {
        HeaderKind::Primary => "primary LUKS2 binary header",
        HeaderKind::Secondary => "secondary LUKS2 binary header",
    };
    let head = read_exact_at(r, offset, BINARY_HEADER_SIZE as u64, structure)?;
    let bin = BinaryHeader::parse(&head, offset)?;
    if bin.kind != kind {
        return Err(Error::Malformed {
            structure,
            field: "magic",
            offset,
            reason: "magic of the other header copy",
        });
    }
    if !ALLOWED_HDR_SIZES.contains(&bin.hdr_size) {
        return Err(Error::Malformed {
            structure,
            field: "hdr_size",
            offset: offset + 8,
            reason: "not one of the sizes LUKS2 allows (16 KiB .. 4 MiB, powers of two)",
        });
    }
    if bin.hdr_offset != offset {
        return Err(Error::Malformed {
            structure,
            field: "hdr_offset",
            offset: offset + 256,
            reason: "does not match where the header copy was found",
        });
    }
    if kind == HeaderKind::Secondary && bin.hdr_offset != bin.hdr_size {
        return Err(Error::Malformed {
            structure,
            field: "hdr_offset",
            offset: offset + 256,
            reason: "secondary header is not at hdr_size",
        });
    }
    let csum_alg = crate::raw::c_str(&bin.csum_alg);
    if csum_alg != "sha256" {
        return Err(Error::UnsupportedValue {
            field: "header checksum algorithm",
            value: csum_alg.chars().take(32).collect(),
        });
    }
    let area = read_exact_at(r, offset, bin.hdr_size, "LUKS2 header area")?;
    if !bin.checksum_matches(&area) {
        return Err(Error::Malformed {
            structure,
            field: "csum",
            offset: offset + 448,
            reason: "checksum does not match the header and JSON area",
        });
    }
    *checksum_ok = true;
    let json_offset = offset + BINARY_HEADER_SIZE as u64;
    let metadata = Metadata::parse(
        area.get(BINARY_HEADER_SIZE..).unwrap_or_default(),
        json_offset,
        bin.hdr_size,
        limits,
    )?;
    Ok(Copy { bin, metadata })
}

fn fixed<const N: usize>(s: &str, option: &'static str) -> Result<[u8; N]> {
    let mut out = [0u8; N];
    if s.len() >= N || s.as_bytes().contains(&0) {
        return Err(Error::InvalidOption {
            option,
            reason: "too long for its binary header field, or contains NUL",
        });
    }
    out[..s.len()].copy_from_slice(s.as_bytes());
    Ok(out)
}

impl Luks2Header {
    /// Reads and validates both header copies with default [`Limits`].
    pub fn read<R: Read + Seek>(r: &mut R) -> Result<Self> {
        Self::read_with_limits(r, Limits::default())
    }

    /// Reads both copies; uses the valid one with the highest seqid (the primary on a tie)
    /// and records in [`Luks2Header::copies`] what is wrong with the other.
    pub fn read_with_limits<R: Read + Seek>(r: &mut R, limits: Limits) -> Result<Self> {
        let mut sums = [false; 2];
        let primary = read_copy(r, 0, HeaderKind::Primary, limits, &mut sums[0]);
        let candidates: Vec<u64> = match &primary {
            Ok(p) => vec![p.bin.hdr_size],
            Err(_) => ALLOWED_HDR_SIZES.to_vec(),
        };
        let mut secondary = Err(Error::Unsupported {
            feature: "(no secondary copy probed)",
        });
        let mut secondary_offset = candidates.first().copied().unwrap_or(0x4000);
        for off in candidates {
            sums[1] = false;
            secondary = read_copy(r, off, HeaderKind::Secondary, limits, &mut sums[1]);
            if secondary.is_ok() {
                secondary_offset = off;
                break;
            }
        }
        let report = |c: &Result<Copy>, offset: u64, checksum_ok: bool| CopyReport {
            offset,
            seqid: c.as_ref().ok().map(|c| c.bin.seqid),
            checksum_ok,
            problem: c.as_ref().err().map(ToString::to_string),
        };
        let mut copies = [
            report(&primary, 0, sums[0]),
            report(&secondary, secondary_offset, sums[1]),
        ];
        let (chosen, other_salt) = match (primary, secondary) {
            (Ok(p), Ok(s)) => {
                if s.bin.hdr_size != p.bin.hdr_size {
                    copies[1].problem = Some("hdr_size differs from the primary copy".into());
                    let salt = s.bin.salt;
                    (p, Some(salt))
                } else if s.bin.seqid > p.bin.seqid {
                    copies[0].problem = Some("older seqid than the secondary copy".into());
                    let salt = p.bin.salt;
                    (s, Some(salt))
                } else {
                    if s.bin.seqid < p.bin.seqid {
                        copies[1].problem = Some("older seqid than the primary copy".into());
                    } else if s.metadata != p.metadata {
                        copies[1].problem =
                            Some("same seqid as the primary but different metadata".into());
                    }
                    let salt = s.bin.salt;
                    (p, Some(salt))
                }
            }
            (Ok(p), Err(_)) => (p, None),
            (Err(_), Ok(s)) => (s, None),
            (Err(e), Err(_)) => {
                return Err(Error::NoValidHeader {
                    primary: Box::new(e),
                });
            }
        };
        let own = chosen.bin.salt;
        let other = other_salt.unwrap_or(own);
        let salts = match chosen.bin.kind {
            HeaderKind::Primary => [own, other],
            HeaderKind::Secondary => [other, own],
        };
        Ok(Self {
            hdr_size: chosen.bin.hdr_size,
            seqid: chosen.bin.seqid,
            label: chosen.bin.label(),
            subsystem: chosen.bin.subsystem(),
            uuid: chosen.bin.uuid(),
            metadata: chosen.metadata,
            salts,
            copies,
            limits,
        })
    }

    /// Whether either copy was found damaged or outdated.
    pub fn is_damaged(&self) -> bool {
        self.copies.iter().any(|c| c.problem.is_some())
    }

    /// Refuses volumes whose `config.requirements.mandatory` lists anything: every flag
    /// cryptsetup defines marks a reencryption in progress, which this crate does not
    /// implement, and unknown flags must be refused by definition.
    pub fn check_requirements(&self) -> Result<()> {
        let flags = self.metadata.config.mandatory_requirements();
        match flags.first() {
            None => Ok(()),
            Some(f) if known_requirement(f) => Err(Error::Unsupported {
                feature: "LUKS2 reencryption in progress (requirements.mandatory)",
            }),
            Some(f) => Err(Error::UnsupportedValue {
                field: "requirements.mandatory flag",
                value: f.chars().take(32).collect(),
            }),
        }
    }

    /// Size of both header copies plus the keyslots area: where metadata ends.
    pub fn metadata_end(&self) -> u64 {
        self.hdr_size
            .saturating_mul(2)
            .saturating_add(self.metadata.config.keyslots_size)
    }

    /// The two encoded header copies (primary, secondary), checksummed.
    pub fn encode(&self) -> Result<[Vec<u8>; 2]> {
        if !ALLOWED_HDR_SIZES.contains(&self.hdr_size) {
            return Err(Error::InvalidOption {
                option: "hdr_size",
                reason: "must be 16 KiB .. 4 MiB, a power of two",
            });
        }
        let json = self
            .metadata
            .to_json_area(self.hdr_size - BINARY_HEADER_SIZE as u64)?;
        let label = fixed::<48>(&self.label, "label")?;
        let subsystem = fixed::<48>(&self.subsystem, "subsystem")?;
        let uuid = fixed::<40>(&self.uuid, "uuid")?;
        let mut csum_alg = [0u8; 32];
        csum_alg[..6].copy_from_slice(b"sha256");
        let mut out = [Vec::new(), Vec::new()];
        for (i, kind) in [HeaderKind::Primary, HeaderKind::Secondary]
            .into_iter()
            .enumerate()
        {
            let mut bin = BinaryHeader {
                kind,
                version: 2,
                hdr_size: self.hdr_size,
                seqid: self.seqid,
                label,
                csum_alg,
                salt: self.salts[i],
                uuid,
                subsystem,
                hdr_offset: if i == 0 { 0 } else { self.hdr_size },
                csum: [0; 64],
            };
            let mut area = Vec::with_capacity(json.len() + BINARY_HEADER_SIZE);
            area.extend_from_slice(&bin.to_bytes());
            area.extend_from_slice(&json);
            let sum = bin.compute_checksum(&area).ok_or(Error::InvalidOption {
                option: "header checksum",
                reason: "cannot compute",
            })?;
            bin.csum[..32].copy_from_slice(&sum);
            area[..BINARY_HEADER_SIZE].copy_from_slice(&bin.to_bytes());
            out[i] = area;
        }
        Ok(out)
    }

    /// Writes both copies as they are (secondary first, as cryptsetup does, so that a crash
    /// leaves at least one complete copy).
    pub fn write_to<W: Write + Seek>(&self, w: &mut W) -> Result<()> {
        let [primary, secondary] = self.encode()?;
        w.seek(SeekFrom::Start(self.hdr_size))
            .map_err(io("seeking to the secondary LUKS2 header"))?;
        w.write_all(&secondary)
            .map_err(io("writing the secondary LUKS2 header"))?;
        w.seek(SeekFrom::Start(0))
            .map_err(io("seeking to the primary LUKS2 header"))?;
        w.write_all(&primary)
            .map_err(io("writing the primary LUKS2 header"))?;
        w.flush().map_err(io("flushing the LUKS2 header"))?;
        Ok(())
    }

    /// Bumps seqid and rewrites both copies (what every metadata change does).
    pub fn commit<W: Write + Seek>(&mut self, w: &mut W) -> Result<()> {
        self.seqid = self.seqid.checked_add(1).ok_or(Error::LimitExceeded {
            what: "header seqid",
            limit: u64::MAX,
        })?;
        self.write_to(w)?;
        self.copies = [
            CopyReport {
                offset: 0,
                seqid: Some(self.seqid),
                checksum_ok: true,
                problem: None,
            },
            CopyReport {
                offset: self.hdr_size,
                seqid: Some(self.seqid),
                checksum_ok: true,
                problem: None,
            },
        ];
        Ok(())
    }
}
