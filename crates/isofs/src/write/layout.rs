//! Plan every block of the image, then emit it front to back.
//!
//! Order: system area (0-15), PVD (16), El Torito boot record, Joliet SVD, terminator, boot
//! catalog, path tables (ISO L, M, Joliet L, M), ISO directories, Joliet directories, SUSP
//! continuation areas, file data (sort weight, then tree order), then an appended ESP
//! partition and the backup GPT.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use super::hybrid::{self, EfiPlacement, SystemAreaLayout, SystemAreaPlan};
use super::names::{iso_identifiers, iso_order, joliet_identifiers};
use super::{
    BuildReport, Builder, EfiBoot, Kind, MAX_EXTENT, Node, PlacedFile, ReservedSlot, SlotSizeField,
    Source,
};
use crate::error::{Error, Result};
use crate::raw::{
    BootCatalog, BootEntry, BootRecord, CE_LEN, ContinuationArea, DirectoryRecord, Emulation,
    FLAG_DIRECTORY, FLAG_MULTI_EXTENT, PLATFORM_BIOS, PLATFORM_EFI, PathTableRecord,
    PosixAttributes, PrimaryVolumeDescriptor, boot_info_table, dir_date, encode_device, mode,
    nm_entries, pn, push_entry, px, sl_entries, terminator, tf,
};

const BLOCK: u64 = 2048;
/// Most bytes of a boot image held in memory for patching.
const MAX_BOOT_IMAGE: u64 = 64 << 20;

fn blocks(bytes: u64) -> u64 {
    bytes.div_ceil(BLOCK)
}

fn too_big(what: &'static str) -> Error {
    Error::LimitExceeded {
        what,
        limit: u64::from(u32::MAX),
        offset: 0,
    }
}

/// Where a record's system use area goes: inline bytes and the first continuation area.
#[derive(Debug, Clone)]
struct SuPlan {
    inline: Vec<u8>,
    ce: Option<usize>,
}

#[derive(Debug, Clone)]
struct CeArea {
    sector: u32,
    offset: u32,
    data: Vec<u8>,
    next: Option<usize>,
}

impl CeArea {
    fn len(&self) -> usize {
        self.data.len() + if self.next.is_some() { CE_LEN } else { 0 }
    }
}

#[derive(Debug, Default)]
struct CeAlloc {
    areas: Vec<CeArea>,
    sector: u32,
    offset: u32,
}

impl CeAlloc {
    fn place(&mut self, data: Vec<u8>, has_next: bool) -> usize {
        let len = (data.len() + if has_next { CE_LEN } else { 0 }) as u32;
        if self.offset + len > BLOCK as u32 {
            self.sector += 1;
            self.offset = 0;
        }
        self.areas.push(CeArea {
            sector: self.sector,
            offset: self.offset,
            data,
            next: None,
        });
        self.offset += len;
        self.areas.len() - 1
    }

    fn sectors(&self) -> u32 {
        if self.areas.is_empty() {
            0
        } else {
            self.sector + 1
        }
    }

    /// Splits `entries` between the record (at most `cap` bytes) and continuation areas.
    fn pack(&mut self, entries: Vec<Vec<u8>>, cap: usize) -> SuPlan {
        let total: usize = entries.iter().map(Vec::len).sum();
        if total <= cap {
            return SuPlan {
                inline: entries.concat(),
                ce: None,
            };
        }
        let mut inline = Vec::new();
        let mut iter = entries.into_iter().peekable();
        while let Some(e) = iter.peek() {
            if inline.len() + e.len() + CE_LEN > cap {
                break;
            }
            inline.extend_from_slice(e);
            iter.next();
        }
        let rest: Vec<Vec<u8>> = iter.collect();
        let mut first = None;
        let mut prev: Option<usize> = None;
        let mut cur: Vec<u8> = Vec::new();
        let n = rest.len();
        for (i, e) in rest.into_iter().enumerate() {
            if !cur.is_empty() && cur.len() + e.len() + CE_LEN > BLOCK as usize {
                let idx = self.place(std::mem::take(&mut cur), true);
                if let Some(p) = prev {
                    self.areas[p].next = Some(idx);
                }
                first.get_or_insert(idx);
                prev = Some(idx);
            }
            cur.extend_from_slice(&e);
            if i + 1 == n {
                let idx = self.place(std::mem::take(&mut cur), false);
                if let Some(p) = prev {
                    self.areas[p].next = Some(idx);
                }
                first.get_or_insert(idx);
            }
        }
        SuPlan { inline, ce: first }
    }
}

/// Which directory record of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Dot,
    DotDot,
    Child,
    /// The record standing in the original parent for a relocated directory (CL).
    Placeholder,
}

#[derive(Debug, Clone)]
struct RecordPlan {
    node: usize,
    role: Role,
    part: u32,
    parts: u32,
    id: Vec<u8>,
    su: SuPlan,
}

struct Plan<'a> {
    b: &'a Builder,
    nodes: Vec<Node>,
    /// The node whose data and inode a node uses (itself unless a hard link).
    data_of: Vec<usize>,
    ino: Vec<u32>,
    nlink: Vec<u32>,
    iso_id: Vec<Vec<u8>>,
    joliet_id: Vec<Vec<u8>>,
    iso_children: Vec<Vec<usize>>,
    joliet_children: Vec<Vec<usize>>,
    iso_dirs: Vec<usize>,
    joliet_dirs: Vec<usize>,
    iso_records: BTreeMap<usize, Vec<RecordPlan>>,
    dir_size: Vec<u32>,
    dir_lba: Vec<u32>,
    jdir_size: Vec<u32>,
    jdir_lba: Vec<u32>,
    data_lba: Vec<u32>,
    /// Continuation areas of each directory's records, written right after the directory
    /// (libarchive reads them only there).
    ce: Vec<CeAlloc>,
    ce_lba: Vec<u32>,
    catalog_node: Option<usize>,
    catalog_lba: u32,
    bios_node: Option<usize>,
    efi_node: Option<usize>,
    extra_nodes: Vec<usize>,
    max_extent: u64,
    /// Parent in the ISO9660 tree (differs for relocated directories).
    phys_parent: Vec<usize>,
    /// Relocated directories, with their identifiers inside `rr_moved`.
    moved: BTreeMap<usize, Vec<u8>>,
    rr_moved: Option<usize>,
}

impl Plan<'_> {
    fn size(&self, i: usize) -> u64 {
        match &self.nodes[self.data_of[i]].kind {
            Kind::File { size, .. } => *size,
            Kind::BootCatalog => BLOCK,
            _ => 0,
        }
    }

    fn mtime(&self, i: usize) -> i64 {
        let o = &self.b.options;
        let t = self.nodes[i].meta.mtime.unwrap_or(o.epoch);
        if o.clamp_mtime { t.min(o.epoch) } else { t }
    }

    fn parts(&self, i: usize) -> u32 {
        let size = self.size(i);
        if matches!(self.nodes[i].kind, Kind::Dir(_)) || size == 0 {
            1
        } else {
            size.div_ceil(self.max_extent) as u32
        }
    }

    fn st_mode(&self, i: usize) -> u32 {
        let perm = self.nodes[i].meta.mode & 0o7777;
        perm | match &self.nodes[self.data_of[i]].kind {
            Kind::Dir(_) => mode::S_IFDIR,
            Kind::File { .. } | Kind::BootCatalog | Kind::HardLink(_) => mode::S_IFREG,
            Kind::Symlink(_) => mode::S_IFLNK,
            Kind::Device { block: true, .. } => mode::S_IFBLK,
            Kind::Device { block: false, .. } => mode::S_IFCHR,
            Kind::Fifo => mode::S_IFIFO,
            Kind::Socket => mode::S_IFSOCK,
        }
    }

    /// Rock Ridge entries for the record of node `i` in `role`.
    fn rr_entries(&self, i: usize, role: Role) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let entry = |sig: &[u8; 2], data: &[u8]| {
            let mut e = Vec::new();
            push_entry(&mut e, sig, data);
            e
        };
        if role == Role::Dot && i == 0 {
            out.push(entry(b"SP", &[0xBE, 0xEF, 0]));
        }
        let meta = self.nodes[i].meta;
        out.push(entry(
            b"PX",
            &px(&PosixAttributes {
                mode: self.st_mode(i),
                nlink: self.nlink[self.data_of[i]],
                uid: meta.uid,
                gid: meta.gid,
                ino: Some(self.ino[self.data_of[i]]),
            }),
        ));
        let t = self.mtime(i);
        out.push(entry(b"TF", &tf(t, t, t)));
        if matches!(role, Role::Child | Role::Placeholder) {
            out.extend(nm_entries(&self.nodes[i].name));
            match &self.nodes[i].kind {
                Kind::Symlink(target) => out.extend(sl_entries(target)),
                Kind::Device { major, minor, .. } => {
                    let (h, l) = encode_device(*major, *minor);
                    out.push(entry(b"PN", &pn(h, l)));
                }
                _ => {}
            }
        }
        if role == Role::Dot && i == 0 {
            let id = b"RRIP_1991A";
            let desc: &[u8] = b"THE ROCK RIDGE INTERCHANGE PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS";
            let src: &[u8] = b"PLEASE CONTACT DISC PUBLISHER FOR SPECIFICATION SOURCE.  SEE PUBLISHER IDENTIFIER IN PRIMARY VOLUME DESCRIPTOR FOR CONTACT INFORMATION.";
            let mut d = vec![id.len() as u8, desc.len() as u8, src.len() as u8, 1];
            d.extend_from_slice(id);
            d.extend_from_slice(desc);
            d.extend_from_slice(src);
            out.push(entry(b"ER", &d));
        }
        out
    }
}

fn plan(b: &Builder) -> Result<Plan<'_>> {
    let o = &b.options;
    if o.max_extent == 0 || !o.max_extent.is_multiple_of(BLOCK as u32) || o.max_extent > MAX_EXTENT
    {
        return Err(Error::InvalidInput {
            what: "max_extent",
            path: String::new(),
            reason: "not a multiple of 2048 between 2048 and 0xFFFFF800",
        });
    }
    let mut nodes = b.nodes.clone();
    let find = |nodes: &[Node], path: &str| -> Option<usize> {
        let mut cur = 0;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            let Kind::Dir(children) = &nodes[cur].kind else {
                return None;
            };
            cur = *children.get(part.as_bytes())?;
        }
        Some(cur)
    };
    let boot_file = |nodes: &[Node], path: &str, what: &'static str| -> Result<usize> {
        let i = find(nodes, path).ok_or(Error::InvalidInput {
            what,
            path: path.to_string(),
            reason: "not in the tree",
        })?;
        let i = match nodes[i].kind {
            Kind::HardLink(t) => t,
            _ => i,
        };
        match nodes[i].kind {
            Kind::File { size, .. } if size > 0 => Ok(i),
            _ => Err(Error::InvalidInput {
                what,
                path: path.to_string(),
                reason: "not a non-empty regular file",
            }),
        }
    };
    let bios_node = match &o.bios_boot {
        Some(bb) => Some(boot_file(&nodes, &bb.path, "BIOS boot image")?),
        None => None,
    };
    let efi_node = match &o.efi_boot {
        Some(EfiBoot::InTree { path }) => Some(boot_file(&nodes, path, "EFI boot image")?),
        _ => None,
    };
    let extra_nodes = o
        .extra_boot
        .iter()
        .map(|e| boot_file(&nodes, &e.path, "El Torito boot image"))
        .collect::<Result<Vec<_>>>()?;
    let catalog_node = if o.bios_boot.is_some() || o.efi_boot.is_some() || !o.extra_boot.is_empty()
    {
        let path = o.boot_catalog.as_str();
        let (dirs, name) = Builder::split(path)?;
        let parent = dirs.iter().try_fold(0usize, |cur, d| {
            match &nodes[cur].kind {
                Kind::Dir(children) => children.get(d.as_bytes()).copied(),
                _ => None,
            }
            .ok_or(Error::InvalidInput {
                what: "boot catalog",
                path: path.to_string(),
                reason: "parent directory not in the tree",
            })
        })?;
        let i = nodes.len();
        match &mut nodes[parent].kind {
            Kind::Dir(children) if !children.contains_key(name.as_bytes()) => {
                children.insert(name.as_bytes().to_vec(), i);
            }
            _ => {
                return Err(Error::InvalidInput {
                    what: "boot catalog",
                    path: path.to_string(),
                    reason: "path taken or parent not a directory",
                });
            }
        }
        nodes.push(Node {
            name: name.as_bytes().to_vec(),
            parent,
            kind: Kind::BootCatalog,
            meta: super::Metadata::file(0o444),
            weight: 0,
            slot: None,
        });
        Some(i)
    } else {
        None
    };
    let rr_moved = if o.relocate_deep && o.rock_ridge {
        let i = nodes.len();
        match &mut nodes[0].kind {
            Kind::Dir(children) if !children.contains_key(&b"rr_moved"[..]) => {
                children.insert(b"rr_moved".to_vec(), i);
            }
            _ => {
                return Err(Error::InvalidInput {
                    what: "relocation directory",
                    path: "rr_moved".into(),
                    reason: "name taken in the root",
                });
            }
        }
        nodes.push(Node {
            name: b"rr_moved".to_vec(),
            parent: 0,
            kind: Kind::Dir(BTreeMap::new()),
            meta: super::Metadata::directory(0o755),
            weight: 0,
            slot: None,
        });
        Some(i)
    } else {
        None
    };
    let n = nodes.len();
    let data_of: Vec<usize> = (0..n)
        .map(|i| match nodes[i].kind {
            Kind::HardLink(t) => t,
            _ => i,
        })
        .collect();
    let mut p = Plan {
        b,
        data_of,
        ino: vec![0; n],
        nlink: vec![1; n],
        iso_id: vec![Vec::new(); n],
        joliet_id: vec![Vec::new(); n],
        iso_children: vec![Vec::new(); n],
        joliet_children: vec![Vec::new(); n],
        iso_dirs: Vec::new(),
        joliet_dirs: Vec::new(),
        iso_records: BTreeMap::new(),
        dir_size: vec![0; n],
        dir_lba: vec![0; n],
        jdir_size: vec![0; n],
        jdir_lba: vec![0; n],
        data_lba: vec![0; n],
        ce: (0..n).map(|_| CeAlloc::default()).collect(),
        ce_lba: vec![0; n],
        catalog_node,
        catalog_lba: 0,
        bios_node,
        efi_node,
        extra_nodes,
        max_extent: u64::from(o.max_extent),
        phys_parent: nodes.iter().map(|n| n.parent).collect(),
        moved: BTreeMap::new(),
        rr_moved,
        nodes,
    };
    // Identifiers, sorted children, directories breadth-first (path table order).
    let mut queue = std::collections::VecDeque::from([0usize]);
    while let Some(d) = queue.pop_front() {
        let Kind::Dir(children) = &p.nodes[d].kind else {
            continue;
        };
        let kids: Vec<usize> = children.values().copied().collect();
        let named: Vec<(&[u8], bool)> = kids
            .iter()
            .map(|&c| {
                (
                    p.nodes[c].name.as_slice(),
                    matches!(p.nodes[c].kind, Kind::Dir(_)),
                )
            })
            .collect();
        let iso = iso_identifiers(&named);
        let jol = joliet_identifiers(&named);
        for (k, (i, j)) in kids.iter().zip(iso.into_iter().zip(jol)) {
            p.iso_id[*k] = i;
            p.joliet_id[*k] = j;
        }
        let mut by_iso = kids.clone();
        by_iso.sort_by(|&a, &b| iso_order(&p.iso_id[a], &p.iso_id[b]));
        let mut by_jol = kids;
        by_jol.sort_by(|&a, &b| p.joliet_id[a].cmp(&p.joliet_id[b]));
        for &c in &by_iso {
            if matches!(p.nodes[c].kind, Kind::Dir(_)) {
                queue.push_back(c);
            }
        }
        p.iso_children[d] = by_iso;
        p.joliet_children[d] = by_jol;
    }
    // Relocation of directories below ECMA-119's 8 levels (RRIP 4.1.5).
    if let Some(mv) = p.rr_moved {
        let mut depth = vec![0usize; n];
        depth[0] = 1;
        let mut queue = std::collections::VecDeque::from([0usize]);
        let mut moved = Vec::new();
        while let Some(d) = queue.pop_front() {
            for &c in &p.iso_children[d] {
                if !matches!(p.nodes[c].kind, Kind::Dir(_)) {
                    continue;
                }
                depth[c] = depth[d] + 1;
                if depth[c] > 8 {
                    depth[c] = 3;
                    p.phys_parent[c] = mv;
                    moved.push(c);
                }
                queue.push_back(c);
            }
        }
        let named: Vec<(&[u8], bool)> = moved
            .iter()
            .map(|&c| (p.nodes[c].name.as_slice(), true))
            .collect();
        let ids = iso_identifiers(&named);
        p.moved = moved.into_iter().zip(ids).collect();
    }
    // ISO directories breadth-first over the physical tree (path table order).
    let mut queue = std::collections::VecDeque::from([0usize]);
    while let Some(d) = queue.pop_front() {
        p.iso_dirs.push(d);
        let mut subdirs: Vec<usize> = p.iso_children[d]
            .iter()
            .copied()
            .filter(|&c| matches!(p.nodes[c].kind, Kind::Dir(_)) && !p.moved.contains_key(&c))
            .collect();
        if Some(d) == p.rr_moved {
            let mut m: Vec<usize> = p.moved.keys().copied().collect();
            m.sort_by(|&a, &b| iso_order(&p.moved[&a], &p.moved[&b]));
            subdirs.extend(m);
        }
        queue.extend(subdirs);
    }
    // Joliet directories breadth-first in Joliet order.
    let mut queue = std::collections::VecDeque::from([0usize]);
    while let Some(d) = queue.pop_front() {
        p.joliet_dirs.push(d);
        for &c in &p.joliet_children[d] {
            if matches!(p.nodes[c].kind, Kind::Dir(_)) {
                queue.push_back(c);
            }
        }
    }
    // Inode numbers and link counts in depth-first sorted order.
    let mut next_ino = 1u32;
    let mut stack = vec![0usize];
    while let Some(d) = stack.pop() {
        if p.data_of[d] == d {
            p.ino[d] = next_ino;
            next_ino += 1;
        }
        for &c in p.iso_children[d].iter().rev() {
            stack.push(c);
        }
    }
    for i in 0..n {
        match p.nodes[i].kind {
            Kind::HardLink(t) => p.nlink[t] += 1,
            Kind::Dir(_) => {
                p.nlink[i] = 2 + p.iso_children[i]
                    .iter()
                    .filter(|&&c| matches!(p.nodes[c].kind, Kind::Dir(_)))
                    .count() as u32;
            }
            _ => {}
        }
    }
    // ISO directory records and their sizes.
    let rr = o.rock_ridge;
    for di in 0..p.iso_dirs.len() {
        let d = p.iso_dirs[di];
        let parent = p.phys_parent[d];
        let mut recs: Vec<(usize, Role, u32, u32, Vec<u8>)> = vec![
            (d, Role::Dot, 0, 1, vec![0]),
            (parent, Role::DotDot, 0, 1, vec![1]),
        ];
        let mut kids: Vec<(usize, Role, Vec<u8>)> = p.iso_children[d]
            .iter()
            .map(|&c| {
                let role = if p.moved.contains_key(&c) {
                    Role::Placeholder
                } else {
                    Role::Child
                };
                (c, role, p.iso_id[c].clone())
            })
            .collect();
        if Some(d) == p.rr_moved {
            kids.extend(p.moved.iter().map(|(&c, id)| (c, Role::Child, id.clone())));
            kids.sort_by(|a, b| iso_order(&a.2, &b.2));
        }
        for (c, role, id) in kids {
            let parts = if role == Role::Placeholder {
                1
            } else {
                p.parts(c)
            };
            for part in 0..parts {
                recs.push((c, role, part, parts, id.clone()));
            }
        }
        let mut plans = Vec::with_capacity(recs.len());
        let mut size = 0u64;
        for (node, role, part, parts, id) in recs {
            let su = if rr {
                let mut entries = p.rr_entries(node, role);
                // CL and PL first, so they stay inline where the emitter patches them.
                if role == Role::Placeholder || (role == Role::DotDot && p.moved.contains_key(&d)) {
                    let mut e = Vec::new();
                    let sig = if role == Role::Placeholder {
                        b"CL"
                    } else {
                        b"PL"
                    };
                    push_entry(&mut e, sig, &[0u8; 8]);
                    entries.insert(0, e);
                }
                if role == Role::Child && Some(d) == p.rr_moved && p.moved.contains_key(&node) {
                    let mut e = Vec::new();
                    push_entry(&mut e, b"RE", &[]);
                    entries.push(e);
                }
                let cap = 254 - DirectoryRecord::len_for(id.len(), 0);
                p.ce[d].pack(entries, cap)
            } else {
                SuPlan {
                    inline: Vec::new(),
                    ce: None,
                }
            };
            let len =
                DirectoryRecord::len_for(id.len(), su.inline.len() + su.ce.map_or(0, |_| CE_LEN))
                    as u64;
            if size % BLOCK + len > BLOCK {
                size = size.next_multiple_of(BLOCK);
            }
            size += len;
            plans.push(RecordPlan {
                node,
                role,
                part,
                parts,
                id,
                su,
            });
        }
        p.dir_size[d] =
            u32::try_from(size.next_multiple_of(BLOCK)).map_err(|_| too_big("directory size"))?;
        p.iso_records.insert(d, plans);
    }
    if o.joliet {
        for di in 0..p.joliet_dirs.len() {
            let d = p.joliet_dirs[di];
            let mut size = 0u64;
            let mut lens = vec![34u64, 34];
            for &c in &p.joliet_children[d] {
                for _ in 0..p.parts(c) {
                    lens.push(DirectoryRecord::len_for(p.joliet_id[c].len(), 0) as u64);
                }
            }
            for len in lens {
                if size % BLOCK + len > BLOCK {
                    size = size.next_multiple_of(BLOCK);
                }
                size += len;
            }
            p.jdir_size[d] = u32::try_from(size.next_multiple_of(BLOCK))
                .map_err(|_| too_big("directory size"))?;
        }
    }
    Ok(p)
}

/// Block numbers of everything.
struct Layout {
    boot_record: Option<u32>,
    svd: Option<u32>,
    terminator: u32,
    pt_iso: (u32, u32, u32),
    pt_jol: (u32, u32, u32),
    data_order: Vec<usize>,
    volume_blocks: u32,
    efi_appended: Option<(u32, u64)>,
    total_blocks: u64,
}

fn path_table(p: &Plan<'_>, joliet: bool) -> Vec<PathTableRecord> {
    let dirs = if joliet { &p.joliet_dirs } else { &p.iso_dirs };
    let mut number = BTreeMap::new();
    let mut out = Vec::with_capacity(dirs.len());
    for (k, &d) in dirs.iter().enumerate() {
        number.insert(d, (k + 1) as u16);
        let parent = if d == 0 {
            0
        } else if joliet {
            p.nodes[d].parent
        } else {
            p.phys_parent[d]
        };
        out.push(PathTableRecord {
            extent: if joliet { p.jdir_lba[d] } else { p.dir_lba[d] },
            parent: number.get(&parent).copied().unwrap_or(1),
            identifier: if d == 0 {
                vec![0]
            } else if joliet {
                p.joliet_id[d].clone()
            } else if let Some(id) = p.moved.get(&d) {
                id.clone()
            } else {
                p.iso_id[d].clone()
            },
        });
    }
    out
}

fn allocate(p: &mut Plan<'_>) -> Result<Layout> {
    let o = &p.b.options;
    let el_torito = p.catalog_node.is_some();
    let mut lba: u64 = 17;
    let boot_record = el_torito.then(|| {
        lba += 1;
        (lba - 1) as u32
    });
    let svd = o.joliet.then(|| {
        lba += 1;
        (lba - 1) as u32
    });
    let terminator = lba as u32;
    lba += 1;
    if el_torito {
        p.catalog_lba = lba as u32;
        lba += 1;
    }
    let pt_len = |t: &[PathTableRecord]| t.iter().map(|r| r.encoded_len() as u64).sum::<u64>();
    let iso_pt = pt_len(&path_table(p, false));
    let pt_iso = (lba as u32, (lba + blocks(iso_pt)) as u32, iso_pt as u32);
    lba += 2 * blocks(iso_pt);
    let mut pt_jol = (0, 0, 0);
    if o.joliet {
        let j = pt_len(&path_table(p, true));
        pt_jol = (lba as u32, (lba + blocks(j)) as u32, j as u32);
        lba += 2 * blocks(j);
    }
    for &d in &p.iso_dirs {
        p.dir_lba[d] = lba as u32;
        lba += u64::from(p.dir_size[d]) / BLOCK;
        p.ce_lba[d] = lba as u32;
        lba += u64::from(p.ce[d].sectors());
    }
    if o.joliet {
        for &d in &p.joliet_dirs {
            p.jdir_lba[d] = lba as u32;
            lba += u64::from(p.jdir_size[d]) / BLOCK;
        }
    }
    // File data: effective weight (own, else nearest ancestor's), then tree order.
    let mut order: Vec<(i64, usize)> = Vec::new();
    let mut stack = vec![0usize];
    while let Some(d) = stack.pop() {
        for &c in p.iso_children[d].iter().rev() {
            stack.push(c);
        }
        if matches!(p.nodes[d].kind, Kind::File { .. }) && p.data_of[d] == d {
            let mut w = p.nodes[d].weight;
            let mut up = d;
            while w == 0 && up != 0 {
                up = p.nodes[up].parent;
                w = p.nodes[up].weight;
            }
            order.push((-i64::from(w), d));
        }
    }
    // Stable: ties keep tree order.
    let mut keyed: Vec<(i64, usize, usize)> = order
        .into_iter()
        .enumerate()
        .map(|(k, (w, d))| (w, k, d))
        .collect();
    keyed.sort();
    let data_order: Vec<usize> = keyed.into_iter().map(|(_, _, d)| d).collect();
    for &d in &data_order {
        let mut size = p.size(d);
        if let Some((capacity, align)) = p.nodes[d].slot {
            lba = lba.next_multiple_of(align / BLOCK);
            // A slot's extent holds its capacity, and is placed even while empty.
            if capacity > p.max_extent {
                return Err(too_big("reserved slot capacity (one extent)"));
            }
            size = size.max(capacity).max(BLOCK);
        }
        if size > 0 {
            p.data_lba[d] = u32::try_from(lba).map_err(|_| too_big("image blocks"))?;
            lba += blocks(size);
        }
    }
    if let Some(c) = p.catalog_node {
        p.data_lba[c] = p.catalog_lba;
    }
    let volume_blocks = u32::try_from(lba).map_err(|_| too_big("image blocks"))?;
    let mut efi_appended = None;
    if let Some(EfiBoot::Appended { file }) = &o.efi_boot {
        let len = std::fs::metadata(file)
            .map_err(|source| Error::IoPath {
                what: "reading",
                path: file.clone(),
                source,
            })?
            .len();
        if len == 0 {
            return Err(Error::InvalidInput {
                what: "EFI partition image",
                path: file.display().to_string(),
                reason: "empty",
            });
        }
        efi_appended = Some((lba as u32, len));
        lba += blocks(len);
    }
    if o.gpt {
        // Backup GPT: 32 sectors of entries and the header in the last 512-byte sector.
        lba += 9;
    }
    Ok(Layout {
        boot_record,
        svd,
        terminator,
        pt_iso,
        pt_jol,
        data_order,
        volume_blocks,
        efi_appended,
        total_blocks: lba,
    })
}

/// A writer that knows its position and pads with zeros.
struct Out<W: Write> {
    w: W,
    pos: u64,
}

impl<W: Write> Out<W> {
    fn write(&mut self, b: &[u8]) -> Result<()> {
        self.w.write_all(b).map_err(|source| Error::Io {
            what: "writing the image",
            source,
        })?;
        self.pos += b.len() as u64;
        Ok(())
    }

    fn zeros(&mut self, mut n: u64) -> Result<()> {
        static Z: [u8; 65536] = [0; 65536];
        while n > 0 {
            let k = n.min(Z.len() as u64) as usize;
            self.write(&Z[..k])?;
            n -= k as u64;
        }
        Ok(())
    }

    fn seek_block(&mut self, lba: u64) -> Result<()> {
        let at = lba * BLOCK;
        if at < self.pos {
            return Err(Error::InvalidInput {
                what: "layout",
                path: String::new(),
                reason: "internal: blocks out of order",
            });
        }
        self.zeros(at - self.pos)
    }

    fn pad_block(&mut self) -> Result<()> {
        let to = self.pos.next_multiple_of(BLOCK);
        self.zeros(to - self.pos)
    }
}

fn ce_entry(p: &Plan<'_>, dir: usize, area: usize) -> Vec<u8> {
    let a = &p.ce[dir].areas[area];
    let mut out = Vec::with_capacity(CE_LEN);
    ContinuationArea {
        block: p.ce_lba[dir] + a.sector,
        offset: a.offset,
        length: a.len() as u32,
    }
    .write_to(&mut out);
    out
}

fn record_for(p: &Plan<'_>, i: usize, part: u32, parts: u32, joliet: bool) -> DirectoryRecord {
    let is_dir = matches!(p.nodes[i].kind, Kind::Dir(_));
    let (extent, length) = if is_dir {
        if joliet {
            (p.jdir_lba[i], p.jdir_size[i])
        } else {
            (p.dir_lba[i], p.dir_size[i])
        }
    } else {
        let d = p.data_of[i];
        let size = p.size(d);
        let start = u64::from(part) * p.max_extent;
        let len = size.saturating_sub(start).min(p.max_extent) as u32;
        let extent = if size == 0 && p.nodes[d].slot.is_none() {
            0
        } else {
            p.data_lba[d] + (start / BLOCK) as u32
        };
        (extent, len)
    };
    DirectoryRecord {
        extended_attribute_len: 0,
        extent,
        data_length: length,
        recorded: dir_date(p.mtime(i)),
        flags: if is_dir { FLAG_DIRECTORY } else { 0 }
            | if part + 1 < parts {
                FLAG_MULTI_EXTENT
            } else {
                0
            },
        file_unit_size: 0,
        interleave_gap: 0,
        volume_sequence: 1,
        identifier: Vec::new(),
        system_use: Vec::new(),
    }
}

/// Writes a directory's records; `slot_of[k]` names the slot node record `k` lists, whose
/// data-length fields go to `fields`.
fn emit_records<W: Write>(
    out: &mut Out<W>,
    recs: &[DirectoryRecord],
    slot_of: &[Option<usize>],
    fields: &mut Vec<(usize, SlotSizeField)>,
) -> Result<()> {
    let mut sector = Vec::with_capacity(BLOCK as usize);
    let mut buf = Vec::with_capacity(256);
    for (k, r) in recs.iter().enumerate() {
        buf.clear();
        r.write_to(&mut buf);
        if sector.len() + buf.len() > BLOCK as usize {
            sector.resize(BLOCK as usize, 0);
            out.write(&sector)?;
            sector.clear();
        }
        if let Some(Some(node)) = slot_of.get(k) {
            // ECMA-119 9.1.4: the data length, both-endian, at record bytes 10 and 14.
            let at = out.pos + sector.len() as u64;
            fields.push((
                *node,
                SlotSizeField {
                    offset: at + 10,
                    big_endian: false,
                },
            ));
            fields.push((
                *node,
                SlotSizeField {
                    offset: at + 14,
                    big_endian: true,
                },
            ));
        }
        sector.extend_from_slice(&buf);
    }
    if !sector.is_empty() {
        sector.resize(BLOCK as usize, 0);
        out.write(&sector)?;
    }
    Ok(())
}

fn system_area_layout_of(p: &Plan<'_>, l: &Layout, o: &super::Options) -> SystemAreaLayout {
    let efi = match (&o.efi_boot, l.efi_appended, p.efi_node) {
        (Some(EfiBoot::Appended { .. }), Some((block, bytes)), _) => Some(EfiPlacement {
            block,
            bytes,
            appended: true,
        }),
        (_, _, Some(i)) => Some(EfiPlacement {
            block: p.data_lba[i],
            bytes: p.size(i),
            appended: false,
        }),
        _ => None,
    };
    SystemAreaLayout {
        bios_block: p.bios_node.map(|i| p.data_lba[i]),
        efi,
        volume_blocks: l.volume_blocks,
        total_bytes: l.total_blocks * BLOCK,
    }
}

/// Plans the image and says where the boot images and the volume end up.
pub(super) fn system_area_layout(b: &Builder) -> Result<SystemAreaLayout> {
    let mut p = plan(b)?;
    let l = allocate(&mut p)?;
    Ok(system_area_layout_of(&p, &l, &b.options))
}

pub(super) fn build<W: Write>(b: &Builder, w: W) -> Result<BuildReport> {
    let mut p = plan(b)?;
    let l = allocate(&mut p)?;
    let o = &b.options;
    let mut out = Out { w, pos: 0 };

    // System area.
    let sa = SystemAreaPlan {
        mbr: o.hybrid_mbr.as_ref(),
        gpt: o.gpt,
        tables: &o.partition_tables,
        layout: system_area_layout_of(&p, &l, o),
        disk_signature: o.mbr_disk_signature,
    };
    let efi_range = sa.layout.efi.map(|e| (e.block, e.bytes, e.appended));
    let (system_area, backup_gpt) = hybrid::system_area(&sa)?;
    out.write(&system_area)?;

    // Volume descriptors.
    let root_date = dir_date(p.mtime(0));
    let mut pvd = PrimaryVolumeDescriptor {
        joliet_level: None,
        system_id: o.system_id.clone(),
        volume_id: o.volume_id.clone(),
        volume_space_size: l.volume_blocks,
        logical_block_size: 2048,
        path_table_size: l.pt_iso.2,
        type_l_path_table: l.pt_iso.0,
        type_m_path_table: l.pt_iso.1,
        root_extent: p.dir_lba[0],
        root_size: p.dir_size[0],
        root_recorded: root_date,
        volume_set_id: o.volume_id.clone(),
        publisher_id: o.publisher_id.clone(),
        data_preparer_id: o.data_preparer_id.clone(),
        application_id: o.application_id.clone(),
        creation: Some(o.epoch),
        modification: Some(o.epoch),
        effective: Some(o.epoch),
    };
    out.seek_block(16)?;
    out.write(&pvd.to_bytes())?;
    if let Some(br) = l.boot_record {
        out.seek_block(br.into())?;
        out.write(
            &BootRecord {
                boot_system_id: "EL TORITO SPECIFICATION".into(),
                catalog_lba: p.catalog_lba,
            }
            .to_bytes(),
        )?;
    }
    if let Some(svd) = l.svd {
        pvd.joliet_level = Some(3);
        pvd.path_table_size = l.pt_jol.2;
        pvd.type_l_path_table = l.pt_jol.0;
        pvd.type_m_path_table = l.pt_jol.1;
        pvd.root_extent = p.jdir_lba[0];
        pvd.root_size = p.jdir_size[0];
        out.seek_block(svd.into())?;
        out.write(&pvd.to_bytes())?;
    }
    out.seek_block(l.terminator.into())?;
    out.write(&terminator())?;

    // Boot catalog.
    let mut boot_files = Vec::new();
    if p.catalog_node.is_some() {
        let mut entries = Vec::new();
        if let (Some(bb), Some(i)) = (&o.bios_boot, p.bios_node) {
            let sectors = bb
                .load_size
                .unwrap_or_else(|| p.size(i).div_ceil(512).min(0xFFFF) as u16);
            entries.push(BootEntry {
                platform: PLATFORM_BIOS,
                bootable: true,
                emulation: Emulation::NoEmulation,
                load_segment: 0,
                system_type: 0,
                sector_count: sectors,
                load_rba: p.data_lba[i],
                section_id: String::new(),
            });
            boot_files.push(PlacedFile {
                path: bb.path.clone(),
                offset: u64::from(p.data_lba[i]) * BLOCK,
                size: p.size(i),
            });
        }
        if let Some((lba, len, _)) = efi_range {
            entries.push(BootEntry {
                platform: PLATFORM_EFI,
                bootable: true,
                emulation: Emulation::NoEmulation,
                load_segment: 0,
                system_type: 0,
                sector_count: len.div_ceil(512).min(0xFFFF) as u16,
                load_rba: lba,
                section_id: String::new(),
            });
            boot_files.push(PlacedFile {
                path: match &o.efi_boot {
                    Some(EfiBoot::InTree { path }) => path.clone(),
                    Some(EfiBoot::Appended { file }) => file.display().to_string(),
                    None => String::new(),
                },
                offset: u64::from(lba) * BLOCK,
                size: len,
            });
        }
        for (e, &i) in o.extra_boot.iter().zip(&p.extra_nodes) {
            entries.push(BootEntry {
                platform: e.platform,
                bootable: true,
                emulation: Emulation::NoEmulation,
                load_segment: 0,
                system_type: 0,
                sector_count: e
                    .load_size
                    .unwrap_or_else(|| p.size(i).div_ceil(512).min(0xFFFF) as u16),
                load_rba: p.data_lba[i],
                section_id: String::new(),
            });
            boot_files.push(PlacedFile {
                path: e.path.clone(),
                offset: u64::from(p.data_lba[i]) * BLOCK,
                size: p.size(i),
            });
        }
        let catalog = BootCatalog {
            platform: entries.first().map_or(PLATFORM_BIOS, |e| e.platform),
            id_string: String::new(),
            entries,
        };
        let bytes = catalog.to_bytes();
        if bytes.len() > BLOCK as usize {
            return Err(Error::LimitExceeded {
                what: "El Torito catalog size (one block)",
                limit: BLOCK,
                offset: u64::from(p.catalog_lba) * BLOCK,
            });
        }
        out.seek_block(p.catalog_lba.into())?;
        out.write(&bytes)?;
        boot_files.push(PlacedFile {
            path: o.boot_catalog.clone(),
            offset: u64::from(p.catalog_lba) * BLOCK,
            size: BLOCK,
        });
    }

    // Path tables.
    let mut tables = vec![(false, l.pt_iso)];
    if o.joliet {
        tables.push((true, l.pt_jol));
    }
    for (joliet, (lpt, mpt, _)) in tables {
        let t = path_table(&p, joliet);
        for (lba, be) in [(lpt, false), (mpt, true)] {
            let mut buf = Vec::new();
            for r in &t {
                r.write_to(&mut buf, be);
            }
            out.seek_block(lba.into())?;
            out.write(&buf)?;
            out.pad_block()?;
        }
    }

    // ISO directories (and where the slots' size fields land in them).
    let mut slot_fields: Vec<(usize, SlotSizeField)> = Vec::new();
    for &d in &p.iso_dirs {
        out.seek_block(p.dir_lba[d].into())?;
        let plans = p.iso_records.get(&d).map(Vec::as_slice).unwrap_or_default();
        let recs: Vec<DirectoryRecord> = plans
            .iter()
            .map(|rp| {
                let mut r = record_for(&p, rp.node, rp.part, rp.parts, false);
                if matches!(rp.role, Role::Dot | Role::DotDot) {
                    r.flags = FLAG_DIRECTORY;
                }
                r.identifier = rp.id.clone();
                let mut su = rp.su.inline.clone();
                // CL (placeholder) and PL (".." of a relocated directory) lead the inline
                // entries; their block numbers are known only now.
                let link = match rp.role {
                    Role::Placeholder => {
                        r.flags = 0;
                        r.extent = 0;
                        r.data_length = 0;
                        Some(p.dir_lba[rp.node])
                    }
                    Role::DotDot if p.moved.contains_key(&d) => Some(p.dir_lba[p.nodes[d].parent]),
                    _ => None,
                };
                if let Some(lba) = link
                    && su.len() >= 12
                {
                    su[4..12].copy_from_slice(&crate::raw::both_u32_bytes(lba));
                }
                if let Some(a) = rp.su.ce {
                    su.extend(ce_entry(&p, d, a));
                }
                r.system_use = su;
                r
            })
            .collect();
        let slot_of: Vec<Option<usize>> = plans
            .iter()
            .map(|rp| {
                (matches!(rp.role, Role::Child) && p.nodes[rp.node].slot.is_some())
                    .then_some(rp.node)
            })
            .collect();
        emit_records(&mut out, &recs, &slot_of, &mut slot_fields)?;
        if !p.ce[d].areas.is_empty() {
            out.seek_block(p.ce_lba[d].into())?;
            let mut sector = vec![0u8; BLOCK as usize];
            let mut cur = 0u32;
            for (k, a) in p.ce[d].areas.iter().enumerate() {
                if a.sector != cur {
                    out.write(&sector)?;
                    sector.fill(0);
                    for _ in cur + 1..a.sector {
                        out.write(&[0u8; BLOCK as usize])?;
                    }
                    cur = a.sector;
                }
                let mut bytes = a.data.clone();
                if let Some(next) = a.next {
                    bytes.extend(ce_entry(&p, d, next));
                }
                let off = a.offset as usize;
                sector[off..off + bytes.len()].copy_from_slice(&bytes);
                let _ = k;
            }
            out.write(&sector)?;
        }
    }
    if o.joliet {
        for &d in &p.joliet_dirs {
            out.seek_block(p.jdir_lba[d].into())?;
            let mut recs = Vec::new();
            let mut slot_of = Vec::new();
            for (node, id) in [(d, vec![0u8]), (p.nodes[d].parent, vec![1u8])] {
                let mut r = record_for(&p, node, 0, 1, true);
                r.identifier = id;
                recs.push(r);
                slot_of.push(None);
            }
            for &c in &p.joliet_children[d] {
                let parts = p.parts(c);
                for part in 0..parts {
                    let mut r = record_for(&p, c, part, parts, true);
                    r.identifier = p.joliet_id[c].clone();
                    recs.push(r);
                    slot_of.push(p.nodes[c].slot.is_some().then_some(c));
                }
            }
            emit_records(&mut out, &recs, &slot_of, &mut slot_fields)?;
        }
    }

    // File data.
    let mut data_bytes = 0u64;
    let mut slots = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    for &d in &l.data_order {
        let size = p.size(d);
        if size == 0 {
            continue;
        }
        out.seek_block(p.data_lba[d].into())?;
        let Kind::File { source, .. } = &p.nodes[d].kind else {
            continue;
        };
        let is_bios = p.bios_node == Some(d);
        if is_bios {
            if size > MAX_BOOT_IMAGE {
                return Err(Error::LimitExceeded {
                    what: "BIOS boot image size",
                    limit: MAX_BOOT_IMAGE,
                    offset: 0,
                });
            }
            let mut image = Vec::with_capacity(size as usize);
            copy_source(source, size, &mut image, &mut buf)?;
            if let Some(bb) = &o.bios_boot {
                let lba = p.data_lba[d];
                // GRUB's patch first: xorriso's boot info checksum covers it.
                if bb.grub2_boot_info {
                    if image.len() < 2556 {
                        return Err(Error::InvalidInput {
                            what: "BIOS boot image",
                            path: bb.path.clone(),
                            reason: "too small for the GRUB2 boot info at byte 2548",
                        });
                    }
                    let v = u64::from(lba) * 4 + 5;
                    image[2548..2556].copy_from_slice(&v.to_le_bytes());
                }
                if bb.boot_info_table {
                    if image.len() < 64 {
                        return Err(Error::InvalidInput {
                            what: "BIOS boot image",
                            path: bb.path.clone(),
                            reason: "too small for a boot info table",
                        });
                    }
                    let t = boot_info_table(&image, 16, lba);
                    image[8..64].copy_from_slice(&t);
                }
            }
            out.write(&image)?;
        } else {
            copy_source(source, size, &mut out, &mut buf)?;
        }
        data_bytes += size;
        out.pad_block()?;
    }
    for &d in &l.data_order {
        if let Some((capacity, _)) = p.nodes[d].slot {
            slots.push(ReservedSlot {
                path: node_path(&p, d),
                offset: u64::from(p.data_lba[d]) * BLOCK,
                size: p.size(d),
                capacity,
                size_fields: slot_fields
                    .iter()
                    .filter(|(n, _)| *n == d)
                    .map(|(_, f)| *f)
                    .collect(),
            });
        }
    }
    out.seek_block(l.volume_blocks.into())?;

    // Appended ESP partition.
    if let (Some(EfiBoot::Appended { file }), Some((lba, len))) = (&o.efi_boot, l.efi_appended) {
        out.seek_block(lba.into())?;
        copy_source(&Source::Path(file.clone()), len, &mut out, &mut buf)?;
        out.pad_block()?;
    }
    let end = l.total_blocks * BLOCK;
    if let Some(backup) = backup_gpt {
        out.zeros(end - backup.len() as u64 - out.pos)?;
        out.write(&backup)?;
    }
    out.zeros(end - out.pos)?;
    out.w.flush().map_err(|source| Error::Io {
        what: "flushing the image",
        source,
    })?;
    Ok(BuildReport {
        size: out.pos,
        volume_blocks: l.volume_blocks,
        entries: (p.nodes.len() - 1) as u64,
        data_bytes,
        slots,
        boot_files,
    })
}

fn node_path(p: &Plan<'_>, mut i: usize) -> String {
    let mut parts = Vec::new();
    while i != 0 {
        parts.push(String::from_utf8_lossy(&p.nodes[i].name).into_owned());
        i = p.nodes[i].parent;
    }
    parts.reverse();
    parts.join("/")
}

trait Sink {
    fn put(&mut self, b: &[u8]) -> Result<()>;
}

impl<W: Write> Sink for Out<W> {
    fn put(&mut self, b: &[u8]) -> Result<()> {
        self.write(b)
    }
}

impl Sink for Vec<u8> {
    fn put(&mut self, b: &[u8]) -> Result<()> {
        self.extend_from_slice(b);
        Ok(())
    }
}

fn copy_source(source: &Source, size: u64, out: &mut impl Sink, buf: &mut [u8]) -> Result<()> {
    match source {
        Source::Bytes(b) => out.put(b),
        Source::Zeros => {
            let zero = vec![0u8; buf.len()];
            let mut left = size;
            while left > 0 {
                let k = left.min(zero.len() as u64) as usize;
                out.put(&zero[..k])?;
                left -= k as u64;
            }
            Ok(())
        }
        Source::Path(path) => {
            let io = |what| {
                let path = path.clone();
                move |source| Error::IoPath { what, path, source }
            };
            let mut f = std::fs::File::open(path).map_err(io("opening"))?;
            let mut left = size;
            while left > 0 {
                let k = left.min(buf.len() as u64) as usize;
                let n = f.read(&mut buf[..k]).map_err(io("reading"))?;
                if n == 0 {
                    return Err(Error::InvalidInput {
                        what: "source file",
                        path: path.display().to_string(),
                        reason: "shrank while the image was written",
                    });
                }
                out.put(&buf[..n])?;
                left -= n as u64;
            }
            Ok(())
        }
        Source::Tree(content) => {
            let mut r = content.0.open().map_err(|source| Error::Io {
                what: "opening a tree file's content",
                source,
            })?;
            let mut left = size;
            while left > 0 {
                let k = left.min(buf.len() as u64) as usize;
                let n = r.read(&mut buf[..k]).map_err(|source| Error::Io {
                    what: "reading a tree file's content",
                    source,
                })?;
                if n == 0 {
                    return Err(Error::Io {
                        what: "reading a tree file's content",
                        source: std::io::ErrorKind::UnexpectedEof.into(),
                    });
                }
                out.put(&buf[..n])?;
                left -= n as u64;
            }
            Ok(())
        }
    }
}
