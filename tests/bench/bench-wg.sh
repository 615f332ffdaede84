#!/usr/bin/env bash
# WireGuard: throughput of the tiny guest (TCG, `hutch up`, mode nat) to a
# server in an "internet" namespace, through the tunnel (peer: wireguard-go
# in its own namespace, see tests/net/wg-lib.sh) next to the same VM without
# wireguard.conf.  Download: busybox wget of BENCH_WG_MB MiB over HTTP;
# upload: dd | nc of the same to a TCP sink.  Timed inside the guest
# (/proc/uptime, 10 ms), so hutch's start-up is not in the figure.  Under
# TCG the guest's CPU is the bottleneck; the ratio is the useful number.
cd "$(dirname "$0")/../.." || exit 1
[ "$(id -u)" -eq 0 ] || { echo "bench-wg: needs root, skipped"; exit 0; }
export HUTCH_SRC=$PWD HUTCH=$PWD/hutch
source tests/lib/tap.sh >/dev/null
source tests/lib/guest.sh
source tests/net/wg-lib.sh
wg_have_tools || { echo "bench-wg: wireguard-go or wg missing, skipped"; exit 0; }
if ./hutch -C / up 2>&1 | grep -q 'not implemented'; then echo "bench-wg: 'hutch up' not in this build, skipped"; exit 0; fi
guest_tiny_build >/dev/null || { echo "bench-wg: tiny guest does not build"; exit 1; }
MB=${BENCH_WG_MB:-16}
HN=wgb-h-$$ PN=wgb-p-$$ TN=wgb-t-$$ PIF=wgb$$
T=$(mktemp -d /tmp/wgbench.XXXXXX)
export XDG_DATA_HOME=$T/data XDG_CACHE_HOME=$T/cache
unset HUTCH_DIR HUTCH_BRIDGE HUTCH_SUBNET
SRV=
cleanup() {
	local d p
	for d in "$XDG_DATA_HOME"/hutch/vms/*; do
		p=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("supervisor_pid", ""))' "$d/state.json" 2>/dev/null)
		[ -n "$p" ] && grep -qs "$T" "/proc/$p/cmdline" && kill -9 "$p" 2>/dev/null
	done
	ip netns exec "$HN" "$HUTCH" gc >/dev/null 2>&1
	[ -n "$SRV" ] && kill "$SRV" 2>/dev/null
	wg_peer_stop
	wait 2>/dev/null
	for n in $HN $PN $TN; do ip netns del "$n" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT
( set -e; wg_rig_setup "$HN" "$PN" "$TN" "$PIF" "$T" ) >"$T/setup.log" 2>&1 || { echo "bench-wg: set-up failed"; cat "$T/setup.log"; exit 1; }
WG_PEER_IF=$PIF WG_PEER_PID=$(pgrep -f "^wireguard-go -f $PIF\$" | head -n1)
cat >"$T/srv.py" <<'PY'
import socket, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
CHUNK = b"\0" * 65536
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        n = int(self.path.strip("/"))
        self.send_response(200)
        self.send_header("Content-Length", str(n))
        self.end_headers()
        while n > 0:
            k = min(n, len(CHUNK))
            self.wfile.write(CHUNK[:k])
            n -= k
    def log_message(self, *a):
        pass
def sink():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((sys.argv[1], 5001))
    s.listen(4)
    while True:
        c, _ = s.accept()
        while c.recv(1 << 16):
            pass
        c.close()
threading.Thread(target=sink, daemon=True).start()
print("ready", flush=True)
ThreadingHTTPServer((sys.argv[1], 80), H).serve_forever()
PY
ip netns exec "$TN" python3 "$T/srv.py" 198.51.100.10 >"$T/srv.log" 2>&1 &
SRV=$!
for _ in $(seq 100); do grep -q ready "$T/srv.log" && break; sleep 0.1; done
printf 'nameserver 198.51.100.10\n' >"$T/resolv.conf"

run() {	# name with-wg: prints "download upload" in MB/s
	local d=$T/$1 out
	mkdir -p "$d"
	cat >"$d/hutch.yaml" <<Y
name: $1
cpus: 1
memory: 256
accel: tcg
kernel: {path: $TINY_KERNEL, initrd: $TINY_INITRD, cmdline: "console=ttyS0 quiet hutch.net=dhcp"}
network: {mode: nat}
timeouts: {boot: 240, shutdown: 45}
Y
	printf '#cloud-config\n' >"$d/cloud-init.yml"
	[ "$2" = 1 ] && wg_conf_write "$d/wireguard.conf" "$T/keys" 10.200.0.2/32 203.0.113.2:51820 10.200.0.1 25
	ip netns exec "$HN" env HUTCH_RESOLV_CONF="$T/resolv.conf" timeout 300 "$HUTCH" -C "$d" up >/dev/null 2>&1 ||
		{ echo "up-failed up-failed"; return; }
	[ "$2" = 1 ] && python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["wg"]["impl"])' \
		"$XDG_DATA_HOME/hutch/vms/$1/state.json" >"$T/impl" 2>/dev/null
	out=$(guestsh --timeout 600 "$XDG_DATA_HOME/hutch/vms/$1/console.sock" \
		"u() { cut -d' ' -f1 /proc/uptime; }; a=\$(u); wget -q -O /dev/null http://198.51.100.10/$((MB << 20)); b=\$(u); dd if=/dev/zero bs=65536 count=$((MB * 16)) 2>/dev/null | nc 198.51.100.10 5001 >/dev/null; c=\$(u); echo T \$a \$b \$c" 2>&1 |
		tr -d '\r' | awk '$1 == "T" { print $2, $3, $4 }' | tail -n1)
	ip netns exec "$HN" timeout 120 "$HUTCH" -C "$d" halt >/dev/null 2>&1
	awk -v mb="$MB" -v t="$out" 'BEGIN { split(t, a, " ");
		if (a[3] == "" || a[2] <= a[1] || a[3] <= a[2]) { print "? ?"; exit }
		printf "%.1f %.1f\n", mb / (a[2] - a[1]), mb / (a[3] - a[2]) }'
}
read -r wd wu <<<"$(run wgbench 1)"
read -r pd pu <<<"$(run plainbench 0)"
impl=$(cat "$T/impl" 2>/dev/null)
echo "wireguard throughput, tiny guest under TCG, $MB MiB (tunnel: ${impl:-?}): download $wd MB/s through the tunnel, $pd MB/s without; upload $wu MB/s through the tunnel, $pu MB/s without"
