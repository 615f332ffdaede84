#!/usr/bin/env bash
# Shares through a VM's life with the real supervisor (tiny guest, kernel
# boot, TCG): `up` creates the image on first use, mounts it nosymfollow and
# starts virtiofsd; the guest sees the folder; `mount` refuses while the VM
# runs; `halt` unmounts and stops virtiofsd; a virtiofsd killed -9 under a
# running VM is noticed (pidfd): logged, the share "broken" in state.json and
# `status`, the VM kept running and `halt` still clean; after `kill -9` of
# the supervisor, `gc` cleans up; `destroy` keeps the image and its data; a
# folder with files in it is never mounted over.
source "$(dirname "$0")/../lib/tap.sh"
source "$(dirname "$0")/lib-guest.sh"

if ! sg_find; then skip "shares through up/halt/gc/destroy" "$SG_WHY"; done_testing; exit 0; fi
T=$(mktemp -d /tmp/share-life.XXXXXX)
export XDG_DATA_HOME=$T/data XDG_CACHE_HOME=$T/cache
P=$T/proj V=$T/data/hutch/vms/sharelife
WS=$P/workspace IMG=$P/workspace.img
mkdir -p "$P"
h() { timeout 600 "$HUTCH" -C "$P" "$@"; }
cleanup() {
	h halt >/dev/null 2>&1
	h gc >/dev/null 2>&1
	[ -f "$V/supervisor.pid" ] && kill -9 "$(cat "$V/supervisor.pid")" 2>/dev/null
	while grep -q " $WS " /proc/self/mountinfo 2>/dev/null; do umount -l "$WS" || break; done
	rm -rf "$T"
}
trap cleanup EXIT
cat >"$P/hutch.yaml" <<YAML
name: sharelife
kernel: {path: $TINY/vmlinuz, initrd: $TINY/initrd.img, cmdline: "console=ttyS0 quiet no_timer_check hutch.share=workspace:/mnt/ws"}
memory: 256
cpus: 1
accel: tcg
network: {mode: none}
cloud_init_wait: false
shared_folders:
  - {host: workspace, guest: /workspace, size: 1}
YAML
# the tiny guest runs no sshd nor cloud-init: user-data without keys, so up does not wait for them
printf '#cloud-config\nhostname: tiny\n' >"$P/cloud-init.yml"
state_share() { python3 -c "import json,sys; print(json.load(open('$V/state.json'))['shares'][0].get('$1'))" 2>/dev/null; }
alive() { [ -n "$1" ] && [ "$1" != 0 ] && [ -d "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
mounted() { grep -q " $WS " /proc/self/mountinfo; }

out=$(h up 2>&1); rc=$?
if [[ $out == *"not implemented"* ]]; then
	skip "shares through up/halt/gc/destroy" "this build has no supervisor yet"; done_testing; exit 0
fi
is "up with a shared folder" "$rc" 0
[ "$rc" = 0 ] || { diag "$out"; tail -20 "$V/supervisor.log" 2>/dev/null | sed 's/^/#   /'; }
check "up created workspace.img on first use" test -f "$IMG"
check "the folder is mounted while the VM runs" mounted
opts=$(awk -v m="$WS" '$5 == m {print $6}' /proc/self/mountinfo)
if [[ ,$opts, == *,nosymfollow,* && ,$opts, == *,nodev,* ]]; then ok "mounted nosymfollow,nodev"; else fail "options: $opts"; fi
vpid=$(state_share virtiofsd_pid)
if alive "$vpid"; then ok "virtiofsd runs (pid $vpid, in state.json)"; else fail "virtiofsd pid '$vpid' not running"; fi
is "state.json: mounted" "$(state_share mounted)" True
out=$(h inspect 2>&1)
if [[ $out == *"share workspace: $WS on image $IMG (mounted nosymfollow,nodev,nosuid), virtiofsd running"* ]]; then
	ok "inspect lists the share, mounted, virtiofsd running"; else fail "inspect: $(echo "$out" | grep -i share)"; fi
is "inspect --json: shares[0].virtiofsd_running" \
	"$(h --json inspect 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["shares"][0]["virtiofsd_running"])' 2>&1)" True

SG_DIR=$V SG_TIMEOUT=${SG_TIMEOUT:-600}
sg_sh "echo via-up >/mnt/ws/up.txt && sync" >"$T/sh.out" 2>&1 || sed "s/^/#   /" "$T/sh.out" | tail -5
is "the guest writes through its share" "$(cat "$WS/up.txt" 2>&1)" via-up
h mount >/dev/null 2>&1
is "hutch mount refuses while the VM runs" "$?" 1

check "halt" h halt
check_fails "halt unmounted the folder" mounted
if alive "$vpid"; then fail "virtiofsd still runs after halt"; else ok "halt stopped virtiofsd"; fi
check_fails "its socket is gone" test -e "$V/vfs-workspace.sock"

check "up again (image reused)" h up
vpid=$(state_share virtiofsd_pid)
is "data kept across restarts" "$(cat "$WS/up.txt" 2>&1)" via-up

# virtiofsd dies under a running VM (issue 14.6): the share is marked broken
qpid=$(python3 -c "import json; print(json.load(open('$V/state.json'))['qemu_pid'])" 2>/dev/null)
check "status shows the share ok while virtiofsd runs" bash -c "'$HUTCH' -C '$P' status | grep -q 'share  *workspace: ok'"
t0=$(date +%s%N)
kill -9 "$vpid"
for _ in $(seq 6000); do [ "$(state_share broken)" = True ] && break; sleep 0.02; done	# (fine steps: the delay is reported)
diag "virtiofsd death seen in state.json after $((($(date +%s%N) - t0) / 1000000)) ms"
is "state.json: the share is broken" "$(state_share broken)" True
is "with the reason" "$(state_share reason)" "virtiofsd exited: killed by signal 9"
is "and no virtiofsd pid" "$(state_share virtiofsd_pid)" 0
if grep -q "share workspace: virtiofsd exited: killed by signal 9 while the VM runs" "$V/supervisor.log"
then ok "the supervisor logged it"; else fail "not in supervisor.log"; tail -5 "$V/supervisor.log" | sed 's/^/#   /'; fi
out=$(h status 2>&1)
if [[ $out == *"share        workspace: broken (virtiofsd exited: killed by signal 9)"* ]]; then
	ok "hutch status shows it"; else fail "status: $out"; fi
is "status --json: shares[0].broken" "$(h --json status 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["shares"][0]["broken"])' 2>&1)" True
is "the VM keeps running" "$(h --json status 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])' 2>&1)" running
if alive "$qpid"; then ok "QEMU still runs"; else fail "QEMU $qpid is gone"; fi
check "the mount stays (isolation does not depend on virtiofsd)" mounted
check "halt with a broken share" h halt
check_fails "halt unmounted the folder" mounted
check_fails "no virtiofsd left for this VM" pgrep -f "virtiofsd.*$V/vfs-workspace.sock"
check "up restores the share" h up
vpid=$(state_share virtiofsd_pid)
if alive "$vpid" && [ "$(state_share broken)" = None ]; then ok "a new virtiofsd, the share no longer broken"
else fail "after up: virtiofsd '$vpid', broken '$(state_share broken)'"; fi
spid=$(cat "$V/supervisor.pid" 2>/dev/null)
kill -9 "$spid"
wait_until 120 gone "$spid"
check "gc after the supervisor was killed -9" h gc
check_fails "gc unmounted the folder" mounted
wait_until 120 gone "$vpid"
if alive "$vpid"; then fail "virtiofsd $vpid survived gc"; else ok "no virtiofsd left"; fi

check "destroy" h destroy
check "destroy keeps workspace.img" test -f "$IMG"
check "hutch mount after destroy" h mount
is "its data is intact" "$(cat "$WS/up.txt" 2>&1)" via-up
check "hutch unmount" h unmount

# a folder that is a mount point of something else: the VM must not start
mount -t tmpfs -o size=1m hutch-share-foreign "$WS"
out=$(h up 2>&1); rc=$?
if [ "$rc" != 0 ]; then ok "up refuses a folder mounted from elsewhere (exit $rc)"; else fail "up started over a foreign mount"; fi
if [[ $out == *"already a mount point"* ]]; then ok "and says why"; else fail "message: $(echo "$out" | head -5)"; fi
is "the foreign mount is untouched" "$(awk -v m="$WS" '$5 == m {print $NF}' /proc/self/mountinfo | tail -1 | cut -c1-2)" rw
check_fails "no QEMU left running" test -n "$(pgrep -f "qemu-system.*-name sharelife" || true)"
check_fails "no virtiofsd left running" test -n "$(pgrep -f "virtiofsd.*$V/vfs-workspace.sock" || true)"
umount "$WS"

# a folder with files in it is never mounted over (they would be hidden)
echo mine >"$WS/notes.txt"
out=$(h up 2>&1); rc=$?
if [ "$rc" != 0 ] && [[ $out == *"not empty"* ]]; then ok "up refuses a folder that is not empty (exit $rc)"
else fail "up over a non-empty folder: exit $rc"; diag "$(echo "$out" | tail -5)"; fi
check_fails "nothing mounted on it" mounted
is "its file is untouched" "$(cat "$WS/notes.txt" 2>&1)" mine
check "the used image is kept (it holds data)" test -f "$IMG"
done_testing
