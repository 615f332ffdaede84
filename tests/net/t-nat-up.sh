#!/usr/bin/env bash
# NAT networking through the real CLI and supervisor: `hutch up` of the tiny
# guest (hutch.net=dhcp) with network mode nat, inside a namespace with an
# uplink to an "internet" namespace (203.0.113.0/24: HTTP and DNS servers).
# up returns once the lease is taken; `hutch ip` reports it; the guest
# resolves a name through the gateway's forwarder and fetches a page, NATed;
# `hutch inspect` shows the isolated port; two VMs get two addresses; after
# `hutch halt`, and after kill -9 + `hutch gc`, no ht-* link, hutch0 bridge
# or `inet hutch` table remains.  Skips while the core's `up` is not in the build.
source "$(dirname "$0")/../lib/tap.sh"
source "$HUTCH_SRC/tests/lib/guest.sh"
DNSD=$HUTCH_SRC/tests/helpers/net_dns_server.py
if [ "$(id -u)" -ne 0 ]; then skip "hutch up in mode nat" "needs root"; done_testing; exit 0; fi
for t in ip qemu-system-x86_64 python3; do
	command -v $t >/dev/null || { skip "hutch up in mode nat" "$t missing"; done_testing; exit 0; }
done
if "$HUTCH" -C / up 2>&1 | grep -q 'not implemented'; then
	skip "hutch up in mode nat" "'hutch up' is not in this build yet"; done_testing; exit 0
fi
if ! guest_tiny_build; then fail "make tiny"; done_testing; exit 1; fi

HN=net-uh-$$ IN=net-ui-$$
T=$(mktemp -d /tmp/net-up.XXXXXX)
export XDG_DATA_HOME=$T/data XDG_CACHE_HOME=$T/cache
unset HUTCH_DIR HUTCH_BRIDGE HUTCH_SUBNET
PIDS=()
# jget FILE KEY...: a member of a JSON file, or nothing
jget() { python3 -c 'import json,sys
try:
    v = json.load(open(sys.argv[1]))
    for k in sys.argv[2:]: v = v[k]
    print(v)
except Exception: pass' "$@"; }
cleanup() {
	local p d
	for d in "$XDG_DATA_HOME"/hutch/vms/*; do
		for p in $(jget "$d/state.json" supervisor_pid) $(jget "$d/state.json" qemu_pid); do
			grep -qs "$T" "/proc/$p/cmdline" && kill -9 "$p" 2>/dev/null
		done
	done
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	ip netns del "$HN" 2>/dev/null; ip netns del "$IN" 2>/dev/null
	rm -rf "$T" "/etc/netns/$HN"
}
trap cleanup EXIT
ip netns add "$HN" && ip netns add "$IN" || { fail "namespaces"; done_testing; exit 1; }
hn() { ip netns exec "$HN" env HUTCH_RESOLV_CONF="$T/resolv.conf" "$@"; }
ip -n "$HN" link set lo up; ip -n "$IN" link set lo up
ip link add up0 netns "$HN" type veth peer name eth0 netns "$IN"
ip -n "$HN" addr add 203.0.113.1/24 dev up0; ip -n "$HN" link set up0 up
ip -n "$IN" addr add 203.0.113.10/24 dev eth0; ip -n "$IN" link set eth0 up
ip -n "$HN" route add default via 203.0.113.10
printf 'nameserver 203.0.113.10\n' >"$T/resolv.conf"
# the supervisor gets a minimal environment (no HUTCH_RESOLV_CONF): give the
# namespace its own /etc/resolv.conf, which `ip netns exec` bind-mounts
mkdir -p "/etc/netns/$HN" && cp "$T/resolv.conf" "/etc/netns/$HN/resolv.conf"
mkdir -p "$T/www" && echo "hello from the internet" >"$T/www/hello.txt"
(cd "$T/www" && exec ip netns exec "$IN" python3 -m http.server --bind 203.0.113.10 8000) >"$T/http.log" 2>&1 &
PIDS+=($!)
ip netns exec "$IN" python3 "$DNSD" 203.0.113.10 53 www.hutch.test=203.0.113.10 >"$T/dns.log" 2>&1 &
PIDS+=($!)
links() { hn ip -br link | awk '{print $1}' | grep -E '^(ht-|hutch0)' | sed 's/@.*//' | sort | tr '\n' ' '; }

project() {	# name
	mkdir -p "$T/$1"
	cat >"$T/$1/hutch.yaml" <<Y
name: $1
cpus: 1
memory: 256
accel: tcg
kernel: {path: $TINY_KERNEL, initrd: $TINY_INITRD, cmdline: "console=ttyS0 quiet no_timer_check hutch.net=dhcp"}
network: {mode: nat}
timeouts: {boot: 600, shutdown: 300}
Y
	printf '#cloud-config\n' >"$T/$1/cloud-init.yml"	# no SSH key: up does not wait for SSH
}
project neta
project netb

if hn timeout 900 "$HUTCH" -C "$T/neta" up 2>"$T/up-a.err"; then ok "hutch up (mode nat) returns"; else
	fail "hutch up (mode nat) returns"; sed 's/^/#   /' "$T/up-a.err"; tail -20 "$XDG_DATA_HOME/hutch/vms/neta/supervisor.log" 2>/dev/null | sed 's/^/#   /'
	done_testing; exit 1
fi
is "hutch ip reports the lease" "$(hn "$HUTCH" -C "$T/neta" ip 2>/dev/null)" "10.77.0.2"
nat=0
if hn nft list table inet hutch >/dev/null 2>&1; then nat=1; else
	diag "no inet hutch table in this build: routing back to the bridge subnet instead of NAT"
	ip -n "$IN" route add 10.77.0.0/24 via 203.0.113.1
fi
con=$XDG_DATA_HOME/hutch/vms/neta/console.sock
out=$(guestsh "$con" 'nslookup www.hutch.test' 2>&1)
grep -q '203.0.113.10' <<<"$out" && ok "guest resolves through the gateway's forwarder" \
	|| { fail "guest resolves through the gateway's forwarder"; sed 's/^/#   /' <<<"$out"; }
out=$(guestsh "$con" 'wget -O /tmp/h http://www.hutch.test:8000/hello.txt >/dev/null 2>&1; cat /tmp/h' 2>&1)
is "guest fetches a page by name" "$(tr -d '\r' <<<"$out")" "hello from the internet"
if [ $nat = 1 ]; then
	grep -q '^203.0.113.1 ' "$T/http.log" && ok "the server saw the masqueraded uplink address" || fail "the server saw the masqueraded uplink address"
else
	skip "the server saw the masqueraded uplink address" "nftables code not in this build"
fi
hn "$HUTCH" -C "$T/neta" inspect 2>&1 | grep -q 'port *isolated' && ok "inspect shows the isolated port" || fail "inspect shows the isolated port"

if hn timeout 900 "$HUTCH" -C "$T/netb" up 2>"$T/up-b.err"; then ok "second VM up"; else fail "second VM up"; sed 's/^/#   /' "$T/up-b.err"; fi
ip_b=$(hn "$HUTCH" -C "$T/netb" ip 2>/dev/null)
is "second VM, second address" "$ip_b" "10.77.0.3"

check "hutch halt" hn timeout 600 "$HUTCH" -C "$T/neta" halt
is "after halt: b's tap and the bridge remain" "$(links | wc -w)" "2"
[ -z "$(hn "$HUTCH" -C "$T/neta" ip 2>/dev/null)" ] && ok "no address reported for a halted VM" || fail "no address reported for a halted VM"

vb=$XDG_DATA_HOME/hutch/vms/netb
sp=$(jget "$vb/state.json" supervisor_pid); qp=$(jget "$vb/state.json" qemu_pid)
kill -9 "$sp"
wait_until 120 gone "$qp"
check "hutch gc after kill -9" hn timeout 300 "$HUTCH" gc
is "no ht-* link and no bridge left" "$(links)" ""
hn nft list table inet hutch >/dev/null 2>&1 && fail "no inet hutch table left" || ok "no inet hutch table left"
done_testing
