#!/usr/bin/env bash
# Makes the seed corpus of this crate's extra fuzz targets (run by hand from the workspace
# root after `cargo build -p imgpipe`; the seeds are committed). Complements fuzz/seed.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${IMGPIPE:-${CARGO_TARGET_DIR:-target}/debug/imgpipe}
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
export MTOOLS_SKIP_CHECK=1 SOURCE_DATE_EPOCH=1700000000
mkdir -p "$t/src/EFI/BOOT" "$t/src/a/b"
printf 'boot' > "$t/src/EFI/BOOT/BOOTX64.EFI"; printf 'x' > "$t/src/a/b/A long name.txt"
printf 'cfg' > "$t/src/grub.cfg"
c=fuzz/corpus
mkdir -p $c/fat_volume $c/gpt_inspect $c/mbr $c/gpt_roundtrip $c/fat_roundtrip
# FAT12 volumes: ours (smallest with 512 root entries) and mkfs.vfat + mcopy (16 root entries).
"$B" fat create -o $c/fat_volume/ours.img --size 48K --label SEED "$t/src" >/dev/null
mkfs.vfat -C "$t/theirs.img" 40 -r 16 -s 1 -n THEIRS >/dev/null
mcopy -s -i "$t/theirs.img" "$t/src/a" "$t/src/grub.cfg" ::
cp "$t/theirs.img" $c/fat_volume/mkfs.img
# Whole GPT disks of 64 KiB: 512- and 4096-byte sectors, a hybrid MBR.
"$B" gpt create -o $c/gpt_inspect/ours512.img --size 64K --alignment 4K --seed 0123456789abcdef0123456789abcdef \
  --part type=esp,size=4K,label=ESP --part type=root-x86-64,size=rest,flags=grow-fs >/dev/null
"$B" gpt create -o "$t/4k.img" --size 64K --sector-size 4096 --alignment 4K --seed 0123456789abcdef0123456789abcdef \
  --part type=linux-generic,size=rest,label=data >/dev/null
cp "$t/4k.img" $c/gpt_inspect/ours4096.img
"$B" gpt create -o "$t/hy.img" --size 64K --alignment 4K --seed 0123456789abcdef0123456789abcdef \
  --hybrid-mbr 1:ef:boot --part type=esp,size=8K --part type=linux-generic,size=rest >/dev/null
head -c 512 "$t/hy.img" > $c/mbr/hybrid.mbr
printf 'label: dos\n,16K,83,*\n,,ef\n' | sfdisk -q --no-reread --no-tell-kernel "$t/dos.img" 2>/dev/null || {
  truncate -s 1M "$t/dos.img"; printf 'label: dos\n,16K,83,*\n,,ef\n' | sfdisk -q --no-reread --no-tell-kernel "$t/dos.img"; }
head -c 512 "$t/dos.img" > $c/mbr/dos.mbr
# Builder round trips: a few layouts and trees.
printf '\x40\x00\x10\x00\x03\x09\xff\x00\x00' > $c/gpt_roundtrip/two.bin
printf '\x21\x05\x10\x00\x20\x01\x02\x00\x05\x03\x01\x00\x01' > $c/gpt_roundtrip/fourk.bin
printf 'EFI/BOOT/BOOTX64.EFI\x07\x00grub.cfg\x01\x00a/b/A long name.txt\x02\x00\xc3\xa9t\xc3\xa9\x03' > $c/fat_roundtrip/tree.bin
