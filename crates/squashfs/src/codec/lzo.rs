//! A bounded, checked LZO1X decompressor (the format Linux's `lzo1x_decompress_safe` reads).
//!
//! Written from the format's instruction table rather than used from a crate because the
//! pure-Rust decoders at hand index and subtract unchecked, so a hostile block would panic.
//! Compression uses `lzokay-native` (its output is plain LZO1X).

/// Decompresses one LZO1X block into at most `cap` bytes.
pub(crate) fn decompress(src: &[u8], cap: usize) -> Result<Vec<u8>, &'static str> {
    let mut d = Decoder {
        src,
        ip: 0,
        out: Vec::with_capacity(cap.min(src.len().saturating_mul(8))),
        cap,
    };
    d.run()?;
    if d.ip != src.len() {
        return Err("input not fully consumed after the end marker");
    }
    Ok(d.out)
}

struct Decoder<'a> {
    src: &'a [u8],
    ip: usize,
    out: Vec<u8>,
    cap: usize,
}

impl Decoder<'_> {
    fn byte(&mut self) -> Result<u8, &'static str> {
        let b = *self.src.get(self.ip).ok_or("truncated input")?;
        self.ip += 1;
        Ok(b)
    }

    fn le16(&mut self) -> Result<usize, &'static str> {
        let lo = self.byte()?;
        let hi = self.byte()?;
        Ok(usize::from(u16::from_le_bytes([lo, hi])))
    }

    /// `base` plus a zero-byte-extended length: each 0 adds 255, the final byte is added.
    fn long_len(&mut self, base: usize) -> Result<usize, &'static str> {
        let mut zeros = 0usize;
        loop {
            let b = self.byte()?;
            if b != 0 {
                let len = zeros
                    .checked_mul(255)
                    .and_then(|z| z.checked_add(base))
                    .and_then(|l| l.checked_add(usize::from(b)))
                    .ok_or("length overflow")?;
                return Ok(len);
            }
            zeros += 1;
            if zeros > self.cap / 255 + 1 {
                return Err("length exceeds the output size");
            }
        }
    }

    fn literals(&mut self, n: usize) -> Result<(), &'static str> {
        let end = self.ip.checked_add(n).ok_or("length overflow")?;
        let lit = self.src.get(self.ip..end).ok_or("truncated literal run")?;
        if self.out.len() + n > self.cap {
            return Err("output larger than the block");
        }
        self.out.extend_from_slice(lit);
        self.ip = end;
        Ok(())
    }

    fn copy_match(&mut self, dist: usize, len: usize) -> Result<(), &'static str> {
        if dist == 0 || dist > self.out.len() {
            return Err("match distance before the output start");
        }
        if len > self.cap - self.out.len() {
            return Err("output larger than the block");
        }
        let from = self.out.len() - dist;
        for i in 0..len {
            let b = self.out[from + i];
            self.out.push(b);
        }
        Ok(())
    }

    fn run(&mut self) -> Result<(), &'static str> {
        let mut state = 0usize;
        let first = *self.src.first().ok_or("empty input")?;
        if first >= 18 {
            self.ip = 1;
            let n = usize::from(first - 17);
            self.literals(n)?;
            state = n.min(4);
        }
        loop {
            let inst = self.byte()?;
            let i = usize::from(inst);
            let (dist, len, next_state);
            if inst & 0xc0 != 0 {
                let h = usize::from(self.byte()?);
                dist = (h << 3) + ((i >> 2) & 7) + 1;
                len = (i >> 5) + 1;
                next_state = i & 3;
            } else if inst & 0x20 != 0 {
                len = if i & 0x1f == 0 {
                    self.long_len(31 + 2)?
                } else {
                    (i & 0x1f) + 2
                };
                let w = self.le16()?;
                dist = (w >> 2) + 1;
                next_state = w & 3;
            } else if inst & 0x10 != 0 {
                len = if i & 7 == 0 {
                    self.long_len(7 + 2)?
                } else {
                    (i & 7) + 2
                };
                let w = self.le16()?;
                let d = ((i & 8) << 11) + (w >> 2);
                if d == 0 {
                    if len != 3 {
                        return Err("malformed end marker");
                    }
                    return Ok(());
                }
                dist = d + 16384;
                next_state = w & 3;
            } else if state == 0 {
                let n = if i == 0 {
                    self.long_len(15 + 3)?
                } else {
                    i + 3
                };
                self.literals(n)?;
                state = 4;
                continue;
            } else if state != 4 {
                let h = usize::from(self.byte()?);
                dist = (i >> 2) + (h << 2) + 1;
                len = 2;
                next_state = i & 3;
            } else {
                let h = usize::from(self.byte()?);
                dist = (i >> 2) + (h << 2) + 2049;
                len = 3;
                next_state = i & 3;
            }
            self.copy_match(dist, len)?;
            self.literals(next_state)?;
            state = next_state;
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip_with_lzokay_and_hostile_inputs_fail_cleanly() {
        let data = imgpipe_testsupport::pattern(100_000);
        let mut text = Vec::new();
        for i in 0..5000 {
            text.extend_from_slice(format!("line {i} of some text\n").as_bytes());
        }
        for src in [&data[..], &text[..], b"a", &[0u8; 70_000][..]] {
            let c = lzokay_native::compress(src).unwrap();
            assert_eq!(super::decompress(&c, src.len()).unwrap(), src);
            assert!(super::decompress(&c, src.len() - 1).is_err());
            for n in [0, 1, c.len() / 2, c.len() - 1] {
                assert!(super::decompress(&c[..n], src.len()).is_err());
            }
        }
        // a match reaching before the output start
        assert!(super::decompress(&[0x40, 0xff, 0x11, 0, 0], 100).is_err());
    }
}
