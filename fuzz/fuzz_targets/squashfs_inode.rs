#![no_main]
// One inode from raw bytes; what parses re-encodes to bytes that parse to the same inode.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    use imgpipe_squashfs::raw::Inode;
    if let Ok((inode, _)) = Inode::parse(data, 0, 17, 1 << 16) {
        let mut b = Vec::new();
        if inode.write_to(&mut b).is_ok() {
            let (again, used) = Inode::parse(&b, 0, 17, 1 << 16).unwrap();
            assert_eq!(again, inode);
            assert_eq!(used, b.len());
        }
    }
});
