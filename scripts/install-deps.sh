#!/usr/bin/env bash
# Installs the Debian 12 packages hutch needs to build, run and test.
# Runs as root (CI) or through sudo.
set -euo pipefail
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
PKGS=(
  build-essential pkg-config clang
  libjansson-dev libyaml-dev libcurl4-openssl-dev libmnl-dev libnftnl-dev libcap-dev
  libssl-dev zlib1g-dev liblzma-dev libzstd-dev
  qemu-system-x86 qemu-utils
  busybox-static cpio kmod debootstrap e2fsprogs dosfstools fdisk
  iproute2 nftables python3 openssh-client ansible
  wireguard-go wireguard-tools
  xorriso genisoimage xz-utils zstd gzip curl ca-certificates procps psmisc
  strace jq groff-base man-db
  libcap2-bin passwd util-linux mount bsdutils
  stress-ng
)
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${PKGS[@]}"
