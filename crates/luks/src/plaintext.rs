//! The payload of a volume read in place: a positioned-read source whose reads decrypt the
//! sectors they touch, so a filesystem inside a LUKS2 volume opens like any other image
//! without its plaintext being written anywhere.

use std::io;

use imgpipe_fstree::ReadAt;

use crate::payload::DataSegment;

/// The largest encryption sector LUKS2 allows: the scratch a partial sector is decrypted in.
const MAX_SECTOR: usize = 4096;

/// The plaintext of a data segment, read through the ciphertext of a device ([`ReadAt`]).
///
/// Reads of whole sectors are decrypted in place in the caller's buffer (in parallel across
/// sectors, [`DataSegment::decrypt`]); a partial sector at either end of a read is decrypted
/// in a 4 KiB scratch on the stack. Nothing is cached or allocated per read, so memory is the
/// caller's buffers.
#[derive(Debug)]
pub struct Plaintext<S> {
    dev: S,
    seg: DataSegment,
    len: u64,
}

impl<S: ReadAt> Plaintext<S> {
    /// The payload of `seg` on `dev` (the device or image the header describes, its segment
    /// offset counted from `dev`'s start): [`DataSegment::payload_len`] bytes of it.
    pub fn new(dev: S, seg: DataSegment) -> io::Result<Self> {
        let len = seg.payload_len(dev.len()?);
        Ok(Self { dev, seg, len })
    }

    /// The keyed segment.
    pub fn segment(&self) -> &DataSegment {
        &self.seg
    }

    /// The device the ciphertext is read from.
    pub fn device(&self) -> &S {
        &self.dev
    }

    /// Decrypts the sector-aligned run `buf` at payload offset `at`.
    fn decrypt_run(&self, buf: &mut [u8], at: u64) -> io::Result<()> {
        let on_dev = self
            .seg
            .offset
            .checked_add(at)
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        self.dev.read_exact_at(buf, on_dev)?;
        self.seg
            .decrypt(buf, at)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
    }
}

impl<S: ReadAt> ReadAt for Plaintext<S> {
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        let end = pos
            .checked_add(buf.len() as u64)
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        if end > self.len {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let ss = u64::from(self.seg.sector_size);
        let mut done = 0usize;
        let mut at = pos;
        while done < buf.len() {
            let left = buf.len() - done;
            let inside = at % ss;
            if inside != 0 || (left as u64) < ss {
                // A partial sector: decrypt all of it aside, keep the part asked for.
                let mut scratch = [0u8; MAX_SECTOR];
                let sector = scratch
                    .get_mut(..ss as usize)
                    .ok_or(io::ErrorKind::InvalidInput)?;
                let start = at - inside;
                self.decrypt_run(sector, start)?;
                let n = (ss - inside).min(left as u64) as usize;
                let (Some(dst), Some(src)) = (
                    buf.get_mut(done..done + n),
                    sector.get(inside as usize..inside as usize + n),
                ) else {
                    return Err(io::ErrorKind::InvalidInput.into());
                };
                dst.copy_from_slice(src);
                done += n;
                at += n as u64;
            } else {
                let n = left - left % ss as usize;
                let run = buf
                    .get_mut(done..done + n)
                    .ok_or(io::ErrorKind::InvalidInput)?;
                self.decrypt_run(run, at)?;
                done += n;
                at += n as u64;
            }
        }
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.len)
    }
}

#[cfg(test)]
mod tests {
    use imgpipe_fstree::Bytes;

    use super::*;
    use crate::VolumeKey;

    /// Every read, aligned or not, short or long, gives the bytes a whole decryption gives.
    #[test]
    fn reads_anywhere_match_the_whole_decryption() {
        let vk = VolumeKey::new((0..64).collect());
        for ss in [512u32, 4096] {
            let offset = 8192u64;
            let seg = DataSegment::from_key(&vk, offset, ss, 3).unwrap();
            let plain: Vec<u8> = (0..64 * 1024u32).map(|i| (i * 7 + i / 300) as u8).collect();
            let mut cipher = plain.clone();
            seg.encrypt(&mut cipher, 0).unwrap();
            let mut dev = vec![0xeeu8; offset as usize];
            dev.extend_from_slice(&cipher);
            // A trailing partial sector is not payload.
            dev.extend_from_slice(&[1, 2, 3]);
            let p = Plaintext::new(
                Bytes(dev),
                DataSegment::from_key(&vk, offset, ss, 3).unwrap(),
            )
            .unwrap();
            assert_eq!(p.len().unwrap(), plain.len() as u64);
            for (pos, n) in [
                (0usize, 0usize),
                (0, 1),
                (1, 10),
                (511, 2),
                (500, 5000),
                (4096, 8192),
                (4000, 20_000),
                (0, plain.len()),
                (plain.len() - 1, 1),
            ] {
                let mut buf = vec![0u8; n];
                p.read_exact_at(&mut buf, pos as u64).unwrap();
                assert!(buf == plain[pos..pos + n], "ss {ss} pos {pos} len {n}");
            }
            let mut one = [0u8; 1];
            assert!(p.read_exact_at(&mut one, plain.len() as u64).is_err());
            assert!(p.read_exact_at(&mut one, u64::MAX).is_err());
        }
    }

    /// A device shorter than the segment claims fails the read, it does not panic.
    #[test]
    fn a_short_device_fails_cleanly() {
        let vk = VolumeKey::new(vec![9; 64]);
        let seg = DataSegment::from_key(&vk, 4096, 512, 0).unwrap();
        let p = Plaintext::new(Bytes(vec![0u8; 4096 + 1024]), seg).unwrap();
        assert_eq!(p.len().unwrap(), 1024);
        let mut buf = [0u8; 2048];
        assert!(p.read_exact_at(&mut buf, 0).is_err());
        assert!(p.read_exact_at(&mut buf[..1024], 0).is_ok());
    }
}
