#![no_main]
// Opens the input as a whole image and walks it: metadata blocks, inode and directory tables,
// id, fragment, xattr and export tables, data blocks. Nothing may panic, hang or blow up.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    use imgpipe_squashfs::raw::{InodeData, InodeKind};
    use imgpipe_squashfs::{Bytes, Limits, Reader};
    let limits = Limits {
        max_entries: 10_000,
        max_file_blocks: 4096,
        ..Limits::default()
    };
    let _ = imgpipe_squashfs::inspect_squashfs(std::io::Cursor::new(data));
    let Ok(r) = Reader::open_at(Bytes(data.to_vec()), 0, limits) else {
        return;
    };
    let Ok(entries) = r.walk() else { return };
    for e in entries {
        let _ = r.xattrs(&e.inode);
        let _ = r.owner(&e.inode);
        let _ = r.export_lookup(e.inode.inode_number);
        if let InodeData::File(f) = &e.inode.data {
            if e.inode.kind == InodeKind::File && f.file_size < 1 << 24 {
                let _ = r.read_file(&e.inode, &mut std::io::sink());
            }
        }
    }
});
