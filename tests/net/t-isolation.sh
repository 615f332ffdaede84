#!/usr/bin/env bash
# Guest isolation (net/nft.c) and port forwards (net/fwd.c), without QEMU:
# network namespaces stand in for the host, two guests (veths whose host
# ends ht-a/ht-b are bridge ports, as taps would be), a tap without rules
# (ht-c), a LAN host and the internet.  Every forbidden path and every
# allowed one is tried from inside a guest as root, first without hutch's
# rules (to show the attack works in this topology), then with them.
# The matrix (attempt -> expected -> got) is printed as "# " lines.
set -u
. "$(dirname "$0")/../lib/tap.sh"
cd "$HUTCH_SRC" || exit 1

NFTCTL=$HUTCH_SRC/build/tests/nftctl
PROBE=$HUTCH_SRC/tests/net/nft_probe.py
if [ "$(id -u)" != 0 ]; then skip "isolation" "needs root (network namespaces)"; done_testing; exit 0; fi
for t in ip nft python3; do
	command -v $t >/dev/null || { skip "isolation" "$t missing"; done_testing; exit 0; }
done
[ -x "$NFTCTL" ] || { fail "build/tests/nftctl missing (make unit)"; done_testing; exit 1; }

P=nft-$$
H=$P-h GA=$P-ga GB=$P-gb GC=$P-gc LAN=$P-lan NET=$P-net
ALL="$H $GA $GB $GC $LAN $NET"
TMP=$(mktemp -d)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	for n in $ALL; do ip netns del "$n" 2>/dev/null; done
	rm -rf "$TMP"
}
trap cleanup EXIT

ns() { local n=$1; shift; ip netns exec "$n" "$@"; }
MACA=52:54:00:77:00:0a MACB=52:54:00:77:00:0b MACC=52:54:00:77:00:0c

setup() {
	local n
	for n in $ALL; do
		ip netns add "$n" || return 1
		ns "$n" ip link set lo up
		ns "$n" sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0
	done
	# The host: a bridge like net/ makes, another address, a LAN and a WAN side.
	# route_localnet is on, as an attacker-friendly host: the rules must hold anyway.
	ns $H sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.route_localnet=1
	ns $H ip link add hutch0 type bridge
	ns $H ip addr add 10.77.0.1/24 dev hutch0
	ns $H ip -6 addr add 2001:db8:77::1/64 dev hutch0 nodad
	ns $H ip link set hutch0 up
	ns $H sysctl -qw net.ipv4.conf.hutch0.route_localnet=1
	ns $H ip link add hostd type veth peer name hostd-p
	ns $H ip addr add 198.51.100.1/32 dev hostd
	ns $H ip link set hostd up; ns $H ip link set hostd-p up
	local g mac addr i=10
	for g in a b c; do
		case $g in a) n=$GA mac=$MACA ;; b) n=$GB mac=$MACB ;; c) n=$GC mac=$MACC ;; esac
		addr=10.77.0.$i
		ns $H ip link add ht-$g type veth peer name eth0 netns "$n"
		ns $H ip link set ht-$g master hutch0 up
		ns "$n" ip link set eth0 address $mac
		ns "$n" ip addr add $addr/24 dev eth0
		# EUI-64 of the MAC: with ipv6 the rules accept only that interface id
		ns "$n" ip -6 addr add "2001:db8:77::5054:ff:fe77:${mac##*:}/64" dev eth0 nodad
		ns "$n" ip link set eth0 up
		ns "$n" ip route add default via 10.77.0.1
		ns "$n" ip -6 route add default via 2001:db8:77::1
		i=$((i + 1))
	done
	ns $H ip link add lan0 type veth peer name eth0 netns $LAN
	ns $H ip addr add 192.168.77.1/24 dev lan0
	ns $H ip link set lan0 up
	ns $LAN ip addr add 192.168.77.10/24 dev eth0
	ns $LAN ip link set eth0 up
	ns $LAN ip route add default via 192.168.77.1
	ns $H ip link add wan0 type veth peer name eth0 netns $NET
	ns $H ip addr add 203.0.113.1/24 dev wan0
	ns $H ip link set wan0 up
	ns $NET ip addr add 203.0.113.10/24 dev eth0
	# Forbidden destinations live "upstream", so only hutch's rules stop them
	for a in 10.99.0.10 172.16.0.10 100.64.0.10 169.254.169.254 192.168.99.10; do
		ns $NET ip addr add $a/32 dev eth0
		ns $H ip route add $a/32 via 203.0.113.10
	done
	ns $NET ip -6 addr add 2001:db8:99::10/64 dev eth0 nodad
	ns $H ip -6 addr add 2001:db8:99::1/64 dev wan0 nodad
	ns $NET ip link set eth0 up
	ns $NET ip -6 route add 2001:db8:77::/64 via 2001:db8:99::1
	ns $H sysctl -qw net.ipv6.conf.all.forwarding=1
	ns $NET ip route add 10.77.0.0/24 via 203.0.113.1	# so the unprotected control run gets answers
	ns $H ip route add default via 203.0.113.10
}

serve() {	# serve NS NAME PORTS...
	local n=$1 name=$2; shift 2
	ip netns exec "$n" python3 "$PROBE" serve "$name" "$TMP/$name.log" "$@" >/dev/null 2>&1 &
	PIDS+=($!)
}
wait_ready() {
	local f
	for f in "$@"; do
		wait_until 120 grep -q ready "$TMP/$f.log" 2>/dev/null || return 1
	done
}
logcount() { grep -cE "$2" "$TMP/$1.log" 2>/dev/null || true; }
# logged NAME REGEX [N]: NAME's listener logged more than N (0) lines matching
logged() { [ "$(logcount "$1" "$2")" -gt "${3:-0}" ]; }

# (background jobs use "ip netns exec" itself, which execs: $! is then the process to kill)
# expect NS WANT SPEC... (WANT = open:NAME | blocked | notopen); one parallel probe run
MATRIX=()
expect() {
	local n=$1; shift
	local specs=() wants=() src=() spec got want
	if [ "$1" = -s ]; then src=(-s "$2"); shift 2; fi
	while [ $# -gt 0 ]; do wants+=("$1"); specs+=("$2"); shift 2; done
	ns "$n" python3 "$PROBE" probe "${src[@]}" -t 2 "${specs[@]}" >"$TMP/probe.out" 2>&1
	local i=0
	for spec in "${specs[@]}"; do
		want=${wants[$i]}
		got=$(awk -v s="$spec" '$1 == s { print $2 }' "$TMP/probe.out")
		MATRIX+=("$(printf '%-4s %-40s -> %-10s -> %s' "${n#$P-}" "$spec${src:+ (src ${src[1]})}" "$want" "$got")")
		case $want in
		blocked) [ "$got" = timeout ] && ok "${n#$P-} $spec blocked" || { fail "${n#$P-} $spec blocked"; diag "got $got"; } ;;
		notopen) [ "${got%%:*}" != open ] && ok "${n#$P-} $spec not reachable" || { fail "${n#$P-} $spec not reachable"; diag "got $got"; } ;;
		*) is "${n#$P-} $spec allowed" "$got" "$want" ;;
		esac
		i=$((i + 1))
	done
}
record() { MATRIX+=("$(printf '%-4s %-40s -> %-10s -> %s' "$1" "$2" "$3" "$4")"); }

( set -e; setup )	# any failing step fails the setup (set -e only holds outside "||")
[ $? -eq 0 ] || { fail "setup of the namespaces"; done_testing; exit 1; }
ok "topology: host bridge hutch0, guests a/b/c on ht-*, lan, internet"
HMAC=$(ns $H cat /sys/class/net/hutch0/address)
HLL=$(ns $H ip -6 -o addr show dev hutch0 scope link | awk '{print $4}' | cut -d/ -f1)

serve $H host 80 53 67 8080 5001
ip netns exec $H python3 "$PROBE" mcast hostm "$TMP/hostm.log" 239.1.1.1 5002 >/dev/null 2>&1 &
PIDS+=($!)
serve $GA ga 80 53 7
serve $GB gb 80 5001
serve $LAN lan 80
serve $NET net 80
wait_ready host hostm ga gb lan net || { fail "listeners ready"; done_testing; exit 1; }
ok "listeners ready"

# ---- control: without hutch's rules the attacks work in this topology ----
expect $GA open:host tcp:10.77.0.1:80 open:host tcp:198.51.100.1:80 open:gb tcp:10.77.0.11:80 open:host tcp:192.168.77.1:80 open:lan tcp:192.168.77.10:80 \
	open:net tcp:169.254.169.254:80 open:host "tcp:[2001:db8:77::1]:80"
ns $GA ip addr add 10.77.0.99/24 dev eth0
expect $GA -s 10.77.0.99 open:lan tcp:192.168.77.10:80
ns $GA python3 "$PROBE" raw eth0 udp $MACA "$HMAC" 10.77.0.10 127.0.0.1 40127 5001
ns $GA python3 "$PROBE" raw eth0 udp 52:54:00:77:00:99 "$HMAC" 10.77.0.10 10.77.0.1 40099 67
ns $GA python3 "$PROBE" bcast 10.77.0.255 5001
ns $GA python3 -c 'import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);[s.sendto(b"m",("239.1.1.1",5002)) for _ in range(3)]'
# each of these arrives (no rules yet): wait for it, however slow the host
wait_until 60 logged hostm '^mcast 10.77.0.10 '
wait_until 60 logged host '^udp 127.0.0.1 40127 5001$|^udp 10.77.0.10 40127 5001$'
wait_until 60 logged host '^udp 10.77.0.10 40099 67$'
wait_until 60 logged gb '^udp 10.77.0.10 [0-9]+ 5001$'
[ "$(logcount hostm '^mcast 10.77.0.10 ')" -gt 0 ] && ok "control: multicast reaches the host without rules" ||
	fail "control: multicast reaches the host without rules"
c=$(logcount host '^udp 127.0.0.1 40127 5001$|^udp 10.77.0.10 40127 5001$')
[ "$c" -gt 0 ] && ok "control: 127.0.0.1 via a forged route reaches the host without rules" ||
	fail "control: 127.0.0.1 via a forged route reaches the host without rules"
[ "$(logcount host '^udp 10.77.0.10 40099 67$')" -gt 0 ] && ok "control: spoofed MAC passes without rules" ||
	fail "control: spoofed MAC passes without rules"
[ "$(logcount gb '^udp 10.77.0.10 [0-9]+ 5001$')" -gt 0 ] && ok "control: broadcast reaches the other guest without rules" ||
	fail "control: broadcast reaches the other guest without rules"
ns $GA ip addr del 10.77.0.99/24 dev eth0
diag "control matrix (no hutch rules):"
for m in "${MATRIX[@]}"; do diag "  $m"; done
MATRIX=()

# ---- install: a host table of its own first, then hutch's ----
ns $H nft 'add table inet hosttable; add chain inet hosttable c { type filter hook input priority 0; policy accept; }; add rule inet hosttable c counter comment "host rule"'
check "nft_base_ensure" ns $H "$NFTCTL" base hutch0 10.77.0.0/24
check "nft_vm_add a (allow-host-port tcp/8080, allow-lan-host 192.168.77.10)" \
	ns $H "$NFTCTL" add a ht-a $MACA 10.77.0.10 10.77.0.1 24 dns host tcp/8080 lan 192.168.77.10
check "nft_vm_add b (no exceptions)" ns $H "$NFTCTL" add b ht-b $MACB 10.77.0.11 10.77.0.1 24 dns
is "nft_vm_list" "$(ns $H "$NFTCTL" list | sort | tr '\n' ' ')" "a b "
check_fails "a second VM with a's address is refused" ns $H "$NFTCTL" add d ht-d 52:54:00:77:00:0d 10.77.0.10 10.77.0.1 24
is "the refused VM left nothing behind" "$(ns $H "$NFTCTL" list | sort | tr '\n' ' ')" "a b "
check "nft_base_ensure again (idempotent)" ns $H "$NFTCTL" base hutch0 10.77.0.0/24
is "base rules not duplicated" "$(ns $H nft list chain inet hutch input | grep -c comment)" 8
is "VMs kept by nft_base_ensure" "$(ns $H "$NFTCTL" list | sort | tr '\n' ' ')" "a b "

# ---- the matrix from guest a ----
expect $GA \
	open:host udp:10.77.0.1:53 \
	blocked tcp:10.77.0.1:53 \
	open:host udp:10.77.0.1:67 \
	open:host tcp:10.77.0.1:8080 \
	open:net tcp:203.0.113.10:80 \
	open:lan tcp:192.168.77.10:80 \
	blocked tcp:10.77.0.1:80 \
	blocked tcp:10.77.0.1:22 \
	blocked udp:10.77.0.1:5001 \
	blocked tcp:198.51.100.1:80 \
	blocked tcp:198.51.100.1:8080 \
	blocked tcp:192.168.77.1:80 \
	blocked tcp:203.0.113.1:80 \
	blocked tcp:10.77.0.11:80 \
	blocked udp:10.77.0.11:5001 \
	blocked tcp:169.254.169.254:80 \
	blocked tcp:10.99.0.10:80 \
	blocked tcp:172.16.0.10:80 \
	blocked tcp:100.64.0.10:80 \
	blocked tcp:192.168.99.10:80 \
	blocked "tcp:[2001:db8:77::1]:80" \
	blocked "tcp:[$HLL%eth0]:80" \
	blocked "tcp:[2001:db8:77::5054:ff:fe77:b]:80"
[ "$(logcount net '^tcp 203.0.113.1 ')" -gt 0 ] && ok "internet sees the guest masqueraded as 203.0.113.1" ||
	fail "internet sees the guest masqueraded as 203.0.113.1"

# ---- guest b has none of a's exceptions ----
expect $GB \
	open:host udp:10.77.0.1:53 \
	open:net tcp:203.0.113.10:80 \
	blocked tcp:10.77.0.1:8080 \
	blocked tcp:192.168.77.10:80 \
	blocked tcp:10.77.0.10:80

# ---- forged frames from guest a (counts against what the control run left in the logs) ----
before=$(logcount host '^udp 0.0.0.0 68 67$')
b_mac=$(logcount host '^udp 10.77.0.10 40099 67$')
b_127=$(logcount host '^udp (127.0.0.1|10.77.0.10) 40127 5001$')
b_bh=$(logcount host '^udp 10.77.0.10 [0-9]+ 5001$')
b_bg=$(logcount gb '^udp 10.77.0.10 [0-9]+ 5001$')
b_mc=$(logcount hostm '^mcast 10.77.0.10 ')
ns $GA python3 "$PROBE" raw eth0 udp $MACA ff:ff:ff:ff:ff:ff 0.0.0.0 255.255.255.255 68 67
ns $GA python3 "$PROBE" raw eth0 udp $MACA "$HMAC" 10.77.0.99 10.77.0.1 40199 67
ns $GA python3 "$PROBE" raw eth0 udp 52:54:00:77:00:99 "$HMAC" 10.77.0.10 10.77.0.1 40099 67
ns $GA python3 "$PROBE" raw eth0 udp $MACA "$HMAC" 10.77.0.10 127.0.0.1 40127 5001
ns $GA python3 "$PROBE" bcast 10.77.0.255 5001
ns $GA python3 "$PROBE" bcast 255.255.255.255 5001
ns $GA python3 -c 'import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);[s.sendto(b"m",("239.1.1.1",5002)) for _ in range(3)]'
# what must arrive: the DHCP discover (sent first), and a last allowed frame
# (DNS to the gateway) sent after the forbidden ones: once the host's
# listener logged it, it has read what came before it
ns $GA python3 "$PROBE" raw eth0 udp $MACA "$HMAC" 10.77.0.10 10.77.0.1 40953 53
wait_until 60 logged host '^udp 0.0.0.0 68 67$' "$before"
wait_until 60 logged host '^udp 10.77.0.10 40953 53$'
got=$(( $(logcount host '^udp 0.0.0.0 68 67$') - before ))
record ga "DHCP 0.0.0.0:68 -> 255.255.255.255:67" allowed "$got received"
[ "$got" -gt 0 ] && ok "DHCP discover from 0.0.0.0 reaches the host" || fail "DHCP discover from 0.0.0.0 reaches the host"
got=$(logcount host '^udp 10.77.0.99 ')
record ga "spoofed source 10.77.0.99 -> gw:67" blocked "$got received"
is "spoofed source IP (raw frame to the allowed DHCP port) dropped" "$got" 0
got=$(( $(logcount host '^udp 10.77.0.10 40099 67$') - b_mac ))
record ga "spoofed MAC 52:54:00:77:00:99 -> gw:67" blocked "$got received"
is "spoofed source MAC dropped" "$got" 0
got=$(( $(logcount host '^udp (127.0.0.1|10.77.0.10) 40127 5001$') - b_127 ))
record ga "127.0.0.1:5001 via forged route" blocked "$got received"
is "127.0.0.1 via a forged route (route_localnet=1 on the host) dropped" "$got" 0
got=$(( $(logcount host '^udp 10.77.0.10 [0-9]+ 5001$') - b_bh ))
record ga "broadcast 10.77.0.255 / 255.255.255.255 :5001 -> host" blocked "$got received"
is "broadcast to the host dropped" "$got" 0
got=$(( $(logcount gb '^udp 10.77.0.10 [0-9]+ 5001$') - b_bg ))
record ga "broadcast -> guest b" blocked "$got received"
is "broadcast to the other guest dropped" "$got" 0
got=$(( $(logcount hostm '^mcast 10.77.0.10 ') - b_mc ))
record ga "multicast 239.1.1.1:5002 -> host" blocked "$got received"
is "multicast to the host dropped" "$got" 0

# Spoofed source with a real address on the guest's NIC (routes and replies work)
ns $GA ip addr add 10.77.0.99/24 dev eth0
expect $GA -s 10.77.0.99 blocked tcp:203.0.113.10:80 blocked tcp:192.168.77.10:80
ns $GA ip addr del 10.77.0.99/24 dev eth0
# Spoofed MAC on the guest's NIC: nothing passes, not even what is allowed
ns $GA ip link set eth0 address 52:54:00:77:00:99
ns $GA ip neigh flush all
expect $GA blocked tcp:203.0.113.10:80 blocked udp:10.77.0.1:53
ns $GA ip link set eth0 address $MACA
ns $GA ip neigh flush all
# ARP claiming guest b's address: the host's neighbour entry keeps b's MAC
ns $H ping -c1 -W2 10.77.0.11 >/dev/null 2>&1
sleep 1.2	# past the neighbour locktime, so an accepted claim would replace the entry
ns $GA python3 "$PROBE" raw eth0 arp $MACA 10.77.0.11 10.77.0.11
arp_dropped() { [ "$(ns $H "$NFTCTL" dump a | awk '/drop ARP with a sender IP/ {print $(NF-3)}')" -gt 0 ] 2>/dev/null; }
wait_until 60 arp_dropped	# the claim reached the bridge and its rule
nb=$(ns $H ip neigh show 10.77.0.11 dev hutch0 | awk '{print $3}')
record ga "ARP reply claiming 10.77.0.11" blocked "host neigh 10.77.0.11 = ${nb:-none}"
[ "$nb" != "$MACA" ] && ok "ARP claiming another guest's IP ignored" || fail "ARP claiming another guest's IP ignored"
arpdrop=$(ns $H "$NFTCTL" dump a | awk '/drop ARP with a sender IP/ {print $(NF-3)}')
[ "${arpdrop:-0}" -gt 0 ] && ok "the ARP spoof hit its drop rule (counter $arpdrop)" || fail "the ARP spoof hit its drop rule"

# ---- a tap without a VM chain passes nothing (fail closed) ----
before=$(logcount host '^udp 0.0.0.0 68 67$')
expect $GC blocked tcp:203.0.113.10:80 blocked udp:10.77.0.1:53 blocked udp:10.77.0.1:67
ns $GC python3 "$PROBE" raw eth0 udp $MACC ff:ff:ff:ff:ff:ff 0.0.0.0 255.255.255.255 68 67
# an allowed frame from guest a, sent after it, arrives: then the host's
# listener has read what came before it
ns $GA python3 "$PROBE" raw eth0 udp $MACA "$HMAC" 10.77.0.10 10.77.0.1 40967 67
wait_until 60 logged host '^udp 10.77.0.10 40967 67$'
is "tap without rules: not even DHCP" "$(( $(logcount host '^udp 0.0.0.0 68 67$') - before ))" 0

# ---- port forwards: 127.0.0.1 only ----
ip netns exec $H "$NFTCTL" fwd 10.77.0.10 tcp/18080:80 udp/18053:53 tcp/18007:7 >"$TMP/fwd.out" 2>&1 &
PIDS+=($!)
wait_until 120 grep -q ready "$TMP/fwd.out"
expect $H open:ga tcp:127.0.0.1:18080 open:ga udp:127.0.0.1:18053 notopen tcp:10.77.0.1:18080 \
	notopen tcp:198.51.100.1:18080
expect $LAN notopen tcp:192.168.77.1:18080
expect $GB notopen tcp:10.77.0.1:18080
is "forward relays 1 MiB both ways with half-close" "$(ns $H python3 "$PROBE" echo 127.0.0.1 18007 1048576)" "echo ok 1048576"
is "forwards listen on 127.0.0.1 only" "$(ns $H ss -Hltnu | awk '$5 ~ /:180(80|53|07)$/ {print $5}' | sort | tr '\n' ' ')" \
	"127.0.0.1:18007 127.0.0.1:18053 127.0.0.1:18080 "

diag "isolation matrix (attempt -> expected -> got):"
for m in "${MATRIX[@]}"; do diag "  $m"; done
MATRIX=()

# ---- removing one VM keeps the other ----
check "nft_vm_del a" ns $H "$NFTCTL" del a
check "nft_vm_del a again (missing is fine)" ns $H "$NFTCTL" del a
is "nft_vm_list after del" "$(ns $H "$NFTCTL" list | tr '\n' ' ')" "b "
is "no vm-a left in the ruleset" "$(ns $H nft list ruleset | grep -c -- '-a\b')" 0
expect $GA blocked tcp:203.0.113.10:80 blocked udp:10.77.0.1:53
expect $GB open:net tcp:203.0.113.10:80
is "nft_dump of a removed VM is empty" "$(ns $H "$NFTCTL" dump a | wc -l)" 0
ns $H "$NFTCTL" dump b >"$TMP/dump"
grep -q 'vm-b .*drop daddr 169.254.0.0/16' "$TMP/dump" && ok "nft_dump b shows its rules with counters" || fail "nft_dump b shows its rules"
grep '^' "$TMP/dump" | sed 's/^/#   /' | head -40
is "host table untouched by hutch" "$(ns $H nft list table inet hosttable | grep -c 'comment "host rule"')" 1

# ---- the host flushes its ruleset: noticed, then repaired ----
check "nft_vm_add a again" ns $H "$NFTCTL" add a ht-a $MACA 10.77.0.10 10.77.0.1 24 dns
ip netns exec $H "$NFTCTL" watch 30 >"$TMP/watch.out" 2>&1 &
wpid=$!
PIDS+=("$wpid")
wait_until 120 grep -q watching "$TMP/watch.out"
ns $H nft flush ruleset
wait_until 25 grep -q hit "$TMP/watch.out"	# nftctl watches for 30 s
is "nft_watch_handle notices the flush" "$(grep -o 'hit base=[0-9]' "$TMP/watch.out")" "hit base=0"
is "nft_base_present after flush" "$(ns $H "$NFTCTL" present)" no
is "nft_vm_present a after flush" "$(ns $H "$NFTCTL" present a)" no
check "repair: nft_base_ensure" ns $H "$NFTCTL" base hutch0 10.77.0.0/24
check "repair: re-add a" ns $H "$NFTCTL" add a ht-a $MACA 10.77.0.10 10.77.0.1 24 dns
is "nft_base_present after repair" "$(ns $H "$NFTCTL" present)" yes
is "nft_vm_present a after repair" "$(ns $H "$NFTCTL" present a)" yes
expect $GA blocked tcp:169.254.169.254:80 blocked tcp:10.77.0.1:80 open:net tcp:203.0.113.10:80
expect $GB blocked tcp:203.0.113.10:80	# b not re-added: its tap passes nothing
diag "after repair:"
for m in "${MATRIX[@]}"; do diag "  $m"; done
MATRIX=()

# ---- per-VM options: ipv6 and isolation off ----
check "nft_vm_add b with ipv6" ns $H "$NFTCTL" add b ht-b $MACB 10.77.0.11 10.77.0.1 24 dns ipv6
expect $GB open:net "tcp:[2001:db8:99::10]:80" blocked "tcp:[2001:db8:77::1]:80" open:net tcp:203.0.113.10:80 \
	blocked tcp:169.254.169.254:80
expect $GA blocked "tcp:[2001:db8:99::10]:80"	# a has no ipv6
check "nft_vm_add b with isolation off" ns $H "$NFTCTL" add b ht-b $MACB 10.77.0.11 10.77.0.1 24 noiso
expect $GB open:host tcp:10.77.0.1:80 open:lan tcp:192.168.77.10:80 open:net tcp:169.254.169.254:80 \
	blocked "tcp:[2001:db8:99::10]:80"
ns $GB ip link set eth0 address 52:54:00:77:00:98
ns $GB ip neigh flush all
expect $GB blocked tcp:203.0.113.10:80	# anti-spoofing stays with isolation off
ns $GB ip link set eth0 address $MACB
diag "per-VM options:"
for m in "${MATRIX[@]}"; do diag "  $m"; done
MATRIX=()

# ---- remove everything: nothing of hutch remains, the host's tables stay ----
ns $H nft 'add table inet hosttable2; add chain inet hosttable2 c { type filter hook forward priority 0; policy accept; }'
check_fails "nft_base_remove while b has rules is refused" ns $H "$NFTCTL" remove
check "nft_vm_del a, b" ns $H "$NFTCTL" del a
check "nft_vm_del b" ns $H "$NFTCTL" del b
check "nft_base_remove" ns $H "$NFTCTL" remove
check "nft_base_remove again (missing is fine)" ns $H "$NFTCTL" remove
is "nothing of hutch in nft list ruleset" "$(ns $H nft list ruleset | grep -c hutch)" 0
is "the host's table survives" "$(ns $H nft list tables | grep -c hosttable2)" 1
is "nft_vm_list with no tables" "$(ns $H "$NFTCTL" list | wc -l)" 0

done_testing
