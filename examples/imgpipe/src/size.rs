//! The one size parser behind every size flag (`--size`, `--block-size`, `--alignment`,
//! `size=` of `--part`, `--reserve`, ...).
//!
//! A size is plain bytes or a number with a binary suffix: `K`, `M`, `G`, `T` or `KiB`, `MiB`,
//! `GiB`, `TiB` (any case, powers of 1024), as `mksquashfs -b 128K` and `sgdisk -n 0:0:+64M`
//! accept. Used as a clap `value_parser`, so errors name the flag
//! (``invalid value '12Q' for '--size <SIZE>': ...``).

/// Parses `512`, `128K`, `64M`, `64MiB`, `1G`, `2T` into bytes: the rule of
/// [`imgpipe_repro::parse_size`] (which `--part size=` uses too), with messages for clap.
pub fn parse_size(s: &str) -> Result<u64, String> {
    imgpipe_repro::parse_size(s).ok_or_else(|| {
        format!("{s:?} is not a size: bytes, or a number with K, M, G or T (KiB, MiB, ... too)")
    })
}

/// [`parse_size`] for flags stored as `u32` (`--block-size`, luks sector sizes).
pub fn parse_size_u32(s: &str) -> Result<u32, String> {
    let n = parse_size(s)?;
    u32::try_from(n).map_err(|_| format!("{s:?} is too large (at most 4G - 1)"))
}

#[cfg(test)]
mod tests {
    use super::{parse_size, parse_size_u32};

    #[test]
    fn plain_and_suffixed() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("128K"), Ok(128 << 10));
        assert_eq!(parse_size("128k"), Ok(128 << 10));
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("64mib"), Ok(64 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("2T"), Ok(2 << 40));
        assert_eq!(parse_size("2TiB"), Ok(2 << 40));
        assert_eq!(parse_size("512B"), Ok(512));
        assert_eq!(parse_size_u32("128K"), Ok(131_072));
    }

    #[test]
    fn refused() {
        for bad in ["", "K", "-1", "1.5G", "12Q", "64Q", "1 G x", "0x10"] {
            assert!(parse_size(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_size("16777216T").is_err());
        assert!(parse_size("99999999999999999999").is_err());
        assert!(parse_size_u32("4G").is_err());
    }
}
