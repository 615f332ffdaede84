#!/usr/bin/env bash
# Isolation seen from inside a real guest: the tiny guest (TCG) on a real tap
# ht-t, bridged to hutch0 in a namespace, with hutch's rules installed by
# net/nft.c (through tests/helpers/nftctl, as the supervisor would).
# Checks: the tap passes nothing before the VM's rules exist (fail closed);
# then the internet and its allow-host-port work while the host's other
# ports and addresses, the metadata address and the LAN stay out of reach;
# a changed MAC or IP inside the guest gets nothing through.
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$HUTCH_SRC/tests/lib/guest.sh"
cd "$HUTCH_SRC" || exit 1

NFTCTL=$HUTCH_SRC/build/tests/nftctl
PROBE=$HUTCH_SRC/tests/net/nft_probe.py
if [ "$(id -u)" != 0 ]; then skip "guest isolation" "needs root"; done_testing; exit 0; fi
for t in ip nft python3 qemu-system-x86_64; do
	command -v $t >/dev/null || { skip "guest isolation" "$t missing"; done_testing; exit 0; }
done
[ -x "$NFTCTL" ] || { fail "build/tests/nftctl missing (make unit)"; done_testing; exit 1; }

P=nft-g$$
H=$P-h NET=$P-net LAN=$P-lan
TMP=$(mktemp -d)
PIDS=()
cleanup() {
	[ -n "${TINY_PID:-}" ] && tiny_stop "$TMP/vm" >/dev/null 2>&1
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	for n in $H $NET $LAN; do ip netns del "$n" 2>/dev/null; done
	rm -rf "$TMP"
}
trap cleanup EXIT
ns() { local n=$1; shift; ip netns exec "$n" "$@"; }
MAC=52:54:00:77:00:14

guest_tiny_build || { fail "make tiny"; done_testing; exit 1; }
ok "tiny guest built"

setup() {
for n in $H $NET $LAN; do ip netns add "$n"; ns "$n" ip link set lo up; done
ns $H sysctl -qw net.ipv4.ip_forward=1
ns $H ip link add hutch0 type bridge
ns $H ip addr add 10.77.0.1/24 dev hutch0
ns $H ip link set hutch0 up
ns $H ip tuntap add dev ht-t mode tap
ns $H ip link set ht-t master hutch0 up
ns $H ip link add hostd type veth peer name hostd-p
ns $H ip addr add 198.51.100.1/32 dev hostd
ns $H ip link set hostd up; ns $H ip link set hostd-p up
ns $H ip link add wan0 type veth peer name eth0 netns $NET
ns $H ip addr add 203.0.113.1/24 dev wan0
ns $H ip link set wan0 up
ns $NET ip addr add 203.0.113.10/24 dev eth0
ns $NET ip addr add 169.254.169.254/32 dev eth0
ns $NET ip link set eth0 up
ns $H ip route add 169.254.169.254/32 via 203.0.113.10
ns $H ip route add default via 203.0.113.10
ns $H ip link add lan0 type veth peer name eth0 netns $LAN
ns $H ip addr add 192.168.77.1/24 dev lan0
ns $H ip link set lan0 up
ns $LAN ip addr add 192.168.77.10/24 dev eth0
ns $LAN ip link set eth0 up
ns $LAN ip route add default via 192.168.77.1
}
( set -e; setup )	# any failing step fails the setup (set -e only holds outside "||")
[ $? -eq 0 ] || { fail "setup of the namespaces"; done_testing; exit 1; }

for s in "$H host 80 53 8080" "$NET net 80" "$LAN lan 80"; do
	set -- $s
	ip netns exec "$1" python3 "$PROBE" serve "$2" "$TMP/$2.log" "${@:3}" >/dev/null 2>&1 &
	PIDS+=($!)
done
for f in host net lan; do wait_until 120 grep -q ready "$TMP/$f.log" 2>/dev/null; done

# Only the base: the tap must pass nothing yet
check "nft_base_ensure" ns $H "$NFTCTL" base hutch0 10.77.0.0/24

# QEMU runs in the host namespace, on the tap
qemu-system-x86_64() { exec ip netns exec "$H" /usr/bin/env qemu-system-x86_64 "$@"; }
tiny_boot "$TMP/vm" -netdev tap,id=n0,ifname=ht-t,script=no,downscript=no \
	-device virtio-net-pci,netdev=n0,mac=$MAC
unset -f qemu-system-x86_64
if ! guestsh --timeout 600 --wait-ready "$TMP/vm/console.sock" >/dev/null 2>&1; then
	fail "tiny guest boots"
	sed 's/^/# /' "$TMP/vm/console.log" | tail -20
	done_testing
	exit 1
fi
ok "tiny guest boots on tap ht-t"
gsh() { guestsh "$TMP/vm/console.sock" "$1"; }	# guestsh's ceiling: 600 s
gsh 'ip link set eth0 up && ip addr add 10.77.0.20/24 dev eth0 && ip route add default via 10.77.0.1' >/dev/null

# probe list inside the guest, in parallel; prints "P addr:port banner|none"
PROBES='p() { r=$(nc -w 10 $1 $2 </dev/null 2>/dev/null | head -n1); echo "P $1:$2 ${r:-none}"; }'
run_probes() {	# run_probes "addr port" ... -> $TMP/g.out
	local cmd="$PROBES;" t
	for t in "$@"; do cmd="$cmd p $t &"; done
	cmd="$cmd wait"
	gsh "$cmd" >"$TMP/g.out" 2>&1
}
got() { awk -v t="$1" '$1 == "P" && $2 == t { print $3 }' "$TMP/g.out" | tr -d '\r'; }
MATRIX=()
expect_g() {	# expect_g WANT ADDR:PORT
	local g
	g=$(got "$2")
	MATRIX+=("$(printf '%-34s -> %-6s -> %s' "${3:-}$2" "$1" "${g:-?}")")
	is "guest: ${3:-}$2 -> $1" "$g" "$1"
}

run_probes "203.0.113.10 80" "10.77.0.1 53"
expect_g none 203.0.113.10:80 "no VM rules yet: "
expect_g none 10.77.0.1:53 "no VM rules yet: "

check "nft_vm_add (allow-host-port tcp/8080)" ns $H "$NFTCTL" add t ht-t $MAC 10.77.0.20 10.77.0.1 24 dns host tcp/8080
run_probes "203.0.113.10 80" "10.77.0.1 53" "10.77.0.1 8080" "10.77.0.1 80" "198.51.100.1 80" \
	"198.51.100.1 8080" "169.254.169.254 80" "192.168.77.10 80" "192.168.77.1 80"
expect_g net 203.0.113.10:80
expect_g none 10.77.0.1:53 "tcp/53 (the forwarder is UDP only): "
expect_g host 10.77.0.1:8080
expect_g none 10.77.0.1:80
expect_g none 198.51.100.1:80
expect_g none 198.51.100.1:8080
expect_g none 169.254.169.254:80
expect_g none 192.168.77.10:80
expect_g none 192.168.77.1:80

# The guest's root changes its MAC, then its IP: nothing gets through
# a guest command: until eth0 is up again (for at most 300 s)
LINK_UP='i=0; until grep -q up /sys/class/net/eth0/operstate || [ $i -ge 3000 ]; do sleep 0.1; i=$((i + 1)); done' 
gsh 'ip link set eth0 down; ip link set eth0 address 52:54:00:77:00:99; ip link set eth0 up; ip route add default via 10.77.0.1 2>/dev/null; '"$LINK_UP"'; true' >/dev/null
run_probes "203.0.113.10 80"
expect_g none 203.0.113.10:80 "spoofed MAC: "
gsh "ip link set eth0 down; ip link set eth0 address $MAC; ip link set eth0 up; ip addr flush dev eth0; ip addr add 10.77.0.99/24 dev eth0; ip route add default via 10.77.0.1; $LINK_UP" >/dev/null
run_probes "203.0.113.10 80" "10.77.0.1 53"
expect_g none 203.0.113.10:80 "spoofed IP: "
expect_g none 10.77.0.1:53 "spoofed IP: "
gsh 'ip addr flush dev eth0; ip addr add 10.77.0.20/24 dev eth0; ip route add default via 10.77.0.1' >/dev/null
run_probes "203.0.113.10 80"
expect_g net 203.0.113.10:80 "own MAC and IP again: "

check "nft_vm_del" ns $H "$NFTCTL" del t
run_probes "203.0.113.10 80"
expect_g none 203.0.113.10:80 "after nft_vm_del: "

diag "matrix from inside the tiny guest (attempt -> expected -> got):"
for m in "${MATRIX[@]}"; do diag "  $m"; done
check "nft_base_remove" ns $H "$NFTCTL" remove
done_testing
