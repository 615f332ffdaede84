# shellcheck shell=bash
# Shared by tests/share/t-guest.sh and tests/bench/bench-share.sh: boot the
# tiny guest under TCG with one isolated share, set up exactly as the
# supervisor does it (image loop-mounted nosymfollow, virtiofsd with
# sandbox=namespace, vhost-user-fs-pci on a shared memfd backend), using the
# share module's code through build/tests/share_tool.
#
#   sg_find            sets TINY/GUESTSH/QEMU or returns 1 with SG_WHY set
#   sg_boot DIR GIB    image DIR/ws.img of GIB GiB on DIR/ws, virtiofsd, QEMU;
#                      the guest has the share on /mnt/ws
#   sg_sh 'cmd'        run a command in the guest (guestsh.py)
#   sg_stop            quit QEMU, stop virtiofsd, unmount (idempotent)
SG_TOOL=$HUTCH_SRC/build/tests/share_tool
# wait_until, gone (benches source this file without tap.sh)
declare -F wait_until >/dev/null || source "$HUTCH_SRC/tests/lib/tap.sh"

sg_find() {
	TINY=${HUTCH_TINY:-$HUTCH_SRC/build/guests/tiny}
	# the test projects boot this kernel from outside themselves: the user's word allows it
	export HUTCH_ALLOW_PATHS=${HUTCH_ALLOW_PATHS:+$HUTCH_ALLOW_PATHS:}$TINY
	GUESTSH=${GUESTSH:-$HUTCH_SRC/tests/lib/guestsh.py}
	QEMU=$(command -v qemu-system-x86_64 || true)
	if [ "$(id -u)" != 0 ] || [ ! -w /dev/loop-control ]; then SG_WHY="needs root and /dev/loop-control"; return 1; fi
	[ -n "$QEMU" ] || { SG_WHY="qemu-system-x86_64 missing"; return 1; }
	[ -x "$SG_TOOL" ] || { SG_WHY="build/tests/share_tool missing (make unit)"; return 1; }
	if [ ! -f "$TINY/vmlinuz" ] && [ -z "${HUTCH_TINY:-}" ] &&
		make -C "$HUTCH_SRC" -n tiny >/dev/null 2>&1; then
		make -C "$HUTCH_SRC" -s tiny >"$HUTCH_SRC/build/share-make-tiny.log" 2>&1 || true
	fi
	[ -f "$TINY/vmlinuz" ] && [ -f "$TINY/initrd.img" ] || { SG_WHY="no tiny guest at $TINY (make tiny)"; return 1; }
	[ -f "$GUESTSH" ] || { SG_WHY="no $GUESTSH"; return 1; }
	return 0
}

sg_boot() {
	SG_DIR=$1
	local gib=$2
	SG_WS=$SG_DIR/ws SG_IMG=$SG_DIR/ws.img SG_SOCK=$SG_DIR/vfs.sock
	# the image's provenance record goes beside it unless the caller chose a data dir
	export XDG_DATA_HOME=${XDG_DATA_HOME:-$SG_DIR/data}
	"$SG_TOOL" create "$SG_IMG" "$gib" >/dev/null 2>&1 || return 1
	"$SG_TOOL" mount "$SG_IMG" "$SG_WS" >/dev/null || return 1
	SG_VPID=$("$SG_TOOL" vfs-start "$SG_WS" "$SG_SOCK") || return 1
	"$QEMU" -accel tcg -machine q35 -m 256 -smp 1 -nodefaults -no-user-config -display none \
		-object memory-backend-memfd,id=hutch-mem,size=256M,share=on -numa node,memdev=hutch-mem \
		-chardev socket,id=hutch-vfs0,path="$SG_SOCK" \
		-device vhost-user-fs-pci,chardev=hutch-vfs0,tag=ws \
		-kernel "$TINY/vmlinuz" -initrd "$TINY/initrd.img" \
		-append "console=ttyS0 quiet no_timer_check hutch.share=ws:/mnt/ws" \
		-chardev socket,id=con,path="$SG_DIR/console.sock",server=on,wait=off -serial chardev:con \
		-qmp unix:"$SG_DIR/qmp.sock",server=on,wait=off \
		>"$SG_DIR/qemu.log" 2>&1 &
	SG_QPID=$!
	python3 "$GUESTSH" --timeout 600 --wait-ready "$SG_DIR/console.sock" >/dev/null
}

sg_sh() {
	python3 "$GUESTSH" --timeout "${SG_TIMEOUT:-600}" "$SG_DIR/console.sock" "$1"
}

sg_stop() {
	if [ -n "${SG_QPID:-}" ]; then
		python3 "$GUESTSH" --timeout 60 --qmp "$SG_DIR/qmp.sock" quit >/dev/null 2>&1
		wait_until 120 gone "$SG_QPID"
		kill -9 "$SG_QPID" 2>/dev/null
		wait "$SG_QPID" 2>/dev/null
		SG_QPID=
	fi
	if [ -n "${SG_VPID:-}" ]; then
		"$SG_TOOL" vfs-stop "$SG_VPID" >/dev/null 2>&1
		SG_VPID=
	fi
	if [ -n "${SG_IMG:-}" ]; then
		"$SG_TOOL" unmount "$SG_IMG" "$SG_WS" >/dev/null 2>&1
		grep -q " $SG_WS " /proc/self/mountinfo && umount -l "$SG_WS"
	fi
	return 0
}
