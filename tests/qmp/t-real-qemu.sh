#!/usr/bin/env bash
# The QMP client against a real qemu-system-x86_64: greeting, capabilities,
# query-status/query-version, errors, stop/cont with STOP/RESUME,
# system_powerdown with POWERDOWN, quit with SHUTDOWN and QEMU's exit, a
# socket created after the client started, and QEMU killed under it.
# Driven through build/tests/qmp_client (tests/helpers/qmp_client.c).
source "$(dirname "$0")/../lib/tap.sh"

CLIENT=$HUTCH_SRC/build/tests/qmp_client
QEMU=$(command -v qemu-system-x86_64 || true)
T=$(mktemp -d /tmp/hutch-t-qmp.XXXXXX)
PIDS=()
export XDG_DATA_HOME=$T/data XDG_CACHE_HOME=$T/cache HOME=$T/home

cleanup() {
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT

if [ -z "$QEMU" ] || [ ! -x "$CLIENT" ]; then
	skip "real QEMU tests" "qemu-system-x86_64 or $CLIENT missing (make unit)"
	done_testing
	exit
fi

# start_qemu NAME ARGS...: QEMU with its QMP socket at $T/NAME.sock; sets QPID
start_qemu() {
	local name=$1; shift
	"$QEMU" -nodefaults -display none -no-user-config \
		-qmp "unix:$T/$name.sock,server=on,wait=off" "$@" \
		>"$T/$name.qemu.log" 2>&1 &
	QPID=$!
	PIDS+=("$QPID")
}

# qemu_exit PID: waits (for at most 120 s) for QEMU to exit and sets QRC to
# its exit code, or to "running".  Not in a $(...): that subshell is not
# QEMU's parent, and its `wait` returns -1 when QEMU had not been reaped by
# this shell before the subshell started (seen on a loaded CI host).
qemu_exit() {
	if wait_until 120 gone "$1"; then wait "$1"; QRC=$?; else QRC=running; fi
}

has() { grep -qxF -- "$2" "$1"; }

# --- 1: -machine none ---------------------------------------------------
start_qemu none -machine none
"$CLIENT" "$T/none.sock" version status cmd:query-version cmd:no-such-command \
	stop wait:STOP status cont wait:RESUME status quit wait:SHUTDOWN eof >"$T/none.out" 2>"$T/none.err"
out=$T/none.out
has "$out" "connect: ok" && ok "connect, greeting and qmp_capabilities with QEMU" || fail "connect with QEMU"
want=$("$QEMU" --version | sed -n 's/^QEMU emulator version \([0-9]*\.[0-9]*\.[0-9]*\).*/\1/p')
is "QEMU version from the greeting matches qemu --version" "$(sed -n 's/^version: //p' "$out")" "$want"
is "query-status of a running machine" "$(sed -n 1p <(sed -n 's/^status: //p' "$out"))" "running running"
has "$out" "cmd query-version: ok" && ok "query-version returns" || fail "query-version"
has "$out" "cmd no-such-command: -5 CommandNotFound" && ok "unknown command: -EIO with class CommandNotFound" \
	|| fail "unknown command error class"
has "$out" "stop: ok" && has "$out" "wait STOP: ok" && ok "stop, then a STOP event" || fail "stop/STOP"
is "query-status after stop" "$(sed -n 2p <(sed -n 's/^status: //p' "$out"))" "paused paused"
has "$out" "cont: ok" && has "$out" "wait RESUME: ok" && ok "cont, then a RESUME event" || fail "cont/RESUME"
is "query-status after cont" "$(sed -n 3p <(sed -n 's/^status: //p' "$out"))" "running running"
has "$out" "quit: ok" && has "$out" "wait SHUTDOWN: ok" && ok "quit, then a SHUTDOWN event" || fail "quit/SHUTDOWN"
has "$out" "event: SHUTDOWN SHUTDOWN reason=host-qmp-quit" && ok "SHUTDOWN carries its data (reason host-qmp-quit)" \
	|| fail "SHUTDOWN data"
has "$out" "eof: ok" && ok "QEMU closes the socket after quit" || fail "EOF after quit"
qemu_exit "$QPID"
is "QEMU exits 0 after quit" "$QRC" 0
grep -q . "$T/none.err" && { diag "client stderr:"; sed 's/^/#   /' "$T/none.err"; }

# --- 2: a small q35 machine under TCG, paused with -S -----------------
start_qemu q35 -machine q35 -accel tcg -m 128 -smp 1 -S
"$CLIENT" "$T/q35.sock" status cont wait:RESUME status powerdown wait:POWERDOWN \
	quit wait:SHUTDOWN eof >"$T/q35.out" 2>"$T/q35.err"
out=$T/q35.out
is "query-status of a machine started with -S" "$(sed -n 1p <(sed -n 's/^status: //p' "$out"))" "prelaunch prelaunch"
has "$out" "wait RESUME: ok" && ok "cont starts it (RESUME)" || fail "cont with -S"
is "running after cont" "$(sed -n 2p <(sed -n 's/^status: //p' "$out"))" "running running"
has "$out" "powerdown: ok" && has "$out" "wait POWERDOWN: ok" && ok "system_powerdown, then a POWERDOWN event" \
	|| fail "system_powerdown/POWERDOWN"
has "$out" "wait SHUTDOWN: ok" && has "$out" "eof: ok" && ok "quit: SHUTDOWN event and EOF" || fail "quit q35"
qemu_exit "$QPID"
is "q35 QEMU exits 0 after quit" "$QRC" 0

# --- 3: the client starts before QEMU has created the socket -----------
"$CLIENT" "$T/late.sock" status quit eof >"$T/late.out" 2>"$T/late.err" &
CPID=$!
PIDS+=("$CPID")
sleep 0.5	# (not a synchronisation: the client is meant to start first, and
		# keeps trying however late QEMU comes)
start_qemu late -machine none
wait "$CPID"
rc=$?
out=$T/late.out
is "qmp_connect waits for QEMU to create the socket" "$(head -1 "$out")" "connect: ok"
is "and then works (status, quit, EOF)" "$rc" 0
qemu_exit "$QPID"
is "late QEMU exits 0" "$QRC" 0

# --- 4: QEMU killed under the client ----------------------------------
start_qemu killed -machine none
"$CLIENT" "$T/killed.sock" status eof >"$T/killed.out" 2>&1 &
CPID=$!
PIDS+=("$CPID")
wait_until 120 grep -q '^status:' "$T/killed.out" 2>/dev/null
{ kill -9 "$QPID"; wait "$QPID"; } 2>/dev/null
wait "$CPID"
rc=$?
has "$T/killed.out" "eof: ok" && ok "QEMU killed -9: the client sees EOF, does not hang" || fail "EOF on kill -9"
is "client exits cleanly after QEMU died" "$rc" 0

# no QEMU left behind
left=0
for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && left=$((left + 1)); done
is "no QEMU or client process left running" "$left" 0

done_testing
