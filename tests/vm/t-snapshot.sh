#!/usr/bin/env bash
# Snapshots with the tiny guest under TCG.  The guest writes markers through
# its disk (dd to /dev/vda, a block of the VM's disk.qcow2) and reads them
# back after a boot, so what is checked is what the guest sees of its disk:
#   snapshot / reset, reset refusing (no snapshot, broken hutch.yaml) with
#   the disk untouched, kill -9 of hutch during a snapshot, named snapshots
#   (save, restore, list, rm of the current one, push/pop), status, storage
#   --json against du and qemu-img info, reload with a new memory size,
#   images rm / prune, and warm start without SSH: save --running, resume
#   (memory and disk from the save), fallbacks to a cold boot (memory
#   changed, corrupt state file) and kill -9 of the supervisor in a save.
# The SSH side of warm start (clock, shares, markers over ssh) is
# tests/e2e/t-warm.sh with the debian guest.
source "$(dirname "$0")/../lib/tap.sh"
cd "$HUTCH_SRC" || exit 1
source tests/lib/guest.sh
guest_tiny_build || { skip "snapshot" "tiny guest does not build"; done_testing; exit 0; }

T=$(mktemp -d /tmp/hutch-snap.XXXXXX)
export XDG_DATA_HOME=$T/data XDG_CACHE_HOME=$T/cache HOME=$T/home
unset HUTCH_DIR
mkdir -p "$T/p" "$HOME" "$XDG_CACHE_HOME/hutch/images"
V=$XDG_DATA_HOME/hutch/vms/snap-t
H() { "$HUTCH" -C "$T/p" "$@"; }
js() { jq -r "$1" "$V/state.json" 2>/dev/null; }
gsh() { python3 "$GUESTSH_PY" --timeout 120 "$V/console.sock" "$@" | tr -d '\r'; }
ready() { python3 "$GUESTSH_PY" --timeout 180 --wait-ready "$V/console.sock" >/dev/null 2>&1; }
# mark WORD: the guest writes WORD at the start of its disk (checked by reading it
# back; a console that does not answer on a loaded host is tried again);
# seen: what the guest reads there
mark() {
	local i
	for i in 1 2 3; do
		ready && [ "$(gsh "echo $1 | dd of=/dev/vda bs=512 count=1 conv=sync 2>/dev/null; sync; head -c 8 /dev/vda | tr -dc A-Za-z0-9-")" = "$1" ] && return 0
	done
	fail "the guest could not write the marker $1"
}
seen() { ready && gsh 'head -c 8 /dev/vda | tr -dc A-Za-z0-9-'; }
wait_for() { local n=$(($1 * 10)); shift; while ((n-- > 0)); do "$@" && return 0; sleep 0.1; done; return 1; }
gone() { [ ! -e "/proc/$1" ] || grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
sum() { sha256sum "$1" | cut -c1-64; }

cleanup() {
	local p
	for p in $(jq -r '.supervisor_pid // empty, .qemu_pid // empty' "$V/state.json" 2>/dev/null); do
		grep -qs "$T" "/proc/$p/cmdline" && kill -9 "$p" 2>/dev/null
	done
	rm -rf "$T"
}
trap cleanup EXIT

# the base image: 192 MiB of random bytes, so that flattening takes a moment
head -c $((192 << 20)) /dev/urandom >"$T/base.raw"
qemu-img convert -q -f raw -O qcow2 "$T/base.raw" "$T/p/base.qcow2" && rm -f "$T/base.raw"
cat >"$T/p/hutch.yaml" <<EOF
name: snap-t
cpus: 1
memory: 256
accel: tcg
image: base.qcow2
kernel: {path: $TINY_KERNEL, initrd: $TINY_INITRD, cmdline: "console=ttyS0 quiet"}
network: {mode: none}
timeouts: {boot: 300, shutdown: 60}
EOF
printf '#cloud-config\n' >"$T/p/cloud-init.yml"

# --- the verbs are there
out=$("$HUTCH" --help)
for v in snapshot reset reload tz storage; do
	grep -q "^  $v " <<<"$out" && ok "--help lists $v" || fail "--help lists $v"
	"$HUTCH" "$v" --bogus-option >"$T/o" 2>&1
	grep -q 'not implemented' "$T/o" && fail "$v is implemented" || ok "$v is implemented"
done
H snapshot save --help | grep -q 'push' && ok "snapshot has a help page" || fail "snapshot help page"

# --- reset refuses, and destroys nothing
check "up" H up
is "status: no snapshot yet" "$(H --json status | jq -r .snapshot)" none
mark BEFORE
check "halt" H halt
d0=$(sum "$V/disk.qcow2")
H reset >/dev/null 2>"$T/err"
is "reset without a snapshot: exit 78" "$?" 78
is "... and the disk is untouched" "$(sum "$V/disk.qcow2")" "$d0"
check "snapshot (VM halted)" H snapshot
s0=$(sum "$V/snapshot.qcow2")
d0=$(sum "$V/disk.qcow2")
cp "$T/p/hutch.yaml" "$T/good.yaml"
printf 'memory: lots\n' >>"$T/p/hutch.yaml"
H reset >/dev/null 2>"$T/err"
rc=$?
# SPEC.md: 2 is a config error (as for every verb); 78 is "no snapshot"
is "reset with a broken hutch.yaml: exit 2 (config error), before anything" "$rc" 2
grep -q 'hutch.yaml' "$T/err" && ok "... naming the file" || { fail "... naming the file"; diag "$(cat "$T/err")"; }
is "... and the disk is untouched" "$(sum "$V/disk.qcow2")" "$d0"
cp "$T/good.yaml" "$T/p/hutch.yaml"
[ "$(qemu-img info --output=json "$V/snapshot.qcow2" | jq -r '."backing-filename" // "none"')" = none ] &&
	ok "the snapshot is a standalone qcow2 (no backing file)" || fail "the snapshot is standalone"

# --- snapshot, mess, reset
check "up" H up
[ "$(H --json status | jq -r .snapshot_size)" -gt 0 ] && ok "status shows the snapshot and its size" ||
	fail "status shows the snapshot"
mark AFTER
is "the guest wrote its marker" "$(seen)" AFTER
check "reset" H reset
is "reset: the VM runs again" "$(H --json status | jq -r .status)" running
is "reset: the marker written after the snapshot is gone, the earlier one is there" "$(seen)" BEFORE
[ "$(qemu-img info -U --output=json "$V/disk.qcow2" | jq -r '."backing-filename"')" = "$V/snapshot.qcow2" ] &&
	ok "reset: the disk is an overlay on the snapshot" || fail "reset: overlay on the snapshot"

# --- kill -9 of hutch while it saves a snapshot
mark KILLED
check "halt" H halt
"$HUTCH" -C "$T/p" snapshot >/dev/null 2>&1 &
hp=$!	# hutch itself, not a subshell around it
if wait_for 120 test -e "$V/snapshot.qcow2.part"; then
	kill -9 "$hp"
	wait "$hp" 2>/dev/null
	ok "snapshot was killed while writing"
else
	fail "snapshot.qcow2.part never appeared"
fi
# [q]: the pattern must not match the command line of the shell running pgrep
wait_for 30 bash -c "! pgrep -f '[q]emu-img convert.*$V' >/dev/null" && ok "no qemu-img left running" ||
	fail "qemu-img outlived hutch"
is "the previous snapshot is intact" "$(sum "$V/snapshot.qcow2")" "$s0"
check "... and passes qemu-img check" qemu-img check -q "$V/snapshot.qcow2"
check "reset after the killed snapshot" H reset
is "... back to the previous snapshot" "$(seen)" BEFORE
check "a new snapshot replaces the leftover .part" H snapshot
[ ! -e "$V/snapshot.qcow2.part" ] && ok "no .part left" || fail "no .part left"

# --- named snapshots
check "up" H up
mark ONE
check "snapshot save one" H snapshot save one
is "save of a running VM starts it again" "$(H --json status | jq -r .status)" running
mark TWO
check "snapshot save two" H snapshot save two
mark THREE
check "snapshot restore one" H snapshot restore one
is "restore one: its disk" "$(seen)" ONE
j=$(H snapshot list --json)
[ "$(jq -r '[.[].name] | sort | join(",")' <<<"$j")" = "anchor,one,two" ] &&
	ok "list: two is still listed after restoring one" || { fail "list after restore"; diag "$j"; }
[ "$(jq -r '.[] | select(.name=="two") | .parent' <<<"$j")" = one ] &&
	[ "$(jq -r '.[] | select(.name=="one") | .current' <<<"$j")" = true ] &&
	[ "$(jq -r '.[] | select(.name=="two") | .size' <<<"$j")" -gt 0 ] &&
	jq -e '.[] | select(.name=="two") | .time | test("^20[0-9-]+T")' <<<"$j" >/dev/null &&
	ok "list --json: name, size, time, parent, current" || { fail "list --json fields"; diag "$j"; }
H snapshot restore nope >/dev/null 2>&1
is "restore of an unknown snapshot: exit 78" "$?" 78
H snapshot save 'bad/name' >/dev/null 2>&1
is "a bad snapshot name: exit 2" "$?" 2

# push/pop
out=$(H snapshot push 2>/dev/null)
[[ $out == push-* ]] && ok "push saves under a generated name ($out)" || fail "push ($out)"
mark POPPED
check "pop" H snapshot pop
is "pop: back to the pushed disk" "$(seen)" ONE
[ "$(H snapshot list --json | jq -r '[.[].name | select(startswith("push-"))] | length')" = 0 ] &&
	ok "pop removed the pushed snapshot" || fail "pop removed it"
H snapshot pop >/dev/null 2>&1
is "pop with an empty stack: exit 78" "$?" 78

# rm of the snapshot the disk is based on
check "restore two" H snapshot restore two
mark LATER
check "halt" H halt
check "rm two (the current one, the disk's base)" H snapshot rm two
[ ! -e "$V/snapshots/two.qcow2" ] && ok "its file is gone" || fail "its file is gone"
[ "$(qemu-img info --output=json "$V/disk.qcow2" | jq -r '."backing-filename" // "none"')" = none ] &&
	ok "the disk no longer has it as backing file" || fail "the disk's backing file"
check "up" H up
is "the disk kept everything written on top of it" "$(seen)" LATER
[ "$(H snapshot list --json | jq -r '.[] | select(.name=="two") | .name')" = "" ] &&
	ok "two is not listed any more" || fail "two still listed"

# --- storage --json against du and qemu-img info
j=$("$HUTCH" storage --json 2>/dev/null)
vmj=$(jq '.vms[] | select(.name=="snap-t")' <<<"$j")
is "storage: disk allocated = du" "$(jq -r .disk.allocated <<<"$vmj")" "$(du -B1 "$V/disk.qcow2" | cut -f1)"
is "storage: disk size = qemu-img virtual size" "$(jq -r .disk.size <<<"$vmj")" \
	"$(qemu-img info -U --output=json "$V/disk.qcow2" | jq -r '."virtual-size"')"
is "storage: snapshot one allocated = du" \
	"$(jq -r '.snapshots[] | select(.name=="one") | .allocated' <<<"$vmj")" "$(du -B1 "$V/snapshots/one.qcow2" | cut -f1)"
is "storage: VM total = du of its directory" "$(jq -r .allocated <<<"$vmj")" "$(du -sB1 "$V" | cut -f1)"
"$HUTCH" storage | grep -q 'snapshot one' && ok "storage (text)" || fail "storage (text)"

# --- reload with a new memory size
sed -i 's/^memory: 256/memory: 320/' "$T/p/hutch.yaml"
H reload >"$T/o" 2>&1
is "reload exits 0" "$?" 0
grep -q 'memory 256 -> 320' "$T/o" && ok "reload says memory changed" || { fail "reload message"; diag "$(cat "$T/o")"; }
H --json inspect | jq -e '.qemu_argv | index("-m") as $i | .[$i + 1] == "320"' >/dev/null &&
	ok "inspect shows the new memory size" || fail "inspect shows -m 320"
sv=$(js .supervisor_pid)
sed -i 's|^image: base.qcow2|image: other.qcow2|' "$T/p/hutch.yaml"
cp "$T/p/base.qcow2" "$T/p/other.qcow2"
H reload >/dev/null 2>"$T/err"
is "reload with another image: exit 2" "$?" 2
grep -q 'image changed' "$T/err" && [ "$(js .supervisor_pid)" = "$sv" ] &&
	ok "... named, and the VM was not touched" || { fail "reload refusal"; diag "$(cat "$T/err")"; }
cp "$T/good.yaml" "$T/p/hutch.yaml"
sed -i 's/^memory: 256/memory: 320/' "$T/p/hutch.yaml"

# --- images rm / prune
img=$XDG_CACHE_HOME/hutch/images/used.qcow2
qemu-img create -q -f qcow2 "$img" 64M
echo "$(sum "$img")  used.qcow2" >"$img.sha256"
mkdir -p "$XDG_DATA_HOME/hutch/vms/fake-vm"
qemu-img create -q -f qcow2 -F qcow2 -b "$img" "$XDG_DATA_HOME/hutch/vms/fake-vm/disk.qcow2"
"$HUTCH" images rm used >/dev/null 2>"$T/err"
is "images rm of an image a VM disk uses: exit 1" "$?" 1
grep -q 'fake-vm' "$T/err" && [ -e "$img" ] && ok "... naming the VM, image kept" || fail "images rm refusal"
[ "$("$HUTCH" storage --json | jq -r '.images[] | select(.name=="used.qcow2") | .used_by[0]')" = fake-vm ] &&
	ok "storage names the VMs that use an image" || fail "storage used_by"
check "images rm --force" "$HUTCH" images rm used --force
rm -rf "$XDG_DATA_HOME/hutch/vms/fake-vm"
head -c 1000 /dev/zero >"$XDG_CACHE_HOME/hutch/images/old.qcow2.part"
touch -d '2 days ago' "$XDG_CACHE_HOME/hutch/images/old.qcow2.part"
head -c 1000 /dev/zero >"$XDG_CACHE_HOME/hutch/images/new.qcow2.part"
"$HUTCH" storage --json | jq -e '.partial | length == 2' >/dev/null && ok "storage lists .part downloads" ||
	fail "storage lists .part"
"$HUTCH" images prune >"$T/o" 2>&1
[ ! -e "$XDG_CACHE_HOME/hutch/images/old.qcow2.part" ] && [ -e "$XDG_CACHE_HOME/hutch/images/new.qcow2.part" ] &&
	grep -q old.qcow2.part "$T/o" && ok "images prune removes .part older than a day, lists it, keeps newer" ||
	{ fail "images prune"; diag "$(cat "$T/o")"; }

# --- warm start, without SSH (the tiny guest has none)
ready && gsh 'echo in-memory > /tmp/m; echo ok' >/dev/null
mark WARM
# the supervisor writes disk.qcow2 back (fsync) while the guest still runs,
# before it stops it: the flush of the disk tag in the pause has little left
traced() { grep -q '^TracerPid:[[:space:]]*[1-9]' "/proc/$1/status" 2>/dev/null; }
sv=$(js .supervisor_pid)
tp=
if command -v strace >/dev/null; then
	strace -f -qq -s 256 -e trace=openat,fsync,sendto -e signal=none -o "$T/save.strace" -p "$sv" &
	tp=$!
	wait_for 60 traced "$sv" || diag "strace did not attach"
fi
check "snapshot save w1 --running" H snapshot save w1 --running
if [ -n "$tp" ]; then
	kill "$tp"; wait "$tp" 2>/dev/null
	# an fsync of the fd the disk was opened on, after that open and before the QMP "stop"
	order=$(awk '/openat\(.*\/disk\.qcow2", O_RDONLY/ { n = split($0, a, "= "); fd = a[n] + 0; synced = 0; next }
		fd != "" && index($0, "fsync(" fd ")") { synced = 1 }
		/sendto\(.*execute[^a-z]*stop/ { print (synced ? "synced" : "not synced"); exit }' "$T/save.strace")
	[ "$order" = synced ] && ok "the save writes the disk back before it stops the guest" ||
		{ fail "fsync of disk.qcow2 before stop (${order:-no stop seen})"; diag "$(grep -E 'disk.qcow2|fsync|stop' "$T/save.strace" | head)"; }
else
	skip "fsync before stop" "strace is not installed"
fi
is "the VM runs on after the save" "$(H --json status | jq -r .status)" running
[ -s "$V/snapshots/w1.vmstate" ] && ok "the state file is there" || fail "the state file"
is "the guest still answers after the save" "$(gsh 'cat /tmp/m')" in-memory
gsh 'echo changed > /tmp/m' >/dev/null
mark CHANGED
check "halt" H halt
up0=$(date +%s)
check "up (warm)" H up
is "status: warm start" "$(H --json status | jq -r .start)" warm
is "memory from the save" "$(gsh 'cat /tmp/m')" in-memory
is "disk from the save" "$(seen)" WARM
upt=$(gsh 'cut -d. -f1 /proc/uptime')
[ "${upt:-0}" -gt $(( $(date +%s) - up0 )) ] && ok "uptime older than the up ($upt s)" || fail "uptime ($upt)"
H inspect | grep -q 'warm state w1: .*w1.vmstate' && ok "inspect shows the state file and its size" ||
	fail "inspect shows the state file"
H --json inspect | jq -e '.warm_states[0].size > 0' >/dev/null && ok "inspect --json: warm_states" ||
	fail "inspect --json warm_states"

# memory changed: cold, with the reason
check "halt" H halt
sed -i 's/^memory: 320/memory: 288/' "$T/p/hutch.yaml"
H up >/dev/null 2>"$T/err"
is "up after a memory change exits 0" "$?" 0
is "... it booted cold" "$(H --json status | jq -r .start)" cold
grep -q 'booted cold.*memory changed' "$T/err" && ok "... and said why" || { fail "cold reason"; diag "$(cat "$T/err")"; }
H --json status | jq -e '.start_reason | test("memory")' >/dev/null && ok "status --json has the reason" ||
	fail "status start_reason"
sed -i 's/^memory: 288/memory: 320/' "$T/p/hutch.yaml"

# another QEMU than the one that saved: cold, with the reason
check "halt" H halt
cp "$V/snapshots/index.json" "$T/index.json"
jq '.items.w1.qemu_id = "/usr/bin/qemu-system-x86_64 1 2 3"' "$T/index.json" >"$V/snapshots/index.json"
H up >/dev/null 2>"$T/err"
grep -q 'booted cold.*QEMU changed' "$T/err" && [ "$(H --json status | jq -r .start)" = cold ] &&
	ok "another QEMU binary: cold, and said why" || { fail "QEMU changed"; diag "$(cat "$T/err")"; }
cp "$T/index.json" "$V/snapshots/index.json"

# corrupt state file: cold, with a warning, and nothing lost
mark KEEP
check "halt" H halt
d0=$(sum "$V/disk.qcow2")
printf 'garbage' | dd of="$V/snapshots/w1.vmstate" bs=1 seek=$((40 << 20)) conv=notrunc 2>/dev/null
H up >/dev/null 2>"$T/err"
is "up with a corrupt state file exits 0" "$?" 0
is "... it booted cold" "$(H --json status | jq -r .start)" cold
grep -q 'warning: booted cold.*corrupt' "$T/err" && ok "... with a warning naming the corruption" ||
	{ fail "corrupt warning"; diag "$(cat "$T/err")"; }
is "... and the disk is as it was left (nothing lost)" "$(seen)" KEEP

# kill -9 of the supervisor during a save
check "save w2 --running" H snapshot save w2 --running
check "halt" H halt
check "up (warm, w2)" H up
sv=$(js .supervisor_pid)
H snapshot save w3 --running >/dev/null 2>&1 &
hp=$!
if wait_for 120 test -e "$V/snapshots/w3.vmstate.part"; then
	kill -9 "$sv"
	ok "supervisor killed during the save"
else
	fail "w3.vmstate.part never appeared"
fi
wait "$hp" 2>/dev/null
wait_for 60 gone "$(js .qemu_pid)" || true
# exit 3: leaked clusters only (space a killed QEMU allocated), which is no damage
qemu-img check -q "$V/disk.qcow2" >"$T/o" 2>&1
rc=$?
[ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] && ok "the disk is intact (qemu-img check: no corruption, rc $rc)" ||
	{ fail "the disk is intact (qemu-img check rc $rc)"; diag "$(head -5 "$T/o")"; }
[ "$(jq -r '.items | has("w3")' "$V/snapshots/index.json")" = false ] && ok "no half state recorded" ||
	fail "w3 recorded"
check "up after the killed save" H up
is "... resumes the previous state w2, not the half-saved one" "$(jq -r .resume "$V/snapshots/index.json")" w2
check "snapshot rm w2" H snapshot rm w2
check "halt" H halt
check "up" H up
is "without a state to resume: cold" "$(H --json status | jq -r .start)" cold
is "... the disk is the last resumed one's" "$(seen)" KEEP

# --- destroy removes snapshots and states
check "destroy" H destroy
[ ! -e "$V" ] && ok "destroy removed disk, snapshots and saved states" || fail "destroy"

# --- warm: true saves a state "warm" after the first up, later ups resume it
printf 'warm: true\n' >>"$T/p/hutch.yaml"
H up >/dev/null 2>"$T/err"
is "up of a new VM with warm: true exits 0" "$?" 0
[ "$(jq -r '.items.warm.kind' "$V/snapshots/index.json" 2>/dev/null)" = running ] &&
	grep -q 'saved the running state warm' "$T/err" && ok "warm: true saved the state \"warm\"" ||
	{ fail "warm: true saved a state"; diag "$(cat "$T/err")"; }
check "halt" H halt
check "up" H up
is "the next up resumes it" "$(H --json status | jq -r .start)" warm
check "destroy" H destroy
[ -e "$T/p/base.qcow2" ] && ok "destroy kept the base image" || fail "base image kept"
leftover=$(pgrep -f "$T" | tr '\n' ' ')
[ -z "$leftover" ] && ok "no process left behind" || { fail "no process left behind"; diag "$leftover"; }
done_testing
