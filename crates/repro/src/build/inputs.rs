//! The inputs of a build found and fingerprinted: the kernel, initrd and boot loaders (given
//! or looked up in the tree), the epoch, and the digest of everything that goes in.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use imgpipe_fstree::{Content, FileType, Tree};
use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// A file that goes into the image: from the host, or from the root tree.
#[derive(Debug, Clone)]
pub(crate) struct Input {
    /// How the manifest names it: a host file's name, or the path in the tree (`/boot/...`).
    pub name: String,
    /// Where its bytes are.
    pub content: Content,
    /// Its size.
    pub size: u64,
    /// Its modification time (for the default epoch).
    pub mtime: i64,
}

impl Input {
    /// A host file given by a flag.
    pub(crate) fn host(flag: &'static str, path: &Path) -> Result<Self> {
        let m = std::fs::metadata(path).map_err(|source| Error::HostIo {
            what: match flag {
                "--kickstart" => "--kickstart: cannot read",
                "--kernel" => "--kernel: cannot read",
                "--initrd" => "--initrd: cannot read",
                "--efi-loader" => "--efi-loader: cannot read",
                "--bios-loader" => "--bios-loader: cannot read",
                "--bios-hybrid-mbr" => "--bios-hybrid-mbr: cannot read",
                _ => "cannot read",
            },
            path: path.to_path_buf(),
            source,
        })?;
        if !m.is_file() {
            return Err(Error::NotAFile {
                option: flag,
                path: path.display().to_string(),
                within: None,
            });
        }
        use std::os::unix::fs::MetadataExt;
        Ok(Self {
            name: path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
            content: Content::Host(path.to_path_buf()),
            size: m.len(),
            mtime: m.mtime(),
        })
    }

    /// A regular file of the tree.
    pub(crate) fn in_tree(tree: &Tree, path: &str) -> Option<Self> {
        let n = tree.get(path.as_bytes())?;
        (n.entry.file_type == FileType::File).then(|| Self {
            name: format!("/{path}"),
            content: n.content.clone(),
            size: n.entry.size,
            mtime: n.entry.meta.mtime,
        })
    }

    /// Its bytes (boot loaders and MBR code are small).
    pub(crate) fn read_small(&self, max: u64) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        self.content
            .open()
            .and_then(|r| r.take(max.saturating_add(1)).read_to_end(&mut v))
            .map_err(|e| Error::Step {
                step: format!("reading {}", self.name),
                message: e.to_string(),
            })?;
        if v.len() as u64 > max {
            return Err(Error::Step {
                step: format!("reading {}", self.name),
                message: format!("larger than {max} bytes"),
            });
        }
        Ok(v)
    }

    /// SHA-256 of its bytes, hex.
    pub(crate) fn sha256(&self) -> Result<String> {
        content_sha256(&self.content).map_err(|e| Error::Step {
            step: format!("reading {}", self.name),
            message: e.to_string(),
        })
    }
}

fn content_sha256(c: &Content) -> std::io::Result<String> {
    let mut h = Sha256::new();
    let mut r = c.open()?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(buf.get(..n).unwrap_or_default());
    }
    Ok(hex(&h.finalize()))
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A kernel and initrd found in the tree.
#[derive(Debug, Clone)]
pub(crate) struct KernelPair {
    pub version: Option<String>,
    pub kernel: Input,
    pub initrd: Input,
}

/// Finds the kernel and initrd: `/boot/vmlinuz-V` with `/boot/initramfs-V.img` (Fedora) or
/// `/boot/initrd.img-V` (Debian), or `/usr/lib/modules/V/vmlinuz` with an initramfs beside
/// it; `version` picks one when there are several.
pub(crate) fn find_kernel(tree: &Tree, root: &Path, version: Option<&str>) -> Result<KernelPair> {
    let mut found: Vec<(String, String)> = Vec::new();
    for n in tree.children(b"boot") {
        let name = String::from_utf8_lossy(n.entry.name()).into_owned();
        if let Some(v) = name.strip_prefix("vmlinuz-")
            && n.entry.file_type == FileType::File
            && !v.is_empty()
        {
            found.push((v.to_owned(), format!("boot/{name}")));
        }
    }
    for dir in ["usr/lib/modules", "lib/modules"] {
        for n in tree.children(dir.as_bytes()) {
            let v = String::from_utf8_lossy(n.entry.name()).into_owned();
            let k = format!("{dir}/{v}/vmlinuz");
            if Input::in_tree(tree, &k).is_some() && !found.iter().any(|(x, _)| x == &v) {
                found.push((v, k));
            }
        }
    }
    let versions: Vec<&str> = found.iter().map(|(v, _)| v.as_str()).collect();
    let (v, kpath) = match version {
        Some(want) => found
            .iter()
            .find(|(v, _)| v == want)
            .ok_or_else(|| Error::Argument {
                flag: "--kernel-version",
                value: want.to_owned(),
                reason: if versions.is_empty() {
                    format!("{} holds no kernel", root.display())
                } else {
                    format!("{} holds {}", root.display(), versions.join(", "))
                },
            })?,
        None => match found.as_slice() {
            [one] => one,
            [] => {
                return Err(Error::Step {
                    step: format!("finding the kernel in {}", root.display()),
                    message: "no /boot/vmlinuz-* or /usr/lib/modules/*/vmlinuz: install a kernel in the tree, or give --kernel and --initrd".into(),
                });
            }
            _ => {
                return Err(Error::Step {
                    step: format!("finding the kernel in {}", root.display()),
                    message: format!(
                        "several kernels ({}): pick one with --kernel-version",
                        versions.join(", ")
                    ),
                });
            }
        },
    };
    let candidates = [
        format!("boot/initramfs-{v}.img"),
        format!("boot/initrd.img-{v}"),
        format!("usr/lib/modules/{v}/initramfs.img"),
        format!("usr/lib/modules/{v}/initrd"),
    ];
    let initrd = candidates
        .iter()
        .find_map(|p| Input::in_tree(tree, p))
        .ok_or_else(|| Error::Step {
            step: format!("finding the initrd of kernel {v} in {}", root.display()),
            message: format!(
                "none of /{}: build one in the tree, or give --initrd",
                candidates.join(", /")
            ),
        })?;
    let kernel = Input::in_tree(tree, kpath).ok_or_else(|| Error::Step {
        step: format!("reading /{kpath}"),
        message: "not a regular file".into(),
    })?;
    Ok(KernelPair {
        version: Some(v.clone()),
        kernel,
        initrd,
    })
}

/// The first of `paths` (glob `*` allowed as one whole component) that is a file of the tree.
pub(crate) fn find_in_tree(tree: &Tree, paths: &[&str]) -> Option<Input> {
    for p in paths {
        match p.split_once("/*/") {
            None => {
                if let Some(i) = Input::in_tree(tree, p) {
                    return Some(i);
                }
            }
            Some((dir, rest)) => {
                for n in tree.children(dir.as_bytes()) {
                    let path = format!("{dir}/{}/{rest}", String::from_utf8_lossy(n.entry.name()));
                    if let Some(i) = Input::in_tree(tree, &path) {
                        return Some(i);
                    }
                }
            }
        }
    }
    None
}

/// The digest of a tree: SHA-256 over one record per entry in tree order (path, type,
/// mode, owner, mtime, size, link target, device, xattrs, SHA-256 of the content).
#[derive(Debug, Clone, Serialize)]
pub struct TreeDigest {
    /// Entries, the root included.
    pub entries: u64,
    /// Bytes of file content.
    pub content_bytes: u64,
    /// The digest.
    pub sha256: String,
    /// The newest modification time in the tree.
    #[serde(skip)]
    pub newest_mtime: i64,
}

/// Hashes every file of `tree` (in parallel) and the records of every entry.
pub(crate) fn tree_digest(tree: &Tree, on_bytes: &(dyn Fn(u64) + Sync)) -> Result<TreeDigest> {
    let nodes: Vec<_> = tree.iter().collect();
    let hashes: Vec<std::io::Result<String>> = nodes
        .par_iter()
        .map(|n| {
            if n.entry.file_type == FileType::File && n.entry.size > 0 {
                let h = content_sha256(&n.content);
                on_bytes(n.entry.size);
                h
            } else {
                Ok(String::new())
            }
        })
        .collect();
    let mut h = Sha256::new();
    let mut bytes = 0u64;
    let mut newest = i64::MIN;
    for (n, c) in nodes.iter().zip(hashes) {
        let e = &n.entry;
        let c = c.map_err(|err| Error::Step {
            step: format!("reading /{}", e.display_path().trim_start_matches('/')),
            message: err.to_string(),
        })?;
        if e.file_type == FileType::File {
            bytes += e.size;
        }
        newest = newest.max(e.meta.mtime);
        let record = format!(
            "{}\0{}\0{:o}\0{}\0{}\0{}\0{}\0{}\0{:?}\0{}\0",
            hex(&e.path),
            e.file_type.name(),
            e.meta.mode,
            e.meta.uid,
            e.meta.gid,
            e.meta.mtime,
            e.size,
            e.target.as_deref().map(hex).unwrap_or_default(),
            e.rdev,
            c
        );
        h.update(record.as_bytes());
        for (k, v) in &e.meta.xattrs {
            h.update(hex(k).as_bytes());
            h.update(b"=");
            h.update(hex(v).as_bytes());
            h.update(b"\0");
        }
        h.update(b"\n");
    }
    Ok(TreeDigest {
        entries: nodes.len() as u64,
        content_bytes: bytes,
        sha256: hex(&h.finalize()),
        newest_mtime: if newest == i64::MIN { 0 } else { newest },
    })
}

/// A host path as the manifest names it: the file name only, so a build elsewhere matches.
pub(crate) fn file_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Content held in memory.
pub(crate) fn bytes(data: impl Into<Vec<u8>>) -> Content {
    Content::Bytes(Arc::from(data.into()))
}

/// An unused path helper for host files next to an output (`OUT` → `OUT.suffix`).
pub(crate) fn beside(out: &Path, suffix: &str) -> PathBuf {
    let mut name = out
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(suffix);
    out.with_file_name(name)
}
