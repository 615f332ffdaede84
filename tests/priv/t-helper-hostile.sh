#!/usr/bin/env bash
# hutch-helper against hostile callers (issue 10).  Two unprivileged users,
# A and B, in the test group; a test copy of the helper with its capabilities
# (tests/lib/priv.sh); a network namespace of our own.  A brings a VM network
# up and keeps its connection open; then B, with the same requested MAC, gets
# its own address and MAC; then B tries what it must not: bring down, gc,
# inspect or attach A's VM, name a tap, a table, a bridge or a subnet of its
# choosing, send oversized, truncated or garbage requests or fds, mount an
# image of A's or one through a symlink, unmount A's folder; and for
# WireGuard (issue 11): route B's VM into A's tunnel by naming its link and
# mark, repair, remove or read A's tunnel, give a tunnel a loopback or a
# hutch-subnet address, name its table, smuggle a PostUp.  Each attempt
# must be refused with a message that says why, and leave the rules, links,
# addresses, mounts and the registry exactly as they were.  Finally A hangs
# up and everything of A's is gone.
# test: group wg (makes WireGuard links and UAPI sockets, which t-wg.sh counts)
set -u
source "$(dirname "$0")/../lib/tap.sh"
source "$HUTCH_SRC/tests/lib/priv.sh"
if [ "$(id -u)" -ne 0 ]; then skip "hostile callers of hutch-helper" "needs root"; done_testing; exit 0; fi
for t in ip nft setpriv useradd python3; do
	command -v $t >/dev/null || { skip "hostile callers of hutch-helper" "$t missing"; done_testing; exit 0; }
done
CLIENT=$HUTCH_SRC/build/tests/priv_client
[ -x "$HUTCH_SRC/hutch-helper" ] && [ -x "$CLIENT" ] ||
	{ skip "hostile callers of hutch-helper" "make hutch-helper unit first"; done_testing; exit 0; }

T=$(mktemp -d /tmp/privh.XXXXXX)
NS=privh-$$ UA=htha$$ UB=hthb$$ HOLD_PID=
chmod 755 "$T"
cleanup() {
	exec 7>&- 2>/dev/null
	[ -n "$HOLD_PID" ] && kill "$HOLD_PID" 2>/dev/null
	wait 2>/dev/null
	ip netns del "$NS" 2>/dev/null
	priv_fini
	rm -rf "$T"
}
trap cleanup EXIT
priv_start "$T/priv" "$UA" "$UB"
ip netns add "$NS" && ip -n "$NS" link set lo up || { fail "network namespace"; done_testing; exit 1; }
ok "two users, a helper copy with capabilities, a namespace"

# client U REQUEST...: priv_client as user U inside the namespace (mounts: in
# our own mount namespace, so that snap sees what a mount would change)
client() {
	local u=$1; shift
	priv_argv "$u"
	case $1 in
	*'"mount"'*|*'"unmount"'*) "${PRIV_ARGV[@]}" "$CLIENT" "$HUTCH_HELPER" "$@";;
	*) ip netns exec "$NS" "${PRIV_ARGV[@]}" "$CLIENT" "$HUTCH_HELPER" "$@";;
	esac
}
jfield() { python3 -c 'import json,sys
try: print(json.loads(sys.argv[1].rsplit(" fds=", 1)[0]).get(sys.argv[2], ""))
except Exception: print("")' "$1" "$2"; }
snap() {
	ip netns exec "$NS" nft list ruleset 2>&1
	ip -n "$NS" -br link 2>&1
	ip -n "$NS" -br addr 2>&1
	# mounts under $T: the only places a request here could mount on (other
	# tests on a shared host mount and unmount elsewhere all the time)
	awk -v t="$T" 'index($5, t) == 1 {print $5}' /proc/self/mountinfo | sort
	priv_registry
}
NETUP='"op":"net_up","bridge":"hutch0","subnet":"10.77.0.1/24","mac":"52:54:00:aa:bb:cc","isolation":true,"ipv6":false,"dns":true'

# wgconf ADDRESS [EXTRA-LINE]: a wireguard.conf (fresh random keys) as a JSON string
wgconf() { python3 -c 'import base64, json, os, sys
k = lambda: base64.b64encode(os.urandom(32)).decode()
print(json.dumps("[Interface]\nPrivateKey = %s\nAddress = %s\n%s[Peer]\nPublicKey = %s\n"
                 "Endpoint = 192.0.2.1:51820\nAllowedIPs = 0.0.0.0/0\n" % (k(), sys.argv[1], sys.argv[2], k())))' "$1" "${2:+$2
}"; }
WGUP='"op":"wg_up","name":"vma","endpoint":"192.0.2.1:51820"'

# A: a VM network and a WireGuard tunnel, held open (the helper removes both when A hangs up)
mkfifo "$T/hold"
client "$UA" "{$NETUP,\"name\":\"vma\"}" "{$WGUP,\"conf\":$(wgconf 10.200.0.2/32)}" @hold <"$T/hold" >"$T/a.out" 2>"$T/a.err" &
HOLD_PID=$!
exec 7>"$T/hold"
for _ in $(seq 600); do [ -s "$T/a.out" ] && break; sleep 0.1; done
RA=$(head -n1 "$T/a.out")
IDA=$(jfield "$RA" id) ADDRA=$(jfield "$RA" addr) MACA=$(jfield "$RA" mac)
[ -n "$IDA" ] && grep -q 'fds=3' <<<"$RA" && ok "A's VM network is up ($IDA, $ADDRA, $MACA) with its 3 fds" ||
	{ fail "A's VM network is up"; diag "$RA"; sed 's/^/#   /' "$T/a.err"; done_testing; exit 1; }
ip netns exec "$NS" nft list chain bridge hutch "vm-$IDA" >/dev/null 2>&1 &&
	ok "A's rules are in place" || fail "A's rules are in place"
# ip_forward's previous value goes to the helper's (root-owned) run dir, not to
# /run/hutch, which a user's helper could not write without its DAC capability
if grep -q "enabled net.ipv4.ip_forward" "$T/a.err"; then
	! grep -q "it will stay on" "$T/a.err" && ls "$PRIV_DIR/run"/ip_forward.* >/dev/null 2>&1 &&
		ok "the previous ip_forward is recorded in the helper's run dir" ||
		{ fail "the previous ip_forward is recorded in the helper's run dir"; sed 's/^/#   /' "$T/a.err"; }
fi
for _ in $(seq 600); do [ "$(wc -l <"$T/a.out")" -ge 2 ] && break; sleep 0.1; done
WA=$(sed -n 2p "$T/a.out")
WIDA=$(jfield "$WA" id) WIFA=$(jfield "$WA" ifname) WTA=$(jfield "$WA" table)
[ -n "$WIDA" ] && [ "$WIFA" = "hw-$WIDA" ] && [ -n "$WTA" ] &&
	ok "A's tunnel is up ($WIFA, table $WTA, $(jfield "$WA" impl))" ||
	{ fail "A's tunnel is up"; diag "$WA"; sed 's/^/#   /' "$T/a.err"; }
[ "$(jfield "$WA" impl)" != wireguard-go ] || grep -q 'fds=2' <<<"$WA" &&
	ok "wireguard-go's tun and UAPI socket come back to A (fds=2), for A to run it" ||
	fail "wireguard-go's tun and UAPI socket come back to A (fds=2): $WA"
out=$(client "$UA" "{\"op\":\"inspect\",\"id\":\"$IDA\"}")
grep -q "vm-$IDA" <<<"$out" && ok "A may inspect its own VM" || { fail "A may inspect its own VM"; diag "$out"; }

# B: same MAC asked for, its own address and MAC given; then B's VM goes again
out=$(client "$UB" "{$NETUP,\"name\":\"vmb\"}" 2>/dev/null | head -n1)
IDB=$(jfield "$out" id) ADDRB=$(jfield "$out" addr) MACB=$(jfield "$out" mac)
[ -n "$IDB" ] && [ "$ADDRB" != "$ADDRA" ] && [ "$MACB" != "$MACA" ] &&
	ok "B's VM gets another address and MAC ($ADDRB, $MACB) than A's" ||
	{ fail "B's VM gets another address and MAC"; diag "$out"; }
# B hung up (the client exited): its VM is gone, A's stays
# (ceilings in seconds: a round runs a python3, whose cost varies)
not_registered() { ! priv_registry | grep -q "\"$1\""; }
wait_until 120 not_registered "$IDB" && ok "B's hang-up removed B's VM" || fail "B's hang-up removed B's VM"
not_registered "$IDA" && fail "... and not A's" || ok "... and not A's"

# B attacks: every request refused with a message, nothing changes
mkdir -p "$T/a/w" "$T/b/w" "$T/b/real/w" && truncate -s 16M "$T/a/w.img" "$T/b/w.img" "$T/b/real/w.img"
ln -s "$T/b/real" "$T/b/link"
chown -R "$UA:" "$T/a"; chown -R "$UB:" "$T/b"; chmod 755 "$T/a" "$T/b"
attack() {	# attack WHAT EXPECTED-TEXT REQUEST
	local before after out
	before=$(snap)
	out=$(client "$UB" "$3" 2>&1)
	after=$(snap)
	if grep -q '"ok":false' <<<"$out" && grep -qF -- "$2" <<<"$out"; then
		ok "refused: $1"
	else
		fail "refused: $1"; diag "reply: $out"
	fi
	if [ "$before" = "$after" ]; then ok "nothing changed: $1"; else
		fail "nothing changed: $1"; diff <(echo "$before") <(echo "$after") | head -20 | sed 's/^/#   /'
	fi
}
attack "B brings down A's VM" "belongs to another user" "{\"op\":\"net_down\",\"id\":\"$IDA\"}"
attack "B garbage-collects A's VM" "belongs to another user" "{\"op\":\"gc\",\"id\":\"$IDA\"}"
attack "B inspects A's rules" "belongs to another user" "{\"op\":\"inspect\",\"id\":\"$IDA\"}"
attack "B attaches to A's VM" "belongs to another user" "{\"op\":\"attach\",\"id\":\"$IDA\"}"
attack "a tap name of B's choosing" "unknown key 'tap'" "{$NETUP,\"name\":\"x\",\"tap\":\"eth0\"}"
attack "an invalid id (a path)" "'id' must be" '{"op":"net_down","id":"../../eth0"}'
attack "a table of B's choosing" "unknown key 'table'" "{$NETUP,\"name\":\"x\",\"table\":\"filter\"}"
attack "a bridge named like a tap" "not a bridge name" \
	'{"op":"net_up","name":"x","bridge":"ht-evil","subnet":"10.77.0.1/24","mac":"52:54:00:00:00:01","isolation":true,"ipv6":false}'
attack "a bridge the helper does not allow" "is not one hutch-helper allows" \
	'{"op":"net_up","name":"x","bridge":"eth0","subnet":"10.77.0.1/24","mac":"52:54:00:00:00:01","isolation":true,"ipv6":false}'
attack "a subnet the helper does not allow (the LAN's)" "is not one hutch-helper allows" \
	'{"op":"net_up","name":"x","bridge":"hutch0","subnet":"192.168.1.1/24","mac":"52:54:00:00:00:01","isolation":true,"ipv6":false}'
attack "an address outside the subnet" "'prefer' must be an address of the subnet" \
	"{$NETUP,\"name\":\"x\",\"prefer\":\"192.168.1.7\"}"
attack "allow-lan-host of a public address" "must be a LAN IPv4 address" \
	"{$NETUP,\"name\":\"x\",\"host_access\":[{\"lan\":\"8.8.8.8\"}]}"
attack "isolation off by a string" "must be true or false" \
	'{"op":"net_up","name":"x","bridge":"hutch0","subnet":"10.77.0.1/24","mac":"52:54:00:00:00:01","isolation":"no","ipv6":false}'
attack "an oversized request" "over 16384 bytes" @big:20000
attack "garbage" "not JSON" @big:300
attack "a truncated request" "not JSON" '@raw:{"op":"net_up","name":"x","bri'
attack "a duplicate key" "not JSON" '{"op":"ping","op":"gc"}'
attack "a request that carries an fd" "carried file descriptors" '@withfd:{"op":"ping"}'
attack "an unknown operation" "unknown or missing 'op'" '{"op":"exec","argv":["/bin/sh"]}'
attack "mount A's image on A's folder" "belongs to uid $(id -u "$UA")" \
	"{\"op\":\"mount\",\"dir\":\"$T/a/w\",\"size\":1,\"keep\":true}"
attack "name the image (only <folder>.img, made by the helper)" "unknown key 'image'" \
	"{\"op\":\"mount\",\"image\":\"$T/a/w.img\",\"dir\":\"$T/b/w\",\"size\":1,\"keep\":true}"
# B's own file system image, crafted and planted by B: no record of the helper's
mkfs.ext4 -q -F "$T/b/w.img" && chown "$UB:" "$T/b/w.img"
attack "mount a file system B made itself" "Operation not permitted" \
	"{\"op\":\"mount\",\"dir\":\"$T/b/w\",\"size\":1,\"keep\":true}"
attack "mount through a symlink" "a symlink in the path is refused" \
	"{\"op\":\"mount\",\"dir\":\"$T/b/link/w\",\"size\":1,\"keep\":true}"
attack "unmount A's folder" "belongs to uid $(id -u "$UA")" \
	"{\"op\":\"unmount\",\"dir\":\"$T/a/w\"}"
attack "a path with .." "absolute normal path" \
	"{\"op\":\"mount\",\"dir\":\"$T/b/../a/w\",\"size\":1,\"keep\":true}"

attack "B routes its VM into A's tunnel (A's link and mark)" "is not a tunnel of this process" \
	"{$NETUP,\"name\":\"x\",\"wg\":{\"ifname\":\"$WIFA\",\"mark\":$WTA,\"dns\":\"10.200.0.1\"}}"
attack "B repairs A's tunnel" "belongs to another user" "{\"op\":\"wg_fix\",\"id\":\"$WIDA\",\"how\":\"rules\"}"
attack "B removes A's tunnel" "belongs to another user" "{\"op\":\"wg_down\",\"id\":\"$WIDA\"}"
attack "B reads A's tunnel" "belongs to another user" "{\"op\":\"wg_get\",\"id\":\"$WIDA\"}"
attack "a tunnel address on loopback" "is not one a tunnel may have" "{$WGUP,\"conf\":$(wgconf 127.0.0.2/32)}"
attack "a tunnel address in hutch's subnet" "in hutch's subnet" "{$WGUP,\"conf\":$(wgconf 10.77.0.9/32)}"
attack "a table of B's choosing for its tunnel" "unknown key 'table'" "{$WGUP,\"conf\":$(wgconf 10.200.0.3/32),\"table\":254}"
attack "a wireguard.conf with PostUp" "hutch never runs commands" \
	"{$WGUP,\"conf\":$(wgconf 10.200.0.3/32 'PostUp = touch /tmp/pwned')}"
attack "a tunnel endpoint that is a name (the helper resolves nothing)" "'endpoint' must be" \
	"{\"op\":\"wg_up\",\"name\":\"x\",\"endpoint\":\"evil.example:51820\",\"conf\":$(wgconf 10.200.0.3/32)}"

# A hangs up: its VM network goes with it
exec 7>&-
wait "$HOLD_PID" 2>/dev/null
HOLD_PID=
wait_until 120 not_registered "$IDA" && ok "A's hang-up removed A's registry entry" || fail "A's hang-up removed A's registry entry"
ip netns exec "$NS" nft list ruleset 2>/dev/null | grep -q "vm-$IDA" && fail "A's rules are gone" || ok "A's rules are gone"
is "no ht-* link and no bridge left" "$(ip -n "$NS" -br link | awk '{print $1}' | grep -E '^(ht-|hutch)' | tr '\n' ' ')" ""
priv_registry | grep -q "\"$WIDA\"" && fail "A's hang-up removed A's tunnel from the registry" ||
	ok "A's hang-up removed A's tunnel from the registry"
[ -e "/var/run/wireguard/$WIFA.sock" ] && fail "A's tunnel's UAPI socket is gone" || ok "A's tunnel's UAPI socket is gone"
is "no hw-* link and no rule to A's table left" "$(ip -n "$NS" -br link | grep -c '^hw-')/$(ip -n "$NS" rule | grep -c "lookup $WTA")" "0/0"
done_testing
