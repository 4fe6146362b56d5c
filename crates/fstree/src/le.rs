//! Little-endian fields of on-disk structures: the one set of helpers every format uses.
//!
//! The `le_*` functions read at a fixed offset of a structure whose length the caller has
//! already checked (they panic past the end, like indexing); the `get_*` forms return `None`
//! instead, for offsets that come from the input.

/// `u16` at `off`. The caller has checked `off + 2 <= b.len()`.
pub fn le_u16(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

/// `u32` at `off`. The caller has checked `off + 4 <= b.len()`.
pub fn le_u32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// `u64` at `off`. The caller has checked `off + 8 <= b.len()`.
pub fn le_u64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

/// `u16` at `off`, or `None` past the end.
pub fn get_u16(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(off..off.checked_add(2)?)?.try_into().ok()?,
    ))
}

/// `u32` at `off`, or `None` past the end.
pub fn get_u32(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(off..off.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// `u64` at `off`, or `None` past the end.
pub fn get_u64(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(off..off.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// Writes `v` at `off`. The caller has checked `off + 2 <= b.len()`.
pub fn put_u16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

/// Writes `v` at `off`. The caller has checked `off + 4 <= b.len()`.
pub fn put_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

/// Writes `v` at `off`. The caller has checked `off + 8 <= b.len()`.
pub fn put_u64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes() {
        let mut b = [0u8; 16];
        put_u16(&mut b, 0, 0x1234);
        put_u32(&mut b, 2, 0xdead_beef);
        put_u64(&mut b, 6, 0x0102_0304_0506_0708);
        assert_eq!(le_u16(&b, 0), 0x1234);
        assert_eq!(le_u32(&b, 2), 0xdead_beef);
        assert_eq!(le_u64(&b, 6), 0x0102_0304_0506_0708);
        assert_eq!(
            get_u64(&b, 8),
            Some(u64::from_le_bytes([6, 5, 4, 3, 2, 1, 0, 0]))
        );
        assert_eq!(get_u64(&b, 9), None);
        assert_eq!(get_u32(&b, usize::MAX), None);
        assert_eq!(get_u16(&b, 14), Some(0));
    }
}
