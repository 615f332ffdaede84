#!/usr/bin/env bash
# The tiny test guest (images/recipes/tiny.sh): builds from Debian packages,
# boots under TCG with plain QEMU (no hutch), gives a root shell on the serial
# console (tests/lib/guestsh.py), loads the virtio modules, gets a DHCP lease,
# mounts the virtiofs shares named on its command line, and powers off on QMP
# system_powerdown.
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$HUTCH_SRC/tests/lib/guest.sh"

command -v qemu-system-x86_64 >/dev/null || { skip "tiny guest" "no qemu-system-x86_64"; done_testing; exit; }

T=$(mktemp -d /tmp/guests-tiny.XXXXXX)
V1= V2=
cleanup() {
	[ -n "${TINY_PID:-}" ] && kill "$TINY_PID" 2>/dev/null
	[ -n "$V1$V2" ] && kill $V1 $V2 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

s=$SECONDS
if guest_tiny_build; then ok "make tiny builds the tiny guest"; else fail "make tiny builds the tiny guest"; done_testing; exit 1; fi
diag "build: $((SECONDS - s)) s"
is "vmlinuz is a bzImage" "$(dd if="$TINY_KERNEL" bs=1 skip=514 count=4 2>/dev/null)" HdrS
check "initrd is a gzip'd newc cpio with /init" \
	bash -c "gzip -dc '$TINY_INITRD' | cpio -it --quiet 2>/dev/null | grep -qx init"

s=$SECONDS
make -C "$HUTCH_SRC" --no-print-directory tiny >"$T/rebuild.log" 2>&1
is "make tiny again is a no-op" "$(cat "$T/rebuild.log")" ""
diag "cached make tiny: $((SECONDS - s)) s"

TINY_CMDLINE="hutch.net=dhcp hutch.hostname=tinytest" tiny_boot "$T" \
	-netdev user,id=n0 -device virtio-net-pci,netdev=n0
t0=$(now)
if guestsh --timeout 600 --wait-ready "$T/console.sock"; then
	ok "boots to a ready shell under TCG"
	diag "boot to ready: $(since $t0) s"
else
	fail "boots to a ready shell under TCG"
	tail -30 "$T/console.log" | sed 's/^/#   /'
	done_testing
	exit 1
fi

is "command output comes back" "$(guestsh "$T/console.sock" 'echo hello; echo world')" "hello
world"
guestsh "$T/console.sock" 'exit 7' >/dev/null
is "command exit status comes back" "$?" 7
is "stderr comes back" "$(guestsh "$T/console.sock" 'echo oops >&2; false')" "oops"
is "quotes and specials survive" "$(guestsh "$T/console.sock" "printf '%s|' \"a b\" '\$x' '\"q\"'")" 'a b|$x|"q"|'
long=$(printf 'x%.0s' $(seq 3000))
is "a 3000-character command survives" "$(guestsh "$T/console.sock" "echo $long | wc -c")" 3001
is "hostname from hutch.hostname" "$(guestsh "$T/console.sock" hostname)" tinytest
mods=$(guestsh "$T/console.sock" 'cut -d" " -f1 /proc/modules')
for m in virtio_net virtio_pci virtio_blk virtiofs fuse button evdev; do
	if echo "$mods" | grep -qx "$m"; then ok "module $m loaded"; else fail "module $m loaded"; fi
done
check "virtiofs is a known filesystem" guestsh "$T/console.sock" 'grep -qw virtiofs /proc/filesystems'
check "DHCP lease applied to eth0" guestsh "$T/console.sock" 'ip -4 addr show eth0 | grep -q "inet 10.0.2.15/24"'
check "default route from DHCP" guestsh "$T/console.sock" 'ip route | grep -q "default via 10.0.2.2"'
check "resolv.conf from DHCP" guestsh "$T/console.sock" 'grep -q "nameserver 10.0.2.3" /etc/resolv.conf'
check "lease printed on the console" grep -q 'hutch-tiny: lease eth0 10.0.2.15/24' "$T/console.log"
check "busybox tools present" guestsh "$T/console.sock" 'for a in wget nc udhcpc ping ip arping mount; do command -v $a >/dev/null || exit 1; done'
# a command line the console lost (its newline): guestsh finds that it never
# started and types it again; it runs once
is "a lost command line is typed again, and runs once" \
	"$(GUESTSH_TEST_LOSE_LINE=1 GUESTSH_RETRY_S=5 guestsh "$T/console.sock" 'echo x >>/tmp/once; wc -l </tmp/once')" 1
check "guestsh times out on a hung command" \
	bash -c "python3 '$GUESTSH_PY' --timeout 3 '$T/console.sock' 'sleep 8'; [ \$? -eq 124 ]"
# The shell is busy with "sleep 8" now; a later command must still work.
check "console usable after a timed-out command" guestsh "$T/console.sock" true

t0=$(now)
guestsh --qmp "$T/qmp.sock" system_powerdown >/dev/null
qemu_gone() { ! kill -0 "$TINY_PID" 2>/dev/null; }
if wait_until 180 qemu_gone; then	# a ceiling for a loaded host: it takes a second or two
	ok "system_powerdown makes QEMU exit"
	diag "powerdown to exit: $(since $t0) s"
	wait "$TINY_PID"
	is "QEMU exits with status 0" "$?" 0
	TINY_PID=
else
	fail "system_powerdown makes QEMU exit (within 180 s)"
	tail -10 "$T/console.log" | sed 's/^/#   /'
fi

# Shares: hutch.share mounts virtiofs tags (comma separated and repeated
# forms); a tag that does not exist is reported and the boot goes on.
VIRTIOFSD=
for v in /usr/libexec/virtiofsd /usr/lib/qemu/virtiofsd; do [ -x "$v" ] && VIRTIOFSD=$v && break; done
if [ -z "$VIRTIOFSD" ]; then
	skip "virtiofs shares" "no virtiofsd"
else
	mkdir -p "$T/b" "$T/s1" "$T/s2"
	echo fromhost >"$T/s1/hello"
	"$VIRTIOFSD" --socket-path="$T/b/vfs1.sock" -o source="$T/s1" -o cache=none -o sandbox=chroot >"$T/b/vfs1.log" 2>&1 &
	V1=$!
	"$VIRTIOFSD" --socket-path="$T/b/vfs2.sock" -o source="$T/s2" -o cache=none -o sandbox=chroot >"$T/b/vfs2.log" 2>&1 &
	V2=$!
	wait_until 120 test -S "$T/b/vfs1.sock" -a -S "$T/b/vfs2.sock"
	TINY_CMDLINE="hutch.share=work:/mnt/work,nosuchtag:/mnt/x hutch.share=two:/srv/two" tiny_boot "$T/b" \
		-object memory-backend-memfd,id=mem,size=256M,share=on -numa node,memdev=mem \
		-chardev "socket,id=vfs1,path=$T/b/vfs1.sock" -device vhost-user-fs-pci,chardev=vfs1,tag=work \
		-chardev "socket,id=vfs2,path=$T/b/vfs2.sock" -device vhost-user-fs-pci,chardev=vfs2,tag=two
	if guestsh --timeout 600 --wait-ready "$T/b/console.sock"; then
		is "virtiofs share readable in the guest" "$(guestsh "$T/b/console.sock" 'cat /mnt/work/hello')" fromhost
		guestsh "$T/b/console.sock" 'echo fromguest >/srv/two/back' >/dev/null
		is "second (repeated option) share writable from the guest" "$(cat "$T/s2/back" 2>/dev/null)" fromguest
		check "shares reported on the console" grep -q 'hutch-tiny: share work on /mnt/work' "$T/b/console.log"
		check "missing share reported on the console" grep -q 'hutch-tiny: share nosuchtag failed' "$T/b/console.log"
	else
		fail "boots with virtiofs shares"
		tail -20 "$T/b/console.log" | sed 's/^/#   /'
	fi
	tiny_stop "$T/b"
	kill "$V1" "$V2" 2>/dev/null
	wait "$V1" "$V2" 2>/dev/null
fi
done_testing
