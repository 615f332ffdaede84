#!/usr/bin/env bash
# Warm start with the debian-12 guest, over SSH, as a user would: a cold
# `up` with a shared folder, `snapshot save --running`, halt, and a warm
# `up` that resumes the saved state: a file written before the save is
# there, one written after it is not (the disk is the save's), the guest's
# uptime is older than the `up`, its clock is within 2 s of the host's, the
# share works in both directions, after the save and after the resume, and
# (mode nat) the guest has the address it had; then `hutch tz`.  The host-side paths (state
# mismatch, corrupt file, kill -9 during a save) are in tests/vm/t-snapshot.sh.
#   WARM_MODE=nat|user  network mode (default nat, in a namespace of ours; user without root)
#   E2E_IMAGE=path      the guest image instead of `make debian-image`
source "$(dirname "$0")/../lib/tap.sh"
cd "$HUTCH_SRC" || exit 1
MODE=${WARM_MODE:-nat}
[ "$(id -u)" -eq 0 ] || MODE=user

T=$(mktemp -d /tmp/hutch-warm.XXXXXX)
NS=warm-e2e-$$
NSX=()
cleanup() {
	"${NSX[@]}" "$HUTCH" -C "$T/p" destroy >/dev/null 2>&1
	[ "$MODE" = nat ] && ip netns del "$NS" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
export HOME=$T/home XDG_DATA_HOME=$T/data XDG_CACHE_HOME=$T/cache XDG_CONFIG_HOME=$T/config
export XDG_RUNTIME_DIR=$T/run
mkdir -p "$HOME" "$XDG_DATA_HOME" "$XDG_CACHE_HOME" "$XDG_CONFIG_HOME" "$XDG_RUNTIME_DIR" "$T/p/ws"
chmod 700 "$XDG_RUNTIME_DIR"
# virtiofsd runs as QEMU's unprivileged user (SUDO_UID or hutch-vm), not as
# root: the guest's writes into the shared folder are that user's writes
chmod 777 "$T/p/ws"
V=$XDG_DATA_HOME/hutch/vms/warm-e2e

IMAGE=${E2E_IMAGE:-}
if [ -z "$IMAGE" ]; then
	source tests/lib/guest.sh
	if ! guest_debian_build; then
		fail "make debian-image"
		done_testing; exit 1
	fi
	IMAGE=$DEBIAN_IMAGE
fi
# the image lives outside the project: the user's config allows its folder
mkdir -p "$XDG_CONFIG_HOME/hutch"
printf 'allow_paths:\n  - %s\n' "$(dirname "$IMAGE")" >"$XDG_CONFIG_HOME/hutch/config.yaml"
if ! command -v virtiofsd >/dev/null && [ ! -x /usr/libexec/virtiofsd ] && [ ! -x /usr/lib/qemu/virtiofsd ]; then
	skip "warm start" "no virtiofsd"
	done_testing; exit 0
fi
if [ "$MODE" = nat ]; then
	ip netns add "$NS" && ip netns exec "$NS" ip link set lo up || { fail "netns $NS"; done_testing; exit 1; }
	NSX=(ip netns exec "$NS")
fi
H() { "${NSX[@]}" "$HUTCH" -C "$T/p" "$@"; }
G() { H ssh -- "$@" </dev/null 2>/dev/null; }
js() { jq -r "$1" "$V/state.json" 2>/dev/null; }

check "hutch pubkey" "$HUTCH" pubkey
cat >"$T/p/hutch.yaml" <<Y
name: warm-e2e
image: $IMAGE
cpus: 2
memory: 2048
accel: tcg
network: {mode: $MODE}
shared_folders:
  - {host: ws, guest: /ws, tag: ws, isolation: false}
timeouts: {boot: 1200, ssh: 1200, cloud_init: 1500, shutdown: 240}
Y
cat >"$T/p/cloud-init.yml" <<'Y'
#cloud-config
users:
  - name: tester
    shell: /bin/bash
    sudo: ALL=(ALL) NOPASSWD:ALL
    ssh_authorized_keys:
      - __HUTCH_PUBKEY__
package_update: false
Y

# --- cold up, the share in both directions (the folder is root's here: sudo in the guest)
t0=$(date +%s)
if H up >"$T/up.log" 2>&1; then
	ok "cold up ($(( $(date +%s) - t0 ))s)"
else
	fail "cold up"; tail -30 "$T/up.log" | sed 's/^/#   /'
	done_testing; exit 1
fi
is "cold up: start is cold" "$(H --json status | jq -r .start)" cold
echo host1 >"$T/p/ws/h1"
is "share, host -> guest" "$(G cat /ws/h1)" host1
G 'echo guest1 | sudo tee /ws/g1 >/dev/null'
is "share, guest -> host" "$(cat "$T/p/ws/g1" 2>/dev/null)" guest1
G 'echo written-before-the-save > ~/marker'

# --- save the running state
t0=$(date +%s)
if H snapshot save clean --running >"$T/save.log" 2>&1; then
	ok "snapshot save --running ($(( $(date +%s) - t0 ))s): $(grep -o 'saved the running state.*)' "$T/save.log" | head -1)"
else
	fail "snapshot save --running"; tail -20 "$T/save.log" | sed 's/^/#   /'
	done_testing; exit 1
fi
is "the VM runs on" "$(H --json status | jq -r .status)" running
echo host2 >"$T/p/ws/h2"
is "after the save: share, host -> guest" "$(G cat /ws/h2)" host2
G 'echo guest2 | sudo tee /ws/g2 >/dev/null'
is "after the save: share, guest -> host" "$(cat "$T/p/ws/g2" 2>/dev/null)" guest2
d=$(( $(G date +%s) - $(date +%s) ))
[ "${d#-}" -le 2 ] && ok "after the save: guest clock within 2 s of the host ($d)" || fail "clock after the save ($d s)"
addr=$(jq -r '.items.clean.addr // empty' "$V/snapshots/index.json")
G 'echo written-after-the-save > ~/marker'

# --- warm up
check "halt" H halt
t0=$(date +%s.%N)
if H up >"$T/up2.log" 2>&1; then
	ok "warm up ($(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')s)"
else
	fail "warm up"; tail -30 "$T/up2.log" | sed 's/^/#   /'
	done_testing; exit 1
fi
up_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%d", b - a + 1 }')
is "status says warm" "$(H --json status | jq -r .start)" warm
grep -q 'resumed the running state clean' "$T/up2.log" && ok "up said it resumed" || fail "up said it resumed"
is "a file written before the save is there" "$(G 'cat ~/marker')" written-before-the-save
upt=$(G cut -d. -f1 /proc/uptime)
[ "${upt:-0}" -gt "$up_s" ] && ok "the guest's uptime ($upt s) is older than the up ($up_s s)" ||
	fail "uptime $upt vs up $up_s"
d=$(( $(G date +%s) - $(date +%s) ))
[ "${d#-}" -le 2 ] && ok "guest clock within 2 s of the host ($d)" || fail "guest clock off by $d s"
echo host3 >"$T/p/ws/h3"
is "after the resume: share, host -> guest" "$(G cat /ws/h3)" host3
G 'echo guest3 | sudo tee /ws/g3 >/dev/null'
is "after the resume: share, guest -> host" "$(cat "$T/p/ws/g3" 2>/dev/null)" guest3
if [ "$MODE" = nat ]; then
	[ -n "$addr" ] && is "nat: the guest has the address it had at the save" "$(js .net.ip)" "$addr" ||
		fail "nat: no address recorded with the state"
	is "nat: hutch ip agrees" "$(H ip 2>/dev/null)" "$addr"
fi
H inspect | grep -q 'warm state clean' && ok "inspect shows the state file" || fail "inspect"

# --- tz: a zone, the host's zone, and one that does not exist
is "tz Asia/Tokyo prints the zone" "$(H tz Asia/Tokyo 2>/dev/null)" Asia/Tokyo
is "... and the guest is in it" "$(G 'date +%Z')" JST
is "tz without a zone takes the host's" "$(TZ=America/New_York H tz 2>/dev/null)" America/New_York
[[ "$(G 'date +%Z')" == E[SD]T ]] && ok "... and the guest is in it" || fail "tz host zone in the guest"
H tz Mars/Olympus_Mons >/dev/null 2>&1
is "tz of an unknown zone: exit 2" "$?" 2
H tz ../../etc/passwd >/dev/null 2>&1
is "tz of a path: exit 2" "$?" 2
check "destroy" H destroy
[ ! -e "$V" ] && ok "destroy removed the saved state" || fail "destroy"
done_testing
