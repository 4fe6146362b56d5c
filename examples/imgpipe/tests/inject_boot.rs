//! The injected live image boots: `imgpipe build --reserve imgpipe-marker:64K` from a tree
//! without the marker (an empty placeholder in the EROFS root), `imgpipe inject` of a piece
//! whose first line is a new marker into the ISO and the disk, and the guest's `/init` prints
//! that line from inside the mounted root (UEFI CD and BIOS USB from the ISO, UEFI from the
//! disk image). The same `inject` puts a second piece into a slot in the ESP
//! (`--reserve-esp`): the firmware and GRUB read that patched FAT (GRUB, its configuration,
//! and on the disk the kernel and initrd), so the boots prove it whole.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use imgpipe_testsupport::boot::{self, Medium};
use imgpipe_testsupport::{tempdir, tool};

const PIECE_MARKER: &str = "IMGPIPE-INJECTED-PIECE-5e1c";
const HOSTNAME: &str = "imgpipe-kiosk";

fn write(path: &Path, data: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, data).unwrap();
}

fn ok(what: &str, o: &Output) {
    assert!(
        o.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn injected_piece_boots_from_iso_and_disk() {
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
    let root = d.join("root");
    // No /imgpipe-marker: the build creates the slot's placeholder, empty.
    write(
        &root.join("etc/hostname"),
        format!("{HOSTNAME}\n").as_bytes(),
    );
    write(
        &root.join(format!("boot/vmlinuz-{}", kernel.version)),
        &fs::read(&kernel.vmlinuz).unwrap(),
    );
    write(
        &root.join(format!("boot/initrd.img-{}", kernel.version)),
        &boot::live_initramfs(&kernel),
    );
    let ks = d.join("live.ks");
    fs::write(
        &ks,
        "bootloader --append=\"console=ttyS0\" --timeout=1\nrootpw --lock\n",
    )
    .unwrap();
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
        .args(["--label", "IMGPIPE_SLOT"])
        .arg("--efi-loader")
        .arg(&grub.efi)
        .arg("--bios-loader")
        .arg(&grub.eltorito)
        .arg("--bios-hybrid-mbr")
        .arg(&grub.boot_hybrid)
        .args(["--epoch", "1700000000"])
        .args(["--rootfs", "erofs", "--comp", "lz4hc"])
        .args(["--reserve", "imgpipe-marker:64K"])
        .args(["--reserve-esp", "kiosk/piece.html:64K"])
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap();
    ok("imgpipe build", &out);

    // A piece of a few KiB: the marker line, then filler.
    let mut piece = format!("{PIECE_MARKER}\n").into_bytes();
    for i in 0..200 {
        piece.extend_from_slice(format!("<p>kiosk piece line {i}</p>\n").as_bytes());
    }
    assert!(piece.len() < 64 << 10);
    let piece_path = d.join("piece.html");
    fs::write(&piece_path, &piece).unwrap();
    let put = format!("imgpipe-marker={}", piece_path.display());
    let put_esp = format!("kiosk/piece.html={}", piece_path.display());
    let (iso2, disk2) = (d.join("kiosk.iso"), d.join("kiosk.img"));
    for (base, out_path) in [(&iso, &iso2), (&disk, &disk2)] {
        let o = Command::new(env!("CARGO_BIN_EXE_imgpipe"))
            .arg("inject")
            .arg(base)
            .args(["--put", &put, "--put", &put_esp])
            .arg("-o")
            .arg(out_path)
            .output()
            .unwrap();
        ok("imgpipe inject", &o);
    }

    let mut failures = Vec::new();
    for (medium, image) in [
        (Medium::UefiCd, &iso2),
        (Medium::BiosUsb, &iso2),
        (Medium::UefiDisk, &disk2),
    ] {
        let Some(args) = medium.args(image, d) else {
            return;
        };
        let expect = [PIECE_MARKER, "(erofs)"];
        match boot::qemu_boot(&args, &expect, Duration::from_secs(240)) {
            Ok(_) => eprintln!("{medium:?} {}: booted", image.display()),
            Err(log) => failures.push(format!(
                "{medium:?} {}: no injected marker; {log}",
                image.display()
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
