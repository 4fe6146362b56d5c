//! Partition type GUIDs by name: the Discoverable Partitions Specification names that
//! systemd-repart's `Type=` accepts, plus a few common non-Linux types.

use crate::raw::Guid;

const fn g(text: &[u8; 32]) -> Guid {
    let mut u = [0u8; 16];
    let mut i = 0;
    while i < 16 {
        u[i] = (nibble(text[2 * i]) << 4) | nibble(text[2 * i + 1]);
        i += 1;
    }
    Guid::from_uuid_bytes(u)
}

// Evaluated at compile time only: a typo in the table fails the build.
#[allow(clippy::panic)]
const fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => panic!("bad hex digit in the partition type table"),
    }
}

/// (alias, type GUID) pairs, in lookup order: the first alias of a GUID is its display name.
pub const PARTITION_TYPES: &[(&str, Guid)] = &[
    ("esp", g(b"c12a7328f81f11d2ba4b00a0c93ec93b")),
    ("xbootldr", g(b"bc13c2ff59e64262a352b275fd6f7172")),
    ("swap", g(b"0657fd6da4ab43c484e50933c84b4f4f")),
    ("home", g(b"933ac7e12eb44f13b8440e14e2aef915")),
    ("srv", g(b"3b8f842520e04f3b907f1a25a76f98e8")),
    ("var", g(b"4d21b016b53445c2a9fb5c16e091fd2d")),
    ("tmp", g(b"7ec6f5573bc54acab29316ef5df639d1")),
    ("user-home", g(b"773f91ef66d449b5bd83d683bf40ad16")),
    ("linux-generic", g(b"0fc63daf848347728e793d69d8477de4")),
    ("root-x86-64", g(b"4f68bce3e8cd4db196e7fbcaf984b709")),
    ("root-x86-64-verity", g(b"2c7357edebd246d9aec123d437ec2bf5")),
    (
        "root-x86-64-verity-sig",
        g(b"41092b059fc84523994f2def0408b176"),
    ),
    ("usr-x86-64", g(b"8484680c952148c69c11b0720656f69e")),
    ("usr-x86-64-verity", g(b"77ff5f63e7b64633acf41565b864c0e6")),
    (
        "usr-x86-64-verity-sig",
        g(b"e7bb33fb06cf4e818273e543b413e2e2"),
    ),
    ("root-x86", g(b"44479540f29741b29af7d131d5f0458a")),
    ("root-x86-verity", g(b"d13c5d3bb5d1422ab29f9454fdc89d76")),
    (
        "root-x86-verity-sig",
        g(b"5996fc05109c48de808b23fa0830b676"),
    ),
    ("usr-x86", g(b"75250d768cc6458ebd66bd47cc81a812")),
    ("usr-x86-verity", g(b"8f461b0d14ee4e819aa9049b6fb97abd")),
    ("usr-x86-verity-sig", g(b"974a71c0de4143c3be5d5c5ccd1ad2c0")),
    ("root-arm64", g(b"b921b0451df041c3af444c6f280d3fae")),
    ("root-arm64-verity", g(b"df3300ced69f4c92978c9bfb0f38d820")),
    (
        "root-arm64-verity-sig",
        g(b"6db69de629f44758a7a5962190f00ce3"),
    ),
    ("usr-arm64", g(b"b0e01050ee5f4390949a9101b17104e9")),
    ("usr-arm64-verity", g(b"6e11a4e7fbca4dedb9e9e1a512bb664e")),
    (
        "usr-arm64-verity-sig",
        g(b"c23ce4ff44bd4b00b2d4b41b3419e02a"),
    ),
    ("root-arm", g(b"69dad7102ce44e3cb16c21a1d49abed3")),
    ("root-arm-verity", g(b"7386cdf2203c47a9a498f2ecce45a2d6")),
    (
        "root-arm-verity-sig",
        g(b"42b0455feb11491d98d356145ba9d037"),
    ),
    ("usr-arm", g(b"7d0359a302b34f0a865c654403e70625")),
    ("usr-arm-verity", g(b"c215d7517bcd4649be906627490a4c05")),
    ("usr-arm-verity-sig", g(b"d7ff812f37d14902a810d76ba57b975a")),
    ("root-riscv64", g(b"72ec70a6cf7440e6bd494bda08e8f224")),
    (
        "root-riscv64-verity",
        g(b"b6ed5582440b4209b8da5ff7c419ea3d"),
    ),
    (
        "root-riscv64-verity-sig",
        g(b"efe0f087ea8d4469821a4c2a96a8386a"),
    ),
    ("usr-riscv64", g(b"beaec34b8442439ba40b984381ed097d")),
    ("usr-riscv64-verity", g(b"8f1056be9b0547c481d6be53128e5b54")),
    (
        "usr-riscv64-verity-sig",
        g(b"d2f9000a7a18453fb5cd4d32f77a7b32"),
    ),
    ("root-loongarch64", g(b"77055800792c4f94b39a98c91b762bb6")),
    ("usr-loongarch64", g(b"e611c702575c4cbe9a46434fa0bf7e3f")),
    ("root-ppc64-le", g(b"c31c45e63f39412e80fb4809c4980599")),
    ("usr-ppc64-le", g(b"15bb03af77e74d4ab12bc0d084f7491c")),
    ("root-s390x", g(b"5eead9a9fe094a1ea1d7520d00531306")),
    ("usr-s390x", g(b"8a4f577050aa4ed3874a99b710db6fea")),
    // Not in the Discoverable Partitions Specification; names as sgdisk and sfdisk know them.
    ("bios-boot", g(b"2168614864496e6f744e656564454649")),
    ("linux-lvm", g(b"e6d6d379f50744c2a23c238f2a3df928")),
    ("linux-raid", g(b"a19d880f05fc4d3ba006743f0f84911e")),
    ("linux-luks", g(b"ca7d7ccb63ed4c53861c1742536059cc")),
    ("msdata", g(b"ebd0a0a2b9e5443387c068b6b72699c7")),
    ("msr", g(b"e3c9e3160b5c4db8817df92df00215ae")),
];

/// The type GUID for an alias (case-insensitive) or a GUID in text form.
pub fn partition_type(name_or_guid: &str) -> Option<Guid> {
    PARTITION_TYPES
        .iter()
        .find(|(alias, _)| alias.eq_ignore_ascii_case(name_or_guid))
        .map(|&(_, guid)| guid)
        .or_else(|| Guid::parse_str(name_or_guid))
}

/// The first alias of a type GUID, if it has one.
pub fn type_alias(guid: Guid) -> Option<&'static str> {
    PARTITION_TYPES
        .iter()
        .find(|&&(_, g)| g == guid)
        .map(|&(alias, _)| alias)
}

/// GPT partition attribute bits (UEFI 2.10 table 5-8, Discoverable Partitions Specification).
pub mod attributes {
    /// Bit 0: the platform requires the partition to function.
    pub const REQUIRED: u64 = 1 << 0;
    /// Bit 1: firmware must not produce an EFI_BLOCK_IO_PROTOCOL for it.
    pub const NO_BLOCK_IO: u64 = 1 << 1;
    /// Bit 2: legacy BIOS bootable.
    pub const LEGACY_BIOS_BOOTABLE: u64 = 1 << 2;
    /// Bit 59: grow the file system to the partition size on first boot.
    pub const GROWFS: u64 = 1 << 59;
    /// Bit 60: mount read-only.
    pub const READ_ONLY: u64 = 1 << 60;
    /// Bit 63: do not mount automatically.
    pub const NO_AUTO: u64 = 1 << 63;

    /// Flag names accepted by [`parse_flag`], with their bits.
    pub const FLAGS: &[(&str, u64)] = &[
        ("required", REQUIRED),
        ("no-block-io", NO_BLOCK_IO),
        ("legacy-bios-bootable", LEGACY_BIOS_BOOTABLE),
        ("grow-fs", GROWFS),
        ("read-only", READ_ONLY),
        ("no-auto", NO_AUTO),
    ];

    /// The bits of a flag name, or of `bit:N` / a decimal bit number 0..=63.
    pub fn parse_flag(name: &str) -> Option<u64> {
        if let Some(&(_, bits)) = FLAGS.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
            return Some(bits);
        }
        let n: u32 = name.strip_prefix("bit:").unwrap_or(name).parse().ok()?;
        1u64.checked_shl(n).filter(|_| n < 64)
    }

    /// The names of the set bits: flag names where known, `bit:N` otherwise.
    pub fn names(attrs: u64) -> Vec<String> {
        (0..64)
            .filter(|b| attrs & (1u64 << b) != 0)
            .map(|b| {
                FLAGS
                    .iter()
                    .find(|(_, v)| *v == 1u64 << b)
                    .map_or_else(|| format!("bit:{b}"), |(n, _)| (*n).to_string())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_and_guids() {
        assert_eq!(
            partition_type("ESP").unwrap().to_string(),
            "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
        );
        let root = partition_type("root-x86-64").unwrap();
        assert_eq!(root.to_string(), "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709");
        assert_eq!(type_alias(root), Some("root-x86-64"));
        assert_eq!(
            partition_type("0FC63DAF-8483-4772-8E79-3D69D8477DE4"),
            partition_type("linux-generic")
        );
        assert_eq!(partition_type("nope"), None);
        assert_eq!(attributes::parse_flag("grow-fs"), Some(1 << 59));
        assert_eq!(attributes::parse_flag("bit:48"), Some(1 << 48));
        assert_eq!(attributes::parse_flag("64"), None);
        assert_eq!(
            attributes::names(attributes::NO_AUTO | 1 << 48),
            ["bit:48", "no-auto"]
        );
    }
}
