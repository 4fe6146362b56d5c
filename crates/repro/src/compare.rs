//! Two-build verification: are two images byte-identical, and where do they first differ.

use std::io::Read;

use serde::Serialize;

use crate::error::{Error, Result};

/// The outcome of comparing two byte streams.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Comparison {
    /// Whether both streams are identical.
    pub identical: bool,
    /// Offset of the first differing byte (or of the shorter stream's end).
    pub first_difference: Option<u64>,
    /// Length of the first stream.
    pub len_a: u64,
    /// Length of the second stream.
    pub len_b: u64,
}

fn fill<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(Error::Io {
                    what: "reading an image to compare",
                    source,
                });
            }
        }
    }
    Ok(n)
}

/// Streams both readers in 1 MiB chunks (bounded memory) and reports the first difference.
pub fn compare_streams<A: Read, B: Read>(mut a: A, mut b: B) -> Result<Comparison> {
    const CHUNK: usize = 1 << 20;
    let (mut ba, mut bb) = (vec![0u8; CHUNK], vec![0u8; CHUNK]);
    let (mut pos, mut first) = (0u64, None);
    let (mut len_a, mut len_b) = (0u64, 0u64);
    loop {
        let na = fill(&mut a, &mut ba)?;
        let nb = fill(&mut b, &mut bb)?;
        len_a += na as u64;
        len_b += nb as u64;
        if first.is_none() {
            let common = na.min(nb);
            if let Some(i) = ba[..common]
                .iter()
                .zip(&bb[..common])
                .position(|(x, y)| x != y)
            {
                first = Some(pos + i as u64);
            } else if na != nb {
                first = Some(pos + common as u64);
            }
        }
        pos += na.max(nb) as u64;
        if na == 0 && nb == 0 {
            break;
        }
    }
    Ok(Comparison {
        identical: first.is_none(),
        first_difference: first,
        len_a,
        len_b,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_first_difference() {
        let a = vec![1u8; 3 << 20];
        let mut b = a.clone();
        assert!(compare_streams(&a[..], &b[..]).unwrap().identical);
        b[(2 << 20) + 5] = 0;
        let c = compare_streams(&a[..], &b[..]).unwrap();
        assert_eq!(c.first_difference, Some((2 << 20) + 5));
        let c = compare_streams(&a[..10], &a[..12]).unwrap();
        assert_eq!((c.identical, c.first_difference), (false, Some(10)));
    }
}
