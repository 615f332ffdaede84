#!/usr/bin/env bash
# Shared folders seen from inside a guest (tiny guest, TCG): files cross both
# ways; a symlink the guest plants to a host secret is not followed by host
# processes; a guest filling the share hits ENOSPC at the cap and the host
# disk does not grow past it.
source "$(dirname "$0")/../lib/tap.sh"
source "$(dirname "$0")/lib-guest.sh"

if ! sg_find; then skip "virtiofs with a guest" "$SG_WHY"; done_testing; exit 0; fi
T=$(mktemp -d /tmp/share-guest.XXXXXX)
trap 'sg_stop; rm -rf "$T"' EXIT

if ! sg_boot "$T" 1; then
	fail "tiny guest booted with the share"; sed 's/^/#   /' "$T/qemu.log" | tail -20
	done_testing; exit 1
fi
ok "tiny guest booted with an isolated share"
check "the guest mounted it over virtiofs" sg_sh "grep -q '^ws /mnt/ws virtiofs' /proc/mounts"

# files cross both ways
check "guest writes a file" sg_sh "echo from-guest >/mnt/ws/g.txt && sync"
is "the host reads it in the folder" "$(cat "$SG_WS/g.txt" 2>&1)" from-guest
echo from-host >"$SG_WS/h.txt"
is "the guest reads a file the host wrote" "$(sg_sh 'cat /mnt/ws/h.txt' | tr -d '\r')" from-host
check "guest creates a directory tree" sg_sh "mkdir -p /mnt/ws/a/b && echo deep >/mnt/ws/a/b/c && sync"
is "the host sees it" "$(cat "$SG_WS/a/b/c" 2>&1)" deep

check "symlinks inside the share still work for the guest" \
	sg_sh "ln -s g.txt /mnt/ws/link && ln -s a /mnt/ws/dirlink && test \"\$(cat /mnt/ws/link)\" = from-guest && test -f /mnt/ws/dirlink/b/c"

# symlinks planted by the guest are not followed on the host
echo "host-secret-$$" >"$T/secret"
chmod 600 "$T/secret"
check "guest plants symlinks to host secrets" \
	sg_sh "ln -s $T/secret /mnt/ws/notes.txt && ln -s /etc/shadow /mnt/ws/shadow && ln -s / /mnt/ws/root && sync"
is "the host sees a symlink" "$(readlink "$SG_WS/notes.txt")" "$T/secret"
if out=$(cat "$SG_WS/notes.txt" 2>&1); then
	fail "a host process read the secret through the guest's symlink"
elif [[ $out == *"Too many levels of symbolic links"* ]]; then ok "cat on the host fails with ELOOP"
else fail "unexpected: $out"; fi
check_fails "cp on the host does not copy /etc/shadow" cp "$SG_WS/shadow" "$T/stolen"
check_fails "a symlinked / is not traversed on the host" ls "$SG_WS/root/etc/shadow"
if out=$(sg_sh "cat /mnt/ws/notes.txt" 2>&1) && [[ $out == *host-secret* ]]; then
	fail "the guest read the host secret through virtiofs"
else ok "the guest cannot reach the host secret either"; fi

# a root guest's device nodes and setuid files are inert on the host
sg_sh "mknod /mnt/ws/mem c 1 1 2>/dev/null; cp /bin/busybox /mnt/ws/suid && chmod 4755 /mnt/ws/suid; sync" >/dev/null 2>&1
if [ -e "$SG_WS/mem" ]; then check_fails "a device node made by the guest does not open on the host (nodev)" head -c1 "$SG_WS/mem"
else ok "the guest could not make a device node in the share"; fi
opts=$(awk -v m="$SG_WS" '$5 == m {print $6}' /proc/self/mountinfo)
if [[ ,$opts, == *,nosuid,* ]]; then ok "setuid bits the guest sets are ignored on the host (nosuid)"; else fail "no nosuid: $opts"; fi
rm -f "$SG_WS/mem" "$SG_WS/suid"

# the cap holds
before=$(df -k --output=avail "$T" | tail -1)
out=$(SG_TIMEOUT=600 sg_sh "dd if=/dev/zero of=/mnt/ws/fill bs=1M count=1536 2>&1; sync; ls -l /mnt/ws/fill" 2>&1)
diag "$(echo "$out" | tr -d '\r' | tail -3)"
if [[ $out == *"No space left"* ]]; then ok "the guest filling the share gets ENOSPC"; else fail "no ENOSPC: $out"; fi
is "image file size unchanged" "$(stat -c %s "$SG_IMG")" 1073741824
alloc=$(( $(stat -c %b "$SG_IMG") * $(stat -c %B "$SG_IMG") ))
if [ "$alloc" -le $((1 << 30)) ]; then ok "image blocks on the host <= 1 GiB ($((alloc >> 20)) MiB)"; else fail "image uses $alloc bytes"; fi
after=$(df -k --output=avail "$T" | tail -1)
# df sees every writer on the machine (a shared CI host): the image's own
# blocks above are the exact measure, this is context only
diag "free space on the host's disk changed by $(((before - after) >> 10)) MiB meanwhile"
check "the guest removes the fill" sg_sh "rm /mnt/ws/fill && sync"

sg_stop
check_fails "after stop: nothing mounted on the folder" grep -q " $SG_WS " /proc/self/mountinfo
detached() { [ -z "$(losetup -j "$1" 2>/dev/null)" ]; }
wait_until 120 detached "$SG_IMG"	# the loop device goes asynchronously
loopdev=$(losetup -j "$SG_IMG" | cut -d: -f1)
if [ -n "$loopdev" ] && grep -qs " $loopdev " /proc/[0-9]*/mountinfo; then
	# a process elsewhere on this machine made a mount namespace while it was mounted
	skip "after stop: no loop device for the image" "another mount namespace holds a copy of the mount"
else
	is "after stop: no loop device for the image" "$loopdev" ""
fi
done_testing
