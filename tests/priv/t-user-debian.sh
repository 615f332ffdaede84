#!/usr/bin/env bash
# Issue 10's "done when", with the Debian 12 guest: an unprivileged user (in
# the group of a test copy of hutch-helper, tests/lib/priv.sh) runs
# `hutch up` in mode nat, `hutch ssh -- id` and `hutch halt`, without sudo,
# in a network namespace of ours.  QEMU runs as that user with no
# capabilities; afterwards no tap, bridge, table or registry entry is left.
# README's example exactly: with an isolated shared folder, which the guest
# writes and the host reads, served by a virtiofsd of that user (who has a
# supplementary group: the helper's).
#   E2E_IMAGE=path   use this qcow2 instead of `make debian-image`
set -u
source "$(dirname "$0")/../lib/tap.sh"
source "$HUTCH_SRC/tests/lib/guest.sh"
source "$HUTCH_SRC/tests/lib/priv.sh"
if [ "$(id -u)" -ne 0 ]; then skip "debian as a user" "needs root"; done_testing; exit 0; fi
for t in ip nft qemu-system-x86_64 setpriv useradd python3 ssh; do
	command -v $t >/dev/null || { skip "debian as a user" "$t missing"; done_testing; exit 0; }
done
[ -x "$HUTCH_SRC/hutch-helper" ] || { skip "debian as a user" "make hutch-helper first"; done_testing; exit 0; }
IMG=${E2E_IMAGE:-}
if [ -z "$IMG" ]; then
	guest_debian_build || { fail "make debian-image"; done_testing; exit 1; }
	IMG=$DEBIAN_IMAGE
fi

T=$(mktemp -d /tmp/privd.XXXXXX)
NS=privd-$$ U=htd$$
chmod 755 "$T"
unset HUTCH_DIR HUTCH_BRIDGE HUTCH_SUBNET HUTCH_RUN_DIR
cleanup() {
	ip netns exec "$NS" "${PRIV_ARGV[@]}" "$HUTCH" -C "$T/p" destroy >/dev/null 2>&1
	ip netns del "$NS" 2>/dev/null
	priv_fini
	rm -rf "$T"
}
trap cleanup EXIT
priv_start "$T/priv" "$U"
priv_argv "$U"
ip netns add "$NS" && ip -n "$NS" link set lo up || { fail "network namespace"; done_testing; exit 1; }
hh() { ip netns exec "$NS" "${PRIV_ARGV[@]}" "$@"; }
mkdir -p "$T/p" && cp "$IMG" "$T/p/debian.qcow2"
cat >"$T/p/hutch.yaml" <<Y
name: userdeb
image: ./debian.qcow2
cpus: 2
memory: 1024
accel: ${E2E_ACCEL:-tcg}
network: {mode: nat}
shared_folders:
  - {host: work, guest: /work, isolation: true, size: 1}
timeouts: {boot: 900, ssh: 900, cloud_init: 1200, shutdown: 120}
Y
cat >"$T/p/cloud-init.yml" <<Y
#cloud-config
users:
  - name: dev
    shell: /bin/bash
    sudo: ALL=(ALL) NOPASSWD:ALL
    ssh_authorized_keys: [__HUTCH_PUBKEY__]
Y
chown -R "$U:" "$T/p"
VMD=$PRIV_DIR/home-$U/data/hutch/vms/userdeb

if hh timeout 2400 "$HUTCH" -C "$T/p" up 2>"$T/up.err"; then ok "hutch up as $U (mode nat, Debian 12)"; else
	fail "hutch up as $U (mode nat, Debian 12)"; tail -20 "$T/up.err" | sed 's/^/#   /'
	tail -20 "$VMD/supervisor.log" 2>/dev/null | sed 's/^/#   /'; done_testing; exit 1
fi
qp=$(jget "$VMD/state.json" qemu_pid)
is "QEMU runs as $U with CapEff 0" "$(awk '/^Uid:/ {print $2} /^CapEff:/ {print $2}' "/proc/$qp/status" | tr '\n' ' ')" \
	"$(id -u "$U") 0000000000000000 "
out=$(hh timeout 300 "$HUTCH" -C "$T/p" ssh -- id 2>&1)
grep -q '^uid=[0-9]*(dev)' <<<"$out" && ok "hutch ssh -- id as $U: $out" || { fail "hutch ssh -- id as $U"; diag "$out"; }
vp=$(jq -r '.shares[0].virtiofsd_pid // empty' "$VMD/state.json" 2>/dev/null)
is "virtiofsd runs as $U with CapEff 0" "$(awk '/^Uid:/ {print $2} /^CapEff:/ {print $2}' "/proc/${vp:-0}/status" 2>/dev/null | tr '\n' ' ')" \
	"$(id -u "$U") 0000000000000000 "
out=$(hh timeout 300 "$HUTCH" -C "$T/p" ssh -- "sudo sh -c 'echo from-guest >/work/x' && findmnt -no FSTYPE /work" 2>&1)
# read it where the mount is: ip netns exec gave `up` (and so the supervisor)
# a mount namespace of its own, seen through /proc/PID/root
sp=$(jget "$VMD/state.json" supervisor_pid)
[ "$(cat "/proc/${sp:-0}/root$T/p/work/x" 2>/dev/null)" = from-guest ] && ok "the guest wrote into the isolated share, the host reads it ($out)" ||
	{ fail "the guest wrote into the isolated share"; diag "$out"; }
check "hutch halt as $U" hh timeout 300 "$HUTCH" -C "$T/p" halt
is "no ht-* link, no bridge" "$(ip -n "$NS" -br link | awk '{print $1}' | grep -E '^(ht-|hutch)' | tr '\n' ' ')" ""
ip netns exec "$NS" nft list tables 2>/dev/null | grep -q hutch && fail "no hutch table" || ok "no hutch table"
is "no registry entry" "$(priv_registry)" '{"vms":[],"mounts":[],"tunnels":[]}'
done_testing
