#!/usr/bin/env bash
# Issue 15 item 8: the DNS forwarder forwards queries and nothing else.
# 1. RFC 2136 UPDATE, NOTIFY, a "query" carrying answer or authority
#    records, two OPT records, a non-OPT additional record, a response: none
#    reaches the host's resolver.  A plain query and one with one OPT do.
# 2. 600 queries in flight from one guest (the upstream never answers them)
#    used to fill all 256 slots of every forwarder, and another VM's DNS
#    stalled; now each source has its own share.
# 3. tcp/53 on the gateway is closed (the forwarder speaks UDP only; the
#    forwarder keeps the guest's EDNS0 buffer size, so answers up to 4 KiB
#    fit UDP): a host resolver listening on TCP port 53 is not reachable.
# 4. udp/53 on the gateway is open only while the forwarder runs: a VM
#    whose supervisor found no upstream cannot reach whatever else listens
#    on the host's port 53.
source "$(dirname "$0")/lib.sh"
sec_init 08
UP=$T/upstream.log
# the host's "own" resolver on every address, TCP and UDP 53 (logs what reaches it)
serve hostdns 53 || { fail "listener on port 53"; done_testing; exit 1; }

# 4 first: a VM without a forwarder (no nameserver in its resolv.conf)
: >"$T/empty.conf"
vm_start c HUTCH_RESOLV_CONF="$T/empty.conf" || { fail "VM c up"; sed 's/^/#   /' "$T/c.err"; done_testing; exit 1; }
bmac=$(hn cat "/sys/class/net/$BR/address")
# the guests here answer no ARP: the host learns their MACs statically
hn ip neigh replace "${VM_IP[c]}" lladdr "${VM_MAC[c]}" dev "$BR" nud permanent
vm_do c "tx $(frame dns "$bmac" "${VM_MAC[c]}" "${VM_IP[c]}" "$GW" 45001 0x4501 www.hutch.test)"
vm_do c "tx $(frame tcpsyn "$bmac" "${VM_MAC[c]}" "${VM_IP[c]}" "$GW" 45002 53)"
vm_do c "wait 800"
is "no forwarder running: udp/53 on the gateway is closed" "$(grep -c '^udp .* 45001 53$' "$T/hostdns.log")" 0
is "no forwarder running: tcp/53 on the gateway is closed" "$(frame rxcount "$T/c.out" tcp 53)" 0
vm_stop c
kill "${SEC_PIDS[@]}" 2>/dev/null; wait "${SEC_PIDS[@]}" 2>/dev/null; SEC_PIDS=()

# the upstream: logs "opcode qd an ns ar name" of what it gets; never answers slow.*
cat >"$T/up.py" <<'PY'
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 53))
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); t.bind(("0.0.0.0", 53)); t.listen(8)
log = open(sys.argv[1], "a", buffering=1); log.write("ready\n")
while True:
    q, src = s.recvfrom(4096)
    if len(q) < 12:
        continue
    qid, fl, qd, an, ns, ar = struct.unpack("!6H", q[:12])
    off, labels = 12, []
    while off < len(q) and q[off] and len(labels) < 20:
        labels.append(q[off + 1:off + 1 + q[off]].decode("ascii", "replace")); off += 1 + q[off]
    name = ".".join(labels)
    log.write("q %d %d %d %d %d %s\n" % ((fl >> 11) & 15, qd, an, ns, ar, name))
    if not name.startswith("slow"):
        s.sendto(struct.pack("!6H", qid, 0x8180, 1, 0, 0, 0) + q[12:off + 5], src)
PY
(spawn ip netns exec "$HN" python3 "$T/up.py" "$UP") >"$T/up.err" 2>&1 &
SEC_PIDS+=($!)
for _ in $(seq 100); do grep -q ready "$UP" 2>/dev/null && break; sleep 0.1; done
printf 'nameserver 127.0.0.1\n' >"$T/resolv.conf"
vm_start a || { fail "VM a up"; sed 's/^/#   /' "$T/a.err"; done_testing; exit 1; }
vm_start b || { fail "VM b up"; done_testing; exit 1; }
ok "VMs a and b up, with forwarders"
bmac=$(hn cat "/sys/class/net/$BR/address")	# a new bridge: c was the last VM on the old one
for v in a b; do hn ip neigh replace "${VM_IP[$v]}" lladdr "${VM_MAC[$v]}" dev "$BR" nud permanent; done

q() {	# q VM SPORT ID NAME [k=v...]: a DNS message from VM to the gateway
	local vm=$1; shift
	vm_do "$vm" "tx $(frame dns "$bmac" "${VM_MAC[$vm]}" "${VM_IP[$vm]}" "$GW" "$@")"
}
q a 46001 0x1001 plain.test
q a 46002 0x1002 edns.test opt=1
q a 46003 0x1003 update.test opcode=5
q a 46004 0x1004 notify.test opcode=4
q a 46005 0x1005 status.test opcode=2
q a 46006 0x1006 answer.test an=1 rr=1 ar=0
q a 46007 0x1007 authority.test ns=1 rr=1 ar=0
q a 46008 0x1008 twoopt.test opt=2
q a 46009 0x1009 extra.test rr=1
q a 46010 0x100a response.test qr=1
q a 46011 0x100b twoq.test qd=2
vm_do a "wait 1000"
got() { grep -c " $1\$" "$UP"; }
is "a plain query is forwarded" "$(got plain.test)" 1
is "a query with one OPT is forwarded" "$(got edns.test)" 1
is "... and answered" "$(frame rxcount "$T/a.out" udp 53 1002)" 1
for n in update notify status answer authority twoopt extra response twoq; do
	is "not forwarded: $n" "$(got $n.test)" 0
done

# 3. tcp/53 closed while the forwarder runs (the upstream also listens on TCP 53)
q a 46020 0x1020 tcpprobe.test
vm_do a "tx $(frame tcpsyn "$bmac" "${VM_MAC[a]}" "${VM_IP[a]}" "$GW" 46021 53)"
vm_do a "wait 800"
is "tcp/53 on the gateway is closed" "$(frame rxcount "$T/a.out" tcp 53)" 0

# 2. a floods 600 queries the upstream never answers, from 600 source ports
#    (two forwarders share the gateway's port: enough to fill both)
python3 -c 'import sys
sys.path.insert(0, sys.argv[1])
import frames
bmac, mac, ip, gw = sys.argv[2:6]
for i in range(1, 601):
    f = frames.mac(bmac) + frames.mac(mac) + b"\x08\x00" + frames.udp4(ip, gw, 47000 + i, 53,
        frames.dnsmsg(0x2000 + i, "slow%d.test" % i, {}))
    print("tx " + f.hex())' "$(dirname "$FRAMES")" "$bmac" "${VM_MAC[a]}" "${VM_IP[a]}" "$GW" >"$T/flood.cmds"
for i in 1 2 3 4 5 6; do
	echo "tx $(frame dns "$bmac" "${VM_MAC[b]}" "${VM_IP[b]}" "$GW" $((48000 + i)) $((0x3000 + i)) victim$i.test)"
done >"$T/victim.cmds"
cat "$T/flood.cmds" >&"${VM_FD[a]}"
vm_do a "wait 300"
cat "$T/victim.cmds" >&"${VM_FD[b]}"	# well within the 5 s a's queries stay in flight
vm_do b "wait 1500"
slow=$(grep -c ' slow' "$UP")
[ "$slow" -le $((2 * 32)) ] && ok "at most 32 of a's queries in flight per forwarder ($slow reached the upstream)" ||
	fail "at most 32 of a's queries in flight per forwarder ($slow reached the upstream)"
is "while a has 600 queries in flight, b's 6 queries are all answered" \
	"$(for i in 1 2 3 4 5 6; do frame rxcount "$T/b.out" udp 53 "$(printf '%04x' $((0x3000 + i)))"; done | awk '{s += $1} END {print s}')" 6
done_testing
