//! Disk assembly: a GPT disk described by the `--part` language, planned, then written with
//! its partitions' contents (a FAT file system built from a directory, or a file's bytes).
//!
//! ```no_run
//! use imgpipe_repro::{DiskPlan, DiskRequest};
//!
//! let mut req = DiskRequest::new(64 << 20);
//! req.epoch = 1_700_000_000;
//! req.parts = vec![
//!     "type=esp,size=32M,label=ESP,fat=build/esp".into(),
//!     "type=root-x86-64,size=rest,file=build/root.sqfs".into(),
//! ];
//! let plan = DiskPlan::parse(&req)?;
//! let file = std::fs::File::create("disk.img").unwrap();
//! plan.write_to(&file, &mut |_bytes| {})?;
//! # Ok::<(), imgpipe_repro::Error>(())
//! ```
//!
//! # The `--part` language
//! `type=ALIAS|GUID,size=SIZE|rest[,label=NAME][,guid=GUID][,flags=F+F][,fat=DIR]
//! [,fat-type=12|16|32][,file=PATH]`; flags are `required`, `no-block-io`,
//! `legacy-bios-bootable`, `grow-fs`, `read-only`, `no-auto` or `bit:N`. Sizes are bytes or
//! carry a `K`, `M`, `G` or `T` suffix (powers of 1024, [`parse_size`]).
//!
//! # Determinism
//! Every GUID and FAT volume id derives from one [`Seed`] ([`Seed`]); without one the
//! seed derives from the layout ([`DiskRequest::default_seed`]), leaving out the paths of
//! `fat=` and `file=` so that another build directory gives the same disk. FAT timestamps are
//! the epoch.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use imgpipe_gptpart::{
    FatBuilder, FatType, GptBuilder, GptLayout, Guid, HybridEntry, PartitionSize, PartitionSpec,
    attributes, partition_type,
};

use crate::error::{Error, Result};
use crate::seed::Seed;

/// Parses `512`, `64K`, `64M`, `1G`, `2T` (also `KB`/`KiB`, ...; powers of 1024).
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, suffix) = t.split_at(digits);
    let n: u64 = num.parse().ok()?;
    let shift = match suffix.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => return None,
    };
    n.checked_mul(1 << shift)
}

/// What a disk is to be: its size and geometry, its partitions in the `--part` language, and
/// where its identifiers come from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DiskRequest {
    /// Disk size in bytes.
    pub size: u64,
    /// Logical sector size (512 or 4096).
    pub sector_size: u64,
    /// Partition alignment in bytes (default 1 MiB).
    pub alignment: u64,
    /// The seed; `None` derives one from the layout ([`DiskRequest::default_seed`]).
    pub seed: Option<Seed>,
    /// An explicit disk GUID instead of the derived one.
    pub disk_guid: Option<Guid>,
    /// Timestamps inside generated file systems.
    pub epoch: u64,
    /// The partitions, one `--part` text each.
    pub parts: Vec<String>,
    /// Partitions mirrored into a hybrid MBR: `N:TYPE[:boot]`, TYPE in hex.
    pub hybrid_mbr: Vec<String>,
}

impl DiskRequest {
    /// A disk of `size` bytes: 512-byte sectors, 1 MiB alignment, no partitions yet.
    pub fn new(size: u64) -> Self {
        Self {
            size,
            sector_size: 512,
            alignment: 1 << 20,
            seed: None,
            disk_guid: None,
            epoch: 0,
            parts: Vec::new(),
            hybrid_mbr: Vec::new(),
        }
    }

    /// The seed used without `--seed`: SHA-256 of the size, sector size, alignment and the
    /// `--part` texts with the paths of `fat=` and `file=` left out. No randomness, so the
    /// same layout gives the same disk.
    pub fn default_seed(&self) -> Seed {
        let layout: Vec<String> = self
            .parts
            .iter()
            .map(|spec| {
                spec.split(',')
                    .map(|item| match item.split_once('=') {
                        Some((key @ ("fat" | "file"), _)) => key,
                        _ => item,
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect();
        let material = format!(
            "imgpipe gpt create\0{}\0{}\0{}\0{}",
            self.size,
            self.sector_size,
            self.alignment,
            layout.join("\0")
        );
        Seed::from_material(material.as_bytes())
    }
}

/// What goes into a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Contents {
    /// Nothing: the partition reads as zeros.
    None,
    /// A FAT file system built from a host directory.
    Fat {
        /// The directory.
        dir: PathBuf,
        /// The FAT type; `None` chooses by size.
        fat_type: Option<FatType>,
    },
    /// A host file's bytes.
    File(PathBuf),
}

fn bad(flag: &'static str, value: &str, reason: impl Into<String>) -> Error {
    Error::Argument {
        flag,
        value: value.to_owned(),
        reason: reason.into(),
    }
}

/// Parses one `--part` text (see the [module docs](crate::disk)).
pub fn parse_part(text: &str) -> Result<(PartitionSpec, Contents)> {
    let mut ty = None;
    let mut size = None;
    let mut label = String::new();
    let mut guid = None;
    let mut flags = 0u64;
    let mut fat = None;
    let mut fat_type = None;
    let mut file = None;
    for kv in text.split(',') {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| bad("--part", text, format!("expected key=value, got {kv:?}")))?;
        match k {
            "type" => {
                ty = Some(partition_type(v).ok_or_else(|| {
                    bad(
                        "--part",
                        text,
                        format!(
                            "unknown partition type {v:?} (an alias like esp, root-x86-64, \
                             linux-generic, or a GUID)"
                        ),
                    )
                })?)
            }
            "size" => {
                size = Some(if v == "rest" {
                    PartitionSize::Rest
                } else {
                    PartitionSize::Bytes(parse_size(v).ok_or_else(|| {
                        bad(
                            "--part",
                            text,
                            format!("bad size {v:?} (bytes, or with a K, M, G or T suffix)"),
                        )
                    })?)
                })
            }
            "label" | "name" => label = v.to_string(),
            "guid" | "uuid" => {
                guid = Some(
                    v.parse::<Guid>()
                        .map_err(|e| bad("--part", text, format!("guid {v:?}: {e}")))?,
                )
            }
            "flags" | "attrs" => {
                for f in v.split('+').filter(|f| !f.is_empty()) {
                    flags |= attributes::parse_flag(f)
                        .ok_or_else(|| bad("--part", text, format!("unknown flag {f:?}")))?;
                }
            }
            "fat" => fat = Some(PathBuf::from(v)),
            "fat-type" => {
                fat_type = Some(match v {
                    "12" => FatType::Fat12,
                    "16" => FatType::Fat16,
                    "32" => FatType::Fat32,
                    _ => return Err(bad("--part", text, "fat-type must be 12, 16 or 32")),
                })
            }
            "file" => file = Some(PathBuf::from(v)),
            _ => return Err(bad("--part", text, format!("unknown key {k:?}"))),
        }
    }
    let ty = ty.ok_or_else(|| bad("--part", text, "type= is required"))?;
    let size = size.ok_or_else(|| bad("--part", text, "size= is required"))?;
    let mut spec = PartitionSpec::new(ty, size).name(label).attributes(flags);
    if let Some(g) = guid {
        spec = spec.unique_guid(g);
    }
    let contents = match (fat, file) {
        (Some(_), Some(_)) => return Err(bad("--part", text, "fat= and file= exclude each other")),
        (Some(dir), None) => Contents::Fat { dir, fat_type },
        (None, Some(f)) => Contents::File(f),
        (None, None) => Contents::None,
    };
    Ok((spec, contents))
}

/// Parses one `--hybrid-mbr` text: `N:TYPE[:boot]`, TYPE in hex (e.g. `1:ef:boot`).
pub fn parse_hybrid(text: &str) -> Result<HybridEntry> {
    let mut it = text.split(':');
    let (Some(n), Some(ty)) = (it.next(), it.next()) else {
        return Err(bad("--hybrid-mbr", text, "expected N:TYPE[:boot]"));
    };
    let bootable = match it.next() {
        None => false,
        Some("boot") => true,
        Some(x) => return Err(bad("--hybrid-mbr", text, format!("unexpected {x:?}"))),
    };
    Ok(HybridEntry {
        partition: n
            .parse()
            .map_err(|_| bad("--hybrid-mbr", text, "the partition number is not a number"))?,
        mbr_type: u8::from_str_radix(ty.trim_start_matches("0x"), 16)
            .map_err(|_| bad("--hybrid-mbr", text, "the MBR type must be hex, e.g. ef"))?,
        bootable,
    })
}

/// A planned disk: every partition placed, every GUID chosen, contents known. Nothing is
/// read from the contents' paths until [`DiskPlan::write_to`].
#[derive(Debug, Clone)]
pub struct DiskPlan {
    layout: GptLayout,
    contents: Vec<(String, Contents)>,
    seed: Seed,
    epoch: u64,
}

fn gpt_err(step: impl Into<String>) -> impl FnOnce(imgpipe_gptpart::Error) -> Error {
    let step = step.into();
    move |e| Error::Step {
        step,
        message: e.to_string(),
    }
}

impl DiskPlan {
    /// Parses the request's texts and places every partition.
    pub fn parse(req: &DiskRequest) -> Result<Self> {
        let seed = req.seed.unwrap_or_else(|| req.default_seed());
        let mut b = GptBuilder::new(req.size, seed.gpt())
            .sector_size(req.sector_size)
            .alignment(req.alignment);
        if let Some(g) = req.disk_guid {
            b = b.disk_guid(g);
        }
        let mut contents = Vec::with_capacity(req.parts.len());
        for p in &req.parts {
            let (spec, c) = parse_part(p)?;
            contents.push((spec.name.clone(), c));
            b = b.partition(spec);
        }
        let hybrid = req
            .hybrid_mbr
            .iter()
            .map(|h| parse_hybrid(h))
            .collect::<Result<Vec<_>>>()?;
        if !hybrid.is_empty() {
            b = b.hybrid_mbr(hybrid);
        }
        let layout = b.plan().map_err(gpt_err("planning the partition table"))?;
        Ok(Self {
            layout,
            contents,
            seed,
            epoch: req.epoch,
        })
    }

    /// The planned table.
    pub fn layout(&self) -> &GptLayout {
        &self.layout
    }

    /// The seed every identifier derives from.
    pub fn seed(&self) -> Seed {
        self.seed
    }

    /// Bytes of partitions that get contents (what [`DiskPlan::write_to`] reports progress of).
    pub fn content_bytes(&self) -> u64 {
        self.contents
            .iter()
            .zip(self.layout.partitions())
            .filter(|((_, c), _)| !matches!(c, Contents::None))
            .map(|(_, p)| p.size)
            .sum()
    }

    /// Writes the disk into `file` (which it sizes: bytes not written stay holes reading as
    /// zero): the table, then every partition's contents. `progress` is called with the
    /// bytes of contents written since its last call. The caller syncs and renames.
    pub fn write_to(&self, file: &File, progress: &mut dyn FnMut(u64)) -> Result<()> {
        let io = |what| move |source| Error::Io { what, source };
        file.set_len(self.layout.disk_size())
            .map_err(io("sizing the disk image"))?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        self.layout
            .write_table(&mut w)
            .map_err(gpt_err("writing the partition table"))?;
        for ((name, c), p) in self.contents.iter().zip(self.layout.partitions()) {
            match c {
                Contents::None => {}
                Contents::File(src) => {
                    let r = File::open(src).map_err(|source| Error::HostIo {
                        what: "opening",
                        path: src.clone(),
                        source,
                    })?;
                    let counted = Counted {
                        inner: r,
                        progress: &mut *progress,
                    };
                    self.layout
                        .write_partition(&mut w, p.index, counted)
                        .map_err(gpt_err(format!(
                            "copying {} into partition {}",
                            src.display(),
                            p.index
                        )))?;
                }
                Contents::Fat { dir, fat_type } => {
                    let ss = u16::try_from(self.layout.sector_size()).unwrap_or(512);
                    let mut fb = FatBuilder::new(p.size)
                        .sector_size(ss)
                        .epoch(self.epoch)
                        .volume_id(self.seed.fat_volume_id(p.index))
                        .hidden_sectors(u32::try_from(p.entry.first_lba).unwrap_or(0));
                    // The partition name doubles as the volume label when FAT can store it.
                    if !name.is_empty()
                        && name.len() <= 11
                        && name
                            .bytes()
                            .all(|c| c.is_ascii_alphanumeric() || b"-_ ".contains(&c))
                    {
                        fb = fb.label(name.as_str());
                    }
                    if let Some(t) = fat_type {
                        fb = fb.fat_type(*t);
                    }
                    fb.add_tree(dir)
                        .map_err(gpt_err(format!("reading {}", dir.display())))?;
                    w.seek(SeekFrom::Start(p.offset))
                        .map_err(io("seeking to a partition"))?;
                    // The file was just given its length: free space can stay a hole.
                    fb.build_sparse(&mut w).map_err(gpt_err(format!(
                        "building the FAT file system of partition {}",
                        p.index
                    )))?;
                    progress(p.size);
                }
            }
        }
        w.flush().map_err(io("writing the disk image"))?;
        Ok(())
    }
}

/// A reader that reports how many bytes it read.
struct Counted<'p, R> {
    inner: R,
    progress: &'p mut dyn FnMut(u64),
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.progress)(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("64K"), Some(64 << 10));
        assert_eq!(parse_size("1MiB"), Some(1 << 20));
        assert_eq!(parse_size("2g"), Some(2 << 30));
        assert_eq!(parse_size("1X"), None);
        assert_eq!(parse_size("99999999999T"), None);
    }

    #[test]
    fn part_language() {
        let (spec, c) = parse_part("type=esp,size=32M,label=ESP,fat=esp,flags=required").unwrap();
        assert_eq!(spec.size, PartitionSize::Bytes(32 << 20));
        assert_eq!(spec.name, "ESP");
        assert_eq!(spec.attributes, 1);
        assert!(matches!(c, Contents::Fat { fat_type: None, .. }));
        for bad in [
            "size=1M",
            "type=esp",
            "type=esp,size=1M,fat=a,file=b",
            "type=nope,size=1M",
            "type=esp,size=1Q",
            "type=esp,size=1M,colour=red",
        ] {
            let e = parse_part(bad).unwrap_err().to_string();
            assert!(e.starts_with("--part "), "{e}");
        }
        assert_eq!(
            parse_hybrid("1:ef:boot").unwrap(),
            HybridEntry {
                partition: 1,
                mbr_type: 0xef,
                bootable: true
            }
        );
        assert!(parse_hybrid("1").is_err());
    }

    #[test]
    fn default_seed_ignores_paths() {
        let mut a = DiskRequest::new(8 << 20);
        a.parts = vec!["type=esp,size=rest,fat=/a/b".into()];
        let mut b = a.clone();
        b.parts = vec!["type=esp,size=rest,fat=/c".into()];
        assert_eq!(a.default_seed(), b.default_seed());
        b.size = 16 << 20;
        assert_ne!(a.default_seed(), b.default_seed());
    }

    #[test]
    fn plans_and_writes_a_disk() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("esp")).unwrap();
        std::fs::write(dir.path().join("esp/hello.txt"), b"hello\n").unwrap();
        let payload = dir.path().join("payload");
        std::fs::write(&payload, vec![7u8; 5000]).unwrap();
        let mut req = DiskRequest::new(8 << 20);
        req.seed = Seed::parse("0123456789abcdef0123456789abcdef");
        req.parts = vec![
            format!(
                "type=esp,size=4M,label=ESP,fat={}",
                dir.path().join("esp").display()
            ),
            format!("type=linux-generic,size=rest,file={}", payload.display()),
        ];
        let plan = DiskPlan::parse(&req).unwrap();
        let out = dir.path().join("disk.img");
        let f = File::create(&out).unwrap();
        let mut seen = 0;
        plan.write_to(&f, &mut |n| seen += n).unwrap();
        assert!(seen >= 5000 + (4 << 20));
        let d = imgpipe_gptpart::read_gpt(File::open(&out).unwrap()).unwrap();
        assert_eq!(
            d.disk_guid.to_string(),
            "6913F4B6-6690-4A57-A202-F1B53C56DBDF"
        );
        let (off, _) = d.partition_range(2).unwrap();
        let bytes = std::fs::read(&out).unwrap();
        assert_eq!(bytes[off as usize..off as usize + 5000], [7u8; 5000]);
    }
}
