#!/usr/bin/env bash
# NAT networking end to end with real QEMU (TCG) and the tiny guest
# (hutch.net=dhcp): a "host" namespace runs the net extension in a minimal
# supervisor (net_helper vm: prepare -> QEMU with the tap fd -> teardown),
# with an uplink veth to an "internet" namespace (203.0.113.0/24) that has an
# HTTP server and a DNS server.  The guest takes its lease, resolves a name
# through the forwarder on the gateway, fetches a page; two VMs get
# different addresses; after a halt, and after kill -9 + gc, no ht-* link,
# bridge or `inet hutch` table remains.
# The server must see the masqueraded uplink address; rules are repaired
# after `nft flush ruleset`; a forward reaches the guest.  (A build without
# the nftables code gets a route back instead of NAT and skips those.)
# tests/net/t-nat-up.sh covers the same through `hutch up`/`halt`/`gc`.
source "$(dirname "$0")/../lib/tap.sh"
source "$HUTCH_SRC/tests/lib/guest.sh"
H=$HUTCH_SRC/build/tests/net_helper
DNSD=$HUTCH_SRC/tests/helpers/net_dns_server.py
if [ "$(id -u)" -ne 0 ]; then skip "NAT with a tiny guest" "needs root"; done_testing; exit 0; fi
for t in ip qemu-system-x86_64 python3; do
	command -v $t >/dev/null || { skip "NAT with a tiny guest" "$t missing"; done_testing; exit 0; }
done
[ -x "$H" ] || { fail "net_helper built (make unit)"; done_testing; exit 1; }
if ! guest_tiny_build; then fail "make tiny"; done_testing; exit 1; fi

HN=net-nh-$$ IN=net-ni-$$
TMP=$(mktemp -d)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for f in "$TMP"/vms/*/state.json; do
		[ -f "$f" ] || continue
		q=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("qemu_pid",""))' "$f" 2>/dev/null)
		[ -n "$q" ] && kill -9 "$q" 2>/dev/null
	done
	wait 2>/dev/null
	ip netns del "$HN" 2>/dev/null; ip netns del "$IN" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
ip netns add "$HN" && ip netns add "$IN" || { fail "namespaces"; done_testing; exit 1; }
hn() { ip netns exec "$HN" env HUTCH_BRIDGE=hb0 HUTCH_SUBNET=10.77.0.1/24 HUTCH_RESOLV_CONF="$TMP/resolv.conf" "$@"; }
ip -n "$HN" link set lo up; ip -n "$IN" link set lo up
ip link add up0 netns "$HN" type veth peer name eth0 netns "$IN"
ip -n "$HN" addr add 203.0.113.1/24 dev up0; ip -n "$HN" link set up0 up
ip -n "$IN" addr add 203.0.113.10/24 dev eth0; ip -n "$IN" link set eth0 up
ip -n "$HN" route add default via 203.0.113.10
printf 'nameserver 203.0.113.10\n' >"$TMP/resolv.conf"
mkdir -p "$TMP/www" && echo "hello from the internet" >"$TMP/www/hello.txt"
(cd "$TMP/www" && exec ip netns exec "$IN" python3 -m http.server --bind 203.0.113.10 8000) >"$TMP/http.log" 2>&1 &
PIDS+=($!)
ip netns exec "$IN" python3 "$DNSD" 203.0.113.10 53 www.hutch.test=203.0.113.10 >"$TMP/dns.log" 2>&1 &
PIDS+=($!)
links() { hn ip -br link | awk '{print $1}' | grep -E '^(ht-|hb0)' | sed 's/@.*//' | sort | tr '\n' ' '; }
state_ip() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("net",{}).get("ip",""))' "$TMP/vms/$1/state.json" 2>/dev/null; }

start_vm() {	# name
	# ip netns exec and env exec: $! is net_helper itself, so signals reach it
	ip netns exec "$HN" env HUTCH_BRIDGE=hb0 HUTCH_SUBNET=10.77.0.1/24 HUTCH_RESOLV_CONF="$TMP/resolv.conf" \
		NET_HELPER_FORWARD="${FORWARD:-}" "$H" vm "$TMP/vms/$1" "$1" "$TINY_KERNEL" "$TINY_INITRD" >"$TMP/$1.out" 2>&1 &
	PIDS+=($!)
	eval "SV_$1=$!"
}
# leased NAME: state.json has net.ip (the supervisor saw the ACK) and the
# guest printed it; status 2 (ending the wait) if the VM went down
leased() {
	[ -n "$(state_ip "$1")" ] && grep -q 'hutch-tiny: lease' "$TMP/vms/$1/console.sock.log" 2>/dev/null && return 0
	grep -q '^down' "$TMP/$1.out" && return 2
	return 1
}
wait_lease() {	# name
	local end=$((SECONDS + 600)) rc
	while :; do
		leased "$1"; rc=$?
		[ $rc = 0 ] && return 0
		[ $rc = 2 ] || [ $SECONDS -ge $end ] && return 1
		sleep 0.25
	done
}

FORWARD=8080:80 start_vm a
if wait_lease a; then ok "VM a took a DHCP lease"; else
	fail "VM a took a DHCP lease"; sed 's/^/#   /' "$TMP/a.out"; tail -20 "$TMP/vms/a/console.sock.log" 2>/dev/null | sed 's/^/#   /'
	done_testing; exit 1
fi
ip_a=$(state_ip a)
is "VM a's address recorded in state" "$ip_a" "10.77.0.2"
grep -q "hutch-tiny: lease eth0 10.77.0.2/24 router 10.77.0.1 dns 10.77.0.1" "$TMP/vms/a/console.sock.log" \
	&& ok "guest configured address, router and DNS" || fail "guest configured address, router and DNS"

nat=0
if hn nft list table inet hutch >/dev/null 2>&1; then nat=1; else
	diag "no inet hutch table (nftables stubs): routing back to the bridge subnet instead of NAT"
	ip -n "$IN" route add 10.77.0.0/24 via 203.0.113.1
fi
con="$TMP/vms/a/console.sock"
out=$(guestsh "$con" 'nslookup www.hutch.test' 2>&1)
grep -q '203.0.113.10' <<<"$out" && ok "guest resolves a name through the gateway's forwarder" \
	|| { fail "guest resolves a name through the gateway's forwarder"; sed 's/^/#   /' <<<"$out"; }
out=$(guestsh "$con" 'wget -O /tmp/h http://www.hutch.test:8000/hello.txt >/dev/null 2>&1; cat /tmp/h' 2>&1)
is "guest fetches a page by name from the internet namespace" "$(tr -d '\r' <<<"$out")" "hello from the internet"
if [ $nat = 1 ]; then
	grep -q '^203.0.113.1 ' "$TMP/http.log" && ok "the server saw the masqueraded uplink address" \
		|| { fail "the server saw the masqueraded uplink address"; sed 's/^/#   /' "$TMP/http.log"; }
else
	skip "the server saw the masqueraded uplink address" "nftables code not linked in this build"
fi

if [ $nat = 1 ]; then
	# someone flushes the host's ruleset: the supervisor puts hutch's rules back
	hn nft flush ruleset
	wait_until 120 hn nft list table inet hutch >/dev/null 2>&1
	hn nft list table inet hutch >/dev/null 2>&1 && ok "rules restored after nft flush ruleset" || fail "rules restored after nft flush ruleset"
	out=$(guestsh "$con" 'rm -f /tmp/h; wget -O /tmp/h http://www.hutch.test:8000/hello.txt >/dev/null 2>&1; cat /tmp/h' 2>&1)
	is "the guest still reaches the internet after the repair" "$(tr -d '\r' <<<"$out")" "hello from the internet"
	# forward tcp/8080:80 -> host 127.0.0.1:8080 reaches the guest's port 80
	# (net/fwd.c is pulled into net_helper only by a strong reference: see net_sv.c)
	if grep -q 'port forwards are not supported' "$TMP/a.out"; then
		skip "forward 127.0.0.1:8080 -> guest:80" "net/fwd.c not linked into net_helper"
	else
		# (returns once httpd listens: port 0050, state 0A, in /proc/net/tcp
		# or tcp6 as busybox listens dual-stack; for at most 300 s)
		guestsh "$con" 'mkdir -p /www && echo from-the-guest >/www/index.html && httpd -p 80 -h /www; i=0; until grep -qs ":0050 [0-9A-F:]* 0A" /proc/net/tcp /proc/net/tcp6 || [ $i -ge 3000 ]; do sleep 0.1; i=$((i + 1)); done' >/dev/null 2>&1
		out=$(hn python3 -c 'import urllib.request; print(urllib.request.urlopen("http://127.0.0.1:8080/index.html", timeout=60).read().decode().strip())' 2>&1)
		is "forward 127.0.0.1:8080 -> guest:80" "$out" "from-the-guest"
	fi
else
	skip "rules restored after nft flush ruleset" "nftables code not linked in this build"
	skip "forward 127.0.0.1:8080 -> guest:80" "nftables/fwd code not linked in this build"
fi

start_vm b
if wait_lease b; then ok "VM b took a DHCP lease"; else fail "VM b took a DHCP lease"; sed 's/^/#   /' "$TMP/b.out"; fi
ip_b=$(state_ip b)
[ -n "$ip_b" ] && [ "$ip_b" != "$ip_a" ] && ok "two VMs, two addresses ($ip_a, $ip_b)" || fail "two VMs, two addresses ($ip_a, $ip_b)"
is "two taps on the bridge" "$(hn "$H" list ht- hb0 | wc -l)" "2"

# halt VM a (its supervisor tears down): its tap goes, the bridge stays for b
kill -TERM "$SV_a"; wait "$SV_a" 2>/dev/null
is "after VM a stops: only b's tap and the bridge" "$(links | wc -w)" "2"
[ -z "$(state_ip a)" ] && ok "no stale address for a stopped VM" || fail "no stale address for a stopped VM"

# kill -9 VM b's supervisor and its QEMU (as `hutch gc` does with a dead supervisor's QEMU), then gc
q=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["qemu_pid"])' "$TMP/vms/b/state.json")
kill -9 "$SV_b" "$q"; wait "$SV_b" 2>/dev/null
wait_until 120 gone "$q"
check "gc after kill -9" hn "$H" gc "$TMP/vms/b"
is "no ht-* link and no bridge left" "$(links)" ""
hn nft list table inet hutch >/dev/null 2>&1 && fail "no inet hutch table left" || ok "no inet hutch table left"
done_testing
