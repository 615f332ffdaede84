#!/usr/bin/env bash
# Host side of isolated shared folders, without a VM: the image (sparse,
# capped), the loop mount (nosymfollow, nodev, nosuid), refusing a folder
# mounted from elsewhere, unmount leaving no loop device, virtiofsd start,
# stop and pid checks.  Runs the share module's code through
# build/tests/share_tool (tests/helpers/share_tool.c).
source "$(dirname "$0")/../lib/tap.sh"
TOOL=$HUTCH_SRC/build/tests/share_tool

if [ "$(id -u)" != 0 ] || [ ! -w /dev/loop-control ]; then
	skip "host-side shares" "needs root and /dev/loop-control"; done_testing; exit 0
fi
[ -x "$TOOL" ] || { fail "build/tests/share_tool missing (make unit)"; done_testing; exit 1; }

T=$(mktemp -d /tmp/share-host.XXXXXX)
export XDG_DATA_HOME=$T/data	# provenance records of the images made here
cleanup() {
	for m in "$T/ws" "$T/busy" "$T/ws2" "$T/theirs" "$T/mine"; do
		while grep -q " $m " /proc/self/mountinfo 2>/dev/null; do umount -l "$m" || break; done
	done
	[ -n "${VPID:-}" ] && kill "$VPID" 2>/dev/null
	[ -n "${NSPID:-}" ] && kill "$NSPID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
img=$T/ws.img ws=$T/ws
# mnt_fs DIR / mnt_src DIR: file system type and source of the topmost mount on DIR
mnt_fs()  { awk -v m="$1" '$5 == m { for (i = 7; $i != "-"; i++); t = $(i + 1) } END { print t }' /proc/self/mountinfo; }
detached() { [ -z "$(losetup -j "$1" 2>/dev/null)" ]; }
mnt_src() { awk -v m="$1" '$5 == m { for (i = 7; $i != "-"; i++); t = $(i + 2) } END { print t }' /proc/self/mountinfo; }

# --- image
check "image created" "$TOOL" create "$img" 1
is "image is exactly 1 GiB" "$(stat -c %s "$img")" 1073741824
used=$(du -k "$img" | cut -f1)
if [ "$used" -lt 131072 ]; then ok "image is sparse (${used} KiB on disk)"; else fail "image not sparse: ${used} KiB"; fi
is "image is ext4" "$(blkid -o value -s TYPE "$img" 2>/dev/null || file -b "$img" | grep -o ext4)" ext4
echo keep >"$T/marker"
cp "$img" "$T/before" --sparse=always
check "existing image is kept, not recreated" "$TOOL" create "$img" 1
check "same bytes after the second create" cmp -s "$img" "$T/before"
rm -f "$T/before"

# --- mount
out=$("$TOOL" mount "$img" "$ws" 2>&1)
if [[ $out == loop* ]]; then ok "mounted on a loop device ($out)"; else fail "mount: $out"; fi
line=$(awk -v m="$ws" '$5 == m' /proc/self/mountinfo | tail -1)
diag "$line"
for o in nosymfollow nodev nosuid; do
	if [[ ",$(echo "$line" | awk '{print $6}')," == *",$o,"* ]]; then ok "mounted $o"; else fail "not mounted $o"; fi
done
check "verify: it is ours" "$TOOL" verify "$img" "$ws"
n1=$(grep -c " $ws " /proc/self/mountinfo)
check "mounting again is a no-op" "$TOOL" mount "$img" "$ws"
is "no second mount stacked" "$(grep -c " $ws " /proc/self/mountinfo)" "$n1"

# --- symlinks to host secrets are not followed by host processes
echo "host-secret" >"$T/secret"
chmod 600 "$T/secret"
ln -s "$T/secret" "$ws/innocent.txt"
ln -s /etc/shadow "$ws/shadow"
if out=$(cat "$ws/innocent.txt" 2>&1); then fail "a host process followed a symlink in the share: $out"
elif [[ $out == *"Too many levels of symbolic links"* ]]; then ok "cat through a planted symlink fails with ELOOP"
else fail "unexpected error: $out"; fi
check_fails "cp of a symlink to /etc/shadow is refused" cp "$ws/shadow" "$T/copied"
is "readlink still shows the link (not hidden, just not followed)" "$(readlink "$ws/innocent.txt")" "$T/secret"
mkdir -p "$ws/dir"
ln -s "$T" "$ws/dir/up"
check_fails "a symlinked directory is not traversed" ls "$ws/dir/up/secret"

# --- nodev: a device node written into the share does not work on the host
mknod "$ws/mem" c 1 1 2>/dev/null && check_fails "device nodes do not open (nodev)" head -c1 "$ws/mem"

# --- the cap holds: fill the share until ENOSPC
before=$(df -k --output=avail "$T" | tail -1)
if out=$(dd if=/dev/zero of="$ws/fill" bs=1M count=2048 conv=fsync 2>&1); then
	fail "writing 2 GiB into a 1 GiB share succeeded"
elif [[ $out == *"No space left"* ]]; then ok "filling the share stops with ENOSPC"
else fail "dd: $out"; fi
filled=$(stat -c %s "$ws/fill")
diag "wrote $((filled >> 20)) MiB before ENOSPC"
if [ "$filled" -gt $((900 << 20)) ] && [ "$filled" -le $((1 << 30)) ]; then ok "nearly the whole GiB is usable (-m 0)"; else fail "usable: $filled"; fi
is "image file size did not grow" "$(stat -c %s "$img")" 1073741824
alloc=$(( $(stat -c %b "$img") * $(stat -c %B "$img") ))
if [ "$alloc" -le $((1 << 30)) ]; then ok "host blocks used by the image <= 1 GiB ($((alloc >> 20)) MiB)"; else fail "image uses $alloc bytes"; fi
after=$(df -k --output=avail "$T" | tail -1)
# df sees every writer on the machine (a shared CI host): the image's own
# blocks above are the exact measure, this is context only
diag "free space on the host's disk changed by $(((before - after) >> 10)) MiB meanwhile"
rm -f "$ws/fill"

# --- unmount
loopdev=$(mnt_src "$ws")
echo data >"$ws/kept.txt"
check "unmount" "$TOOL" unmount "$img" "$ws"
check_fails "nothing mounted on the folder" grep -q " $ws " /proc/self/mountinfo
wait_until 120 detached "$img"	# the loop device goes asynchronously
if [ -n "$(losetup -j "$img" 2>/dev/null)" ] &&
	grep -qs " ${loopdev} " /proc/[0-9]*/mountinfo; then
	# a process elsewhere on this machine made a mount namespace while it was mounted
	skip "the loop device detached itself" "another mount namespace holds a copy of the mount"
else
	is "the loop device detached itself" "$(losetup -j "$img" 2>/dev/null)" ""
fi
check "unmount when nothing is mounted is fine" "$TOOL" unmount "$img" "$ws"
"$TOOL" mount "$img" "$ws" >/dev/null
is "data survives unmount/mount" "$(cat "$ws/kept.txt")" data
"$TOOL" unmount "$img" "$ws"

# --- a copy of the mount in another mount namespace outlives our unmount:
# mounting again must reuse its loop device (one superblock), never attach a
# second one (two ext4 superblocks over one image corrupt it)
"$TOOL" mount "$img" "$ws" >"$T/loop1" 2>/dev/null
unshare -m --propagation private sleep 600 &
NSPID=$!
# it holds a copy once it runs in a mount namespace of its own with the mount
copied() { [ "$(readlink "/proc/$NSPID/ns/mnt")" != "$(readlink /proc/self/ns/mnt)" ] &&
	grep -q " $ws " "/proc/$NSPID/mountinfo" 2>/dev/null; }
wait_until 120 copied
"$TOOL" unmount "$img" "$ws"
echo "after" >"$T/probe"
out=$("$TOOL" mount "$img" "$ws" 2>&1 | tail -1)
is "remount while another namespace holds the image reuses its loop device" "$out" "$(cat "$T/loop1")"
is "exactly one loop device backs the image" "$(losetup -j "$img" | wc -l)" 1
is "data consistent" "$(cat "$ws/kept.txt" 2>&1)" data
"$TOOL" unmount "$img" "$ws"
kill "$NSPID"; wait "$NSPID" 2>/dev/null
wait_until 120 detached "$img"	# the loop device goes asynchronously
is "the loop device goes with the last copy" "$(losetup -j "$img" 2>/dev/null)" ""

# --- a folder mounted from elsewhere is refused and left alone
mkdir -p "$T/busy"
"$TOOL" create "$T/busy.img" 1 >/dev/null 2>&1
mount -t tmpfs -o size=1m hutch-share-test "$T/busy"
check_fails "a folder that is already a mount point is refused" "$TOOL" mount "$T/busy.img" "$T/busy"
is "the foreign mount is untouched" "$(mnt_fs "$T/busy")" tmpfs
check_fails "unmount refuses a mount that is not ours" "$TOOL" unmount "$img" "$T/busy"
is "still mounted" "$(mnt_fs "$T/busy")" tmpfs
umount "$T/busy"

# --- another image mounted on the folder is not ours either
"$TOOL" create "$T/ws2.img" 1 >/dev/null 2>&1
"$TOOL" mount "$T/ws2.img" "$T/ws2" >/dev/null
check_fails "an image is mounted only on its own folder (IMG = DIR.img)" "$TOOL" mount "$img" "$T/ws2"
check_fails "verify tells the images apart" "$TOOL" verify "$img" "$T/ws2"
"$TOOL" unmount "$T/ws2.img" "$T/ws2"

# --- a folder reached through a symlinked parent (/home -> /usr/home) works
ln -s "$T" "$T/alias"
check "mount through a symlinked parent" "$TOOL" mount "$T/alias/ws.img" "$T/alias/ws"
is "mounted under the canonical name" "$(mnt_fs "$ws")" ext4
check "verify through the alias" "$TOOL" verify "$img" "$T/alias/ws"
check "unmount through the alias" "$TOOL" unmount "$img" "$T/alias/ws"
check_fails "unmounted" grep -q " $ws " /proc/self/mountinfo

# --- a symlinked folder is refused (mount(2) would follow it)
ln -s "$T/busy" "$T/link"
"$TOOL" create "$T/link.img" 1 >/dev/null 2>&1
check_fails "a folder that is a symlink is refused" "$TOOL" mount "$T/link.img" "$T/link"
check_fails "and nothing got mounted through it" grep -q " $T/busy " /proc/self/mountinfo

# --- the mount primitive's checks, for a privileged caller acting for a user
mknod "$T/dev.img" b 7 0
mkdir -p "$T/dev"
out=$("$TOOL" mount "$T/dev.img" "$T/dev" 2>&1)
if [ $? != 0 ] && [[ $out == *"not a regular file"* ]]; then ok "an image that is a device node is refused (never opened)"
else fail "device node as image: $out"; fi
# acting for uid 65534, as the helper would for an unprivileged user
U=65534
SHARE_TOOL_UID=$U "$TOOL" create "$T/theirs.img" 1 >/dev/null 2>&1
is "an image made for a user is theirs" "$(stat -c %u "$T/theirs.img")" $U
mkdir -p "$T/theirs"
out=$(SHARE_TOOL_UID=$U "$TOOL" mount "$T/theirs.img" "$T/theirs" 2>&1)
if [ $? != 0 ] && [[ $out == *"belongs to uid 0, not to $U"* ]]; then ok "a folder that is not the user's is refused"
else fail "folder of another user: $out"; fi
check_fails "nothing mounted on it" grep -q " $T/theirs " /proc/self/mountinfo
check_fails "the image made for that failed first mount is gone" test -e "$T/theirs.img"
chown $U "$T/theirs"
SHARE_TOOL_UID=$U "$TOOL" create "$T/theirs.img" 1 >/dev/null 2>&1
check "the user's own folder and image: mounted" env SHARE_TOOL_UID=$U "$TOOL" mount "$T/theirs.img" "$T/theirs"
out=$(SHARE_TOOL_UID=1000 "$TOOL" unmount "$T/theirs.img" "$T/theirs" 2>&1)
if [ $? != 0 ] && grep -q " $T/theirs " /proc/self/mountinfo; then ok "unmount acting for another user is refused"
else fail "unmount for another uid: $out"; fi
check "unmount acting for the user" env SHARE_TOOL_UID=$U "$TOOL" unmount "$T/theirs.img" "$T/theirs"
"$TOOL" create "$T/mine.img" 1 >/dev/null 2>&1
out=$(SHARE_TOOL_UID=$U "$TOOL" mount "$T/mine.img" "$T/mine" 2>&1)
if [ $? != 0 ] && [[ $out == *"belongs to uid 0, not to $U"* ]]; then
	ok "an image that is not the user's is refused"; else fail "mount of another's image: $out"; fi
check_fails "nothing mounted on it" grep -q " $T/mine " /proc/self/mountinfo

# --- virtiofsd
if VPID=$("$TOOL" vfs-start "$T/busy" "$T/vfs.sock" 2>"$T/vfs.err"); then
	ok "virtiofsd started (pid $VPID)"
	if [ -S "$T/vfs.sock" ]; then ok "its socket is there"; else fail "no socket"; fi
	check "pid check: virtiofsd on that socket" "$TOOL" is-vfs "$VPID" "$T/vfs.sock"
	check_fails "pid check: another socket" "$TOOL" is-vfs "$VPID" "$T/other.sock"
	check_fails "pid check: not a virtiofsd" "$TOOL" is-vfs $$ "$T/vfs.sock"
	check "virtiofsd stopped" "$TOOL" vfs-stop "$VPID"
	wait_until 120 gone "$VPID"
	if [ -d "/proc/$VPID" ] && ! grep -q '^State:.*Z' "/proc/$VPID/status" 2>/dev/null; then fail "still running"; else ok "gone"; fi
	VPID=
else
	fail "virtiofsd did not start: $(cat "$T/vfs.err")"
fi
done_testing
