//! `imgpipe verify`: build scripts that are not reproducible in one way each are reported as
//! such, naming the output and the variation to blame; a reproducible one passes; the
//! copies are removed (or kept with `--keep`).

use std::path::Path;
use std::process::{Command, Output};

use imgpipe_testsupport::tempdir;

fn verify(dir: &Path, extra: &[&str], script: &str) -> Output {
    std::fs::write(dir.join("build.sh"), script).unwrap();
    Command::new(env!("CARGO_BIN_EXE_imgpipe"))
        .current_dir(dir)
        .arg("verify")
        .args(extra)
        .args(["--json", "-o", "out", "--", "sh", "build.sh"])
        .output()
        .unwrap()
}

fn report(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

/// A work directory on a tmpfs when there is one, so directory order can vary.
fn work() -> tempfile::TempDir {
    if Path::new("/dev/shm").is_dir() {
        tempfile::tempdir_in("/dev/shm").unwrap()
    } else {
        tempdir()
    }
}

#[test]
fn each_irreproducibility_is_named() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let faketime = Path::new("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1").exists();
    let mut cases = vec![
        ("umask", "touch f; stat -c %a f > out\n"),
        ("tz", "date -d @0 > out\n"),
        ("path", "pwd > out\n"),
        ("locale", "printf '%s\\n' \"$LC_ALL\" > out\n"),
        ("env", "printf '%s\\n' \"$HOME\" > out\n"),
        // tar stores entries in readdir order.
        (
            "dir-order",
            "tar --owner=0 --group=0 --numeric-owner --mtime=@0 -cf out d\n",
        ),
    ];
    if cpus > 1 {
        cases.push(("cpus", "nproc > out\n"));
    }
    if faketime {
        cases.push(("clock", "date +%Y > out\n"));
    }
    let faketime_shm = || {
        std::fs::read_dir("/dev/shm").map_or(0, |d| {
            d.filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().contains("faketime"))
            })
            .count()
        })
    };
    let shm_before = faketime_shm();
    let w = work();
    for (name, script) in cases {
        let t = tempdir();
        let d = t.path();
        std::fs::create_dir(d.join("d")).unwrap();
        for i in 0..8 {
            std::fs::write(d.join("d").join(format!("f{i}")), "x").unwrap();
        }
        let o = verify(d, &["--work", w.path().to_str().unwrap()], script);
        assert_eq!(
            o.status.code(),
            Some(1),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let r = report(&o);
        assert_eq!(r["reproducible"], false, "{name}");
        assert_eq!(r["outputs"][0]["path"], "out");
        assert_eq!(
            r["outputs"][0]["because_of"],
            serde_json::json!([name]),
            "{name}: {r:#}"
        );
    }
    // Nothing is left in the work directory, nor libfaketime's segments in /dev/shm.
    assert_eq!(std::fs::read_dir(w.path()).unwrap().count(), 0);
    assert!(
        faketime_shm() <= shm_before,
        "libfaketime segments left in /dev/shm"
    );
}

#[test]
fn the_clock_or_randomness_is_told_apart_from_variations() {
    let t = tempdir();
    let o = verify(t.path(), &[], "od -An -N8 -tx1 /dev/urandom > out\n");
    assert_eq!(o.status.code(), Some(1));
    let r = report(&o);
    assert_eq!(r["outputs"][0]["differs_unvaried"], true, "{r:#}");
    assert_eq!(r["outputs"][0]["because_of"], serde_json::json!([]));
}

#[test]
fn a_reproducible_build_passes_and_keep_keeps_both_trees() {
    let t = tempdir();
    let keep = tempdir();
    let o = verify(
        t.path(),
        &[
            "--keep",
            keep.path().to_str().unwrap(),
            "--variations",
            "umask,tz,path",
        ],
        "printf 'same\\n' > out\n",
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r = report(&o);
    assert_eq!(r["reproducible"], true);
    assert_eq!(r["varied"], serde_json::json!(["path", "umask", "tz"]));
    let kept = r["kept"].as_array().unwrap();
    for k in kept {
        let p = Path::new(k.as_str().unwrap());
        assert!(p.starts_with(keep.path()), "{p:?}");
        assert_eq!(std::fs::read_to_string(p.join("out")).unwrap(), "same\n");
    }
    // A failing build is exit 2, and says so in one line.
    let o = verify(t.path(), &[], "echo broken >&2; exit 3\n");
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("broken"), "{e}");
    // An output the build does not write is exit 2 too, naming it.
    let o = verify(t.path(), &[], "true\n");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("did not write out"));
}

#[test]
fn sigterm_mid_build_stops_the_build_and_removes_the_copies() {
    let t = tempdir();
    let w = work();
    // The build says which processes it is (its shell and a child), outside the copies.
    let marks = tempdir();
    let mark = marks.path().join("pids");
    std::fs::write(
        t.path().join("build.sh"),
        format!(
            "sleep 20 & echo \"$$ $!\" >> {}; wait; echo x > out\n",
            mark.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_imgpipe"))
        .current_dir(t.path())
        .args(["verify", "--work", w.path().to_str().unwrap()])
        .args(["-o", "out", "--", "sh", "build.sh"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the first copy exists and its build runs.
    let mut waited = 0;
    while std::fs::read_dir(w.path()).unwrap().count() == 0 {
        std::thread::sleep(std::time::Duration::from_millis(10));
        waited += 1;
        assert!(waited < 3000, "verify made no work directory");
    }
    while !mark.exists() {
        std::thread::sleep(std::time::Duration::from_millis(10));
        waited += 1;
        assert!(waited < 3000, "the build did not start");
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143));
    assert_eq!(std::fs::read_dir(w.path()).unwrap().count(), 0);
    // The build's processes are gone too (a zombie waiting for init counts as gone).
    let alive = |pid: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.rsplit(") ").next().is_some_and(|r| !r.starts_with('Z')))
    };
    let pids = std::fs::read_to_string(&mark).unwrap();
    for _ in 0..500 {
        if !pids.split_whitespace().any(alive) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("the build ({pids}) still runs after verify stopped");
}

#[test]
fn a_work_directory_inside_the_source_is_not_copied_into_itself() {
    let t = tempdir();
    std::fs::create_dir(t.path().join("scratch")).unwrap();
    let o = verify(
        t.path(),
        &["--work", "scratch", "--variations", "umask"],
        "find . ! -name out | sort > out\n",
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        std::fs::read_dir(t.path().join("scratch")).unwrap().count(),
        0
    );
}

/// A build whose output is a LUKS2 volume (one seed, so one volume key) around a squashfs
/// that records the build path: with `--passphrase-file`, the file inside the payload is
/// named; without, the payload is said to be encrypted; a wrong passphrase exits 2.
#[test]
fn names_the_file_inside_an_encrypted_output() {
    let dir = tempdir();
    std::fs::write(dir.path().join("key"), "correct horse\n").unwrap();
    std::fs::write(dir.path().join("bad"), "wrong horse\n").unwrap();
    let script = "set -e\n\
        mkdir -p root/etc\n\
        pwd > root/etc/where\n\
        printf 'ID=demo\\n' > root/etc/os-release\n\
        \"$IMGPIPE\" squashfs create --epoch 1700000000 --clamp-mtime -o fs.sqfs root >/dev/null\n\
        \"$IMGPIPE\" luks format out --passphrase-file key --size 4M --data-offset 1M \
          --pbkdf pbkdf2 --iterations 1000 --digest-iterations 1000 \
          --seed 00112233445566778899aabbccddeeff >/dev/null\n\
        \"$IMGPIPE\" luks encrypt out --passphrase-file key --input fs.sqfs >/dev/null\n";
    std::fs::write(dir.path().join("build.sh"), script).unwrap();
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_imgpipe"))
            .current_dir(dir.path())
            .env("IMGPIPE", env!("CARGO_BIN_EXE_imgpipe"))
            .args(["verify", "--json", "--variations", "path", "--no-bisect"])
            .args(extra)
            .args(["-o", "out", "--", "sh", "build.sh"])
            .output()
            .unwrap()
    };
    let files = |o: &Output| -> Vec<(serde_json::Value, String)> {
        assert_eq!(o.status.code(), Some(1), "{o:?}");
        let r = report(o);
        r["outputs"][0]["diff"]["files"]["differences"]
            .as_array()
            .unwrap_or_else(|| panic!("{r:#}"))
            .iter()
            .map(|d| (d["within"].clone(), d["path"].as_str().unwrap().to_owned()))
            .collect()
    };
    let open = files(&run(&["--passphrase-file", "key"]));
    assert_eq!(
        open,
        [(
            serde_json::json!(["luks2", "payload (squashfs)"]),
            "/etc/where".to_owned()
        )]
    );
    let locked = files(&run(&[]));
    assert_eq!(
        locked,
        [(serde_json::json!(["luks2"]), "payload".to_owned())]
    );
    let o = run(&["--passphrase-file", "bad"]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--passphrase-file: opens no keyslot"), "{err}");
}
