#!/usr/bin/env bash
# Issue 15.5: repository-made share images.  An isolated share's image is
# loop-mounted, so the kernel's ext4 driver parses it as root: a crafted
# `workspace.img` shipped in a cloned repository is a kernel attack.  hutch
# mounts only images it made itself (a record in the user's data dir: file
# system UUID -> inode and size).  The attacks: a planted ext4 image, a copy
# of a real one, one that is a symlink, a FIFO, a hard link; each is refused
# with exit 77 and left as it is (another user's image, for the privileged
# helper acting for a user: tests/share/t-host.sh).  A hutch-made image still
# mounts; a failed first mount (a non-empty folder) leaves no new image; a
# size beyond the free space is refused before anything is made.
source "$(dirname "$0")/../lib/tap.sh"

if [ "$(id -u)" != 0 ] || [ ! -w /dev/loop-control ] || ! command -v mkfs.ext4 >/dev/null; then
	skip "share image provenance" "needs root, /dev/loop-control and mkfs.ext4"; done_testing; exit 0
fi
T=$(mktemp -d /tmp/hutch-sec05.XXXXXX)
P=$T/proj WS=$T/proj/ws IMG=$T/proj/ws.img
cleanup() {
	for m in "$WS" "$T/proj/ws2"; do
		while grep -q " $m " /proc/self/mountinfo 2>/dev/null; do umount -l "$m" || break; done
	done
	rm -rf "$T"
}
trap cleanup EXIT
export XDG_DATA_HOME=$T/data XDG_CACHE_HOME=$T/cache
REC=$XDG_DATA_HOME/hutch/shares
mkdir -p "$P"
TINY=${HUTCH_TINY:-$HUTCH_SRC/build/guests/tiny}
# the test guest lives outside the project: allowed as the user's own word would
export HUTCH_ALLOW_PATHS=${HUTCH_ALLOW_PATHS:+$HUTCH_ALLOW_PATHS:}$TINY
yaml() {	# yaml SIZE_GIB (a kernel boot: `up` needs no base image)
	cat >"$P/hutch.yaml" <<YAML
name: sec05
kernel: {path: $TINY/vmlinuz, initrd: $TINY/initrd.img, cmdline: "console=ttyS0 quiet no_timer_check"}
memory: 256
cpus: 1
accel: tcg
cloud_init_wait: false
network: {mode: none}
shared_folders:
  - {host: ws, guest: /ws, size: ${1:-1}}
YAML
}
yaml 1
h() { timeout 300 "$HUTCH" -C "$P" "$@"; }
mounted() { grep -q " $1 " /proc/self/mountinfo; }
sum() { md5sum "$1" | cut -d' ' -f1; }
# refused WHAT: `hutch mount` exits 77, says why, mounts nothing, leaves the image as it was
refused() {
	local what=$1 before out rc
	before=$(sum "$IMG" 2>/dev/null)
	out=$(h mount 2>&1); rc=$?
	if [ "$rc" = 77 ]; then ok "$what: refused with exit 77"; else fail "$what: exit $rc"; diag "$out"; fi
	if [[ $out == *"not made by hutch"* || $out == *"not a regular file"* || $out == *"hard links"* || $out == *"belongs to uid"* ]]; then
		ok "$what: and says why"; else fail "$what: message"; diag "$out"; fi
	if mounted "$WS"; then fail "$what: something got mounted on the folder"; umount -l "$WS"
	else ok "$what: nothing mounted"; fi
	is "$what: the file is left as it was" "$(sum "$IMG" 2>/dev/null)" "$before"
}

# --- a planted image: a valid ext4 file system made by someone else
truncate -s 64M "$IMG"
mkfs.ext4 -q -F -L hutch-share "$IMG"
# owned by the user hutch runs virtiofsd as (hutch-vm under plain root), so
# that what refuses it is its provenance, not its owner
chown "$(id -u hutch-vm 2>/dev/null || id -u)" "$IMG"
refused "a planted ext4 image"
printf '#cloud-config\nhostname: tiny\n' >"$P/cloud-init.yml"
out=$(h up 2>&1); rc=$?
if [ "$rc" != 0 ] && [[ $out == *"not made by hutch"* ]]; then ok "up refuses it too, before starting anything (exit $rc)"
else fail "up with a planted image: exit $rc"; diag "$out"; h halt >/dev/null 2>&1; fi
check_fails "no QEMU was started" pgrep -f "qemu-system.*-name sec05"
h destroy >/dev/null 2>&1
rm -f "$IMG"

# --- a hutch-made image mounts (and mounts again)
out=$(h mount 2>&1); rc=$?
is "hutch mount makes and mounts a new image" "$rc" 0
[ "$rc" = 0 ] || diag "$out"
check "it is mounted" mounted "$WS"
uuid=$("$HUTCH_SRC/build/tests/share_tool" sb-uuid "$IMG" 2>/dev/null)
check "its record is in the user's data dir, named by the file system UUID" test -f "$REC/$uuid.json"
ino=$(stat -c %i "$IMG")
if python3 -c "import json,sys; r=json.load(open('$REC/$uuid.json')); sys.exit(0 if r['ino']==$ino and r['size']==$(stat -c %s "$IMG") and r['used'] else 1)"
then ok "the record holds the inode and size, and that it was used"; else fail "record: $(cat "$REC/$uuid.json")"; fi
echo keep >"$WS/data.txt"
check "unmount" h unmount
check "a hutch-made image mounts again" h mount
is "its data is there" "$(cat "$WS/data.txt" 2>&1)" keep
h unmount >/dev/null 2>&1

# --- a copy of a real image (same UUID, another inode) is not ours
mv "$IMG" "$T/real.img"
cp --sparse=always "$T/real.img" "$IMG"
refused "a copy of a hutch-made image"
rm -f "$IMG"

# --- a symlink to a real image, a hard link to it, a FIFO
ln -s "$T/real.img" "$IMG"
refused "an image that is a symlink"
rm -f "$IMG"
ln "$T/real.img" "$IMG"
refused "an image with a second hard link"
rm -f "$IMG"
mv "$T/real.img" "$IMG"
check "back in place, it is ours again" h mount
h unmount >/dev/null 2>&1
mv "$IMG" "$T/real.img"
mkfifo "$IMG"
out=$(timeout 20 "$HUTCH" -C "$P" mount 2>&1); rc=$?
if [ "$rc" = 77 ]; then ok "a FIFO as the image is refused at once (exit 77)"; else fail "FIFO: exit $rc"; diag "$out"; fi
rm -f "$IMG"

# --- a failed first mount leaves no new image: a folder that is not empty
mkdir -p "$WS"
echo mine >"$WS/notes.txt"
n_rec=$(ls "$REC" | wc -l)
out=$(h mount 2>&1); rc=$?
if [ "$rc" != 0 ] && [[ $out == *"not empty"* ]]; then ok "mount over a non-empty folder is refused (exit $rc)"
else fail "non-empty folder: exit $rc"; diag "$out"; fi
check_fails "the image made for it is gone" test -e "$IMG"
is "and so is its record" "$(ls "$REC" | wc -l)" "$n_rec"
is "the folder's file is untouched" "$(cat "$WS/notes.txt")" mine
check_fails "nothing mounted" mounted "$WS"
# the same through `up`: the CLI makes the image, the supervisor's mount fails
out=$(h up 2>&1); rc=$?
if [ "$rc" != 0 ]; then ok "up over a non-empty folder fails (exit $rc)"
else fail "up over a non-empty folder started"; h halt >/dev/null 2>&1; fi
check_fails "the image up made for it is gone" test -e "$IMG"
is "and so is its record" "$(ls "$REC" | wc -l)" "$n_rec"
check_fails "nothing mounted" mounted "$WS"
h destroy >/dev/null 2>&1
rm -f "$WS/notes.txt"

# --- the size is capped by the file system's free space (statvfs)
free_gib=$(( $(stat -f -c %a "$P") * $(stat -f -c %S "$P") >> 30 ))
yaml $((free_gib + 2))
out=$(h mount 2>&1); rc=$?
if [ "$rc" != 0 ] && [[ $out == *"free"* ]]; then ok "a size beyond the free space ($((free_gib + 2)) GiB) is refused"
else fail "size over free space: exit $rc"; diag "$out"; fi
check_fails "and no image is made" test -e "$IMG"
yaml 1

# --- the record is what makes an image ours: without it, even a real one is refused
mv "$T/real.img" "$IMG"
rm -f "$REC"/*.json
refused "a hutch-made image whose record is gone"
done_testing
