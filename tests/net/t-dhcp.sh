#!/usr/bin/env bash
# DHCP and DNS as a guest sees them: a "host" namespace holds hutch's bridge,
# the responder and the DNS forwarder (net_helper serve, the same code as
# the supervisor); two "guest" namespaces behind veth bridge ports run
# busybox udhcpc and nslookup.  Everything lives in namespaces named net-*.
source "$(dirname "$0")/../lib/tap.sh"
H=$HUTCH_SRC/build/tests/net_helper
DNSD=$HUTCH_SRC/tests/helpers/net_dns_server.py
if [ "$(id -u)" -ne 0 ]; then skip "DHCP in namespaces" "needs root"; done_testing; exit 0; fi
for t in ip busybox python3; do
	command -v $t >/dev/null || { skip "DHCP in namespaces" "$t missing"; done_testing; exit 0; }
done
[ -x "$H" ] || { fail "net_helper built (make unit)"; done_testing; exit 1; }

S=net-dh-$$ G1=net-dg1-$$ G2=net-dg2-$$
TMP=$(mktemp -d)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	ip netns del "$S" 2>/dev/null; ip netns del "$G1" 2>/dev/null; ip netns del "$G2" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
ip netns add "$S" && ip netns add "$G1" && ip netns add "$G2" || { fail "namespaces"; done_testing; exit 1; }
ins() { ip netns exec "$S" "$@"; }
ins ip link set lo up
MAC1=52:54:00:00:aa:01 MAC2=52:54:00:00:aa:02

check "bridge created (net_bridge_ensure)" ins "$H" bridge hb0 10.77.0.1/24
for i in 1 2; do
	g=G$i; g=${!g}; m=MAC$i; m=${!m}
	ip link add "vp$i" netns "$S" type veth peer name eth0 netns "$g"
	ip -n "$g" link set eth0 address "$m"
	ip -n "$g" link set lo up
	ip -n "$g" link set eth0 up
	check "port vp$i attached and isolated" ins "$H" attach "vp$i" hb0 "$m"
done

# upstream DNS for the forwarder, in the host namespace
printf 'nameserver 127.0.0.1\n' >"$TMP/resolv.conf"
ip netns exec "$S" python3 "$DNSD" 127.0.0.1 53 hutch.test=203.0.113.7 >"$TMP/dnsd.log" 2>&1 &
PIDS+=($!)
ip netns exec "$S" env HUTCH_RESOLV_CONF="$TMP/resolv.conf" "$H" serve vp1 hb0 10.77.0.1/24 $MAC1 10.77.0.2 guest-one >"$TMP/serve1.log" 2>&1 &
PIDS+=($!)
ip netns exec "$S" env HUTCH_RESOLV_CONF="$TMP/resolv.conf" "$H" serve vp2 hb0 10.77.0.1/24 $MAC2 10.77.0.3 guest-two >"$TMP/serve2.log" 2>&1 &
PIDS+=($!)
servers_ready() { grep -q serving "$TMP/serve1.log" && grep -q serving "$TMP/serve2.log" && grep -q ready "$TMP/dnsd.log"; }
wait_until 120 servers_ready

cat >"$TMP/script" <<'SH'
#!/bin/sh
# udhcpc event script: record what the server gave, configure the interface
[ "$1" = bound ] || [ "$1" = renew ] || exit 0
env | grep -E '^(ip|router|dns|subnet|hostname|mtu|lease|broadcast|serverid)=' | sort >"$OUT"
ip addr add "$ip/$mask" dev "$interface"
ip route add default via "$router"
SH
chmod +x "$TMP/script"

for i in 1 2; do
	g=G$i; g=${!g}
	if ip netns exec "$g" env OUT="$TMP/lease$i" timeout 120 busybox udhcpc -i eth0 -f -q -n -t 20 -T 3 \
		-s "$TMP/script" >"$TMP/udhcpc$i.log" 2>&1; then
		ok "guest $i got a lease with udhcpc"
	else
		fail "guest $i got a lease with udhcpc"; sed 's/^/#   /' "$TMP/udhcpc$i.log" "$TMP/serve$i.log"
	fi
done
l1=$(cat "$TMP/lease1" 2>/dev/null)
is "guest 1 address" "$(grep '^ip=' <<<"$l1")" "ip=10.77.0.2"
is "guest 2 address differs" "$(grep '^ip=' "$TMP/lease2" 2>/dev/null)" "ip=10.77.0.3"
is "router is the bridge" "$(grep '^router=' <<<"$l1")" "router=10.77.0.1"
is "DNS is the bridge" "$(grep '^dns=' <<<"$l1" | tr -d ' ')" "dns=10.77.0.1"
is "netmask" "$(grep '^subnet=' <<<"$l1")" "subnet=255.255.255.0"
is "hostname is the VM name" "$(grep '^hostname=' <<<"$l1")" "hostname=guest-one"
is "MTU" "$(grep '^mtu=' <<<"$l1")" "mtu=1500"
is "lease time" "$(grep '^lease=' <<<"$l1")" "lease=3600"
is "server id" "$(grep '^serverid=' <<<"$l1")" "serverid=10.77.0.1"
grep -q '^ack 10.77.0.2' "$TMP/serve1.log" && ok "responder saw its ACK" || fail "responder saw its ACK"

# DNS through the forwarder on the gateway, from both guests (two forwarders share gw:53)
for i in 1 2; do
	g=G$i; g=${!g}
	out=$(ip netns exec "$g" timeout 60 busybox nslookup hutch.test 10.77.0.1 2>&1)
	if grep -q 203.0.113.7 <<<"$out"; then ok "guest $i resolves hutch.test through the gateway"
	else fail "guest $i resolves hutch.test through the gateway"; sed 's/^/#   /' <<<"$out"; fi
done
out=$(ip netns exec "$G1" timeout 20 busybox nslookup nosuch.test 10.77.0.1 2>&1)
grep -q 203.0.113 <<<"$out" && fail "unknown name gets no address" || ok "unknown name gets no address"
# no open resolver: a client outside the subnet gets nothing
ip -n "$S" link add vx type veth peer name vy
ip -n "$S" addr add 192.0.2.1/24 dev vx; ip -n "$S" link set vx up; ip -n "$S" link set vy up
ip -n "$S" addr add 192.0.2.2/24 dev vy
out=$(ins timeout 300 python3 - <<'PY'	# python starts slowly on a loaded host
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("192.0.2.2", 0)); s.settimeout(3)
q = bytes.fromhex("abcd01000001000000000000") + b"\x05hutch\x04test\x00\x00\x01\x00\x01"
s.sendto(q, ("10.77.0.1", 53))
try:
    s.recv(512); print("answered")
except OSError:
    print("silent")
PY
)
is "no answer to a source outside the bridge subnet" "$out" "silent"

# bridge port isolation: guests reach the gateway, not each other
check "guest 1 reaches the gateway" ip netns exec "$G1" busybox ping -c 1 -W 10 10.77.0.1
check_fails "guest 1 cannot reach guest 2 (isolated ports)" ip netns exec "$G1" busybox ping -c 1 -W 2 10.77.0.3

# a foreign MAC gets nothing: guest 1 with another MAC
ip -n "$G1" addr flush dev eth0
ip -n "$G1" link set eth0 down; ip -n "$G1" link set eth0 address 52:54:00:00:aa:99; ip -n "$G1" link set eth0 up
check_fails "a MAC that is not the VM's gets no lease" \
	ip netns exec "$G1" env OUT="$TMP/lease-foreign" timeout 30 busybox udhcpc -i eth0 -f -q -n -t 2 -T 1 -s "$TMP/script"
# guest 2 asking for guest 1's address still gets only its own
ip -n "$G2" addr flush dev eth0
ip netns exec "$G2" env OUT="$TMP/lease-again" timeout 120 busybox udhcpc -i eth0 -f -q -n -t 20 -T 3 -r 10.77.0.2 \
	-s "$TMP/script" >/dev/null 2>&1
is "asking for another VM's address yields the VM's own" "$(grep '^ip=' "$TMP/lease-again" 2>/dev/null)" "ip=10.77.0.3"
done_testing
