#!/usr/bin/env bash
# `hutch mount` / `hutch unmount` on a project: the image is created on
# demand and mounted nosymfollow for pre-population, per share or all,
# isolation:false folders are left as they are, and both verbs refuse while
# the VM's supervisor runs.
source "$(dirname "$0")/../lib/tap.sh"

if [ "$(id -u)" != 0 ] || [ ! -w /dev/loop-control ]; then
	skip "hutch mount/unmount" "needs root and /dev/loop-control"; done_testing; exit 0
fi
T=$(mktemp -d /tmp/share-verbs.XXXXXX)
cleanup() {
	for m in "$T/proj/workspace" "$T/proj/data"; do
		while grep -q " $m " /proc/self/mountinfo 2>/dev/null; do umount -l "$m" || break; done
	done
	rm -rf "$T"
}
trap cleanup EXIT
export XDG_DATA_HOME=$T/data XDG_CACHE_HOME=$T/cache
mkdir -p "$T/proj" "$T/data"
cat >"$T/proj/hutch.yaml" <<'YAML'
name: sharetest
image: debian-12
shared_folders:
  - {host: workspace, guest: /workspace, size: 1}
  - {host: data, guest: /data, tag: data, size: 1}
  - {host: plain, guest: /plain, isolation: false}
YAML
mounted() { grep -q " $1 " /proc/self/mountinfo; }
h() { "$HUTCH" -C "$T/proj" "$@"; }

out=$(h mount 2>&1); rc=$?
if [[ $out == *"cannot read hutch.yaml"* || $out == *"not implemented"* ]]; then
	skip "hutch mount/unmount" "this build has no hutch.yaml loader yet"; done_testing; exit 0
fi
is "hutch mount exits 0" "$rc" 0
[ "$rc" = 0 ] || diag "$out"
check "workspace.img created beside hutch.yaml" test -f "$T/proj/workspace.img"
check "data.img created" test -f "$T/proj/data.img"
check "workspace mounted" mounted "$T/proj/workspace"
opts=$(awk -v m="$T/proj/workspace" '$5 == m {print $6}' /proc/self/mountinfo)
if [[ ,$opts, == *,nosymfollow,* && ,$opts, == *,nodev,* && ,$opts, == *,nosuid,* ]]; then
	ok "mounted nosymfollow,nodev,nosuid"; else fail "mount options: $opts"; fi
check_fails "isolation:false folder is not mounted" mounted "$T/proj/plain"
check_fails "and gets no image" test -e "$T/proj/plain.img"
echo prepopulated >"$T/proj/workspace/README"
check "the host can write into the mounted share" test -s "$T/proj/workspace/README"

check "hutch unmount" h unmount
check_fails "workspace unmounted" mounted "$T/proj/workspace"
check_fails "data unmounted" mounted "$T/proj/data"
check_fails "the file is not on the host's folder itself" test -e "$T/proj/workspace/README"

check "hutch mount workspace (one share by tag)" h mount workspace
check "workspace mounted" mounted "$T/proj/workspace"
check_fails "data not mounted" mounted "$T/proj/data"
is "pre-populated file kept in the image" "$(cat "$T/proj/workspace/README" 2>&1)" prepopulated
check "hutch unmount sharetest workspace (VM name and tag)" h unmount sharetest workspace
check_fails "workspace unmounted" mounted "$T/proj/workspace"

h mount nosuchtag >/dev/null 2>&1
is "an unknown tag is a usage error" "$?" 2

# a running VM owns its shares
mkdir -p "$XDG_DATA_HOME/hutch/vms/sharetest"
# a stand-in supervisor: liveness is checked by its command line
# ("__supervise VM_DIR"), never by a bare kill(pid, 0)
python3 -c 'import time; time.sleep(600)' __supervise "$XDG_DATA_HOME/hutch/vms/sharetest" &
spid=$!
printf '{"name":"sharetest","status":"running","supervisor_pid":%d}\n' "$spid" \
	>"$XDG_DATA_HOME/hutch/vms/sharetest/state.json"
out=$(h mount 2>&1); rc=$?
is "mount while the VM runs exits 1" "$rc" 1
if [[ $out == *running* ]]; then ok "and says the VM is running"; else fail "message: $out"; fi
check_fails "nothing mounted" mounted "$T/proj/workspace"
h unmount >/dev/null 2>&1
is "unmount while the VM runs exits 1" "$?" 1
kill "$spid"; wait "$spid" 2>/dev/null
check "a stale state.json (supervisor gone) does not block mount" h mount
check "unmount" h unmount
check_fails "nothing left mounted" mounted "$T/proj/workspace"
done_testing
