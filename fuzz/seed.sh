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
mkdir -p corpus/kickstart_inspect
printf 'lang en_US.UTF-8\nkeyboard us\n%%packages\n@core\n%%end\n%%post\necho hi\n%%end\n' > corpus/kickstart_inspect/minimal.ks
