#![no_main]
// Opens the input as an EROFS image and walks it: inodes, directory blocks, inline tails,
// chunk maps, xattrs (inline and shared), symlinks. Nothing may panic, hang or blow up.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    use imgpipe_squashfs::erofs::ErofsReader;
    use imgpipe_squashfs::raw::InodeKind;
    use imgpipe_squashfs::{Bytes, Limits};
    let limits = Limits {
        max_entries: 10_000,
        ..Limits::default()
    };
    let Ok(r) = ErofsReader::open_at(Bytes(data.to_vec()), 0, limits) else {
        return;
    };
    let Ok(entries) = r.walk() else { return };
    for e in entries {
        let _ = r.xattrs(&e.inode);
        match e.inode.kind {
            InodeKind::File if e.inode.size < 1 << 24 => {
                let _ = r.read_file(&e.inode, &mut std::io::sink());
            }
            InodeKind::Symlink => {
                let _ = r.read_link(&e.inode);
            }
            _ => {}
        }
    }
});
