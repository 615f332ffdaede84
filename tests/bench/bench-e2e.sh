#!/usr/bin/env bash
# up -> SSH-ready with the Debian 12 guest (network mode user, no
# cloud-init wait, no playbook), and hutch's own share of it: everything
# but the guest's boot, i.e. the time before QEMU starts plus the time
# after SSH first answers.  Also the cost of one `hutch ssh -- true`.
#   E2E_IMAGE=path   the qcow2 to boot (default build/guests/debian-12/image.qcow2)
set -u
cd "$(dirname "$0")/../.." || exit 1
HUTCH=${HUTCH:-$PWD/hutch}
IMAGE=${E2E_IMAGE:-$PWD/build/guests/debian-12/image.qcow2}
if [ ! -f "$IMAGE" ]; then
	echo "bench-e2e: skipped: no $IMAGE (make debian-image)"; exit 0
fi
if "$HUTCH" -C /nonexistent up 2>&1 | grep -q 'not implemented'; then
	echo "bench-e2e: skipped: the lifecycle verbs are not in this build"; exit 0
fi
T=$(mktemp -d /tmp/hutch-bench.XXXXXX)
trap '"$HUTCH" -C "$T/p" destroy >/dev/null 2>&1; rm -rf "$T"' EXIT
export HOME=$T/home XDG_DATA_HOME=$T/data XDG_CACHE_HOME=$T/cache XDG_RUNTIME_DIR=$T/run
mkdir -p "$HOME" "$XDG_DATA_HOME" "$XDG_CACHE_HOME" "$XDG_RUNTIME_DIR" "$T/p"
chmod 700 "$XDG_RUNTIME_DIR"
cat >"$T/p/hutch.yaml" <<Y
name: bench
image: $IMAGE
cpus: 2
accel: ${E2E_ACCEL:-tcg}
memory: 1024
network: {mode: user}
cloud_init_wait: false
timeouts: {boot: 1200, ssh: 1200, cloud_init: 1200, shutdown: 240}
Y
"$HUTCH" pubkey >/dev/null 2>&1
# every time here is on the clock of /proc/uptime (CLOCK_BOOTTIME), which
# QEMU's start time in /proc/PID/stat and hutch's debug line also use
now() { cut -d' ' -f1 /proc/uptime; }
t0=$(now)
if ! "$HUTCH" -v -C "$T/p" up >"$T/up.log" 2>&1; then
	echo "bench-e2e: up failed"; tail -20 "$T/up.log"; exit 1
fi
t1=$(now)
vmd=$XDG_DATA_HOME/hutch/vms/bench
qpid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("qemu_pid",""))' "$vmd/state.json")
tq=
if [ -n "$qpid" ] && [ -r "/proc/$qpid/stat" ]; then
	# QEMU's start time: field 22 of /proc/PID/stat (ticks since boot)
	tq=$(python3 - "$qpid" <<'PY'
import os, sys
st = open(f"/proc/{sys.argv[1]}/stat").read().rsplit(")", 1)[1].split()
ticks = int(st[19]); hz = os.sysconf("SC_CLK_TCK")
print(f"{ticks / hz:.3f}")
PY
)
fi
tssh=$(sed -n 's/.*ssh: first answer at boottime \([0-9.]*\).*/\1/p' "$T/up.log" | tail -1)
t2=$(now)
"$HUTCH" -C "$T/p" ssh -- true </dev/null >/dev/null 2>&1
t3=$(now)
python3 - "$t0" "$t1" "${tq:-}" "${tssh:-}" "$t2" "$t3" <<'PY'
import sys
t0, t1 = float(sys.argv[1]), float(sys.argv[2])
tq = float(sys.argv[3]) if sys.argv[3] else None
ts = float(sys.argv[4]) if sys.argv[4] else None
t2, t3 = float(sys.argv[5]), float(sys.argv[6])
print(f"bench-e2e: up -> SSH ready: {t1 - t0:.1f} s (TCG guest, network user)")
if tq is not None and ts is not None:
    before, after = tq - t0, t1 - ts
    print(f"bench-e2e: hutch before QEMU starts: {before:.2f} s; after SSH answers: {after:.2f} s;"
          f" hutch's share: {before + after:.2f} s ({100 * (before + after) / (t1 - t0):.1f} %)")
    print(f"bench-e2e: guest boot to first SSH answer: {ts - tq:.1f} s")
else:
    print("bench-e2e: hutch's share: n/a (no qemu_pid in state or no -v debug line)")
print(f"bench-e2e: one `hutch ssh -- true`: {t3 - t2:.2f} s")
PY
