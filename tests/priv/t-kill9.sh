#!/usr/bin/env bash
# kill -9 while a user's VM runs through hutch-helper (issue 10): of the
# supervisor, of QEMU, of the helper; and of a process that holds a share
# mount.  hutch runs as an unprivileged user (tests/lib/priv.sh) in a network
# namespace of its own, with the tiny guest in mode nat.  After each kill the
# next `gc` (or the helper itself, when its caller died) leaves no tap, rule,
# bridge, mount or registry entry behind; while the helper is gone the VM
# keeps its rules (the guest never passes traffic without them), and the new
# helper the supervisor starts takes the VM over (it repairs a flush).  Also
# `hutch mount`/`unmount` of an isolated share as the user, through the helper.
set -u
source "$(dirname "$0")/../lib/tap.sh"
source "$HUTCH_SRC/tests/lib/guest.sh"
source "$HUTCH_SRC/tests/lib/priv.sh"
if [ "$(id -u)" -ne 0 ]; then skip "kill -9 through hutch-helper" "needs root"; done_testing; exit 0; fi
for t in ip nft qemu-system-x86_64 python3 setpriv useradd mkfs.ext4; do
	command -v $t >/dev/null || { skip "kill -9 through hutch-helper" "$t missing"; done_testing; exit 0; }
done
CLIENT=$HUTCH_SRC/build/tests/priv_client
[ -x "$HUTCH_SRC/hutch-helper" ] && [ -x "$CLIENT" ] ||
	{ skip "kill -9 through hutch-helper" "make hutch-helper unit first"; done_testing; exit 0; }
if ! guest_tiny_build; then fail "make tiny"; done_testing; exit 1; fi

T=$(mktemp -d /tmp/privk.XXXXXX)
NS=privk-$$ U=htk$$ HOLD_PID=
chmod 755 "$T"
unset HUTCH_DIR HUTCH_BRIDGE HUTCH_SUBNET HUTCH_RUN_DIR
cleanup() {
	local p
	exec 7>&- 2>/dev/null
	[ -n "$HOLD_PID" ] && kill -9 "$HOLD_PID" 2>/dev/null
	for p in $(jget "$VMD/state.json" supervisor_pid) $(jget "$VMD/state.json" qemu_pid); do
		grep -qs "$T" "/proc/$p/cmdline" && kill -9 "$p" 2>/dev/null
	done
	wait 2>/dev/null
	umount "$T/p/w" 2>/dev/null
	ip netns del "$NS" 2>/dev/null
	priv_fini
	rm -rf "$T"
}
trap cleanup EXIT
priv_start "$T/priv" "$U"
priv_argv "$U"
ASU=("${PRIV_ARGV[@]}")
VMD=$PRIV_DIR/home-$U/data/hutch/vms/kv
ip netns add "$NS" && ip -n "$NS" link set lo up || { fail "network namespace"; done_testing; exit 1; }
hh() { ip netns exec "$NS" "${ASU[@]}" "$@"; }
mkdir -p "$T/p"
cat >"$T/p/hutch.yaml" <<Y
name: kv
cpus: 1
memory: 256
accel: tcg
kernel: {path: $TINY_KERNEL, initrd: $TINY_INITRD, cmdline: "console=ttyS0 quiet hutch.net=dhcp"}
network: {mode: nat}
timeouts: {boot: 180, shutdown: 30}
Y
printf '#cloud-config\n' >"$T/p/cloud-init.yml"
chown -R "$U:" "$T/p"

links() { ip -n "$NS" -br link | awk '{print $1}' | grep -E '^(ht-|hutch)' | sed 's/@.*//' | tr '\n' ' '; }
entries() { python3 -c 'import json,sys; r=json.loads(sys.argv[1] or "{}"); print(len(r.get("vms",[]))+len(r.get("mounts",[])))' "$(priv_registry)"; }
helper_of() { pgrep -P "$1" -x hutch-helper | head -n1; }
gone() { for _ in $(seq 600); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done; return 1; }
nothing_left() {	# nothing_left WHEN
	is "$1: no ht-* link, no bridge" "$(links)" ""
	ip netns exec "$NS" nft list tables 2>/dev/null | grep -q hutch && fail "$1: no hutch table" || ok "$1: no hutch table"
	is "$1: no registry entry" "$(entries)" 0
}
up() {	# up WHEN: sets ID SP QP
	if hh timeout 300 "$HUTCH" -C "$T/p" up 2>"$T/up.err"; then ok "$1: hutch up as $U"; else
		fail "$1: hutch up as $U"; sed 's/^/#   /' "$T/up.err"; tail -20 "$VMD/supervisor.log" | sed 's/^/#   /'
		return 1
	fi
	ID=$(jget "$VMD/state.json" net id) SP=$(jget "$VMD/state.json" supervisor_pid) QP=$(jget "$VMD/state.json" qemu_pid)
	ip netns exec "$NS" nft list chain bridge hutch "vm-$ID" >/dev/null 2>&1 && [ "$(entries)" = 1 ] &&
		ok "$1: rules and a registry entry for $ID" || fail "$1: rules and a registry entry for $ID"
}

# 1. the supervisor: QEMU dies with it, the helper sees its caller go and cleans up
up "supervisor" || { done_testing; exit 1; }
HP=$(helper_of "$SP")
[ -n "$HP" ] && ok "the supervisor has its helper ($HP)" || fail "the supervisor has its helper"
kill -9 "$SP"
gone "$QP" && ok "QEMU died with its supervisor" || fail "QEMU died with its supervisor"
[ -z "$HP" ] || gone "$HP"
nothing_left "kill -9 of the supervisor, before gc"
check "hutch gc as $U" hh timeout 60 "$HUTCH" gc
nothing_left "kill -9 of the supervisor, after gc"

# 2. QEMU: the supervisor tears down
up "qemu" || { done_testing; exit 1; }
kill -9 "$QP"
gone "$SP" && ok "the supervisor ends after QEMU's death" || fail "the supervisor ends after QEMU's death"
nothing_left "kill -9 of QEMU"
check "hutch gc as $U" hh timeout 60 "$HUTCH" gc

# 3. the helper: the VM keeps its rules; a new helper takes it over; halt cleans up
up "helper" || { done_testing; exit 1; }
HP=$(helper_of "$SP")
kill -9 "$HP"
gone "$HP"
ip netns exec "$NS" nft list chain bridge hutch "vm-$ID" >/dev/null 2>&1 &&
	ok "kill -9 of the helper: the VM keeps its rules" || fail "kill -9 of the helper: the VM keeps its rules"
for _ in $(seq 300); do HP2=$(helper_of "$SP"); [ -n "$HP2" ] && break; sleep 0.1; done
[ -n "$HP2" ] && [ "$HP2" != "$HP" ] && ok "the supervisor started a new helper ($HP2)" || fail "the supervisor started a new helper"
ip netns exec "$NS" nft flush ruleset
for _ in $(seq 100); do ip netns exec "$NS" nft list chain bridge hutch "vm-$ID" >/dev/null 2>&1 && break; sleep 0.1; done
ip netns exec "$NS" nft list chain bridge hutch "vm-$ID" >/dev/null 2>&1 &&
	ok "the new helper restores the rules after a flush" || fail "the new helper restores the rules after a flush"
check "hutch halt as $U" hh timeout 120 "$HUTCH" -C "$T/p" halt
nothing_left "after halt"

# 4. up after a kill -9, without gc: up cleans up first
up "again" || { done_testing; exit 1; }
HP=$(helper_of "$SP")
kill -9 "$HP" "$SP"
gone "$QP"
up "up after kill -9 of supervisor and helper" || { done_testing; exit 1; }
check "hutch halt as $U" hh timeout 120 "$HUTCH" -C "$T/p" halt
nothing_left "after the second halt"

# 5. hutch mount / unmount of an isolated share, as the user
cat >>"$T/p/hutch.yaml" <<Y
shared_folders:
  - {host: w, guest: /w, isolation: true, size: 1}
Y
mounted() { awk -v d="$T/p/w" '$5 == d' /proc/self/mountinfo | grep -q .; }
if "${ASU[@]}" "$HUTCH" -C "$T/p" mount >"$T/mount.out" 2>&1; then
	mounted && ok "hutch mount as $U" || fail "hutch mount as $U: nothing mounted"
	check "hutch unmount as $U" "${ASU[@]}" "$HUTCH" -C "$T/p" unmount
	mounted && fail "hutch unmount as $U: unmounted" || ok "hutch unmount as $U: unmounted"
	is "after unmount: no registry entry" "$(entries)" 0
else
	fail "hutch mount as $U"; sed 's/^/#   /' "$T/mount.out"
fi
# 6. a share mount (of the image hutch made) owned by a process that is killed: the helper unmounts it
mkfifo "$T/hold"
"${ASU[@]}" "$CLIENT" "$HUTCH_HELPER" \
	"{\"op\":\"mount\",\"dir\":\"$T/p/w\",\"size\":1,\"keep\":false}" @hold <"$T/hold" >"$T/m.out" 2>&1 &
HOLD_PID=$!
exec 7>"$T/hold"
for _ in $(seq 300); do [ -s "$T/m.out" ] && break; sleep 0.1; done
mounted && grep -q '"ok":true' "$T/m.out" && ok "mounted through the helper" || { fail "mounted through the helper"; diag "$(cat "$T/m.out")"; }
MH=$(helper_of "$HOLD_PID")
kill -9 "$HOLD_PID"
exec 7>&-
wait "$HOLD_PID" 2>/dev/null; [ -n "$MH" ] && gone "$MH"
HOLD_PID=
mounted && fail "kill -9 of the mount's owner: unmounted" || ok "kill -9 of the mount's owner: unmounted"
is "kill -9 of the mount's owner: no registry entry" "$(entries)" 0

done_testing
