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

/// `EROFS_FT_*` of a file type, as dirents store it.
pub fn dirent_file_type(t: imgpipe_fstree::FileType) -> u8 {
    use imgpipe_fstree::FileType;
    match t {
        FileType::File => 1,
        FileType::Dir => 2,
        FileType::Char => 3,
        FileType::Block => 4,
        FileType::Fifo => 5,
        FileType::Socket => 6,
        FileType::Symlink => 7,
    }
}

/// How sorted directory entries with names of `name_lens` bytes fill blocks of `blksz`
/// bytes, as mkfs.erofs fills them: each block takes entries while their dirents and names
/// fit. Returns per block the range of entries and the bytes used.
pub fn dir_block_ranges(name_lens: &[usize], blksz: usize) -> Vec<(std::ops::Range<usize>, usize)> {
    let mut out = Vec::new();
    let (mut start, mut used) = (0, 0);
    for (k, len) in name_lens.iter().enumerate() {
        let need = Dirent::SIZE + len;
        if used + need > blksz && k > start {
            out.push((start..k, used));
            (start, used) = (k, 0);
        }
        used += need;
    }
    if name_lens.len() > start {
        out.push((start..name_lens.len(), used));
    }
    out
}

/// The directory size (`i_size`) of sorted entries with names of `name_lens` bytes: full
/// blocks, then the bytes the last block uses.
pub fn dir_size(name_lens: &[usize], blksz: usize) -> u64 {
    let blocks = dir_block_ranges(name_lens, blksz);
    match blocks.split_last() {
        Some(((_, used), before)) => (before.len() * blksz + used) as u64,
        None => 0,
    }
}

/// Encodes a directory of sorted entries (name, nid, `EROFS_FT_*`) `.` and `..` included:
/// [`dir_size`] bytes, every block but the last NUL-padded to `blksz`. Names must be 1 to
/// 255 bytes (the caller checks).
pub fn encode_dir(entries: &[(&[u8], u64, u8)], blksz: usize) -> Vec<u8> {
    let lens: Vec<usize> = entries.iter().map(|e| e.0.len()).collect();
    let blocks = dir_block_ranges(&lens, blksz);
    let mut out = Vec::with_capacity(dir_size(&lens, blksz) as usize);
    let last = blocks.len().saturating_sub(1);
    for (b, (range, used)) in blocks.into_iter().enumerate() {
        let here = entries.get(range).unwrap_or_default();
        let start = out.len();
        let mut nameoff = here.len() * Dirent::SIZE;
        for (name, nid, file_type) in here {
            let d = Dirent {
                nid: *nid,
                nameoff: nameoff as u16,
                file_type: *file_type,
            };
            out.extend_from_slice(&d.to_bytes());
            nameoff += name.len();
        }
        for (name, _, _) in here {
            out.extend_from_slice(name);
        }
        debug_assert_eq!(out.len() - start, used);
        if b != last {
            out.resize(start + blksz, 0);
        }
    }
    out
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
        let entries: Vec<(&[u8], u64, u8)> = names
            .iter()
            .enumerate()
            .map(|(k, n)| (*n, 40 + k as u64, 2))
            .collect();
        let enc = encode_dir(&entries, 64);
        assert_eq!(enc.len() as u64, dir_size(&[1, 2, 5], 64));
        assert_eq!(enc, b[..enc.len()]);
        for n in 0..(names.len() * Dirent::SIZE) {
            let mut out = Vec::new();
            assert!(parse_dir_block(&b[..n], 0, &mut out).is_err(), "{n}");
        }
    }

    #[test]
    fn directories_span_blocks_and_read_back() {
        let names: Vec<Vec<u8>> = (0..600)
            .map(|k| format!("entry-{k:04}").into_bytes())
            .collect();
        let mut all: Vec<(&[u8], u64, u8)> = vec![(b".", 36, 2), (b"..", 36, 2)];
        all.extend(names.iter().map(|n| (n.as_slice(), 100, 1)));
        let enc = encode_dir(&all, 4096);
        let lens: Vec<usize> = all.iter().map(|e| e.0.len()).collect();
        assert_eq!(enc.len() as u64, dir_size(&lens, 4096));
        assert!(enc.len() > 4096 * 2);
        let mut out = Vec::new();
        for block in enc.chunks(4096) {
            parse_dir_block(block, 0, &mut out).unwrap();
        }
        let got: Vec<Vec<u8>> = out.into_iter().map(|(n, _)| n).collect();
        assert_eq!(got, names);
    }
}
