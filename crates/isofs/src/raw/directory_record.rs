//! Directory records (ECMA-119 9.1) and path table records (9.4).

use crate::error::{Error, Result};
use crate::raw::field::{both_u16, both_u32, both_u32_bytes, slice, u8_at};

/// File flag: the entry is hidden ("existence" bit).
pub const FLAG_HIDDEN: u8 = 0x01;
/// File flag: the entry is a directory.
pub const FLAG_DIRECTORY: u8 = 0x02;
/// File flag: the record is not the final one of a multi-extent file.
pub const FLAG_MULTI_EXTENT: u8 = 0x80;
/// Bytes of a directory record before its file identifier.
pub const RECORD_HEADER_LEN: usize = 33;

/// One directory record (ECMA-119 9.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryRecord {
    /// Extended attribute record length in blocks (BP 2).
    pub extended_attribute_len: u8,
    /// Location of the extent, a logical block number (BP 3-10).
    pub extent: u32,
    /// Data length in bytes (BP 11-18).
    pub data_length: u32,
    /// Recording date and time, 7-byte form (BP 19-25).
    pub recorded: [u8; 7],
    /// File flags (BP 26).
    pub flags: u8,
    /// File unit size for interleaved files (BP 27).
    pub file_unit_size: u8,
    /// Interleave gap size (BP 28).
    pub interleave_gap: u8,
    /// Volume sequence number (BP 29-32).
    pub volume_sequence: u16,
    /// File identifier; `[0]` is ".", `[1]` is "..".
    pub identifier: Vec<u8>,
    /// System use area (SUSP / Rock Ridge entries).
    pub system_use: Vec<u8>,
}

impl DirectoryRecord {
    /// Parses the record at the start of `b`; `at` is its absolute byte offset. Returns the
    /// record and its length (the caller treats a length byte of 0 as "rest of the block is
    /// padding" before calling this).
    pub fn parse(b: &[u8], at: u64) -> Result<(Self, usize)> {
        const S: &str = "directory record";
        let len = usize::from(u8_at(b, 0, S, at)?);
        let id_len = usize::from(u8_at(b, 32, S, at)?);
        if len < RECORD_HEADER_LEN + id_len {
            return Err(Error::Malformed {
                structure: S,
                field: "length of directory record",
                offset: at,
                reason: "shorter than its header and file identifier",
            });
        }
        let rec = slice(b, 0, len, S, at)?;
        if id_len == 0 {
            return Err(Error::Malformed {
                structure: S,
                field: "length of file identifier",
                offset: at + 32,
                reason: "zero",
            });
        }
        let su_start = RECORD_HEADER_LEN + id_len + (1 - id_len % 2);
        let system_use = rec.get(su_start.min(len)..).unwrap_or_default().to_vec();
        let mut recorded = [0u8; 7];
        recorded.copy_from_slice(&rec[18..25]);
        Ok((
            Self {
                extended_attribute_len: rec[1],
                extent: both_u32(rec, 2, S, "location of extent", at)?,
                data_length: both_u32(rec, 10, S, "data length", at)?,
                recorded,
                flags: rec[25],
                file_unit_size: rec[26],
                interleave_gap: rec[27],
                volume_sequence: both_u16(rec, 28, S, "volume sequence number", at)?,
                identifier: rec[33..33 + id_len].to_vec(),
                system_use,
            },
            len,
        ))
    }

    /// Encoded length: header, identifier, padding to even, system use.
    pub fn encoded_len(&self) -> usize {
        Self::len_for(self.identifier.len(), self.system_use.len())
    }

    /// Encoded length of a record with these identifier and system-use lengths.
    pub fn len_for(id_len: usize, su_len: usize) -> usize {
        let base = RECORD_HEADER_LEN + id_len + (1 - id_len % 2);
        let total = base + su_len;
        total + total % 2
    }

    /// Appends the encoded record to `out`. The caller keeps the length within 255.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let len = self.encoded_len();
        let start = out.len();
        out.push(len as u8);
        out.push(self.extended_attribute_len);
        out.extend_from_slice(&both_u32_bytes(self.extent));
        out.extend_from_slice(&both_u32_bytes(self.data_length));
        out.extend_from_slice(&self.recorded);
        out.push(self.flags);
        out.push(self.file_unit_size);
        out.push(self.interleave_gap);
        out.extend_from_slice(&self.volume_sequence.to_le_bytes());
        out.extend_from_slice(&self.volume_sequence.to_be_bytes());
        out.push(self.identifier.len() as u8);
        out.extend_from_slice(&self.identifier);
        if self.identifier.len().is_multiple_of(2) {
            out.push(0);
        }
        out.extend_from_slice(&self.system_use);
        out.resize(start + len, 0);
    }
}

/// One path table record (ECMA-119 9.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTableRecord {
    /// Location of the directory's extent.
    pub extent: u32,
    /// 1-based number of the parent directory's record in the table.
    pub parent: u16,
    /// Directory identifier (`[0]` for the root).
    pub identifier: Vec<u8>,
}

impl PathTableRecord {
    /// Parses a record from the start of `b`; `big_endian` selects the type M table.
    pub fn parse(b: &[u8], big_endian: bool, at: u64) -> Result<(Self, usize)> {
        const S: &str = "path table record";
        let id_len = usize::from(u8_at(b, 0, S, at)?);
        if id_len == 0 {
            return Err(Error::Malformed {
                structure: S,
                field: "length of directory identifier",
                offset: at,
                reason: "zero",
            });
        }
        let len = 8 + id_len + id_len % 2;
        let r = slice(b, 0, 8 + id_len, S, at)?;
        let (extent, parent) = if big_endian {
            (
                u32::from_be_bytes([r[2], r[3], r[4], r[5]]),
                u16::from_be_bytes([r[6], r[7]]),
            )
        } else {
            (
                u32::from_le_bytes([r[2], r[3], r[4], r[5]]),
                u16::from_le_bytes([r[6], r[7]]),
            )
        };
        Ok((
            Self {
                extent,
                parent,
                identifier: r[8..8 + id_len].to_vec(),
            },
            len,
        ))
    }

    /// Encoded length including the padding byte.
    pub fn encoded_len(&self) -> usize {
        8 + self.identifier.len() + self.identifier.len() % 2
    }

    /// Appends the encoded record.
    pub fn write_to(&self, out: &mut Vec<u8>, big_endian: bool) {
        out.push(self.identifier.len() as u8);
        out.push(0);
        if big_endian {
            out.extend_from_slice(&self.extent.to_be_bytes());
            out.extend_from_slice(&self.parent.to_be_bytes());
        } else {
            out.extend_from_slice(&self.extent.to_le_bytes());
            out.extend_from_slice(&self.parent.to_le_bytes());
        }
        out.extend_from_slice(&self.identifier);
        if self.identifier.len() % 2 == 1 {
            out.push(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trip_and_prefixes() {
        let rec = DirectoryRecord {
            extended_attribute_len: 0,
            extent: 42,
            data_length: 1234,
            recorded: [123, 11, 14, 22, 13, 20, 0],
            flags: FLAG_MULTI_EXTENT,
            file_unit_size: 0,
            interleave_gap: 0,
            volume_sequence: 1,
            identifier: b"HELLO.TXT;1".to_vec(),
            system_use: b"NM\x08\x01\x00abc".to_vec(),
        };
        let mut out = Vec::new();
        rec.write_to(&mut out);
        assert_eq!(out.len(), rec.encoded_len());
        assert_eq!(out.len() % 2, 0);
        let (back, len) = DirectoryRecord::parse(&out, 100).unwrap();
        assert_eq!(len, out.len());
        assert_eq!(back.identifier, rec.identifier);
        assert_eq!(&back.system_use[..8], &rec.system_use[..]);
        for n in 0..out.len() {
            assert!(DirectoryRecord::parse(&out[..n], 100).is_err(), "{n}");
        }
        let mut bad = out.clone();
        bad[5] ^= 1;
        let e = DirectoryRecord::parse(&bad, 100).unwrap_err().to_string();
        assert!(e.contains("location of extent") && e.contains("102"), "{e}");

        let pt = PathTableRecord {
            extent: 99,
            parent: 1,
            identifier: b"DIR".to_vec(),
        };
        for be in [false, true] {
            let mut out = Vec::new();
            pt.write_to(&mut out, be);
            assert_eq!(out.len(), pt.encoded_len());
            assert_eq!(
                PathTableRecord::parse(&out, be, 0).unwrap(),
                (pt.clone(), 12)
            );
            for n in 0..out.len() - 1 {
                assert!(PathTableRecord::parse(&out[..n], be, 0).is_err());
            }
        }
    }
}
