//! The recipe a manifest keeps (every option of the build, paths relative to the manifest's
//! directory), and `rebuild`: the clean-room proof that the recorded inputs still give the
//! recorded outputs.

use std::path::{Component, Path, PathBuf};

use imgpipe_squashfs::erofs::{ErofsAlgorithm, ErofsCompression, ErofsWriteOptions};
use imgpipe_squashfs::{Compression, Compressor, WriteOptions, bcj};
use serde::Serialize;
use serde_json::Value;

use super::{BuildRequest, Encryption, Event, Layout, RootFs, build, inputs};
use crate::error::{Error, Result};
use crate::seed::Seed;

/// The root image's options as the manifest records them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RootFsRecipe {
    /// `squashfs` or `erofs`.
    pub format: String,
    /// The compressor's name.
    pub comp: String,
    /// Its level, when given.
    pub level: Option<u32>,
    /// squashfs block size.
    pub block_size: Option<u32>,
    /// EROFS physical cluster size.
    pub cluster_size: Option<u32>,
    /// EROFS fragments, ztailpacking, dedupe.
    pub fragments: bool,
    /// EROFS inline compressed tails.
    pub ztailpacking: bool,
    /// EROFS whole-file dedupe.
    pub dedupe: bool,
    /// Early abort (input lz4 and zstd level 1 cannot shrink is stored without compressing
    /// it). A manifest without it was written before early abort existed: `false`.
    pub early_abort: bool,
    /// squashfs xz: the BCJ filters tried on each block, by mksquashfs's names (`-Xbcj`).
    /// Absent from a manifest: none (as before the option existed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub xz_bcj: Vec<String>,
    /// squashfs lz4: LZ4HC. Absent from a manifest: `false`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub lz4_hc: bool,
}

/// Every option of a build, paths relative to the manifest's directory (or absolute when
/// they were given so).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recipe {
    /// The kickstart.
    pub kickstart: String,
    /// Its version.
    pub ks_version: String,
    /// The root tree.
    pub root: String,
    /// The ISO's file name.
    pub iso: String,
    /// The disk's file name.
    pub disk: Option<String>,
    /// `--root-arg`.
    pub root_arg: Option<String>,
    /// The layout.
    pub layout: Layout,
    /// The root image.
    pub rootfs: RootFsRecipe,
    /// `--kernel`, `--initrd`, `--kernel-version`.
    pub kernel: Option<String>,
    /// The initrd.
    pub initrd: Option<String>,
    /// Which of the tree's kernels.
    pub kernel_version: Option<String>,
    /// The loaders.
    pub efi_loader: Option<String>,
    /// The BIOS loader.
    pub bios_loader: Option<String>,
    /// The isohybrid MBR.
    pub bios_hybrid_mbr: Option<String>,
    /// argon2id memory (KiB), passes and lanes of an encrypted disk (the passphrase is not
    /// recorded).
    pub encrypt: Option<(u32, u32, u32)>,
    /// `--part` texts.
    pub disk_parts: Vec<String>,
    /// Reserved slots: (path, capacity).
    pub reserve: Vec<(String, u64)>,
    /// Reserved slots in the ISO tree: (path, capacity, initial content).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reserve_iso: Vec<(String, u64, Option<String>)>,
    /// Reserved slots in the ESP: (path, capacity, initial content).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reserve_esp: Vec<(String, u64, Option<String>)>,
}

/// `path` as seen from `base` (both relative to one working directory, or `path` absolute),
/// worked out from the names alone.
fn relative(path: &Path, base: Option<&Path>) -> String {
    let base = base.unwrap_or(Path::new(""));
    if path.is_absolute() || base.as_os_str().is_empty() {
        return path.display().to_string();
    }
    let mut up = PathBuf::new();
    for c in base.components() {
        match c {
            Component::Normal(_) => up.push(".."),
            Component::CurDir => {}
            // A base going up or absolute cannot be undone by names: keep the path as given.
            _ => return path.display().to_string(),
        }
    }
    up.join(path).display().to_string()
}

fn name_of(p: &Path) -> String {
    inputs::file_name(p)
}

impl Recipe {
    /// The recipe of `req`, paths seen from the manifest's directory.
    pub(crate) fn of(req: &BuildRequest) -> Self {
        let base = req.manifest.as_deref().and_then(Path::parent);
        let rel = |p: &Path| relative(p, base);
        let opt = |p: &Option<PathBuf>| p.as_deref().map(rel);
        let rootfs = match &req.rootfs {
            RootFs::Squashfs(o) => RootFsRecipe {
                format: "squashfs".into(),
                comp: o.compression.compressor.name().into(),
                level: o.compression.level,
                block_size: Some(o.block_size),
                cluster_size: None,
                fragments: false,
                ztailpacking: false,
                dedupe: false,
                early_abort: o.compression.early_abort,
                xz_bcj: bcj::names(o.compression.xz_bcj)
                    .map(str::to_owned)
                    .collect(),
                lz4_hc: o.compression.lz4_hc,
            },
            RootFs::Erofs(o) => RootFsRecipe {
                format: "erofs".into(),
                comp: o.compression.map_or("none", |c| c.algorithm.name()).into(),
                level: o.compression.and_then(|c| c.level),
                block_size: None,
                cluster_size: Some(o.pcluster_size),
                fragments: o.fragments,
                ztailpacking: o.ztailpacking,
                dedupe: o.dedupe,
                early_abort: o.compression.is_some_and(|c| c.early_abort),
                xz_bcj: Vec::new(),
                lz4_hc: false,
            },
        };
        Self {
            kickstart: rel(&req.kickstart),
            ks_version: req.ks_version.name().into(),
            root: rel(&req.root),
            iso: name_of(&req.iso),
            disk: req.disk.as_deref().map(name_of),
            root_arg: req.root_arg.clone(),
            layout: req.layout,
            rootfs,
            kernel: opt(&req.kernel),
            initrd: opt(&req.initrd),
            kernel_version: req.kernel_version.clone(),
            efi_loader: opt(&req.efi_loader),
            bios_loader: opt(&req.bios_loader),
            bios_hybrid_mbr: opt(&req.bios_hybrid_mbr),
            encrypt: req
                .encrypt
                .as_ref()
                .map(|e| (e.memory_kib, e.time, e.lanes)),
            disk_parts: req.disk_parts.clone(),
            reserve: req.reserve.clone(),
            reserve_iso: req
                .reserve_iso
                .iter()
                .map(|(p, c, f)| (p.clone(), *c, opt(f)))
                .collect(),
            reserve_esp: req
                .reserve_esp
                .iter()
                .map(|(p, c, f)| (p.clone(), *c, opt(f)))
                .collect(),
        }
    }
}

fn bad(what: &str) -> Error {
    Error::Step {
        step: "reading the manifest".into(),
        message: format!("{what} is missing or malformed"),
    }
}

fn s(v: &Value, k: &str) -> Result<String> {
    v.get(k)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| bad(k))
}

fn os(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_owned)
}

/// The request a manifest's recipe describes, its paths resolved from `dir`, writing into
/// `out_dir`, with the recorded epoch and seed.
fn request(
    m: &Value,
    dir: &Path,
    out_dir: &Path,
    passphrase: Option<Vec<u8>>,
) -> Result<BuildRequest> {
    let r = m.get("recipe").ok_or_else(|| bad("recipe"))?;
    let at = |p: String| dir.join(p);
    let iso = out_dir.join(s(r, "iso")?);
    let mut req = BuildRequest::new(
        at(s(r, "kickstart")?),
        at(s(r, "root")?),
        iso,
        s(m, "label")?,
    );
    req.ks_version = imgpipe_kickstart::Version::from_name(&s(r, "ks_version")?)
        .ok_or_else(|| bad("ks_version"))?;
    req.disk = os(r, "disk").map(|d| out_dir.join(d));
    req.root_arg = os(r, "root_arg");
    req.layout = match s(r, "layout")?.as_str() {
        "debian" => Layout::Debian,
        _ => Layout::Dracut,
    };
    let f = r.get("rootfs").ok_or_else(|| bad("rootfs"))?;
    let num = |k: &str| {
        f.get(k)
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
    };
    let flag = |k: &str| f.get(k).and_then(Value::as_bool).unwrap_or(false);
    let comp = s(f, "comp")?;
    req.rootfs = match s(f, "format")?.as_str() {
        "squashfs" => {
            let mut o = WriteOptions::new(0);
            let c = Compressor::from_name(&comp).ok_or_else(|| bad("rootfs.comp"))?;
            o.compression = Compression::with_level(c, num("level"));
            o.compression.early_abort = flag("early_abort");
            o.compression.lz4_hc = flag("lz4_hc");
            for name in f
                .get("xz_bcj")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                o.compression.xz_bcj |= name
                    .as_str()
                    .and_then(bcj::from_name)
                    .ok_or_else(|| bad("rootfs.xz_bcj"))?;
            }
            if let Some(b) = num("block_size") {
                o.block_size = b;
            }
            RootFs::Squashfs(Box::new(o))
        }
        "erofs" => {
            let mut o = ErofsWriteOptions::new(0, [0; 16]);
            if comp != "none" {
                let a = ErofsAlgorithm::from_name(&comp).ok_or_else(|| bad("rootfs.comp"))?;
                let mut c = match num("level") {
                    Some(l) => ErofsCompression::with_level(a, l),
                    None => ErofsCompression::new(a),
                };
                c.early_abort = flag("early_abort");
                o.compression = Some(c);
            }
            if let Some(c) = num("cluster_size") {
                o.pcluster_size = c;
            }
            o.fragments = flag("fragments");
            o.ztailpacking = flag("ztailpacking");
            o.dedupe = flag("dedupe");
            RootFs::Erofs(Box::new(o))
        }
        _ => return Err(bad("rootfs.format")),
    };
    req.kernel = os(r, "kernel").map(at);
    req.initrd = os(r, "initrd").map(at);
    req.kernel_version = os(r, "kernel_version");
    req.efi_loader = os(r, "efi_loader").map(at);
    req.bios_loader = os(r, "bios_loader").map(at);
    req.bios_hybrid_mbr = os(r, "bios_hybrid_mbr").map(at);
    req.disk_parts = r
        .get("disk_parts")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    req.reserve = r
        .get("reserve")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| Some((x.get(0)?.as_str()?.to_owned(), x.get(1)?.as_u64()?)))
                .collect()
        })
        .unwrap_or_default();
    let slots = |key: &str| -> Vec<(String, u64, Option<PathBuf>)> {
        r.get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| {
                        Some((
                            x.get(0)?.as_str()?.to_owned(),
                            x.get(1)?.as_u64()?,
                            x.get(2)?.as_str().map(|f| at(f.to_owned())),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    req.reserve_iso = slots("reserve_iso");
    req.reserve_esp = slots("reserve_esp");
    if let Some(e) = r.get("encrypt").and_then(Value::as_array) {
        let n = |i: usize| {
            e.get(i)
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| bad("encrypt"))
        };
        let passphrase = passphrase.ok_or_else(|| Error::Argument {
            flag: "--passphrase-file",
            value: String::new(),
            reason: "the recorded build encrypted its disk: give the passphrase".into(),
        })?;
        req.encrypt = Some(Encryption {
            passphrase,
            memory_kib: n(0)?,
            time: n(1)?,
            lanes: n(2)?,
        });
    }
    req.epoch = Some(
        m.get("epoch")
            .and_then(Value::as_u64)
            .ok_or_else(|| bad("epoch"))?,
    );
    req.seed = Some(Seed::parse(&s(m, "seed")?).ok_or_else(|| bad("seed"))?);
    Ok(req)
}

/// One output of a rebuild.
#[derive(Debug, Clone, Serialize)]
pub struct RebuiltOutput {
    /// Its file name.
    pub name: String,
    /// The SHA-256 the manifest records.
    pub recorded: String,
    /// The rebuild's.
    pub rebuilt: String,
    /// Whether they match.
    pub identical: bool,
    /// When they do not and the recorded output is still beside the manifest: the diff.
    pub diff: Option<crate::diff::ImageDiff>,
}

/// What `rebuild` found.
#[derive(Debug, Clone, Serialize)]
pub struct RebuildReport {
    /// Every input still has its recorded digest and every output was rebuilt identical.
    pub proven: bool,
    /// Inputs whose digest changed: (name, recorded, now).
    pub changed_inputs: Vec<(String, String, String)>,
    /// The outputs (empty when inputs changed).
    pub outputs: Vec<RebuiltOutput>,
}

/// Rebuilds what `manifest` records into the fresh directory `work`: first checks every
/// input's digest (naming those that changed, and stopping there), then builds with the
/// recorded options, epoch and seed, and compares each output's SHA-256 with the recorded
/// one (diffing against the recorded output when it is still beside the manifest).
pub fn rebuild(
    manifest: &Path,
    work: &Path,
    passphrase: Option<Vec<u8>>,
    on: &mut dyn FnMut(Event),
) -> Result<RebuildReport> {
    let text = std::fs::read(manifest).map_err(|source| Error::HostIo {
        what: "cannot read",
        path: manifest.to_path_buf(),
        source,
    })?;
    let m: Value = serde_json::from_slice(&text).map_err(|e| Error::Step {
        step: format!("reading {}", manifest.display()),
        message: e.to_string(),
    })?;
    let dir = manifest.parent().unwrap_or(Path::new(""));
    let req = request(&m, dir, work, passphrase)?;
    let fresh = build(&req, on);
    // A build error may be an input that changed in a way the build refuses; either way,
    // name the inputs whose digest moved first.
    let recorded_inputs = m
        .get("inputs")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut changed = Vec::new();
    let now = match &fresh {
        Ok(f) => Some(serde_json::to_value(f).map_err(|e| step_err(e.to_string()))?),
        Err(_) => None,
    };
    if let Some(now) = &now {
        let now_inputs = now
            .get("inputs")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for r in &recorded_inputs {
            let name = r.get("name").and_then(Value::as_str).unwrap_or("");
            let was = r.get("sha256").and_then(Value::as_str).unwrap_or("");
            let is = now_inputs
                .iter()
                .find(|n| n.get("name").and_then(Value::as_str) == Some(name))
                .and_then(|n| n.get("sha256").and_then(Value::as_str))
                .unwrap_or("(missing)");
            if was != is {
                changed.push((name.to_owned(), was.to_owned(), is.to_owned()));
            }
        }
        let was = m
            .pointer("/tree/sha256")
            .and_then(Value::as_str)
            .unwrap_or("");
        let is = now
            .pointer("/tree/sha256")
            .and_then(Value::as_str)
            .unwrap_or("");
        if was != is {
            changed.push(("root tree".to_owned(), was.to_owned(), is.to_owned()));
        }
    }
    let fresh = fresh?;
    if !changed.is_empty() {
        return Ok(RebuildReport {
            proven: false,
            changed_inputs: changed,
            outputs: Vec::new(),
        });
    }
    let mut outputs = Vec::new();
    for rec in m
        .get("outputs")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        let name = s(&rec, "name")?;
        let recorded = s(&rec, "sha256")?;
        let rebuilt = fresh
            .outputs
            .iter()
            .find(|o| o.name == name)
            .map(|o| o.sha256.clone())
            .unwrap_or_default();
        let identical = rebuilt == recorded;
        let diff = if identical {
            None
        } else {
            let old = dir.join(&name);
            match (
                std::fs::File::open(&old),
                std::fs::File::open(work.join(&name)),
            ) {
                (Ok(a), Ok(b)) => Some(super::twice::diff_builds(&a, &b, &req)?),
                _ => None,
            }
        };
        outputs.push(RebuiltOutput {
            name,
            recorded,
            rebuilt,
            identical,
            diff,
        });
    }
    Ok(RebuildReport {
        proven: outputs.iter().all(|o| o.identical),
        changed_inputs: Vec::new(),
        outputs,
    })
}

fn step_err(message: String) -> Error {
    Error::Step {
        step: "rebuilding".into(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The root image's options survive the manifest, early abort and BCJ filters
    /// included; a manifest written before an option existed rebuilds without it, as it was
    /// built.
    #[test]
    fn root_image_options_round_trip_through_the_recipe() {
        let mut sq = WriteOptions::new(0);
        sq.compression = Compression::with_level(Compressor::Zstd, Some(19));
        sq.compression.early_abort = false;
        let mut two_bcj = WriteOptions::new(0);
        two_bcj.compression = Compression::new(Compressor::Xz);
        two_bcj.compression.xz_bcj = bcj::X86 | bcj::ARM;
        let mut hc = WriteOptions::new(0);
        hc.compression = Compression::new(Compressor::Lz4);
        hc.compression.lz4_hc = true;
        let mut ero = ErofsWriteOptions::new(0, [0; 16]);
        ero.compression = Some(ErofsCompression::new(ErofsAlgorithm::Lzma));
        ero.pcluster_size = 65536;
        ero.fragments = true;
        let mut plain = ErofsWriteOptions::new(0, [0; 16]);
        plain.compression = None;
        for rootfs in [
            RootFs::Squashfs(Box::new(WriteOptions::new(0))),
            RootFs::Squashfs(Box::new(sq)),
            RootFs::Squashfs(Box::new(two_bcj)),
            RootFs::Squashfs(Box::new(hc)),
            RootFs::Erofs(Box::new(ero)),
            RootFs::Erofs(Box::new(plain)),
        ] {
            let mut req = BuildRequest::new("ks.cfg", "root", "out.iso", "LIVE");
            req.rootfs = rootfs;
            let want = Recipe::of(&req);
            let mut m = serde_json::json!({"label": "LIVE", "epoch": 0,
                "seed": "00112233445566778899aabbccddeeff", "recipe": want.clone()});
            let back = request(&m, Path::new("."), Path::new("."), None).unwrap();
            assert_eq!(Recipe::of(&back).rootfs, want.rootfs);
            if let Some(f) = m
                .pointer_mut("/recipe/rootfs")
                .and_then(Value::as_object_mut)
            {
                for k in ["early_abort", "xz_bcj", "lz4_hc"] {
                    f.remove(k);
                }
            }
            let old = request(&m, Path::new("."), Path::new("."), None).unwrap();
            let old = Recipe::of(&old).rootfs;
            assert!(!old.early_abort && old.xz_bcj.is_empty() && !old.lz4_hc);
        }
    }

    #[test]
    fn paths_from_the_manifest() {
        assert_eq!(relative(Path::new("ks.cfg"), None), "ks.cfg");
        assert_eq!(
            relative(Path::new("ks.cfg"), Some(Path::new("out"))),
            "../ks.cfg"
        );
        assert_eq!(
            relative(Path::new("a/b"), Some(Path::new("./x/y"))),
            "../../a/b"
        );
        assert_eq!(
            relative(Path::new("/abs/ks.cfg"), Some(Path::new("out"))),
            "/abs/ks.cfg"
        );
        assert_eq!(
            relative(Path::new("ks.cfg"), Some(Path::new("../up"))),
            "ks.cfg"
        );
    }
}
