# shellcheck shell=bash
# Test guest helpers: source after tests/lib/tap.sh.
#   guest_tiny_build        `make tiny` once; exports TINY_KERNEL, TINY_INITRD
#                           (returns non-zero with the build log on failure)
#                           and adds the tiny dir to HUTCH_ALLOW_PATHS
#   guest_debian_build      `make debian-image` once (root; minutes the first
#                           time); exports DEBIAN_IMAGE (the qcow2 path)
#   tiny_boot DIR [QEMU ARGS...]
#                           boots the tiny guest under TCG with plain QEMU in
#                           the background: console on DIR/console.sock, QMP
#                           on DIR/qmp.sock, console log in DIR/console.log,
#                           pid in TINY_PID.  TINY_CMDLINE adds kernel
#                           arguments (e.g. "hutch.net=dhcp").
#   tiny_stop DIR           system_powerdown, wait (up to 120 s) until QEMU
#                           exits, then kill
#   guestsh ARGS...         tests/lib/guestsh.py (console commands, --qmp)
#   now / since T0          timestamps and elapsed seconds for diagnostics
#
# Every tiny guest boots with no_timer_check: when the host is loaded, the
# vCPU of a TCG guest is starved for a moment, the kernel's early check of
# the timer interrupt (check_timer) sees no tick and panics ("IO-APIC + timer
# doesn't work!").  Give it to any test guest's kernel command line.
GUESTSH_PY=$HUTCH_SRC/tests/lib/guestsh.py
export GUESTSH_PY
TINY_DIR=$HUTCH_SRC/build/guests/tiny

guestsh() { python3 "$GUESTSH_PY" "$@"; }

# now: a timestamp for since; since T0: seconds elapsed since T0 (2 decimals).
# (awk, not bc: bc is not installed everywhere)
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'; }

guest_tiny_build() {
	if [ -z "${TINY_KERNEL:-}" ]; then
		local log
		log=$(mktemp)
		if ! make -C "$HUTCH_SRC" --no-print-directory tiny >"$log" 2>&1; then
			sed 's/^/# /' "$log" | tail -20
			rm -f "$log"
			return 1
		fi
		rm -f "$log"
	fi
	TINY_KERNEL=$TINY_DIR/vmlinuz
	TINY_INITRD=$TINY_DIR/initrd.img
	export TINY_KERNEL TINY_INITRD
	guest_allow "$TINY_DIR"
}

# guest_allow DIR: the test projects name the guest's kernel, initrd or image
# in the build tree, outside the project: allowed as a user would allow it
# (HUTCH_ALLOW_PATHS is the user's own word, like allow_paths in
# ~/.config/hutch/config.yaml; a project can set neither)
guest_allow() {
	case ":${HUTCH_ALLOW_PATHS:-}:" in *":$1:"*) ;; *)
		HUTCH_ALLOW_PATHS=${HUTCH_ALLOW_PATHS:+$HUTCH_ALLOW_PATHS:}$1 ;;
	esac
	export HUTCH_ALLOW_PATHS
}

guest_debian_build() {
	if [ -z "${DEBIAN_IMAGE:-}" ]; then
		local log
		log=$(mktemp)
		if ! make -C "$HUTCH_SRC" --no-print-directory debian-image >"$log" 2>&1; then
			sed 's/^/# /' "$log" | tail -30
			rm -f "$log"
			return 1
		fi
		rm -f "$log"
	fi
	DEBIAN_IMAGE=$HUTCH_SRC/build/guests/debian-12/image.qcow2
	export DEBIAN_IMAGE
	guest_allow "$HUTCH_SRC/build/guests/debian-12"
}

tiny_boot() {
	local dir=$1
	shift
	guest_tiny_build || return 1
	mkdir -p "$dir"
	qemu-system-x86_64 -accel tcg -M q35 -m 256 -display none -no-user-config -nodefaults \
		-kernel "$TINY_KERNEL" -initrd "$TINY_INITRD" \
		-append "console=ttyS0 quiet no_timer_check ${TINY_CMDLINE:-}" \
		-chardev "socket,id=con,path=$dir/console.sock,server=on,wait=off,logfile=$dir/console.log" \
		-serial chardev:con \
		-qmp "unix:$dir/qmp.sock,server=on,wait=off" "$@" \
		</dev/null >"$dir/qemu.log" 2>&1 &
	TINY_PID=$!
	export TINY_PID
}

tiny_stop() {
	local dir=$1
	[ -n "${TINY_PID:-}" ] || return 0
	guestsh --timeout 60 --qmp "$dir/qmp.sock" system_powerdown >/dev/null 2>&1
	wait_until 120 gone "$TINY_PID"
	kill "$TINY_PID" 2>/dev/null
	wait "$TINY_PID" 2>/dev/null
	TINY_PID=
}
