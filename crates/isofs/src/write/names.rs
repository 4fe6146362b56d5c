//! Identifiers: ISO9660 level 3 d-character names, Joliet UCS-2 names, and the sort order
//! of ECMA-119 9.3.

use std::cmp::Ordering;
use std::collections::BTreeSet;

/// Longest ISO9660 file identifier we write (level 2/3: 30 characters plus `;1`).
const ISO_FILE_MAX: usize = 30;
/// Longest ISO9660 directory identifier.
const ISO_DIR_MAX: usize = 31;
/// Longest Joliet name in UTF-16 units (what `xorriso -joliet-long` allows).
pub const JOLIET_MAX: usize = 103;

fn d_char(c: u8) -> u8 {
    match c {
        b'a'..=b'z' => c.to_ascii_uppercase(),
        b'A'..=b'Z' | b'0'..=b'9' | b'_' => c,
        _ => b'_',
    }
}

/// Makes the ISO9660 identifiers of one directory's children, unique, in input order.
/// `children` are (name, is_dir).
pub fn iso_identifiers(children: &[(&[u8], bool)]) -> Vec<Vec<u8>> {
    let mut used = BTreeSet::new();
    children
        .iter()
        .map(|&(name, is_dir)| {
            let (base, ext): (Vec<u8>, Vec<u8>) = if is_dir {
                (name.iter().map(|&c| d_char(c)).collect(), Vec::new())
            } else {
                match name.iter().rposition(|&c| c == b'.') {
                    Some(p) if p > 0 => (
                        name[..p].iter().map(|&c| d_char(c)).collect(),
                        name[p + 1..].iter().take(8).map(|&c| d_char(c)).collect(),
                    ),
                    _ => (name.iter().map(|&c| d_char(c)).collect(), Vec::new()),
                }
            };
            let max_base = if is_dir {
                ISO_DIR_MAX
            } else {
                ISO_FILE_MAX - 1 - ext.len()
            };
            let make = |base: &[u8]| {
                let mut id = base.to_vec();
                if !is_dir {
                    id.push(b'.');
                    id.extend_from_slice(&ext);
                    id.extend_from_slice(b";1");
                }
                id
            };
            let mut b: Vec<u8> = base.iter().copied().take(max_base).collect();
            if b.is_empty() {
                b.push(b'_');
            }
            let mut id = make(&b);
            let mut n = 1u32;
            while used.contains(&id) {
                let suffix = format!("{n}");
                let keep = max_base.saturating_sub(suffix.len()).min(base.len());
                let mut bb: Vec<u8> = base[..keep].to_vec();
                bb.extend_from_slice(suffix.as_bytes());
                id = make(&bb);
                n += 1;
            }
            used.insert(id.clone());
            id
        })
        .collect()
}

/// Makes the Joliet identifiers (UCS-2/UTF-16 big-endian) of one directory's children.
pub fn joliet_identifiers(children: &[(&[u8], bool)]) -> Vec<Vec<u8>> {
    let mut used = BTreeSet::new();
    children
        .iter()
        .map(|&(name, is_dir)| {
            let text = String::from_utf8_lossy(name);
            let units: Vec<u16> = text
                .chars()
                .map(|c| match c {
                    '*' | '/' | ':' | ';' | '?' | '\\' => '_',
                    c if (c as u32) < 0x20 => '_',
                    c => c,
                })
                .collect::<String>()
                .encode_utf16()
                .collect();
            let cut = |units: &[u16], max: usize| -> Vec<u16> {
                let mut n = units.len().min(max);
                // Never split a surrogate pair.
                if n > 0 && n < units.len() && (0xD800..0xDC00).contains(&units[n - 1]) {
                    n -= 1;
                }
                units[..n].to_vec()
            };
            let make = |u: &[u16]| {
                let mut id: Vec<u8> = u.iter().flat_map(|x| x.to_be_bytes()).collect();
                if !is_dir {
                    id.extend_from_slice(&[0, b';', 0, b'1']);
                }
                id
            };
            let mut id = make(&cut(&units, JOLIET_MAX));
            let mut n = 1u32;
            while used.contains(&id) {
                let suffix: Vec<u16> = format!("~{n}").encode_utf16().collect();
                let mut u = cut(&units, JOLIET_MAX - suffix.len());
                u.extend_from_slice(&suffix);
                id = make(&u);
                n += 1;
            }
            used.insert(id.clone());
            id
        })
        .collect()
}

/// ECMA-119 9.3 order: file name, then extension, each padded with blanks, then version.
pub fn iso_order(a: &[u8], b: &[u8]) -> Ordering {
    fn split(id: &[u8]) -> (&[u8], &[u8]) {
        let id = match id.iter().position(|&c| c == b';') {
            Some(p) => &id[..p],
            None => id,
        };
        match id.iter().position(|&c| c == b'.') {
            Some(p) => (&id[..p], &id[p + 1..]),
            None => (id, &[]),
        }
    }
    fn padded(a: &[u8], b: &[u8]) -> Ordering {
        let n = a.len().max(b.len());
        (0..n)
            .map(|i| {
                a.get(i)
                    .copied()
                    .unwrap_or(b' ')
                    .cmp(&b.get(i).copied().unwrap_or(b' '))
            })
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    }
    let (an, ae) = split(a);
    let (bn, be) = split(b);
    padded(an, bn).then(padded(ae, be)).then(a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_names_are_unique_d_characters() {
        let long = "l".repeat(200);
        let names: Vec<(&[u8], bool)> = vec![
            (b"README", false),
            (b"readme", false),
            (long.as_bytes(), false),
            (b"UPPER.lower.Mixed.ext", false),
            (b"with space & 'quotes'", false),
            (b"deep", true),
            (b"Deep", true),
        ];
        let ids = iso_identifiers(&names);
        let set: BTreeSet<_> = ids.iter().collect();
        assert_eq!(set.len(), ids.len());
        for id in &ids {
            assert!(id.len() <= 32, "{}", String::from_utf8_lossy(id));
            assert!(
                id.iter()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || b"_.;".contains(c))
            );
        }
        assert_eq!(ids[0], b"README.;1");
        let j = joliet_identifiers(&names);
        assert_eq!(j[2].len(), (JOLIET_MAX + 2) * 2);
        assert_eq!(j.iter().collect::<BTreeSet<_>>().len(), j.len());
    }
}
