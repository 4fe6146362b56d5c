//! FAT directory entries (Microsoft FAT specification, section 6) and long-name entries
//! (section 7), with the DOS date and time encoding.

use imgpipe_fstree::civil::{civil_from_days, days_from_civil};

use super::{le_u16, le_u32};

/// Attribute bits of a directory entry.
pub mod attr {
    /// Read-only.
    pub const READ_ONLY: u8 = 0x01;
    /// Hidden.
    pub const HIDDEN: u8 = 0x02;
    /// System.
    pub const SYSTEM: u8 = 0x04;
    /// Volume label.
    pub const VOLUME_ID: u8 = 0x08;
    /// Directory.
    pub const DIRECTORY: u8 = 0x10;
    /// Archive (set on files written).
    pub const ARCHIVE: u8 = 0x20;
    /// The combination that marks a long-name entry.
    pub const LONG_NAME: u8 = 0x0F;
}

/// NT reserved byte flag: the base name is lower case.
pub const NT_LOWER_BASE: u8 = 0x08;
/// NT reserved byte flag: the extension is lower case.
pub const NT_LOWER_EXT: u8 = 0x10;

/// A 32-byte short (8.3) directory entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShortEntry {
    /// Name and extension, space padded (byte 0 0xE5 = deleted, 0x00 = end).
    pub name: [u8; 11],
    /// Attribute bits.
    pub attr: u8,
    /// NT case flags.
    pub nt_res: u8,
    /// Creation time, tenths of a second (0..=199).
    pub crt_time_tenth: u8,
    /// Creation time.
    pub crt_time: u16,
    /// Creation date.
    pub crt_date: u16,
    /// Last access date.
    pub acc_date: u16,
    /// First cluster (high and low words combined).
    pub first_cluster: u32,
    /// Write time.
    pub wrt_time: u16,
    /// Write date.
    pub wrt_date: u16,
    /// File size in bytes.
    pub size: u32,
}

impl ShortEntry {
    /// Size of an entry.
    pub const SIZE: usize = 32;

    /// Parses an entry from exactly 32 bytes (callers slice with `chunks_exact`).
    pub fn parse(b: &[u8; 32]) -> Self {
        let mut name = [0u8; 11];
        name.copy_from_slice(&b[..11]);
        Self {
            name,
            attr: b[11],
            nt_res: b[12],
            crt_time_tenth: b[13],
            crt_time: le_u16(b, 14),
            crt_date: le_u16(b, 16),
            acc_date: le_u16(b, 18),
            first_cluster: (u32::from(le_u16(b, 20)) << 16) | u32::from(le_u16(b, 26)),
            wrt_time: le_u16(b, 22),
            wrt_date: le_u16(b, 24),
            size: le_u32(b, 28),
        }
    }

    /// Encodes the entry.
    pub fn to_bytes(&self) -> [u8; 32] {
        let mut b = [0u8; 32];
        b[..11].copy_from_slice(&self.name);
        b[11] = self.attr;
        b[12] = self.nt_res;
        b[13] = self.crt_time_tenth;
        b[14..16].copy_from_slice(&self.crt_time.to_le_bytes());
        b[16..18].copy_from_slice(&self.crt_date.to_le_bytes());
        b[18..20].copy_from_slice(&self.acc_date.to_le_bytes());
        b[20..22].copy_from_slice(&((self.first_cluster >> 16) as u16).to_le_bytes());
        b[22..24].copy_from_slice(&self.wrt_time.to_le_bytes());
        b[24..26].copy_from_slice(&self.wrt_date.to_le_bytes());
        b[26..28].copy_from_slice(&(self.first_cluster as u16).to_le_bytes());
        b[28..32].copy_from_slice(&self.size.to_le_bytes());
        b
    }

    /// The name as text: `BASE.EXT`, lower-cased where the NT flags say so.
    pub fn display_name(&self) -> String {
        let mut name = self.name;
        if name[0] == 0x05 {
            name[0] = 0xE5;
        }
        let lower = |bytes: &[u8], flag: u8| -> String {
            bytes
                .iter()
                .map(|&c| {
                    let c = if self.nt_res & flag != 0 {
                        c.to_ascii_lowercase()
                    } else {
                        c
                    };
                    // Bytes above 0x7F are OEM code page characters; show them as Latin-1.
                    char::from(c)
                })
                .collect::<String>()
                .trim_end()
                .to_string()
        };
        let base = lower(&name[..8], NT_LOWER_BASE);
        let ext = lower(&name[8..], NT_LOWER_EXT);
        if ext.is_empty() {
            base
        } else {
            format!("{base}.{ext}")
        }
    }
}

/// The checksum of a short name that its long-name entries carry (section 7.2).
pub fn short_name_checksum(name: &[u8; 11]) -> u8 {
    name.iter()
        .fold(0u8, |sum, &c| sum.rotate_right(1).wrapping_add(c))
}

/// UTF-16 code units per long-name entry.
pub const LFN_UNITS: usize = 13;
/// Byte offsets of the 13 name units inside a long-name entry.
const LFN_OFFSETS: [usize; LFN_UNITS] = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];

/// The long-name entries for `units` in on-disk order (last part first), each tied to the
/// short entry by `checksum`.
pub fn lfn_entries(units: &[u16], checksum: u8) -> Vec<[u8; 32]> {
    let parts = units.len().div_ceil(LFN_UNITS);
    let mut out = Vec::with_capacity(parts);
    for part in (0..parts).rev() {
        let mut b = [0u8; 32];
        b[0] = (part as u8 + 1) | if part + 1 == parts { 0x40 } else { 0 };
        b[11] = attr::LONG_NAME;
        b[13] = checksum;
        for (i, off) in LFN_OFFSETS.iter().enumerate() {
            let idx = part * LFN_UNITS + i;
            let u = match idx.cmp(&units.len()) {
                std::cmp::Ordering::Less => units[idx],
                std::cmp::Ordering::Equal => 0,
                std::cmp::Ordering::Greater => 0xFFFF,
            };
            b[*off..*off + 2].copy_from_slice(&u.to_le_bytes());
        }
        out.push(b);
    }
    out
}

/// A parsed long-name entry: sequence number (1-based), last-part flag, checksum, units.
pub fn parse_lfn(b: &[u8; 32]) -> (u8, bool, u8, [u16; LFN_UNITS]) {
    let mut units = [0u16; LFN_UNITS];
    for (u, off) in units.iter_mut().zip(LFN_OFFSETS) {
        *u = le_u16(b, off);
    }
    (b[0] & 0x1F, b[0] & 0x40 != 0, b[13], units)
}

/// DOS date, time and tenths for a Unix time, clamped to 1980-01-01 .. 2107-12-31 (UTC).
pub fn dos_datetime(unix: u64) -> (u16, u16, u8) {
    const MIN: u64 = 315_532_800; // 1980-01-01T00:00:00Z
    const MAX: u64 = 4_354_819_198; // 2107-12-31T23:59:58Z
    let t = unix.clamp(MIN, MAX);
    let days = t / 86_400;
    let secs = t % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    let date = (((y - 1980) as u16) << 9) | ((m as u16) << 5) | d as u16;
    let time =
        ((secs / 3600) as u16) << 11 | (((secs / 60) % 60) as u16) << 5 | ((secs % 60) / 2) as u16;
    let tenth = ((secs % 2) * 100) as u8;
    (date, time, tenth)
}

/// The Unix time of a DOS date and time (UTC); `None` for impossible fields.
pub fn unix_from_dos(date: u16, time: u16) -> Option<u64> {
    let y = 1980 + i64::from(date >> 9);
    let m = u32::from((date >> 5) & 0xF);
    let d = u32::from(date & 0x1F);
    let (h, min, s) = (
        u64::from(time >> 11),
        u64::from((time >> 5) & 0x3F),
        u64::from(time & 0x1F) * 2,
    );
    if !(1..=12).contains(&m) || d == 0 || h > 23 || min > 59 || s > 59 {
        return None;
    }
    let days = days_from_civil(y, m, d);
    Some(days as u64 * 86_400 + h * 3600 + min * 60 + s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        // 2023-11-14T22:13:20Z
        let (d, t, tenth) = dos_datetime(1_700_000_000);
        assert_eq!(d >> 9, 43);
        assert_eq!((d >> 5) & 0xF, 11);
        assert_eq!(d & 0x1F, 14);
        assert_eq!(t >> 11, 22);
        assert_eq!(tenth, 0);
        assert_eq!(unix_from_dos(d, t), Some(1_700_000_000));
        let (d0, t0, _) = dos_datetime(0);
        assert_eq!((d0, t0), (0x21, 0));
        assert_eq!(unix_from_dos(d0, t0), Some(315_532_800));
        assert_eq!(unix_from_dos(0, 0), None);
        assert_eq!(dos_datetime(u64::MAX).0 >> 9, 127);
        for t in [315_532_800u64, 951_782_400, 1_234_567_890, 4_000_000_000] {
            let (d, tm, tenth) = dos_datetime(t);
            assert_eq!(unix_from_dos(d, tm).unwrap() + u64::from(tenth / 100), t);
        }
    }

    #[test]
    fn lfn_round_trip_and_checksum() {
        let name: Vec<u16> = "A long file name.txt".encode_utf16().collect();
        let short = *b"ALONGF~1TXT";
        let sum = short_name_checksum(&short);
        let entries = lfn_entries(&name, sum);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0][0], 0x42);
        assert_eq!(entries[1][0], 0x01);
        let mut units = Vec::new();
        for e in entries.iter().rev() {
            let (_, _, chk, u) = parse_lfn(e);
            assert_eq!(chk, sum);
            units.extend(u.iter().copied().take_while(|&c| c != 0 && c != 0xFFFF));
        }
        assert_eq!(units, name);
        let e = ShortEntry {
            name: *b"GRUB    CFG",
            attr: attr::ARCHIVE,
            nt_res: NT_LOWER_BASE | NT_LOWER_EXT,
            crt_time_tenth: 0,
            crt_time: 1,
            crt_date: 2,
            acc_date: 3,
            first_cluster: 0x0012_0034,
            wrt_time: 4,
            wrt_date: 5,
            size: 6,
        };
        assert_eq!(ShortEntry::parse(&e.to_bytes()), e);
        assert_eq!(e.display_name(), "grub.cfg");
    }
}
