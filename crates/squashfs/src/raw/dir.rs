//! Directory listings (the directory table) and directory indexes.
//!
//! A listing is a run of headers, each followed by `count + 1` (at most 256) entries that
//! share one inode metadata block and an inode number base. Names are sorted bytewise; the
//! kernel's lookup relies on that. An extended directory inode carries an index: for each
//! metadata block boundary the listing crosses, the listing offset and block of the first
//! header in the new block and that header's first name, so lookups skip whole blocks.

use super::inode::InodeKind;
use super::{Input, SliceInput};
use crate::error::{Error, Result};

/// Longest name squashfs allows.
pub const MAX_NAME: usize = 256;

/// A directory header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirHeader {
    /// Entries following, minus one (0..=255).
    pub count: u32,
    /// Inode metadata block of all entries, relative to the inode table.
    pub start: u32,
    /// Inode number base; entries store a signed 16-bit delta.
    pub inode_number: u32,
}

impl DirHeader {
    /// Encoded size.
    pub const SIZE: usize = 12;

    /// Appends the encoded header.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.count.to_le_bytes());
        out.extend_from_slice(&self.start.to_le_bytes());
        out.extend_from_slice(&self.inode_number.to_le_bytes());
    }
}

/// One directory entry, resolved against its header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The name (no `/`, not `.` or `..`, 1..=256 bytes).
    pub name: Vec<u8>,
    /// Inode metadata block, relative to the inode table.
    pub start: u32,
    /// Offset of the inode in that block.
    pub offset: u16,
    /// Inode number.
    pub inode_number: u32,
    /// Kind as the entry states it (the inode decides).
    pub kind: InodeKind,
}

impl DirEntry {
    /// Encoded size (without header).
    pub fn encoded_len(&self) -> usize {
        8 + self.name.len()
    }

    /// The inode reference: block start << 16 | offset.
    pub fn inode_ref(&self) -> u64 {
        (u64::from(self.start) << 16) | u64::from(self.offset)
    }

    /// Appends the entry relative to `base` (the header's inode number).
    pub fn write_to(&self, base: u32, out: &mut Vec<u8>) -> Result<()> {
        let delta = i64::from(self.inode_number) - i64::from(base);
        let delta = i16::try_from(delta).map_err(|_| Error::InvalidOption {
            option: "directory entry",
            reason: "inode number too far from its header's base",
        })?;
        let n = self.name.len();
        if n == 0 || n > MAX_NAME {
            return Err(Error::InvalidOption {
                option: "directory entry",
                reason: "name length not in 1..=256",
            });
        }
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&delta.to_le_bytes());
        out.extend_from_slice(&self.kind.basic_type().to_le_bytes());
        out.extend_from_slice(&((n - 1) as u16).to_le_bytes());
        out.extend_from_slice(&self.name);
        Ok(())
    }
}

fn bad(field: &'static str, offset: u64, reason: &'static str) -> Error {
    Error::Malformed {
        structure: "directory listing",
        field,
        offset,
        reason,
    }
}

/// Whether `name` is acceptable as one path component.
pub(crate) fn valid_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name != b"."
        && name != b".."
        && !name.contains(&b'/')
        && !name.contains(&0)
}

/// Reads a listing of `size` bytes (the inode's `file_size - 3`). Names are validated and
/// must be strictly ascending (which also rules out duplicates).
pub(crate) fn read_listing(input: &mut impl Input, size: u64) -> Result<Vec<DirEntry>> {
    const S: &str = "directory listing";
    let mut left = size;
    let mut out: Vec<DirEntry> = Vec::new();
    while left > 0 {
        let at = input.offset();
        if left < DirHeader::SIZE as u64 {
            return Err(bad("header", at, "listing ends inside a header"));
        }
        let count = input.u32(S)?;
        let start = input.u32(S)?;
        let base = input.u32(S)?;
        left -= DirHeader::SIZE as u64;
        if count > 255 {
            return Err(bad("count", at, "more than 256 entries under one header"));
        }
        for _ in 0..=count {
            let at = input.offset();
            if left < 8 {
                return Err(bad("entry", at, "listing ends inside an entry"));
            }
            let offset = input.u16(S)?;
            let delta = input.u16(S)? as i16;
            let t = input.u16(S)?;
            let n = usize::from(input.u16(S)?) + 1;
            left -= 8;
            if n > MAX_NAME || n as u64 > left {
                return Err(bad(
                    "name_size",
                    at,
                    "name longer than 256 or than the listing",
                ));
            }
            let name = input.bytes(n, S)?;
            left -= n as u64;
            let kind = match InodeKind::from_type(t) {
                Some((k, false)) => k,
                _ => return Err(bad("type", at, "not a basic inode type")),
            };
            let inode_number = u32::try_from(i64::from(base) + i64::from(delta))
                .ok()
                .filter(|&n| n != 0)
                .ok_or_else(|| bad("inode_number", at, "delta leaves 1..=u32::MAX"))?;
            if !valid_name(&name) {
                return Err(bad("name", at, "empty, `.`, `..`, or contains `/` or NUL"));
            }
            if out.last().is_some_and(|p| p.name >= name) {
                return Err(bad("name", at, "names not strictly ascending"));
            }
            out.push(DirEntry {
                name,
                start,
                offset,
                inode_number,
                kind,
            });
        }
    }
    Ok(out)
}

/// Parses a listing held in `bytes` (absolute offset `at`): what the fuzz target drives.
pub fn parse_directory(bytes: &[u8], at: u64) -> Result<Vec<DirEntry>> {
    read_listing(&mut SliceInput::new(bytes, at), bytes.len() as u64)
}

/// One directory index entry (in an extended directory inode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirIndex {
    /// Offset in the listing of the header this entry points at.
    pub index: u32,
    /// Metadata block holding that header, relative to the directory table.
    pub start: u32,
    /// First name under that header.
    pub name: Vec<u8>,
}

impl DirIndex {
    pub(crate) fn read(input: &mut impl Input) -> Result<Self> {
        const S: &str = "directory index";
        let at = input.offset();
        let index = input.u32(S)?;
        let start = input.u32(S)?;
        let size = input.u32(S)?;
        if size as usize >= MAX_NAME {
            return Err(Error::Malformed {
                structure: S,
                field: "size",
                offset: at,
                reason: "name longer than 256",
            });
        }
        let name = input.bytes(size as usize + 1, S)?;
        Ok(Self { index, start, name })
    }

    /// Appends the encoded index entry.
    pub fn write_to(&self, out: &mut Vec<u8>) -> Result<()> {
        let n = self.name.len();
        if n == 0 || n > MAX_NAME {
            return Err(Error::InvalidOption {
                option: "directory index",
                reason: "name length not in 1..=256",
            });
        }
        out.extend_from_slice(&self.index.to_le_bytes());
        out.extend_from_slice(&self.start.to_le_bytes());
        out.extend_from_slice(&((n - 1) as u32).to_le_bytes());
        out.extend_from_slice(&self.name);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, n: u32) -> DirEntry {
        DirEntry {
            name: name.as_bytes().to_vec(),
            start: 0,
            offset: 32 * n as u16,
            inode_number: n,
            kind: InodeKind::File,
        }
    }

    fn listing(entries: &[DirEntry]) -> Vec<u8> {
        let mut b = Vec::new();
        DirHeader {
            count: entries.len() as u32 - 1,
            start: 0,
            inode_number: entries[0].inode_number,
        }
        .write_to(&mut b);
        for e in entries {
            e.write_to(entries[0].inode_number, &mut b).unwrap();
        }
        b
    }

    #[test]
    fn round_trip_and_truncations() {
        let es = vec![entry("a", 5), entry("b", 3), entry("c", 9)];
        let b = listing(&es);
        assert_eq!(parse_directory(&b, 0).unwrap(), es);
        for n in 1..b.len() {
            assert!(parse_directory(&b[..n], 0).is_err(), "{n}");
        }
    }

    #[test]
    fn hostile_names_and_order_are_refused() {
        for names in [
            ["a", ".."],
            ["a", "."],
            ["a", "b/c"],
            ["b", "a"],
            ["a", "a"],
        ] {
            let b = listing(&[entry(names[0], 1), entry(names[1], 2)]);
            assert!(parse_directory(&b, 0).is_err(), "{names:?}");
        }
    }
}
