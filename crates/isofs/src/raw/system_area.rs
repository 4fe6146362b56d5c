//! The system area: the first 16 sectors (32 KiB), where hybrid images keep an MBR and a GPT.

use serde::Serialize;

/// A partition found in the system area's MBR or GPT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SystemAreaPartition {
    /// Which table it is from: "mbr" or "gpt".
    pub table: &'static str,
    /// 1-based index in that table.
    pub index: u32,
    /// MBR type byte as hex, or the GPT type GUID.
    pub partition_type: String,
    /// Start in 512-byte sectors.
    pub start: u64,
    /// Length in 512-byte sectors.
    pub sectors: u64,
}

/// What the system area holds.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct SystemArea {
    /// Whether bytes 510..512 are 0x55 0xAA.
    pub mbr: bool,
    /// Whether a GPT header ("EFI PART") is at byte 512.
    pub gpt: bool,
    /// Partitions of both tables.
    pub partitions: Vec<SystemAreaPartition>,
    /// Whether any byte of the system area is non-zero.
    pub used: bool,
}

fn guid_text(g: &[u8]) -> String {
    format!(
        "{:02X}{:02X}{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}",
        g[3],
        g[2],
        g[1],
        g[0],
        g[5],
        g[4],
        g[7],
        g[6],
        g[8],
        g[9],
        g[10],
        g[11],
        g[12],
        g[13],
        g[14],
        g[15]
    )
}

impl SystemArea {
    /// Reads the system area from the first bytes of an image (up to 32 KiB are looked at).
    pub fn parse(b: &[u8]) -> Self {
        let area = &b[..b.len().min(32768)];
        let mut sa = SystemArea {
            used: area.iter().any(|&x| x != 0),
            ..Default::default()
        };
        if area.len() >= 512 && area[510..512] == [0x55, 0xAA] {
            sa.mbr = true;
            for i in 0..4usize {
                let e = &area[446 + 16 * i..462 + 16 * i];
                let start = u32::from_le_bytes([e[8], e[9], e[10], e[11]]);
                let sectors = u32::from_le_bytes([e[12], e[13], e[14], e[15]]);
                if e[4] != 0 || sectors != 0 {
                    sa.partitions.push(SystemAreaPartition {
                        table: "mbr",
                        index: i as u32 + 1,
                        partition_type: format!("0x{:02x}", e[4]),
                        start: start.into(),
                        sectors: sectors.into(),
                    });
                }
            }
        }
        if area.len() >= 1024 && &area[512..520] == b"EFI PART" {
            sa.gpt = true;
            let h = &area[512..1024];
            let le64 = |o: usize| {
                let mut a = [0u8; 8];
                a.copy_from_slice(&h[o..o + 8]);
                u64::from_le_bytes(a)
            };
            let entry_lba = le64(72);
            let count = u32::from_le_bytes([h[80], h[81], h[82], h[83]]).min(256) as usize;
            let esz = u32::from_le_bytes([h[84], h[85], h[86], h[87]]) as usize;
            if esz >= 128 {
                for i in 0..count {
                    let Some(off) = (entry_lba as usize)
                        .checked_mul(512)
                        .and_then(|o| o.checked_add(i * esz))
                    else {
                        break;
                    };
                    let Some(e) = off.checked_add(128).and_then(|end| area.get(off..end)) else {
                        break;
                    };
                    if e[..16].iter().all(|&x| x == 0) {
                        continue;
                    }
                    let first = u64::from_le_bytes(e[32..40].try_into().unwrap_or([0; 8]));
                    let last = u64::from_le_bytes(e[40..48].try_into().unwrap_or([0; 8]));
                    sa.partitions.push(SystemAreaPartition {
                        table: "gpt",
                        index: i as u32 + 1,
                        partition_type: guid_text(&e[..16]),
                        start: first,
                        sectors: last.saturating_sub(first).saturating_add(1),
                    });
                }
            }
        }
        sa
    }
}
