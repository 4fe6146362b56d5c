//! A live ISO composed by hand from the library boots Debian 12's kernel four ways (BIOS and
//! UEFI, from a CD and from a USB stick); the test initramfs (imgpipe_testsupport::boot) finds
//! the medium by its label, mounts `/LiveOS/squashfs.img` from it and prints the root's marker
//! and hostname. This is the shape `imgpipe build` writes; what it needed:
//!
//! - GRUB images from `grub-mkimage` without an embedded configuration: BIOS
//!   `-O i386-pc-eltorito -p /boot/grub` at `/boot/grub/eltorito.img` (El Torito: load size 4,
//!   boot info table, GRUB2 boot info; the isohybrid MBR is `boot_hybrid.img`), UEFI
//!   `-O x86_64-efi -p /EFI/BOOT` as `/EFI/BOOT/BOOTX64.EFI` in the ESP (`efiboot.img`).
//! - The BIOS image reads `/boot/grub/grub.cfg` from the ISO 9660 tree (CD and USB alike).
//!   The UEFI image reads `/EFI/BOOT/grub.cfg` from the device it was loaded from: the ESP
//!   when started from the GPT (USB stick), but the ISO 9660 tree itself when started from
//!   El Torito (CD), so the ISO tree carries `/EFI/BOOT/grub.cfg` too. All three files are the
//!   same text:
//!
//! ```text
//! serial --unit=0 --speed=115200
//! terminal_input serial console
//! terminal_output serial console
//! set timeout=1
//! set default=0
//! search --no-floppy --set=root --label LABEL
//! menuentry 'imgpipe live' {
//!     linux /images/pxeboot/vmlinuz root=live:CDLABEL=LABEL console=ttyS0
//!     initrd /images/pxeboot/initrd.img
//! }
//! ```
//!
//! - `search --label` finds the ISO 9660 volume (the whole disk comes before its partitions,
//!   so an ESP carrying the same FAT label does not get in the way; here it does). A 32-byte
//!   mixed-case label is found too (examples/imgpipe/tests/build_boot.rs).
//! - Kernel command line: `root=live:CDLABEL=LABEL console=ttyS0` (nothing else needed).

use std::path::{Path, PathBuf};
use std::time::Duration;

use imgpipe_isofs::{BiosBoot, Builder, EfiBoot, HybridMbr, MbrFlavor, Metadata, Options};
use imgpipe_testsupport::boot::{self, Medium};
use imgpipe_testsupport::{run, tempdir, tool};

const LABEL: &str = "IMGPIPELIVE";
const MARKER: &str = "IMGPIPE-LIVE-ROOT-5c1e";
const HOSTNAME: &str = "live-by-hand";
const EPOCH: u32 = 1_700_000_000;

/// The grub.cfg of the module docs, for `label`.
fn grub_cfg(label: &str) -> String {
    format!(
        "serial --unit=0 --speed=115200\n\
         terminal_input serial console\n\
         terminal_output serial console\n\
         set timeout=1\n\
         set default=0\n\
         search --no-floppy --set=root --label {label}\n\
         menuentry 'imgpipe live' {{\n\
         \x20   linux /images/pxeboot/vmlinuz root=live:CDLABEL={label} console=ttyS0\n\
         \x20   initrd /images/pxeboot/initrd.img\n\
         }}\n"
    )
}

/// A squashfs root with the marker and a hostname.
fn root_image() -> Vec<u8> {
    use imgpipe_squashfs::{Builder, EntryMeta, WriteOptions};
    let mut b = Builder::new(WriteOptions::new(EPOCH)).unwrap();
    b.add_dir("etc", EntryMeta::new(0o755, EPOCH)).unwrap();
    b.add_file(
        "etc/hostname",
        EntryMeta::new(0o644, EPOCH),
        format!("{HOSTNAME}\n").into_bytes(),
    )
    .unwrap();
    b.add_file(
        "imgpipe-marker",
        EntryMeta::new(0o644, EPOCH),
        format!("{MARKER}\n").into_bytes(),
    )
    .unwrap();
    let mut out = std::io::Cursor::new(Vec::new());
    b.build(&mut out).unwrap();
    out.into_inner()
}

/// A FAT ESP labelled `label` with GRUB and its configuration in /EFI/BOOT.
fn esp(dir: &Path, efi: &Path, cfg: &Path, label: &str) -> Option<PathBuf> {
    let (mkfs, mmd, mcopy) = (tool("mkfs.vfat")?, tool("mmd")?, tool("mcopy")?);
    let esp = dir.join("efiboot.img");
    std::fs::write(&esp, vec![0u8; 4 << 20]).unwrap();
    run(&mkfs, ["-n", label, esp.to_str().unwrap()]);
    let i = format!("-i{}", esp.display());
    run(&mmd, [i.as_str(), "::/EFI", "::/EFI/BOOT"]);
    run(
        &mcopy,
        [i.as_str(), efi.to_str().unwrap(), "::/EFI/BOOT/BOOTX64.EFI"],
    );
    run(
        &mcopy,
        [i.as_str(), cfg.to_str().unwrap(), "::/EFI/BOOT/grub.cfg"],
    );
    Some(esp)
}

#[test]
fn live_iso_boots_linux_bios_and_uefi_from_cd_and_usb() {
    let Some(kernel) = boot::debian_kernel() else {
        return;
    };
    if tool("qemu-system-x86_64").is_none() {
        return;
    }
    let t = tempdir();
    let d = t.path();
    let Some(grub) = boot::grub_images(d) else {
        return;
    };
    let cfg_text = grub_cfg(LABEL);
    let cfg = d.join("grub.cfg");
    std::fs::write(&cfg, &cfg_text).unwrap();
    let Some(esp) = esp(d, &grub.efi, &cfg, LABEL) else {
        return;
    };
    let initrd = boot::live_initramfs(&kernel);
    assert_eq!(
        initrd,
        boot::live_initramfs(&kernel),
        "initramfs not stable"
    );

    let mut o = Options::new(LABEL, i64::from(EPOCH));
    o.bios_boot = Some(BiosBoot {
        path: "boot/grub/eltorito.img".into(),
        load_size: Some(4),
        boot_info_table: true,
        grub2_boot_info: true,
    });
    o.boot_catalog = "boot/grub/boot.cat".into();
    o.efi_boot = Some(EfiBoot::Appended { file: esp.clone() });
    o.hybrid_mbr = Some(HybridMbr::detect(std::fs::read(&grub.boot_hybrid).unwrap()));
    assert_eq!(o.hybrid_mbr.as_ref().unwrap().flavor, MbrFlavor::Grub2);
    o.gpt = true;
    let mut b = Builder::new(o);
    let file = |b: &mut Builder, path: &str, data: Vec<u8>| {
        b.add_file(path, Metadata::file(0o644), data).unwrap();
    };
    file(
        &mut b,
        "boot/grub/eltorito.img",
        std::fs::read(&grub.eltorito).unwrap(),
    );
    file(&mut b, "boot/grub/grub.cfg", cfg_text.clone().into_bytes());
    file(&mut b, "EFI/BOOT/grub.cfg", cfg_text.clone().into_bytes());
    file(
        &mut b,
        "images/pxeboot/vmlinuz",
        std::fs::read(&kernel.vmlinuz).unwrap(),
    );
    file(&mut b, "images/pxeboot/initrd.img", initrd);
    file(&mut b, "LiveOS/squashfs.img", root_image());
    let iso = d.join("live.iso");
    let f = std::fs::File::create(&iso).unwrap();
    let seed = imgpipe_repro::Seed::from_material(b"live boot");
    imgpipe_repro::iso::build_hybrid(b, seed, std::io::BufWriter::new(f)).unwrap();

    let hostname = format!("hostname={HOSTNAME}");
    let mut failures = Vec::new();
    for medium in Medium::LIVE {
        let Some(args) = medium.args(&iso, d) else {
            return;
        };
        match boot::qemu_boot(&args, &[MARKER, &hostname], Duration::from_secs(240)) {
            Ok(log) => {
                let found = log.lines().find(|l| l.contains("imgpipe init: medium"));
                eprintln!("{medium:?}: booted ({})", found.unwrap_or_default().trim());
            }
            Err(log) => failures.push(format!("{medium:?}: no marker; {log}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
