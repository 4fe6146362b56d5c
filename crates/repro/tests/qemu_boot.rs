//! It boots: a hybrid image (isofs for the volume and El Torito, gptpart for the GPT) around GRUB from Debian (grub-pc-bin, grub-efi-amd64-bin) boots in
//! QEMU four ways (BIOS as CD, UEFI as CD, BIOS as USB stick, UEFI as USB stick) and GRUB,
//! from an embedded config, finds our ISO9660 file system and prints a marker file from it
//! on the serial console.

use std::path::PathBuf;
use std::time::Duration;

use imgpipe_isofs::{BiosBoot, Builder, EfiBoot, HybridMbr, MbrFlavor, Metadata, Options};
use imgpipe_testsupport::boot::{self, BOOT_HYBRID, Medium, installed};
use imgpipe_testsupport::{run, tempdir, tool};

const MARKER: &str = "IMGPIPE-BOOT-OK-7f3a";

#[test]
fn grub_hybrid_boots_bios_and_uefi_from_cd_and_usb() {
    let (Some(mkimage), Some(mkfs), Some(mmd), Some(mcopy), Some(_qemu)) = (
        tool("grub-mkimage"),
        tool("mkfs.vfat"),
        tool("mmd"),
        tool("mcopy"),
        tool("qemu-system-x86_64"),
    ) else {
        return;
    };
    let Some(mbr) = installed(BOOT_HYBRID) else {
        return;
    };
    let t = tempdir();
    let d = t.path();
    let cfg = d.join("early.cfg");
    std::fs::write(
        &cfg,
        "serial --unit=0 --speed=115200\nterminal_output serial\nterminal_input serial\n\
         search --no-floppy --file /imgpipe-marker.txt --set=root\ncat /imgpipe-marker.txt\nhalt\n",
    )
    .unwrap();
    let modules = [
        "iso9660",
        "search",
        "search_fs_file",
        "cat",
        "echo",
        "serial",
        "terminal",
        "part_msdos",
        "part_gpt",
        "halt",
    ];
    let eltorito = d.join("eltorito.img");
    let efi = d.join("bootx64.efi");
    for (format, out, extra) in [
        ("i386-pc-eltorito", &eltorito, "biosdisk"),
        ("x86_64-efi", &efi, "fat"),
    ] {
        let mut args: Vec<std::ffi::OsString> = vec![
            "-O".into(),
            format.into(),
            "-p".into(),
            "/boot/grub".into(),
            "-c".into(),
            cfg.clone().into(),
            "-o".into(),
            out.clone().into(),
            extra.into(),
        ];
        args.extend(modules.iter().map(Into::into));
        run(&mkimage, args);
    }
    let esp = d.join("esp.img");
    std::fs::write(&esp, vec![0u8; 4 << 20]).unwrap();
    run(&mkfs, [esp.as_os_str()]);
    let i = format!("-i{}", esp.display());
    run(&mmd, [i.as_str(), "::/EFI", "::/EFI/BOOT"]);
    run(
        &mcopy,
        [i.as_str(), efi.to_str().unwrap(), "::/EFI/BOOT/BOOTX64.EFI"],
    );

    let image = |gpt: bool| -> PathBuf {
        let mut o = Options::new("IMGPIPE_LIVE", 1_700_000_000);
        o.bios_boot = Some(BiosBoot {
            path: "boot/grub/eltorito.img".into(),
            load_size: Some(4),
            boot_info_table: true,
            grub2_boot_info: true,
        });
        o.boot_catalog = "boot/grub/boot.cat".into();
        o.efi_boot = Some(EfiBoot::Appended { file: esp.clone() });
        o.hybrid_mbr = Some(HybridMbr::detect(std::fs::read(&mbr).unwrap()));
        assert_eq!(o.hybrid_mbr.as_ref().unwrap().flavor, MbrFlavor::Grub2);
        o.gpt = gpt;
        let mut b = Builder::new(o);
        b.add_file(
            "boot/grub/eltorito.img",
            Metadata::file(0o644),
            std::fs::read(&eltorito).unwrap(),
        )
        .unwrap();
        b.add_file(
            "imgpipe-marker.txt",
            Metadata::file(0o644),
            format!("{MARKER}\n").into_bytes(),
        )
        .unwrap();
        let path = d.join(if gpt { "gpt.iso" } else { "mbr.iso" });
        let f = std::fs::File::create(&path).unwrap();
        // With a GPT, gptpart writes it (imgpipe_repro::iso::build_hybrid).
        let seed = imgpipe_repro::Seed::from_material(b"qemu boot");
        imgpipe_repro::iso::build_hybrid(b, seed, std::io::BufWriter::new(f)).unwrap();
        path
    };
    let (mbr_iso, gpt_iso) = (image(false), image(true));
    let cases = [
        ("BIOS, CD, isohybrid MBR", Medium::BiosCd, &mbr_iso),
        ("UEFI, CD, isohybrid MBR", Medium::UefiCd, &mbr_iso),
        ("BIOS, USB stick, GPT", Medium::BiosUsb, &gpt_iso),
        ("UEFI, USB stick, GPT", Medium::UefiUsb, &gpt_iso),
    ];
    let mut failures = Vec::new();
    for (name, medium, iso) in cases {
        let Some(args) = medium.args(iso, d) else {
            return;
        };
        // A boot takes 1-15 s here; leave room for a loaded CI machine.
        if let Err(log) = boot::qemu_boot(&args, &[MARKER], Duration::from_secs(120)) {
            failures.push(format!("{name}: no marker; {log}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
