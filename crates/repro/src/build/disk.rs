//! The disk image of a build (a GPT with an ESP and the root partition, optionally inside
//! LUKS2), and where things landed in the ISO.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use imgpipe_fstree::FsRead;
use imgpipe_gptpart::{
    FatBuilder, FatType, GptBuilder, PartitionSize, PartitionSpec, partition_type,
};
use imgpipe_kickstart::Model;
use sha2::{Digest, Sha256};

use super::inputs::{Input, hex};
use super::{
    Encryption, Event, OutputRecord, PartitionRecord, Placed, add_esp_files, chain, esp_size, grub,
    io, join_args, round_up, step,
};
use crate::error::{Error, Result};
use crate::seed::Seed;

/// What the disk is made of.
pub(super) struct DiskInputs<'a> {
    pub name: String,
    pub label: &'a str,
    pub model: &'a Model,
    pub rootfs: &'static str,
    pub root_image: &'a Path,
    pub root_len: u64,
    pub kernel: &'a Input,
    pub initrd: &'a Input,
    pub efi: &'a [u8],
    pub append: &'a str,
    pub timeout: u64,
    pub epoch: u64,
    pub seed: Seed,
    pub encrypt: Option<&'a Encryption>,
    /// `--part` texts (gpt create's language); empty: the kickstart's `part` lines.
    pub parts: &'a [String],
    /// The root image's reserved slots.
    pub slots: &'a [imgpipe_squashfs::erofs::ErofsReservedSlot],
    /// The ESP's reserved slots.
    pub esp_slots: &'a [super::EspSlot],
}

/// What a partition of the disk holds.
enum Role {
    /// The ESP the build fills.
    Esp,
    /// The root image (in LUKS2 when encrypted).
    Root,
    /// What its `--part` text says (`fat=`, `file=`, or nothing).
    Other(crate::disk::Contents),
}

/// Where LUKS2 puts the payload (cryptsetup's default data offset).
const LUKS_DATA_OFFSET: u64 = 16 << 20;

/// A kickstart `part` size (MiB) in bytes.
fn part_size(model: &Model, mountpoint: &str) -> Option<u64> {
    model
        .partitions
        .iter()
        .find(|p| p.mountpoint == mountpoint)
        .and_then(|p| p.size)
        .and_then(|s| u64::try_from(s).ok())
        .map(|mib| mib << 20)
}

/// Writes the disk into `file`; returns its record (the SHA-256 read back from the file).
pub(super) fn write_disk(
    d: &DiskInputs<'_>,
    file: &File,
    on: &mut dyn FnMut(Event),
) -> Result<OutputRecord> {
    if let Some(p) = d.model.partitions.iter().find(|p| p.mountpoint == "/")
        && let Some(l) = &p.label
        && l != d.label
    {
        return Err(Error::Step {
            step: format!("{}: part / --label={l}", p.location),
            message: format!(
                "the root partition is named with the build's label ({}) so that root=PARTLABEL= finds it; drop --label or make them equal",
                d.label
            ),
        });
    }
    let encrypted = d.encrypt.is_some()
        || d.model
            .partitions
            .iter()
            .any(|p| p.mountpoint == "/" && p.encryption.encrypted);
    let encryption = match (d.encrypt, encrypted) {
        (Some(e), _) => Some(e),
        (None, true) => {
            return Err(Error::Step {
                step: "part / --encrypted".into(),
                message: "give the passphrase with --encrypt --passphrase-file FILE".into(),
            });
        }
        (None, false) => None,
    };
    let esp_content = d.kernel.size
        + d.initrd.size
        + d.efi.len() as u64
        + d.esp_slots.iter().map(|s| s.room()).sum::<u64>();
    let need = d.root_len
        + if encryption.is_some() {
            LUKS_DATA_OFFSET
        } else {
            0
        };
    let esp_type =
        partition_type("esp").ok_or_else(|| step("planning the disk")("no ESP type".into()))?;
    let root_type = partition_type("root-x86-64")
        .ok_or_else(|| step("planning the disk")("no root type".into()))?;
    let mut planned: Vec<(PartitionSpec, Role)> = Vec::new();
    if d.parts.is_empty() {
        let (esp, _) = esp_size(esp_content, part_size(d.model, "/boot/efi"));
        let root_size = match part_size(d.model, "/") {
            Some(s) if s < need => {
                return Err(Error::Step {
                    step: "part / --size".into(),
                    message: format!("{} MiB cannot hold the root image ({need} bytes)", s >> 20),
                });
            }
            Some(s) => s,
            None => round_up(need, 1 << 20),
        };
        let mut e = PartitionSpec::new(esp_type, PartitionSize::Bytes(esp));
        e.name = "ESP".into();
        let mut r = PartitionSpec::new(root_type, PartitionSize::Bytes(root_size));
        r.name = d.label.to_owned();
        planned.push((e, Role::Esp));
        planned.push((r, Role::Root));
    } else {
        for text in d.parts {
            let (mut spec, contents) = crate::disk::parse_part(text)?;
            let role = if spec.type_guid == esp_type || spec.type_guid == root_type {
                if !matches!(contents, crate::disk::Contents::None) {
                    return Err(Error::Argument {
                        flag: "--part",
                        value: text.clone(),
                        reason: "the build fills the ESP and the root partition: no fat= or file= on them".into(),
                    });
                }
                if spec.type_guid == esp_type {
                    Role::Esp
                } else {
                    Role::Root
                }
            } else {
                Role::Other(contents)
            };
            if matches!(role, Role::Root) {
                if spec.name.is_empty() {
                    spec.name = d.label.to_owned();
                } else if spec.name != d.label {
                    return Err(Error::Argument {
                        flag: "--part",
                        value: text.clone(),
                        reason: format!(
                            "the root partition is named with the label ({}) so that root=PARTLABEL= finds it",
                            d.label
                        ),
                    });
                }
                if let PartitionSize::Bytes(b) = spec.size
                    && b < need
                {
                    return Err(Error::Argument {
                        flag: "--part",
                        value: text.clone(),
                        reason: format!("cannot hold the root image ({need} bytes)"),
                    });
                }
            }
            // `size=rest` takes what its contents need: the disk is made to measure.
            if spec.size == PartitionSize::Rest {
                let want = match &role {
                    Role::Esp => esp_size(esp_content, None).0,
                    Role::Root => need,
                    Role::Other(crate::disk::Contents::File(f)) => std::fs::metadata(f)
                        .map(|m| m.len())
                        .map_err(io("reading a --part file="))?,
                    Role::Other(_) => {
                        return Err(Error::Argument {
                            flag: "--part",
                            value: text.clone(),
                            reason:
                                "size=rest is for the ESP, the root partition or a file= partition"
                                    .into(),
                        });
                    }
                };
                spec.size = PartitionSize::Bytes(round_up(want, 1 << 20));
            }
            planned.push((spec, role));
        }
        let count = |esp: bool| {
            planned
                .iter()
                .filter(|(_, r)| {
                    matches!(r, Role::Esp) == esp && matches!(r, Role::Esp | Role::Root)
                })
                .count()
        };
        if count(true) != 1 || count(false) != 1 {
            return Err(Error::Argument {
                flag: "--part",
                value: d.parts.join(" "),
                reason: "give exactly one type=esp and one type=root-x86-64 partition".into(),
            });
        }
    }
    let size = planned
        .iter()
        .fold(2 << 20, |acc: u64, (p, _)| match p.size {
            PartitionSize::Bytes(b) => acc + round_up(b, 1 << 20),
            PartitionSize::Rest => acc,
        });
    let gpt = d.seed.gpt();
    let mut b = GptBuilder::new(size, gpt);
    for (spec, _) in &planned {
        b = b.partition(spec.clone());
    }
    let layout = b.plan().map_err(|e| step("planning the disk")(chain(&e)))?;
    let parts = layout.partitions();
    let find = |want: fn(&Role) -> bool| {
        planned
            .iter()
            .zip(parts.iter())
            .find(|((_, r), _)| want(r))
            .map(|(_, p)| p.clone())
            .ok_or_else(|| step("planning the disk")("a partition went missing".into()))
    };
    let esp_part = find(|r| matches!(r, Role::Esp))?;
    let root_part = find(|r| matches!(r, Role::Root))?;
    let fat_type = FatType::Fat32;
    let serial = d.seed.fat_volume_id(esp_part.index);
    let uuid = format!("{:04x}-{:04x}", serial >> 16, serial & 0xffff);
    let luks_uuid = d.seed.luks2_uuid();
    let root_arg = match encryption {
        Some(_) => format!("rd.luks.name={luks_uuid}={0} root=/dev/mapper/{0}", d.label),
        None => format!("root=PARTLABEL={}", d.label),
    };
    let cmdline = join_args(&format!("{root_arg} rootfstype={} ro", d.rootfs), d.append);
    let cfg = grub::config(
        grub::Search::FsUuid(&uuid),
        &grub::Entry {
            title: d.label,
            kernel: "/boot/vmlinuz",
            initrd: "/boot/initrd.img",
            cmdline: &cmdline,
        },
        d.timeout,
    );

    file.set_len(layout.disk_size())
        .map_err(io("sizing the disk image"))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    layout
        .write_table(&mut w)
        .map_err(|e| step("writing the partition table")(chain(&e)))?;
    on(Event::Step {
        what: "writing the disk",
        total: esp_part.size + d.root_len,
    });
    let mut fb = FatBuilder::new(esp_part.size)
        .fat_type(fat_type)
        .epoch(d.epoch)
        .volume_id(serial)
        .hidden_sectors(u32::try_from(esp_part.entry.first_lba).unwrap_or(0));
    if let Some(l) = super::label::fat_label(d.label) {
        fb = fb.label(l);
    }
    add_esp_files(&mut fb, d.efi, &cfg, Some((d.kernel, d.initrd)))?;
    for s in d.esp_slots {
        s.add_to(&mut fb)?;
    }
    w.seek(SeekFrom::Start(esp_part.offset))
        .map_err(io("seeking to the ESP"))?;
    let esp_reserved = fb
        .build_sparse(&mut w)
        .map_err(|e| step("building the ESP")(chain(&e)))?
        .reserved;
    w.flush().map_err(io("writing the disk image"))?;
    drop(w);
    let esp = esp_part.size;
    on(Event::Progress(esp));
    for ((_, role), p) in planned.iter().zip(parts.iter()) {
        match role {
            Role::Other(crate::disk::Contents::File(f)) => {
                let src = File::open(f).map_err(io("opening a --part file="))?;
                layout
                    .write_partition(
                        Window {
                            file,
                            base: 0,
                            pos: 0,
                        },
                        p.index,
                        BufReader::new(src),
                    )
                    .map_err(|e| {
                        step(format!(
                            "copying {} into partition {}",
                            f.display(),
                            p.index
                        ))(chain(&e))
                    })?;
            }
            Role::Other(crate::disk::Contents::Fat { dir, fat_type }) => {
                let mut fb = FatBuilder::new(p.size)
                    .epoch(d.epoch)
                    .volume_id(d.seed.fat_volume_id(p.index))
                    .hidden_sectors(u32::try_from(p.entry.first_lba).unwrap_or(0));
                if let Some(t) = fat_type {
                    fb = fb.fat_type(*t);
                }
                fb.add_tree(dir)
                    .map_err(|e| step(format!("reading {}", dir.display()))(chain(&e)))?;
                fb.build_sparse(Window {
                    file,
                    base: p.offset,
                    pos: 0,
                })
                .map_err(|e| {
                    step(format!(
                        "building the FAT file system of partition {}",
                        p.index
                    ))(chain(&e))
                })?;
            }
            _ => {}
        }
    }
    let root = File::open(d.root_image).map_err(io("opening the root image"))?;
    let mut reader = BufReader::with_capacity(1 << 20, root);
    match encryption {
        None => {
            let mut w = BufWriter::with_capacity(
                1 << 20,
                Window {
                    file,
                    base: root_part.offset,
                    pos: 0,
                },
            );
            let mut buf = vec![0u8; 1 << 20];
            let mut done = 0u64;
            loop {
                let n = reader
                    .read(&mut buf)
                    .map_err(io("reading the root image"))?;
                if n == 0 {
                    break;
                }
                w.write_all(buf.get(..n).unwrap_or_default())
                    .map_err(io("writing the root partition"))?;
                done += n as u64;
                on(Event::Progress(esp + done));
            }
            w.flush().map_err(io("writing the root partition"))?;
        }
        Some(enc) => {
            let mut dev = Window {
                file,
                base: root_part.offset,
                pos: 0,
            };
            let mut opts = imgpipe_luks::FormatOptions::default();
            opts.keyslot.kdf = imgpipe_luks::KdfParams::Argon2 {
                variant: imgpipe_luks::Argon2Variant::Argon2id,
                time: enc.time,
                memory: enc.memory_kib,
                cpus: enc.lanes,
            };
            opts.segment_size = imgpipe_luks::raw::SegmentSize::Bytes(round_up(d.root_len, 4096));
            let (full, _) = d.seed.luks2_format(opts.clone());
            let hdr = crate::luks::format(
                &mut dev,
                opts,
                &enc.passphrase,
                crate::luks::KeySource::Seed(d.seed),
            )?;
            let vk = full
                .volume_key
                .ok_or_else(|| step("formatting LUKS2")("no volume key".into()))?;
            let seg = hdr
                .data_segment(&vk)
                .map_err(|e| step("opening the LUKS2 data segment")(chain(&e)))?;
            seg.encrypt_stream(reader, &mut dev, &mut |n| on(Event::Progress(esp + n)))
                .map_err(|e| step("encrypting the root image")(chain(&e)))?;
        }
    }
    // Slots are plain byte patches only where the root image is stored as is.
    let mut slots = if encryption.is_some() || d.slots.is_empty() {
        if !d.slots.is_empty() {
            on(Event::Notice(
                "the disk's root is encrypted: its slots are in the ISO only".into(),
            ));
        }
        Vec::new()
    } else {
        super::slots_at(
            d.slots,
            root_part.offset,
            &format!("gpt partition {} (erofs)", root_part.index),
        )
    };
    // The ESP is never encrypted.
    slots.extend(esp_reserved.iter().map(|r| {
        super::fat_slot(
            r,
            esp_part.offset,
            &format!("gpt partition {} (fat)", esp_part.index),
        )
    }));
    if !slots.is_empty() {
        super::write_table(file, &slots)?;
    }
    // Read back for the digest: the disk is sparse, most of it is the root image just written.
    let (sha, _) = file_sha256(file)?;
    let offset_in_root = if encryption.is_some() {
        LUKS_DATA_OFFSET
    } else {
        0
    };
    Ok(OutputRecord {
        kind: "disk",
        name: d.name.clone(),
        size: layout.disk_size(),
        sha256: sha,
        partitions: parts
            .iter()
            .map(|p| PartitionRecord {
                index: p.index,
                name: p.entry.name.clone(),
                type_guid: p.entry.type_guid.to_string(),
                guid: p.entry.unique_guid.to_string(),
                offset: p.offset,
                size: p.size,
            })
            .collect(),
        files: vec![Placed {
            path: if encryption.is_some() {
                "root image (LUKS2 payload)".into()
            } else {
                "root image".into()
            },
            offset: root_part.offset + offset_in_root,
            size: d.root_len,
        }],
        cmdline,
        slots,
    })
}

/// SHA-256 and length of a whole file.
pub(super) fn file_sha256(file: &File) -> Result<(String, u64)> {
    let mut h = Sha256::new();
    let mut f = file;
    f.seek(SeekFrom::Start(0))
        .map_err(io("reading an output back"))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(io("reading an output back"))?;
        if n == 0 {
            break;
        }
        len += n as u64;
        h.update(buf.get(..n).unwrap_or_default());
    }
    Ok((hex(&h.finalize()), len))
}

/// A writer at an offset of a file (a partition).
struct Window<'f> {
    file: &'f File,
    base: u64,
    pos: u64,
}

impl Write for Window<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write_at(buf, self.base + self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Read for Window<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read_at(buf, self.base + self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Window<'_> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.pos = match pos {
            SeekFrom::Start(p) => p,
            SeekFrom::Current(d) => self
                .pos
                .checked_add_signed(d)
                .ok_or(std::io::ErrorKind::InvalidInput)?,
            SeekFrom::End(_) => return Err(std::io::ErrorKind::Unsupported.into()),
        };
        Ok(self.pos)
    }
}

/// The GPT partitions and the given files' places in a written ISO (read back).
pub(super) fn iso_layout(
    file: &File,
    paths: &[&str],
) -> Result<(Vec<PartitionRecord>, Vec<Placed>)> {
    let f = file.try_clone().map_err(io("reading the ISO back"))?;
    let reader = imgpipe_isofs::Reader::open(BufReader::new(f))
        .map_err(|e| step("reading the ISO back")(chain(&e)))?;
    let entries = reader
        .walk()
        .map_err(|e| step("reading the ISO back")(chain(&e)))?;
    let mut files = Vec::new();
    for want in paths {
        if let Some((e, node)) = entries.iter().find(|(e, _)| e.path == want.as_bytes()) {
            let ext = reader
                .extents(node)
                .map_err(|e| step("reading the ISO back")(chain(&e)))?;
            let offset = ext
                .and_then(|x| x.first().map(|x| x.image_offset))
                .unwrap_or(0);
            files.push(Placed {
                path: format!("/{want}"),
                offset,
                size: e.size,
            });
        }
    }
    let mut g = file.try_clone().map_err(io("reading the ISO back"))?;
    let partitions = match imgpipe_gptpart::read_gpt(&mut g) {
        Ok(gpt) => gpt
            .partitions
            .iter()
            .map(|p| PartitionRecord {
                index: p.index,
                name: p.name.clone(),
                type_guid: p.type_guid.to_string(),
                guid: p.unique_guid.to_string(),
                offset: p.first_lba * gpt.sector_size,
                size: p.size,
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    Ok((partitions, files))
}
