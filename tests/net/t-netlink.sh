#!/usr/bin/env bash
# Bridge, taps and the net extension's life cycle through rtnetlink, in a
# namespace of our own (net-nl-*): created, configured, isolated, and gone
# afterwards, after a clean teardown and after a "kill -9" + gc.
source "$(dirname "$0")/../lib/tap.sh"
H=$HUTCH_SRC/build/tests/net_helper
if [ "$(id -u)" -ne 0 ]; then skip "netlink in a namespace" "needs root"; done_testing; exit 0; fi
command -v ip >/dev/null || { skip "netlink in a namespace" "ip missing"; done_testing; exit 0; }
[ -x "$H" ] || { fail "net_helper built (make unit)"; done_testing; exit 1; }

NS=net-nl-$$
TMP=$(mktemp -d)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	ip netns del "$NS" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
ip netns add "$NS" || { fail "namespace"; done_testing; exit 1; }
ins() { ip netns exec "$NS" env HUTCH_BRIDGE=hb0 HUTCH_RESOLV_CONF="$TMP/resolv.conf" "$@"; }
ins ip link set lo up
printf 'nameserver 127.0.0.1\n' >"$TMP/resolv.conf"
links() { ins ip -br link | awk '{print $1}' | grep -E '^(ht-|hb0)' | sed 's/@.*//' | sort | tr '\n' ' '; }

# --- the bridge ---
echo 0 | ins tee /proc/sys/net/ipv4/ip_forward >/dev/null
check "bridge created" ins "$H" bridge hb0 10.77.0.1/24
check "creating it again is fine" ins "$H" bridge hb0 10.77.0.1/24
ins ip -d link show hb0 | grep -q ' bridge ' && ok "hb0 is a bridge" || fail "hb0 is a bridge"
is "bridge address" "$(ins ip -4 -o addr show hb0 | awk '{print $4}')" "10.77.0.1/24"
ins ip link show hb0 | grep -q '<.*UP' && ok "bridge is up" || fail "bridge is up"
is "IPv6 off on the bridge" "$(ins cat /proc/sys/net/ipv6/conf/hb0/disable_ipv6)" "1"
is "no redirects from the bridge" "$(ins cat /proc/sys/net/ipv4/conf/hb0/send_redirects)" "0"
is "route_localnet stays off" "$(ins cat /proc/sys/net/ipv4/conf/hb0/route_localnet)" "0"
is "IPv4 forwarding on" "$(ins cat /proc/sys/net/ipv4/ip_forward)" "1"

# --- a tap held by a process ---
mkfifo "$TMP/hold"
ip netns exec "$NS" "$H" tap tst1 hb0 <"$TMP/hold" >"$TMP/tap.out" 2>&1 &
PIDS+=($!)
exec 7>"$TMP/hold"
wait_until 120 grep -q ready "$TMP/tap.out"
d=$(ins ip -d link show ht-tst1 2>&1)
grep -q 'master hb0' <<<"$d" && ok "tap enslaved to the bridge" || { fail "tap enslaved to the bridge"; diag "$d"; }
grep -q 'isolated on' <<<"$d" && ok "tap port isolated" || fail "tap port isolated"
is "isolation read back over netlink" "$(ins "$H" isolated ht-tst1)" "1"
grep -q 'vnet_hdr on' <<<"$d" && ok "tap has vnet_hdr" || fail "tap has vnet_hdr"
grep -q 'persist off' <<<"$d" && ok "tap not persistent" || fail "tap not persistent"
is "IPv6 off on the tap" "$(ins cat /proc/sys/net/ipv6/conf/ht-tst1/disable_ipv6)" "1"
is "listed as a port of hb0" "$(ins "$H" list ht- hb0)" "ht-tst1"
check_fails "a second tap of the same name is refused" ins "$H" tap tst1 hb0 </dev/null
is "bridge kept while a port is left" "$(ins "$H" release hb0)" "0"
exec 7>&-
wait "${PIDS[-1]}" 2>/dev/null
is "tap gone when its last fd closed" "$(links)" "hb0 "
is "bridge released when no port is left" "$(ins "$H" release hb0)" "1"
is "nothing left" "$(links)" ""

# --- the extension: prepare, a guest (DHCP through the tap fd), teardown ---
out=$(ins "$H" sv "$TMP/vms/a" a teardown 2>"$TMP/sv.err")
grep -q '^lease 10.77.0.2$' <<<"$out" && ok "VM a leased 10.77.0.2 through its tap" || { fail "VM a leased 10.77.0.2"; diag "$out"; sed 's/^/#   /' "$TMP/sv.err"; }
grep -q '^qemu-arg tap,id=n0,fd=3,vhost=off$' <<<"$out" && ok "QEMU gets the tap fd" || fail "QEMU gets the tap fd"
grep -q '^qemu-arg virtio-net-pci,netdev=n0,mac=52:54:00:' <<<"$out" && ok "QEMU gets the MAC" || fail "QEMU gets the MAC"
is "teardown left nothing" "$(links)" ""
st=$(cat "$TMP/vms/a/state.json")
grep -q '"ip"' <<<"$st" && fail "no stale ip after teardown" || ok "no stale ip after teardown"
addr_a=$(grep -o '"addr": "[0-9.]*"' <<<"$st")
is "address reserved in state" "$addr_a" '"addr": "10.77.0.2"'

# --- two VMs at once: different addresses; the bridge outlives the first ---
mkfifo "$TMP/ha" "$TMP/hb"
ip netns exec "$NS" env HUTCH_BRIDGE=hb0 HUTCH_RESOLV_CONF="$TMP/resolv.conf" "$H" sv "$TMP/vms/a" a hold <"$TMP/ha" >"$TMP/a.out" 2>&1 &
PIDS+=($!); pa=$!
exec 8>"$TMP/ha"
wait_until 120 grep -q '^lease' "$TMP/a.out"
ip netns exec "$NS" env HUTCH_BRIDGE=hb0 HUTCH_RESOLV_CONF="$TMP/resolv.conf" "$H" sv "$TMP/vms/b" b hold <"$TMP/hb" >"$TMP/b.out" 2>&1 8>&- &
PIDS+=($!); pb=$!
exec 9>"$TMP/hb"
wait_until 120 grep -q '^lease' "$TMP/b.out"
is "VM a keeps its address across restarts" "$(grep '^lease' "$TMP/a.out")" "lease 10.77.0.2"
is "VM b gets the next free address" "$(grep '^lease' "$TMP/b.out")" "lease 10.77.0.3"
is "two taps on the bridge" "$(ins "$H" list ht- hb0 | wc -l)" "2"
exec 8>&-
wait "$pa" 2>/dev/null
is "bridge stays while VM b runs" "$(links | wc -w)" "2"
exec 9>&-
wait "$pb" 2>/dev/null
is "last VM gone: bridge gone" "$(links)" ""

# --- kill -9 (no teardown), then gc from state alone ---
ins "$H" sv "$TMP/vms/a" a die >/dev/null 2>&1
is "after a crash the bridge is left behind" "$(links)" "hb0 "
check "gc from state" ins "$H" gc "$TMP/vms/a"
is "gc removed the bridge" "$(links)" ""
check "gc twice is harmless" ins "$H" gc "$TMP/vms/a"

# --- a state.json naming something that is not ours is ignored by gc ---
ins ip link add nx0 type veth peer name nx1
printf '{"net":{"id":"x","tap":"nx0","bridge":"nx1"}}' >"$TMP/vms/a/state.json"
ins "$H" gc "$TMP/vms/a" >/dev/null 2>&1
printf '{"net":{"id":"abc","tap":"ht-abc","bridge":"nx1"}}' >"$TMP/vms/a/state.json"
ins "$H" gc "$TMP/vms/a" >/dev/null 2>&1
is "gc ignores names hutch did not make" "$(ins ip -br link | grep -c '^nx[01]@')" "2"
ins ip link del nx0

# --- bad settings fail before touching anything ---
check_fails "a bad HUTCH_SUBNET refuses to start" ins env HUTCH_SUBNET=10.77.0.0/33 "$H" sv "$TMP/vms/c" c teardown
is "and leaves nothing" "$(links)" ""
done_testing
