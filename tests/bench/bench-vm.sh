#!/usr/bin/env bash
# Start-up cost of hutch around QEMU, with the tiny guest under TCG:
#   `hutch up` start -> supervisor start -> QEMU spawned -> QMP ready -> up returns,
# against QEMU alone (same argv, spawned directly, until QMP answers qmp_capabilities),
# and the supervisor's resident memory.  Figures are medians of RUNS runs.
cd "$(dirname "$0")/../.." || exit 1
HUTCH_SRC=$PWD
HUTCH=$HUTCH_SRC/hutch
source tests/lib/guest.sh
guest_tiny_build || { echo "bench-vm: tiny guest does not build"; exit 1; }
RUNS=${RUNS:-5}
T=$(mktemp -d /tmp/hutch-bench-vm.XXXXXX)
trap '"$HUTCH" -C "$T/p" destroy >/dev/null 2>&1; rm -rf "$T"' EXIT
export XDG_DATA_HOME=$T/data XDG_CACHE_HOME=$T/cache HOME=$T
mkdir -p "$T/p"
cat >"$T/p/hutch.yaml" <<EOT
name: bench-vm
cpus: 1
memory: 256
accel: tcg
kernel: {path: $TINY_KERNEL, initrd: $TINY_INITRD, cmdline: "console=ttyS0 quiet no_timer_check no_timer_check"}
network: {mode: none}
EOT
printf '#cloud-config\n' >"$T/p/cloud-init.yml"	# no SSH key: up does not wait for SSH
python3 - "$HUTCH" "$T/p" "$XDG_DATA_HOME/hutch/vms/bench-vm" "$RUNS" <<'EOF'
import json, os, socket, statistics, subprocess, sys, time

hutch, proj, vmdir, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
ms = lambda: time.clock_gettime(time.CLOCK_MONOTONIC) * 1000.0
rows = {k: [] for k in ("sv", "spawn", "qmp", "up", "alone", "rss", "anon", "pss", "pdirty")}
for i in range(runs):
    t0 = ms()
    subprocess.run([hutch, "-q", "-C", proj, "up"], check=True)
    t1 = ms()
    st = json.load(open(os.path.join(vmdir, "state.json")))
    tm = st["timing"]
    rows["sv"].append(tm["supervisor_start"] - t0)
    rows["spawn"].append(tm["qemu_spawn"] - t0)
    rows["qmp"].append(tm["qmp_ready"] - t0)
    rows["up"].append(t1 - t0)
    with open("/proc/%d/status" % st["supervisor_pid"]) as f:
        kv = dict(l.split(":", 1) for l in f if ":" in l)
    rows["rss"].append(int(kv["VmRSS"].split()[0]))
    rows["anon"].append(int(kv["RssAnon"].split()[0]))
    with open("/proc/%d/smaps_rollup" % st["supervisor_pid"]) as f:
        sm = dict(l.split(":", 1) for l in list(f)[1:] if ":" in l)  # line 1: the range
    rows["pss"].append(int(sm["Pss"].split()[0]))
    rows["pdirty"].append(int(sm["Private_Dirty"].split()[0]))
    argv = st["qemu_argv"]
    subprocess.run([hutch, "-q", "-C", proj, "halt"], check=True)
    # QEMU alone: the same argv, QMP and serial on our own socketpairs
    qa, qb = socket.socketpair()
    sa, sb = socket.socketpair()
    def child():
        os.dup2(qb.fileno(), 3)
        os.dup2(sb.fileno(), 4)
    t0 = ms()
    p = subprocess.Popen(argv, pass_fds=(3, 4), preexec_fn=child,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    qb.close(); sb.close()
    qa.settimeout(60)
    buf = b""
    while b"\n" not in buf:
        buf += qa.recv(4096)
    qa.sendall(b'{"execute":"qmp_capabilities"}\n')
    while b"return" not in buf:
        buf += qa.recv(4096)
    rows["alone"].append(ms() - t0)
    qa.sendall(b'{"execute":"quit"}\n')
    p.wait(30)
    qa.close(); sa.close()

med = {k: statistics.median(v) for k, v in rows.items()}
print("bench-vm: %d runs, medians (tiny guest, TCG)" % runs)
print("  up -> supervisor started     %7.1f ms" % med["sv"])
print("  up -> QEMU spawned           %7.1f ms" % med["spawn"])
print("  up -> QMP ready (running)    %7.1f ms" % med["qmp"])
print("  up total (returns)           %7.1f ms" % med["up"])
print("  QEMU alone -> QMP ready      %7.1f ms" % med["alone"])
print("  supervisor overhead          %7.1f ms  (QMP ready via hutch - QEMU alone; target < 100)"
      % (med["qmp"] - med["alone"]))
print("  supervisor RSS               %7d KiB  (of which private/anon %d KiB; the rest shared libraries)"
      % (med["rss"], med["anon"]))
print("  supervisor Pss               %7d KiB  (shared pages divided among their users; Private_Dirty %d KiB)"
      % (med["pss"], med["pdirty"]))
EOF
