//! SHA-512 crypt (`$6$`), the password hash glibc, shadow and Anaconda use, as Ulrich
//! Drepper's specification defines it. The salt is the caller's: `build` derives it from the
//! seed, so a plain-text `rootpw` hashes the same way in every build.

use sha2::{Digest, Sha512};

/// The default number of rounds; a hash made with it does not spell `rounds=` out.
const DEFAULT_ROUNDS: u32 = 5000;

/// crypt's base-64 alphabet.
const ALPHABET: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The byte order in which SHA-512 crypt spells its final digest: triples of indexes.
const ORDER: [(usize, usize, usize); 21] = [
    (0, 21, 42),
    (22, 43, 1),
    (44, 2, 23),
    (3, 24, 45),
    (25, 46, 4),
    (47, 5, 26),
    (6, 27, 48),
    (28, 49, 7),
    (50, 8, 29),
    (9, 30, 51),
    (31, 52, 10),
    (53, 11, 32),
    (12, 33, 54),
    (34, 55, 13),
    (56, 14, 35),
    (15, 36, 57),
    (37, 58, 16),
    (59, 17, 38),
    (18, 39, 60),
    (40, 61, 19),
    (62, 20, 41),
];

/// Turns bytes into salt characters of crypt's alphabet (16 characters at most are used).
pub(crate) fn salt_from_bytes(bytes: &[u8]) -> String {
    bytes
        .iter()
        .take(16)
        .map(|b| char::from(ALPHABET[usize::from(b & 63)]))
        .collect()
}

/// Adds `len` bytes of `digest` repeated to `h`.
fn repeat(h: &mut Sha512, digest: &[u8], len: usize) {
    let mut left = len;
    while left >= digest.len() {
        h.update(digest);
        left -= digest.len();
    }
    h.update(digest.get(..left).unwrap_or_default());
}

fn b64(out: &mut String, b2: u8, b1: u8, b0: u8, n: usize) {
    let mut w = (u32::from(b2) << 16) | (u32::from(b1) << 8) | u32::from(b0);
    for _ in 0..n {
        out.push(char::from(ALPHABET[(w & 63) as usize]));
        w >>= 6;
    }
}

/// `$6$SALT$HASH` of `password` with the default 5000 rounds. `salt` is cut to 16
/// characters, as crypt does.
pub(crate) fn sha512_crypt(password: &[u8], salt: &str) -> String {
    let salt = salt
        .as_bytes()
        .get(..salt.len().min(16))
        .unwrap_or_default();
    let rounds = DEFAULT_ROUNDS;
    let alternate = Sha512::new()
        .chain_update(password)
        .chain_update(salt)
        .chain_update(password)
        .finalize();
    let mut a = Sha512::new().chain_update(password).chain_update(salt);
    repeat(&mut a, &alternate, password.len());
    let mut n = password.len();
    while n > 0 {
        if n & 1 == 1 {
            a.update(alternate);
        } else {
            a.update(password);
        }
        n >>= 1;
    }
    let mut digest = a.finalize();
    let mut dp = Sha512::new();
    for _ in 0..password.len() {
        dp.update(password);
    }
    let dp = dp.finalize();
    let p: Vec<u8> = dp.iter().copied().cycle().take(password.len()).collect();
    let mut ds = Sha512::new();
    for _ in 0..16 + usize::from(digest[0]) {
        ds.update(salt);
    }
    let ds = ds.finalize();
    let s: Vec<u8> = ds.iter().copied().cycle().take(salt.len()).collect();
    for round in 0..rounds {
        let mut c = Sha512::new();
        if round % 2 == 1 {
            c.update(&p);
        } else {
            c.update(digest);
        }
        if round % 3 != 0 {
            c.update(&s);
        }
        if round % 7 != 0 {
            c.update(&p);
        }
        if round % 2 == 1 {
            c.update(digest);
        } else {
            c.update(&p);
        }
        digest = c.finalize();
    }
    let mut out = String::with_capacity(106);
    out.push_str("$6$");
    out.push_str(&String::from_utf8_lossy(salt));
    out.push('$');
    for (i, j, k) in ORDER {
        b64(&mut out, digest[i], digest[j], digest[k], 4);
    }
    b64(&mut out, 0, 0, digest[63], 2);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drepper_vectors() {
        // From the specification's test vectors (default rounds).
        assert_eq!(
            sha512_crypt(b"Hello world!", "saltstring"),
            "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"
        );
        // A salt longer than 16 characters is cut.
        assert_eq!(
            sha512_crypt(b"Hello world!", "saltstringsaltstring"),
            sha512_crypt(b"Hello world!", "saltstringsaltst")
        );
        assert_eq!(salt_from_bytes(&[0, 1, 63, 64]), "./z.");
    }
}
