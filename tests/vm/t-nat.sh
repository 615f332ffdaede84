#!/usr/bin/env bash
# Network mode nat end to end through the core, inside a network namespace of
# our own (never the host's network): up waits for the DHCP lease, ip/status
# show it, QEMU gets the tap from the net extension, and after halt, and after
# a kill -9 of the supervisor followed by gc (also with the VM directory
# removed), no tap, bridge or nft table is left.
source "$(dirname "$0")/../lib/tap.sh"
cd "$HUTCH_SRC" || exit 1
[ "$(id -u)" -eq 0 ] || { skip "nat" "needs root for a network namespace"; done_testing; exit 0; }
source tests/lib/guest.sh
guest_tiny_build || { skip "nat" "tiny guest does not build"; done_testing; exit 0; }

NS=core-nat-$$
T=$(mktemp -d /tmp/hutch-core-nat.XXXXXX)
export XDG_DATA_HOME=$T/data XDG_CACHE_HOME=$T/cache HOME=$T/home
unset HUTCH_DIR
mkdir -p "$T/p" "$HOME"
V=$XDG_DATA_HOME/hutch/vms/core-n
N() { ip netns exec "$NS" "$HUTCH" -C "$T/p" "$@"; }
js() { jq -r "$1" "$V/state.json" 2>/dev/null; }
gone() { [ ! -e "/proc/$1" ] || grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
wait_for() { local n=$(($1 * 5)); shift; while ((n-- > 0)); do "$@" && return 0; sleep 0.2; done; return 1; }
links() { ip -n "$NS" -o link show | awk -F': ' '{print $2}' | grep -v '^lo$' | tr '\n' ' '; }
tables() { ip netns exec "$NS" nft list tables 2>/dev/null | tr '\n' ' '; }
cleanup() {
	local p
	for p in $(jq -r '.supervisor_pid // empty, .qemu_pid // empty' "$V/state.json" 2>/dev/null); do
		grep -qs "$T" "/proc/$p/cmdline" && kill -9 "$p" 2>/dev/null
	done
	ip netns del "$NS" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
ip netns add "$NS" && ip -n "$NS" link set lo up || { fail "network namespace"; done_testing; exit 1; }

cat >"$T/p/hutch.yaml" <<EOF
name: core-n
cpus: 1
memory: 256
accel: tcg
kernel: {path: $TINY_KERNEL, initrd: $TINY_INITRD, cmdline: "console=ttyS0 quiet no_timer_check hutch.net=dhcp"}
network: {mode: nat}
timeouts: {boot: 600, shutdown: 300}
EOF
printf '#cloud-config\n' >"$T/p/cloud-init.yml"

if ! N up 2>"$T/err"; then
	fail "up (network nat)"
	sed 's/^/#   /' "$T/err"
	done_testing
	exit 1
fi
ok "up (network nat) returns once the guest has its lease"
ip=$(N ip 2>/dev/null)
[[ $ip == 10.77.0.* ]] && ok "ip prints the leased address ($ip)" || fail "ip prints the leased address ($ip)"
is "status shows it" "$(N --json status | jq -r .ip)" "$ip"
is "state net.ip" "$(js .net.ip)" "$ip"
jq -e '.qemu_argv | map(select(startswith("tap,") or startswith("-netdev"))) | length > 0' "$V/state.json" >/dev/null &&
	jq -e --arg m "$(js .mac)" '.qemu_argv | map(select(contains("mac=" + $m))) | length == 1' "$V/state.json" >/dev/null &&
	ok "QEMU got the tap and the VM's MAC" || fail "QEMU got the tap and the VM's MAC"
[[ $(links) == *ht-* ]] && ok "tap exists while running" || fail "tap exists while running ($(links))"

check "halt" N halt
is "exit_reason guest-shutdown" "$(js .exit_reason)" guest-shutdown
is "no tap or bridge left after halt" "$(links)" ""
is "no nft table left after halt" "$(tables)" ""

N up --json >"$T/up.json" 2>"$T/err" && ok "up again (--json)" || { fail "up again (--json)"; sed 's/^/#   /' "$T/err"; }
is "up --json reports the lease with its address" \
	"$(jq -r 'select(.phase == "leased") | .ip' "$T/up.json")" "$(N ip 2>/dev/null)"
qemu=$(js .qemu_pid)
kill -9 "$(js .supervisor_pid)"
wait_for 120 gone "$qemu" && ok "kill -9 supervisor: QEMU gone" || fail "kill -9 supervisor: QEMU gone"
check "gc" ip netns exec "$NS" "$HUTCH" gc
is "no tap or bridge left after gc" "$(links)" ""
is "no nft table left after gc" "$(tables)" ""
is "status crashed" "$(N --json status | jq -r .status)" crashed
check "destroy" N destroy

# the VM's directory removed by hand after a crash: nothing in state names
# the tap and rules any more, and gc still finds and removes them
check "up after destroy" N up
qemu=$(js .qemu_pid)
kill -9 "$(js .supervisor_pid)"
wait_for 30 gone "$qemu" && ok "kill -9 supervisor again: QEMU gone" || fail "kill -9 supervisor again: QEMU gone"
rm -rf "$V"
[[ $(tables) == *hutch* && -n $(links) ]] && ok "the rules and the bridge outlived the VM's directory" ||
	fail "the rules and the bridge outlived the VM's directory ($(tables) / $(links))"
check "gc with the VM's directory gone" ip netns exec "$NS" "$HUTCH" gc
is "no tap or bridge left after gc of a VM without a directory" "$(links)" ""
is "no nft table left either" "$(tables)" ""
done_testing
