#!/usr/bin/env bash
# The cost of least privilege (issue 10), with the tiny guest under TCG in a
# network namespace of our own:
#   - hutch-helper's round trip per request (ping; target < 1 ms), and one
#     VM network brought up and down through it;
#   - `hutch up` until the guest has its DHCP lease, as root (the privileged
#     side in-process) against an unprivileged user through the helper
#     (target: within 5%), medians of RUNS runs, the two kinds interleaved.
# Needs root (a test user and a test copy of the helper, tests/lib/priv.sh).
cd "$(dirname "$0")/../.." || exit 1
HUTCH_SRC=$PWD
HUTCH=$HUTCH_SRC/hutch
CLIENT=$HUTCH_SRC/build/tests/priv_client
source tests/lib/guest.sh
source tests/lib/priv.sh
[ "$(id -u)" -eq 0 ] || { echo "bench-priv: needs root; skipped"; exit 0; }
[ -x "$HUTCH_SRC/hutch-helper" ] && [ -x "$CLIENT" ] || { echo "bench-priv: make hutch-helper unit first"; exit 1; }
guest_tiny_build || { echo "bench-priv: tiny guest does not build"; exit 1; }
RUNS=${RUNS:-5}
T=$(mktemp -d /tmp/hutch-bench-priv.XXXXXX)
NS=benchp-$$ U=htb$$
chmod 755 "$T"
unset HUTCH_BRIDGE HUTCH_SUBNET HUTCH_DIR
cleanup() {
	ip netns exec "$NS" env XDG_DATA_HOME="$T/root" HUTCH_RUN_DIR="$T/rootrun" "$HUTCH" -q -C "$T/pr" halt >/dev/null 2>&1
	ip netns exec "$NS" "${PRIV_ARGV[@]}" "$HUTCH" -q -C "$T/pu" halt >/dev/null 2>&1
	ip netns del "$NS" 2>/dev/null
	priv_fini
	rm -rf "$T"
}
trap cleanup EXIT
priv_init "$T/priv" && priv_user "$U" || { echo "bench-priv: no test user or helper copy"; cat "$T/priv/setup.log"; exit 1; }
priv_argv "$U"
ip netns add "$NS" && ip -n "$NS" link set lo up || exit 1
for p in pr pu; do
	mkdir -p "$T/$p"
	cat >"$T/$p/hutch.yaml" <<Y
name: bench-priv
cpus: 1
memory: 256
accel: tcg
kernel: {path: $TINY_KERNEL, initrd: $TINY_INITRD, cmdline: "console=ttyS0 quiet hutch.net=dhcp"}
network: {mode: nat}
timeouts: {boot: 300, shutdown: 30}
Y
	printf '#cloud-config\n' >"$T/$p/cloud-init.yml"
done
chown -R "$U:" "$T/pu"

rtt=$("${PRIV_ARGV[@]}" "$CLIENT" "$HUTCH_HELPER" @bench:2000 | awk '/^rtt_us/ {print $2}')
echo "helper round trip (ping, 2000 requests): ${rtt:-?} us per request (target < 1000 us)"
NETUP='{"op":"net_up","name":"b","bridge":"hutch0","subnet":"10.77.0.1/24","mac":"52:54:00:00:00:01","isolation":true,"ipv6":false}'
ms=$(ip netns exec "$NS" "${PRIV_ARGV[@]}" "$CLIENT" "$HUTCH_HELPER" "@time:$NETUP" | awk '/^ms/ {print $2}')
echo "net_up through the helper (bridge, base and VM rules, tap, sockets): ${ms:-?} ms"

python3 - "$RUNS" "$NS" "$HUTCH" "$T" "$PRIV_DIR/home-$U/data" "${PRIV_ARGV[@]}" <<'PY'
import json, os, statistics, subprocess, sys, time

runs, ns, hutch, t, udata, asu = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6:]
ms = lambda: time.clock_gettime(time.CLOCK_MONOTONIC) * 1000.0
kinds = {
    "root": (["ip", "netns", "exec", ns, "env", "XDG_DATA_HOME=%s/root" % t, "HUTCH_RUN_DIR=%s/rootrun" % t],
             t + "/pr", t + "/root"),
    "user": (["ip", "netns", "exec", ns] + asu, t + "/pu", udata),
}
res = {k: {"lease": [], "spawn": []} for k in kinds}
for i in range(runs):
    for k, (pre, proj, data) in kinds.items():
        t0 = ms()
        subprocess.run(pre + [hutch, "-q", "-C", proj, "up"], check=True, stderr=subprocess.DEVNULL)
        res[k]["lease"].append(ms() - t0)
        st = json.load(open(data + "/hutch/vms/bench-priv/state.json"))
        res[k]["spawn"].append(st["timing"]["qemu_spawn"] - t0)
        subprocess.run(pre + [hutch, "-q", "-C", proj, "halt"], check=True, stderr=subprocess.DEVNULL)
med = {k: {m: statistics.median(v) for m, v in r.items()} for k, r in res.items()}
for m, what in (("spawn", "up to QEMU spawned (the network comes up in between)"),
                ("lease", "up to the guest's DHCP lease (tiny guest, TCG)")):
    r, u = med["root"][m], med["user"][m]
    print("%s, median of %d: as root %.0f ms, as a user through hutch-helper %.0f ms (%+.1f%%%s)"
          % (what, runs, r, u, (u - r) / r * 100, ", target within 5%" if m == "lease" else ""))
    print("  root: %s" % [round(x) for x in res["root"][m]])
    print("  user: %s" % [round(x) for x in res["user"][m]])
PY
