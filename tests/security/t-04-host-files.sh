#!/usr/bin/env bash
# Issue 15.4: a project must not put the host's files into the guest (nor
# into hutch's messages).  The attacks: hutch.yaml as a symlink to a secret
# (its content used to show up in the error), hutch.yaml as a FIFO (hutch
# hung), image:/kernel/initrd at host paths, a disk image that is a symlink,
# cloud-init.yml as a symlink to /proc/self/environ, user-data without a
# known header, files owned by someone else.  Each is refused before a VM
# exists; the seed never holds the secret.
source "$(dirname "$0")/../lib/tap.sh"
T=$(mktemp -d /tmp/hutch-sec04.XXXXXX)
trap 'rm -rf "$T"' EXIT
export HOME=$T/home XDG_CONFIG_HOME=$T/config XDG_DATA_HOME=$T/data XDG_CACHE_HOME=$T/cache
unset HUTCH_ALLOW_PATHS
mkdir -p "$HOME" "$T/p"
P=$T/p
SECRET=topsecret_$$_value
printf '%s: 1\n' "$SECRET" >"$T/secret"
chmod 600 "$T/secret"

# --- hutch.yaml itself ----------------------------------------------------
ln -s "$T/secret" "$P/hutch.yaml"
err=$(timeout 20 "$HUTCH" -C "$P" check-config 2>&1); rc=$?
if [ "$rc" != 0 ] && [ "$rc" != 124 ] && ! printf '%s' "$err" | grep -q "$SECRET"; then
	ok "hutch.yaml as a symlink: refused, the target's content is not shown (exit $rc)"
else
	fail "hutch.yaml symlink (exit $rc)"; diag "$err"
fi
printf '%s' "$err" | grep -q 'symbolic link' && ok "the message says why" || { fail "message"; diag "$err"; }
rm "$P/hutch.yaml"
mkfifo "$P/hutch.yaml"
err=$(timeout 20 "$HUTCH" -C "$P" check-config 2>&1); rc=$?
if [ "$rc" != 0 ] && [ "$rc" != 124 ] && printf '%s' "$err" | grep -q 'regular file'; then
	ok "hutch.yaml as a FIFO: refused at once (exit $rc)"
else
	fail "hutch.yaml FIFO (exit $rc)"; diag "$err"
fi
rm "$P/hutch.yaml"
if [ "$(id -u)" = 0 ]; then
	printf 'name: c4\n' >"$P/hutch.yaml"
	chown nobody "$P/hutch.yaml"
	err=$("$HUTCH" -C "$P" check-config 2>&1); rc=$?
	if [ "$rc" = 77 ] && printf '%s' "$err" | grep -q 'owned by'; then
		ok "hutch.yaml owned by someone else: exit 77"
	else
		fail "hutch.yaml owned by nobody (exit $rc)"; diag "$err"
	fi
	rm "$P/hutch.yaml"
else
	skip "hutch.yaml owned by someone else" "needs root to chown"
fi

# --- image, kernel, initrd ------------------------------------------------
: >"$P/k"
refused() {	# refused WHAT YAML-BODY
	local err rc
	printf 'name: c4\nnetwork: {mode: none}\n%s\n' "$2" >"$P/hutch.yaml"
	err=$("$HUTCH" -C "$P" check-config 2>&1 >/dev/null); rc=$?
	if [ "$rc" = 77 ]; then
		ok "check-config refuses $1 (exit 77)"
	else
		fail "check-config refuses $1 (exit $rc)"; diag "$err"
	fi
	"$HUTCH" -C "$P" up </dev/null >"$T/up.out" 2>&1; rc=$?
	if [ "$rc" = 77 ] && [ ! -e "$XDG_DATA_HOME/hutch/vms/c4" ]; then
		ok "up refuses $1 before creating the VM"
	else
		fail "up refuses $1 (exit $rc)"; sed 's/^/# /' "$T/up.out"
		"$HUTCH" -C "$P" destroy >/dev/null 2>&1
	fi
}
cp "$T/secret" "$T/secret.img"
refused "image: at a host path" "image: $T/secret.img"
refused "image: at a host path, ~/" "image: ~/../secret.img"
ln -s "$T/secret" "$P/disk.img"
refused "image: a symlink in the project" "image: ./disk.img"
rm "$P/disk.img"
refused "kernel.initrd: a host file" "kernel: {path: ./k, initrd: $T/secret}"
refused "kernel.path: a host file" "kernel: {path: /etc/hostname}"
ln -s "$T/secret" "$P/initrd"
refused "kernel.initrd: a symlink in the project" "kernel: {path: ./k, initrd: ./initrd}"
rm "$P/initrd"
mkdir -p "$P/boot"
ln -s "$T" "$P/boot/up"
refused "a path through a symlinked folder" "kernel: {path: ./k, initrd: boot/up/secret}"

# --- cloud-init.yml -------------------------------------------------------
# kernel ./k is empty: if up went on, QEMU would fail, but the seed would be written first
printf 'name: c4\nkernel: {path: ./k}\nnetwork: {mode: none}\n' >"$P/hutch.yaml"
seed_leak() { grep -rqa "$SECRET" "$XDG_DATA_HOME/hutch/vms/c4" 2>/dev/null; }
ln -s /proc/self/environ "$P/cloud-init.yml"
HUTCH_LEAK=$SECRET "$HUTCH" -C "$P" up </dev/null >"$T/up.out" 2>&1; rc=$?
if [ "$rc" = 77 ] && ! seed_leak; then
	ok "cloud-init.yml -> /proc/self/environ: refused (exit 77), nothing of the environment in the seed"
else
	fail "cloud-init.yml symlink (exit $rc)"; sed 's/^/# /' "$T/up.out"
fi
"$HUTCH" -C "$P" destroy >/dev/null 2>&1
rm "$P/cloud-init.yml"
printf 'just some text %s\n' "$SECRET" >"$P/cloud-init.yml"
"$HUTCH" -C "$P" up </dev/null >"$T/up.out" 2>&1; rc=$?
if [ "$rc" != 0 ] && grep -q 'header' "$T/up.out" && ! seed_leak; then
	ok "user-data without a known header is refused (exit $rc)"
else
	fail "user-data without a header (exit $rc)"; sed 's/^/# /' "$T/up.out"
fi
"$HUTCH" -C "$P" destroy >/dev/null 2>&1
if [ "$(id -u)" = 0 ]; then
	printf '#cloud-config\n{}\n' >"$P/cloud-init.yml"
	chown nobody "$P/cloud-init.yml"
	"$HUTCH" -C "$P" up </dev/null >"$T/up.out" 2>&1; rc=$?
	if [ "$rc" = 77 ] && grep -q 'owned by' "$T/up.out"; then
		ok "cloud-init.yml owned by someone else: exit 77"
	else
		fail "cloud-init.yml owned by nobody (exit $rc)"; sed 's/^/# /' "$T/up.out"
	fi
	"$HUTCH" -C "$P" destroy >/dev/null 2>&1
fi

# --- a base image swapped for a symlink after the VM was made -------------
# QEMU opens the overlay's backing file by name at every boot; hutch.yaml may
# name another image by then, so the check must look at the disk itself
rm -f "$P/cloud-init.yml"
if command -v qemu-img >/dev/null; then
	qemu-img create -q -f qcow2 "$P/base.qcow2" 16M
	qemu-img create -q -f qcow2 "$P/other.qcow2" 16M
	printf 'name: c4
image: ./base.qcow2
kernel: {path: ./k}
network: {mode: none}
' >"$P/hutch.yaml"
	"$HUTCH" -C "$P" up </dev/null >"$T/up.out" 2>&1	# the empty kernel does not boot
	if [ -f "$XDG_DATA_HOME/hutch/vms/c4/disk.qcow2" ]; then
		mv "$P/base.qcow2" "$P/base.orig"
		ln -s "$T/secret.img" "$P/base.qcow2"
		printf 'name: c4
image: ./other.qcow2
kernel: {path: ./k}
network: {mode: none}
' >"$P/hutch.yaml"
		"$HUTCH" -C "$P" up </dev/null >"$T/up.out" 2>&1; rc=$?
		if [ "$rc" = 77 ] && grep -q 'base image' "$T/up.out"; then
			ok "a VM whose base image became a symlink does not boot (exit 77)"
		else
			fail "backing file swapped for a symlink (exit $rc)"; sed 's/^/# /' "$T/up.out"
		fi
	else
		fail "a VM with a local base image was made"; sed 's/^/# /' "$T/up.out"
	fi
	"$HUTCH" -C "$P" destroy >/dev/null 2>&1
fi
done_testing
