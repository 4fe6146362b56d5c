//! Boot a real Linux in QEMU: Debian 12's kernel, an initramfs made here from busybox-static,
//! GRUB images from `grub-mkimage`, and QEMU (TCG) in the five ways a live medium is started
//! (BIOS or UEFI, from a CD or a USB stick, and a disk under UEFI).
//!
//! The test command (scripts/test.sh) unpacks the kernel package `linux-image-amd64` depends
//! on into `.tools/linux-<version>/` and runs `depmod` there; [`debian_kernel`] finds it.
//!
//! The initramfs's `/init` ([`INIT`]) understands the kernel command lines a live image is
//! booted with:
//! - `root=live:CDLABEL=LABEL` (dracut's form; `root=live:LABEL=` too): the medium is the block
//!   device whose ISO 9660 volume identifier (or `findfs LABEL=`) is LABEL and that mounts as
//!   iso9660 and holds `/LiveOS/squashfs.img` or `/live/filesystem.squashfs` (a FAT ESP with the
//!   same label is skipped); `boot=live` (Debian's form) takes any such medium;
//! - `root=PARTLABEL=LABEL`: the partition whose GPT name is LABEL holds the root image itself;
//! - `root=/dev/...`, with `rd.luks.name=UUID=NAME` (systemd's form) when the root is in LUKS2:
//!   [`luks_initramfs`] carries cryptsetup and the passphrase, and opens the LUKS2 device with
//!   that UUID as `/dev/mapper/NAME` first.
//!
//! It mounts the root image read-only (squashfs, else EROFS), prints the root's
//! `/imgpipe-marker` and `hostname=<the root's /etc/hostname>` to the console and powers off.
//! Any failure prints a line starting with [`INIT_FAIL`] and powers off, so a test fails fast.

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::{in_ci, run, workspace_root};

/// What `/init` prints before powering off when something is wrong.
pub const INIT_FAIL: &str = "IMGPIPE-INIT-FAIL";

/// Where Debian's OVMF build keeps the UEFI firmware code.
pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
/// The pristine UEFI variable store each UEFI boot gets a private copy of.
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";
/// GRUB's isohybrid MBR boot code.
pub const BOOT_HYBRID: &str = "/usr/lib/grub/i386-pc/boot_hybrid.img";

/// A Debian kernel unpacked by the test command.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// `uname -r`, e.g. `6.1.0-57-amd64`.
    pub version: String,
    /// The bzImage.
    pub vmlinuz: PathBuf,
    /// `lib/modules/<version>`, with `modules.dep`.
    pub modules_dir: PathBuf,
}

/// `path` if it exists; `None` (a skip notice) outside CI, a panic under CI.
pub fn installed(path: &str) -> Option<PathBuf> {
    let p = PathBuf::from(path);
    if p.exists() {
        return Some(p);
    }
    assert!(
        !in_ci(),
        "{path} is missing under CI=true; the test command installs it"
    );
    eprintln!("skipping: {path} not installed (run scripts/test.sh)");
    None
}

/// Debian 12's kernel from `.tools/linux-<version>/` (the newest when there are several).
/// Missing: `None` with a skip notice, or a panic under CI, as [`crate::tool`] does.
pub fn debian_kernel() -> Option<Kernel> {
    let tools = workspace_root().join(".tools");
    let mut found = Vec::new();
    if let Ok(entries) = fs::read_dir(&tools) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(version) = name.strip_prefix("linux-") else {
                continue;
            };
            let root = e.path();
            let vmlinuz = root.join(format!("boot/vmlinuz-{version}"));
            let modules_dir = [
                format!("lib/modules/{version}"),
                format!("usr/lib/modules/{version}"),
            ]
            .into_iter()
            .map(|d| root.join(d))
            .find(|d| d.join("modules.dep").is_file());
            if let (true, Some(modules_dir)) = (vmlinuz.is_file(), modules_dir) {
                found.push(Kernel {
                    version: version.to_owned(),
                    vmlinuz,
                    modules_dir,
                });
            }
        }
    }
    found.sort_by(|a, b| a.version.cmp(&b.version));
    let k = found.pop();
    if k.is_none() {
        assert!(
            !in_ci(),
            "Debian's kernel is missing from .tools/linux-*/ under CI=true; the test command unpacks it"
        );
        eprintln!("skipping: Debian's kernel not unpacked into .tools/ (run scripts/test.sh)");
    }
    k
}

/// The modules `/init` loads (with what `modules.dep` says they need, before them): the root
/// file systems, loop, the CD, ATA, SCSI disk, virtio and USB storage paths QEMU offers.
/// `crc32c_generic` first: `libcrc32c` (erofs) asks the crypto API for crc32c when it loads.
pub const LIVE_MODULES: &[&str] = &[
    "crc32c_generic",
    "crct10dif_generic",
    "loop",
    "squashfs",
    "erofs",
    "isofs",
    "cdrom",
    "sr_mod",
    "sd_mod",
    "ata_piix",
    "ata_generic",
    "ahci",
    "virtio_pci",
    "virtio_blk",
    "virtio_scsi",
    "ehci-pci",
    "uhci-hcd",
    "ohci-pci",
    "xhci-pci",
    "usb-storage",
    "uas",
];

/// The busybox applets `/init` uses, as links in `/bin`.
const APPLETS: &[&str] = &[
    "sh", "mount", "umount", "mkdir", "cat", "sleep", "insmod", "findfs", "poweroff", "ls", "grep",
    "sed", "dd", "tr", "losetup", "dmesg", "uname", "head", "sync", "basename", "test",
];

/// The `/init` of [`live_initramfs`]; `@MODULES@` becomes the module paths in load order.
pub const INIT: &str = r#"#!/bin/sh
# imgpipe's test initramfs: find the live medium or the root partition, mount the root image,
# print its marker and hostname, power off.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
fail() {
    echo "IMGPIPE-INIT-FAIL: $*"
    sync
    poweroff -f
    while :; do sleep 1; done
}
echo "imgpipe init: $(uname -r), command line: $(cat /proc/cmdline)"
kver=$(uname -r)
for m in @MODULES@; do
    out=$(insmod "/lib/modules/$kver/$m" 2>&1) || case "$out" in
        *"File exists"*|*"No such device"*) ;;
        *) fail "insmod $m: $out" ;;
    esac
done

live_label=
live_any=
partlabel=
root_dev=
luks_uuid=
luks_name=
for arg in $(cat /proc/cmdline); do
    case "$arg" in
        root=live:CDLABEL=*) live_label=${arg#root=live:CDLABEL=} ;;
        root=live:LABEL=*) live_label=${arg#root=live:LABEL=} ;;
        root=PARTLABEL=*) partlabel=${arg#root=PARTLABEL=} ;;
        root=/dev/*) root_dev=${arg#root=} ;;
        rd.luks.name=*) luks=${arg#rd.luks.name=}; luks_uuid=${luks%%=*}; luks_name=${luks#*=} ;;
        boot=live) live_any=1 ;;
    esac
done
[ -n "$live_label$live_any$partlabel$root_dev" ] || fail "no root=live:CDLABEL=, boot=live, root=PARTLABEL= or root=/dev/... on the command line"

mkdir -p /run/medium /run/root
# The ISO 9660 volume identifier (primary volume descriptor, bytes 40..72 of sector 16).
iso_label() {
    dd if="$1" bs=1 skip=32808 count=32 2>/dev/null | tr -d '\000' | sed 's/ *$//'
}
# The file system type of what is mounted at /run/root.
root_type() {
    grep " /run/root " /proc/mounts | cut -d" " -f3
}
mount_root_image() {
    mount -t squashfs -o ro,loop "$1" /run/root 2>/dev/null \
        || mount -t erofs -o ro,loop "$1" /run/root 2>/dev/null
}
mount_root_device() {
    mount -t squashfs -o ro "$1" /run/root 2>/dev/null \
        || mount -t erofs -o ro "$1" /run/root 2>/dev/null
}
# One pass over the block devices; 0 when the root is mounted at /run/root.
find_root() {
    if [ -n "$luks_uuid" ] && [ ! -b "/dev/mapper/$luks_name" ]; then
        # systemd's rd.luks.name=UUID=NAME, with the passphrase the initramfs carries.
        [ -x /bin/cryptsetup ] || fail "rd.luks.name= on the command line, but no cryptsetup in the initramfs"
        mkdir -p /run/cryptsetup
        for b in /sys/class/block/*; do
            dev=/dev/${b##*/}
            [ "$(cryptsetup luksUUID "$dev" 2>/dev/null)" = "$luks_uuid" ] || continue
            out=$(cryptsetup open --key-file /etc/imgpipe-passphrase "$dev" "$luks_name" 2>&1) \
                || fail "cryptsetup open $dev (LUKS UUID $luks_uuid): $out"
            echo "imgpipe init: LUKS2 $dev opened as /dev/mapper/$luks_name"
        done
    fi
    if [ -n "$root_dev" ]; then
        [ -b "$root_dev" ] || return 1
        mount_root_device "$root_dev" && { echo "imgpipe init: root device $root_dev ($(root_type))"; return 0; }
        fail "$root_dev mounts neither as squashfs nor as erofs"
    fi
    if [ -n "$partlabel" ]; then
        for u in /sys/class/block/*/uevent; do
            grep -qx "PARTNAME=$partlabel" "$u" || continue
            dev=/dev/$(sed -n 's/^DEVNAME=//p' "$u")
            mount_root_device "$dev" && { echo "imgpipe init: root partition $dev ($(root_type))"; return 0; }
            echo "imgpipe init: $dev (PARTLABEL=$partlabel) mounts neither as squashfs nor as erofs"
        done
        return 1
    fi
    candidates=
    by_findfs=
    if [ -n "$live_label" ]; then
        by_findfs=$(findfs "LABEL=$live_label" 2>/dev/null)
        candidates=$by_findfs
    fi
    for b in /sys/class/block/*; do
        dev=/dev/${b##*/}
        [ -b "$dev" ] || continue
        [ "$dev" = "$by_findfs" ] && continue
        if [ -n "$live_label" ]; then
            [ "$(iso_label "$dev")" = "$live_label" ] || continue
        fi
        candidates="$candidates $dev"
    done
    for dev in $candidates; do
        mount -t iso9660 -o ro "$dev" /run/medium 2>/dev/null || continue
        for img in /run/medium/LiveOS/squashfs.img /run/medium/live/filesystem.squashfs; do
            [ -f "$img" ] || continue
            if mount_root_image "$img"; then
                echo "imgpipe init: medium $dev, root image ${img#/run/medium} ($(root_type))"
                return 0
            fi
            fail "$dev: ${img#/run/medium} mounts neither as squashfs nor as erofs"
        done
        umount /run/medium
    done
    return 1
}
tries=0
until find_root; do
    tries=$((tries + 1))
    if [ "$tries" -ge 90 ]; then
        echo "imgpipe init: block devices: $(ls /sys/class/block | tr '\n' ' ')"
        for b in /sys/class/block/*; do echo "  ${b##*/}: iso label '$(iso_label /dev/${b##*/})'"; done
        [ -n "$partlabel" ] && grep -h PARTNAME /sys/class/block/*/uevent
        fail "no root found for root=live:CDLABEL='$live_label' boot=live='$live_any' root=PARTLABEL='$partlabel' root='$root_dev' rd.luks.name='$luks_uuid' after $tries s"
    fi
    sleep 1
done
[ -f /run/root/imgpipe-marker ] || fail "the root image has no /imgpipe-marker"
cat /run/root/imgpipe-marker
[ -f /run/root/etc/hostname ] || fail "the root image has no /etc/hostname"
echo "hostname=$(cat /run/root/etc/hostname)"
sync
poweroff -f
while :; do sleep 1; done
"#;

/// A module's name as modprobe compares them (`-` and `_` are one).
fn module_name(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    let base = base.split(".ko").next().unwrap_or(base);
    base.replace('-', "_")
}

/// `modules.dep` as (path, dependencies) by module name.
fn modules_dep(k: &Kernel) -> std::collections::BTreeMap<String, (String, Vec<String>)> {
    let text = fs::read_to_string(k.modules_dir.join("modules.dep")).unwrap();
    text.lines()
        .filter_map(|line| {
            let (path, deps) = line.split_once(':')?;
            let deps = deps.split_whitespace().map(str::to_owned).collect();
            Some((module_name(path), (path.to_owned(), deps)))
        })
        .collect()
}

/// The module paths (relative to the modules directory) to load, in order: each module after
/// what `modules.dep` lists for it (loaded last listed first, as modprobe does).
pub fn live_module_paths(k: &Kernel) -> Vec<String> {
    module_paths(k, LIVE_MODULES)
}

/// `wanted`'s module paths, each after its dependencies.
fn module_paths(k: &Kernel, wanted: &[&str]) -> Vec<String> {
    let dep = modules_dep(k);
    let mut order: Vec<String> = Vec::new();
    for want in wanted {
        let Some((path, deps)) = dep.get(&want.replace('-', "_")) else {
            panic!(
                "module {want} is not in {}/modules.dep (built in?)",
                k.modules_dir.display()
            );
        };
        for d in deps.iter().rev().chain(std::iter::once(path)) {
            // modules.dep lists every dependency transitively, the deepest last.
            if !order.contains(d) {
                order.push(d.clone());
            }
        }
    }
    order
}

/// A static busybox (Debian's busybox-static).
fn busybox() -> PathBuf {
    let p = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .expect("busybox-static is not installed (run scripts/test.sh)");
    assert!(
        !has_interpreter(&fs::read(&p).unwrap()),
        "{} is dynamically linked; install busybox-static",
        p.display()
    );
    p
}

/// Whether an ELF64 little-endian executable has a `PT_INTERP` program header (is dynamic).
fn has_interpreter(elf: &[u8]) -> bool {
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let (size, count) = (u16_at(0x36), u16_at(0x38));
    (0..count).any(|i| elf[phoff + i * size..][..4] == 3u32.to_le_bytes())
}

/// A newc ("070701") cpio archive, written entry by entry.
#[derive(Debug, Default)]
pub struct Cpio {
    out: Vec<u8>,
    ino: u32,
}

impl Cpio {
    fn header(&mut self, name: &str, mode: u32, nlink: u32, size: usize, rdev: (u32, u32)) {
        self.ino += 1;
        let fields = [
            self.ino,
            mode,
            0,
            0,
            nlink,
            0,
            u32::try_from(size).unwrap(),
            0,
            0,
            rdev.0,
            rdev.1,
            u32::try_from(name.len() + 1).unwrap(),
            0,
        ];
        self.out.extend_from_slice(b"070701");
        for f in fields {
            self.out.extend_from_slice(format!("{f:08X}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
    }

    /// A directory.
    pub fn dir(&mut self, name: &str) {
        self.header(name, 0o040_755, 2, 0, (0, 0));
    }

    /// A regular file.
    pub fn file(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.header(name, 0o100_000 | mode, 1, data.len(), (0, 0));
        self.out.extend_from_slice(data);
        self.pad();
    }

    /// A symbolic link.
    pub fn symlink(&mut self, name: &str, target: &str) {
        self.header(name, 0o120_777, 1, target.len(), (0, 0));
        self.out.extend_from_slice(target.as_bytes());
        self.pad();
    }

    /// A character device node.
    pub fn char_device(&mut self, name: &str, mode: u32, major: u32, minor: u32) {
        self.header(name, 0o020_000 | mode, 1, 0, (major, minor));
    }

    /// The trailer; the archive's bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.ino = 0;
        let name = "TRAILER!!!";
        self.out.extend_from_slice(b"070701");
        for f in [0u32, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, name.len() as u32 + 1, 0] {
            self.out.extend_from_slice(format!("{f:08X}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out
    }
}

/// The initramfs (gzip'd newc cpio): busybox with its applet links, the modules of
/// [`live_module_paths`] and [`INIT`]. The same kernel gives the same bytes.
pub fn live_initramfs(k: &Kernel) -> Vec<u8> {
    initramfs(k, None)
}

/// The modules dm-crypt needs for LUKS2's aes-xts-plain64 (xts over ecb; AES itself is built
/// in), and the kernel crypto API sockets cryptsetup decrypts keyslots through.
pub const LUKS_MODULES: &[&str] = &[
    "dm-mod",
    "dm-crypt",
    "ecb",
    "xts",
    "algif_skcipher",
    "algif_hash",
];

/// [`live_initramfs`] plus the host's cryptsetup (with the shared libraries `ldd` names),
/// [`LUKS_MODULES`] and `passphrase` as `/etc/imgpipe-passphrase`: it opens a LUKS2 root
/// named by `rd.luks.name=`. A test-only shortcut: the key travels with the initramfs.
/// `None` (a skip notice) without cryptsetup outside CI.
pub fn luks_initramfs(k: &Kernel, passphrase: &[u8]) -> Option<Vec<u8>> {
    let cryptsetup = crate::tool("cryptsetup")?;
    Some(initramfs(k, Some((&cryptsetup, passphrase))))
}

/// The shared libraries `ldd` lists for `exe` (the dynamic loader included), by the absolute
/// path the loader looks them up at.
fn shared_libraries(exe: &Path) -> Vec<String> {
    let out = crate::stdout_of("ldd", [exe]);
    let mut libs: Vec<String> = out
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let path = match l.split_once("=>") {
                Some((_, rest)) => rest.trim(),
                None => l,
            };
            let path = path.split(" (").next()?.trim();
            path.starts_with('/').then(|| path.to_owned())
        })
        .collect();
    libs.sort();
    libs.dedup();
    libs
}

fn initramfs(k: &Kernel, luks: Option<(&Path, &[u8])>) -> Vec<u8> {
    let mut modules = live_module_paths(k);
    if luks.is_some() {
        for m in module_paths(k, LUKS_MODULES) {
            if !modules.contains(&m) {
                modules.push(m);
            }
        }
    }
    let libs = luks
        .map(|(exe, _)| shared_libraries(exe))
        .unwrap_or_default();
    let mut c = Cpio::default();
    let mut dirs = BTreeSet::new();
    for d in [
        "bin",
        "dev",
        "proc",
        "sys",
        "run",
        "lib",
        "lib/modules",
        "etc",
    ] {
        dirs.insert(d.to_owned());
    }
    let kdir = format!("lib/modules/{}", k.version);
    let lib_paths = libs.iter().map(|l| l.trim_start_matches('/').to_owned());
    for m in modules
        .iter()
        .map(|m| format!("{kdir}/{m}"))
        .chain(lib_paths)
    {
        let mut p = PathBuf::from(m);
        while let Some(parent) = p.parent() {
            if parent.as_os_str().is_empty() {
                break;
            }
            dirs.insert(parent.to_string_lossy().into_owned());
            p = parent.to_path_buf();
        }
    }
    // BTreeSet order puts every parent before its children.
    for d in &dirs {
        c.dir(d);
    }
    c.char_device("dev/console", 0o600, 5, 1);
    c.char_device("dev/null", 0o666, 1, 3);
    c.file("bin/busybox", 0o755, &fs::read(busybox()).unwrap());
    for a in APPLETS {
        c.symlink(&format!("bin/{a}"), "busybox");
    }
    for m in &modules {
        let data = fs::read(k.modules_dir.join(m)).unwrap();
        c.file(&format!("{kdir}/{m}"), 0o644, &data);
    }
    if let Some((exe, passphrase)) = luks {
        c.file("bin/cryptsetup", 0o755, &fs::read(exe).unwrap());
        for l in &libs {
            // fs::read follows the soname links to the library itself.
            c.file(l.trim_start_matches('/'), 0o755, &fs::read(l).unwrap());
        }
        c.file("etc/imgpipe-passphrase", 0o600, passphrase);
    }
    let init = INIT.replace("@MODULES@", &modules.join(" "));
    c.file("init", 0o755, init.as_bytes());
    let cpio = c.finish();
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::new(6));
    gz.write_all(&cpio).unwrap();
    gz.finish().unwrap()
}

/// GRUB images made with `grub-mkimage`, without an embedded configuration: each reads
/// `grub.cfg` from its prefix on the device it was started from.
#[derive(Debug, Clone)]
pub struct GrubImages {
    /// `-O i386-pc-eltorito -p /boot/grub` (the ISO's El Torito BIOS image).
    pub eltorito: PathBuf,
    /// `-O x86_64-efi -p /EFI/BOOT` (`BOOTX64.EFI`).
    pub efi: PathBuf,
    /// GRUB's `boot_hybrid.img` (the isohybrid MBR).
    pub boot_hybrid: PathBuf,
}

/// The GRUB modules a generated `grub.cfg` needs to find the medium and boot Linux.
pub const GRUB_MODULES: &[&str] = &[
    "normal",
    "configfile",
    "linux",
    "gzio",
    "boot",
    "search",
    "search_label",
    "search_fs_uuid",
    "search_fs_file",
    "iso9660",
    "fat",
    "part_gpt",
    "part_msdos",
    "serial",
    "terminal",
    "echo",
    "test",
    "cat",
    "ls",
    "halt",
    "reboot",
    "sleep",
    "all_video",
];

/// Builds [`GrubImages`] into `dir` (byte-stable: the same GRUB gives the same bytes).
/// `None` (a skip notice) when GRUB is missing outside CI.
pub fn grub_images(dir: &Path) -> Option<GrubImages> {
    let mkimage = crate::tool("grub-mkimage")?;
    let boot_hybrid = installed(BOOT_HYBRID)?;
    let eltorito = dir.join("eltorito.img");
    let efi = dir.join("BOOTX64.EFI");
    for (format, prefix, out, extra) in [
        ("i386-pc-eltorito", "/boot/grub", &eltorito, "biosdisk"),
        ("x86_64-efi", "/EFI/BOOT", &efi, "efi_gop"),
    ] {
        let mut args: Vec<std::ffi::OsString> = vec![
            "-O".into(),
            format.into(),
            "-p".into(),
            prefix.into(),
            "-o".into(),
            out.into(),
            extra.into(),
        ];
        args.extend(GRUB_MODULES.iter().map(Into::into));
        run(&mkimage, args);
    }
    Some(GrubImages {
        eltorito,
        efi,
        boot_hybrid,
    })
}

/// How a test starts a medium.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Medium {
    /// SeaBIOS, the image as a CD (IDE, El Torito).
    BiosCd,
    /// SeaBIOS, the image as a USB stick (xHCI, usb-storage: the isohybrid MBR).
    BiosUsb,
    /// OVMF, the image as a CD (El Torito's EFI entry).
    UefiCd,
    /// OVMF, the image as a USB stick (the GPT's ESP).
    UefiUsb,
    /// OVMF, the image as a virtio disk.
    UefiDisk,
}

impl Medium {
    /// The four ways a hybrid live ISO boots.
    pub const LIVE: [Medium; 4] = [
        Medium::BiosCd,
        Medium::UefiCd,
        Medium::BiosUsb,
        Medium::UefiUsb,
    ];

    /// Whether the firmware is OVMF.
    pub fn uefi(self) -> bool {
        matches!(self, Medium::UefiCd | Medium::UefiUsb | Medium::UefiDisk)
    }

    /// QEMU arguments for the firmware and `image` as this medium; a UEFI boot gets a private
    /// copy of the variable store in `scratch`. `None` (a skip notice) when OVMF is missing
    /// outside CI.
    pub fn args(self, image: &Path, scratch: &Path) -> Option<Vec<String>> {
        let mut args = Vec::new();
        if self.uefi() {
            let (code, vars) = (installed(OVMF_CODE)?, installed(OVMF_VARS)?);
            let name = format!(
                "ovmf-vars-{:?}-{}.fd",
                self,
                image.file_name().unwrap_or_default().to_string_lossy()
            );
            let copy = scratch.join(name);
            fs::copy(vars, &copy).unwrap();
            args.extend([
                "-drive".to_owned(),
                format!("if=pflash,format=raw,readonly=on,file={}", code.display()),
                "-drive".to_owned(),
                format!("if=pflash,format=raw,file={}", copy.display()),
            ]);
        }
        let image = image.display();
        match self {
            Medium::BiosCd | Medium::UefiCd => {
                args.extend([
                    "-drive".to_owned(),
                    format!("if=ide,index=2,media=cdrom,format=raw,readonly=on,file={image}"),
                ]);
            }
            Medium::BiosUsb | Medium::UefiUsb => {
                args.extend([
                    "-drive".to_owned(),
                    format!("if=none,id=stick,format=raw,readonly=on,file={image}"),
                    "-device".to_owned(),
                    "qemu-xhci".to_owned(),
                    "-device".to_owned(),
                    "usb-storage,drive=stick,removable=on".to_owned(),
                ]);
            }
            Medium::UefiDisk => {
                args.extend([
                    "-drive".to_owned(),
                    format!("if=virtio,format=raw,readonly=on,file={image}"),
                ]);
            }
        }
        Some(args)
    }
}

/// Runs QEMU (TCG, 512 MiB, serial console on stdout, no reboot; one at a time in a process)
/// with `args` until every
/// string of `expect` is on the serial console (`Ok(log)`), or the guest prints
/// [`INIT_FAIL`], panics or stops at GRUB's prompt, QEMU exits, or `timeout` passes
/// (`Err(log)`).
///
/// After one boot of the process timed out, every later one fails at once: a machine too
/// slow (or a guest too broken) to boot in `timeout` would otherwise spend it on every
/// medium of every test, past any CI budget.
pub fn qemu_boot(args: &[String], expect: &[&str], timeout: Duration) -> Result<String, String> {
    // One QEMU at a time, whatever the test harness runs in parallel: TCG is CPU-bound.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    static TIMED_OUT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if TIMED_OUT.load(std::sync::atomic::Ordering::Relaxed) {
        return Err("not booted: an earlier boot of this test binary timed out".to_owned());
    }
    // Test support measures the wall time it waits; nothing it writes depends on it.
    #[allow(clippy::disallowed_methods)]
    let started = std::time::Instant::now();
    let qemu = crate::tool("qemu-system-x86_64").ok_or("qemu-system-x86_64 is not installed")?;
    let mut child = Command::new(qemu)
        .args([
            "-accel",
            "tcg",
            "-m",
            "512",
            "-display",
            "none",
            "-monitor",
            "none",
            "-serial",
            "stdio",
            "-no-reboot",
        ])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start QEMU: {e}"))?;
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut readers = Vec::new();
    for pipe in [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let sink = Arc::clone(&log);
        readers.push(std::thread::spawn(move || {
            let mut pipe = pipe;
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        }));
    }
    let text = || String::from_utf8_lossy(&log.lock().unwrap()).into_owned();
    let done = |t: &str| expect.iter().all(|e| t.contains(e));
    // GRUB's prompt means it found no configuration (or a command failed): it would wait.
    let failed = |t: &str| {
        [INIT_FAIL, "Kernel panic", "grub> ", "grub rescue> "]
            .iter()
            .any(|s| t.contains(s))
    };
    let step = Duration::from_millis(100);
    let mut outcome = None;
    while started.elapsed() < timeout {
        let t = text();
        if done(&t) {
            outcome = Some(true);
            break;
        }
        if failed(&t) {
            // Let the rest of the failure line arrive.
            std::thread::sleep(Duration::from_millis(300));
            outcome = Some(false);
            break;
        }
        if child.try_wait().ok().flatten().is_some() {
            break;
        }
        std::thread::sleep(step);
    }
    let timed_out = outcome.is_none() && started.elapsed() >= timeout;
    let _ = child.kill();
    let _ = child.wait();
    for r in readers {
        let _ = r.join();
    }
    let t = text();
    let ok = outcome.unwrap_or_else(|| done(&t));
    if ok {
        Ok(t)
    } else if timed_out {
        TIMED_OUT.store(true, std::sync::atomic::Ordering::Relaxed);
        Err(format!("timed out after {timeout:?}; serial log:\n{t}"))
    } else {
        Err(format!("serial log:\n{t}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpio_is_newc_and_aligned() {
        let mut c = Cpio::default();
        c.dir("bin");
        c.file("bin/x", 0o755, b"hello");
        c.symlink("bin/y", "x");
        let out = c.finish();
        assert_eq!(out.len() % 4, 0);
        assert!(out.starts_with(b"070701"));
        assert!(out.windows(10).any(|w| w == b"TRAILER!!!"));
        if let Some(cpio) = ["/usr/bin/bsdcpio", "/usr/bin/cpio"]
            .into_iter()
            .map(Path::new)
            .find(|p| p.exists())
        {
            let t = crate::tempdir();
            let archive = t.path().join("a.cpio");
            fs::write(&archive, &out).unwrap();
            let listing = crate::stdout_of(
                "sh",
                [
                    "-c",
                    &format!("{} -t < {}", cpio.display(), archive.display()),
                ],
            );
            assert_eq!(
                listing.lines().collect::<Vec<_>>(),
                ["bin", "bin/x", "bin/y"]
            );
        }
    }
}
