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
  qemu-system-x86 ovmf grub-pc-bin grub-efi-amd64-bin grub-rescue-pc ipxe memtest86+
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

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== cargo test"
cargo test --workspace "$@"
