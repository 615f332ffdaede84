#!/usr/bin/env bash
# A scripted test rig, as users of issue 16 run one: RIG_N (16) tiny VMs
# started at once from a fresh HOME (no ~/.ssh/hutch yet: every `up` needs
# the managed key, and they all ask for it at the same moment), each from
# its own project dir, network mode nat inside a network namespace of ours
# with its own bridge and subnet (HUTCH_BRIDGE/HUTCH_SUBNET).  All start with
# `up --no-wait --json`, then `hutch wait --for ip` runs for all of them in
# parallel.  Every VM must reach ready with its own address, one managed key
# made once, `hutch list --json` must agree; then all are halted at once and
# nothing is left (processes, taps, bridge, nft tables).
# The figures for `make bench` (tests/bench/bench-rig.sh) are printed as a
# "# rig: ..." line: wall time from the first `up` to the last VM with its
# lease, the summed RSS of the supervisors, and the time to halt them all.
# test: guest tiny
set -u
source "$(dirname "$0")/../lib/tap.sh"
source "$HUTCH_SRC/tests/lib/guest.sh"
N=${RIG_N:-16}
[ "$(id -u)" -eq 0 ] || { skip "rig of $N VMs" "needs root for a network namespace"; done_testing; exit 0; }
for t in ip nft jq qemu-system-x86_64; do
	command -v $t >/dev/null || { skip "rig of $N VMs" "$t missing"; done_testing; exit 0; }
done
guest_tiny_build || { fail "make tiny"; done_testing; exit 1; }

NS=rig-$$
T=$(mktemp -d /tmp/hutch-rig.XXXXXX)
chmod 755 "$T"
export HOME=$T/home XDG_DATA_HOME=$T/data XDG_CACHE_HOME=$T/cache XDG_CONFIG_HOME=$T/config
export HUTCH_BRIDGE=hrig0 HUTCH_SUBNET=10.78.0.1/24
unset HUTCH_DIR
mkdir -p "$HOME" "$XDG_DATA_HOME" "$XDG_CACHE_HOME"
VMS=$XDG_DATA_HOME/hutch/vms
cleanup() {
	local p d
	for d in "$VMS"/*; do
		for p in $(jq -r '.supervisor_pid // empty, .qemu_pid // empty' "$d/state.json" 2>/dev/null); do
			grep -qs "$T" "/proc/$p/cmdline" && kill -9 "$p" 2>/dev/null
		done
	done
	ip netns del "$NS" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
ip netns add "$NS" && ip -n "$NS" link set lo up || { fail "network namespace $NS"; done_testing; exit 1; }
X() { ip netns exec "$NS" "$HUTCH" "$@"; }
name() { printf 'rig-%02d' "$1"; }
for ((i = 1; i <= N; i++)); do
	mkdir -p "$T/p$i"
	cat >"$T/p$i/hutch.yaml" <<Y
name: $(name "$i")
cpus: 1
memory: 256
accel: tcg
kernel: {path: $TINY_KERNEL, initrd: $TINY_INITRD, cmdline: "console=ttyS0 quiet no_timer_check hutch.net=dhcp"}
network: {mode: nat}
timeouts: {boot: 900, shutdown: 300}
Y
	# no key in the user-data: the tiny guest has no sshd, nothing waits for SSH
	printf '#cloud-config\n' >"$T/p$i/cloud-init.yml"
done
[ ! -e "$HOME/.ssh/hutch" ] && ok "a fresh HOME: no managed key yet" || fail "a fresh HOME: no managed key yet"

# --- all at once: up --no-wait, then wait --for ip -----------------------------
t0=$(now)
for ((i = 1; i <= N; i++)); do
	(ip netns exec "$NS" timeout 900 "$HUTCH" -C "$T/p$i" up --no-wait --json >"$T/up.$i" 2>"$T/up.$i.err"
	 echo $? >"$T/up.$i.rc") &
done
wait
t_started=$(since "$t0")
bad=
for ((i = 1; i <= N; i++)); do
	[ "$(cat "$T/up.$i.rc")" = 0 ] &&
		[ "$(jq -r 'select(.phase == "done") | "\(.outcome) \(.exit)"' "$T/up.$i" 2>/dev/null)" = "ready 0" ] ||
		bad="$bad $i"
done
[ -z "$bad" ] && ok "$N x up --no-wait at once: all exit 0 with outcome ready ($t_started s)" || {
	fail "$N x up --no-wait at once: all exit 0 with outcome ready"
	for i in $bad; do diag "VM $i: exit $(cat "$T/up.$i.rc"): $(tail -3 "$T/up.$i.err" | tr '\n' ' ')"; done
}
is "no key race: no ssh-keygen prompt or missing key" \
	"$(cat "$T"/up.*.err | grep -ciE 'overwrite|no such file|ssh-keygen failed')" 0
is "the managed key was made once" "$(cat "$T"/up.*.err | grep -c 'created the managed SSH key')" 1
check "... and it is a valid ed25519 key with the comment hutch" \
	bash -c 'ssh-keygen -l -f "$HOME/.ssh/hutch.pub" | grep -q "(ED25519)" && [ "$(cut -d" " -f3 "$HOME/.ssh/hutch.pub")" = hutch ]'

for ((i = 1; i <= N; i++)); do
	(X -C "$T/p$i" wait --for ip --timeout 900 >"$T/ip.$i" 2>"$T/ip.$i.err"; echo $? >"$T/ip.$i.rc") &
done
wait
t_ready=$(since "$t0")
bad=
for ((i = 1; i <= N; i++)); do
	[ "$(cat "$T/ip.$i.rc")" = 0 ] && [ -s "$T/ip.$i" ] || bad="$bad $i"
done
[ -z "$bad" ] && ok "$N x wait --for ip in parallel: every VM has its lease ($t_ready s after the first up)" || {
	fail "$N x wait --for ip in parallel: every VM has its lease"
	for i in $bad; do
		diag "VM $i: wait exit $(cat "$T/ip.$i.rc"): $(tail -2 "$T/ip.$i.err" | tr '\n' ' ')"
		tail -5 "$VMS/$(name "$i")/supervisor.log" 2>/dev/null | sed 's/^/#     /'
	done
}
addrs=$(cat "$T"/ip.* 2>/dev/null | grep -E '^10\.78\.0\.[0-9]+$' | sort -u)
is "$N distinct addresses, all in HUTCH_SUBNET 10.78.0.0/24" "$(wc -l <<<"$addrs" | tr -d ' ')" "$N"

j=$(X list --json 2>/dev/null)
is "list --json: $N VMs running" "$(jq '[.[] | select(.status == "running")] | length' <<<"$j" 2>/dev/null)" "$N"
is "list --json: their addresses are the leases" \
	"$(jq -r '.[] | select(.status == "running") | .ip' <<<"$j" 2>/dev/null | sort -u | tr '\n' ' ')" \
	"$(tr '\n' ' ' <<<"$addrs")"
is "list --json: each from its own project dir" \
	"$(jq -r '.[].project' <<<"$j" 2>/dev/null | sort -u | wc -l | tr -d ' ')" "$N"
taps=$(ip -n "$NS" -o link show master hrig0 2>/dev/null | grep -c ' ht-')
is "$N taps on the rig's own bridge hrig0" "$taps" "$N"

rss=0
for ((i = 1; i <= N; i++)); do
	sp=$(jq -r '.supervisor_pid // empty' "$VMS/$(name "$i")/state.json" 2>/dev/null)
	r=$(awk '/^VmRSS:/ {print $2}' "/proc/$sp/status" 2>/dev/null)
	rss=$((rss + ${r:-0}))
done

# --- all halted at once ----------------------------------------------------------
t1=$(now)
for ((i = 1; i <= N; i++)); do
	(X -C "$T/p$i" halt >"$T/halt.$i" 2>&1; echo $? >"$T/halt.$i.rc") &
done
wait
t_halt=$(since "$t1")
bad=
for ((i = 1; i <= N; i++)); do [ "$(cat "$T/halt.$i.rc")" = 0 ] || bad="$bad $i"; done
[ -z "$bad" ] && ok "$N x halt at once: all exit 0 ($t_halt s)" ||
	{ fail "$N x halt at once"; for i in $bad; do diag "VM $i: $(tail -2 "$T/halt.$i" | tr '\n' ' ')"; done; }
is "list --json: all stopped" "$(X list --json 2>/dev/null | jq '[.[] | select(.status == "stopped")] | length')" "$N"
left=$(pgrep -f "$T" | tr '\n' ' ')
is "no QEMU or supervisor left" "$left" ""
is "no tap and no bridge left" "$(ip -n "$NS" -o link show | awk -F': ' '{print $2}' | grep -v '^lo$' | tr '\n' ' ')" ""
is "no nft table left" "$(ip netns exec "$NS" nft list tables 2>/dev/null | tr '\n' ' ')" ""

diag "rig: vms=$N up_no_wait_s=$t_started ready_s=$t_ready supervisor_rss_kib=$rss halt_all_s=$t_halt load=$(cut -d' ' -f1 /proc/loadavg)"
done_testing
