#!/usr/bin/env bash
# Issue 15 item 10: link-local frames (01:80:c2:00:00:0X) take the bridge's
# local path, not prerouting, so hutch's anti-spoofing never saw them.
# Attacks, from guest A (a hostile guest writing raw frames into its tap):
# 1. an LLDP frame to 01:80:c2:00:00:0e with VM B's MAC as its source: the
#    bridge used to learn B's MAC on A's port, so the host's traffic for B
#    went to A.  The host's traffic for B must still reach B (and not A).
# 2. the same with 01:80:c2:00:00:03 (802.1X), which takes the bridge's
#    input hook.
# 3. IPv4/UDP to the gateway's listener with a link-local destination MAC:
#    such frames are handed to the host's IP stack as received on the tap
#    itself, where hutch's input rules (written for the bridge) never
#    matched.  Nothing may reach the listener.
source "$(dirname "$0")/lib.sh"
sec_init 10
vm_start a || { fail "VM a up"; sed 's/^/#   /' "$T/a.err"; done_testing; exit 1; }
vm_start b || { fail "VM b up"; sed 's/^/#   /' "$T/b.err"; done_testing; exit 1; }
ok "VMs a (${VM_IP[a]}) and b (${VM_IP[b]}) have their leases"
serve host 5301 || { fail "listener"; done_testing; exit 1; }

# the host sends to B; B has no ARP of its own here, so a static neighbour
hn ip neigh replace "${VM_IP[b]}" lladdr "${VM_MAC[b]}" dev "$BR" nud permanent
to_b() { hn python3 -c 'import socket,sys; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.sendto(sys.argv[2].encode(),(sys.argv[1],9999))' "${VM_IP[b]}" "$1"; }
to_b before-attack
vm_do b "wait 500"
[ "$(vm_rx b "$(hexof before-attack)")" -ge 1 ] && ok "control: the host's datagram reaches B" ||
	fail "control: the host's datagram reaches B"

# 1 and 2: B's MAC as source, to link-local destinations
for d in 0e 03 00 02; do
	vm_do a "tx $(frame raw 01:80:c2:00:00:$d "${VM_MAC[b]}" 88cc lldp-spoof)"
done
vm_do a "wait 300"
to_b after-attack
vm_do b "wait 1000"
got_b=$(vm_rx b "$(hexof after-attack)") got_a=$(vm_rx a "$(hexof after-attack)")
is "after A's link-local frames with B's MAC: the host's datagram still reaches B" "$got_b" 1
is "... and not A" "$got_a" 0
owner=$(hn bridge fdb show br "$BR" 2>/dev/null | grep -i "^${VM_MAC[b]} " | awk '{print $3}' | sort -u | tr '\n' ' ')
is "the FDB has B's MAC on B's port only" "$owner" "${VM_TAP[b]} "
diag "fdb: $(hn bridge fdb show br "$BR" 2>/dev/null | grep -i -e "${VM_MAC[a]}" -e "${VM_MAC[b]}" | tr '\n' ';')"

# 3: IP to the host through link-local destinations
bmac=$(hn cat "/sys/class/net/$BR/address")
for d in 0e 03 00; do
	vm_do a "tx $(frame udp 01:80:c2:00:00:$d "${VM_MAC[a]}" "${VM_IP[a]}" "$GW" 40000 5301 ll-$d)"
done
vm_do a "tx $(frame udp "$bmac" "${VM_MAC[a]}" "${VM_IP[a]}" "$GW" 40001 5301 control)"
vm_do a "wait 500"
is "UDP to the gateway with a link-local destination MAC: nothing reaches the listener" \
	"$(grep -c '^udp .* 4000[0] 5301$' "$T/host.log")" 0
is "control: the same datagram to the bridge's MAC is dropped by the input rules too" \
	"$(grep -c '^udp .* 40001 5301$' "$T/host.log")" 0

# the port flags that make this hold
learn=$(hn bridge -d link show dev "${VM_TAP[a]}" 2>/dev/null | grep -o 'learning [a-z]*' | head -n1)
is "learning is off on the VM's port" "$learn" "learning off"
nll=$(hn ip -d link show dev "$BR" 2>/dev/null | grep -o 'no_linklocal_learn [0-9]')
is "no_linklocal_learn on the bridge" "$nll" "no_linklocal_learn 1"
hn nft list chain bridge hutch input >/dev/null 2>&1 && ok "bridge hutch has an input chain" ||
	fail "bridge hutch has an input chain"
done_testing
