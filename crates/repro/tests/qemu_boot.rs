//! It boots: a hybrid image (isofs for the volume and El Torito, gptpart for the GPT) around GRUB from Debian (grub-pc-bin, grub-efi-amd64-bin) boots in
//! QEMU four ways (BIOS as CD, UEFI as CD, BIOS as USB stick, UEFI as USB stick) and GRUB,
//! from an embedded config, finds our ISO9660 file system and prints a marker file from it
//! on the serial console.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use imgpipe_isofs::{BiosBoot, Builder, EfiBoot, HybridMbr, MbrFlavor, Metadata, Options};
use imgpipe_testsupport::{in_ci, run, tempdir, tool};

const MARKER: &str = "IMGPIPE-BOOT-OK-7f3a";
const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";
const BOOT_HYBRID: &str = "/usr/lib/grub/i386-pc/boot_hybrid.img";

fn file(path: &str) -> Option<PathBuf> {
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

/// Boots QEMU (TCG) and waits for the marker on the serial console.
fn boots(qemu: &Path, args: &[String]) -> Result<(), String> {
    let mut child = Command::new(qemu)
        .args([
            "-accel",
            "tcg",
            "-m",
            "256",
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
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut stdout = child.stdout.take().unwrap();
    let sink = Arc::clone(&log);
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let mut found = false;
    // A boot takes 1-15 s here; leave room for a loaded CI machine.
    for _ in 0..1200 {
        if String::from_utf8_lossy(&log.lock().unwrap()).contains(MARKER) {
            found = true;
            break;
        }
        if child.try_wait().ok().flatten().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    found = found || String::from_utf8_lossy(&log.lock().unwrap()).contains(MARKER);
    if found {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&log.lock().unwrap()).into_owned())
    }
}

#[test]
fn grub_hybrid_boots_bios_and_uefi_from_cd_and_usb() {
    let (Some(mkimage), Some(mkfs), Some(mmd), Some(mcopy), Some(qemu)) = (
        tool("grub-mkimage"),
        tool("mkfs.vfat"),
        tool("mmd"),
        tool("mcopy"),
        tool("qemu-system-x86_64"),
    ) else {
        return;
    };
    let (Some(code), Some(vars), Some(mbr)) = (file(OVMF_CODE), file(OVMF_VARS), file(BOOT_HYBRID))
    else {
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
    let uefi = |iso: &Path| -> Vec<String> {
        let v = d.join(format!(
            "vars-{}",
            iso.file_name().unwrap().to_string_lossy()
        ));
        std::fs::copy(&vars, &v).unwrap();
        vec![
            "-drive".into(),
            format!("if=pflash,format=raw,readonly=on,file={}", code.display()),
            "-drive".into(),
            format!("if=pflash,format=raw,file={}", v.display()),
        ]
    };
    let cd = |iso: &Path| vec!["-cdrom".to_string(), iso.display().to_string()];
    let usb = |iso: &Path| {
        vec![
            "-drive".to_string(),
            format!("if=none,id=stick,format=raw,file={}", iso.display()),
            "-device".into(),
            "qemu-xhci".into(),
            "-device".into(),
            "usb-storage,drive=stick".into(),
        ]
    };
    let cases: [(&str, Vec<String>); 4] = [
        ("BIOS, CD, isohybrid MBR", cd(&mbr_iso)),
        (
            "UEFI, CD, isohybrid MBR",
            [uefi(&mbr_iso), cd(&mbr_iso)].concat(),
        ),
        ("BIOS, USB stick, GPT", usb(&gpt_iso)),
        (
            "UEFI, USB stick, GPT",
            [uefi(&gpt_iso), usb(&gpt_iso)].concat(),
        ),
    ];
    let mut failures = Vec::new();
    for (name, args) in cases {
        if let Err(log) = boots(&qemu, &args) {
            failures.push(format!("{name}: no marker; serial log:\n{log}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
