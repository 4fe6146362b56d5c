//! The module layering holds: raw structures (squashfs `src/raw`, EROFS `src/erofs/raw`) never
//! import the codecs, the readers, the writers or inspection, so parsing a structure stays
//! free of decompression and I/O and the modules form no cycle.

use std::path::Path;

fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push((
                p.display().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            ));
        }
    }
}

#[test]
fn raw_imports_no_codec_reader_or_writer() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root.join("raw"), &mut files);
    sources(&root.join("erofs/raw"), &mut files);
    assert!(files.len() >= 10, "{}", files.len());
    let forbidden = [
        "crate::codec",
        "crate::compress",
        "crate::read",
        "crate::write",
        "crate::inspect",
        "crate::erofs::read",
        "crate::erofs::inspect",
        "crate::erofs::write",
        "super::read",
        "super::write",
        "super::inspect",
        "flate2",
        "liblzma",
        "zstd::",
        "lz4::",
        "lz4_flex",
        "lzokay",
    ];
    for (path, text) in &files {
        for f in forbidden {
            assert!(!text.contains(f), "{path} uses {f}");
        }
    }
}
