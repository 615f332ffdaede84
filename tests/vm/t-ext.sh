#!/usr/bin/env bash
# The core's side of src/ext.h, with a fake extension (tests/helpers/fake_ext.c)
# and the tiny guest: hook order, QEMU args and fds from .prepare, watched fds,
# state saved by extensions, teardown, gc after a kill -9, inspect, user-data,
# before_down failing aborts halt but never destroy.
source "$(dirname "$0")/../lib/tap.sh"
cd "$HUTCH_SRC" || exit 1
FAKE=$HUTCH_SRC/build/tests/fake_ext
[ -x "$FAKE" ] || { fail "build/tests/fake_ext is built (make unit)"; done_testing; exit 1; }
source tests/lib/guest.sh
guest_tiny_build || { skip "extensions" "tiny guest does not build"; done_testing; exit 0; }

T=$(mktemp -d /tmp/hutch-core-ext.XXXXXX)
export XDG_DATA_HOME=$T/data XDG_CACHE_HOME=$T/cache FAKE_LOG=$T/cli.log HOME=$T/home
unset HUTCH_DIR FAKE_FAIL_DOWN
V=$XDG_DATA_HOME/hutch/vms/core-e
F() { "$FAKE" -C "$T/p" "$@"; }
js() { jq -r "$1" "$V/state.json" 2>/dev/null; }
gone() { [ ! -e "/proc/$1" ] || grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
wait_for() { local n=$(($1 * 5)); shift; while ((n-- > 0)); do "$@" && return 0; sleep 0.2; done; return 1; }
cleanup() {
	local p
	for p in $(jq -r '.supervisor_pid // empty, .qemu_pid // empty' "$V/state.json" 2>/dev/null); do
		grep -qs "$T" "/proc/$p/cmdline" && kill -9 "$p" 2>/dev/null
	done
	rm -rf "$T"
}
trap cleanup EXIT
mkdir -p "$T/p" "$HOME"
cat >"$T/p/hutch.yaml" <<EOF
name: core-e
cpus: 1
memory: 256
accel: tcg
kernel: {path: $TINY_KERNEL, initrd: $TINY_INITRD, cmdline: "console=ttyS0 quiet no_timer_check"}
network: {mode: none}
timeouts: {boot: 600, shutdown: 300}
EOF
# no SSH key for the guest: up does not wait for SSH (the tiny guest has no sshd)
printf '#cloud-config\n# from-cloud-init-yml\n' >"$T/p/cloud-init.yml"

if ! F up 2>"$T/err"; then
	fail "up with the fake extension"
	sed 's/^/#   /' "$T/err"
	cat "$V/supervisor.log" 2>/dev/null | sed 's/^/#   /'
	done_testing
	exit 1
fi
ok "up with the fake extension"
is "CLI hooks in order" "$(tr '\n' ' ' <"$FAKE_LOG")" "before_up created wait alive after_up "
wait_for 120 grep -q watched "$V/fake.log"
is "supervisor hooks in order, watched fd polled" "$(tr '\n' ' ' <"$V/fake.log")" "prepare started watched "
[ "$(js .fake.started)" = true ] && [ "$(js .fake.watched)" = true ] &&
	ok "extension state saved with sv_state_save" || { fail "extension state"; jq . "$V/state.json" | sed 's/^/#   /'; }
[ "$(js .fake.late_arg_refused)" = true ] && ok "sv_qemu_arg refused after prepare" || fail "late sv_qemu_arg"
jq -e '.qemu_argv | index("-add-fd") and index("fd=5,set=7,opaque=fake")' "$V/state.json" >/dev/null &&
	ok "QEMU got the extension's argument and fd" || fail "extension argument and fd"
qemu=$(js .qemu_pid)
# QEMU's -add-fd dups fd 5 elsewhere: look for the supervisor's pipe among QEMU's fds
pipes() { ls -l "/proc/$1/fd" 2>/dev/null | grep -o 'pipe:\[[0-9]*\]' | sort -u; }
[ -n "$(comm -12 <(pipes "$(js .supervisor_pid)") <(pipes "$qemu"))" ] &&
	ok "the extension's fd reached QEMU" || fail "the extension's fd reached QEMU"
# the first extension with .user_data wins: ssh's (from cloud-init.yml) when linked, else ours
grep -aq -e 'fake-user-data' -e 'from-cloud-init-yml' "$V/seed.iso" &&
	ok "user-data from the first extension that has it is in the seed" ||
	fail "user-data from an extension is in the seed"
F inspect | grep -q '^fake: inspected' && ok "inspect runs the extension (text)" || fail "inspect (text)"
[ "$(F --json inspect | jq -r .fake.inspected)" = true ] && ok "inspect runs the extension (json)" ||
	fail "inspect (json)"

: >"$FAKE_LOG"
FAKE_FAIL_DOWN=1 F halt 2>/dev/null
is "before_down failing aborts halt (exit 1)" "$?" 1
is "VM still running after the aborted halt" "$(F --json status | jq -r .status)" running
: >"$FAKE_LOG"
check "halt" F halt
is "halt hooks" "$(tr '\n' ' ' <"$FAKE_LOG")" "before_down halt after_down halt "
is "teardown ran last in the supervisor" "$(tail -1 "$V/fake.log")" teardown

check "up again" F up
sv=$(js .supervisor_pid)
qemu=$(js .qemu_pid)
kill -9 "$sv"
wait_for 120 gone "$qemu" && ok "QEMU died with its supervisor" || fail "QEMU died with its supervisor"
check "gc" F gc
is "gc ran the extension's .gc with the state" "$(tail -1 "$V/fake.log")" "gc with state"

: >"$FAKE_LOG"
check "up after gc" F up
FAKE_FAIL_DOWN=1 F destroy 2>/dev/null
is "before_down failing does not stop destroy" "$?" 0
[ ! -e "$V" ] && ok "VM directory removed" || fail "VM directory removed"
grep -q 'after_down destroy' "$FAKE_LOG" && ok "after_down destroy ran" || fail "after_down destroy"
leftover=$(pgrep -f "$T" | tr '\n' ' ')
[ -z "$leftover" ] && ok "no process left behind" || { fail "no process left behind"; diag "$leftover"; }
done_testing
