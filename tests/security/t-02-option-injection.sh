#!/usr/bin/env bash
# Issue 15.2: option injection.  A share's folder reaches virtiofsd as
# `-o source=PATH`, whose parser splits on ',' (and, in the C virtiofsd,
# reads '\' as an escape): `host: "./w,source=/etc"` served the host's /etc
# to the guest, read-write.  hutch refuses ',' and '\' in such paths
# (check-config, up, and virtiofsd's spawn itself).  QEMU's options are
# escaped instead (",,"): a VM directory holding a comma still gives QEMU
# exactly one -drive file= and one -chardev path=, shown by booting the tiny
# guest from there and reading a file through its share.
source "$(dirname "$0")/../lib/tap.sh"
source "$HUTCH_SRC/tests/share/lib-guest.sh"

T=$(mktemp -d /tmp/hutch-sec02.XXXXXX)
P=$T/proj
h() { timeout 600 "$HUTCH" -C "$P" "$@"; }
cleanup() {
	h halt >/dev/null 2>&1
	h destroy >/dev/null 2>&1
	for m in "$P/ws" "$P/w,source=" "$P/w,source=/etc"; do
		while grep -q " $m " /proc/self/mountinfo 2>/dev/null; do umount -l "$m" || break; done
	done
	rm -rf "$T"
}
trap cleanup EXIT
export XDG_CACHE_HOME=$T/cache
mkdir -p "$P"
: >"$P/vmlinuz"

# --- virtiofsd: a comma in the folder is refused before anything runs
for iso in false true; do
	cat >"$P/hutch.yaml" <<YAML
name: sec02
kernel: {path: ./vmlinuz}
network: {mode: none}
shared_folders:
  - {host: "./w,source=/etc", guest: /mnt/ws, tag: ws, isolation: $iso}
YAML
	out=$(XDG_DATA_HOME=$T/data h check-config 2>&1); rc=$?
	if [ "$rc" = 2 ] && [[ $out == *"shared_folders.host"* && $out == *"virtiofsd"* ]]; then
		ok "check-config refuses host: \"./w,source=/etc\" (isolation: $iso), exit 2"
	else fail "check-config with a comma in the share (isolation: $iso): exit $rc"; diag "$out"; fi
done
cat >"$P/hutch.yaml" <<'YAML'
name: sec02
kernel: {path: ./vmlinuz}
network: {mode: none}
shared_folders:
  - {host: 'w\x', guest: /mnt/ws, tag: ws, isolation: false}
YAML
out=$(XDG_DATA_HOME=$T/data h check-config 2>&1); rc=$?
if [ "$rc" = 2 ]; then ok "check-config refuses a backslash in the share, exit 2"
else fail "backslash: exit $rc"; diag "$out"; fi

# the sink itself: share_virtiofsd_start() refuses, whatever its caller checked
TOOL=$HUTCH_SRC/build/tests/share_tool
if [ -x "$TOOL" ] && { command -v virtiofsd >/dev/null || [ -x /usr/libexec/virtiofsd ] ||
	[ -x /usr/lib/qemu/virtiofsd ]; }; then
	mkdir -p "$T/w,source=" 2>/dev/null
	out=$("$TOOL" vfs-start "$T/w,source=/etc" "$T/vfs.sock" 2>&1); rc=$?
	if [ "$rc" != 0 ] && [[ $out == *"virtiofsd's options"* ]]; then ok "virtiofsd is never started on \"w,source=/etc\""
	else fail "vfs-start with a comma: exit $rc ($out)"; [ "$rc" = 0 ] && "$TOOL" vfs-stop "$out"; fi
	check_fails "no virtiofsd socket appeared" test -S "$T/vfs.sock"
	check_fails "no virtiofsd serves /etc" pgrep -f "virtiofsd.*source=$T/w,source=/etc"
else
	skip "virtiofsd is never started on \"w,source=/etc\"" "no virtiofsd or share_tool"
fi

# --- the whole way, with a guest: what used to serve /etc to it
if ! sg_find; then
	skip "up with a comma in the share, and QEMU escaping, with a guest" "$SG_WHY"
	done_testing; exit 0
fi
export XDG_DATA_HOME=$T/data
VM_DIR=$XDG_DATA_HOME/hutch/vms/sec02
cat >"$P/hutch.yaml" <<YAML
name: sec02
kernel: {path: $TINY/vmlinuz, initrd: $TINY/initrd.img, cmdline: "console=ttyS0 quiet no_timer_check hutch.share=ws:/mnt/ws"}
memory: 256
cpus: 1
accel: tcg
network: {mode: none}
cloud_init_wait: false
shared_folders:
  - {host: "./w,source=/etc", guest: /mnt/ws, tag: ws, isolation: false}
YAML
printf '#cloud-config\nhostname: tiny\n' >"$P/cloud-init.yml"
out=$(h up 2>&1); rc=$?
if [ "$rc" != 0 ]; then
	ok "up refuses the share (exit $rc)"
else
	fail "up started a VM with host: \"./w,source=/etc\""
	SG_DIR=$VM_DIR
	g=$(sg_sh "cat /mnt/ws/hostname" 2>&1 | tr -d '\r' | tail -1)
	if [ -n "$g" ] && [ "$g" = "$(cat /etc/hostname)" ]; then fail "the guest reads the host's /etc/hostname through its share"; fi
	h halt >/dev/null 2>&1
fi
check_fails "no virtiofsd serving /etc ran" pgrep -f "virtiofsd.*source=.*source=/etc"
check_fails "no QEMU runs" pgrep -f "qemu-system.*-name sec02"
h destroy >/dev/null 2>&1

# --- QEMU: no path of the VM's reaches -drive or -chardev at all: QEMU gets
# the disk, the seed and virtiofsd's socket as file descriptors (src/vmfd.c,
# share_sv.c), so a comma in a path has nothing left to split
export XDG_DATA_HOME="$T/d,readonly=on"
VM_DIR=$XDG_DATA_HOME/hutch/vms/sec02
mkdir -p "$P/ws"
echo "through-a-comma" >"$P/ws/probe.txt"
sed -i 's|host: "./w,source=/etc"|host: ws|' "$P/hutch.yaml"
out=$(h up 2>&1); rc=$?
is "up with a VM dir holding a comma ($XDG_DATA_HOME)" "$rc" 0
[ "$rc" = 0 ] || { diag "$out"; tail -20 "$VM_DIR/supervisor.log" 2>/dev/null | sed 's/^/#   /'; }
argv=$(python3 -c "import json; print('\n'.join(json.load(open('$VM_DIR/state.json'))['qemu_argv']))" 2>/dev/null)
if [ -n "$argv" ] && ! grep -qF "$T/d" <<<"$argv"
then ok "no path under the VM dir (with its comma) in QEMU's options"; else fail "QEMU's argv: $(grep -F "$T/d" <<<"$argv")"; fi
if grep -q '^socket,id=hutch-vfs0,fd=[0-9]*$' <<<"$argv" && grep -q '^file=/dev/fdset/' <<<"$argv"
then ok "-chardev and -drive name file descriptors"; else fail "-chardev/-drive: $(grep -e vfs -e file= <<<"$argv")"; fi
SG_DIR=$VM_DIR SG_TIMEOUT=${SG_TIMEOUT:-300}
python3 "$GUESTSH" --timeout 600 --wait-ready "$SG_DIR/console.sock" >/dev/null 2>&1	# TCG on a busy host
is "the guest reads the share through that socket" "$(sg_sh 'cat /mnt/ws/probe.txt' 2>&1 | tr -d '\r' | tail -1)" "through-a-comma"
is "and the seed disk is attached read-only, as asked (not readonly=on taken from the path)" \
	"$(sg_sh 'cat /sys/block/vda/ro' 2>&1 | tr -d '\r' | tail -1)" 1
check "halt" h halt
done_testing
