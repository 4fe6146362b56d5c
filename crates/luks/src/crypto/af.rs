//! The anti-forensic information splitter of LUKS1, which LUKS2 keyslots reuse
//! (`af.type = "luks1"`; TKS1 in Clemens Fruhwirth's paper; LUKS2 on-disk format, section 3.3).
//!
//! A key of `n` bytes becomes `stripes * n` bytes: `stripes - 1` random stripes, each folded
//! into a running value through a hash-based diffusion, and a last stripe that is the key
//! XORed with the folded value. Losing any byte of the area loses the key.

use zeroize::Zeroizing;

use super::HashAlg;

/// Bytes the split key occupies: `key_len * stripes`, or `None` on overflow.
pub fn af_split_size(key_len: usize, stripes: u32) -> Option<usize> {
    key_len.checked_mul(usize::try_from(stripes).ok()?)
}

/// The diffusion step: every hash-sized block `i` of `buf` becomes
/// `hash(be32(i) || block)`, the last (shorter) block truncated.
fn diffuse(hash: HashAlg, buf: &mut [u8]) {
    let mut out = [0u8; 64];
    let size = hash.output_len();
    for (i, block) in buf.chunks_mut(size).enumerate() {
        let counter = u32::try_from(i).unwrap_or(u32::MAX).to_be_bytes();
        hash.hash_into(&[&counter, block], &mut out[..block.len()]);
        block.copy_from_slice(&out[..block.len()]);
    }
}

fn xor_into(dst: &mut [u8], src: &[u8]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d ^= s;
    }
}

/// Splits `key` into `stripes` stripes; `fill` supplies the random stripes.
///
/// Returns `None` if `stripes` is 0 or the size overflows.
pub fn af_split(
    key: &[u8],
    stripes: u32,
    hash: HashAlg,
    fill: &mut dyn FnMut(&mut [u8]),
) -> Option<Zeroizing<Vec<u8>>> {
    let n = key.len();
    let total = af_split_size(n, stripes)?;
    if stripes == 0 {
        return None;
    }
    let mut out = Zeroizing::new(vec![0u8; total]);
    let mut d = Zeroizing::new(vec![0u8; n]);
    let (random, last) = out.split_at_mut(total - n);
    fill(random);
    for stripe in random.chunks(n) {
        xor_into(&mut d, stripe);
        diffuse(hash, &mut d);
    }
    last.copy_from_slice(key);
    xor_into(last, &d);
    Some(out)
}

/// Merges `stripes` stripes of `key_len` bytes from `data` back into the key.
///
/// Returns `None` if `data` is shorter than `key_len * stripes` or `stripes` is 0.
pub fn af_merge(
    data: &[u8],
    key_len: usize,
    stripes: u32,
    hash: HashAlg,
) -> Option<Zeroizing<Vec<u8>>> {
    let total = af_split_size(key_len, stripes)?;
    if stripes == 0 || key_len == 0 {
        return None;
    }
    let data = data.get(..total)?;
    let (random, last) = data.split_at(total - key_len);
    let mut d = Zeroizing::new(vec![0u8; key_len]);
    for stripe in random.chunks(key_len) {
        xor_into(&mut d, stripe);
        diffuse(hash, &mut d);
    }
    xor_into(&mut d, last);
    Some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_merge_round_trip_every_hash() {
        let key: Vec<u8> = (0..64).collect();
        for hash in [HashAlg::Sha1, HashAlg::Sha256, HashAlg::Sha512] {
            let mut counter = 0u8;
            let split = af_split(&key, 4000, hash, &mut |b: &mut [u8]| {
                for x in b {
                    counter = counter.wrapping_mul(31).wrapping_add(7);
                    *x = counter;
                }
            })
            .unwrap();
            assert_eq!(split.len(), 64 * 4000);
            let back = af_merge(&split, 64, 4000, hash).unwrap();
            assert_eq!(&back[..], &key[..]);
            let mut damaged = split.clone();
            damaged[100] ^= 1;
            assert_ne!(&af_merge(&damaged, 64, 4000, hash).unwrap()[..], &key[..]);
        }
        assert!(af_merge(&[0u8; 10], 64, 4000, HashAlg::Sha256).is_none());
    }
}
