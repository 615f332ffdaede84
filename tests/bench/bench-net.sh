#!/usr/bin/env bash
# Networking figures, in namespaces of our own (net-bn-*):
#  - DHCPDISCOVER -> OFFER latency through a bridge port (target: < 1 ms)
#  - RSS of a process running the net extension (bridge, tap, DHCP, DNS)
# VmRSS counts every shared library page mapped; Pss shares them out among
# the processes that map them, Private_* is what this process alone costs.
mem_of() {
	echo "$(grep -E 'VmRSS|VmHWM' "/proc/$1/status" | tr -s ' \t' ' ' | tr '\n' ' ')$(grep -E '^(Pss|Private_Clean|Private_Dirty):' "/proc/$1/smaps_rollup" | tr -s ' \t' ' ' | tr '\n' ' ')"
}
cd "$(dirname "$0")/../.." || exit 1
H=build/tests/net_helper
[ "$(id -u)" -eq 0 ] || { echo "bench-net: needs root, skipped"; exit 0; }
[ -x "$H" ] || { echo "bench-net: build first (make unit)"; exit 1; }
NS=net-bn-$$ G=net-bng-$$
TMP=$(mktemp -d)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	ip netns del "$NS" 2>/dev/null; ip netns del "$G" 2>/dev/null; rm -rf "$TMP"
}
trap cleanup EXIT
ip netns add "$NS"; ip netns add "$G"
ip netns exec "$NS" "$H" bridge hb0 10.77.0.1/24 2>/dev/null
ip link add vp netns "$NS" type veth peer name eth0 netns "$G"
ip -n "$G" link set eth0 address 52:54:00:00:bb:01
ip -n "$G" link set eth0 up
ip netns exec "$NS" "$H" attach vp hb0 52:54:00:00:bb:01
ip netns exec "$NS" "$H" serve vp hb0 10.77.0.1/24 52:54:00:00:bb:01 10.77.0.2 bench >"$TMP/serve.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do grep -q serving "$TMP/serve.log" && break; sleep 0.1; done
N=${BENCH_DHCP_N:-2000}
out=$(ip netns exec "$G" "$H" probe eth0 52:54:00:00:bb:01 "$N")
echo "dhcp discover->offer ($N): $out"
med=$(sed -n 's/.*median_us \([0-9]*\).*/\1/p' <<<"$out")
[ -n "$med" ] && [ "$med" -lt 1000 ] && echo "dhcp latency target (<1 ms median): met" || echo "dhcp latency target (<1 ms median): MISSED"

printf 'nameserver 127.0.0.1\n' >"$TMP/resolv.conf"
mkfifo "$TMP/hold"
ip netns exec "$NS" env HUTCH_BRIDGE=hb1 HUTCH_SUBNET=10.78.0.1/24 HUTCH_RESOLV_CONF="$TMP/resolv.conf" \
	"$H" sv "$TMP/vms/bench" bench hold <"$TMP/hold" >"$TMP/sv.out" 2>&1 &
pid=$!
PIDS+=($pid)
exec 7>"$TMP/hold"
for _ in $(seq 100); do grep -q '^lease' "$TMP/sv.out" && break; sleep 0.1; done
echo "net extension process (bridge+tap+DHCP+DNS, after a lease): $(mem_of "$pid")"
exec 7>&-
wait "$pid" 2>/dev/null

# The real supervisor with networking on, when this build has `hutch up` (tiny guest, mode nat)
if ./hutch -C / up 2>&1 | grep -q 'not implemented'; then
	echo "supervisor RSS with networking: skipped ('hutch up' not in this build)"
	exit 0
fi
source tests/lib/tap.sh >/dev/null
source tests/lib/guest.sh
guest_tiny_build >/dev/null || { echo "supervisor RSS: tiny guest does not build"; exit 0; }
export XDG_DATA_HOME=$TMP/data XDG_CACHE_HOME=$TMP/cache
mkdir -p "$TMP/p"
cat >"$TMP/p/hutch.yaml" <<Y
name: netbench
cpus: 1
memory: 256
accel: tcg
kernel: {path: $TINY_KERNEL, initrd: $TINY_INITRD, cmdline: "console=ttyS0 quiet no_timer_check no_timer_check hutch.net=dhcp"}
network: {mode: nat}
timeouts: {boot: 180, shutdown: 45}
Y
printf '#cloud-config\n' >"$TMP/p/cloud-init.yml"
t0=$(date +%s.%N)
if ip netns exec "$NS" env HUTCH_RESOLV_CONF="$TMP/resolv.conf" timeout 300 ./hutch -C "$TMP/p" up 2>/dev/null; then
	t1=$(date +%s.%N)
	sp=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["supervisor_pid"])' "$XDG_DATA_HOME/hutch/vms/netbench/state.json")
	echo "hutch up to DHCP lease (tiny guest, TCG): $(python3 -c "print(round($t1-$t0,2))") s"
	echo "supervisor with networking (bridge+tap+DHCP+DNS+rules): $(mem_of "$sp")"
	ip netns exec "$NS" timeout 120 ./hutch -C "$TMP/p" halt 2>/dev/null
else
	echo "supervisor RSS: hutch up failed"
fi
