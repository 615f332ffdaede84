#!/usr/bin/env bash
# Guest isolation through the real product: two `hutch up` VMs (tiny guest,
# network mode nat, TCG) in a "host" namespace with an uplink to an
# "internet" namespace (203.0.113.0/24, plus the forbidden ranges 10/8,
# 172.16/12, 100.64/10 and 169.254.169.254 routed there, so only hutch's
# rules stop them) and a "LAN" namespace (192.168.77.0/24).  Listeners on
# the host side answer with their name.  From inside VM A, as root, every
# forbidden path and every allowed one is tried: the host's ports on the
# gateway, uplink and loopback (forged route) addresses, the metadata
# address, the LAN, the private ranges, VM B, IPv6, broadcast/multicast,
# spoofed source IP (VM B's and a free one) and MAC; then VM A's
# allow-host-port / allow-lan-host exceptions and the internet and DNS.
# The host is made attacker-friendly (route_localnet=1 and IPv6 on the
# bridge, broadcast echo answered): the rules must hold anyway.
# Then: forward tcp/8080:80 reaches A from the host's 127.0.0.1 only,
# `hutch inspect` lists A's rules, halting A removes its rules and not B's
# and keeps the gateway's MAC (B keeps working),
# `nft flush ruleset` is repaired by B's supervisor, kill -9 of B's
# supervisor + `hutch gc` leaves no table, tap or bridge.
# The counters of hutch's drop rules show the attempts reached them.
# The matrix (attempt | expected | got) is printed as "# " lines.
# ISOUP_WG=1 (tests/net/t-wg-isolation.sh): VM A has a wireguard.conf whose
# peer (wireguard-go) is the "internet" namespace: the same matrix must hold
# with A's traffic in the tunnel, and none of A's packets leave by the uplink.
# HUTCH_TEST_AS_USER=1 (tests/net/t-isolation-up-user.sh): hutch runs as an
# unprivileged user through a test copy of hutch-helper; QEMU then runs as
# that user with no capabilities, and the helper's registry ends up empty.
set -u
source "$(dirname "$0")/../lib/tap.sh"
source "$HUTCH_SRC/tests/lib/guest.sh"
source "$HUTCH_SRC/tests/lib/priv.sh"
DNSD=$HUTCH_SRC/tests/helpers/net_dns_server.py
PROBE=$HUTCH_SRC/tests/net/nft_probe.py
if [ "$(id -u)" -ne 0 ]; then skip "isolation through hutch up" "needs root"; done_testing; exit 0; fi
for t in ip nft qemu-system-x86_64 python3; do
	command -v $t >/dev/null || { skip "isolation through hutch up" "$t missing"; done_testing; exit 0; }
done
if "$HUTCH" -C / up 2>&1 | grep -q 'not implemented'; then
	skip "isolation through hutch up" "'hutch up' is not in this build yet"; done_testing; exit 0
fi
if ! guest_tiny_build; then fail "make tiny"; done_testing; exit 1; fi

HN=isoup-h-$$ IN=isoup-i-$$ LN=isoup-l-$$
T=$(mktemp -d /tmp/isoup.XXXXXX)
export XDG_DATA_HOME=$T/data XDG_CACHE_HOME=$T/cache HUTCH_RUN_DIR=$T/run
unset HUTCH_DIR HUTCH_BRIDGE HUTCH_SUBNET HUTCH_HELPER
PIDS=() ASU=() U=
if [ -n "${HUTCH_TEST_AS_USER:-}" ]; then
	[ -x "$HUTCH_SRC/hutch-helper" ] || { skip "isolation as a user" "hutch-helper not built"; done_testing; exit 0; }
	U=htiso$$
	chmod 755 "$T"
	if ! priv_init "$T/priv" || ! priv_user "$U"; then
		fail "a test user and a test copy of hutch-helper"; sed 's/^/#   /' "$T/priv/setup.log"
		priv_fini; rm -rf "$T"; done_testing; exit 1
	fi
	priv_argv "$U"
	ASU=("${PRIV_ARGV[@]}")
	export XDG_DATA_HOME=$PRIV_DIR/home-$U/data XDG_CACHE_HOME=$PRIV_DIR/home-$U/cache
	diag "hutch runs as $U (uid $(id -u "$U")) through $HUTCH_HELPER"
fi
# jget FILE KEY...: a member of a JSON file, or nothing (tests/lib/priv.sh)
cleanup() {
	local p d
	# a failure's evidence: what the supervisors said (rules, repairs, taps)
	if [ "${TAP_FAILED:-0}" -gt 0 ]; then
		# ISOUP_KEEP=DIR: keep every VM's logs there, console.log whole
		[ -z "${ISOUP_KEEP:-}" ] || for d in "$XDG_DATA_HOME"/hutch/vms/*; do
			mkdir -p "$ISOUP_KEEP/$(basename "$d")" && cp "$d"/*.log "$ISOUP_KEEP/$(basename "$d")/" 2>/dev/null
		done
		for d in "$XDG_DATA_HOME"/hutch/vms/*; do
			diag "$(basename "$d")'s supervisor.log:"
			grep -v 'DHCP\|dhcp' "$d/supervisor.log" 2>/dev/null | tail -25 | sed 's/^/  /' | while IFS= read -r l; do diag "$l"; done
		done
	fi
	for d in "$XDG_DATA_HOME"/hutch/vms/*; do
		for p in $(jget "$d/state.json" supervisor_pid) $(jget "$d/state.json" qemu_pid); do
			grep -qs "$T" "/proc/$p/cmdline" && kill -9 "$p" 2>/dev/null
		done
	done
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	[ "${ISOUP_WG:-0}" = 1 ] && wg_peer_stop
	wait 2>/dev/null
	for n in $HN $IN $LN; do ip netns del "$n" 2>/dev/null; done
	priv_fini
	rm -rf "$T" "/etc/netns/$HN"
}
trap cleanup EXIT
hn() { ip netns exec "$HN" env HUTCH_RESOLV_CONF="$T/resolv.conf" "$@"; }
hh() { hn "${ASU[@]}" "$@"; }	# hutch itself: as root, or as the test user

setup() {
	local n a
	for n in $HN $IN $LN; do ip netns add "$n"; ip -n "$n" link set lo up; done
	ip link add up0 netns "$HN" type veth peer name eth0 netns "$IN"
	ip -n "$HN" addr add 203.0.113.1/24 dev up0
	ip -n "$HN" link set up0 up
	ip -n "$IN" addr add 203.0.113.10/24 dev eth0
	for a in 10.99.0.10 172.16.0.10 100.64.0.10 169.254.169.254; do ip -n "$IN" addr add $a/32 dev eth0; done
	ip -n "$IN" link set eth0 up
	ip -n "$HN" route add default via 203.0.113.10
	ip -n "$HN" route add 169.254.169.254/32 via 203.0.113.10
	ip link add lan0 netns "$HN" type veth peer name eth0 netns "$LN"
	ip -n "$HN" addr add 192.168.77.1/24 dev lan0
	ip -n "$HN" link set lan0 up
	ip -n "$LN" addr add 192.168.77.10/24 dev eth0
	ip -n "$LN" addr add 192.168.77.50/24 dev eth0
	ip -n "$LN" link set eth0 up
	ip -n "$LN" route add default via 192.168.77.1
	ip netns exec "$HN" sysctl -qw net.ipv4.icmp_echo_ignore_broadcasts=0
}
( set -e; setup )	# any failing step fails the setup
[ $? -eq 0 ] || { fail "setup of the namespaces"; done_testing; exit 1; }
printf 'nameserver 203.0.113.10\n' >"$T/resolv.conf"
# the supervisor gets a minimal environment: give the namespace its own
# /etc/resolv.conf, which `ip netns exec` bind-mounts
mkdir -p "/etc/netns/$HN" && cp "$T/resolv.conf" "/etc/netns/$HN/resolv.conf"
ip netns exec "$IN" python3 "$DNSD" 203.0.113.10 53 www.hutch.test=203.0.113.10 >"$T/dns.log" 2>&1 &
PIDS+=($!)
# listeners: TCP (and UDP) on every address of the namespace, answer their name
for s in "$HN host 80 8081 9090" "$IN net 80" "$LN lan 80"; do
	set -- $s
	ip netns exec "$1" python3 "$PROBE" serve "$2" "$T/$2.log" "${@:3}" >/dev/null 2>&1 &
	PIDS+=($!)
done
for f in host net lan; do wait_until 120 grep -q ready "$T/$f.log" 2>/dev/null; done

project() {	# name extra-network-yaml
	mkdir -p "$T/$1"
	cat >"$T/$1/hutch.yaml" <<Y
name: $1
cpus: 1
memory: 256
accel: tcg
kernel: {path: $TINY_KERNEL, initrd: $TINY_INITRD, cmdline: "console=ttyS0 quiet no_timer_check hutch.net=dhcp"}
network:
  mode: nat
$2
timeouts: {boot: 600, shutdown: 300}
Y
	printf '#cloud-config\n' >"$T/$1/cloud-init.yml"
	[ -z "$U" ] || chown -R "$U:" "$T/$1"
}
project isoa '  host_access:
    - allow-host-port tcp/8081
    - allow-lan-host 192.168.77.50
  forward: [ "tcp/8080:80" ]'
project isob ''
if [ "${ISOUP_WG:-0}" = 1 ]; then	# A's traffic through a tunnel to the internet namespace
	source "$HUTCH_SRC/tests/net/wg-lib.sh"
	wg_have_tools || { skip "isolation with WireGuard" "wireguard-go or wg missing"; done_testing; exit 0; }
	wg_keys "$T/keys"
	wg_peer_start "$IN" "wgi$$" 10.200.0.1/24 51820 "$(cat "$T/keys/client.pub")" 10.200.0.2/32 "$T/keys" >"$T/peer.log" 2>&1 ||
		{ fail "WireGuard peer in the internet namespace"; sed 's/^/#   /' "$T/peer.log"; done_testing; exit 1; }
	wg_conf_write "$T/isoa/wireguard.conf" "$T/keys" 10.200.0.2/32 203.0.113.10:51820 203.0.113.10
	[ -z "$U" ] || chown "$U:" "$T/isoa/wireguard.conf"
fi

up() {	# name
	if hh timeout 300 "$HUTCH" -C "$T/$1" up 2>"$T/up-$1.err"; then ok "hutch up $1 (mode nat)"; return 0; fi
	fail "hutch up $1 (mode nat)"; sed 's/^/#   /' "$T/up-$1.err"
	tail -20 "$XDG_DATA_HOME/hutch/vms/$1/supervisor.log" 2>/dev/null | sed 's/^/#   /'
	return 1
}
up isoa || { done_testing; exit 1; }
up isob || { done_testing; exit 1; }
A=$(hh "$HUTCH" -C "$T/isoa" ip 2>/dev/null) B=$(hh "$HUTCH" -C "$T/isob" ip 2>/dev/null)
ida=$(jget "$XDG_DATA_HOME/hutch/vms/isoa/state.json" net id)
idb=$(jget "$XDG_DATA_HOME/hutch/vms/isob/state.json" net id)
GW=$(jget "$XDG_DATA_HOME/hutch/vms/isoa/state.json" net gateway)
BR=$(jget "$XDG_DATA_HOME/hutch/vms/isoa/state.json" net bridge)
diag "VM A $A (rules $ida), VM B $B (rules $idb), gateway $GW on ${BR:-?}"
if [ "${ISOUP_WG:-0}" = 1 ]; then	# A's packets forwarded anywhere but its tunnel (or to its allow-lan-host): must stay 0
	WGIF=$(jget "$XDG_DATA_HOME/hutch/vms/isoa/state.json" wg ifname)
	diag "VM A's tunnel: $WGIF ($(jget "$XDG_DATA_HOME/hutch/vms/isoa/state.json" wg impl))"
	hn nft "add table inet wgleak; add chain inet wgleak f { type filter hook forward priority 300; }; add rule inet wgleak f iifname $BR ip saddr $A ip daddr != 192.168.77.50 oifname != $WGIF counter"
fi
[ -n "$A" ] && [ -n "$B" ] && [ -n "$GW" ] && [ -n "$ida" ] && [ -n "$idb" ] && ok "both VMs have a lease and rules id" ||
	{ fail "both VMs have a lease and rules id"; done_testing; exit 1; }
if [ -n "$U" ]; then	# QEMU as the user, with no capabilities
	qp=$(jget "$XDG_DATA_HOME/hutch/vms/isoa/state.json" qemu_pid)
	st=$(awk '/^Uid:/ {print $2} /^CapEff:/ {print $2}' "/proc/$qp/status" 2>/dev/null | tr '\n' ' ')
	is "QEMU of A runs as $U with CapEff 0" "$st" "$(id -u "$U") 0000000000000000 "
fi
BCAST=${GW%.*}.255
CA=$XDG_DATA_HOME/hutch/vms/isoa/console.sock CB=$XDG_DATA_HOME/hutch/vms/isob/console.sock
# (guestsh's ceiling: 600 s; a command answers as soon as it is done)
ga() { guestsh "$CA" "$1"; }
gb() { guestsh "$CB" "$1"; }
# guest_wait 'CONDITION': a guest command that returns once CONDITION holds
# (for at most 300 s, so that the guest's shell never stays in the loop)
guest_wait() { printf 'e=$(($(date +%%s) + 300)); until %s || [ $(date +%%s) -ge $e ]; do sleep 0.1; done' "$1"; }
# listening PORT: ... once something listens on TCP PORT in the guest (state
# 0A in /proc/net/tcp, or tcp6 for busybox's dual-stack listeners)
listening() { guest_wait "$(printf 'grep -qs ":%04X [0-9A-F:]* 0A" /proc/net/tcp /proc/net/tcp6' "$1")"; }
# link_up: ... once eth0 is up again
link_up() { guest_wait 'grep -q up /sys/class/net/eth0/operstate'; }

# The host turns attacker-friendly: loopback routable from the bridge, IPv6
# on the bridge (a link-local address), broadcast pings answered.
hn sysctl -qw "net.ipv4.conf.$BR.route_localnet=1" "net.ipv6.conf.$BR.disable_ipv6=0" \
	"net.ipv6.conf.$BR.accept_dad=0" 2>/dev/null
hll() { HLL=$(hn ip -6 -o addr show dev "$BR" scope link 2>/dev/null | awk '{sub("/.*", "", $4); print $4; exit}'); [ -n "$HLL" ]; }
wait_until 60 hll
# VM B: a listener on :80 answering "vmb", broadcast pings answered
gb '(nc -ll -p 80 -e echo vmb >/dev/null 2>&1 &); echo 0 >/proc/sys/net/ipv4/icmp_echo_ignore_broadcasts; '"$(listening 80)" >/dev/null 2>&1
BLL=$(gb 'ip -6 -o addr show dev eth0 scope link' 2>/dev/null | tr -d '\r' | awk '{sub("/.*", "", $4); print $4; exit}')
ALL6=$(ga 'ip -6 -o addr show dev eth0 scope link' 2>/dev/null | tr -d '\r' | awk '{sub("/.*", "", $4); print $4; exit}')
diag "link-local: host ${HLL:-none}, A ${ALL6:-none}, B ${BLL:-none}"
# control: B's listener is up (the host may open connections to guests)
got=$(hn timeout 60 bash -c "exec 3<>/dev/tcp/$B/80 && head -n1 <&3" 2>/dev/null)
is "control: the host reaches VM B's listener" "$got" "vmb"
# bnet: B reaches the internet and (not) the LAN and the host
# (the three at once: the two that must fail wait out their timeout together)
bnet() { gb "i=0; for t in '203.0.113.10 80' '192.168.77.10 80' '$GW 9090'; do i=\$((i + 1)); (nc -w 10 \$t </dev/null 2>/dev/null | head -n1 >/tmp/bnet.\$i) & done; wait; cat /tmp/bnet.1 /tmp/bnet.2 /tmp/bnet.3; echo end" 2>&1 | tr -d '\r' | tr '\n' ' '; }
is "control: B reaches the internet, not the LAN nor the host" "$(bnet)" "net end "

# probes inside A, in parallel; each prints "P KEY RESULT"
PROBES='p() { r=$(nc -w 10 $1 $2 </dev/null 2>/dev/null | head -n1); echo "P $1:$2 ${r:-none}"; }
q() { if ping -c 2 -W 8 $1 2>/dev/null | grep -q "bytes from"; then echo "P ping:$1 reply"; else echo "P ping:$1 none"; fi; }
ap() { if arping -c 2 -w 8 -I eth0 -s $1 '"$GW"' 2>/dev/null | grep -q "Received [1-9]"; then echo "P arp:$1 reply"; else echo "P arp:$1 none"; fi; }
q6() { r=$(ping6 -c 2 -W 8 $1 2>/dev/null | grep "bytes from" | grep -v "${2:-@}" | head -n1); echo "P ping6:$1 ${r:+reply}${r:-none}"; }'
# the functions go to a file in the guest once: short probe commands take
# guestsh's one-line path (long ones are typed in chunks, which is slower)
if ! ga "cat >/tmp/probes.sh <<'EOF'
$PROBES
EOF" >"$T/g.out" 2>&1; then
	fail "the probe functions written to guest A"; sed 's/^/#   /' "$T/g.out"
fi
run_probes() {	# run_probes "FN ARGS" ... -> $T/g.out
	local cmd='. /tmp/probes.sh;' t
	for t in "$@"; do cmd="$cmd $t &"; done
	cmd="$cmd wait"
	# a probe round takes seconds (the probes that must fail wait out their
	# timeouts), much longer on a loaded host: guestsh waits for its end
	ga "$cmd" >"$T/g.out" 2>&1
	local rc=$?
	if [ $rc -ge 124 ]; then
		diag "guestsh exited with $rc: $(tail -n1 "$T/g.out")"
		{ tail -c 600 "$XDG_DATA_HOME/hutch/vms/isoa/console.log" 2>/dev/null; echo; } | tr -d '\r' | sed 's/^/#   console: /'
	fi
}
got() { awk -v t="$1" '$1 == "P" && $2 == t { print $3 }' "$T/g.out" | tr -d '\r'; }
MATRIX=()
row() {	# row WANT KEY [DESCRIPTION]
	local g
	g=$(got "$2")
	MATRIX+=("$(printf '%-46s | %-6s | %s' "${3:-$2}" "$1" "${g:-?}")")
	is "A: ${3:-$2} -> $1" "$g" "$1"
	[ "$g" = "$1" ] || sed 's/^/#   guest: /' "$T/g.out" | tail -n 8
}

# 1. allowed and forbidden destinations, A with its own MAC and IP
P=("p $GW 8081" "p $GW 80" "p $GW 9090" "p 203.0.113.1 80" "p 203.0.113.1 8081"
	"p 192.168.77.1 80" "p 169.254.169.254 80" "p 192.168.77.10 80" "p 192.168.77.50 80"
	"p 10.99.0.10 80" "p 172.16.0.10 80" "p 100.64.0.10 80" "p $B 80" "p 203.0.113.10 80"
	"q $GW" "q $B" "q $BCAST" "q 224.0.0.1" "q 203.0.113.10"
	"q6 ff02::1%eth0 ${ALL6:-@}" "ap $A")
[ -n "$HLL" ] && P+=("q6 $HLL%eth0")
[ -n "$BLL" ] && P+=("q6 $BLL%eth0")
run_probes "${P[@]:0:11}"; cp "$T/g.out" "$T/g1.out"
run_probes "${P[@]:11}"; cat "$T/g1.out" >>"$T/g.out"
row host "$GW:8081" "host gateway:8081 (allow-host-port tcp/8081)"
row none "$GW:80" "host gateway:80"
row none "$GW:9090" "host gateway:9090"
row none 203.0.113.1:80 "host uplink 203.0.113.1:80"
row none 203.0.113.1:8081 "host uplink 203.0.113.1:8081 (port allowed on gw)"
row none 192.168.77.1:80 "host LAN address 192.168.77.1:80"
row none 169.254.169.254:80 "metadata 169.254.169.254:80"
row none 192.168.77.10:80 "LAN host 192.168.77.10:80"
row lan 192.168.77.50:80 "LAN host 192.168.77.50:80 (allow-lan-host)"
row none 10.99.0.10:80 "10.99.0.10:80 (10/8, upstream)"
row none 172.16.0.10:80 "172.16.0.10:80 (172.16/12, upstream)"
row none 100.64.0.10:80 "100.64.0.10:80 (100.64/10, upstream)"
row none "$B:80" "VM B $B:80"
row net 203.0.113.10:80 "internet 203.0.113.10:80"
row none "ping:$GW" "ping the gateway"
row none "ping:$B" "ping VM B"
row none "ping:$BCAST" "ping broadcast $BCAST"
row none "ping:224.0.0.1" "ping multicast 224.0.0.1"
row reply ping:203.0.113.10 "ping the internet 203.0.113.10"
row reply "arp:$A" "ARP request to the gateway from its own address"
row none "ping6:ff02::1%eth0" "IPv6: ping6 ff02::1 (all nodes)"
if [ -n "$HLL" ]; then row none "ping6:$HLL%eth0" "IPv6: ping6 the host's link-local"; else skip "IPv6 to the host's link-local" "the bridge got no link-local address"; fi
if [ -n "$BLL" ]; then row none "ping6:$BLL%eth0" "IPv6: ping6 VM B's link-local"; else skip "IPv6 to VM B's link-local" "VM B has no link-local address"; fi

out=$(ga "nslookup www.hutch.test $GW" 2>&1)
g=none; grep -q '203.0.113.10' <<<"$out" && g=works
MATRIX+=("$(printf '%-46s | %-6s | %s' "DNS www.hutch.test via the gateway" works "$g")")
is "A: DNS via the gateway works" "$g" works

# 2. 127.0.0.1 of the host through a forged route via the gateway
ga "echo 1 >/proc/sys/net/ipv4/conf/eth0/route_localnet; ip route del local 127.0.0.0/8 dev lo table local; ip route del local 127.0.0.1 dev lo table local; ip route add 127.0.0.1/32 via $GW dev eth0" >/dev/null 2>&1
dev=$(ga 'ip route get 127.0.0.1' 2>&1 | tr -d '\r')
grep -q 'dev eth0' <<<"$dev" || diag "the forged route did not take: $dev"
run_probes "p 127.0.0.1 80" "p 127.0.0.1 8081"
row none 127.0.0.1:80 "host 127.0.0.1:80 (forged route via gw)"
row none 127.0.0.1:8081 "host 127.0.0.1:8081 (forged route via gw)"
ga "ip route del 127.0.0.1/32; ip route add local 127.0.0.0/8 dev lo table local; ip route add local 127.0.0.1 dev lo table local" >/dev/null 2>&1

# 3. spoofed source IP: VM B's address, then a free one
spoof_ip() {	# addr
	# a static neighbour entry for the gateway: IPv4 frames leave even though
	# the guest's ARP from the spoofed address is dropped
	# (checked: probes from A's own address would pass and read as a hole)
	ga "ip addr flush dev eth0; ip addr add $1/24 dev eth0; ip route add default via $GW; arp -i eth0 -s $GW $GWMAC; ip -4 -o addr show dev eth0 | grep -q ' $1/'" >"$T/g.out" 2>&1 ||
		{ fail "spoofed IP $1: the guest took the address (guestsh: $?)"; sed 's/^/#   /' "$T/g.out"; }
	run_probes "p 203.0.113.10 80" "p $GW 8081" "p 192.168.77.50 80" "ap $1"
	row none "arp:$1" "spoofed IP $1: ARP request to the gateway"
	row none 203.0.113.10:80 "spoofed IP $1: internet"
	row none "$GW:8081" "spoofed IP $1: host gateway:8081"
	row none 192.168.77.50:80 "spoofed IP $1: allowed LAN host"
}
GWMAC=$(hn cat "/sys/class/net/$BR/address")
spoof_ip "$B"
spoof_ip "${GW%.*}.99"
ga "ip addr flush dev eth0; ip addr add $A/24 dev eth0; ip route add default via $GW; arp -i eth0 -d $GW" >/dev/null 2>&1
# 4. spoofed MAC
MACA=$(ga 'cat /sys/class/net/eth0/address' 2>/dev/null | tr -d '\r')
ga 'ip link set eth0 down; ip link set eth0 address 52:54:00:66:66:66; ip link set eth0 up; ip route add default via '"$GW"' 2>/dev/null; '"$(link_up)"'; true' >/dev/null 2>&1
run_probes "p 203.0.113.10 80" "p $GW 8081"
row none 203.0.113.10:80 "spoofed MAC 52:54:00:66:66:66: internet"
row none "$GW:8081" "spoofed MAC: host gateway:8081"
# the restored link: up, and the gateway answers its ARP again, before the
# allowed path is tried (once)
ga "ip link set eth0 down; ip link set eth0 address $MACA; ip link set eth0 up; ip addr flush dev eth0; ip addr add $A/24 dev eth0; ip route add default via $GW; $(link_up); $(guest_wait "arping -c 1 -w 2 -I eth0 -s $A $GW 2>/dev/null | grep -q 'Received [1-9]'")" >/dev/null 2>&1
run_probes "p 203.0.113.10 80"
row net 203.0.113.10:80 "own MAC and IP again: internet"
spoofed=$(grep -c -E "^tcp (${B//./\\.}|${GW%.*}\.99) " "$T/net.log" "$T/host.log" "$T/lan.log" | awk -F: '{s += $2} END {print s + 0}')
is "no listener logged a connection from a spoofed source" "$spoofed" 0
is "after A's spoofing: B reaches the internet, not the LAN nor the host" "$(bnet)" "net end "

# the attempts reached hutch's rules and were dropped there (not lost elsewhere)
cnt() {	# cnt FAMILY CHAIN COMMENT-PREFIX: packets counted by that rule
	hn nft list chain "$1" hutch "$2" 2>/dev/null | grep -F "comment \"$3" | sed -n 's/.*counter packets \([0-9]*\).*/\1/p' | head -n1
}
for r in "bridge vm-$ida|drop source MAC other than" "bridge vm-$ida|drop IPv4 source other than" \
	"bridge vm-$ida|drop ARP with a sender IP other than" \
	"bridge vm-$ida|drop IPv6 and other ether types" "inet vm-$ida|drop daddr 192.168.0.0/16" \
	"inet vm-$ida|drop daddr 169.254.0.0/16" "inet input|guest: drop new connections to the host"; do
	c=$(cnt ${r%%|*} "${r#*|}")
	[ "${c:-0}" -gt 0 ] && ok "nft counter > 0: ${r%%|*} \"${r#*|}\" ($c packets)" ||
		fail "nft counter > 0: ${r%%|*} \"${r#*|}\" (got '${c:-}')"
done

diag "matrix from inside VM A, root (attempt | expected | got):"
for m in "${MATRIX[@]}"; do diag "  $m"; done

# 5. forward tcp/8080:80: the host's 127.0.0.1:8080 reaches A's :80, nothing else does
ga 'mkdir -p /tmp/www && echo "hello from vm a" >/tmp/www/index.html && httpd -p 80 -h /tmp/www; '"$(listening 80)" >/dev/null 2>&1
fetch() { hn python3 -c 'import sys, urllib.request
try: print(urllib.request.urlopen(sys.argv[1], timeout=60).read().decode().strip())
except Exception as e: print("error:", type(e).__name__)' "$1"; }
is "forward: host 127.0.0.1:8080 reaches A's :80" "$(fetch http://127.0.0.1:8080/)" "hello from vm a"
g=$(fetch http://203.0.113.1:8080/)
[ "${g#error}" != "$g" ] && ok "forward: the host's uplink 203.0.113.1:8080 is not published ($g)" ||
	fail "forward: the host's uplink 203.0.113.1:8080 is not published (got '$g')"
g=$(fetch "http://$GW:8080/")
[ "${g#error}" != "$g" ] && ok "forward: the gateway $GW:8080 is not published ($g)" ||
	fail "forward: the gateway $GW:8080 is not published (got '$g')"

if [ "${ISOUP_WG:-0}" = 1 ]; then
	grep -q '^tcp 10.200.0.2 ' "$T/net.log" && ok "WireGuard: A reached the internet from its tunnel address" ||
		fail "WireGuard: A reached the internet from its tunnel address"
	is "WireGuard: none of A's packets were forwarded outside its tunnel (allow-lan-host aside)" \
		"$(hn nft list table inet wgleak 2>/dev/null | sed -n 's/.*counter packets \([0-9]*\).*/\1/p')" 0
fi
# 6. inspect, halt of A, self-repair, kill -9 + gc
ins=$(hh "$HUTCH" -C "$T/isoa" inspect 2>&1)
grep -q "vm-$ida" <<<"$ins" && ok "hutch inspect lists A's rules (vm-$ida)" ||
	{ fail "hutch inspect lists A's rules (vm-$ida)"; sed 's/^/#   /' <<<"$ins" | tail -30; }
grep -q "vm-$idb" <<<"$ins" && fail "hutch inspect of A does not list B's rules" || ok "hutch inspect of A does not list B's rules"
rules=$(hn nft list ruleset 2>/dev/null)
grep -q "chain vm-$ida" <<<"$rules" && grep -q "chain vm-$idb" <<<"$rules" && ok "nft: both VMs have chains" || fail "nft: both VMs have chains"
grep -qE 'iifname "ht-\*" .*drop comment "drop frames from a tap without rules' <<<"$rules" &&
	ok "nft: a tap without its VM's rules passes nothing (fail closed)" || fail "nft: a tap without its VM's rules passes nothing (fail closed)"
brmac() { hn cat "/sys/class/net/$BR/address" 2>/dev/null; }
mac0=$(brmac)
check "hutch halt A" hh timeout 120 "$HUTCH" -C "$T/isoa" halt
is "after halt: the gateway keeps its MAC (B's ARP entry stays right)" "$(brmac)" "$mac0"
rules=$(hn nft list ruleset 2>/dev/null)
grep -q "vm-$ida" <<<"$rules" && fail "after halt: no rule of A remains" || ok "after halt: no rule of A remains"
grep -q "chain vm-$idb" <<<"$rules" && ok "after halt: B's chains remain" || fail "after halt: B's chains remain"
out=$(bnet)
is "after A's halt: B reaches the internet, not the LAN nor the host" "$out" "net end "
[ "$out" = "net end " ] || { hn nft list ruleset | sed 's/^/#   /'; gb 'ip route; ip addr; ip neigh' | sed 's/^/#   /'; hn ip neigh | sed 's/^/#   /'; }

hn nft flush ruleset
b_rules() { hn nft list ruleset 2>/dev/null | grep -q "chain vm-$idb"; }
wait_until 120 b_rules
hn nft list ruleset 2>/dev/null | grep -q "chain vm-$idb" && ok "after nft flush ruleset: B's supervisor restores its rules" ||
	fail "after nft flush ruleset: B's supervisor restores its rules"
out=$(bnet)
is "after the repair: B reaches the internet, not the LAN nor the host" "$out" "net end "

vb=$XDG_DATA_HOME/hutch/vms/isob
sp=$(jget "$vb/state.json" supervisor_pid); qp=$(jget "$vb/state.json" qemu_pid)
kill -9 "$sp"
wait_until 120 gone "$qp"
links() { hn ip -br link | awk '{print $1}' | grep -E '^(ht-|hutch)' | sed 's/@.*//' | sort | tr '\n' ' '; }
check "hutch gc after kill -9 of B's supervisor" hh timeout 60 "$HUTCH" gc
is "no ht-* link and no bridge left" "$(links)" ""
hn nft list tables 2>/dev/null | grep -q hutch && fail "no hutch table left" || ok "no hutch table left"
if [ -n "$U" ]; then
	reg=$(priv_registry)
	is "the helper's registry is empty" "$(python3 -c 'import json,sys; r=json.loads(sys.argv[1] or "{}"); print(len(r.get("vms",[]))+len(r.get("mounts",[])))' "$reg")" 0
fi
done_testing
