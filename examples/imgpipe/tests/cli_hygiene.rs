//! What every command owes its user whatever happens: SIGINT, SIGTERM, SIGKILL and a full
//! disk leave nothing at OUT or beside it; a closed stdout ends the program quietly (exit 0);
//! a stdout that cannot be written (`> /dev/full`) is exit 2; a recognised image is not
//! replaced without `--force`; sizes take K/M/G/T suffixes and errors name flags.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use imgpipe_testsupport::{is_root, tempdir, tool};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_imgpipe"));
    c.env_remove("SOURCE_DATE_EPOCH");
    c
}

fn imgpipe<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    bin().args(args).output().unwrap()
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

fn os(s: &str) -> OsString {
    OsString::from(s)
}

/// Incompressible bytes without a random source (xorshift).
fn noise(len: usize, mut x: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

/// A tree whose images take a moment to write: `big` bytes of noise and a few small files.
fn tree(root: &Path, big: usize) {
    std::fs::create_dir_all(root.join("d")).unwrap();
    for i in 0..20 {
        std::fs::write(root.join(format!("d/f{i}.txt")), format!("file {i}\n")).unwrap();
    }
    std::fs::write(root.join("big.bin"), noise(big, 0x9E37_79B9_7F4A_7C15)).unwrap();
}

/// Every file name in `dir` except those in `keep`.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The arguments of a command, given OUT.
type ArgsOf = Box<dyn Fn(&Path) -> Vec<OsString>>;

/// One command that writes OUT, as arguments given OUT.
struct Create {
    name: &'static str,
    args: ArgsOf,
}

fn creates(src: &Path, pass: &Path, luks: &Path) -> Vec<Create> {
    let src = src.to_path_buf();
    let (s1, s2, s3, s4, s5) = (src.clone(), src.clone(), src.clone(), src.clone(), src);
    let (p1, p2) = (pass.to_path_buf(), pass.to_path_buf());
    let luks = luks.to_path_buf();
    vec![
        Create {
            name: "iso create",
            args: Box::new(move |out| {
                vec![
                    os("iso"),
                    os("create"),
                    os("-o"),
                    out.into(),
                    s1.clone().into(),
                ]
            }),
        },
        Create {
            name: "squashfs create",
            args: Box::new(move |out| {
                vec![
                    os("squashfs"),
                    os("create"),
                    os("--processors"),
                    os("1"),
                    os("-o"),
                    out.into(),
                    s2.clone().into(),
                ]
            }),
        },
        Create {
            name: "erofs create",
            args: Box::new(move |out| {
                vec![
                    os("erofs"),
                    os("create"),
                    os("-o"),
                    out.into(),
                    s5.clone().into(),
                ]
            }),
        },
        Create {
            name: "fat create",
            args: Box::new(move |out| {
                vec![
                    os("fat"),
                    os("create"),
                    os("--size"),
                    os("64M"),
                    os("-o"),
                    out.into(),
                    s3.clone().into(),
                ]
            }),
        },
        Create {
            name: "gpt create",
            args: Box::new(move |out| {
                let mut part = os("type=esp,size=rest,fat=");
                part.push(&s4);
                vec![
                    os("gpt"),
                    os("create"),
                    os("--size"),
                    os("80M"),
                    os("--part"),
                    part,
                    os("-o"),
                    out.into(),
                ]
            }),
        },
        Create {
            name: "luks format",
            args: Box::new(move |out| {
                vec![
                    os("luks"),
                    os("format"),
                    os("--passphrase-file"),
                    p1.clone().into(),
                    os("--pbkdf-memory"),
                    os("262144"),
                    os("--pbkdf-time"),
                    os("8"),
                    os("--size"),
                    os("20M"),
                    out.into(),
                ]
            }),
        },
        Create {
            name: "luks decrypt",
            args: Box::new(move |out| {
                vec![
                    os("luks"),
                    os("decrypt"),
                    os("--passphrase-file"),
                    p2.clone().into(),
                    luks.clone().into(),
                    os("-o"),
                    out.into(),
                ]
            }),
        },
    ]
}

/// A tree, a passphrase and a LUKS volume holding noise; returns (src, pass, luks).
fn fixtures(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let src = dir.join("src");
    tree(&src, 40 << 20);
    let pass = dir.join("pass");
    std::fs::write(&pass, b"correct horse").unwrap();
    let luks = dir.join("vol.luks");
    ok(&imgpipe([
        os("luks"),
        os("format"),
        os("--passphrase-file"),
        pass.clone().into(),
        os("--pbkdf"),
        os("pbkdf2"),
        os("--iterations"),
        os("1000"),
        os("--size"),
        os("64M"),
        luks.clone().into(),
    ]));
    let plain = dir.join("plain");
    std::fs::write(&plain, noise(48 << 20, 7)).unwrap();
    ok(&imgpipe([
        os("luks"),
        os("encrypt"),
        os("--passphrase-file"),
        pass.clone().into(),
        os("--input"),
        plain.clone().into(),
        luks.clone().into(),
    ]));
    std::fs::remove_file(plain).unwrap();
    (src, pass, luks)
}

/// Starts `args`, waits for the temporary file beside OUT, sends `signal` and returns the
/// exit status; `None` when the command finished before it could be signalled.
fn signal_during(args: &[OsString], out: &Path, signal: &str) -> Option<std::process::ExitStatus> {
    let tmp = imgpipe_repro::temp_path(out).unwrap();
    let mut child = bin()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut waited = 0;
    while !tmp.exists() {
        waited += 1;
        if child.try_wait().unwrap().is_some() || waited > 60_000 {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let pid = child.id().to_string();
    let o = Command::new("kill")
        .args([signal, pid.as_str()])
        .output()
        .unwrap();
    assert!(o.status.success());
    let status = child.wait().unwrap();
    if status.success() {
        return None; // It finished first.
    }
    Some(status)
}

#[test]
fn sigint_and_sigterm_during_each_create_leave_nothing() {
    let tmp = tempdir();
    let (src, pass, luks) = fixtures(tmp.path());
    let outdir = tmp.path().join("out");
    std::fs::create_dir(&outdir).unwrap();
    for c in creates(&src, &pass, &luks) {
        for (signal, code) in [("-INT", 130), ("-TERM", 143)] {
            let out = outdir.join("x.img");
            let args = (c.args)(&out);
            let mut tried = 0;
            let status = loop {
                tried += 1;
                // A signal that lands between the commit (the rename) and the exit finds
                // the work done: the output stays, complete. That run proves nothing here.
                if let Some(s) = signal_during(&args, &out, signal)
                    && !out.exists()
                {
                    break s;
                }
                let _ = std::fs::remove_file(&out);
                assert!(tried < 5, "{}: always finished before {signal}", c.name);
            };
            assert_eq!(status.code(), Some(code), "{} {signal}", c.name);
            assert_eq!(names(&outdir), Vec::<String>::new(), "{} {signal}", c.name);
        }
    }
}

#[test]
fn sigkill_leaves_out_untouched_and_the_next_run_removes_the_leftover() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    tree(&src, 40 << 20);
    let out = tmp.path().join("x.sqfs");
    std::fs::write(&out, b"an older file that is not an image").unwrap();
    let args = [
        os("squashfs"),
        os("create"),
        os("--force"),
        os("--processors"),
        os("1"),
        os("-o"),
        out.clone().into(),
        src.clone().into(),
    ];
    let tmpfile = imgpipe_repro::temp_path(&out).unwrap();
    let status = signal_during(&args, &out, "-KILL").expect("finished before SIGKILL");
    assert_eq!(status.code(), None);
    assert_eq!(
        std::fs::read(&out).unwrap(),
        b"an older file that is not an image"
    );
    assert!(tmpfile.exists(), "SIGKILL cannot clean up");
    ok(&imgpipe(&args));
    assert!(!tmpfile.exists());
    assert_eq!(names(tmp.path()), ["src", "x.sqfs"]);
    // A temporary file is named after the whole output name: x.img's is another one.
    assert_ne!(
        tmpfile,
        imgpipe_repro::temp_path(&tmp.path().join("x.img")).unwrap()
    );
}

#[test]
fn a_full_disk_leaves_nothing() {
    if !is_root() {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    }
    let tmp = tempdir();
    let (src, pass, luks) = fixtures(tmp.path());
    let small = tmp.path().join("small");
    std::fs::create_dir(&small).unwrap();
    let m = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "imgpipe-test"])
        .arg(&small)
        .output();
    if !m.is_ok_and(|m| m.status.success()) {
        eprintln!("skipped: cannot mount a tmpfs");
        return;
    }
    /// Unmounts when the test ends, passed or not.
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            if let Err(e) = imgpipe_testsupport::try_unmount(self.0) {
                eprintln!("warning: {e}");
            }
        }
    }
    let _unmount = Unmount(&small);
    let mut failures = Vec::new();
    for c in creates(&src, &pass, &luks) {
        let out = small.join("x.img");
        let o = imgpipe((c.args)(&out));
        let left = names(&small);
        if o.status.code() != Some(2) || !left.is_empty() {
            failures.push(format!(
                "{}: status {}, left {left:?}, stderr {}",
                c.name,
                o.status,
                String::from_utf8_lossy(&o.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Small images of every kind for the report and listing commands.
struct Images {
    _dir: tempfile::TempDir,
    iso: PathBuf,
    sqfs: PathBuf,
    fat: PathBuf,
    gpt: PathBuf,
    luks: PathBuf,
    ks: PathBuf,
    /// Made by mkfs.erofs when it is installed.
    erofs: Option<PathBuf>,
}

fn images() -> Images {
    let dir = tempdir();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    for i in 0..200 {
        std::fs::write(src.join(format!("d/file-{i}.txt")), format!("{i}\n")).unwrap();
    }
    let p = |n: &str| dir.path().join(n);
    let (iso, sqfs, fat, gpt, luks, ks) = (
        p("a.iso"),
        p("a.sqfs"),
        p("a.fat"),
        p("a.gpt"),
        p("a.luks"),
        p("a.ks"),
    );
    ok(&imgpipe([
        os("iso"),
        os("create"),
        os("-o"),
        iso.clone().into(),
        src.clone().into(),
    ]));
    ok(&imgpipe([
        os("squashfs"),
        os("create"),
        os("-o"),
        sqfs.clone().into(),
        src.clone().into(),
    ]));
    ok(&imgpipe([
        os("fat"),
        os("create"),
        os("--size"),
        os("8M"),
        os("-o"),
        fat.clone().into(),
        src.clone().into(),
    ]));
    let mut part = os("type=esp,size=rest,fat=");
    part.push(&src);
    ok(&imgpipe([
        os("gpt"),
        os("create"),
        os("--size"),
        os("16M"),
        os("--part"),
        part,
        os("-o"),
        gpt.clone().into(),
    ]));
    std::fs::write(p("pass"), b"pw").unwrap();
    ok(&imgpipe([
        os("luks"),
        os("format"),
        os("--passphrase-file"),
        p("pass").into(),
        os("--pbkdf"),
        os("pbkdf2"),
        os("--iterations"),
        os("1000"),
        os("--size"),
        os("20M"),
        luks.clone().into(),
    ]));
    std::fs::write(
        &ks,
        "# a comment\nlang en_US.UTF-8\nrootpw --lock\n%packages\n@core\n%end\n",
    )
    .unwrap();
    let erofs = tool("mkfs.erofs").map(|mkfs| {
        let img = p("a.erofs");
        imgpipe_testsupport::run(
            &mkfs,
            [
                os("--quiet"),
                os("-T1600000000"),
                img.clone().into(),
                src.clone().into(),
            ],
        );
        img
    });
    Images {
        erofs,
        _dir: dir,
        iso,
        sqfs,
        fat,
        gpt,
        luks,
        ks,
    }
}

/// Every listing and report, as argument lists.
fn reports(i: &Images) -> Vec<Vec<OsString>> {
    let mut v = Vec::new();
    for json in [false, true] {
        let j = |mut a: Vec<OsString>| {
            if json {
                a.push(os("--json"));
            }
            a
        };
        v.push(j(vec![os("iso"), os("ls"), i.iso.clone().into()]));
        v.push(j(vec![os("squashfs"), os("ls"), i.sqfs.clone().into()]));
        v.push(j(vec![os("fat"), os("ls"), i.fat.clone().into()]));
        if let Some(erofs) = &i.erofs {
            v.push(j(vec![os("erofs"), os("ls"), erofs.clone().into()]));
            v.push(j(vec![os("erofs"), os("info"), erofs.clone().into()]));
        }
        v.push(j(vec![os("ks"), os("validate"), i.ks.clone().into()]));
        v.push(j(vec![os("ks"), os("info"), i.ks.clone().into()]));
        v.push(j(vec![os("gpt"), os("info"), i.gpt.clone().into()]));
        v.push(j(vec![os("luks"), os("info"), i.luks.clone().into()]));
        v.push(j(vec![os("inspect"), i.iso.clone().into()]));
        v.push(j(vec![os("inspect"), i.gpt.clone().into()]));
        v.push(j(vec![os("iso"), os("info"), i.iso.clone().into()]));
        v.push(j(vec![os("squashfs"), os("info"), i.sqfs.clone().into()]));
        v.push(j(vec![os("fat"), os("info"), i.fat.clone().into()]));
        v.push(j(vec![os("gpt"), os("show"), i.gpt.clone().into()]));
        v.push(j(vec![os("luks"), os("dump"), i.luks.clone().into()]));
        v.push(j(vec![
            os("diff"),
            i.iso.clone().into(),
            i.sqfs.clone().into(),
        ]));
    }
    v.push(vec![os("ks"), os("fmt"), i.ks.clone().into()]);
    v.push(vec![os("ks"), os("flatten"), i.ks.clone().into()]);
    v.push(vec![os("ks"), os("model"), i.ks.clone().into()]);
    v.push(vec![os("completions"), os("bash")]);
    v
}

#[test]
fn a_closed_stdout_ends_every_listing_and_report_quietly() {
    let i = images();
    for args in reports(&i) {
        // The reader is gone before the first write: every write fails with EPIPE.
        let mut child = bin()
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let o = child.wait_with_output().unwrap();
        let expected = if args.first().is_some_and(|a| a == "diff") {
            [0, 1] // `diff` answers "different" with 1 even when nobody reads it.
        } else {
            [0, 0]
        };
        assert!(
            o.status.code().is_some_and(|c| expected.contains(&c)),
            "{args:?}: {}: {}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            o.stderr.is_empty(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        // And through `head -1`, as a user would.
        let mut child = bin()
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = [0u8; 1];
        std::io::Read::read(child.stdout.as_mut().unwrap(), &mut line).unwrap();
        drop(child.stdout.take());
        let o = child.wait_with_output().unwrap();
        assert!(o.status.code().is_some(), "{args:?}: killed: {}", o.status);
        assert_ne!(o.status.code(), Some(101), "{args:?} panicked");
        assert!(
            o.stderr.is_empty(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

#[test]
fn a_full_stdout_is_exit_2() {
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        eprintln!("skipped: no /dev/full");
        return;
    };
    let i = images();
    for args in reports(&i) {
        if args.first().is_some_and(|a| a == "diff") {
            continue;
        }
        let o = bin()
            .args(&args)
            .stdout(full.try_clone().unwrap())
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("No space left"),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

#[test]
fn a_recognised_image_is_replaced_only_with_force() {
    let i = images();
    let src = i.iso.parent().unwrap().join("src");
    // squashfs over an ISO, iso over a GPT disk, fat over squashfs, luks format over an ISO.
    let cases: [(Vec<OsString>, &Path, &str); 4] = [
        (
            vec![
                os("squashfs"),
                os("create"),
                os("-o"),
                i.iso.clone().into(),
                src.clone().into(),
            ],
            &i.iso,
            "ISO9660",
        ),
        (
            vec![
                os("iso"),
                os("create"),
                os("-o"),
                i.gpt.clone().into(),
                src.clone().into(),
            ],
            &i.gpt,
            "GPT",
        ),
        (
            vec![
                os("fat"),
                os("create"),
                os("--size"),
                os("8M"),
                os("-o"),
                i.sqfs.clone().into(),
                src.clone().into(),
            ],
            &i.sqfs,
            "squashfs",
        ),
        (
            vec![
                os("luks"),
                os("format"),
                os("--passphrase-file"),
                i.ks.clone().into(),
                os("--pbkdf"),
                os("pbkdf2"),
                os("--iterations"),
                os("1000"),
                os("--size"),
                os("20M"),
                i.fat.clone().into(),
            ],
            &i.fat,
            "FAT",
        ),
    ];
    for (args, target, what) in cases {
        let before = std::fs::read(target).unwrap();
        let o = imgpipe(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(what) && err.contains("--force"),
            "{args:?}: {err}"
        );
        assert_eq!(
            std::fs::read(target).unwrap(),
            before,
            "{args:?} changed it"
        );
        let mut forced = args.clone();
        forced.insert(2, os("--force"));
        ok(&imgpipe(&forced));
    }
}

#[test]
fn bad_arguments_create_nothing_and_name_their_flag() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    tree(&src, 1000);
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let img = out.join("x.img");
    let pass = tmp.path().join("pass");
    std::fs::write(&pass, b"pw").unwrap();
    let cases: Vec<(Vec<OsString>, &str)> = vec![
        (
            vec![
                os("squashfs"),
                os("create"),
                os("-o"),
                out.clone().into(),
                src.clone().into(),
            ],
            "-o/--output",
        ),
        (
            vec![
                os("iso"),
                os("create"),
                os("--bios-boot"),
                os("missing.bin"),
                os("--boot-catalog"),
                os("boot.cat"),
                os("-o"),
                img.clone().into(),
                src.clone().into(),
            ],
            "--bios-boot",
        ),
        (
            vec![
                os("fat"),
                os("create"),
                os("--size"),
                os("8M"),
                os("--label"),
                os("no/slashes"),
                os("-o"),
                img.clone().into(),
                src.clone().into(),
            ],
            "--label",
        ),
        (
            vec![
                os("squashfs"),
                os("create"),
                os("--block-size"),
                os("3K"),
                os("-o"),
                img.clone().into(),
                src.clone().into(),
            ],
            "--block-size",
        ),
        (
            vec![
                os("squashfs"),
                os("create"),
                os("--block-size"),
                os("12Q"),
                os("-o"),
                img.clone().into(),
                src.clone().into(),
            ],
            "--block-size",
        ),
        (
            vec![
                os("luks"),
                os("format"),
                os("--passphrase-file"),
                pass.clone().into(),
                os("--header-size"),
                os("3K"),
                os("--size"),
                os("20M"),
                img.clone().into(),
            ],
            "--header-size",
        ),
        (
            vec![
                os("luks"),
                os("format"),
                os("--passphrase-file"),
                pass.clone().into(),
                img.clone().into(),
            ],
            "--size",
        ),
        (
            vec![
                os("luks"),
                os("format"),
                os("--passphrase-file"),
                pass.clone().into(),
                os("--size"),
                os("1M"),
                img.clone().into(),
            ],
            "--data-offset",
        ),
        (
            vec![
                os("luks"),
                os("format"),
                os("--passphrase-file"),
                pass.clone().into(),
                os("--size"),
                os("32M"),
                os("--data-offset"),
                os("1"),
                img.clone().into(),
            ],
            "--data-offset",
        ),
        (
            vec![
                os("gpt"),
                os("create"),
                os("--seed"),
                os("not-hex"),
                os("-o"),
                img.clone().into(),
            ],
            "--seed",
        ),
    ];
    for (args, flag) in cases {
        let o = imgpipe(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(flag), "{args:?}: {err}");
        assert!(
            !err.contains("block_size")
                && !err.contains("hdr_size")
                && !err.contains("data_offset"),
            "{err}"
        );
        assert_eq!(names(&out), Vec::<String>::new(), "{args:?}");
    }
}

#[test]
fn sizes_take_binary_suffixes_everywhere() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    tree(&src, 1000);
    let a = tmp.path().join("a.sqfs");
    let b = tmp.path().join("b.sqfs");
    ok(&imgpipe([
        os("squashfs"),
        os("create"),
        os("--block-size"),
        os("128K"),
        os("-o"),
        a.clone().into(),
        src.clone().into(),
    ]));
    ok(&imgpipe([
        os("squashfs"),
        os("create"),
        os("--block-size"),
        os("131072"),
        os("-o"),
        b.clone().into(),
        src.clone().into(),
    ]));
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let f = tmp.path().join("f.img");
    ok(&imgpipe([
        os("fat"),
        os("create"),
        os("--size"),
        os("8MiB"),
        os("-o"),
        f.clone().into(),
        src.clone().into(),
    ]));
    assert_eq!(std::fs::metadata(&f).unwrap().len(), 8 << 20);
    let l = tmp.path().join("l.img");
    let pass = tmp.path().join("pass");
    std::fs::File::create(&pass)
        .unwrap()
        .write_all(b"pw")
        .unwrap();
    ok(&imgpipe([
        os("luks"),
        os("format"),
        os("--passphrase-file"),
        pass.into(),
        os("--pbkdf"),
        os("pbkdf2"),
        os("--iterations"),
        os("1000"),
        os("--size"),
        os("20M"),
        l.clone().into(),
    ]));
    assert_eq!(std::fs::metadata(&l).unwrap().len(), 20 << 20);
}

#[test]
fn completions_and_manpages() {
    let o = imgpipe(["completions", "bash"]);
    ok(&o);
    assert!(String::from_utf8_lossy(&o.stdout).contains("imgpipe"));
    let tmp = tempdir();
    let dir = tmp.path().join("man");
    ok(&imgpipe([os("manpages"), dir.clone().into()]));
    for page in [
        "imgpipe.1",
        "imgpipe-squashfs-create.1",
        "imgpipe-luks-add-key.1",
    ] {
        let text = std::fs::read_to_string(dir.join(page)).unwrap();
        assert!(text.contains(".TH"), "{page}");
    }
    let text = std::fs::read_to_string(dir.join("imgpipe-iso-create.1")).unwrap();
    assert!(text.contains("label"), "{text}");
}

#[test]
fn every_ls_takes_an_offset() {
    let i = images();
    let dir = i.iso.parent().unwrap();
    for (group, image) in [("iso", &i.iso), ("squashfs", &i.sqfs), ("fat", &i.fat)] {
        let plain = imgpipe([os(group), os("ls"), image.clone().into()]);
        ok(&plain);
        let mut embedded = vec![0u8; 1 << 20];
        embedded.extend(std::fs::read(image).unwrap());
        let at = dir.join(format!("{group}.embedded"));
        std::fs::write(&at, embedded).unwrap();
        let o = imgpipe([os(group), os("ls"), os("--offset"), os("1M"), at.into()]);
        ok(&o);
        assert_eq!(o.stdout, plain.stdout, "{group}");
    }
}

#[test]
fn a_closed_stderr_is_no_reason_to_panic() {
    for args in [
        vec![os("inspect"), os("/nonexistent/image")],
        vec![os("squashfs"), os("create"), os("-o"), os("/tmp"), os(".")],
    ] {
        let mut child = bin()
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stderr.take());
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
    }
}
