//! System Use Sharing Protocol entries (SUSP 1.12) and the Rock Ridge entries carried in them
//! (RRIP 1.12): PX, PN, SL, NM, TF, RE, CL, PL, ZF, and the SUSP CE, SP, ER, ST.

use crate::error::{Error, Result};
use crate::raw::field::{both_u32, both_u32_bytes, dir_date, parse_dec_date, parse_dir_date};

/// One SUSP entry: signature, version and data (the 4-byte header excluded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SuspEntry<'a> {
    /// Two-character signature.
    pub signature: [u8; 2],
    /// Entry version.
    pub version: u8,
    /// Entry data after the header.
    pub data: &'a [u8],
    /// Absolute byte offset of the entry.
    pub offset: u64,
}

/// Splits a system use area into entries. Stops at `ST`, at padding (a length below 4 or a
/// zero signature) or at the end; an entry overrunning the area is an error.
pub fn parse_entries(area: &[u8], at: u64) -> Result<Vec<SuspEntry<'_>>> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while area.len().saturating_sub(pos) >= 4 {
        let h = &area[pos..pos + 4];
        let len = usize::from(h[2]);
        if h[0] == 0 || len < 4 {
            break;
        }
        let Some(data) = area.get(pos + 4..pos + len) else {
            return Err(Error::Malformed {
                structure: "SUSP entry",
                field: "length",
                offset: at + pos as u64 + 2,
                reason: "runs past the end of the system use area",
            });
        };
        let signature = [h[0], h[1]];
        if &signature == b"ST" {
            break;
        }
        out.push(SuspEntry {
            signature,
            version: h[3],
            data,
            offset: at + pos as u64,
        });
        pos += len;
    }
    Ok(out)
}

/// Appends one entry with `data` to `out` (the caller keeps `data` within 251 bytes).
pub fn push_entry(out: &mut Vec<u8>, signature: &[u8; 2], data: &[u8]) {
    out.extend_from_slice(signature);
    out.push((data.len() + 4) as u8);
    out.push(1);
    out.extend_from_slice(data);
}

/// A continuation area pointer (SUSP CE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContinuationArea {
    /// Block of the continuation area.
    pub block: u32,
    /// Byte offset inside the block.
    pub offset: u32,
    /// Length in bytes.
    pub length: u32,
}

/// Encoded length of a CE entry.
pub const CE_LEN: usize = 28;

impl ContinuationArea {
    /// Parses the data of a CE entry.
    pub fn parse(e: &SuspEntry<'_>) -> Result<Self> {
        const S: &str = "SUSP CE entry";
        Ok(Self {
            block: both_u32(e.data, 0, S, "block location", e.offset + 4)?,
            offset: both_u32(e.data, 8, S, "offset", e.offset + 4)?,
            length: both_u32(e.data, 16, S, "length", e.offset + 4)?,
        })
    }

    /// Appends the CE entry.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let mut d = Vec::with_capacity(24);
        d.extend_from_slice(&both_u32_bytes(self.block));
        d.extend_from_slice(&both_u32_bytes(self.offset));
        d.extend_from_slice(&both_u32_bytes(self.length));
        push_entry(out, b"CE", &d);
    }
}

/// File mode bits of PX, as in POSIX `st_mode`.
pub mod mode {
    /// Type mask.
    pub const S_IFMT: u32 = 0o170000;
    /// Socket.
    pub const S_IFSOCK: u32 = 0o140000;
    /// Symbolic link.
    pub const S_IFLNK: u32 = 0o120000;
    /// Regular file.
    pub const S_IFREG: u32 = 0o100000;
    /// Block device.
    pub const S_IFBLK: u32 = 0o060000;
    /// Directory.
    pub const S_IFDIR: u32 = 0o040000;
    /// Character device.
    pub const S_IFCHR: u32 = 0o020000;
    /// FIFO.
    pub const S_IFIFO: u32 = 0o010000;
}

/// POSIX attributes (RRIP PX).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PosixAttributes {
    /// `st_mode` with type bits.
    pub mode: u32,
    /// Link count.
    pub nlink: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// File serial number (RRIP 1.12 only).
    pub ino: Option<u32>,
}

/// zisofs compression parameters (ZF), reported but not decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZisofsParams {
    /// Algorithm, e.g. `pz`.
    pub algorithm: [u8; 2],
    /// Header size in 4-byte words.
    pub header_size: u8,
    /// log2 of the block size.
    pub block_size_log2: u8,
    /// Uncompressed size.
    pub uncompressed_size: u32,
}

/// Timestamps of TF, Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timestamps {
    /// Creation.
    pub creation: Option<i64>,
    /// Modification.
    pub modify: Option<i64>,
    /// Access.
    pub access: Option<i64>,
    /// Attribute change.
    pub attributes: Option<i64>,
}

/// Everything Rock Ridge says about one directory record, gathered over the record's system
/// use area and its continuation areas.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RockRidge {
    /// Whether any Rock Ridge entry was seen.
    pub present: bool,
    /// PX.
    pub px: Option<PosixAttributes>,
    /// PN as (high, low) words.
    pub pn: Option<(u32, u32)>,
    /// Alternate name (NM), concatenated over continuation entries.
    pub name: Option<Vec<u8>>,
    /// NM flags of the first entry (CURRENT 2, PARENT 4).
    pub name_flags: u8,
    /// Symbolic link target (SL), assembled from its components.
    pub symlink: Option<Vec<u8>>,
    /// TF.
    pub times: Timestamps,
    /// RE: this directory was relocated; its record in the parent is to be hidden.
    pub relocated: bool,
    /// CL: this placeholder stands for the directory at this block.
    pub child_link: Option<u32>,
    /// PL: the real parent of a relocated directory.
    pub parent_link: Option<u32>,
    /// ZF.
    pub zisofs: Option<ZisofsParams>,
    /// SP: bytes to skip at the start of every system use area.
    pub sp_skip: Option<u8>,
    /// ER extension identifiers.
    pub extensions: Vec<Vec<u8>>,
    symlink_open_component: bool,
    symlink_done: bool,
    name_done: bool,
}

impl RockRidge {
    /// Folds the entries of one area in. Returns the continuation area, if one is announced.
    pub fn absorb(&mut self, entries: &[SuspEntry<'_>]) -> Result<Option<ContinuationArea>> {
        let mut ce = None;
        for e in entries {
            let d = e.data;
            let at = e.offset + 4;
            match &e.signature {
                b"CE" => ce = Some(ContinuationArea::parse(e)?),
                b"SP" if d.len() >= 3 && d[..2] == [0xBE, 0xEF] => {
                    self.sp_skip = Some(d[2]);
                }
                b"ER" if d.len() >= 4 => {
                    let n = usize::from(d[0]);
                    if let Some(id) = d.get(4..4 + n) {
                        self.extensions.push(id.to_vec());
                    }
                }
                b"PX" => {
                    const S: &str = "Rock Ridge PX entry";
                    self.present = true;
                    self.px = Some(PosixAttributes {
                        mode: both_u32(d, 0, S, "file mode", at)?,
                        nlink: both_u32(d, 8, S, "links", at)?,
                        uid: both_u32(d, 16, S, "user id", at)?,
                        gid: both_u32(d, 24, S, "group id", at)?,
                        ino: if d.len() >= 40 {
                            Some(both_u32(d, 32, S, "serial number", at)?)
                        } else {
                            None
                        },
                    });
                }
                b"PN" => {
                    const S: &str = "Rock Ridge PN entry";
                    self.present = true;
                    self.pn = Some((
                        both_u32(d, 0, S, "device number high", at)?,
                        both_u32(d, 8, S, "device number low", at)?,
                    ));
                }
                b"NM" => {
                    self.present = true;
                    let Some((&flags, rest)) = d.split_first() else {
                        continue;
                    };
                    if self.name_done {
                        continue;
                    }
                    if self.name.is_none() {
                        self.name_flags = flags;
                    }
                    let name = self.name.get_or_insert_with(Vec::new);
                    if name.len() + rest.len() > 1024 {
                        return Err(Error::LimitExceeded {
                            what: "Rock Ridge NM name length",
                            limit: 1024,
                            offset: e.offset,
                        });
                    }
                    name.extend_from_slice(rest);
                    if flags & 1 == 0 {
                        self.name_done = true;
                    }
                }
                b"SL" => {
                    self.present = true;
                    self.absorb_sl(d, at)?;
                }
                b"TF" => {
                    self.present = true;
                    self.absorb_tf(d, at)?;
                }
                b"RE" => {
                    self.present = true;
                    self.relocated = true;
                }
                b"CL" => {
                    self.present = true;
                    self.child_link = Some(both_u32(d, 0, "Rock Ridge CL entry", "location", at)?);
                }
                b"PL" => {
                    self.present = true;
                    self.parent_link = Some(both_u32(d, 0, "Rock Ridge PL entry", "location", at)?);
                }
                b"ZF" if d.len() >= 12 => {
                    self.zisofs = Some(ZisofsParams {
                        algorithm: [d[0], d[1]],
                        header_size: d[2],
                        block_size_log2: d[3],
                        uncompressed_size: both_u32(d, 4, "ZF entry", "size", at)?,
                    });
                }
                b"RR" => self.present = true,
                _ => {}
            }
        }
        Ok(ce)
    }

    fn absorb_sl(&mut self, d: &[u8], at: u64) -> Result<()> {
        let Some((&flags, mut rest)) = d.split_first() else {
            return Ok(());
        };
        if self.symlink_done {
            return Ok(());
        }
        let target = self.symlink.get_or_insert_with(Vec::new);
        let mut pos = at + 1;
        while !rest.is_empty() {
            let (cflags, len) = match rest {
                [f, l, ..] => (*f, usize::from(*l)),
                _ => {
                    return Err(Error::Malformed {
                        structure: "Rock Ridge SL entry",
                        field: "component record",
                        offset: pos,
                        reason: "truncated component header",
                    });
                }
            };
            let Some(content) = rest.get(2..2 + len) else {
                return Err(Error::Malformed {
                    structure: "Rock Ridge SL entry",
                    field: "component length",
                    offset: pos + 1,
                    reason: "runs past the entry",
                });
            };
            if !self.symlink_open_component && !target.is_empty() && target != b"/" {
                target.push(b'/');
            }
            if cflags & 0x02 != 0 {
                target.extend_from_slice(b".");
            } else if cflags & 0x04 != 0 {
                target.extend_from_slice(b"..");
            } else if cflags & 0x08 != 0 {
                target.clear();
                target.push(b'/');
            } else {
                target.extend_from_slice(content);
            }
            if target.len() > 65_536 {
                return Err(Error::LimitExceeded {
                    what: "Rock Ridge SL target length",
                    limit: 65_536,
                    offset: pos,
                });
            }
            self.symlink_open_component = cflags & 0x01 != 0;
            rest = &rest[2 + len..];
            pos += 2 + len as u64;
        }
        if flags & 1 == 0 {
            self.symlink_done = true;
        }
        Ok(())
    }

    fn absorb_tf(&mut self, d: &[u8], at: u64) -> Result<()> {
        let Some((&flags, mut rest)) = d.split_first() else {
            return Ok(());
        };
        let size = if flags & 0x80 != 0 { 17 } else { 7 };
        for bit in 0..7 {
            if flags & (1 << bit) == 0 {
                continue;
            }
            let Some(stamp) = rest.get(..size) else {
                return Err(Error::Malformed {
                    structure: "Rock Ridge TF entry",
                    field: "time stamps",
                    offset: at,
                    reason: "fewer stamps than flagged",
                });
            };
            let t = if size == 17 {
                parse_dec_date(stamp)
            } else {
                parse_dir_date(stamp)
            };
            match bit {
                0 => self.times.creation = t,
                1 => self.times.modify = t,
                2 => self.times.access = t,
                3 => self.times.attributes = t,
                _ => {}
            }
            rest = &rest[size..];
        }
        Ok(())
    }
}

/// Decodes a PN device number to (major, minor). xorriso stores the whole `dev_t` in the low
/// word (high word 0); genisoimage stores major in the high and minor in the low word.
pub fn decode_device(high: u32, low: u32) -> (u32, u32) {
    if high == 0 {
        let dev = u64::from(low);
        let major = ((dev >> 8) & 0xfff) as u32;
        let minor = ((dev & 0xff) | ((dev >> 12) & 0xfff00)) as u32;
        (major, minor)
    } else {
        (high, low)
    }
}

/// Encodes (major, minor) the way xorriso does: high word 0, the Linux `dev_t` in the low
/// word (what the Linux kernel and libarchive both decode).
pub fn encode_device(major: u32, minor: u32) -> (u32, u32) {
    let dev = (u64::from(major & 0xfff) << 8)
        | u64::from(minor & 0xff)
        | (u64::from(minor & !0xff) << 12);
    let high = (u64::from(major & !0xfff) << 32) | dev;
    ((high >> 32) as u32, dev as u32)
}

/// PX entry data (RRIP 1.12, 44-byte entry with serial number).
pub fn px(a: &PosixAttributes) -> Vec<u8> {
    let mut d = Vec::with_capacity(40);
    for v in [a.mode, a.nlink, a.uid, a.gid, a.ino.unwrap_or(0)] {
        d.extend_from_slice(&both_u32_bytes(v));
    }
    d
}

/// PN entry data.
pub fn pn(high: u32, low: u32) -> Vec<u8> {
    let mut d = Vec::with_capacity(16);
    d.extend_from_slice(&both_u32_bytes(high));
    d.extend_from_slice(&both_u32_bytes(low));
    d
}

/// TF entry data with modify, access and attribute-change times, short form.
pub fn tf(mtime: i64, atime: i64, ctime: i64) -> Vec<u8> {
    let mut d = vec![0x02 | 0x04 | 0x08];
    for t in [mtime, atime, ctime] {
        d.extend_from_slice(&dir_date(t));
    }
    d
}

/// NM entries for `name`, split so no entry exceeds 255 bytes.
pub fn nm_entries(name: &[u8]) -> Vec<Vec<u8>> {
    let chunks: Vec<&[u8]> = name.chunks(250).collect();
    let n = chunks.len();
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let mut d = vec![u8::from(i + 1 < n)];
            d.extend_from_slice(c);
            let mut e = Vec::new();
            push_entry(&mut e, b"NM", &d);
            e
        })
        .collect()
}

/// SL entries for a link `target`, split into components and entries of at most 255 bytes.
pub fn sl_entries(target: &[u8]) -> Vec<Vec<u8>> {
    // Component records: (flags, content).
    let mut comps: Vec<(u8, &[u8])> = Vec::new();
    let mut rest = target;
    if let Some(r) = rest.strip_prefix(b"/") {
        comps.push((0x08, &[]));
        rest = r;
    }
    if !rest.is_empty() {
        for part in rest.split(|&c| c == b'/') {
            match part {
                b"." => comps.push((0x02, &[])),
                b".." => comps.push((0x04, &[])),
                _ => {
                    let pieces: Vec<&[u8]> = if part.is_empty() {
                        vec![part]
                    } else {
                        part.chunks(200).collect()
                    };
                    let n = pieces.len();
                    for (i, p) in pieces.into_iter().enumerate() {
                        comps.push((u8::from(i + 1 < n), p));
                    }
                }
            }
        }
    }
    let mut entries: Vec<Vec<u8>> = Vec::new();
    let mut data: Vec<u8> = vec![0];
    for (flags, content) in comps {
        if data.len() + 2 + content.len() > 250 {
            entries.push(std::mem::replace(&mut data, vec![0]));
        }
        data.push(flags);
        data.push(content.len() as u8);
        data.extend_from_slice(content);
    }
    entries.push(data);
    let n = entries.len();
    entries
        .into_iter()
        .enumerate()
        .map(|(i, mut d)| {
            d[0] = u8::from(i + 1 < n);
            let mut e = Vec::new();
            push_entry(&mut e, b"SL", &d);
            e
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn absorb_all(entries: &[Vec<u8>]) -> RockRidge {
        let area: Vec<u8> = entries.concat();
        let mut rr = RockRidge::default();
        rr.absorb(&parse_entries(&area, 0).unwrap()).unwrap();
        rr
    }

    #[test]
    fn symlinks_round_trip() {
        let long = format!("/a/{}/../b/./c", "x".repeat(600));
        for t in [
            "bin/tool",
            "/etc/hostname",
            "../README",
            "does/not/exist",
            "/",
            long.as_str(),
        ] {
            let rr = absorb_all(&sl_entries(t.as_bytes()));
            assert_eq!(rr.symlink.as_deref(), Some(t.as_bytes()), "{t}");
        }
    }

    #[test]
    fn names_and_devices() {
        let name = "n".repeat(600);
        let rr = absorb_all(&nm_entries(name.as_bytes()));
        assert_eq!(rr.name.as_deref(), Some(name.as_bytes()));
        for (maj, min) in [(1, 3), (7, 0), (259, 70000), (8, 17)] {
            let (h, l) = encode_device(maj, min);
            assert_eq!(decode_device(h, l), (maj, min));
        }
        // genisoimage form
        assert_eq!(decode_device(1, 3), (1, 3));
        // xorriso form for 1:3
        assert_eq!(encode_device(1, 3), (0, 0x103));
    }

    #[test]
    fn truncated_areas_fail_cleanly() {
        let mut area = Vec::new();
        push_entry(
            &mut area,
            b"PX",
            &px(&PosixAttributes {
                mode: 0o100644,
                nlink: 1,
                uid: 0,
                gid: 0,
                ino: Some(5),
            }),
        );
        push_entry(&mut area, b"TF", &tf(1, 2, 3));
        for n in 0..area.len() {
            if let Ok(es) = parse_entries(&area[..n], 0) {
                let _ = RockRidge::default().absorb(&es);
            }
        }
    }
}
