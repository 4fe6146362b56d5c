//! `imgpipe build`: what it writes (the kickstart applied, one label everywhere, a manifest
//! that matches the files), that the reference tools accept it (xorriso replays its boot
//! setup, sgdisk, fsck.vfat, unsquashfs, cryptsetup), that it is byte-reproducible across
//! directory, umask, time zone, locale, file order and thread count, and that bad input is
//! one clear error with no output left behind. Booting it is `build_boot.rs`.

use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, Output};

use imgpipe_testsupport::{pattern, run, set_mtimes, tempdir, tool};

const LABEL: &str = "IMGPIPE_LIVE";

fn imgpipe_in(dir: &Path, args: &[OsString]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imgpipe"))
        .current_dir(dir)
        .args(args)
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap()
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "status {}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn write(path: &Path, data: impl AsRef<[u8]>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

const KICKSTART: &str = "\
lang en_US.UTF-8
keyboard --vckeymap=us
timezone Europe/Prague --utc
network --hostname=kiosk-01
rootpw --plaintext secret
user --name=kiosk --groups=wheel --password=pw --plaintext
services --enabled=sshd
selinux --permissive
bootloader --append=\"console=ttyS0,115200\" --timeout=1
part /boot/efi --size=64 --fstype=efi
part / --size=32
firewall --enabled
%packages
@core
%end
%post
echo hi
%end
";

/// A small root tree with a kernel and initrd; `reverse` creates its files in the other
/// order. Every mtime is fixed, so the default epoch is too.
fn root_tree(root: &Path, reverse: bool) {
    let mut files: Vec<(&str, Vec<u8>)> = vec![
        ("boot/vmlinuz-6.1.0-test", pattern(300_000)),
        ("boot/initrd.img-6.1.0-test", pattern(200_001)),
        ("imgpipe-marker", b"IMGPIPE-MARKER\n".to_vec()),
        ("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n".to_vec()),
        ("etc/shadow", b"root:*:19000:0:99999:7:::\n".to_vec()),
        ("etc/group", b"root:x:0:\nwheel:x:10:\n".to_vec()),
        ("etc/hostname", b"localhost\n".to_vec()),
        ("usr/share/zoneinfo/Europe/Prague", b"TZif2".to_vec()),
        (
            "usr/lib/systemd/system/sshd.service",
            b"[Unit]\nDescription=ssh\n[Install]\nWantedBy=multi-user.target\n".to_vec(),
        ),
        ("usr/bin/tool", pattern(100_000)),
    ];
    if reverse {
        files.reverse();
    }
    for (p, d) in &files {
        write(&root.join(p), d);
    }
}

/// Inputs beside the tree: kickstart, loaders (GRUB images when grub-mkimage is there).
fn inputs(dir: &Path, reverse: bool) {
    root_tree(&dir.join("root"), reverse);
    write(&dir.join("ks.cfg"), KICKSTART);
    write(&dir.join("bootx64.efi"), pattern(70_000));
    write(&dir.join("eltorito.img"), pattern(30_000));
    let mbr = Path::new("/usr/lib/grub/i386-pc/boot_hybrid.img");
    let code = if mbr.exists() {
        std::fs::read(mbr).unwrap()
    } else {
        vec![0u8; 512]
    };
    write(&dir.join("boot_hybrid.img"), code);
    set_mtimes(dir, 1_700_000_000);
}

fn args(extra: &[&str]) -> Vec<OsString> {
    let mut a: Vec<OsString> = [
        "build",
        "--kickstart",
        "ks.cfg",
        "--root",
        "root",
        "-o",
        "live.iso",
        "--disk",
        "live.img",
        "--manifest",
        "manifest.json",
        "--label",
        LABEL,
        "--efi-loader",
        "bootx64.efi",
        "--bios-loader",
        "eltorito.img",
        "--bios-hybrid-mbr",
        "boot_hybrid.img",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    a.extend(extra.iter().map(OsString::from));
    a
}

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

/// Bytes `offset..offset+len` of `file`.
fn carve(file: &Path, offset: u64, len: u64) -> Vec<u8> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(file).unwrap();
    let mut buf = vec![0u8; len as usize];
    f.read_exact_at(&mut buf, offset).unwrap();
    buf
}

fn sha256(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn placed(m: &serde_json::Value, output: usize, path: &str) -> (u64, u64) {
    let f = m["outputs"][output]["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == path)
        .unwrap_or_else(|| panic!("{path} not in the manifest"));
    (f["offset"].as_u64().unwrap(), f["size"].as_u64().unwrap())
}

#[test]
fn builds_applies_the_kickstart_and_the_tools_accept_it() {
    let t = tempdir();
    let d = t.path();
    inputs(d, false);
    let o = imgpipe_in(d, &args(&["--json"]));
    ok(&o);
    let printed: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let m = manifest(d);
    assert_eq!(printed, m, "--json prints the manifest");
    assert_eq!(m["label"], LABEL);
    assert_eq!(m["epoch"], 1_700_000_000u64, "the newest input mtime");
    assert_eq!(m["kernel_version"], "6.1.0-test");
    let stderr = String::from_utf8_lossy(&o.stderr);
    for n in [
        "firewall not applied",
        "%packages not applied",
        "%post not applied",
    ] {
        assert!(stderr.contains(n), "{n}: {stderr}");
    }
    let not: Vec<&str> = m["kickstart"]["not_applied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["command"].as_str().unwrap())
        .collect();
    assert_eq!(not, ["firewall", "%packages", "%post"]);

    // The manifest matches the files.
    for (i, name) in ["live.iso", "live.img"].iter().enumerate() {
        let bytes = std::fs::read(d.join(name)).unwrap();
        assert_eq!(m["outputs"][i]["name"], *name);
        assert_eq!(m["outputs"][i]["sha256"], sha256(&bytes));
        assert_eq!(m["outputs"][i]["size"], bytes.len() as u64);
    }
    let iso = d.join("live.iso");
    let (off, len) = placed(&m, 0, "/LiveOS/squashfs.img");
    let rootfs = d.join("rootfs.sqfs");
    std::fs::write(&rootfs, carve(&iso, off, len)).unwrap();
    assert_eq!(
        m["root_image"]["sha256"],
        sha256(&std::fs::read(&rootfs).unwrap())
    );
    let (koff, klen) = placed(&m, 0, "/images/pxeboot/vmlinuz");
    assert_eq!(carve(&iso, koff, klen), pattern(300_000));
    let cmdline = m["outputs"][0]["cmdline"].as_str().unwrap();
    assert_eq!(
        cmdline,
        format!("root=live:CDLABEL={LABEL} rd.live.image console=ttyS0,115200")
    );

    // The root image: the tree with the kickstart applied (unsquashfs reads it).
    if let Some(unsquashfs) = tool("unsquashfs") {
        let cat = |p: &str| {
            String::from_utf8(
                run(
                    &unsquashfs,
                    ["-cat".as_ref(), rootfs.as_os_str(), p.as_ref()],
                )
                .stdout,
            )
            .unwrap()
        };
        assert_eq!(cat("etc/hostname"), "kiosk-01\n");
        assert_eq!(cat("imgpipe-marker"), "IMGPIPE-MARKER\n");
        // xz with the x86 BCJ filter by default, as livemedia-creator on x86-64.
        let stat = String::from_utf8(run(&unsquashfs, ["-s".as_ref(), rootfs.as_os_str()]).stdout)
            .unwrap();
        assert!(
            stat.contains("Compression xz") && stat.contains("Filters selected: x86"),
            "{stat}"
        );
        assert_eq!(m["recipe"]["rootfs"]["xz_bcj"], serde_json::json!(["x86"]));
        assert_eq!(cat("etc/locale.conf"), "LANG=en_US.UTF-8\n");
        assert!(
            cat("etc/shadow").starts_with("root:$6$"),
            "{}",
            cat("etc/shadow")
        );
        assert!(cat("etc/passwd").contains("kiosk:x:1000:1000::/home/kiosk:/bin/bash\n"));
        assert!(cat("etc/group").contains("wheel:x:10:kiosk\n"));
        let ls = String::from_utf8(
            run(
                &unsquashfs,
                [
                    "-lls".as_ref(),
                    "-d".as_ref(),
                    "".as_ref(),
                    rootfs.as_os_str(),
                ],
            )
            .stdout,
        )
        .unwrap();
        assert!(
            ls.contains("/etc/systemd/system/multi-user.target.wants/sshd.service -> /usr/lib/systemd/system/sshd.service"),
            "{ls}"
        );
        assert!(
            ls.contains("/etc/localtime -> ../usr/share/zoneinfo/Europe/Prague"),
            "{ls}"
        );
    }
    // The tree itself is untouched.
    assert_eq!(
        std::fs::read_to_string(d.join("root/etc/hostname")).unwrap(),
        "localhost\n"
    );

    // The ISO: one label everywhere; xorriso reads its boot setup and replays it.
    if let Some(xorriso) = tool("xorriso") {
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
        assert!(text.contains(&format!("-V '{LABEL}'")), "{text}");
        assert!(text.contains("-b '/boot/grub/eltorito.img'"), "{text}");
        assert!(text.contains("--grub2-mbr"), "{text}");
        assert!(text.contains("-append_partition 2"), "{text}");
        // The replay: the same boot setup around the same tree, which xorriso accepts.
        let tree = d.join("iso-tree");
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
        let mut replay: Vec<OsString> = vec!["-as".into(), "mkisofs".into()];
        for line in text.lines().filter(|l| l.starts_with('-')) {
            // Each line is one option and its (single-quoted) arguments.
            let mut words = Vec::new();
            let mut cur = String::new();
            let mut quoted = false;
            for c in line.chars() {
                match c {
                    '\'' => quoted = !quoted,
                    ' ' if !quoted => {
                        if !cur.is_empty() {
                            words.push(std::mem::take(&mut cur));
                        }
                    }
                    c => cur.push(c),
                }
            }
            if !cur.is_empty() {
                words.push(cur);
            }
            replay.extend(words.into_iter().map(OsString::from));
        }
        let out = d.join("replay.iso");
        replay.extend([
            "-o".into(),
            out.clone().into_os_string(),
            tree.into_os_string(),
        ]);
        let o = Command::new(&xorriso)
            .current_dir(d)
            .args(&replay)
            .output()
            .unwrap();
        ok(&o);
        let again = run(
            &xorriso,
            [
                "-indev".as_ref(),
                out.as_os_str(),
                "-report_el_torito".as_ref(),
                "plain".as_ref(),
            ],
        );
        let again = String::from_utf8_lossy(&again.stdout);
        assert!(again.contains("El Torito boot img :   1  BIOS"), "{again}");
        assert!(again.contains("El Torito boot img :   2  UEFI"), "{again}");
    }

    // The disk: a clean GPT, a clean ESP with the kernel, the root partition named LABEL.
    let img = d.join("live.img");
    if let Some(sgdisk) = tool("sgdisk") {
        let v = String::from_utf8_lossy(&run(&sgdisk, ["-v".as_ref(), img.as_os_str()]).stdout)
            .into_owned();
        assert!(v.contains("No problems found"), "{v}");
    }
    let parts = m["outputs"][1]["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[1]["name"], LABEL);
    assert_eq!(parts[0]["size"], 64u64 << 20, "part /boot/efi --size=64");
    assert_eq!(parts[1]["size"], 32u64 << 20, "part / --size=32");
    let esp = d.join("esp.img");
    std::fs::write(
        &esp,
        carve(
            &img,
            parts[0]["offset"].as_u64().unwrap(),
            parts[0]["size"].as_u64().unwrap(),
        ),
    )
    .unwrap();
    if let Some(fsck) = tool("fsck.vfat") {
        ok(&Command::new(fsck)
            .args(["-n".as_ref(), esp.as_os_str()])
            .output()
            .unwrap());
    }
    if let Some(mtype) = tool("mtype") {
        let i = format!("-i{}", esp.display());
        let cfg =
            String::from_utf8(run(&mtype, [i.as_str(), "::/EFI/BOOT/grub.cfg"]).stdout).unwrap();
        assert!(cfg.contains("--fs-uuid"), "{cfg}");
        assert!(
            cfg.contains(&format!(
                "root=PARTLABEL={LABEL} rootfstype=squashfs ro console=ttyS0,115200"
            )),
            "{cfg}"
        );
        let kernel = run(&mtype, [i.as_str(), "::/boot/vmlinuz"]).stdout;
        assert_eq!(kernel, pattern(300_000));
    }
    let root_part = carve(&img, parts[1]["offset"].as_u64().unwrap(), len);
    assert_eq!(
        sha256(&root_part),
        m["root_image"]["sha256"],
        "the disk's root partition is the root image"
    );
}

#[test]
fn reproducible_across_directory_umask_tz_locale_order_and_processors() {
    let t = tempdir();
    for rootfs in [
        &["--rootfs", "squashfs", "--comp", "zstd"][..],
        &["--rootfs", "erofs", "--comp", "lz4hc"][..],
    ] {
        let a = t.path().join(format!("a-{}", rootfs[1]));
        let b = t.path().join(format!("elsewhere/b-{}", rootfs[1]));
        inputs(&a, false);
        inputs(&b, true);
        ok(&imgpipe_in(&a, &args(rootfs)));
        let extra: Vec<String> = args(rootfs)
            .iter()
            .map(|s| format!("'{}'", s.to_string_lossy()))
            .collect();
        let script = format!(
            "umask 077; TZ=Pacific/Chatham LC_ALL=C.UTF-8 LANG=de_DE.UTF-8 '{}' {} --processors 1",
            env!("CARGO_BIN_EXE_imgpipe"),
            extra.join(" ")
        );
        let o = Command::new("sh")
            .current_dir(&b)
            .args(["-c", &script])
            .env_remove("SOURCE_DATE_EPOCH")
            .output()
            .unwrap();
        ok(&o);
        for f in ["live.iso", "live.img", "manifest.json"] {
            let (x, y) = (
                std::fs::read(a.join(f)).unwrap(),
                std::fs::read(b.join(f)).unwrap(),
            );
            assert!(x == y, "{}: {f} differs between the builds", rootfs[1]);
        }
        // The root image's own checker accepts it.
        let m = manifest(&a);
        let (off, len) = placed(&m, 0, "/LiveOS/squashfs.img");
        let root = a.join("root.img");
        std::fs::write(&root, carve(&a.join("live.iso"), off, len)).unwrap();
        let checker = if rootfs[1] == "erofs" {
            imgpipe_testsupport::erofs_utils("fsck.erofs")
        } else {
            tool("unsquashfs")
        };
        if let Some(c) = checker {
            let arg = if rootfs[1] == "erofs" {
                "--extract"
            } else {
                "-stat"
            };
            ok(&Command::new(c).arg(arg).arg(&root).output().unwrap());
        }
        // Without any flag the seed comes from the inputs: another kickstart, another seed.
        write(&b.join("ks.cfg"), format!("{KICKSTART}\n# changed\n"));
        set_mtimes(&b, 1_700_000_000);
        ok(&imgpipe_in(&b, &args(&[rootfs, &["--force"]].concat())));
        assert_ne!(manifest(&a)["seed"], manifest(&b)["seed"]);
    }
}

#[test]
fn luks2_root_opens_with_cryptsetup_and_holds_the_root_image() {
    let t = tempdir();
    let d = t.path();
    inputs(d, false);
    write(&d.join("pass"), "correct horse\n");
    let ks = KICKSTART.replace("part / --size=32", "part / --size=64 --encrypted");
    write(&d.join("ks.cfg"), ks);
    ok(&imgpipe_in(
        d,
        &args(&[
            "--encrypt",
            "--passphrase-file",
            "pass",
            "--pbkdf-memory",
            "32768",
            "--pbkdf-time",
            "1",
            "--pbkdf-parallel",
            "1",
        ]),
    ));
    let m = manifest(d);
    let parts = m["outputs"][1]["partitions"].as_array().unwrap();
    let (off, size) = (
        parts[1]["offset"].as_u64().unwrap(),
        parts[1]["size"].as_u64().unwrap(),
    );
    let part = d.join("root.luks");
    std::fs::write(&part, carve(&d.join("live.img"), off, size)).unwrap();
    let cmdline = m["outputs"][1]["cmdline"].as_str().unwrap();
    assert!(cmdline.starts_with("rd.luks.name="), "{cmdline}");
    if let Some(cs) = tool("cryptsetup") {
        let dump =
            String::from_utf8_lossy(&run(&cs, ["luksDump".as_ref(), part.as_os_str()]).stdout)
                .into_owned();
        assert!(dump.contains("argon2id"), "{dump}");
        assert!(
            cmdline.contains(
                dump.lines()
                    .find(|l| l.starts_with("UUID:"))
                    .unwrap()
                    .split_whitespace()
                    .nth(1)
                    .unwrap()
            )
        );
        ok(&Command::new(&cs)
            .args([
                "open".as_ref(),
                "--test-passphrase".as_ref(),
                "--key-file".as_ref(),
                d.join("pass").as_os_str(),
                part.as_os_str(),
            ])
            .output()
            .unwrap());
    }
    // The payload decrypts to the root image.
    let plain = d.join("root.plain");
    ok(&imgpipe_in(
        d,
        &[
            "luks",
            "decrypt",
            "root.luks",
            "-o",
            "root.plain",
            "--passphrase-file",
            "pass",
        ]
        .map(OsString::from),
    ));
    let len = m["root_image"]["size"].as_u64().unwrap();
    let bytes = std::fs::read(&plain).unwrap();
    assert_eq!(sha256(&bytes[..len as usize]), m["root_image"]["sha256"]);
}

/// Two encrypted builds with one seed and epoch whose roots differ in one file: `imgpipe
/// diff --passphrase-file` names it inside the root partition's payload; without the flag,
/// the partition is said to be encrypted.
#[test]
fn diff_names_the_file_inside_the_encrypted_root() {
    let t = tempdir();
    for (name, marker) in [("a", "IMGPIPE-MARKER-A\n"), ("b", "IMGPIPE-MARKER-B\n")] {
        let d = t.path().join(name);
        inputs(&d, false);
        write(&d.join("root/imgpipe-marker"), marker);
        write(&d.join("pass"), "correct horse\n");
        let ks = KICKSTART.replace("part / --size=32", "part / --size=64 --encrypted");
        write(&d.join("ks.cfg"), ks);
        set_mtimes(&d, 1_700_000_000);
        ok(&imgpipe_in(
            &d,
            &args(&[
                "--encrypt",
                "--passphrase-file",
                "pass",
                "--pbkdf-memory",
                "32768",
                "--pbkdf-time",
                "1",
                "--pbkdf-parallel",
                "1",
                "--seed",
                "00112233445566778899aabbccddeeff",
                "--epoch",
                "1700000000",
            ]),
        ));
    }
    let diff = |extra: &[&str]| {
        let mut a = vec!["diff", "--json"];
        a.extend(extra);
        a.extend(["a/live.img", "b/live.img"]);
        let out = imgpipe_in(t.path(), &a.iter().map(OsString::from).collect::<Vec<_>>());
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let found: Vec<(String, String, String)> = v["files"]["differences"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                let within: Vec<&str> = d["within"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|l| l.as_str().unwrap())
                    .collect();
                (
                    within.join(" > "),
                    d["path"].as_str().unwrap().to_owned(),
                    d["what"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        found
    };
    let locked = diff(&[]);
    assert!(
        locked.iter().any(|(w, p, what)| w == "gpt"
            && p.starts_with("partition 2 ")
            && what.contains("encrypted")),
        "{locked:#?}"
    );
    let open = diff(&["--passphrase-file", "a/pass"]);
    let inside: Vec<_> = open
        .iter()
        .filter(|(w, _, _)| w.contains("(luks2) > payload ("))
        .map(|(_, p, _)| p.as_str())
        .collect();
    assert_eq!(inside, ["/imgpipe-marker"], "{open:#?}");
    assert!(
        !open.iter().any(|(_, _, what)| what.contains("encrypted")),
        "{open:#?}"
    );
}

/// Prepares a case's inputs and returns its arguments.
type Setup = dyn Fn(&Path) -> Vec<OsString>;

#[test]
fn bad_input_is_one_clear_error_and_no_output() {
    let t = tempdir();
    let cases: [(&str, &Setup, &str); 10] = [
        (
            "no kernel",
            &|d| {
                std::fs::remove_file(d.join("root/boot/vmlinuz-6.1.0-test")).unwrap();
                args(&[])
            },
            "no /boot/vmlinuz-*",
        ),
        (
            "two kernels",
            &|d| {
                write(&d.join("root/boot/vmlinuz-6.2.0-test"), "k");
                args(&[])
            },
            "several kernels (6.1.0-test, 6.2.0-test): pick one with --kernel-version",
        ),
        (
            "missing loader",
            &|_| {
                args(&[])
                    .into_iter()
                    .filter(|a| a != "--efi-loader" && a != "bootx64.efi")
                    .collect()
            },
            "give --efi-loader",
        ),
        (
            "missing loader file",
            &|d| {
                std::fs::remove_file(d.join("eltorito.img")).unwrap();
                args(&[])
            },
            "--bios-loader: cannot read eltorito.img",
        ),
        (
            "label too long",
            &|_| {
                let mut a = args(&[]);
                let i = a.iter().position(|x| x == LABEL).unwrap();
                a[i] = "A".repeat(33).into();
                a
            },
            "--label \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\": 33 bytes; an ISO9660 volume identifier holds at most 32",
        ),
        (
            "removed command",
            &|d| {
                write(&d.join("ks.cfg"), format!("install\n{KICKSTART}"));
                args(&[])
            },
            "ks.cfg: not a valid kickstart for F43: ks.cfg:1: install has been removed",
        ),
        (
            "output in a missing directory",
            &|_| {
                let mut a = args(&[]);
                let i = a.iter().position(|x| x == "live.iso").unwrap();
                a[i] = "missing/live.iso".into();
                a
            },
            "missing/live.iso",
        ),
        (
            "a BCJ filter an x86-64 kernel may not have",
            &|_| args(&["--xz-bcj", "powerpc"]),
            "--xz-bcj \"powerpc\": the medium boots an x86-64 kernel",
        ),
        (
            "BCJ without xz",
            &|_| args(&["--comp", "zstd", "--xz-bcj", "x86"]),
            "--xz-bcj is an xz option (--comp zstd)",
        ),
        (
            "BCJ with an EROFS root",
            &|_| args(&["--rootfs", "erofs", "--xz-bcj", "x86"]),
            "--xz-bcj is a squashfs option",
        ),
    ];
    for (i, (name, setup, needle)) in cases.iter().enumerate() {
        let d = t.path().join(format!("case{i}"));
        inputs(&d, false);
        let before: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        let o = imgpipe_in(&d, &setup(&d));
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains(needle), "{name}: {stderr}");
        assert_eq!(
            stderr
                .lines()
                .filter(|l| l.starts_with("imgpipe: ") || l.starts_with("error"))
                .count(),
            1,
            "{name}: one line: {stderr}"
        );
        let mut after: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        after.retain(|f| !before.contains(f));
        assert!(after.is_empty(), "{name}: left behind {after:?}");
    }
}

#[test]
fn part_flags_lay_the_disk_out() {
    let t = tempdir();
    let d = t.path();
    inputs(d, false);
    write(&d.join("data/readme.txt"), "piece\n");
    let o = imgpipe_in(
        d,
        &args(&[
            "--part",
            "type=esp,size=rest",
            "--part",
            "type=linux-generic,size=8M,label=DATA,fat=data",
            "--part",
            "type=root-x86-64,size=rest",
        ]),
    );
    ok(&o);
    let m = manifest(d);
    let parts = m["outputs"][1]["partitions"].as_array().unwrap();
    let names: Vec<&str> = parts.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["", "DATA", LABEL]);
    let img = d.join("live.img");
    if let Some(sgdisk) = tool("sgdisk") {
        let v = String::from_utf8_lossy(&run(&sgdisk, ["-v".as_ref(), img.as_os_str()]).stdout)
            .into_owned();
        assert!(v.contains("No problems found"), "{v}");
    }
    let (off, len) = (
        parts[1]["offset"].as_u64().unwrap(),
        parts[1]["size"].as_u64().unwrap(),
    );
    let data = d.join("data.img");
    std::fs::write(&data, carve(&img, off, len)).unwrap();
    if let Some(mtype) = tool("mtype") {
        let i = format!("-i{}", data.display());
        assert_eq!(
            run(&mtype, [i.as_str(), "::/readme.txt"]).stdout,
            b"piece\n"
        );
    }
    let root = &parts[2];
    assert_eq!(
        root["size"].as_u64().unwrap(),
        m["root_image"]["size"].as_u64().unwrap().div_ceil(1 << 20) << 20,
        "size=rest fits the root image"
    );
    // The ESP and root partitions are the build's to fill, and there is one of each.
    for (spec, needle) in [
        (
            &[
                "--part",
                "type=esp,size=64M,fat=data",
                "--part",
                "type=root-x86-64,size=rest",
            ][..],
            "no fat= or file= on them",
        ),
        (
            &["--part", "type=esp,size=64M"][..],
            "exactly one type=esp and one type=root-x86-64",
        ),
        (
            &[
                "--part",
                "type=esp,size=64M",
                "--part",
                "type=root-x86-64,size=rest,name=OTHER",
            ][..],
            "named with the label",
        ),
    ] {
        let o = imgpipe_in(d, &args(&[spec, &["--force"]].concat()));
        assert_eq!(o.status.code(), Some(2));
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(e.contains(needle), "{e}");
    }
}

#[test]
fn rebuild_proves_a_build_and_names_a_changed_input() {
    let t = tempdir();
    let d = t.path();
    inputs(d, false);
    // The manifest in a subdirectory: the recipe's paths are seen from there.
    std::fs::create_dir(d.join("out")).unwrap();
    let mut a = args(&["--rootfs", "erofs", "--comp", "lz4"]);
    let i = a.iter().position(|x| x == "manifest.json").unwrap();
    a[i] = "out/manifest.json".into();
    ok(&imgpipe_in(d, &a));
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("out/manifest.json")).unwrap()).unwrap();
    assert_eq!(m["recipe"]["kickstart"], "../ks.cfg");
    assert_eq!(m["recipe"]["rootfs"]["format"], "erofs");
    let work = tempdir();
    let rebuild = |extra: &[&str]| {
        let mut args: Vec<OsString> = vec![
            "rebuild".into(),
            "out/manifest.json".into(),
            "--json".into(),
            "--work".into(),
            work.path().into(),
        ];
        args.extend(extra.iter().map(OsString::from));
        imgpipe_in(d, &args)
    };
    let o = rebuild(&[]);
    ok(&o);
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["proven"], true, "{r:#}");
    assert_eq!(r["outputs"].as_array().unwrap().len(), 2);
    // Nothing is left in the work directory.
    assert_eq!(std::fs::read_dir(work.path()).unwrap().count(), 0);
    // A changed input is named.
    write(&d.join("root/etc/hostname"), "other\n");
    set_mtimes(&d.join("root"), 1_700_000_000);
    let o = rebuild(&[]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["proven"], false);
    assert_eq!(r["changed_inputs"][0][0], "root tree", "{r:#}");
}

#[test]
fn verify_builds_twice_and_compares_every_output() {
    for rootfs in [
        &["--rootfs", "squashfs", "--comp", "zstd"][..],
        &["--rootfs", "erofs", "--comp", "lz4"],
    ] {
        let t = tempdir();
        let d = t.path();
        inputs(d, false);
        let tmp = tempdir();
        let mut a = args(rootfs);
        a.extend([
            "--verify".into(),
            "--json".into(),
            "--processors".into(),
            "2".into(),
        ]);
        let o = Command::new(env!("CARGO_BIN_EXE_imgpipe"))
            .current_dir(d)
            .args(&a)
            .env_remove("SOURCE_DATE_EPOCH")
            .env("TMPDIR", tmp.path())
            .output()
            .unwrap();
        ok(&o);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let r = &v["verify"];
        assert_eq!(r["reproducible"], true, "{r:#}");
        assert_eq!(r["threads"], serde_json::json!([2, 1]), "{r:#}");
        let names: Vec<&str> = r["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["live.iso", "live.img", "manifest.json"], "{r:#}");
        assert_eq!(
            r["outputs"][0]["first"],
            v["manifest"]["outputs"][0]["sha256"]
        );
        // The first build's outputs stay; the second's are gone with their directory.
        for f in ["live.iso", "live.img", "manifest.json"] {
            assert!(d.join(f).is_file(), "{f}");
        }
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    }
}
