//! Field codecs shared by every structure (ECMA-119 section 7): both-endian numbers, text
//! fields and the two date formats.

use imgpipe_fstree::civil::{Civil, days_from_civil};

use crate::error::{Error, Result};

/// Returns `b[off..off + len]` or a truncation error naming `structure` at absolute `at`.
pub(crate) fn slice<'a>(
    b: &'a [u8],
    off: usize,
    len: usize,
    structure: &'static str,
    at: u64,
) -> Result<&'a [u8]> {
    off.checked_add(len)
        .and_then(|end| b.get(off..end))
        .ok_or(Error::Truncated {
            structure,
            offset: at,
            needed: (off as u64).saturating_add(len as u64),
            available: b.len() as u64,
        })
}

pub(crate) fn u8_at(b: &[u8], off: usize, structure: &'static str, at: u64) -> Result<u8> {
    Ok(slice(b, off, 1, structure, at)?[0])
}

/// A both-endian 32-bit field (7.3.3); the two copies must agree.
pub(crate) fn both_u32(
    b: &[u8],
    off: usize,
    structure: &'static str,
    field: &'static str,
    at: u64,
) -> Result<u32> {
    let s = slice(b, off, 8, structure, at)?;
    let le = u32::from_le_bytes([s[0], s[1], s[2], s[3]]);
    let be = u32::from_be_bytes([s[4], s[5], s[6], s[7]]);
    if le != be {
        return Err(Error::Malformed {
            structure,
            field,
            offset: at + off as u64,
            reason: "little- and big-endian copies disagree",
        });
    }
    Ok(le)
}

/// A both-endian 16-bit field (7.2.3); the two copies must agree.
pub(crate) fn both_u16(
    b: &[u8],
    off: usize,
    structure: &'static str,
    field: &'static str,
    at: u64,
) -> Result<u16> {
    let s = slice(b, off, 4, structure, at)?;
    let le = u16::from_le_bytes([s[0], s[1]]);
    let be = u16::from_be_bytes([s[2], s[3]]);
    if le != be {
        return Err(Error::Malformed {
            structure,
            field,
            offset: at + off as u64,
            reason: "little- and big-endian copies disagree",
        });
    }
    Ok(le)
}

pub(crate) fn put_both_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
    b[off + 4..off + 8].copy_from_slice(&v.to_be_bytes());
}

pub(crate) fn put_both_u16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
    b[off + 2..off + 4].copy_from_slice(&v.to_be_bytes());
}

/// A both-endian 32-bit field (7.3.3) as 8 bytes.
pub fn both_u32_bytes(v: u32) -> [u8; 8] {
    let mut b = [0u8; 8];
    put_both_u32(&mut b, 0, v);
    b
}

/// A blank-padded a/d-character text field, trailing blanks and NULs removed.
pub(crate) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .trim_end_matches([' ', '\0'])
        .to_string()
}

/// A UCS-2 big-endian text field (Joliet), trailing blanks and NULs removed.
pub(crate) fn ucs2_text(b: &[u8]) -> String {
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16_lossy(&units)
        .trim_end_matches([' ', '\0'])
        .to_string()
}

/// Writes `s` blank-padded into `b[off..off + len]` (truncated at `len` bytes).
pub(crate) fn put_text(b: &mut [u8], off: usize, len: usize, s: &str) {
    let field = &mut b[off..off + len];
    field.fill(b' ');
    let n = s.len().min(len);
    field[..n].copy_from_slice(&s.as_bytes()[..n]);
}

/// Writes `s` as UCS-2 big-endian, padded with UCS-2 blanks (0x00 0x20).
pub(crate) fn put_ucs2_text(b: &mut [u8], off: usize, len: usize, s: &str) {
    let field = &mut b[off..off + len];
    for pair in field.chunks_exact_mut(2) {
        pair.copy_from_slice(&[0, b' ']);
    }
    let mut i = 0;
    for unit in s.encode_utf16() {
        if i + 2 > len {
            break;
        }
        field[i..i + 2].copy_from_slice(&unit.to_be_bytes());
        i += 2;
    }
}

/// Broken-down UTC time of Unix seconds (the one calendar of `imgpipe_fstree::civil`).
fn civil(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    let c = Civil::from_unix(secs);
    (c.year, c.month, c.day, c.hour, c.minute, c.second)
}

/// Lowest and highest Unix time a 7-byte directory record date can hold (1900..=2155).
const DIR_DATE_MIN: i64 = -2_208_988_800;
const DIR_DATE_MAX: i64 = 5_869_583_999; // 2155-12-31T23:59:59Z

/// Encodes Unix seconds as a 7-byte recording date (9.1.5), GMT offset 0; clamped to the
/// representable years 1900..=2155.
pub fn dir_date(secs: i64) -> [u8; 7] {
    let (y, mo, d, h, mi, s) = civil(secs.clamp(DIR_DATE_MIN, DIR_DATE_MAX));
    [
        (y - 1900) as u8,
        mo as u8,
        d as u8,
        h as u8,
        mi as u8,
        s as u8,
        0,
    ]
}

/// Decodes a 7-byte recording date to Unix seconds (None when all zero or out of range).
pub fn parse_dir_date(b: &[u8]) -> Option<i64> {
    let b: &[u8; 7] = b.try_into().ok()?;
    if b[..6] == [0; 6] {
        return None;
    }
    let (mo, d) = (u32::from(b[1]), u32::from(b[2]));
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || b[3] > 23 || b[4] > 59 || b[5] > 60 {
        return None;
    }
    let days = days_from_civil(1900 + i64::from(b[0]), mo, d);
    let offset_quarters = i64::from(b[6] as i8);
    Some(
        days * 86_400 + i64::from(b[3]) * 3600 + i64::from(b[4]) * 60 + i64::from(b[5])
            - offset_quarters * 15 * 60,
    )
}

/// Encodes Unix seconds as a 17-byte digit date (8.4.26.1), GMT offset 0; years clamped to
/// 1..=9999.
pub fn dec_date(secs: i64) -> [u8; 17] {
    let (y, mo, d, h, mi, s) = civil(secs.clamp(-62_135_596_800, 253_402_300_799));
    let digits = format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}00");
    let mut out = [0u8; 17];
    out[..16].copy_from_slice(&digits.as_bytes()[..16]);
    out
}

/// Decodes a 17-byte digit date (None when unset: all `0` digits, or not digits).
pub fn parse_dec_date(b: &[u8]) -> Option<i64> {
    let b: &[u8; 17] = b.try_into().ok()?;
    if !b[..16].iter().all(u8::is_ascii_digit) || b[..16].iter().all(|&c| c == b'0') {
        return None;
    }
    let n = |r: std::ops::Range<usize>| -> i64 {
        b[r].iter()
            .fold(0i64, |acc, &c| acc * 10 + i64::from(c - b'0'))
    };
    let (mo, d) = (n(4..6) as u32, n(6..8) as u32);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let days = days_from_civil(n(0..4), mo, d);
    Some(
        days * 86_400 + n(8..10) * 3600 + n(10..12) * 60 + n(12..14)
            - i64::from(b[16] as i8) * 15 * 60,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        for secs in [0, 1_700_000_000, 951_782_400, -86_400, 4_102_444_800] {
            assert_eq!(parse_dir_date(&dir_date(secs)), Some(secs));
            assert_eq!(parse_dec_date(&dec_date(secs)), Some(secs));
        }
        assert_eq!(&dec_date(1_700_000_000)[..16], b"2023111422132000");
        assert_eq!(dir_date(1_700_000_000), [123, 11, 14, 22, 13, 20, 0]);
        assert_eq!(parse_dir_date(&[0; 7]), None);
        assert_eq!(parse_dec_date(b"0000000000000000\0"), None);
    }
}
