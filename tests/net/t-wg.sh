#!/usr/bin/env bash
# WireGuard egress with a kill switch, through the real product: `hutch up`
# of a tiny guest (TCG, mode nat) whose project has a wireguard.conf, in a
# "host" namespace whose uplink reaches a peer namespace (wireguard-go, keys
# made for this run) with an "internet" namespace behind it:
#
#   guest -- hutch0 [host] up0 203.0.113.1 ---- 203.0.113.2 [peer] 198.51.100.1 ---- [internet] 198.51.100.10
#                                                wg 10.200.0.1, DNS there               listener :80, DNS "host resolver"
#
# The peer masquerades tunnel traffic, so the internet target sees 198.51.100.1
# for tunnelled traffic and 203.0.113.1 for anything that left the host
# outside the tunnel.  Counters on the host's uplink count every packet that
# is not the tunnel's own UDP, and every guest packet forwarded to the uplink:
# both must stay 0 while, with the guest sending all along, the wg link is
# deleted, set down, bypassed by a foreign policy rule, its route removed,
# and its endpoint black-holed.  Also: DNS from the guest is answered by the
# tunnel's DNS, `hutch wg --json` shows a live handshake, `status` shows the
# tunnel down while the peer is silent, bad wireguard.conf files fail before
# QEMU starts and leave nothing, and halt, kill -9 + gc leave no link, rule,
# route, wireguard-go or socket behind.
# HUTCH_TEST_AS_USER=1 (tests/net/t-wg-user.sh): hutch runs as an
# unprivileged user through a test copy of hutch-helper, which makes the
# tunnel (issue 11); wireguard-go runs as that user with no capabilities,
# on a UAPI socket the helper made for it; the tunnel's registry entry goes
# with the VM; and a wireguard.conf Address with a /24 puts no route for
# that subnet into the host's main table.
# test: group wg (counts every hw- wireguard-go and UAPI socket on the host: /var/run/wireguard
# is global, and only the tests of group wg make them)
set -u
source "$(dirname "$0")/../lib/tap.sh"
source "$HUTCH_SRC/tests/lib/guest.sh"
source "$HUTCH_SRC/tests/net/wg-lib.sh"
source "$HUTCH_SRC/tests/lib/priv.sh"
DNSD=$HUTCH_SRC/tests/helpers/net_dns_server.py
PROBE=$HUTCH_SRC/tests/net/nft_probe.py
if [ "$(id -u)" -ne 0 ]; then skip "wireguard through hutch up" "needs root"; done_testing; exit 0; fi
for t in ip nft qemu-system-x86_64 python3 setpriv; do
	command -v $t >/dev/null || { skip "wireguard through hutch up" "$t missing"; done_testing; exit 0; }
done
wg_have_tools || { skip "wireguard through hutch up" "wireguard-go or wg missing (scripts/install-deps.sh)"; done_testing; exit 0; }
if ! guest_tiny_build; then fail "make tiny"; done_testing; exit 1; fi

HN=wg-h-$$ PN=wg-p-$$ TN=wg-t-$$ PIF=wgp$$
T=$(mktemp -d /tmp/wgtest.XXXXXX)
chmod 755 "$T"
export XDG_DATA_HOME=$T/data XDG_CACHE_HOME=$T/cache
unset HUTCH_DIR HUTCH_BRIDGE HUTCH_SUBNET HUTCH_HELPER
PIDS=() ASU=() WU=
if [ -n "${HUTCH_TEST_AS_USER:-}" ]; then
	[ -x "$HUTCH_SRC/hutch-helper" ] || { skip "wireguard as a user" "hutch-helper not built"; done_testing; exit 0; }
	WU=htwg$$
	if ! priv_init "$T/priv" || ! priv_user "$WU"; then
		fail "a test user and a test copy of hutch-helper"; sed 's/^/#   /' "$T/priv/setup.log"
		priv_fini; rm -rf "$T"; done_testing; exit 1
	fi
	priv_argv "$WU"
	ASU=("${PRIV_ARGV[@]}")
	export XDG_DATA_HOME=$PRIV_DIR/home-$WU/data XDG_CACHE_HOME=$PRIV_DIR/home-$WU/cache
	diag "hutch runs as $WU (uid $(id -u "$WU")) through $HUTCH_HELPER"
fi
jget() { python3 -c 'import json,sys
try:
    v = json.load(open(sys.argv[1]) if sys.argv[1] != "-" else sys.stdin)
    for k in sys.argv[2:]: v = v[k]
    print(v)
except Exception: pass' "$@"; }
hn() { ip netns exec "$HN" env HUTCH_RESOLV_CONF="$T/resolv.conf" "$@"; }
hh() { hn "${ASU[@]}" "$@"; }	# hutch itself: as root, or as the test user
cleanup() {
	local p d
	for d in "$XDG_DATA_HOME"/hutch/vms/*; do
		for p in $(jget "$d/state.json" supervisor_pid) $(jget "$d/state.json" qemu_pid); do
			grep -qs "$T" "/proc/$p/cmdline" && kill -9 "$p" 2>/dev/null
		done
	done
	hh "$HUTCH" gc >/dev/null 2>&1
	wg_peer_stop
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	for n in $HN $PN $TN; do ip netns del "$n" 2>/dev/null; done
	priv_fini
	rm -rf "$T" "/etc/netns/$HN"
}
trap cleanup EXIT

( set -e; wg_rig_setup "$HN" "$PN" "$TN" "$PIF" "$T" ) >"$T/setup.log" 2>&1
[ $? -eq 0 ] && ok "namespaces, peer (wireguard-go) and internet set up" ||
	{ fail "namespaces, peer and internet set up"; sed 's/^/#   /' "$T/setup.log"; done_testing; exit 1; }
# wg_peer_start ran in a subshell: find the peer daemon for cleanup
WG_PEER_IF=$PIF WG_PEER_PID=$(pgrep -f "^wireguard-go -f $PIF\$" | head -n1)
printf 'nameserver 198.51.100.10\n' >"$T/resolv.conf"
mkdir -p "/etc/netns/$HN" && cp "$T/resolv.conf" "/etc/netns/$HN/resolv.conf"
# the tunnel's DNS (in the peer) and the host's resolver (outside) disagree on purpose
ip netns exec "$PN" python3 "$DNSD" 10.200.0.1 53 www.tunnel.test=198.51.100.10 >"$T/tdns.log" 2>&1 &
PIDS+=($!)
ip netns exec "$TN" python3 "$DNSD" 198.51.100.10 53 www.tunnel.test=192.0.2.66 >"$T/hdns.log" 2>&1 &
PIDS+=($!)
ip netns exec "$TN" python3 "$PROBE" serve net "$T/net.log" 80 >/dev/null 2>&1 &
PIDS+=($!)
wait_until 120 grep -qs ready "$T/net.log"

project() {	# dir name [extra network yaml]
	mkdir -p "$1"
	chmod 755 "$1"
	cat >"$1/hutch.yaml" <<Y
name: $2
cpus: 1
memory: 256
accel: tcg
kernel: {path: $TINY_KERNEL, initrd: $TINY_INITRD, cmdline: "console=ttyS0 quiet hutch.net=dhcp"}
network:
  mode: ${3:-nat}
timeouts: {boot: 240, shutdown: 45}
Y
	chmod 644 "$1/hutch.yaml"
	printf '#cloud-config\n' >"$1/cloud-init.yml"
	[ -z "$WU" ] || chown -R "$WU:" "$1"
}
ctr() {	# ctr CHAIN COMMENT: packets of the test's own counter
	hn nft list chain inet wgtest "$1" 2>/dev/null | grep -F "comment \"$2\"" | sed -n 's/.*counter packets \([0-9]*\).*/\1/p'
}
leaks() { echo "$(ctr wpost outside)/$(ctr wfwd guest-forwarded)"; }
# /var/run/wireguard and the process list are the whole host's: other runs
# (of other users of the machine) may have tunnels of their own.  Ours are
# the sockets that were not there when we started, and the daemons in our
# host namespace.
UAPI_BEFORE=" $(ls /var/run/wireguard 2>/dev/null | tr '\n' ' ') "
uapi_new() {	# uapi_new PREFIX: sockets named PREFIX* made since we started
	local n c=0
	for n in $(ls /var/run/wireguard 2>/dev/null | grep "^$1"); do
		[[ $UAPI_BEFORE == *" $n "* ]] || c=$((c + 1))
	done
	echo "$c"
}
wg_daemons() {	# wireguard-go processes for a hw- link in our host namespace
	local p c=0
	for p in $(ip netns pids "$HN" 2>/dev/null); do
		tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q '^wireguard-go -f hw-' && c=$((c + 1))
	done
	echo "$c"
}
nothing_left() {	# what: no wg link, rule, route, nft table, daemon, socket of hutch's
	local what=$1 l r
	l=$(hn ip -br link | awk '{print $1}' | grep -E '^(hw-|ht-)' | tr '\n' ' ')
	r=$(hn ip rule | grep -E '^1077[0-9]:' | tr '\n' ' ')
	is "$what: no hw-/ht- link" "$l" ""
	is "$what: no policy rule of hutch's" "$r" ""
	is "$what: no route left in hutch's tables" "$(hn ip route show table all | grep -cE 'table 1752[0-9]{6}')" 0
	is "$what: no hutch nft table" "$(hn nft list tables 2>/dev/null | grep -c hutch)" 0
	is "$what: no wireguard-go for a hw- link" "$(wg_daemons)" 0
	# the supervisor unlinks it after wireguard-go is gone, as its last steps
	uapi_gone() { [ "$(uapi_new "$1")" = 0 ]; }
	wait_until 120 uapi_gone "${3:-hw-}"
	is "$what: no UAPI socket of hutch's" "$(uapi_new "${3:-hw-}")" 0
}

# ---- bad input: fails before QEMU starts, nothing left ----
B=$T/bad
project "$B" wgbad
wg_conf_write "$B/wireguard.conf" "$T/keys" 10.200.0.2/32 203.0.113.2:51820 10.200.0.1
good=$(cat "$B/wireguard.conf")
# wconf FILE: written by root above; the project's user owns it
wconf() { [ -z "$WU" ] || chown -h "$WU:" "$1"; }
bad_up() {	# what expected-message-regex
	local out
	out=$(hh timeout 120 "$HUTCH" -C "$B" up 2>&1)
	local rc=$?
	if [ $rc -ne 0 ] && grep -qE "$2" <<<"$out"; then ok "bad input, $1: up fails with a clear error"
	else fail "bad input, $1: up fails with a clear error (rc $rc)"; sed 's/^/#   /' <<<"$out" | tail -5; fi
	is "bad input, $1: QEMU never started" "$(jget "$XDG_DATA_HOME/hutch/vms/wgbad/state.json" qemu_argv)" ""
	is "bad input, $1: no link, rule or nft table" \
		"$(hn ip -br link | grep -cE '^(hw-|ht-)')/$(hn ip rule | grep -cE '^1077')/$(hn nft list tables | grep -c hutch)" "0/0/0"
}
sed 's/^PrivateKey = .*/PrivateKey = notakey/' <<<"$good" >"$B/wireguard.conf"
wconf "$B/wireguard.conf"
bad_up "malformed key" 'wireguard\.conf:2: PrivateKey is not a WireGuard key'
grep -v '^Endpoint' <<<"$good" >"$B/wireguard.conf"
wconf "$B/wireguard.conf"
bad_up "missing Endpoint" 'wireguard\.conf:[0-9]+: \[Peer\] has no Endpoint'
printf '%s\n' "$good" >"$B/wireguard.conf"
wconf "$B/wireguard.conf"
chmod 644 "$B/wireguard.conf"
bad_up "readable by others" 'other users can read it .* holds the private key'
chmod 600 "$B/wireguard.conf"
mv "$B/wireguard.conf" "$T/elsewhere.conf"
ln -s "$T/elsewhere.conf" "$B/wireguard.conf"
wconf "$B/wireguard.conf"
bad_up "a symlink" 'symbolic link: refused'
rm -f "$B/wireguard.conf"
mv "$T/elsewhere.conf" "$B/wireguard.conf"
# the project is that user's (hutch reads no one else's hutch.yaml); only
# wireguard.conf is root's 0600
U=$T/bad-user
project "$U" wgbad
cp -p "$B/wireguard.conf" "$U/wireguard.conf"
chown 65534:65534 "$U" "$U/hutch.yaml" "$U/cloud-init.yml"
out=$(setpriv --reuid=65534 --regid=65534 --clear-groups env HOME="$U" XDG_CONFIG_HOME="$U/cfg" "$HUTCH" -C "$U" check-config 2>&1)
rc=$?
[ $rc -ne 0 ] && grep -Eq 'wireguard.conf: (cannot read it: Permission denied|it is owned by uid 0, not by you)' <<<"$out" &&
	ok "bad input, unreadable file: check-config says so" ||
	{ fail "bad input, unreadable file: check-config says so (rc $rc)"; sed 's/^/#   /' <<<"$out" | tail -3; }
# a user's up with a wireguard.conf on a host without hutch-helper set up:
# refused up front (78) with the command that sets it up, nothing started
chown 65534:65534 "$U/wireguard.conf"
out=$(hn setpriv --reuid=65534 --regid=65534 --clear-groups env HOME="$U" XDG_DATA_HOME="$U/d" \
	XDG_CACHE_HOME="$U/c" XDG_CONFIG_HOME="$U/cfg" HUTCH_ALLOW_PATHS="$(dirname "$TINY_KERNEL")" \
	timeout 120 "$HUTCH" -C "$U" up 2>&1)
rc=$?
[ $rc -eq 78 ] && grep -q "needs hutch-helper.*sudo hutch setup" <<<"$out" &&
	! ls "$U"/d/hutch/vms/*/state.json 2>/dev/null | xargs -r grep -l qemu_pid | grep -q . &&
	ok "a user's up with wireguard.conf and no helper: refused up front with exit 78, nothing started" ||
	{ fail "a user's up with wireguard.conf: refused up front (rc $rc)"; sed 's/^/#   /' <<<"$out" | tail -5; }
out=$(hh "$HUTCH" -C "$B" check-config 2>&1)
grep -q 'PrivateKey = (redacted)' <<<"$out" && ! grep -qF "$(cat "$T/keys/client.key")" <<<"$out" &&
	ok "check-config shows wireguard.conf with the private key redacted" ||
	{ fail "check-config shows wireguard.conf with the private key redacted"; sed 's/^/#   /' <<<"$out" | tail -12; }
sed -i 's/mode: nat/mode: user/' "$B/hutch.yaml"
out=$(hh "$HUTCH" -C "$B" check-config 2>&1)
rc=$?
[ $rc -eq 2 ] && grep -q 'wireguard.conf needs network mode nat' <<<"$out" &&
	ok "mode user with wireguard.conf: refused by check-config (exit 2)" ||
	{ fail "mode user with wireguard.conf: refused by check-config (rc $rc)"; sed 's/^/#   /' <<<"$out" | tail -3; }
bad_up "mode user" 'wireguard.conf needs network mode nat'
nothing_left "after the bad inputs"

# ---- the tunnel ----
P=$T/good
project "$P" wgvm
# as a user, the Address has a /24: the helper must put it on the link as a
# /32 and no route for 10.200.0.0/24 into the host's main table
alen=32; [ -z "$WU" ] || alen=24
wg_conf_write "$P/wireguard.conf" "$T/keys" "10.200.0.2/$alen" 203.0.113.2:51820 10.200.0.1 5
wconf "$P/wireguard.conf"
VD=$XDG_DATA_HOME/hutch/vms/wgvm
LOG=$VD/supervisor.log
if hh timeout 300 "$HUTCH" -C "$P" up 2>"$T/up.err"; then ok "hutch up with wireguard.conf"; else
	fail "hutch up with wireguard.conf"; sed 's/^/#   /' "$T/up.err" | tail -20
	tail -20 "$LOG" 2>/dev/null | sed 's/^/#   /'; done_testing; exit 1
fi
IF=$(jget "$VD/state.json" wg ifname) TABLE=$(jget "$VD/state.json" wg table)
IMPL=$(jget "$VD/state.json" wg impl) ID=$(jget "$VD/state.json" net id)
diag "tunnel $IF through $IMPL, table/mark $TABLE, VM rules $ID"
case $IMPL in kernel | wireguard-go) ok "implementation in use recorded: $IMPL" ;; *) fail "implementation recorded (got '$IMPL')" ;; esac
GP=$(jget "$VD/state.json" wg pid)
if [ "$IMPL" = wireguard-go ] && [ -z "$WU" ]; then	# root's hutch: the VM user, as QEMU
	gu=$(stat -c %U "/proc/$GP" 2>/dev/null)
	[ -n "$gu" ] && [ "$gu" != root ] && ok "wireguard-go does not run as root (as $gu)" ||
		fail "wireguard-go does not run as root (got '$gu')"
	is "wireguard-go has no capability" "$(awk '/^CapEff/ {print $2}' "/proc/$GP/status" 2>/dev/null)" 0000000000000000
fi
if [ -n "$WU" ]; then
	if [ "$IMPL" = wireguard-go ]; then
		is "wireguard-go runs as the user" "$(stat -c %U "/proc/$GP" 2>/dev/null)" "$WU"
		is "wireguard-go has no capability" "$(awk '/^CapEff/ {print $2}' "/proc/$GP/status" 2>/dev/null)" 0000000000000000
		is "its UAPI socket, made by the helper in root's /var/run/wireguard, is the user's" \
			"$(stat -c %U "/var/run/wireguard/$IF.sock" 2>/dev/null)" "$WU"
	fi
	reg=$(priv_registry)
	python3 -c 'import json,sys; r=json.loads(sys.argv[1]); t=[x for x in r.get("tunnels", []) if x["id"]==sys.argv[2]]; sys.exit(0 if t and t[0]["uid"]==int(sys.argv[3]) else 1)' \
		"$reg" "${IF#hw-}" "$(id -u "$WU")" && ok "the helper's registry holds the tunnel, owned by the user" ||
		{ fail "the helper's registry holds the tunnel, owned by the user"; diag "$reg"; }
	is "Address 10.200.0.2/24 is on $IF as a /32" "$(hn ip -4 -o addr show dev "$IF" | awk '{print $4}')" 10.200.0.2/32
	is "no route for 10.200.0.0/24 in the host's main table" "$(hn ip route show table main 10.200.0.0/24)" ""
fi
C=$VD/console.sock
g() { guestsh --timeout "${GT:-60}" "$C" "$1" 2>&1 | tr -d '\r'; }
wgj() { hh "$HUTCH" -C "$P" wg --json 2>/dev/null | jget - "$@"; }
tunnel() { hh "$HUTCH" --json -C "$P" status 2>/dev/null | jget - tunnel; }
tunnel_is() { [ "$(tunnel)" = "$1" ]; }
handshake() { [ "$(wgj latest_handshake)" -gt 0 ] 2>/dev/null; }
# (ceilings in seconds, not in rounds: a round is a `hutch status` and a
# python3, whose cost changes with the host's load and its python3)
wait_until 300 handshake
hs=$(wgj latest_handshake) age=$(wgj handshake_age_s)
[ "${hs:-0}" -gt 0 ] && [ "${age:-999}" -lt 180 ] && ok "hutch wg --json shows a live handshake ($age s ago)" ||
	{ fail "hutch wg --json shows a live handshake (got '$hs')"; hh "$HUTCH" -C "$P" wg 2>&1 | sed 's/^/#   /'; }

out=$(g 'nc -w 5 198.51.100.10 80 </dev/null')
is "guest reaches the internet target through the tunnel" "$(tail -n1 <<<"$out")" net
is "the target saw the peer's address, not the host's" "$(grep '^tcp' "$T/net.log" | tail -n1 | awk '{print $2}')" 198.51.100.1
out=$(g 'nslookup www.tunnel.test')
grep -q 198.51.100.10 <<<"$out" && ! grep -q 192.0.2.66 <<<"$out" &&
	ok "guest DNS is answered by the tunnel's DNS, not the host's resolver" ||
	{ fail "guest DNS is answered by the tunnel's DNS"; sed 's/^/#   /' <<<"$out"; }
is "nothing left the uplink outside the tunnel (outside/forwarded)" "$(leaks)" "0/0"

# the guest sends all along from here: a TCP probe every 0.3 s, results in /tmp/p
g '(while :; do if nc -w 1 198.51.100.10 80 </dev/null >/dev/null 2>&1; then echo ok; else echo fail; fi >>/tmp/p; sleep 0.3; done) >/dev/null 2>&1 &' >/dev/null
probes() {	# the guest's probe results since the last call ("ok=N fail=M "); the console may drop a read: retried
	local out i
	for i in 1 2 3; do
		out=$(g 'cat /tmp/p; : >/tmp/p; echo probes-end')
		grep -q '^probes-end$' <<<"$out" && break
		sleep 2
	done
	grep -E '^(ok|fail)$' <<<"$out" | sort | uniq -c | awk '{printf "%s=%s ", $2, $1}'
}
wait_log() {	# regex seconds: the supervisor logged it (after the line count in $MARK)
	for _ in $(seq "$2"); do tail -n +"$MARK" "$LOG" | grep -qE "$1" && return 0; sleep 1; done; return 1
}
wait_ok() {	# the guest's probes succeed again
	for _ in $(seq "$1"); do grep -q 'ok=' <<<"$(probes)" && return 0; sleep 2; done; return 1
}
event() {	# name command...: break the tunnel while the guest sends; it must hold, then come back
	local name=$1 p
	shift
	probes >/dev/null
	MARK=$(($(wc -l <"$LOG") + 1))
	"$@"
	wait_log "is down: $name" 60 && ok "$name: the supervisor noticed and logged it" ||
		{ fail "$name: the supervisor noticed and logged it"; tail -n +"$MARK" "$LOG" | sed 's/^/#   /'; }
	wait_log "restored" 90 && ok "$name: the tunnel was restored" ||
		{ fail "$name: the tunnel was restored"; tail -n +"$MARK" "$LOG" | sed 's/^/#   /'; }
	sleep 1
	p=$(probes)
	grep -q 'fail=' <<<"$p" && ok "$name: the guest's probes failed meanwhile ($p)" || fail "$name: the guest's probes failed meanwhile ($p)"
	wait_ok 45 && ok "$name: the guest's probes succeed again" || fail "$name: the guest's probes succeed again"
	is "$name: nothing left the uplink outside the tunnel" "$(leaks)" "0/0"
}
event "the link was deleted" hn ip link del "$IF"
event "the link was set down" hn ip link set "$IF" down
[ "$(wgj downs)" -ge 2 ] 2>/dev/null && ok "hutch wg counts the down events ($(wgj downs))" || fail "hutch wg counts the down events (got '$(wgj downs)')"

# a foreign policy rule sends the guest's packets to the main table (the
# uplink): only the nft kill switch stands in the way
ks0=$(wgj killswitch dropped_packets)
hn ip rule add pref 100 iif hutch0 lookup main
sleep 2	# a probe already answered may still be logged: start counting after it
probes >/dev/null
sleep 4
p=$(probes)
hn ip rule del pref 100 iif hutch0 lookup main
ks1=$(wgj killswitch dropped_packets)
grep -q 'fail=' <<<"$p" && ! grep -q 'ok=' <<<"$p" && ok "bypass rule: the guest's probes fail ($p)" || fail "bypass rule: the guest's probes fail ($p)"
[ "${ks1:-0}" -gt "${ks0:-0}" ] && ok "bypass rule: the kill switch dropped and counted them (${ks0:-?} -> ${ks1:-?})" ||
	fail "bypass rule: the kill switch dropped and counted them (${ks0:-?} -> ${ks1:-?})"
is "bypass rule: nothing left the uplink outside the tunnel" "$(leaks)" "0/0"
is "bypass rule: the target never saw the host's address" "$(grep -c '^tcp 203.0.113.1 ' "$T/net.log")" 0
wait_ok 30 && ok "bypass rule removed: the probes succeed again" || fail "bypass rule removed: the probes succeed again"

MARK=$(($(wc -l <"$LOG") + 1))
hn ip route del default dev "$IF" table "$TABLE"
wait_log "route through $IF was removed; restoring it" 120 && ok "route deleted from the VM's table: restored at once" ||
	{ fail "route deleted from the VM's table: restored at once"; tail -n +"$MARK" "$LOG" | sed 's/^/#   /'; }
hn ip route show table "$TABLE" | grep -q "dev $IF" && ok "the VM's table routes through $IF again" || fail "the VM's table routes through $IF again"
is "route deleted: nothing left the uplink outside the tunnel" "$(leaks)" "0/0"

# the peer goes silent (its endpoint black-holed)
ip netns exec "$PN" nft "add table inet bh; add chain inet bh in { type filter hook input priority -300; }; add rule inet bh in udp dport 51820 drop"
# (the guest's probes keep sending: down within ~30 s, a minute or two when
# a rekey falls in it; 300 s is a ceiling for a loaded host)
MARK=$(($(wc -l <"$LOG") + 1))
if wait_until 300 tunnel_is down; then ok "silent peer: hutch status shows the tunnel down"; else
	fail "silent peer: hutch status shows the tunnel down (got '$(tunnel)')"
	hh "$HUTCH" -C "$P" wg 2>&1 | sed 's/^/#   /'; tail -n +"$MARK" "$LOG" | tail -20 | sed 's/^/#   log: /'
fi
probes >/dev/null
sleep 4
p=$(probes)
grep -q 'fail=' <<<"$p" && ! grep -q 'ok=' <<<"$p" && ok "silent peer: the guest's probes fail ($p)" || fail "silent peer: the guest's probes fail ($p)"
is "silent peer: nothing left the uplink outside the tunnel" "$(leaks)" "0/0"
ip netns exec "$PN" nft delete table inet bh
wait_until 300 tunnel_is up
is "peer back: hutch status shows the tunnel up" "$(tunnel)" up
wait_ok 30 && ok "peer back: the probes succeed again" || fail "peer back: the probes succeed again"
is "after everything: the target only ever saw the peer's address" "$(grep '^tcp' "$T/net.log" | awk '{print $2}' | sort -u | tr '\n' ' ')" "198.51.100.1 "
hh "$HUTCH" -C "$P" wg 2>&1 | sed 's/^/# /'

# ---- cleanup: halt, then kill -9 + gc ----
check "hutch halt" hh timeout 120 "$HUTCH" -C "$P" halt
nothing_left "after halt"
if hh timeout 300 "$HUTCH" -C "$P" up 2>"$T/up2.err"; then ok "hutch up again"; else fail "hutch up again"; sed 's/^/#   /' "$T/up2.err" | tail; fi
IF2=$(jget "$VD/state.json" wg ifname) GP=$(jget "$VD/state.json" wg pid)
sp=$(jget "$VD/state.json" supervisor_pid) qp=$(jget "$VD/state.json" qemu_pid)
kill -9 "$sp"
wait_until 120 gone "$qp"
if [ -n "$GP" ]; then
	wait_until 120 gone "$GP"
	alive "$GP" && fail "kill -9 of the supervisor: wireguard-go $GP went with it" ||
		ok "kill -9 of the supervisor: wireguard-go went with it"
fi
check "hutch gc after kill -9" hh timeout 60 "$HUTCH" gc
nothing_left "after kill -9 and gc"
[ -z "$WU" ] || is "no tunnel or VM network left in the helper's registry" \
	"$(priv_registry | python3 -c 'import json,sys; r=json.load(sys.stdin); print(len(r.get("tunnels", [])), len(r.get("vms", [])))')" "0 0"
diag "tunnel of the second run: $IF2"
done_testing
