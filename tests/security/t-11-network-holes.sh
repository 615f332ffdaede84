#!/usr/bin/env bash
# Issue 15 item 11, the network parts (the others are tested by their owners):
# 1. DHCP: udp/67 was accepted to any host address; only broadcast and the
#    gateway may be reached, so a guest cannot reach a host service that
#    listens on port 67 of another address.
# 2. ipv6: true: a guest's IPv6 source was not checked (it could forward
#    with any address), and IPv6 routed through the host reached the other
#    guests; ULA, link-local and the host's own addresses stay closed.
# 3. Port forwards: a guest that accepts connections and never closes them
#    held every relay slot for good once the host's clients hung up.
# 4. ip_forward: when hutch turned it on, the last VM to stop turns it back
#    off (also `gc` after a supervisor was killed).
source "$(dirname "$0")/lib.sh"
sec_init 11
IN=sec-11i-$$ GN=sec-11g-$$
NFTCTL=$HUTCH_SRC/build/tests/nftctl
cleanup11() { ip netns del "$IN" 2>/dev/null; ip netns del "$GN" 2>/dev/null; sec_cleanup; }
trap cleanup11 EXIT
inet() { ip netns exec "$IN" "$@"; }

# ---- 4 (first, while the namespace has never forwarded) and 1: one VM ----
is "ip_forward starts off" "$(hn cat /proc/sys/net/ipv4/ip_forward)" 0
vm_start a NET_HELPER_IPV6=1 || { fail "VM a up"; sed 's/^/#   /' "$T/a.err"; done_testing; exit 1; }
is "VM a up: ip_forward on" "$(hn cat /proc/sys/net/ipv4/ip_forward)" 1

# the host has a second address (a service bound to all addresses listens on 67)
hn ip link add hostd type veth peer name hostd-p && hn ip addr add 198.51.100.1/32 dev hostd &&
	hn ip link set hostd up && hn ip link set hostd-p up
serve host 67 5311 || { fail "listeners"; done_testing; exit 1; }
bmac=$(hn cat "/sys/class/net/$BR/address")
vm_do a "tx $(frame udp "$bmac" "${VM_MAC[a]}" "${VM_IP[a]}" 198.51.100.1 43001 67 dhcp-elsewhere)"
vm_do a "tx $(frame udp "$bmac" "${VM_MAC[a]}" "${VM_IP[a]}" "$GW" 43002 67 dhcp-gw)"
vm_do a "tx $(frame dhcp 1 "${VM_MAC[a]}" 0x1234)"
vm_do a "wait 500"
is "DHCP to another host address (198.51.100.1:67) is dropped" "$(grep -c '^udp .* 43001 67$' "$T/host.log")" 0
is "DHCP to the gateway passes" "$(grep -c '^udp .* 43002 67$' "$T/host.log")" 1
is "DHCP from 0.0.0.0 to broadcast passes" "$(grep -c '^udp 0.0.0.0 68 67$' "$T/host.log")" 1

# ---- 2: IPv6 ----
# the host routes 2001:db8:88::/64 on the bridge and 2001:db8:99::/64 to an "internet"
ip netns add "$IN"
hn sysctl -qw net.ipv6.conf.all.forwarding=1 "net.ipv6.conf.$BR.disable_ipv6=0" "net.ipv6.conf.$BR.accept_dad=0"
hn ip -6 addr add 2001:db8:88::1/64 dev "$BR" nodad
hn ip link add up6 type veth peer name eth0 netns "$IN"
hn ip -6 addr add 2001:db8:99::1/64 dev up6 nodad; hn ip link set up6 up
inet ip link set lo up; inet ip -6 addr add 2001:db8:99::10/64 dev eth0 nodad; inet ip link set eth0 up
inet ip -6 route add default via 2001:db8:99::1
(spawn ip netns exec "$IN" python3 "$PROBE" serve net "$T/net.log" 5312) >/dev/null 2>&1 &
SEC_PIDS+=($!)
for _ in $(seq 100); do grep -q ready "$T/net.log" 2>/dev/null && break; sleep 0.1; done
vm_start b NET_HELPER_IPV6=1 || { fail "VM b up"; done_testing; exit 1; }
eui() { python3 -c 'import ipaddress, sys	# PREFIX/64 + the EUI-64 interface id of MAC
m = [int(x, 16) for x in sys.argv[2].split(":")]
m[0] ^= 2
iid = bytes(m[:3] + [0xff, 0xfe] + m[3:])
print(ipaddress.IPv6Address(ipaddress.IPv6Address(sys.argv[1]).packed[:8] + iid).compressed)' "$1" "$2"; }
A6=$(eui 2001:db8:88:: "${VM_MAC[a]}") B6=$(eui 2001:db8:88:: "${VM_MAC[b]}") ALL=$(eui fe80:: "${VM_MAC[a]}")
hn ip -6 neigh replace "$B6" lladdr "${VM_MAC[b]}" dev "$BR" nud permanent
hn ip -6 neigh replace "$A6" lladdr "${VM_MAC[a]}" dev "$BR" nud permanent
v6() {	# v6 SRC DST PORT MARK: from a, to the bridge's MAC
	vm_do a "tx $(frame udp6 "$bmac" "${VM_MAC[a]}" "$1" "$2" 44000 "$3" "$4")"
}
v6 "$A6" 2001:db8:99::10 5312 own
v6 2001:db8:88::99 2001:db8:99::10 5312 spoofed
v6 "$B6" 2001:db8:99::10 5312 as-b
v6 "$A6" "$B6" 9999 to-b
v6 "$A6" 2001:db8:88::1 5311 host-bridge
v6 "$A6" 2001:db8:99::1 5311 host-uplink
v6 "$ALL" fe80::1 5311 host-ll
vm_do a "wait 800"; vm_do b "wait 300"
is "IPv6 from a's own (EUI-64) address reaches the internet" "$(grep -c "^udp $A6 44000 5312$" "$T/net.log")" 1
is "IPv6 from a forged source (2001:db8:88::99) is dropped" "$(grep -c '^udp 2001:db8:88::99 ' "$T/net.log")" 0
is "IPv6 with B's address as source is dropped" "$(grep -c "^udp $B6 " "$T/net.log")" 0
is "IPv6 to the other guest (routed by the host) is dropped" "$(vm_rx b "$(hexof to-b)")" 0
is "IPv6 to the host's own addresses is dropped" "$(grep -c '^udp .* 44000 5311$' "$T/host.log")" 0
hn ip -6 route add fd00:99::/64 via 2001:db8:99::10
inet ip -6 addr add fd00:99::10/64 dev eth0 nodad
v6 "$A6" fd00:99::10 5312 ula
vm_do a "wait 500"
is "IPv6 to a ULA address (fd00::/8) is dropped" "$(grep -c '^udp .* 5312$' "$T/net.log")" 1

# ---- 4: the last VM stops ----
vm_stop b; vm_stop a
for _ in $(seq 200); do grep -q '^down' "$T/a.out" && grep -q '^down' "$T/b.out" && break; sleep 0.1; done
is "both VMs stopped: ip_forward back to 0" "$(hn cat /proc/sys/net/ipv4/ip_forward)" 0
vm_start c || { fail "VM c up"; done_testing; exit 1; }
kill -9 "${VM_PID[c]}"; wait "${VM_PID[c]}" 2>/dev/null
is "VM c killed -9: ip_forward still on" "$(hn cat /proc/sys/net/ipv4/ip_forward)" 1
hn "$NH" gc "$T/vms/c" >/dev/null 2>&1
is "gc after the kill: ip_forward back to 0" "$(hn cat /proc/sys/net/ipv4/ip_forward)" 0

# ---- 3: port forward slots ----
ip netns add "$GN"
hn ip link add gv type veth peer name eth0 netns "$GN"
hn ip addr add 10.66.0.1/24 dev gv; hn ip link set gv up
ip -n "$GN" link set lo up; ip -n "$GN" addr add 10.66.0.2/24 dev eth0; ip -n "$GN" link set eth0 up
# the guest's service: "ping" gets "pong"; anything else is held open, never read, never closed
(spawn ip netns exec "$GN" python3 -c '
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 80)); s.listen(512); held = []
print("ready", flush=True)
def one(c):
    try:
        l = c.recv(5)
    except OSError:
        return
    if l.startswith(b"ping"):
        c.sendall(b"pong\n"); c.close()
    else:
        held.append(c)
while True:
    c, _ = s.accept(); threading.Thread(target=one, args=(c,), daemon=True).start()
') >"$T/gsvc.log" 2>&1 &
SEC_PIDS+=($!)
(spawn ip netns exec "$HN" "$NFTCTL" fwd 10.66.0.2 tcp/18081:80) >"$T/fwd.out" 2>"$T/fwd.err" &
SEC_PIDS+=($!)
for _ in $(seq 100); do grep -q ready "$T/fwd.out" && grep -q ready "$T/gsvc.log" && break; sleep 0.1; done
ping_fwd() { hn python3 -c '
import socket
try:
    c = socket.create_connection(("127.0.0.1", 18081), timeout=5); c.sendall(b"ping\n")
    print(c.recv(16).decode().strip() or "eof")
except OSError as e:
    print("error")'; }
is "control: the forward relays" "$(ping_fwd)" pong
hn python3 -c '
import socket, time
cs = []
for i in range(80):
    c = socket.create_connection(("127.0.0.1", 18081), timeout=5); c.sendall(b"hold\n"); cs.append(c)
time.sleep(0.5)
for c in cs: c.close()    # the host clients hang up; the guest never answers nor closes
'
start=$SECONDS got=
while [ $((SECONDS - start)) -lt 120 ]; do
	got=$(ping_fwd); [ "$got" = pong ] && break; sleep 2
done
is "after 80 hung-up connections the guest holds open: the forward relays again" "$got" pong
diag "relayed again after $((SECONDS - start)) s"
done_testing
