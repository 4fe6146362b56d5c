//! EROFS xattrs (`struct erofs_xattr_ibody_header`, `struct erofs_xattr_entry`): after an
//! inode, a 12-byte header (`h_name_filter` u32, `h_shared_count` u8, 7 reserved bytes),
//! `h_shared_count` 4-byte ids of shared entries, then inline entries, each a 4-byte header
//! (`e_name_len` u8, `e_name_index` u8, `e_value_size` u16), the name suffix and the value,
//! padded to 4 bytes. Shared entries have the same form in the shared xattr area.

use super::malformed;
use crate::error::Result;
use imgpipe_fstree::le::le_u16;

/// Size of the inline xattr body header.
pub const XATTR_BODY_HEADER_SIZE: usize = 12;

/// The name prefix of `e_name_index`, `None` when this crate does not know it.
pub fn xattr_prefix(index: u8) -> Option<&'static [u8]> {
    Some(match index {
        1 => b"user.",
        2 => b"system.posix_acl_access",
        3 => b"system.posix_acl_default",
        4 => b"trusted.",
        6 => b"security.",
        _ => return None,
    })
}

/// The `e_name_index` and name suffix that store the full name `name`, `None` when no
/// prefix this crate knows starts it (EROFS then needs long name prefixes) or the suffix is
/// empty where a prefix needs one.
pub fn xattr_index(name: &[u8]) -> Option<(u8, &[u8])> {
    // The ACL names are whole names; the others are prefixes needing a suffix.
    for index in [2u8, 3] {
        if Some(name) == xattr_prefix(index) {
            return Some((index, &[]));
        }
    }
    [1u8, 4, 6].into_iter().find_map(|index| {
        let suffix = name.strip_prefix(xattr_prefix(index)?)?;
        (!suffix.is_empty()).then_some((index, suffix))
    })
}

/// `EROFS_XATTR_LONG_PREFIX`: an `e_name_index` with this bit names a long prefix (the low
/// seven bits index the superblock's long prefix table).
pub const XATTR_LONG_PREFIX: u8 = 0x80;

/// `struct erofs_xattr_long_prefix`: a long xattr name prefix, a short prefix
/// (`base_index`) plus an infix. The table is `xattr_prefix_count` records from
/// `4 * xattr_prefix_start` (of the packed inode's content when the image has one): each a
/// 16-bit length, `base_index` and the infix, the next record 4-byte aligned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LongPrefix {
    /// The short prefix it extends (an `e_name_index`).
    pub base_index: u8,
    /// What follows the short prefix.
    pub infix: Vec<u8>,
}

impl LongPrefix {
    /// The full prefix (`None` when `base_index` is unknown).
    pub fn full(&self) -> Option<Vec<u8>> {
        let mut p = xattr_prefix(self.base_index)?.to_vec();
        p.extend_from_slice(&self.infix);
        Some(p)
    }

    /// Parses the record at the start of `b` (read at absolute offset `at`); returns it and
    /// the bytes it uses, padding to 4 bytes included (the last record's padding may be
    /// missing).
    pub fn parse(b: &[u8], at: u64) -> Result<(Self, usize)> {
        let len = b
            .get(..2)
            .map(|l| usize::from(le_u16(l, 0)))
            .ok_or(malformed(
                "EROFS long xattr prefix",
                "size",
                at,
                "truncated",
            ))?;
        if len == 0 || len > 256 {
            return Err(malformed(
                "EROFS long xattr prefix",
                "size",
                at,
                "empty or over 256 bytes",
            ));
        }
        let body = b.get(2..2 + len).ok_or(malformed(
            "EROFS long xattr prefix",
            "size",
            at,
            "runs past the prefix table",
        ))?;
        let p = Self {
            base_index: body[0],
            infix: body[1..].to_vec(),
        };
        if p.full().is_none() {
            return Err(malformed(
                "EROFS long xattr prefix",
                "base_index",
                at + 2,
                "unknown name index",
            ));
        }
        Ok((p, (2 + len).next_multiple_of(4)))
    }

    /// Appends the record (length, `base_index`, infix, zero padding to 4 bytes) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let len = 1 + self.infix.len();
        out.extend_from_slice(&(len as u16).to_le_bytes());
        out.push(self.base_index);
        out.extend_from_slice(&self.infix);
        out.resize(out.len().next_multiple_of(4), 0);
    }
}

/// One xattr entry with its full name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XattrEntry {
    /// Full name (prefix and suffix).
    pub name: Vec<u8>,
    /// Value.
    pub value: Vec<u8>,
}

impl XattrEntry {
    /// Appends the encoded entry (header, name suffix, value, zero padding to 4 bytes) to
    /// `out`; on failure says why: no known prefix, a suffix over 255 bytes, a value over
    /// 65535 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) -> std::result::Result<(), &'static str> {
        let (index, suffix) = xattr_index(&self.name)
            .ok_or("xattr name has no EROFS prefix (user., trusted., security., ACLs)")?;
        let name_len = u8::try_from(suffix.len()).map_err(|_| "xattr name over 255 bytes")?;
        let value_len =
            u16::try_from(self.value.len()).map_err(|_| "xattr value over 65535 bytes")?;
        let start = out.len();
        out.push(name_len);
        out.push(index);
        out.extend_from_slice(&value_len.to_le_bytes());
        out.extend_from_slice(suffix);
        out.extend_from_slice(&self.value);
        out.resize(start + (out.len() - start).next_multiple_of(4), 0);
        Ok(())
    }

    /// Parses the entry at the start of `b`, read at absolute offset `at`; returns it and
    /// the bytes it uses including the 4-byte alignment.
    pub fn parse(b: &[u8], at: u64) -> Result<(Self, usize)> {
        Self::parse_with_prefixes(b, at, &[])
    }

    /// [`XattrEntry::parse`] for an image with long name prefixes `long` (the superblock's
    /// table, in order).
    pub fn parse_with_prefixes(b: &[u8], at: u64, long: &[LongPrefix]) -> Result<(Self, usize)> {
        if b.len() < 4 {
            return Err(malformed("EROFS xattr entry", "header", at, "truncated"));
        }
        let (name_len, index, value_len) = (usize::from(b[0]), b[1], usize::from(le_u16(b, 2)));
        let end = 4 + name_len + value_len;
        if end > b.len() {
            return Err(malformed(
                "EROFS xattr entry",
                "e_value_size",
                at,
                "runs past the xattr body",
            ));
        }
        let long_prefix;
        let prefix = if index & XATTR_LONG_PREFIX != 0 {
            long_prefix = long
                .get(usize::from(index & !XATTR_LONG_PREFIX))
                .and_then(LongPrefix::full)
                .ok_or(malformed(
                    "EROFS xattr entry",
                    "e_name_index",
                    at + 1,
                    "long prefix index past the prefix table",
                ))?;
            Some(&long_prefix[..])
        } else {
            xattr_prefix(index)
        };
        let Some(prefix) = prefix else {
            return Err(malformed(
                "EROFS xattr entry",
                "e_name_index",
                at + 1,
                "unknown name index",
            ));
        };
        let mut name = prefix.to_vec();
        name.extend_from_slice(&b[4..4 + name_len]);
        let value = b[4 + name_len..end].to_vec();
        Ok((Self { name, value }, end.next_multiple_of(4)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses_prefixes() {
        let b = [4, 1, 2, 0, b'm', b'i', b'm', b'e', b'o', b'k', 0, 0];
        let (e, used) = XattrEntry::parse(&b, 0).unwrap();
        assert_eq!(e.name, b"user.mime");
        assert_eq!(e.value, b"ok");
        assert_eq!(used, 12);
        let mut enc = Vec::new();
        e.encode(&mut enc).unwrap();
        assert_eq!(enc, b);
        for (name, want) in [
            (&b"system.posix_acl_access"[..], Some((2, &b""[..]))),
            (b"security.selinux", Some((6, b"selinux"))),
            (b"user.", None),
            (b"system.other", None),
            (b"trusted.x", Some((4, b"x"))),
        ] {
            assert_eq!(xattr_index(name), want);
        }
        for n in 0..10 {
            assert!(XattrEntry::parse(&b[..n], 0).is_err(), "{n}");
        }
    }

    #[test]
    fn long_prefixes() {
        let p = LongPrefix {
            base_index: 4,
            infix: b"overlay.".to_vec(),
        };
        let mut b = Vec::new();
        p.encode(&mut b);
        assert_eq!(b.len(), 12);
        assert_eq!(LongPrefix::parse(&b, 0).unwrap(), (p.clone(), 12));
        for n in 0..11 {
            assert!(LongPrefix::parse(&b[..n], 0).is_err(), "{n}");
        }
        let e = [6, 0x80, 1, 0, b'o', b'p', b'a', b'q', b'u', b'e', b'y', 0];
        let (x, used) = XattrEntry::parse_with_prefixes(&e, 0, &[p]).unwrap();
        assert_eq!(x.name, b"trusted.overlay.opaque");
        assert_eq!((x.value.as_slice(), used), (&b"y"[..], 12));
        assert!(XattrEntry::parse(&e, 0).is_err());
    }
}
