#!/usr/bin/env bash
# The one test command: installs what the tests need (skipping what is already there), then
# runs formatting, lints and the whole test suite. CI (`.ci/run`) calls exactly this.
#
#   scripts/test.sh            everything
#   scripts/test.sh -p NAME    only one package's tests (after the same checks)
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(
  xorriso squashfs-tools erofs-utils cryptsetup-bin gdisk fdisk dosfstools mtools
  libarchive-tools genisoimage systemd
  qemu-system-x86 ovmf grub-pc-bin grub-efi-amd64-bin grub-rescue-pc ipxe memtest86+ faketime
  busybox-static kmod xfsprogs
)
PYPI_PACKAGES=(pykickstart==3.78 pycdlib)

sudo_if_needed() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for p in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing Debian packages: ${missing[*]}"
  sudo_if_needed apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# erofs-utils 1.8.6 (lzma, deflate, zstd, fragments, dedupe, --workers): Debian 12 ships 1.5, so
# build trixie's source package into .tools/ once. Tests find it through
# imgpipe_testsupport::erofs_utils().
# MAX_BLOCK_SIZE: blocks up to 64 KiB (`mkfs.erofs -b`, images our writer makes for 16K- and
# 64K-page machines) instead of this machine's page size, so that fsck.erofs checks those too.
# imgpipe_testsupport reads the next two lines (NAME=value) when it is compiled.
EROFS_UTILS_VERSION=1.8.6
EROFS_UTILS_CONFIG="MAX_BLOCK_SIZE=65536"
EROFS_UTILS=.tools/erofs-utils-$EROFS_UTILS_VERSION
if [ ! -x "$EROFS_UTILS/bin/mkfs.erofs" ] \
  || [ "$(cat "$EROFS_UTILS/configured-with" 2>/dev/null)" != "$EROFS_UTILS_CONFIG" ]; then
  echo "== building erofs-utils $EROFS_UTILS_VERSION from Debian trixie's source package"
  build_deps=(autoconf automake libtool pkg-config make gcc liblzma-dev liblz4-dev libzstd-dev
    libdeflate-dev uuid-dev zlib1g-dev)
  # Source packages only (deb-src): nothing from trixie is ever installed.
  if ! grep -qs "trixie" /etc/apt/sources.list.d/imgpipe-trixie-src.sources; then
    printf '%s\n' 'Types: deb-src' 'URIs: http://deb.debian.org/debian' 'Suites: trixie' 'Components: main' \
      'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' \
      | sudo_if_needed tee /etc/apt/sources.list.d/imgpipe-trixie-src.sources >/dev/null
  fi
  sudo_if_needed apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${build_deps[@]}" >/dev/null
  scratch=$(mktemp -d)
  (
    cd "$scratch"
    apt-get source --download-only erofs-utils >/dev/null 2>&1
    tar xf erofs-utils_*.orig.tar.*
    cd erofs-utils-*/
    ./autogen.sh >/dev/null 2>&1
    ./configure -q --prefix="$scratch/prefix" --enable-lzma --enable-multithreading \
      --with-libzstd --with-libdeflate "$EROFS_UTILS_CONFIG" >/dev/null
    make -j"$(nproc)" -s >/dev/null 2>&1
    make install -s >/dev/null 2>&1
  )
  "$scratch/prefix/bin/mkfs.erofs" --version | grep -q " $EROFS_UTILS_VERSION" \
    || { echo "trixie's erofs-utils is no longer $EROFS_UTILS_VERSION; update EROFS_UTILS_VERSION" >&2; exit 1; }
  mkdir -p .tools
  rm -rf "$EROFS_UTILS"
  mv "$scratch/prefix" "$EROFS_UTILS"
  echo "$EROFS_UTILS_CONFIG" > "$EROFS_UTILS/configured-with"
  rm -rf "$scratch"
fi
export IMGPIPE_EROFS_UTILS="$PWD/$EROFS_UTILS/bin"

# Debian 12's kernel for the boot tests (crates/testsupport/src/boot.rs): the versioned package
# linux-image-amd64 depends on (linux-image-6.1.0-N-amd64), unpacked into .tools/linux-<version>/
# once, with the modules.dep its postinst would make (depmod). Nothing is installed on the host.
if ! compgen -G ".tools/linux-*/lib/modules/*/modules.dep" >/dev/null; then
  kernel_package() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'; }
  kpkg=$(kernel_package)
  if [ -z "$kpkg" ]; then sudo_if_needed apt-get update -qq; kpkg=$(kernel_package); fi
  [ -n "$kpkg" ] || { echo "apt knows no linux-image-amd64" >&2; exit 1; }
  kver=${kpkg#linux-image-}
  echo "== unpacking Debian's $kpkg into .tools/linux-$kver"
  scratch=$(mktemp -d)
  chmod 755 "$scratch"
  (cd "$scratch" && apt-get download -q "$kpkg" >/dev/null 2>&1)
  dpkg-deb -x "$scratch"/"$kpkg"_*.deb "$scratch/root"
  PATH="$PATH:/usr/sbin:/sbin" depmod -b "$scratch/root" "$kver"
  test -f "$scratch/root/boot/vmlinuz-$kver" || { echo "$kpkg has no /boot/vmlinuz-$kver" >&2; exit 1; }
  mkdir -p .tools
  rm -rf ".tools/linux-$kver"
  mv "$scratch/root" ".tools/linux-$kver"
  rm -rf "$scratch"
fi

VENV=.venv
if [ ! -x "$VENV/bin/python" ]; then
  echo "== creating $VENV"
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import pykickstart, pycdlib' 2>/dev/null; then
  echo "== installing PyPI packages: ${PYPI_PACKAGES[*]}"
  "$VENV/bin/pip" install -q --disable-pip-version-check "${PYPI_PACKAGES[@]}"
fi
export PATH="$PWD/$VENV/bin:/usr/sbin:/sbin:$PATH"

rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy

# Every step says when it starts (seconds since the start), on stdout, so that a run CI
# stops shows where the time went.
step() { echo "== $* (at ${SECONDS} s)"; }

step "cargo fmt --check"
cargo fmt --all -- --check

# Crates are downloaded on their own, each attempt bounded: a stalled download is retried
# instead of holding the build until CI's limit.
export CARGO_NET_RETRY=5 CARGO_HTTP_TIMEOUT=60
step "cargo fetch"
fetched=false
for attempt in 1 2 3; do
  if timeout 900 cargo fetch --locked; then fetched=true; break; fi
  echo "== cargo fetch attempt $attempt failed (at ${SECONDS} s)"
done
$fetched || { echo "== cargo fetch failed three times"; exit 1; }

step "cargo clippy"
timeout --kill-after=30 2400 cargo clippy --workspace --all-targets --locked --quiet -- -D warnings \
  || { status=$?; [ "$status" = 124 ] && echo "== cargo clippy did not finish in 40 minutes"; exit "$status"; }
# CI stops a run at 90 minutes and then shows little of what it printed: stop the tests
# ourselves 5 minutes before that, so the output ends with what was still running.
budget=$((85 * 60 - SECONDS))
step "cargo test (the tests get ${budget} s)"
status=0
timeout --signal=TERM --kill-after=30 "$budget" cargo test --workspace --locked "$@" || status=$?
if [ "$status" = 124 ]; then
  echo "== cargo test was stopped after ${budget} s: the tests running above did not finish"
fi
step "done, exit $status"
exit "$status"
