//! `build --verify`: the reproducibility gate for imgpipe's own pipeline, in-process. The
//! build runs a second time into another directory with another number of threads, with the
//! first build's epoch and seed, and each output is compared; when one differs, `diff`'s
//! nested diagnosis says which files inside which layer.

use std::path::Path;

use serde::Serialize;

use super::{BuildRequest, Event, Manifest, RootFs, build};
use crate::diff::{ImageDiff, ImageDiffOptions, diff_images};
use crate::error::{Error, Result};

/// One output of the two builds.
#[derive(Debug, Clone, Serialize)]
pub struct TwiceOutput {
    /// Its file name.
    pub name: String,
    /// The first build's SHA-256.
    pub first: String,
    /// The second build's.
    pub second: String,
    /// Whether they match.
    pub identical: bool,
    /// When they do not: the diagnosis.
    pub diff: Option<ImageDiff>,
}

/// What [`build_twice`] found.
#[derive(Debug, Clone, Serialize)]
pub struct TwiceReport {
    /// Every output identical.
    pub reproducible: bool,
    /// What the second build varied: its output directory, and its threads (`first` and
    /// `second`).
    pub varied: Vec<String>,
    /// Threads of the first and the second build.
    pub threads: (usize, usize),
    /// Each output (the manifest too, when the first build wrote one).
    pub outputs: Vec<TwiceOutput>,
}

/// Builds `req` again into `work` (a fresh directory) with `first`'s epoch and seed and
/// `threads` threads (the first build ran with `first_threads`), then compares each output
/// of the two builds. Call it inside a rayon pool of `threads` threads: the squashfs writer
/// uses the pool it runs in (EROFS is told the count).
pub fn build_twice(
    req: &BuildRequest,
    first: &Manifest,
    first_threads: usize,
    threads: usize,
    work: &Path,
    on: &mut dyn FnMut(Event),
) -> Result<TwiceReport> {
    let mut again = req.clone();
    let into = |p: &Path| work.join(p.file_name().unwrap_or(p.as_os_str()));
    again.iso = work.join(req.iso.file_name().unwrap_or(req.iso.as_os_str()));
    again.disk = req.disk.as_deref().map(into);
    again.manifest = req.manifest.as_deref().map(into);
    again.epoch = Some(first.epoch);
    again.seed = crate::Seed::parse(&first.seed);
    // The squashfs writer uses the thread pool it runs in; EROFS takes its count.
    if let RootFs::Erofs(o) = &mut again.rootfs {
        o.threads = Some(threads);
    }
    let second = build(&again, on)?;
    let mut outputs = Vec::new();
    let mut pairs: Vec<(String, &Path, &Path, String, String)> = Vec::new();
    for o in &first.outputs {
        let Some(s) = second.outputs.iter().find(|s| s.name == o.name) else {
            continue;
        };
        let (a, b) = if o.kind == "disk" {
            (req.disk.as_deref(), again.disk.as_deref())
        } else {
            (Some(req.iso.as_path()), Some(again.iso.as_path()))
        };
        if let (Some(a), Some(b)) = (a, b) {
            pairs.push((o.name.clone(), a, b, o.sha256.clone(), s.sha256.clone()));
        }
    }
    let manifests;
    if let (Some(a), Some(b)) = (&req.manifest, &again.manifest) {
        manifests = (sha256_file(a)?, sha256_file(b)?);
        let name = a
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        pairs.push((name, a, b, manifests.0.clone(), manifests.1.clone()));
    }
    for (name, a, b, first_sha, second_sha) in pairs {
        let identical = first_sha == second_sha;
        let diff = if identical {
            None
        } else {
            let open = |p: &Path| {
                std::fs::File::open(p).map_err(|source| Error::HostIo {
                    what: "cannot open",
                    path: p.to_path_buf(),
                    source,
                })
            };
            Some(diff_builds(&open(a)?, &open(b)?, req)?)
        };
        outputs.push(TwiceOutput {
            name,
            first: first_sha,
            second: second_sha,
            identical,
            diff,
        });
    }
    Ok(TwiceReport {
        reproducible: outputs.iter().all(|o| o.identical),
        varied: vec!["path".into(), "threads".into()],
        threads: (first_threads, threads),
        outputs,
    })
}

/// The diff of two builds of `req`: an encrypted root is unlocked with the build's
/// passphrase, so that the files inside its payload are named. When the passphrase does not
/// open both (a recorded build made with another one), the payloads are left closed.
pub(crate) fn diff_builds(
    a: &std::fs::File,
    b: &std::fs::File,
    req: &BuildRequest,
) -> Result<ImageDiff> {
    let opts = ImageDiffOptions {
        passphrases: req
            .encrypt
            .as_ref()
            .map(|e| std::sync::Arc::new(crate::Passphrases::same(e.passphrase.clone()))),
        ..ImageDiffOptions::default()
    };
    match diff_images(a, b, opts, &mut |_| {}) {
        Err(Error::WrongPassphrase { .. }) => {
            diff_images(a, b, ImageDiffOptions::default(), &mut |_| {})
        }
        r => r,
    }
}

fn sha256_file(p: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    let mut f = std::fs::File::open(p).map_err(|source| Error::HostIo {
        what: "cannot open",
        path: p.to_path_buf(),
        source,
    })?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = std::io::Read::read(&mut f, &mut buf).map_err(|source| Error::HostIo {
            what: "cannot read",
            path: p.to_path_buf(),
            source,
        })?;
        if n == 0 {
            break;
        }
        h.update(buf.get(..n).unwrap_or_default());
    }
    Ok(super::inputs::hex(&h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use imgpipe_testsupport::{pattern, set_mtimes};

    fn write(path: &Path, data: &[u8]) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    }

    /// When the second build differs (here: a file of the tree changed in between, as a
    /// nondeterministic step would change it), the report says not reproducible, which
    /// outputs differ, and names the file inside the root image.
    #[test]
    fn a_second_build_that_differs_is_named_down_to_the_file() {
        let t = imgpipe_testsupport::tempdir();
        let d = t.path();
        write(
            &d.join("ks.cfg"),
            b"lang en_US.UTF-8\nbootloader --timeout=1\n",
        );
        write(&d.join("root/boot/vmlinuz-6.1.0-t"), &pattern(30_000));
        write(&d.join("root/boot/initrd.img-6.1.0-t"), &pattern(20_001));
        write(&d.join("root/etc/motd"), b"first\n");
        write(&d.join("efi.img"), &pattern(7_000));
        set_mtimes(d, 1_700_000_000);
        let mut req = BuildRequest::new(
            d.join("ks.cfg"),
            d.join("root"),
            d.join("live.iso"),
            "TWICE",
        );
        req.efi_loader = Some(d.join("efi.img"));
        req.manifest = Some(d.join("m.json"));
        let pool = |n| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .unwrap()
        };
        let first = pool(2).install(|| build(&req, &mut |_| {})).unwrap();
        let work = imgpipe_testsupport::tempdir();

        // Unchanged: reproducible.
        let same = pool(1)
            .install(|| build_twice(&req, &first, 2, 1, work.path(), &mut |_| {}))
            .unwrap();
        assert!(same.reproducible, "{same:#?}");
        assert!(same.outputs.iter().all(|o| o.identical && o.diff.is_none()));

        // The same size and time, other bytes.
        write(&d.join("root/etc/motd"), b"other\n");
        set_mtimes(&d.join("root"), 1_700_000_000);
        let again = imgpipe_testsupport::tempdir();
        let r = pool(1)
            .install(|| build_twice(&req, &first, 2, 1, again.path(), &mut |_| {}))
            .unwrap();
        assert!(!r.reproducible);
        assert_eq!(r.threads, (2, 1));
        let iso = r.outputs.iter().find(|o| o.name == "live.iso").unwrap();
        assert!(!iso.identical);
        assert_ne!(iso.first, iso.second);
        let files = iso.diff.as_ref().and_then(|d| d.files.as_ref()).unwrap();
        let motd: Vec<_> = files
            .differences
            .iter()
            .filter(|f| f.path == "/etc/motd")
            .collect();
        assert_eq!(motd.len(), 1, "{files:#?}");
        assert!(
            motd[0].within.iter().any(|w| w.contains("squashfs.img")),
            "{:?}",
            motd[0].within
        );
        // The manifest records the outputs' digests, so it differs too.
        assert!(r.outputs.iter().any(|o| o.name == "m.json" && !o.identical));
    }
}
