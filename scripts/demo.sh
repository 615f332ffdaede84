#!/usr/bin/env bash
# `make demo`: the whole user story on a fresh Debian 12 machine.
# Installs packages, builds hutch, builds a base image from Debian packages
# if none is cached (no internet needed beyond the Debian archive), brings
# up examples/demo, runs a command over SSH, runs the playbook, halts and
# destroys.  Uses a scratch project copy so the source tree stays clean.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
step() { printf '\n==> %s\n' "$*" >&2; }

step "installing Debian packages"
bash scripts/install-deps.sh
step "building hutch"
make -j"$(nproc)" hutch
HUTCH=$SRC/hutch

if ! "$HUTCH" images list 2>/dev/null | grep -q '^debian-12\b'; then
	step "no cached debian-12 image: building one from Debian packages (several minutes)"
	"$HUTCH" images build debian-12
fi

WORK=$(mktemp -d /tmp/hutch-demo.XXXXXX)
cp -r examples/demo/. "$WORK/"
cleanup() { "$HUTCH" -C "$WORK" destroy >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT

step "hutch up (first boot runs cloud-init and the playbook)"
time "$HUTCH" -C "$WORK" up
step "hutch status"
"$HUTCH" -C "$WORK" status
step "hutch ip"
"$HUTCH" -C "$WORK" ip
step "running a command in the guest over SSH"
"$HUTCH" -C "$WORK" ssh -- 'uname -a; cat /etc/hutch-provisioned'
step "hutch halt"
"$HUTCH" -C "$WORK" halt
step "hutch destroy"
"$HUTCH" -C "$WORK" destroy
trap - EXIT
rm -rf "$WORK"
step "demo finished"
