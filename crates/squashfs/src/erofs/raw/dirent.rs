//! EROFS directory blocks (`struct erofs_dirent`): 12-byte entries (`nid` u64, `nameoff`
//! u16, `file_type` u8, one reserved byte) at the start of each block, the first `nameoff`
//! also giving their count, then the names, sorted, the last one NUL-padded to the block end.

use super::malformed;
use crate::error::Result;
use imgpipe_fstree::le::{le_u16, le_u64};

/// One directory entry header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dirent {
    /// Node number of the entry's inode.
    pub nid: u64,
    /// Offset of the name within the directory block.
    pub nameoff: u16,
    /// `EROFS_FT_*` file type.
    pub file_type: u8,
}

impl Dirent {
    /// Encoded size.
    pub const SIZE: usize = 12;

    /// Parses the dirent at the start of `b` (the caller has checked 12 bytes).
    fn parse(b: &[u8]) -> Self {
        Self {
            nid: le_u64(b, 0),
            nameoff: le_u16(b, 8),
            file_type: b[10],
        }
    }

    /// Encodes the dirent.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        b[..8].copy_from_slice(&self.nid.to_le_bytes());
        b[8..10].copy_from_slice(&self.nameoff.to_le_bytes());
        b[10] = self.file_type;
        b
    }
}

/// Parses one directory block (read at absolute offset `at`) into `out` as (name, nid),
/// leaving out `.` and `..`.
pub fn parse_dir_block(b: &[u8], at: u64, out: &mut Vec<(Vec<u8>, u64)>) -> Result<()> {
    if b.len() < Dirent::SIZE {
        return Err(malformed(
            "EROFS directory block",
            "dirents",
            at,
            "shorter than one dirent",
        ));
    }
    let first = usize::from(le_u16(b, 8));
    if first < Dirent::SIZE || first % Dirent::SIZE != 0 || first > b.len() {
        return Err(malformed(
            "EROFS directory block",
            "nameoff",
            at,
            "first name offset is not a dirent boundary inside the block",
        ));
    }
    let count = first / Dirent::SIZE;
    for k in 0..count {
        let d = Dirent::parse(&b[k * Dirent::SIZE..]);
        let start = usize::from(d.nameoff);
        let end = if k + 1 < count {
            usize::from(le_u16(b, (k + 1) * Dirent::SIZE + 8))
        } else {
            b.len()
        };
        if start < first || start > end || end > b.len() {
            return Err(malformed(
                "EROFS directory block",
                "nameoff",
                at + (k * Dirent::SIZE) as u64 + 8,
                "names out of order or outside the block",
            ));
        }
        let mut name = &b[start..end];
        if k + 1 == count
            && let Some(z) = name.iter().position(|&c| c == 0)
        {
            name = &name[..z];
        }
        if name.is_empty() || name.len() > 255 || name.contains(&b'/') || name.contains(&0) {
            return Err(malformed(
                "EROFS directory block",
                "name",
                at + start as u64,
                "empty, over 255 bytes, or has `/` or NUL",
            ));
        }
        if name == b"." || name == b".." {
            continue;
        }
        out.push((name.to_vec(), d.nid));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_round_trip_and_prefixes() {
        let names: [&[u8]; 3] = [b".", b"..", b"hello"];
        let mut b = Vec::new();
        let mut off = (names.len() * Dirent::SIZE) as u16;
        for (k, n) in names.iter().enumerate() {
            let d = Dirent {
                nid: 40 + k as u64,
                nameoff: off,
                file_type: 2,
            };
            b.extend_from_slice(&d.to_bytes());
            off += n.len() as u16;
        }
        for n in names {
            b.extend_from_slice(n);
        }
        b.resize(64, 0);
        let mut out = Vec::new();
        parse_dir_block(&b, 0, &mut out).unwrap();
        assert_eq!(out, [(b"hello".to_vec(), 42)]);
        for n in 0..(names.len() * Dirent::SIZE) {
            let mut out = Vec::new();
            assert!(parse_dir_block(&b[..n], 0, &mut out).is_err(), "{n}");
        }
    }
}
