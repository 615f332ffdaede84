# shellcheck shell=bash
# Shared set-up of the network security tests (issue 15, items 7-11): one
# "host" network namespace per test (sec-<test>-$$) with hutch's bridge
# (HUTCH_BRIDGE/HUTCH_SUBNET of its own), and VMs played by net_helper's
# fake supervisor in guest mode: the product's net extension does all of
# its set-up (bridge, tap, rules, DHCP, DNS, forwards), and the test writes
# frames into the tap fd exactly as QEMU would for a hostile guest, and
# reads what the host sends to the guest.
#
#   sec_init NAME             root and tools checked (skips otherwise), namespace up, trap set
#   vm_start VM [ENV=V...]    a VM with its lease; sets VM_IP[VM], VM_MAC[VM], VM_ID[VM], VM_TAP[VM]
#   vm_do VM CMD              a guest-mode command ("tx HEX", "flood N HEX", "wait MS"), waits until done
#   vm_stop VM                its teardown, as when QEMU exits
#   vm_rx VM HEXSUBSTR        how many frames the VM received containing HEXSUBSTR
#   hn CMD...                 run in the host namespace
#   (spawn CMD...) &          a background process that holds no VM's stdin
#   frame ARGS...             tests/lib/frames.py (hex of a hand-made frame)
#   serve NAME PORT...        nft_probe.py listeners in the host namespace, logging to $T/NAME.log
source "$(dirname "${BASH_SOURCE[0]}")/../lib/tap.sh"
NH=$HUTCH_SRC/build/tests/net_helper
FRAMES=$HUTCH_SRC/tests/lib/frames.py
PROBE=$HUTCH_SRC/tests/net/nft_probe.py
declare -A VM_IP VM_MAC VM_ID VM_TAP VM_FD VM_PID
SEC_PIDS=()

sec_init() {
	local t
	if [ "$(id -u)" -ne 0 ]; then skip "$1" "needs root (network namespaces)"; done_testing; exit 0; fi
	for t in ip nft python3; do
		command -v $t >/dev/null || { skip "$1" "$t missing"; done_testing; exit 0; }
	done
	[ -x "$NH" ] || { fail "build/tests/net_helper missing (make unit)"; done_testing; exit 1; }
	HN=sec-$1-$$
	T=$(mktemp -d "/tmp/sec-$1.XXXXXX")
	export HUTCH_BRIDGE=hs$$ HUTCH_SUBNET=${SEC_SUBNET:-10.88.0.1/24} HUTCH_RESOLV_CONF=$T/resolv.conf
	BR=$HUTCH_BRIDGE GW=${HUTCH_SUBNET%/*}
	printf 'nameserver 127.0.0.1\n' >"$T/resolv.conf"
	trap sec_cleanup EXIT
	ip netns add "$HN" && ip -n "$HN" link set lo up || { fail "namespace $HN"; done_testing; exit 1; }
}

sec_cleanup() {
	local v p
	for v in "${!VM_FD[@]}"; do eval "exec ${VM_FD[$v]}>&-" 2>/dev/null; done
	for p in "${VM_PID[@]}" "${SEC_PIDS[@]}"; do kill "$p" 2>/dev/null; done
	sleep 0.5
	for p in "${VM_PID[@]}" "${SEC_PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	ip netns del "$HN" 2>/dev/null
	[ -n "${SEC_KEEP:-}" ] || rm -rf "$T"
}

hn() { ip netns exec "$HN" "$@"; }
# spawn CMD...: CMD in the background without the VMs' stdin pipes (a VM
# sees its stdin end only when no one else holds it open); $! is CMD itself
spawn() {
	local fd
	for fd in "${VM_FD[@]}"; do eval "exec $fd>&-"; done
	exec "$@"
}
frame() { python3 "$FRAMES" "$@"; }
jget() { python3 -c 'import json,sys
try:
    v = json.load(open(sys.argv[1]))
    for k in sys.argv[2:]: v = v[k]
    print(v)
except Exception: pass' "$@"; }

# vm_start VM [ENV=VALUE...]: 0 when the VM has its lease
vm_start() {
	local vm=$1 fd; shift
	mkdir -p "$T/vms"
	mkfifo "$T/$vm.in"
	# not through hn(): ip netns exec and env exec, so $! is net_helper itself
	(spawn ip netns exec "$HN" env "$@" "$NH" sv "$T/vms/$vm" "$vm" guest) <"$T/$vm.in" >"$T/$vm.out" 2>"$T/$vm.err" &
	VM_PID[$vm]=$!
	exec {fd}>"$T/$vm.in"
	VM_FD[$vm]=$fd
	for _ in $(seq 600); do
		grep -q '^lease ' "$T/$vm.out" 2>/dev/null && break
		kill -0 "${VM_PID[$vm]}" 2>/dev/null || break
		sleep 0.1
	done
	VM_IP[$vm]=$(sed -n 's/^lease //p' "$T/$vm.out")
	VM_MAC[$vm]=$(jget "$T/vms/$vm/state.json" mac)
	VM_ID[$vm]=$(jget "$T/vms/$vm/state.json" net id)
	VM_TAP[$vm]=$(jget "$T/vms/$vm/state.json" net tap)
	[ -n "${VM_IP[$vm]}" ] && [ "${VM_IP[$vm]}" != none ]
}

# vm_do VM CMD: send a guest-mode command, wait until it was carried out
vm_do() {
	local vm=$1 n
	n=$(grep -c '^synced' "$T/$vm.out")
	printf '%s\nsync\n' "$2" >&"${VM_FD[$vm]}"
	for _ in $(seq 1200); do
		[ "$(grep -c '^synced' "$T/$vm.out")" -gt "$n" ] && return 0
		kill -0 "${VM_PID[$vm]}" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

# vm_stop VM: close its stdin (QEMU exits), wait for its teardown
vm_stop() {
	eval "exec ${VM_FD[$1]}>&-"
	unset "VM_FD[$1]"
	for _ in $(seq 600); do grep -q '^down' "$T/$1.out" && return 0; sleep 0.1; done
	return 1
}

vm_rx() { grep '^rx ' "$T/$1.out" | grep -c "$2"; }

serve() {	# serve NAME PORT...: nft_probe.py listeners in the host namespace
	local name=$1; shift
	(spawn ip netns exec "$HN" python3 "$PROBE" serve "$name" "$T/$name.log" "$@") >/dev/null 2>&1 &
	SEC_PIDS+=($!)
	for _ in $(seq 100); do grep -q ready "$T/$name.log" 2>/dev/null && return 0; sleep 0.1; done
	return 1
}

hexof() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }
