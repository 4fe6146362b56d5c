//! The canonical writer: `parse(write(parse(x)))` has the same items as `parse(x)` for valid
//! inputs, writing is idempotent, and every corpus file survives the trip with the same
//! verdict.

use imgpipe_kickstart::{Kickstart, Kind, Version};
use proptest::prelude::*;

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z/][a-z0-9/._=,-]{0,12}",
        "--[a-z]{2,10}(=[a-zA-Z0-9 #'\"\\\\]{0,8})?",
        prop_oneof![
            Just("--size"),
            Just("--siz"),
            Just("--fstype"),
            Just("--grow"),
            Just("--name"),
            Just("--device"),
            Just("--bootproto"),
            Just("--lock"),
            Just("--iscrypted"),
            Just("--location"),
            Just("--append")
        ]
        .prop_map(str::to_string),
        "[0-9]{1,4}",
        "[ -~]{0,10}",
        "[\\u{80}-\\u{3000}]{1,4}",
    ]
}

fn command() -> impl Strategy<Value = String> {
    (
        prop_oneof![
            Just("part"),
            Just("network"),
            Just("rootpw"),
            Just("bootloader"),
            Just("lang"),
            Just("user"),
            Just("frobnicate"),
        ],
        proptest::collection::vec(word(), 0..5),
    )
        .prop_map(|(name, args)| {
            let mut line = name.to_string();
            for a in args {
                line.push(' ');
                // Quote a third of the words the other way, to exercise the lexer.
                if a.contains(['\'', '\\', '"', '#', ' ']) || a.is_empty() {
                    line.push('\'');
                    line.push_str(&a.replace('\'', "'\"'\"'"));
                    line.push('\'');
                } else {
                    line.push_str(&a);
                }
            }
            line
        })
}

fn section() -> impl Strategy<Value = String> {
    (
        prop_oneof![
            Just("%post"),
            Just("%pre"),
            Just("%packages"),
            Just("%addon org_x")
        ],
        proptest::collection::vec("[ -~&&[^%]][ -~]{0,20}", 0..4),
    )
        .prop_map(|(h, body)| format!("{h}\n{}\n%end", body.join("\n")))
}

fn document() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![3 => command(), 1 => section(), 1 => Just("# comment".to_string()), 1 => Just(String::new())],
        0..12,
    )
    .prop_map(|lines| lines.join("\n") + "\n")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn write_then_parse_gives_the_same_items(text in document()) {
        let first = Kickstart::parse_str("a.ks", &text);
        prop_assume!(first.problems.iter().all(|p| p.kind != Kind::ErrorFatal));
        prop_assume!(first.is_canonically_writable());
        let written = first.to_canonical_string();
        let second = Kickstart::parse_str("b.ks", &written);
        prop_assert!(second.problems.is_empty(), "{:?}\n{}", second.problems, written);
        prop_assert!(first.same_items(&second), "{text:?}\n---\n{written}");
        prop_assert_eq!(second.to_canonical_string(), written);
        for v in [Version::F43, Version::RHEL10] {
            let a = first.validate(v);
            let b = second.validate(v);
            prop_assert_eq!(a.is_valid(), b.is_valid());
            prop_assert_eq!(a.diagnostics.len(), b.diagnostics.len());
            // Normalised options (`--siz 1` to `--size=1`) mean the same.
            let normal = first.to_canonical_string_for(v);
            let third = Kickstart::parse_str("c.ks", &normal);
            let c = third.validate(v);
            prop_assert_eq!(a.is_valid(), c.is_valid(), "{}", normal);
            prop_assert_eq!(a.diagnostics.len(), c.diagnostics.len(), "{}", normal);
            let opts = |k: &Kickstart| -> Vec<(String, Vec<(String, imgpipe_kickstart::Value)>)> {
                k.model(v).commands.into_iter().map(|c| (c.name, c.options)).collect()
            };
            prop_assert_eq!(opts(&first), opts(&third), "{}", normal);
            prop_assert_eq!(third.to_canonical_string_for(v), normal.clone());
        }
    }

    #[test]
    fn parsing_never_panics(text in "[ -~\\n\\t\\r%#'\"\\\\]{0,300}") {
        let ks = Kickstart::parse_str("x.ks", &text);
        let _ = ks.validate(Version::F43);
        let _ = ks.model(Version::RHEL10);
        let _ = ks.to_canonical_string();
    }
}

#[test]
fn words_with_line_breaks_are_not_writable() {
    // `rootpw \` at the end of a line: the escaped newline becomes the password.
    let ks = Kickstart::parse_str("x.ks", "rootpw \\\n");
    assert!(ks.problems.is_empty());
    assert!(!ks.is_canonically_writable());
    // NEL is a line break for Python (and pykickstart) but not for shlex.
    let ks = Kickstart::parse_str("x.ks", "part \u{85}\n");
    assert!(!ks.is_canonically_writable());
    assert!(Kickstart::parse_str("x.ks", "part / --size=1\n").is_canonically_writable());
}

#[test]
fn realm_lines_whose_comment_is_part_of_the_raw_split_are_not_writable() {
    // pykickstart's realm splits its raw line again, without comments: `# note` is two more
    // arguments there (found by the kickstart_parse fuzz target), so the line written
    // without its comment would become valid.
    let ks = Kickstart::parse_str("x.ks", "realm join example.com # our domain\n");
    assert!(!ks.validate(Version::F43).is_valid());
    assert!(!ks.is_canonically_writable());
    let ks = Kickstart::parse_str("x.ks", "realm join --no-password example.com\n");
    assert!(ks.validate(Version::F43).is_valid());
    assert!(ks.is_canonically_writable());
    // getopt without short options: `-x` is an unknown option, as pykickstart says.
    let r = Kickstart::parse_str("x.ks", "realm join -# x\n").validate(Version::F43);
    assert!(
        r.diagnostics
            .iter()
            .any(|d| d.message == "Invalid realm arguments: option -# not recognized"),
        "{r:?}"
    );
}

#[test]
fn ksappend_lines_from_includes_are_not_writable() {
    // Only the top file's `%ksappend` lines are spliced: one in an included section body
    // stays a body line, but the flattened canonical file would splice it (found by the
    // kickstart_parse fuzz target).
    let files = [
        ("a.ks", "%packages\n%include c.ks\n%end\n"),
        ("c.ks", "vim\n %ksappend\n"),
    ];
    let map = files
        .iter()
        .map(|(n, t)| ((*n).to_string(), (*t).to_string()))
        .collect();
    let top = imgpipe_kickstart::Source {
        name: "a.ks".into(),
        text: files[0].1.into(),
    };
    let ks = imgpipe_kickstart::parse_with(
        top,
        &mut imgpipe_kickstart::MapResolver(map),
        imgpipe_kickstart::Limits::default(),
    );
    assert!(ks.problems.is_empty(), "{:?}", ks.problems);
    assert!(!ks.is_canonically_writable());
    let again = Kickstart::parse_str("w.ks", &ks.to_canonical_string());
    assert!(!ks.same_items(&again));
}

#[test]
fn corpus_files_round_trip() {
    let dir = imgpipe_testsupport::workspace_root().join("../shared/ks-corpus");
    if !dir.is_dir() {
        assert!(
            !imgpipe_testsupport::in_ci(),
            "corpus missing under CI=true"
        );
        return;
    }
    let mut files = Vec::new();
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "ks") {
                files.push(p);
            }
        }
    }
    files.sort();
    assert!(files.len() > 100);
    for f in files {
        let ks = Kickstart::load(&f).unwrap();
        if ks.problems.iter().any(|p| p.kind == Kind::ErrorFatal) {
            continue;
        }
        assert!(ks.is_canonically_writable(), "{}", f.display());
        let written = ks.to_canonical_string();
        let again = Kickstart::parse_str("canonical.ks", &written);
        assert!(ks.same_items(&again), "{}", f.display());
        assert_eq!(
            ks.validate(Version::F43).is_valid(),
            again.validate(Version::F43).is_valid(),
            "{}",
            f.display()
        );
    }
}

#[test]
fn options_are_normalised_for_a_version() {
    let ks = Kickstart::parse_str(
        "x.ks",
        "part / --siz 10 --fst xfs --gr --ondrive=sda\nnetwork --bootproto dhcp --no-activate\n\
         part /x --size\nbogus --a b\n",
    );
    assert_eq!(
        ks.to_canonical_string_for(Version::F43),
        "part / --size=10 --fstype=xfs --grow --ondisk=sda\n\
         network --bootproto=dhcp --no-activate\n\
         part /x --size\nbogus --a b\n"
    );
}
