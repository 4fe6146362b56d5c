#!/usr/bin/env bash
# Makes the squashfs_* fuzz seeds from images written by mksquashfs (run by hand from this
# directory; the seeds under fuzz/corpus/ are committed). Each seed stays a few KB.
set -euo pipefail
fuzz=$(cd ../../../../fuzz && pwd)
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
mkdir -p "$t/src/sub" "$t/src/dir2"
echo hello > "$t/src/hello.txt"; echo deep > "$t/src/sub/x"; ln -s hello.txt "$t/src/link"
head -c 5000 /usr/share/common-licenses/GPL-3 > "$t/src/text"; ln "$t/src/text" "$t/src/dir2/hard"
mkfifo "$t/src/fifo"
for c in gzip xz lzo lz4 zstd; do
  mksquashfs "$t/src" "$t/$c.sqfs" -comp "$c" -noappend -quiet -no-progress -b 4096 >/dev/null
done
mksquashfs "$t/src" "$t/plain.sqfs" -noI -noD -noF -noX -noappend -quiet -no-progress -b 4096 >/dev/null
mkdir -p "$fuzz/corpus/squashfs_image" "$fuzz/corpus/squashfs_inode" \
  "$fuzz/corpus/squashfs_directory" "$fuzz/corpus/squashfs_decompress"
for c in gzip xz lzo lz4 zstd plain; do cp "$t/$c.sqfs" "$fuzz/corpus/squashfs_image/$c.sqfs"; done
python3 - "$t" "$fuzz/corpus" <<'PY'
import lzma, struct, sys, zlib, subprocess
t, corpus = sys.argv[1], sys.argv[2]
def sb(img):
    b = open(img, 'rb').read()
    f = struct.unpack_from('<IIIIIHHHHHHQQQQQQQQ', b, 0)
    return b, dict(inode=f[15], dir=f[16])
b, s = sb(f'{t}/plain.sqfs')
def table(start, end):
    out, p = b'', start
    while p < end:
        h = struct.unpack_from('<H', b, p)[0]; n = h & 0x7fff
        out += b[p + 2:p + 2 + n]; p += 2 + n
    return out
inodes = table(s['inode'], s['dir'])
open(f'{corpus}/squashfs_inode/table', 'wb').write(inodes)
for i, off in enumerate([32, 64, 96]):
    open(f'{corpus}/squashfs_inode/at{i}', 'wb').write(inodes[off:])
open(f'{corpus}/squashfs_directory/table', 'wb').write(table(s['dir'], s['dir'] + 4096)[:4096])
data = open(f'{t}/src/text', 'rb').read()
sel = {'gzip': 0, 'lzma': 1, 'lzo': 2, 'xz': 3, 'lz4': 4, 'zstd': 5}
def put(name, blob): open(f'{corpus}/squashfs_decompress/{name}', 'wb').write(bytes([sel[name]]) + blob)
put('gzip', zlib.compress(data, 9))
put('xz', lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32))
put('lzma', lzma.compress(data, format=lzma.FORMAT_ALONE))
put('zstd', subprocess.run(['zstd', '-c', '-q'], input=data, capture_output=True, check=True).stdout)
for c in ['lz4', 'lzo']:
    img, s2 = sb(f'{t}/{c}.sqfs')
    p = s2['inode']; h = struct.unpack_from('<H', img, p)[0]
    put(c, img[p + 2:p + 2 + (h & 0x7fff)])
PY
ls -la "$fuzz/corpus"/squashfs_*
