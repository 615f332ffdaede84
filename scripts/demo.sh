#!/usr/bin/env bash
# `make demo`: the whole user story on a fresh Debian 12 machine.
# Installs packages, builds hutch, builds the debian-12 base image from
# Debian packages if none is cached (no internet needed beyond the Debian
# archive), then in a scratch copy of examples/demo: up (cloud-init + the
# playbook), status, a command over SSH, the playbook's mark, halt, destroy.
#   DEMO_NETWORK=user   use QEMU user networking instead of the nat bridge
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
step() { printf '\n\033[1m==> %s\033[0m\n' "$*" >&2; }

step "installing Debian packages"
bash scripts/install-deps.sh
step "building hutch"
make -j"$(nproc)" hutch
HUTCH=$SRC/hutch

if ! "$HUTCH" images list 2>/dev/null | grep -qw 'debian-12'; then
	step "no cached debian-12 image: downloading the official one"
	if ! "$HUTCH" images pull debian-12; then
		step "no download possible: building debian-12 from Debian packages (several minutes)"
		"$HUTCH" images build debian-12
	fi
fi

WORK=$(mktemp -d /tmp/hutch-demo.XXXXXX)
cp -r examples/demo/. "$WORK/"
if [ -n "${DEMO_NETWORK:-}" ]; then
	sed -i "s/^  mode: .*/  mode: $DEMO_NETWORK/" "$WORK/hutch.yaml"
fi
cleanup() { "$HUTCH" -C "$WORK" destroy >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT

step "hutch up  (first boot: cloud-init, then playbook.yml through ansible)"
time "$HUTCH" -C "$WORK" up
step "hutch status"
"$HUTCH" -C "$WORK" status
step "hutch ssh -- uname -a  (pinned host key, the managed key ~/.ssh/hutch)"
"$HUTCH" -C "$WORK" ssh -- uname -a
step "hutch ssh -- cat /etc/hutch-provisioned  (written by the playbook)"
"$HUTCH" -C "$WORK" ssh -- cat /etc/hutch-provisioned
step "hutch halt  (ACPI power-down)"
"$HUTCH" -C "$WORK" halt
step "hutch destroy"
"$HUTCH" -C "$WORK" destroy
trap - EXIT
rm -rf "$WORK"
step "demo finished"
