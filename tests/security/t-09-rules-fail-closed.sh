#!/usr/bin/env bash
# Issue 15 item 9: hutch's rules fail closed.
# 1. A second bridge: a VM started with another HUTCH_BRIDGE used to re-point
#    the base rules to its bridge, leaving the first bridge's VMs with rules
#    that no longer matched (their packets to the host were accepted).  It
#    must be refused, and the first VM's isolation must hold.
# 2. `nft flush table bridge hutch` (and inet): the chains stay, the rules
#    go; the presence check looked at chain names only, so the tap stayed
#    unfiltered for good.  The supervisor must notice and restore the rules.
# 3. A repair that cannot succeed (someone holds a conflicting `pre` chain in
#    `bridge hutch`): the VM's tap must go down, so nothing passes.
# The attacker is the guest of VM a: a frame from a forged source address to
# the gateway's DHCP port (which the inet rules accept from any source, so
# only the bridge's anti-spoofing stops it), and a datagram from its own
# address to a host port that isolation closes.
source "$(dirname "$0")/lib.sh"
sec_init 09
vm_start a || { fail "VM a up"; sed 's/^/#   /' "$T/a.err"; done_testing; exit 1; }
ok "VM a has its lease ${VM_IP[a]}"
serve host 67 5302 || { fail "listeners"; done_testing; exit 1; }
bmac=$(hn cat "/sys/class/net/$BR/address")
n=0
attack() {	# attack LABEL: forged-source DHCP and a closed host port, from a; sets SPOOF and CLOSED
	n=$((n + 1))
	vm_do a "tx $(frame udp "$bmac" "${VM_MAC[a]}" 10.88.0.99 "$GW" $((41000 + n)) 67 spoof)"
	vm_do a "tx $(frame udp "$bmac" "${VM_MAC[a]}" "${VM_IP[a]}" "$GW" $((42000 + n)) 5302 closed)"
	vm_do a "wait 700"
	SPOOF=$(grep -c "^udp 10.88.0.99 $((41000 + n)) 67$" "$T/host.log")
	CLOSED=$(grep -c "^udp ${VM_IP[a]} $((42000 + n)) 5302$" "$T/host.log")
}
attack control
is "control: a forged source is dropped" "$SPOOF" 0
is "control: the host's closed port is closed" "$CLOSED" 0

# 1. a second bridge
if SEC2=1 vm_start c HUTCH_BRIDGE=hz$$ HUTCH_SUBNET=10.89.0.1/24; then
	fail "a VM on a second bridge (HUTCH_BRIDGE=hz$$) is refused"
else
	ok "a VM on a second bridge (HUTCH_BRIDGE=hz$$) is refused"
fi
grep -E 'bridge|hutch' "$T/c.err" | head -3 | sed 's/^/#   c: /'
attack "second bridge"
is "after the second bridge: a's forged source is still dropped" "$SPOOF" 0
is "after the second bridge: the host's closed port is still closed" "$CLOSED" 0
hn nft list chain inet hutch input 2>/dev/null | grep -q "iifname \"$BR\"" &&
	ok "the base rules still serve $BR" || fail "the base rules still serve $BR"
hn ip link show "hz$$" >/dev/null 2>&1 && fail "no second bridge left behind" || ok "no second bridge left behind"

# 2. flushed tables (chains kept, rules gone)
for tbl in "bridge hutch" "inet hutch" "bridge hutch" ; do
	hn nft flush table $tbl
	vm_do a "wait 1500"
	attack "flush $tbl"
	is "after nft flush table $tbl: a's forged source is dropped" "$SPOOF" 0
	is "after nft flush table $tbl: the host's closed port is closed" "$CLOSED" 0
done
hn nft delete rule bridge hutch "vm-${VM_ID[a]}" handle \
	"$(hn nft -a list chain bridge hutch "vm-${VM_ID[a]}" | sed -n 's/.*drop IPv4 source other than.*# handle \([0-9]*\)/\1/p')"
vm_do a "wait 1500"
attack "one rule deleted"
is "after one anti-spoofing rule was deleted: a's forged source is dropped" "$SPOOF" 0
c=$(hn nft list chain bridge hutch "vm-${VM_ID[a]}" 2>/dev/null | grep -c 'drop IPv4 source other than')
is "... the rule is back" "$c" 1
grep -i 'restor\|repair' "$T/a.err" | head -3 | sed 's/^/#   a: /'

# 3. a repair that fails: the tap goes down
hn nft -f - <<EOF
delete table bridge hutch
table bridge hutch {
	chain pre { type filter hook forward priority 0; policy accept; }
}
EOF
vm_do a "wait 2000"
flags=$(hn ip -o link show dev "${VM_TAP[a]}" 2>/dev/null | sed -n 's/.*<\([^>]*\)>.*/\1/p')
case ",$flags," in
*,UP,*) fail "a repair that fails takes a's tap down (flags $flags)" ;;
*) ok "a repair that fails takes a's tap down (flags ${flags:-gone})" ;;
esac
attack "repair failed"
is "with the repair failed: a's forged source does not pass" "$SPOOF" 0
is "with the repair failed: the host's closed port is closed" "$CLOSED" 0
grep -iE 'down|fail' "$T/a.err" | tail -3 | sed 's/^/#   a: /'
done_testing
