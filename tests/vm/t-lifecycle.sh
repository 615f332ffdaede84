#!/usr/bin/env bash
# VM lifecycle with the tiny guest under TCG: up, status, list, console, logs,
# inspect, idempotent up, suspend/resume, busy lock, ACPI halt, crash of QEMU,
# crash of the supervisor (QEMU must die with it) and gc, destroy, user-mode
# networking, config errors.
source "$(dirname "$0")/../lib/tap.sh"
cd "$HUTCH_SRC" || exit 1

if [ -f tests/lib/guest.sh ]; then
	source tests/lib/guest.sh
	guest_tiny_build || { skip "lifecycle" "tiny guest does not build"; done_testing; exit 0; }
fi
if [ -z "${TINY_KERNEL:-}" ] || [ ! -f "$TINY_KERNEL" ]; then
	skip "lifecycle" "no tiny guest (make tiny, or TINY_KERNEL/TINY_INITRD)"
	done_testing
	exit 0
fi
GUESTSH_PY=${GUESTSH_PY:-$HUTCH_SRC/tests/lib/guestsh.py}

T=$(mktemp -d /tmp/hutch-core-vm.XXXXXX)
export XDG_DATA_HOME=$T/data XDG_CACHE_HOME=$T/cache HOME=$T/home
unset HUTCH_DIR HUTCH_TEST_KVM
mkdir -p "$T/p" "$T/u" "$T/bad" "$XDG_CACHE_HOME/hutch/images" "$HOME"
echo keep >"$XDG_CACHE_HOME/hutch/images/base.img"
V=$XDG_DATA_HOME/hutch/vms/core-t
H() { "$HUTCH" -C "$T/p" "$@"; }
js() { jq -r "$1" "$V/state.json" 2>/dev/null; }
# wait_for SECONDS cmd...: poll until the command succeeds
wait_for() { local n=$(($1 * 5)); shift; while ((n-- > 0)); do "$@" && return 0; sleep 0.2; done; return 1; }
gone() { [ ! -e "/proc/$1" ] || grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
status_is() { [ "$(H --json status | jq -r .status)" = "$1" ]; }
gsh() { python3 "$GUESTSH_PY" "$V/console.sock" "$@"; }	# guestsh's ceiling: 600 s

cleanup() {
	local p
	for p in $(jq -r '.supervisor_pid // empty, .qemu_pid // empty' "$V/state.json" \
		"$XDG_DATA_HOME/hutch/vms/core-u/state.json" 2>/dev/null); do
		grep -qs "$T" "/proc/$p/cmdline" && kill -9 "$p" 2>/dev/null
	done
	rm -rf "$T"
}
trap cleanup EXIT

cat >"$T/p/hutch.yaml" <<EOF
name: core-t
cpus: 1
memory: 256
accel: auto
kernel: {path: $TINY_KERNEL, initrd: $TINY_INITRD, cmdline: "console=ttyS0 quiet no_timer_check"}
network: {mode: none}
timeouts: {boot: 600, shutdown: 300}
EOF
# no SSH key for the guest: up does not wait for SSH (the tiny guest has no sshd)
printf '#cloud-config\n' >"$T/p/cloud-init.yml"

# --- configuration errors
printf 'name: core-t\nbogus_key: 1\n' >"$T/bad/hutch.yaml"
"$HUTCH" -C "$T/bad" up >/dev/null 2>"$T/err"
is "bad config: up exits 2" "$?" 2
grep -q 'hutch.yaml:2' "$T/err" && ok "bad config: message names file:line" ||
	{ fail "bad config: message names file:line"; diag "$(cat "$T/err")"; }
[ ! -e "$XDG_DATA_HOME/hutch/vms/core-t" ] && ok "bad config: no VM directory created" ||
	fail "bad config: no VM directory created"

# --- up
start=$SECONDS
H up >"$T/up.out" 2>"$T/up.err"
rc=$?
is "up exits 0" "$rc" 0
diag "up took $((SECONDS - start)) s"
if [ "$rc" -ne 0 ]; then
	sed 's/^/#   /' "$T/up.err"
	done_testing
	exit 1
fi
is "status is running" "$(H --json status | jq -r .status)" running
if [ "$(js .accel)" = tcg ]; then
	grep -q 'KVM unusable here (.*); using TCG (slow)' "$T/up.err" &&
		ok "accel auto fell back to TCG with a one-line notice" ||
		{ fail "accel auto fell back to TCG with a one-line notice"; sed 's/^/#   /' "$T/up.err"; }
else
	skip "TCG notice" "KVM works on this host"
fi
[ "$(stat -c %a "$V")" = 700 ] && ok "VM directory is 0700" || fail "VM directory is 0700"
[ "$(stat -c %a "$V/console.sock")" = 600 ] && ok "console.sock is 0600" || fail "console.sock is 0600"
check "guest is ready on the console" python3 "$GUESTSH_PY" --timeout 600 --wait-ready "$V/console.sock"
is "guest runs commands" "$(gsh 'echo $((40+2))' | tr -d '\r')" 42

out=$(H status)
grep -q '^status *running' <<<"$out" && grep -q "^qemu_pid *$(js .qemu_pid)" <<<"$out" &&
	ok "status (text) shows running and the QEMU pid" || { fail "status (text)"; diag "$out"; }
j=$(H --json status)
[ "$(jq -r .name <<<"$j")" = core-t ] && [ "$(jq -r .accel <<<"$j")" = "$(js .accel)" ] &&
	[ "$(jq -r .uptime_s <<<"$j")" -ge 0 ] && ok "status --json: name, accel, uptime" ||
	{ fail "status --json"; diag "$j"; }
"$HUTCH" status core-t >/dev/null 2>&1 && ok "status by name works outside the project too" ||
	fail "status by name"
H list | grep -q '^core-t *running' && ok "list shows the VM running" || fail "list"
[ "$(H --json list | jq -r '.[] | select(.name=="core-t") | .status')" = running ] &&
	ok "list --json" || fail "list --json"

# --- console: typed input reaches the guest shell, its output comes back,
# Ctrl-] leaves (its input stays open until the answer is there, for at most
# 300 s; the end of its input alone does not end it: it shows the guest's
# output until the VM stops)
mkfifo "$T/con.in"
timeout 300 "$HUTCH" -C "$T/p" console <"$T/con.in" >"$T/con.out" 2>"$T/con.err" &
cpid=$!
exec 7>"$T/con.in"
printf 'echo CON$((6*7))SOLE\n' >&7
wait_until 300 grep -q CON42SOLE "$T/con.out"
printf '\035' >&7
wait "$cpid" 2>/dev/null
crc=$?
exec 7>&-
grep -q CON42SOLE "$T/con.out" && ok "console: input reaches the guest, output streams back" ||
	{ fail "console"; diag "$(tail -c 300 "$T/con.out")"; }
if [ "$crc" = 0 ] && grep -q 'left the console' "$T/con.err"; then
	ok "console: Ctrl-] leaves it (exit 0)"
else
	fail "console: Ctrl-] leaves it (exit $crc)"; sed 's/^/# /' "$T/con.err"
fi
H logs | grep -q 'hutch-tiny: ready' && ok "logs shows the guest's console (console.log)" || fail "logs"
H logs --supervisor | grep -q 'running' && ok "logs --supervisor" || fail "logs --supervisor"

# --- console.log stays bounded: 1.1 MB of guest output rotates it once
python3 "$GUESTSH_PY" "$V/console.sock" \
	'head -c 1100000 /dev/zero | tr "\0" x >/dev/ttyS0; echo' >/dev/null 2>&1
a=$(stat -c %s "$V/console.log" 2>/dev/null || echo 0)
b=$(stat -c %s "$V/console.log.1" 2>/dev/null || echo 0)
[ "$b" -gt 0 ] && [ "$a" -le 1048576 ] && [ "$b" -le 1048576 ] &&
	ok "console.log rotated at 1 MiB, one old file kept ($a + $b bytes)" ||
	fail "console.log rotated at 1 MiB ($a + $b bytes)"
"$HUTCH" -C "$T/p" logs -f >"$T/follow" 2>/dev/null &
fpid=$!
wait_until 120 test -s "$T/follow"
alive "$fpid" && [ -s "$T/follow" ] && ok "logs -f prints and keeps following" ||
	fail "logs -f (still running: $(alive "$fpid" && echo yes || echo no), printed $(wc -c <"$T/follow") bytes)"
kill "$fpid" 2>/dev/null; wait "$fpid" 2>/dev/null

# --- inspect
out=$(H inspect)
grep -q -- "-accel $(js .accel)" <<<"$out" && grep -q 'qmp status: *running' <<<"$out" &&
	ok "inspect shows QEMU's argv and QMP status" || { fail "inspect"; diag "$out"; }
j=$(H --json inspect)
jq -e '.qemu_argv | index("-nodefaults") and index("virtio-rng-pci")' <<<"$j" >/dev/null &&
	[ "$(jq -r .qmp_status <<<"$j")" = running ] && ok "inspect --json" || { fail "inspect --json"; diag "$j"; }
check_fails "ip without network: exit 1" H ip

# --- another project with the same VM name must not take this VM over
mkdir -p "$T/o"
cp "$T/p/hutch.yaml" "$T/p/cloud-init.yml" "$T/o/"
"$HUTCH" -C "$T/o" up >/dev/null 2>"$T/err"
rc=$?
[ "$rc" -eq 1 ] && grep -q 'already exists for' "$T/err" &&
	ok "same VM name in another project: refused" || { fail "same name, other project (rc $rc)"; diag "$(cat "$T/err")"; }

# --- idempotent up
sv=$(js .supervisor_pid)
H up 2>"$T/err"
is "second up exits 0" "$?" 0
grep -q 'already running' "$T/err" && [ "$(js .supervisor_pid)" = "$sv" ] &&
	ok "second up is a no-op" || fail "second up is a no-op"

# --- suspend / resume
check "suspend" H suspend
is "status paused" "$(H --json status | jq -r .status)" paused
[ "$(H --json inspect | jq -r .qmp_status)" = paused ] && ok "QEMU really paused" || fail "QEMU really paused"
# keystrokes typed while the guest does not read its serial port (paused
# here; a TCG guest on a busy host is the everyday case) wait, none is
# dropped: typed one byte per write, as a person types, far more writes than
# the socket to QEMU holds (278 of any size)
cat >"$T/typist.py" <<'PY'
import select, socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.setblocking(False)
data = "".join("\x15echo $((%s0)) >/tmp/typed%d\n" % ("1+" * 300, k) for k in range(4)).encode()
told = False
for i in range(len(data)):
    while True:
        try:
            s.send(data[i:i + 1])
            break
        except BlockingIOError:
            # the supervisor holds back: say so once, then wait for room
            if not told:
                open(sys.argv[2], "w").write("blocked\n")
                told = True
            select.select([], [s], [])
    time.sleep(0.001)
open(sys.argv[2], "a").write("done\n")
PY
# resume once the typist is held back (or, with a supervisor that drops
# keystrokes instead, once it is through)
sent() { grep -qE '^(blocked|done)$' "$T/typed.n" 2>/dev/null; }
timeout 900 python3 "$T/typist.py" "$V/console.sock" "$T/typed.n" &
typist=$!
wait_until 600 sent || diag "the typist neither finished nor was held back: $(cat "$T/typed.n" 2>/dev/null)"
check "resume" H resume
wait $typist
is "typing into a paused guest: the typist got through" "$?" 0
is "status running again" "$(H --json status | jq -r .status)" running
is "guest still answers after resume" "$(gsh 'echo ok' | tr -d '\r')" ok
is "no keystroke typed into the paused guest was lost" \
	"$(gsh 'cat /tmp/typed0 /tmp/typed1 /tmp/typed2 /tmp/typed3 2>&1' | tr -d '\r' | tr '\n' ' ')" "300 300 300 300 "
grep -q 'console input dropped' "$V/supervisor.log" && fail "the supervisor dropped console input" ||
	ok "the supervisor logged no dropped console input"

# --- busy lock: held (flock -n fails) until we let it go
mkfifo "$T/lock.go"
flock "$V/lock" cat "$T/lock.go" >/dev/null &
fl=$!
wait_until 120 eval '! flock -n "$V/lock" true'
H halt >/dev/null 2>&1
is "halt while another command holds the VM: exit 75" "$?" 75
H suspend >/dev/null 2>&1
is "suspend while busy: exit 75" "$?" 75
: >"$T/lock.go"
wait $fl

# --- halt by ACPI, from paused (the supervisor resumes the guest first)
check "suspend before halt" H suspend
qemu=$(js .qemu_pid)
sv=$(js .supervisor_pid)
start=$SECONDS
check "halt" H halt
diag "halt took $((SECONDS - start)) s"
is "status stopped after halt" "$(H --json status | jq -r .status)" stopped
is "exit_reason guest-shutdown (ACPI)" "$(js .exit_reason)" guest-shutdown
gone "$qemu" && gone "$sv" && ok "QEMU and the supervisor are gone" || fail "processes gone"
[ ! -e "$V/console.sock" ] && [ ! -e "$V/control.sock" ] && [ ! -e "$V/supervisor.pid" ] &&
	ok "sockets and pid file removed" || fail "sockets and pid file removed"
check "halt when stopped is fine" H halt

# --- up again, then QEMU is killed
check "up again after halt" H up
is "running again" "$(H --json status | jq -r .status)" running
kill -9 "$(js .qemu_pid)"
wait_for 120 status_is crashed && ok "kill -9 QEMU: status crashed" || fail "kill -9 QEMU: status crashed"
wait_for 120 test ! -e "$V/control.sock" && ok "supervisor cleaned up after QEMU died" || fail "supervisor cleanup"

# --- supervisor killed: QEMU must not outlive it; gc cleans
check "up after a crash" H up
qemu=$(js .qemu_pid)
sv=$(js .supervisor_pid)
kill -9 "$sv"
wait_for 120 gone "$qemu" && ok "kill -9 supervisor: QEMU dies with it" || fail "QEMU outlived its supervisor"
is "status crashed with a dead supervisor" "$(H --json status | jq -r .status)" crashed
is "list is never stale: crashed too" "$(H --json list | jq -r '.[] | select(.name=="core-t") | .status')" crashed
"$HUTCH" gc 2>"$T/err"
is "gc exits 0" "$?" 0
grep -q 'core-t' "$T/err" && [ ! -e "$V/control.sock" ] && [ ! -e "$V/supervisor.pid" ] &&
	[ "$(js .status)" = crashed ] && ok "gc removed the leftovers and recorded the crash" ||
	{ fail "gc"; ls "$V" | sed 's/^/#   /'; }

# --- for rigs: up --no-wait --json, wait (issue 16)
out=$(H up --no-wait --json 2>"$T/err")
rc=$?
is "up --no-wait --json exits 0" "$rc" 0
phases=$(jq -r .phase <<<"$out" 2>/dev/null | tr '\n' ' ')
is "one JSON object per phase, then the outcome" "$phases" "qemu-started done "
jq -s -e 'map(select(.phase == "qemu-started"))[0] | (.t_ms >= 0) and (.mono_ms > 0) and .accel' \
	<<<"$out" >/dev/null && ok "phases carry timestamps (t_ms, mono_ms) and the accel" ||
	{ fail "phase timestamps"; diag "$out"; }
is "outcome ready, exit 0" "$(jq -r 'select(.phase == "done") | "\(.outcome) \(.exit)"' <<<"$out")" "ready 0"
check "wait --for ssh on a guest with no SSH: exit 1, says why" bash -c '! "$HUTCH" -C "'"$T"'/p" wait --for ssh 2>&1 | grep -q "no SSH" && false || true'
H wait --for stopped --timeout 2 2>/dev/null
is "wait --for stopped times out while it runs: exit 1" "$?" 1
H wait --for stopped --timeout 600 &
wpid=$!
sleep 1
H halt >/dev/null 2>&1
wait "$wpid"
is "wait --for stopped returns 0 once halted" "$?" 0
H wait --for bogus 2>/dev/null
is "wait --for with an unknown thing: exit 2" "$?" 2
j=$(H --json list)
[ "$(jq -r '.[] | select(.name=="core-t") | .status' <<<"$j")" = stopped ] &&
	[ "$(jq -r '.[] | select(.name=="core-t") | .project' <<<"$j")" = "$T/p" ] &&
	ok "list --json: state and project of every VM" || { fail "list --json fields"; diag "$j"; }

# --- destroy
check "up once more" H up
qemu=$(js .qemu_pid)
check "destroy" H destroy
[ ! -e "$V" ] && ok "destroy removed the VM directory" || fail "destroy removed the VM directory"
gone "$qemu" && ! pgrep -f "__supervise $V" >/dev/null && ok "destroy left no process" ||
	fail "destroy left no process"
[ -f "$XDG_CACHE_HOME/hutch/images/base.img" ] && ok "destroy kept the image cache" ||
	fail "destroy kept the image cache"
is "status after destroy" "$(H --json status | jq -r .status)" not-created

# --- user-mode networking: SSH port forwarded on 127.0.0.1
sed -e 's/name: core-t/name: core-u/' -e 's/mode: none/mode: user/' -e 's/accel: auto/accel: tcg/' \
	"$T/p/hutch.yaml" >"$T/u/hutch.yaml"
cp "$T/p/cloud-init.yml" "$T/u/"
if "$HUTCH" -C "$T/u" up >/dev/null 2>"$T/err"; then
	ok "up (network user)"
	is "ip prints 127.0.0.1" "$("$HUTCH" -C "$T/u" ip 2>/dev/null)" 127.0.0.1
	is "wait --for ip prints it too" "$("$HUTCH" -C "$T/u" wait --for ip --timeout 60 2>/dev/null)" 127.0.0.1
	port=$("$HUTCH" -C "$T/u" --json ip | jq -r .ssh_port)
	(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && ok "SSH forward listens on 127.0.0.1:$port" ||
		fail "SSH forward listens on 127.0.0.1:$port"
	out=$("$HUTCH" -C "$T/u" inspect)
	grep -q "hostfwd=tcp:127.0.0.1:$port-:22" <<<"$out" &&
		grep -q 'virtio-net-pci,netdev=n0,mac=52:54:00:' <<<"$out" &&
		ok "inspect: hostfwd and NIC with the VM's MAC" || fail "inspect: hostfwd and NIC"
	check "destroy (network user)" "$HUTCH" -C "$T/u" destroy
else
	fail "up (network user)"
	sed 's/^/#   /' "$T/err"
fi
# --- a VM that cannot start: up fails with the supervisor's and console's tails
mkdir -p "$T/k"
head -c 4096 /dev/urandom >"$T/k/notakernel"
sed -e 's/name: core-t/name: core-k/' -e "s|path: $TINY_KERNEL|path: $T/k/notakernel|" \
	-e 's/accel: auto/accel: tcg/' "$T/p/hutch.yaml" >"$T/k/hutch.yaml"
cp "$T/p/cloud-init.yml" "$T/k/"
"$HUTCH" -C "$T/k" up >/dev/null 2>"$T/err"
rc=$?
[ "$rc" -eq 1 ] && grep -q 'failed to start' "$T/err" && grep -q 'supervisor.log' "$T/err" &&
	grep -qi 'qemu' "$T/err" && ok "up of a VM that cannot boot: exit 1 with the logs' tails" ||
	{ fail "up of a VM that cannot boot (rc $rc)"; sed 's/^/#   /' "$T/err"; }
is "its status is crashed" "$("$HUTCH" -C "$T/k" --json status | jq -r .status)" crashed
check "destroy it" "$HUTCH" -C "$T/k" destroy

leftover=$(pgrep -f "$T" | tr '\n' ' ')
[ -z "$leftover" ] && ok "no process left behind" || { fail "no process left behind"; diag "$leftover"; }
done_testing
