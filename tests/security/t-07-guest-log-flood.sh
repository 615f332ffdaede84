#!/usr/bin/env bash
# Issue 15 item 7: what a guest can make hutch log is rate-limited, and
# supervisor.log is bounded like console.log.
# 1. One million DHCPDECLINE frames from the guest (each a valid decline of
#    its own lease) used to write one line each.  Now: a handful, then one
#    line saying the rest are suppressed.
# 2. Malformed DHCP and DNS floods write nothing.
# 3. supervisor.log past 1 MiB (a VM that ran long, or a log filled before)
#    becomes supervisor.log.1 when the supervisor writes to it: a real
#    `hutch up` (tiny guest, network none) on a project whose log is
#    already 1.5 MiB.
source "$(dirname "$0")/lib.sh"
source "$HUTCH_SRC/tests/lib/guest.sh"
sec_init 07
N=${FLOOD_N:-1000000}
vm_start a || { fail "VM a up"; sed 's/^/#   /' "$T/a.err"; done_testing; exit 1; }
ok "VM a has its lease ${VM_IP[a]}"
decline=$(frame dhcp 4 "${VM_MAC[a]}" 0x77 "req=${VM_IP[a]}" "server=$GW")
start=$SECONDS
vm_do a "flood $N $decline"
vm_do a "wait 2000"
diag "$N DHCPDECLINE frames written into the tap in $((SECONDS - start)) s"
lines=$(grep -c 'declined its address' "$T/a.err")
diag "lines about it: $lines"
# 10 lines per 60 s window (src/log.h LOG_RL_BURST, LOG_RL_WINDOW_S), and one
# more: a flood that outlasts a window (a loaded host) gets a window more
most=$((10 * ((SECONDS - start) / 60 + 1) + 1))
[ "$lines" -ge 1 ] && [ "$lines" -le "$most" ] && ok "$N DHCPDECLINEs: $lines log lines (at most $most)" ||
	fail "$N DHCPDECLINEs: $lines log lines (at most $most)"
grep -q 'suppressed' "$T/a.err" && ok "... and a line saying the rest are suppressed" ||
	fail "... and a line saying the rest are suppressed"

# malformed: DHCP with a bad cookie, and DNS queries that are not queries
before=$(wc -l <"$T/a.err")
bad=$(frame dhcp 4 "${VM_MAC[a]}" 0x78 "req=${VM_IP[a]}" "server=$GW" | sed 's/63825363/00000000/')
vm_do a "flood 100000 $bad"
bmac=$(hn cat "/sys/class/net/$BR/address")
vm_do a "flood 100000 $(frame udp "$bmac" "${VM_MAC[a]}" "${VM_IP[a]}" "$GW" 5353 53 not-a-dns-query)"
vm_do a "wait 1000"
is "200000 malformed DHCP and DNS frames: no log line" "$(( $(wc -l <"$T/a.err") - before ))" 0
sz=$(stat -c %s "$T/a.err")
[ "$sz" -lt 65536 ] && ok "the whole log is small ($sz bytes)" || fail "the whole log is small ($sz bytes)"

# 3. supervisor.log rotation, through the product
if ! guest_tiny_build; then fail "make tiny"; done_testing; exit 1; fi
export XDG_DATA_HOME=$T/data XDG_CACHE_HOME=$T/cache
P=$T/proj
mkdir -p "$P"
cat >"$P/hutch.yaml" <<Y
name: logcap
cpus: 1
memory: 128
accel: tcg
kernel: {path: $TINY_KERNEL, initrd: $TINY_INITRD, cmdline: "console=ttyS0 quiet"}
network: {mode: none}
timeouts: {boot: 120, shutdown: 20}
Y
printf '#cloud-config\n' >"$P/cloud-init.yml"
L=$XDG_DATA_HOME/hutch/vms/logcap
mkdir -p "$L"
python3 -c 'import sys; open(sys.argv[1], "w").write(("x" * 99 + "\n") * 15000)' "$L/supervisor.log"
if timeout 300 "$HUTCH" -C "$P" up >"$T/up.out" 2>&1; then ok "hutch up (network none)"; else
	fail "hutch up (network none)"; sed 's/^/#   /' "$T/up.out" | tail -5
fi
for _ in $(seq 100); do [ -e "$L/supervisor.log.1" ] && break; sleep 0.2; done
cur=$(stat -c %s "$L/supervisor.log" 2>/dev/null || echo 0) old=$(stat -c %s "$L/supervisor.log.1" 2>/dev/null || echo 0)
diag "supervisor.log $cur bytes, supervisor.log.1 $old bytes"
[ "$cur" -lt 1048576 ] && ok "supervisor.log is under 1 MiB again" || fail "supervisor.log is under 1 MiB again ($cur)"
[ "$old" -ge 1500000 ] && ok "the old content is in supervisor.log.1" || fail "the old content is in supervisor.log.1 ($old)"
grep -q 'hutch-supervisor' "$L/supervisor.log" && ok "the supervisor keeps logging to supervisor.log" ||
	fail "the supervisor keeps logging to supervisor.log"
timeout 120 "$HUTCH" -C "$P" halt >/dev/null 2>&1 || timeout 60 "$HUTCH" -C "$P" destroy >/dev/null 2>&1
done_testing
