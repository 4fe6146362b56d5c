//! Live differential check against `ksvalidator` (pykickstart) on a handful of files: the
//! verdict of `ksvalidator -v VERSION` equals ours in its strict sense (`Report::is_clean`).
//! ksvalidator is slow (a Python start per file), so the set is small; the corpus test
//! covers breadth against recorded verdicts.

use std::path::Path;
use std::process::Command;

use imgpipe_kickstart::{Kickstart, Version};

const CASES: &[(&str, &str)] = &[
    (
        "valid",
        "lang en_US.UTF-8\nrootpw --lock\npart / --size=1024 --fstype=xfs\n%packages\n@core\n%end\n",
    ),
    ("removed", "install\nlang C\n"),
    ("unknown", "lang C\nfrobnicate --now\n"),
    ("deprecated-option", "timezone --isUtc UTC\n"),
    ("no-end", "lang C\n%packages\n@core\n"),
    ("quote", "lang 'C\n"),
    ("dup-mount", "part / --size=1\npart / --size=2\n"),
    ("bad-int", "part / --size=big\n"),
    ("conflict", "autopart\npart / --size=1\n"),
    ("traceback", "%traceback\necho x\n%end\n"),
    ("packages-opts", "%packages --nocore --default\n%end\n"),
    ("abbrev", "part / --siz=10 --fst=xfs\n"),
];

fn ksvalidator_ok(ksvalidator: &Path, file: &Path, version: &str) -> bool {
    // pykickstart's preprocessing writes a `tmp*-ks.cfg` it never removes: keep it in the
    // test's own directory, not in /tmp.
    let out = Command::new(ksvalidator)
        .args(["-v", version])
        .arg(file)
        .current_dir(file.parent().unwrap())
        .env("TMPDIR", file.parent().unwrap())
        .output()
        .unwrap();
    out.status.success()
}

#[test]
fn same_verdicts_as_ksvalidator() {
    let Some(ksvalidator) = imgpipe_testsupport::tool("ksvalidator") else {
        return;
    };
    let dir = imgpipe_testsupport::tempdir();
    let mut differ = Vec::new();
    for (name, text) in CASES {
        let path = dir.path().join(format!("{name}.ks"));
        std::fs::write(&path, text).unwrap();
        for (version, v) in [("F43", Version::F43), ("RHEL10", Version::RHEL10)] {
            if *name != "deprecated-option" && version == "RHEL10" {
                continue;
            }
            let theirs = ksvalidator_ok(&ksvalidator, &path, version);
            let ours = Kickstart::load(&path).unwrap().validate(v).is_clean();
            if theirs != ours {
                differ.push(format!(
                    "{name} {version}: ksvalidator {theirs}, ours {ours}"
                ));
            }
        }
    }
    assert!(differ.is_empty(), "{differ:#?}");
}

/// Our word splitting against Python's `shlex.split(line, comments=True)`, which pykickstart
/// uses, on lines with every quoting corner we know of.
#[test]
fn words_split_like_python_shlex() {
    let Some(python) = imgpipe_testsupport::tool("python3") else {
        return;
    };
    let lines = [
        r#"cmd a 'b c' "d e" f\ g"#,
        r#"cmd "a\"b" 'a\'b"#,
        r#"cmd "a\\b" "a\b" 'a\\b'"#,
        "cmd a#b c",
        "cmd '#' \"#\" x # trailing",
        "cmd '' \"\" x''y",
        "cmd --opt='v w' --o2=\"x\"y'z'",
        "cmd \u{e9}t\u{e9} \u{a0}nbsp",
        "cmd\ttabs\t\tand  spaces",
        "cmd a\"b c\"d",
        "cmd \\#x \\\\ \\'",
        "cmd 'unclosed",
        "cmd \"unclosed",
        "cmd trailing\\",
    ];
    let script = "import json,shlex,sys\nfor l in json.load(sys.stdin):\n    \
                  try: print(json.dumps(shlex.split(l + \"\\n\", comments=True)))\n    \
                  except ValueError as e: print(json.dumps(str(e)))\n";
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(serde_json::to_string(&lines).unwrap().as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let expected: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(expected.len(), lines.len());
    for (line, want) in lines.iter().zip(expected) {
        let ks = Kickstart::parse_str("x.ks", &format!("{line}\n"));
        match want {
            serde_json::Value::String(err) => {
                let p = ks
                    .problems
                    .first()
                    .unwrap_or_else(|| panic!("{line:?}: no error"));
                assert_eq!(p.message, err, "{line:?}");
            }
            words => {
                let Some(imgpipe_kickstart::Item::Command(c)) = ks.items.first() else {
                    panic!("{line:?}: {:?}", ks.problems);
                };
                let mut ours = vec![c.name.clone()];
                ours.extend(c.args.iter().cloned());
                assert_eq!(serde_json::json!(ours), words, "{line:?}");
            }
        }
    }
}

/// The committed command tables are exactly what `scripts/gen_tables.py` makes from the
/// installed pykickstart: nobody edited them by hand, and pykickstart did not change under us.
#[test]
fn tables_are_generated_from_pykickstart() {
    let Some(python) = imgpipe_testsupport::tool("python3") else {
        return;
    };
    let has_pykickstart = Command::new(&python)
        .args(["-c", "import pykickstart"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_pykickstart {
        assert!(
            !imgpipe_testsupport::in_ci(),
            "pykickstart is missing under CI=true; scripts/test.sh installs it in .venv"
        );
        eprintln!("skipping: python3 has no pykickstart (run scripts/test.sh)");
        return;
    }
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(python)
        .arg(crate_dir.join("scripts/gen_tables.py"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "gen_tables.py failed (is pykickstart 3.78 installed?): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let committed = std::fs::read(crate_dir.join("src/spec/tables.rs")).unwrap();
    assert!(
        out.stdout == committed,
        "src/spec/tables.rs is stale: regenerate it with scripts/gen_tables.py"
    );
}
