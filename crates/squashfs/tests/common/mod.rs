//! Helpers shared by the integration tests: unsquashfs listings, kernel mounts.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use imgpipe_squashfs::raw::{InodeData, InodeKind, decode_dev};
use imgpipe_squashfs::{Reader, WalkEntry};

/// `YYYY-MM-DD HH:MM` in UTC (what unsquashfs prints under TZ=UTC).
pub fn utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    )
}

fn perms(kind: InodeKind, mode: u16) -> String {
    let m = u32::from(mode);
    let mut s = String::new();
    s.push(kind.letter());
    for (shift, special, lower, upper) in [
        (6, 0o4000, 's', 'S'),
        (3, 0o2000, 's', 'S'),
        (0, 0o1000, 't', 'T'),
    ] {
        let bits = (m >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        let x = bits & 1 != 0;
        s.push(match (m & special != 0, x) {
            (true, true) => lower,
            (true, false) => upper,
            (false, true) => 'x',
            (false, false) => '-',
        });
    }
    s
}

/// Our walk rendered as `unsquashfs -lln` lines (without the size column width games:
/// whitespace is normalised on both sides).
pub fn our_listing(r: &Reader, entries: &[WalkEntry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| {
            let (uid, gid) = r.owner(&e.inode).unwrap();
            let size = match &e.inode.data {
                InodeData::Dir(d) => d.file_size.to_string(),
                InodeData::File(f) => f.file_size.to_string(),
                InodeData::Symlink(t) => t.len().to_string(),
                InodeData::Device(rdev) => {
                    let (ma, mi) = decode_dev(*rdev);
                    format!("{ma}, {mi}")
                }
                InodeData::Ipc => "0".into(),
            };
            let mut path = String::from("squashfs-root");
            if !e.path.is_empty() {
                path.push('/');
                path.push_str(&String::from_utf8_lossy(&e.path));
            }
            let mut line = format!(
                "{} {uid}/{gid} {size} {} {path}",
                perms(e.inode.kind, e.inode.mode),
                utc(i64::from(e.inode.mtime))
            );
            if let InodeData::Symlink(t) = &e.inode.data {
                line.push_str(" -> ");
                line.push_str(&String::from_utf8_lossy(t));
            }
            line
        })
        .collect()
}

/// `unsquashfs -lln IMAGE` with whitespace normalised.
pub fn unsquashfs_listing(unsquashfs: &Path, image: &Path) -> Vec<String> {
    let out = std::process::Command::new(unsquashfs)
        .args(["-lln".as_ref(), image.as_os_str()])
        .env("TZ", "UTC")
        .env("LC_ALL", "C")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect()
}

/// Normalises whitespace in our lines the same way.
pub fn normalise(lines: Vec<String>) -> Vec<String> {
    lines
        .into_iter()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// A kernel loop mount that is unmounted on drop, even when the test fails.
pub struct Mount {
    pub dir: tempfile::TempDir,
}

impl Mount {
    /// Mounts `image` read-only; `None` when mounting is impossible here (not root, no
    /// loop devices) outside CI.
    pub fn new(image: &Path) -> Option<Self> {
        Self::typed(image, "squashfs")
    }

    /// Mounts `image` read-only as file system type `fstype`.
    pub fn typed(image: &Path, fstype: &str) -> Option<Self> {
        if !imgpipe_testsupport::is_root() {
            eprintln!("skipping kernel mount: not root");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("mount")
            .args(["-o", "loop,ro", "-t", fstype])
            .arg(image)
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mount failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(Self { dir })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if let Err(e) = imgpipe_testsupport::try_unmount(self.dir.path()) {
            eprintln!("warning: {e}");
        }
    }
}
