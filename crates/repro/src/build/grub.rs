//! The GRUB configurations a build writes. One text per medium, the same for BIOS and
//! UEFI: it finds the medium (the ISO by its label, the disk's ESP by its FAT serial), then
//! boots the kernel with the command line the build chose.

use std::fmt::Write as _;

/// Where GRUB finds the files it boots.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Search<'a> {
    /// The ISO9660 volume with this identifier.
    Label(&'a str),
    /// The FAT file system with this serial (`XXXX-XXXX`).
    FsUuid(&'a str),
}

/// What one menu entry boots.
#[derive(Debug, Clone)]
pub(crate) struct Entry<'a> {
    pub title: &'a str,
    pub kernel: &'a str,
    pub initrd: &'a str,
    pub cmdline: &'a str,
}

/// The `grub.cfg` text: serial console set up when the command line asks for one, the menu
/// timeout, the search, one entry.
pub(crate) fn config(search: Search<'_>, entry: &Entry<'_>, timeout: u64) -> String {
    let mut s = String::new();
    s.push_str("# Written by imgpipe build.\n");
    // A console on a serial port gets GRUB's menu too (as the installer's images do).
    if let Some(unit) = serial_unit(entry.cmdline) {
        let _ = writeln!(s, "serial --unit={unit} --speed=115200");
        s.push_str("terminal_input console serial\nterminal_output console serial\n");
    }
    let _ = writeln!(s, "set default=0\nset timeout={timeout}");
    match search {
        Search::Label(l) => {
            let _ = writeln!(s, "search --no-floppy --set=root --label {l}");
        }
        Search::FsUuid(u) => {
            let _ = writeln!(s, "search --no-floppy --set=root --fs-uuid {u}");
        }
    }
    let _ = writeln!(
        s,
        "menuentry '{}' {{\n\tlinux {} {}\n\tinitrd {}\n}}",
        entry.title.replace('\'', ""),
        entry.kernel,
        entry.cmdline,
        entry.initrd
    );
    s
}

/// The serial unit of a `console=ttySN` argument.
fn serial_unit(cmdline: &str) -> Option<u32> {
    cmdline.split_whitespace().find_map(|a| {
        let tty = a.strip_prefix("console=ttyS")?;
        tty.split(',').next()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let e = Entry {
            title: "Live",
            kernel: "/images/pxeboot/vmlinuz",
            initrd: "/images/pxeboot/initrd.img",
            cmdline: "root=live:CDLABEL=L rd.live.image console=ttyS0,115200",
        };
        let c = config(Search::Label("L"), &e, 3);
        assert!(c.contains("serial --unit=0 --speed=115200\n"));
        assert!(c.contains("set timeout=3\n"));
        assert!(c.contains("search --no-floppy --set=root --label L\n"));
        assert!(c.contains("\tlinux /images/pxeboot/vmlinuz root=live:CDLABEL=L"));
        let c = config(
            Search::FsUuid("1234-ABCD"),
            &Entry {
                cmdline: "quiet",
                ..e
            },
            0,
        );
        assert!(!c.contains("serial"));
        assert!(c.contains("--fs-uuid 1234-ABCD"));
    }
}
