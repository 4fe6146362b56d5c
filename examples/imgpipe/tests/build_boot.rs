//! `imgpipe build` output boots a real Linux: Debian 12's kernel and the test initramfs
//! (imgpipe_testsupport::boot) put in a small root tree, GRUB images from grub-mkimage, a
//! kickstart setting the hostname and the serial console. The ISO prints the root's marker
//! and the kickstart's hostname from BIOS and UEFI, CD and USB stick; the disk image under
//! UEFI from a virtio disk (`root=PARTLABEL=`); so does the ISO xorriso makes from its replay
//! of our boot setup (`-report_el_torito as_mkisofs`).

use std::ffi::OsString;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use imgpipe_testsupport::boot::{self, Medium};
use imgpipe_testsupport::{run, tempdir, tool};

const MARKER: &str = "IMGPIPE-BUILT-ROOT-93d2";
const HOSTNAME: &str = "imgpipe-built";

fn write(path: &Path, data: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, data).unwrap();
}

/// Which output a medium holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Image {
    /// The ISO.
    Iso,
    /// The disk image.
    Disk,
    /// The ISO made again by xorriso from `-report_el_torito as_mkisofs`'s replay.
    Replay,
}

/// `xorriso -as mkisofs` with the boot setup `-report_el_torito as_mkisofs` reads from `iso`,
/// around `iso`'s tree, into `out`; `None` without xorriso.
fn xorriso_replay(iso: &Path, out: &Path, scratch: &Path) -> Option<()> {
    let xorriso = tool("xorriso")?;
    let report = run(
        &xorriso,
        [
            "-indev".as_ref(),
            iso.as_os_str(),
            "-report_el_torito".as_ref(),
            "as_mkisofs".as_ref(),
        ],
    );
    let text = String::from_utf8_lossy(&report.stdout).into_owned();
    let tree = scratch.join("replay-tree");
    run(
        &xorriso,
        [
            "-osirrox".as_ref(),
            "on".as_ref(),
            "-indev".as_ref(),
            iso.as_os_str(),
            "-extract".as_ref(),
            "/".as_ref(),
            tree.as_os_str(),
        ],
    );
    let mut args: Vec<OsString> = vec!["-as".into(), "mkisofs".into()];
    for line in text.lines().filter(|l| l.starts_with('-')) {
        // One option a line, its arguments single-quoted.
        let mut cur = String::new();
        let mut quoted = false;
        for c in line.chars().chain([' ']) {
            match c {
                '\'' => quoted = !quoted,
                ' ' if !quoted => {
                    if !cur.is_empty() {
                        args.push(std::mem::take(&mut cur).into());
                    }
                }
                c => cur.push(c),
            }
        }
    }
    args.extend(["-o".into(), out.into(), tree.into()]);
    run(&xorriso, args);
    Some(())
}

/// Builds the ISO and disk with `label` and `extra` flags and boots each medium, expecting the
/// root image mounted as `fstype`; the failures, one per medium.
fn build_and_boot(
    label: &str,
    extra: &[&str],
    fstype: &str,
    media: &[(Medium, Image)],
) -> Vec<String> {
    build_and_boot_with(label, extra, fstype, media, None)
}

/// [`build_and_boot`], the disk's root in LUKS2 with `passphrase` when given (the initramfs
/// then carries cryptsetup and the passphrase).
fn build_and_boot_with(
    label: &str,
    extra: &[&str],
    fstype: &str,
    media: &[(Medium, Image)],
    passphrase: Option<&str>,
) -> Vec<String> {
    let Some(kernel) = boot::debian_kernel() else {
        return Vec::new();
    };
    if tool("qemu-system-x86_64").is_none() {
        return Vec::new();
    }
    let t = tempdir();
    let d = t.path();
    let Some(grub) = boot::grub_images(d) else {
        return Vec::new();
    };
    let root = d.join("root");
    write(
        &root.join("imgpipe-marker"),
        format!("{MARKER}\n").as_bytes(),
    );
    write(&root.join("etc/hostname"), b"not-the-kickstarts\n");
    write(
        &root.join(format!("boot/vmlinuz-{}", kernel.version)),
        &fs::read(&kernel.vmlinuz).unwrap(),
    );
    let initrd = match passphrase {
        None => boot::live_initramfs(&kernel),
        Some(p) => {
            let Some(initrd) = boot::luks_initramfs(&kernel, p.as_bytes()) else {
                return Vec::new();
            };
            initrd
        }
    };
    write(
        &root.join(format!("boot/initrd.img-{}", kernel.version)),
        &initrd,
    );
    let pass = d.join("passphrase");
    let mut encrypt: Vec<OsString> = Vec::new();
    if let Some(p) = passphrase {
        fs::write(&pass, p).unwrap();
        encrypt.extend(["--encrypt".into(), "--passphrase-file".into(), pass.into()]);
        // The guest has 512 MiB: a small argon2id cost.
        for a in [
            "--pbkdf-memory",
            "32768",
            "--pbkdf-time",
            "1",
            "--pbkdf-parallel",
            "1",
        ] {
            encrypt.push(a.into());
        }
    }
    let ks = d.join("live.ks");
    fs::write(
        &ks,
        format!(
            "network --hostname={HOSTNAME}\n\
             bootloader --append=\"console=ttyS0\" --timeout=1\n\
             rootpw --lock\n"
        ),
    )
    .unwrap();
    // The BIOS loaders only when a medium boots BIOS: else the ISO is UEFI-only.
    let mut bios: Vec<OsString> = Vec::new();
    if media.iter().any(|(m, _)| !m.uefi()) {
        bios.extend([
            "--bios-loader".into(),
            grub.eltorito.clone().into(),
            "--bios-hybrid-mbr".into(),
            grub.boot_hybrid.clone().into(),
        ]);
    }
    let (iso, disk) = (d.join("live.iso"), d.join("live.img"));
    let out = Command::new(env!("CARGO_BIN_EXE_imgpipe"))
        .arg("build")
        .arg("--kickstart")
        .arg(&ks)
        .arg("--root")
        .arg(&root)
        .arg("-o")
        .arg(&iso)
        .arg("--disk")
        .arg(&disk)
        .args(["--label", label])
        .arg("--efi-loader")
        .arg(&grub.efi)
        .args(&bios)
        .args(["--epoch", "1700000000"])
        .args(extra)
        .args(&encrypt)
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "imgpipe build failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let replay = d.join("replay.iso");
    if media.iter().any(|(_, i)| *i == Image::Replay) && xorriso_replay(&iso, &replay, d).is_none()
    {
        return Vec::new();
    }
    let hostname = format!("hostname={HOSTNAME}");
    let mut failures = Vec::new();
    for &(medium, which) in media {
        let image = match which {
            Image::Iso => &iso,
            Image::Disk => &disk,
            Image::Replay => &replay,
        };
        let Some(args) = medium.args(image, d) else {
            return Vec::new();
        };
        let mounted = format!("({fstype})");
        let expect = [MARKER, &hostname, &mounted];
        match boot::qemu_boot(&args, &expect, Duration::from_secs(240)) {
            Ok(log) if log.contains("error: ") => failures.push(format!(
                "label {label}, {medium:?} ({which:?}): booted, but GRUB reported an error (a failed search \
                 falls back on the device GRUB started from); serial log:\n{log}"
            )),
            Ok(log) => {
                let found = log.lines().find(|l| {
                    ["medium", "root partition", "root device"]
                        .iter()
                        .any(|w| l.contains(&format!("imgpipe init: {w}")))
                });
                eprintln!(
                    "{label} {medium:?} ({which:?}): booted ({})",
                    found.unwrap_or_default().trim()
                );
            }
            Err(log) => failures.push(format!(
                "label {label}, {medium:?} ({which:?}): no marker and hostname; {log}"
            )),
        }
    }
    failures
}

#[test]
fn built_iso_and_disk_boot_linux() {
    let media = [
        (Medium::BiosCd, Image::Iso),
        (Medium::UefiCd, Image::Iso),
        (Medium::BiosUsb, Image::Iso),
        (Medium::UefiUsb, Image::Iso),
        (Medium::UefiDisk, Image::Disk),
        // xorriso's replay of our boot setup boots as well.
        (Medium::BiosUsb, Image::Replay),
        (Medium::UefiCd, Image::Replay),
        (Medium::UefiUsb, Image::Replay),
    ];
    // A label as long as the build allows, in mixed case: GRUB's `search --label`, the ISO
    // volume identifier and the kernel command line carry it whole.
    let label = "Imgpipe-Live-Label-Of-32-Chars.1";
    assert_eq!(label.len(), 32);
    let failures = build_and_boot(label, &["--comp", "gzip"], "squashfs", &media);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The other root image and layout: EROFS (lz4hc: Debian 12's kernel reads lz4 only, it is
/// built without `CONFIG_EROFS_FS_ZIP_LZMA`) from the disk image and a UEFI-only ISO, and
/// squashfs in Debian's layout (`/live/filesystem.squashfs`, `boot=live`).
#[test]
fn erofs_root_and_debian_layout_boot() {
    let mut failures = build_and_boot(
        "IMGPIPE_EROFS",
        &["--rootfs", "erofs", "--comp", "lz4hc"],
        "erofs",
        // No medium boots BIOS: a UEFI-only ISO (no El Torito BIOS entry, no boot code).
        &[
            (Medium::UefiDisk, Image::Disk),
            (Medium::UefiCd, Image::Iso),
            (Medium::UefiUsb, Image::Iso),
        ],
    );
    failures.extend(build_and_boot(
        "IMGPIPE_DEBIAN",
        &["--layout", "debian", "--comp", "xz"],
        "squashfs",
        &[(Medium::BiosUsb, Image::Iso), (Medium::UefiCd, Image::Iso)],
    ));
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The disk image's root in LUKS2 (`rd.luks.name=UUID=LABEL root=/dev/mapper/LABEL`): the
/// guest's cryptsetup opens it with the passphrase and its kernel mounts the root image.
#[test]
fn luks2_root_disk_boots() {
    let failures = build_and_boot_with(
        "IMGPIPE_LUKS",
        &["--comp", "gzip"],
        "squashfs",
        &[(Medium::UefiDisk, Image::Disk)],
        Some("correct horse battery"),
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
