#!/usr/bin/env bash
# Nothing the guest can reach runs as root (issue 10 item 4), tiny guest, TCG,
# hutch run as root (as CI does): for network modes none, user and nat, each
# without and with an isolated share, QEMU, virtiofsd (both its processes) and
# the project's hooks show a non-zero Uid, CapEff 0, an empty bounding set and
# NoNewPrivs in /proc/<pid>/status; QEMU sees a read-only filesystem and holds
# no fd to the VM's state; `inspect` reports the same.  Then: the files a
# root-run `up` leaves (the VM dir stays root's and out of QEMU's user's
# reach; the share image is that user's), halt, a kill -9 of the supervisor
# (QEMU and virtiofsd die with it although they run as another uid), gc and
# destroy; and under sudo (SUDO_UID) everything runs as that user instead.
source "$(dirname "$0")/../lib/tap.sh"
cd "$HUTCH_SRC" || exit 1
[ "$(id -u)" -eq 0 ] || { skip "confinement" "needs root (hutch as root is what is tested)"; done_testing; exit 0; }
source tests/lib/guest.sh
guest_tiny_build || { skip "confinement" "tiny guest does not build"; done_testing; exit 0; }
command -v setpriv >/dev/null || { skip "confinement" "no setpriv"; done_testing; exit 0; }
GUESTSH_PY=$HUTCH_SRC/tests/lib/guestsh.py

NS=confine-$$
T=$(mktemp -d /tmp/hutch-confine.XXXXXX)
chmod 755 "$T"	# hooks run as the unprivileged user: it must reach the projects
export XDG_DATA_HOME=$T/data XDG_CACHE_HOME=$T/cache HOME=$T/home
unset HUTCH_DIR SUDO_UID SUDO_GID SUDO_USER
OUT=$T/out
mkdir -p "$HOME" "$OUT" && chmod 1777 "$OUT"
field() { awk -v k="$1:" '$1 == k {print $2; exit}' "$2"; }
gone() { [ ! -e "/proc/$1" ] || grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
wait_gone() { local n=300; while ((n-- > 0)); do gone "$1" && return 0; sleep 0.2; done; return 1; }
cleanup() {
	local v p
	for v in "$XDG_DATA_HOME"/hutch/vms/*/state.json; do
		for p in $(jq -r '.supervisor_pid // empty, .qemu_pid // empty' "$v" 2>/dev/null); do
			grep -qs "$T" "/proc/$p/cmdline" && kill -9 "$p" 2>/dev/null
		done
	done
	for v in "$T"/p-*; do ip netns exec "$NS" "$HUTCH" -C "$v" destroy >/dev/null 2>&1; done
	ip netns del "$NS" 2>/dev/null
	grep " $T/" /proc/self/mountinfo | awk '{print $5}' | xargs -r -n1 umount -l 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
ip netns add "$NS" && ip -n "$NS" link set lo up || { fail "network namespace"; done_testing; exit 1; }

# confined PID ROLE: the process's own status says it is not root and holds nothing
confined() {
	local pid=$1 role=$2 st=/proc/$1/status uid eff bnd nnp
	uid=$(field Uid "$st") eff=$(field CapEff "$st") bnd=$(field CapBnd "$st") nnp=$(field NoNewPrivs "$st")
	if [ -n "$uid" ] && [ "$uid" != 0 ] && [ "$eff" = 0000000000000000 ] &&
		[ "$bnd" = 0000000000000000 ] && [ "$nnp" = 1 ]; then
		ok "$role: Uid $uid, CapEff 0, CapBnd 0, NoNewPrivs"
	else
		fail "$role (pid $pid): Uid '$uid' CapEff '$eff' CapBnd '$bnd' NoNewPrivs '$nnp'"
	fi
	LAST_UID=$uid
}

# project NAME MODE SHARE(0/1) [IMAGE]
project() {
	local p=$T/p-$1 cmd="console=ttyS0 quiet" h
	mkdir -p "$p/hooks"
	[ "$2" = nat ] && cmd="$cmd hutch.net=dhcp"
	[ "$3" = 1 ] && cmd="$cmd hutch.share=workspace:/mnt/ws"
	{
		echo "name: $1"
		echo "cpus: 1"
		echo "memory: 256"
		echo "accel: tcg"
		[ -n "${4:-}" ] && echo "image: $4"
		echo "kernel: {path: $TINY_KERNEL, initrd: $TINY_INITRD, cmdline: \"$cmd\"}"
		echo "network: {mode: $2}"
		echo "cloud_init_wait: false"
		echo "timeouts: {boot: 300, shutdown: 60}"
		[ "$3" = 1 ] && printf 'shared_folders:\n  - {host: workspace, guest: /workspace, size: 1}\n'
	} >"$p/hutch.yaml"
	printf '#cloud-config\n' >"$p/cloud-init.yml"
	for h in pre-up post-up; do
		printf '#!/bin/sh\ncat /proc/self/status >"%s/%s-%s"\n' "$OUT" "$1" "$h" >"$p/hooks/$h"
		chmod 755 "$p/hooks/$h"
	done
}

# one VM: up, every process confined, the guest uses its share, inspect, halt
run_case() {
	local name=$1 mode=$2 share=$3 p=$T/p-$1 v=$XDG_DATA_HOME/hutch/vms/$1 q vp kid f bad out
	local H=(ip netns exec "$NS" "$HUTCH" -C "$p")
	if ! "${H[@]}" up --yes >"$T/$name.up" 2>&1; then
		fail "$name: up"; tail -20 "$T/$name.up" | sed 's/^/#   /'; return
	fi
	ok "$name: up (mode $mode, share $share)"
	q=$(jq -r .qemu_pid "$v/state.json")
	confined "$q" "$name: QEMU"
	[ "$(awk '$5 == "/" {print $6; exit}' "/proc/$q/mountinfo" | cut -d, -f1)" = ro ] &&
		ok "$name: QEMU sees / read-only in a mount namespace of its own" ||
		fail "$name: QEMU's / is not read-only"
	grep -q '^Max open files *4096 *4096' "/proc/$q/limits" && grep -q '^Max core file size *0 *0' "/proc/$q/limits" &&
		ok "$name: QEMU's RLIMIT_NOFILE 4096 and RLIMIT_CORE 0" || fail "$name: QEMU's rlimits: $(grep -E 'open files|core' "/proc/$q/limits")"
	bad=
	for f in /proc/"$q"/fd/*; do
		case $(readlink "$f") in
		"$v"/supervisor.log | "$v"/seed.iso | "$v"/disk.qcow2 | "$TINY_KERNEL" | "$TINY_INITRD" | \
			"$T"/p-*/base.qcow2 | /dev/* | socket:* | anon_inode:* | pipe:* | /memfd:*) ;;
		*) bad="$bad $(readlink "$f")" ;;
		esac
	done
	[ -z "$bad" ] && ok "$name: QEMU holds only the fds it needs" || fail "$name: QEMU holds$bad"
	for f in pre-up post-up; do
		if [ -f "$OUT/$name-$f" ]; then
			uid=$(field Uid "$OUT/$name-$f") eff=$(field CapEff "$OUT/$name-$f") nnp=$(field NoNewPrivs "$OUT/$name-$f")
			[ "$uid" != 0 ] && [ "$eff" = 0000000000000000 ] && [ "$nnp" = 1 ] &&
				ok "$name: hook $f ran as uid $uid, CapEff 0, NoNewPrivs" ||
				fail "$name: hook $f: Uid $uid CapEff $eff NoNewPrivs $nnp"
		else
			fail "$name: hook $f left no status"
		fi
	done
	out=$("$HUTCH" -C "$p" --json inspect 2>/dev/null)
	jq -e '.processes | map(select(.role == "qemu" and .uid != 0 and .cap_eff == "0000000000000000")) | length == 1' \
		<<<"$out" >/dev/null && ok "$name: inspect --json shows QEMU's uid and CapEff 0" ||
		fail "$name: inspect: $(jq -c .processes <<<"$out")"
	if [ "$share" = 1 ]; then
		vp=$(jq -r '.shares[0].virtiofsd_pid' "$v/state.json")
		confined "$vp" "$name: virtiofsd"
		kid=$(cat "/proc/$vp/task/$vp/children" 2>/dev/null | awk '{print $1}')
		[ -n "$kid" ] && confined "$kid" "$name: virtiofsd's sandboxed server" || fail "$name: no virtiofsd child"
		jq -e '.processes | map(select((.role | startswith("virtiofsd")) and .cap_eff == "0000000000000000")) | length == 2' \
			<<<"$out" >/dev/null && ok "$name: inspect shows both virtiofsd processes with CapEff 0" ||
			fail "$name: inspect virtiofsd: $(jq -c .processes <<<"$out")"
		python3 "$GUESTSH_PY" --timeout 300 "$v/console.sock" "echo from-guest >/mnt/ws/g.txt && mkdir /mnt/ws/d && sync" >"$T/$name.gsh" 2>&1
		# `ip netns exec` gave hutch a mount namespace of its own: look through the supervisor's
		w=/proc/$(jq -r .supervisor_pid "$v/state.json")/root$p/workspace
		[ "$(cat "$w/g.txt" 2>/dev/null)" = from-guest ] && [ -d "$w/d" ] &&
			ok "$name: the guest writes through its share" ||
			{ fail "$name: the guest's write did not arrive"; sed 's/^/#   /' "$T/$name.gsh" | tail -5; }
		is "$name: the guest's file belongs to the unprivileged user" "$(stat -c %u "$w/g.txt" 2>/dev/null)" "$LAST_UID"
	fi
	if "${H[@]}" halt >"$T/$name.halt" 2>&1; then ok "$name: halt"; else fail "$name: halt"; tail -5 "$T/$name.halt" | sed 's/^/#   /'; fi
	wait_gone "$q" && ok "$name: QEMU gone" || fail "$name: QEMU $q still runs"
}

qemu-img create -q -f qcow2 "$T/base.qcow2" 64M
for mode in ${CONFINE_MODES:-none user nat}; do
	for share in 0 1; do
		name=cf-$mode-$share
		project "$name" "$mode" "$share"
		# one case boots with a disk: an overlay whose backing file QEMU gets by fd
		[ "$mode$share" = none0 ] && cp "$T/base.qcow2" "$T/p-$name/base.qcow2" &&
			project "$name" "$mode" "$share" ./base.qcow2
		run_case "$name" "$mode" "$share"
	done
done

# --- what a root-run up leaves, and halt/gc/destroy with it
name=cf-none-1 p=$T/p-cf-none-1 v=$XDG_DATA_HOME/hutch/vms/cf-none-1
vmuser=$(id -un "$LAST_UID" 2>/dev/null)
is "the VM dir stays root's, 0700" "$(stat -c '%u %a' "$v")" "0 700"
is "state.json is root's" "$(stat -c %u "$v/state.json")" 0
is "the share image belongs to the unprivileged user" "$(stat -c %u "$p/workspace.img")" "$LAST_UID"
check_fails "QEMU's user cannot read state.json" setpriv --reuid="$LAST_UID" --regid="$LAST_UID" --clear-groups cat "$v/state.json"
v0=$XDG_DATA_HOME/hutch/vms/cf-none-0
is "disk.qcow2 is root's (QEMU gets it by fd)" "$(stat -c %u "$v0/disk.qcow2" 2>/dev/null)" 0
check_fails "QEMU's user cannot open disk.qcow2 by path" setpriv --reuid="$LAST_UID" --regid="$LAST_UID" --clear-groups head -c1 "$v0/disk.qcow2"
H=(ip netns exec "$NS" "$HUTCH" -C "$p")
if "${H[@]}" up --yes >/dev/null 2>&1; then
	q=$(jq -r .qemu_pid "$v/state.json") vp=$(jq -r '.shares[0].virtiofsd_pid' "$v/state.json")
	kill -9 "$(cat "$v/supervisor.pid")"
	wait_gone "$q" && ok "kill -9 of the supervisor: QEMU (uid $vmuser) dies with it" || fail "QEMU $q survived its supervisor"
	wait_gone "$vp" && ok "and so does virtiofsd" || fail "virtiofsd $vp survived its supervisor"
	check "gc" "${H[@]}" gc
	else
	fail "up again"
fi
check "destroy" "${H[@]}" destroy
check_fails "destroy removed the VM dir" test -e "$v"

# --- under sudo: SUDO_UID, not the dedicated user
su_uid=65534 su_gid=$(id -g nobody 2>/dev/null || echo 65534)
project cf-sudo none 1
if SUDO_UID=$su_uid SUDO_GID=$su_gid ip netns exec "$NS" "$HUTCH" -C "$T/p-cf-sudo" up --yes >"$T/sudo.up" 2>&1; then
	v=$XDG_DATA_HOME/hutch/vms/cf-sudo
	q=$(jq -r .qemu_pid "$v/state.json") vp=$(jq -r '.shares[0].virtiofsd_pid' "$v/state.json")
	is "sudo: QEMU runs as SUDO_UID" "$(field Uid "/proc/$q/status")" "$su_uid"
	is "sudo: virtiofsd runs as SUDO_UID" "$(field Uid "/proc/$vp/status")" "$su_uid"
	is "sudo: the pre-up hook ran as SUDO_UID" "$(field Uid "$OUT/cf-sudo-pre-up")" "$su_uid"
	is "sudo: the share image is SUDO_UID's" "$(stat -c %u "$T/p-cf-sudo/workspace.img")" "$su_uid"
	check "sudo: destroy" env SUDO_UID=$su_uid SUDO_GID=$su_gid ip netns exec "$NS" "$HUTCH" -C "$T/p-cf-sudo" destroy
else
	fail "sudo: up"; tail -10 "$T/sudo.up" | sed 's/^/#   /'
fi
done_testing
