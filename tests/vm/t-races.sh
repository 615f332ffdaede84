#!/usr/bin/env bash
# Races between verbs on one VM (issue 14), made deterministic: strace holds
# the racing command at the entry of a chosen syscall (a delay injected
# there) at the worst moment, `up` runs to completion meanwhile, then strace
# is killed, which lets the command go on with that syscall.
#  - gc stopped at its flock(2): it must decide "stale" from state read
#    AFTER the lock, so a VM that `up` started meanwhile is left alone (it
#    used to write the old state back, unlink control.sock and call the VM
#    crashed);
#  - unmount stopped at its umount2(2): it holds the VM lock, so `up` is
#    refused (75) until it is done, and a running VM never loses its share's
#    mount (it used to take no lock).
# Each race is run ROUNDS times (default 20).
source "$(dirname "$0")/../lib/tap.sh"
cd "$HUTCH_SRC" || exit 1
source tests/lib/guest.sh
ROUNDS=${ROUNDS:-20}
command -v strace >/dev/null || { skip "races" "strace is not installed"; done_testing; exit 0; }
guest_tiny_build || { skip "races" "tiny guest does not build"; done_testing; exit 0; }

T=$(mktemp -d /tmp/hutch-races.XXXXXX)
export XDG_DATA_HOME=$T/data XDG_CACHE_HOME=$T/cache HOME=$T/home
unset HUTCH_DIR
mkdir -p "$T/p" "$T/s" "$HOME"
V=$XDG_DATA_HOME/hutch/vms/race-g
VS=$XDG_DATA_HOME/hutch/vms/race-s
WS=$T/s/workspace
H() { timeout 600 "$HUTCH" -C "$T/p" "$@"; }
HS() { timeout 600 "$HUTCH" -C "$T/s" "$@"; }
st() { jq -r "$2" "$1/state.json" 2>/dev/null; }
gone() { [ ! -e "/proc/$1" ] || grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
wait_for() { local n=$(($1 * 5)); shift; while ((n-- > 0)); do "$@" && return 0; sleep 0.2; done; return 1; }
# hold @3... (hutch) at the entry of syscall @1 (number @2) under strace;
# sets HELD (the strace pid) and HELD_CMD (hutch's), or returns 1
hold() {
	local name=$1 nr=$2
	shift 2
	strace -qq -o /dev/null -e trace="$name" -e inject="$name":delay_enter=3600000000 "$@" \
		>"$T/held.log" 2>&1 &
	HELD=$!
	HELD_NR=$nr
	wait_until 300 held
}
held() {	# the traced command sits at the entry of syscall HELD_NR
	HELD_CMD=$(pgrep -P "$HELD")
	[ -n "$HELD_CMD" ] && [ "$(cut -d' ' -f1 "/proc/$HELD_CMD/syscall" 2>/dev/null)" = "$HELD_NR" ]
}
# let it go: with its tracer gone, the command enters the syscall and goes on
release() {
	kill -KILL "$HELD" 2>/dev/null
	wait "$HELD" 2>/dev/null
	wait_for 120 gone "$HELD_CMD"
}
cleanup() {
	local p
	for p in $(st "$V" '.supervisor_pid // empty') $(st "$VS" '.supervisor_pid // empty'); do
		grep -qs "$T" "/proc/$p/cmdline" && kill -9 "$p" 2>/dev/null
	done
	[ -n "${HELD:-}" ] && kill -KILL "$HELD" 2>/dev/null
	sleep 0.5
	"$HUTCH" -C "$T/s" gc >/dev/null 2>&1
	while grep -q " $WS " /proc/self/mountinfo 2>/dev/null; do umount -l "$WS" || break; done
	rm -rf "$T"
}
trap cleanup EXIT

cat >"$T/p/hutch.yaml" <<EOF
name: race-g
cpus: 1
memory: 256
accel: tcg
kernel: {path: $TINY_KERNEL, initrd: $TINY_INITRD, cmdline: "console=ttyS0 quiet no_timer_check"}
network: {mode: none}
timeouts: {boot: 600, shutdown: 300}
EOF
printf '#cloud-config\n' >"$T/p/cloud-init.yml"

# ---- gc racing up
bad=0
for r in $(seq "$ROUNDS"); do
	# a VM whose supervisor died: stale, what gc is for
	H up >"$T/up.log" 2>&1 || { bad=$((bad + 1)); diag "round $r: up failed: $(tail -3 "$T/up.log")"; break; }
	sv=$(st "$V" .supervisor_pid)
	kill -9 "$sv"
	wait_for 120 gone "$sv"
	# gc held just before it takes the VM's lock (flock is syscall 73)
	hold flock 73 "$HUTCH" -C "$T/p" gc || { bad=$((bad + 1)); diag "round $r: gc was not held at flock"; release; continue; }
	H up >"$T/up.log" 2>&1 || { bad=$((bad + 1)); diag "round $r: up during gc: $(tail -3 "$T/up.log")"; }
	release
	cp "$T/held.log" "$T/gc.log"
	sv=$(st "$V" .supervisor_pid)
	if [ "$(H --json status | jq -r .status)" != running ] || [ ! -S "$V/control.sock" ] ||
		[ -z "$sv" ] || gone "$sv"; then
		bad=$((bad + 1))
		diag "round $r: after gc the VM is $(H --json status | jq -c .) control.sock: $(ls "$V" | tr '\n' ' ')"
		diag "gc said: $(tr '\n' ' ' <"$T/gc.log")"
	fi
done
is "gc racing up ($ROUNDS rounds): the VM that up started is never touched" "$bad" 0
H halt >/dev/null 2>&1
is "... and halts cleanly afterwards" "$(st "$V" .exit_reason)" guest-shutdown

# ---- unmount racing up (isolated share: root and loop devices)
if [ "$(id -u)" != 0 ] || [ ! -w /dev/loop-control ]; then
	skip "unmount racing up" "needs root and /dev/loop-control"
	done_testing
	exit
fi
cat >"$T/s/hutch.yaml" <<EOF
name: race-s
cpus: 1
memory: 256
accel: tcg
kernel: {path: $TINY_KERNEL, initrd: $TINY_INITRD, cmdline: "console=ttyS0 quiet no_timer_check"}
network: {mode: none}
cloud_init_wait: false
timeouts: {boot: 600, shutdown: 300}
shared_folders:
  - {host: workspace, guest: /workspace, size: 1}
EOF
printf '#cloud-config\n' >"$T/s/cloud-init.yml"
mounted() { grep -q " $WS " /proc/self/mountinfo; }
bad=0 refused=0
for r in $(seq "$ROUNDS"); do
	HS mount >"$T/m.log" 2>&1 || { bad=$((bad + 1)); diag "round $r: mount: $(tail -3 "$T/m.log")"; break; }
	# unmount held just before umount2 (syscall 166): it found the VM stopped
	hold umount2 166 "$HUTCH" -C "$T/s" unmount || { bad=$((bad + 1)); diag "round $r: unmount was not held"; release; continue; }
	HS up >"$T/up.log" 2>&1
	rc=$?
	[ "$rc" = 75 ] && refused=$((refused + 1))
	release
	if [ "$(HS --json status | jq -r .status)" = running ] && ! mounted; then
		bad=$((bad + 1))
		diag "round $r: up exited $rc and the running VM's share is no longer mounted"
	fi
	HS halt >/dev/null 2>&1
done
is "unmount racing up ($ROUNDS rounds): a running VM never loses its share's mount" "$bad" 0
is "... because up is refused (75) while unmount holds the VM lock" "$refused" "$ROUNDS"
HS up >"$T/up.log" 2>&1
is "up works once unmount is done" "$?" 0
check "the share is mounted while the VM runs" mounted
HS unmount >"$T/um.log" 2>&1
is "unmount while the VM runs is refused" "$?" 1
check "... and the share stays mounted" mounted
HS halt >/dev/null 2>&1
done_testing
