#!/usr/bin/env bash
# An isolated shared folder as a normal user (issue 10's "done when", the
# share part).  A test user in the group of a test copy of hutch-helper
# (tests/lib/priv.sh; that group, and one more, are supplementary groups of
# the user: every real user has some) runs `hutch up` of the tiny guest
# (TCG) with `isolation: true`, without sudo.  QEMU 7.2's virtiofsd drops
# its supplementary groups at start and exits when it may not; a user
# namespace the user maps itself forbids that, so the helper maps it
# (userns_map).  Checked: up succeeds; the guest writes into the share and
# the host reads it from the folder; virtiofsd runs as the user with
# CapEff 0 and no groups; QEMU runs as the user, never root; halt unmounts.
# No network (mode none): nothing here touches a network namespace.
set -u
source "$(dirname "$0")/../lib/tap.sh"
source "$HUTCH_SRC/tests/lib/guest.sh"
source "$HUTCH_SRC/tests/lib/priv.sh"
if [ "$(id -u)" -ne 0 ]; then skip "an isolated share as a user" "needs root"; done_testing; exit 0; fi
for t in qemu-system-x86_64 setpriv useradd python3; do
	command -v $t >/dev/null || { skip "an isolated share as a user" "$t missing"; done_testing; exit 0; }
done
[ -x "$HUTCH_SRC/hutch-helper" ] || { skip "an isolated share as a user" "make hutch-helper first"; done_testing; exit 0; }
[ -w /dev/loop-control ] || { skip "an isolated share as a user" "no /dev/loop-control"; done_testing; exit 0; }
command -v virtiofsd >/dev/null || [ -x /usr/lib/qemu/virtiofsd ] || [ -x /usr/libexec/virtiofsd ] ||
	{ skip "an isolated share as a user" "virtiofsd missing"; done_testing; exit 0; }
guest_tiny_build || { fail "the tiny guest"; done_testing; exit 1; }

T=$(mktemp -d /tmp/privs.XXXXXX)
U=htsu$$ XG=htsx$$
chmod 755 "$T"
unset HUTCH_DIR HUTCH_RUN_DIR
P=$T/p WS=$T/p/workspace
cleanup() {
	[ -n "${PRIV_ARGV:-}" ] && timeout 300 "${PRIV_ARGV[@]}" "$HUTCH" -C "$P" halt >/dev/null 2>&1
	[ -n "${VMD:-}" ] && [ -f "$VMD/supervisor.pid" ] && kill -9 "$(cat "$VMD/supervisor.pid")" 2>/dev/null
	while grep -q " $WS " /proc/self/mountinfo 2>/dev/null; do umount -l "$WS" || break; done
	priv_fini
	getent group "$XG" >/dev/null && groupdel "$XG" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
priv_start "$T/priv" "$U"
groupadd "$XG" && usermod -aG "$XG" "$U" || { fail "a second supplementary group"; done_testing; exit 1; }
priv_argv "$U"
groups=$(as_user "$U" id -G | wc -w)
[ "$groups" -ge 3 ] && ok "test user $U has supplementary groups ($(as_user "$U" id -Gn))" ||
	fail "test user $U has supplementary groups"
hh() { "${PRIV_ARGV[@]}" "$@"; }
VMD=$PRIV_DIR/home-$U/data/hutch/vms/sharuser

mkdir -p "$P"
cat >"$P/hutch.yaml" <<YAML
name: sharuser
kernel: {path: $TINY_KERNEL, initrd: $TINY_INITRD, cmdline: "console=ttyS0 quiet hutch.share=workspace:/mnt/ws"}
memory: 256
cpus: 1
accel: tcg
network: {mode: none}
cloud_init_wait: false
shared_folders:
  - {host: workspace, guest: /workspace, size: 1, isolation: true}
YAML
# the tiny guest runs no sshd nor cloud-init: user-data without keys, so up does not wait for them
printf '#cloud-config\nhostname: tiny\n' >"$P/cloud-init.yml"
chown -R "$U:" "$P"
state_share() { python3 -c "import json; print(json.load(open('$VMD/state.json'))['shares'][0].get('$1'))" 2>/dev/null; }

if hh timeout 900 "$HUTCH" -C "$P" up >"$T/up.out" 2>&1; then ok "hutch up as $U with an isolated share"; else
	fail "hutch up as $U with an isolated share"; tail -20 "$T/up.out" | sed 's/^/#   /'
	tail -20 "$VMD/supervisor.log" 2>/dev/null | sed 's/^/#   /'
	tail -5 "$VMD"/virtiofsd*.log 2>/dev/null | sed 's/^/#   /'
	done_testing; exit 1
fi
opts=$(awk -v m="$WS" '$5 == m {print $6}' /proc/self/mountinfo)
[[ ,$opts, == *,nosymfollow,* && ,$opts, == *,nodev,* ]] && ok "the folder is mounted nosymfollow,nodev" ||
	fail "the folder is mounted nosymfollow,nodev ($opts)"

vp=$(state_share virtiofsd_pid)
qp=$(jget "$VMD/state.json" qemu_pid)
uid=$(id -u "$U")
if [ -n "$vp" ] && [ -r "/proc/$vp/status" ]; then
	is "virtiofsd runs as $U with CapEff 0" \
		"$(awk '/^Uid:/ {print $2} /^CapEff:/ {print $2}' "/proc/$vp/status" | tr '\n' ' ')" \
		"$uid 0000000000000000 "
	is "virtiofsd has no supplementary groups" "$(awk '/^Groups:/ {print $2}' "/proc/$vp/status")" ""
else
	fail "virtiofsd runs (pid '$vp')"
fi
# every process of the VM: QEMU and virtiofsd (both of its processes), none of them root
is "QEMU runs as $U with CapEff 0" \
	"$(awk '/^Uid:/ {print $2} /^CapEff:/ {print $2}' "/proc/$qp/status" 2>&1 | tr '\n' ' ')" \
	"$uid 0000000000000000 "
root_procs=$(ps -eo uid=,args= | awk '$1 == 0 && ($2 ~ /qemu-system/ || $2 ~ /virtiofsd/)' | grep -F "$VMD" || true)
is "no QEMU or virtiofsd of this VM runs as root" "$root_procs" ""

# the guest writes into its share, the host reads it from the folder
out=$(python3 "$GUESTSH_PY" --timeout 600 --wait-ready "$VMD/console.sock" 2>&1) ||
	diag "console: $(tail -3 <<<"$out")"
python3 "$GUESTSH_PY" --timeout 300 "$VMD/console.sock" \
	"echo from-guest-$$ >/mnt/ws/g.txt && sync" \
	>"$T/sh.out" 2>&1 || sed 's/^/#   /' "$T/sh.out" | tail -5
is "the host reads what the guest wrote" "$(cat "$WS/g.txt" 2>&1)" "from-guest-$$"
is "the file belongs to $U on the host" "$(stat -c %u "$WS/g.txt" 2>&1)" "$uid"
echo from-host >"$WS/h.txt" && chown "$U:" "$WS/h.txt"
is "the guest reads what the host wrote" \
	"$(python3 "$GUESTSH_PY" --timeout 300 "$VMD/console.sock" 'cat /mnt/ws/h.txt' 2>&1 | tr -d '\r')" from-host

if hh timeout 300 "$HUTCH" -C "$P" halt >"$T/halt.out" 2>&1; then ok "hutch halt as $U"; else
	fail "hutch halt as $U"; sed 's/^/#   /' "$T/halt.out" | tail -5; fi
check_fails "halt unmounted the folder" grep -q " $WS " /proc/self/mountinfo
[ -n "$vp" ] && ! [ -d "/proc/$vp" ] && ok "virtiofsd is gone" || fail "virtiofsd is gone"
is "no registry entry" "$(priv_registry)" '{"vms":[],"mounts":[],"tunnels":[]}'
done_testing
