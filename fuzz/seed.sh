#!/usr/bin/env bash
# Makes the seed corpus from images written by the reference tools (run by hand; the seeds are
# committed). Each seed is the image's first bytes, enough for the parser it feeds.
set -euo pipefail
cd "$(dirname "$0")"
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
mkdir -p "$t/src/sub"; echo hello > "$t/src/hello.txt"; echo deep > "$t/src/sub/x"
seed() { mkdir -p "corpus/$1"; head -c "$3" "$2" > "corpus/$1/$(basename "$2")"; }
xorriso -as mkisofs -R -J -V SEED -o "$t/plain.iso" "$t/src" 2>/dev/null
seed iso_inspect "$t/plain.iso" 40960
mksquashfs "$t/src" "$t/root.sqfs" -quiet -no-progress >/dev/null
seed squashfs_superblock "$t/root.sqfs" 4096
mkfs.erofs -T0 "$t/root.erofs" "$t/src" >/dev/null
seed erofs_superblock "$t/root.erofs" 4096
truncate -s 8M "$t/gpt.img"; sgdisk -n 1:2048:+2M -t 1:ef00 -c 1:ESP -n 2:0:0 "$t/gpt.img" >/dev/null
seed gpt_inspect "$t/gpt.img" 20480
seed mbr "$t/gpt.img" 512
truncate -s 16M "$t/fat.img"; mkfs.vfat -n ESP "$t/fat.img" >/dev/null
seed fat_boot_sector "$t/fat.img" 512
truncate -s 20M "$t/luks.img"; printf pw > "$t/key"
cryptsetup luksFormat --type luks2 -q --disable-locks --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --key-file "$t/key" "$t/luks.img"
seed luks_inspect "$t/luks.img" 32768
# Whole detached headers with their keyslot areas (160 KiB), cheap to unlock with `pw`.
truncate -s 1M "$t/data"; mkdir -p corpus/luks_unlock
cryptsetup luksFormat --type luks2 -q --disable-locks --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --key-size 256 --luks2-metadata-size 16k --luks2-keyslots-size 128k --header corpus/luks_unlock/cryptsetup-pbkdf2-header.img --key-file "$t/key" "$t/data"
cryptsetup luksFormat --type luks2 -q --disable-locks --pbkdf argon2id --pbkdf-memory 32 --pbkdf-force-iterations 4 --pbkdf-parallel 1 --key-size 256 --luks2-metadata-size 16k --luks2-keyslots-size 128k --header corpus/luks_unlock/cryptsetup-argon2id-header.img --key-file "$t/key" "$t/data"
chmod 644 corpus/luks_unlock/*
# Extraction targets start from whole images: the readers' seeds, and a multi-block squashfs
# holding a hard link, a symlink and a FIFO.
mkdir -p corpus/iso_extract corpus/squashfs_extract corpus/fat_extract
cp corpus/iso_read/* corpus/iso_extract/; cp corpus/squashfs_image/* corpus/squashfs_extract/
cp corpus/fat_volume/* corpus/fat_extract/
mkdir -p "$t/multi/d"; python3 -c 'import sys; sys.stdout.buffer.write(bytes((i*7 + (i>>9)) & 0xff for i in range(200000)))' > "$t/multi/d/multi.bin"
echo hi > "$t/multi/a"; ln "$t/multi/a" "$t/multi/d/a-link"; ln -s ../a "$t/multi/d/sym"; mkfifo "$t/multi/fifo"
mksquashfs "$t/multi" corpus/squashfs_extract/multi-block.sqfs -b 4096 -comp gzip -quiet -no-progress -all-time 1700000000 -mkfs-time 1700000000 >/dev/null
cp corpus/squashfs_extract/multi-block.sqfs corpus/squashfs_image/
mkdir -p corpus/kickstart_inspect
printf 'lang en_US.UTF-8\nkeyboard us\n%%packages\n@core\n%%end\n%%post\necho hi\n%%end\n' > corpus/kickstart_inspect/minimal.ks
# kickstart_include: NUL-separated a.ks, b.ks, c.ks, sub/d.ks, beside the symlinks, FIFO,
# socket and directory the body makes (see imgpipe_kickstart::fuzzing::kickstart_include).
k=corpus/kickstart_include; mkdir -p "$k"
printf 'lang en_US.UTF-8\nkeyboard us\n%%include b.ks\n%%include sub/d.ks\n%%packages\n%%include c.ks\n%%end\n\0rootpw --plaintext x\n%%include link.ks\n\0@core\nvim\n\0%%include ../c.ks\n' > "$k/tree.ks"
printf 'lang C\n%%ksappend b.ks\n%%include sub/d.ks\n\0timezone UTC\n\0\0part / --size=1\n' > "$k/clean.ks"
printf 'lang C\n%%include a.ks\n\0' > "$k/self-include.ks"
printf 'lang C\n%%include ./a.ks\n\0' > "$k/dot-self.ks"
printf 'lang C\n%%include sub/up.ks\n\0' > "$k/symlink-cycle.ks"
printf 'lang C\n%%include sub/../sub/d.ks\n\0\0\0%%include ../a.ks\n' > "$k/dotdot-cycle.ks"
printf 'lang C\n%%include b.ks\n\0%%include c.ks\n\0%%include link.ks\n' > "$k/three-cycle.ks"
printf 'lang C\n%%include fifo.ks\n%%include sock.ks\n%%include dir.ks\n%%include zero.ks\n%%include self.ks\n%%include ..\n%%include sub\n%%include missing.ks\n\0' > "$k/special.ks"
printf 'lang C\n%%ksappend fifo.ks\n\0' > "$k/ksappend-fifo.ks"
printf 'lang C\n%%ksappend b.ks\n%%ksappend b.ks\n%%ksappend a.ks\n\0%%include b.ks\n' > "$k/ksappend-loop.ks"
printf '%%include b.ks\n%%include b.ks\n\0%%include c.ks\n%%include c.ks\n%%include c.ks\n\0%%include sub/d.ks\n%%include sub/d.ks\n%%include sub/d.ks\n\0lang C\n' > "$k/fanout.ks"
printf 'lang C\n%%include b.ks\n\0\xff\xfe not utf-8\n' > "$k/not-utf8.ks"

# repro_reason: two versions of one file, each pair made to differ in its usual way by the
# real tool (4-byte little-endian length of A, then A, then B). Needs gcc, ar, bsdtar, python3.
r=corpus/repro_reason; mkdir -p "$r"
for n in 0 1; do
  d="$t/reason$n"; mkdir -p "$d"
  printf 'same\n' > "$d/d"; touch -d "@100000000$n" "$d/d"; gzip -c "$d/d" > "$d/d.gz"
  printf 'member\n' > "$d/o.txt"; touch -d "@100000000$n" "$d/o.txt"
  (cd "$d" && ar rcU lib.a o.txt 2>/dev/null && bsdtar --format newc -cf init.cpio o.txt)
  gzip -c "$d/init.cpio" > "$d/init.cpio.gz"
  printf 'int main(void){return 0;}\n' > "$d/m.c"; gcc -Os -s -Wl,--build-id=0x$n$n$n$n -o "$d/prog" "$d/m.c"
  printf 'x = 1\n' > "$d/m.py"; touch -d "@100000000$n" "$d/m.py"
  python3 -c "import py_compile; py_compile.compile('$d/m.py', cfile='$d/m.pyc')"
  python3 -c "import zipfile; z=zipfile.ZipFile('$d/w.zip','w'); z.writestr(zipfile.ZipInfo('a.txt',(2020,1,1,0,0,2*$n)),'x'); z.close()"
  printf 'one\ntwo%s\n' "$n" > "$d/t.txt"
done
for f in d.gz lib.a init.cpio init.cpio.gz prog m.pyc w.zip t.txt; do
  python3 -c "import sys,struct; a=open(sys.argv[1],'rb').read(); b=open(sys.argv[2],'rb').read(); open(sys.argv[3],'wb').write(struct.pack('<I',len(a))+a+b)" \
    "$t/reason0/$f" "$t/reason1/$f" "$r/$f"
done

# repro_nested: cryptsetup LUKS2 volumes (PBKDF2, 1000 iterations, passphrase `pw`, as the
# body unlocks) whose payloads are squashfs images differing in /etc/motd. Cut as above.
# The payload is encrypted by imgpipe (cargo build --release first).
n=corpus/repro_nested; mkdir -p "$n"
for i in 0 1; do
  mkdir -p "$t/luks$i/etc"; echo "v$i" > "$t/luks$i/etc/motd"; echo same > "$t/luks$i/etc/hostname"
  mksquashfs "$t/luks$i" "$t/p$i.sqfs" -quiet -no-progress -all-time 1700000000 -mkfs-time 1700000000 -comp gzip >/dev/null
  truncate -s $((160 * 1024 + 4096)) "$t/l$i.img"
  cryptsetup luksFormat --type luks2 -q --disable-locks --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --key-size 256 --luks2-metadata-size 16k --luks2-keyslots-size 128k --offset 320 --key-file "$t/key" "$t/l$i.img" 2>/dev/null
  ../target/release/imgpipe luks encrypt --passphrase-file "$t/key" --input "$t/p$i.sqfs" "$t/l$i.img" >/dev/null
done
python3 -c "import sys,struct; a=open(sys.argv[1],'rb').read(); b=open(sys.argv[2],'rb').read(); open(sys.argv[3],'wb').write(struct.pack('<I',len(a))+a+b)" \
  "$t/l0.img" "$t/l1.img" "$n/luks2-squashfs-pair"
# The first volume again, against one whose payload is an EROFS image of the second tree
# (mkfs.erofs): the payloads' change of format is reported, then /etc/motd inside.
mkfs.erofs -T1700000000 "$t/p1.erofs" "$t/luks1" >/dev/null
truncate -s $((160 * 1024 + 16384)) "$t/le.img"
cryptsetup luksFormat --type luks2 -q --disable-locks --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --key-size 256 --luks2-metadata-size 16k --luks2-keyslots-size 128k --offset 320 --key-file "$t/key" "$t/le.img" 2>/dev/null
../target/release/imgpipe luks encrypt --passphrase-file "$t/key" --input "$t/p1.erofs" "$t/le.img" >/dev/null
python3 -c "import sys,struct; a=open(sys.argv[1],'rb').read(); b=open(sys.argv[2],'rb').read(); open(sys.argv[3],'wb').write(struct.pack('<I',len(a))+a+b)" \
  "$t/l0.img" "$t/le.img" "$n/luks2-squashfs-erofs-pair"
