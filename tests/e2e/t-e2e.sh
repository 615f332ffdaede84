#!/usr/bin/env bash
# End to end with the Debian 12 guest, as a user would: a project with
# hutch.yaml, cloud-init.yml (a user + __HUTCH_PUBKEY__), playbook.yml and
# hooks; up (cloud-init + playbook), ssh with the pinned host key, exit
# status passthrough, ssh-config with `ssh -F`, a tampered pin refused,
# halt by ACPI, up again without re-provisioning, provision (mode user),
# destroy.
# In each mode, what hutch relies on in the debian-12 image is checked on
# the VM it booted (image_checks: NoCloud seed, cloud-init done, networkd,
# resolved, logind, console=ttyS0).
# The project's hooks and playbook are allowed with `hutch allow` first
# (refused with exit 77 before), and the image outside the project is
# allowed by the user's config (~/.config/hutch/config.yaml, allow_paths).
# Modes: E2E_MODES (default "user nat"); nat runs inside a network
# namespace of ours.  HOME and the XDG dirs are a scratch dir, so
# ~/.ssh/hutch is a throwaway test key.
#   E2E_IMAGE=path   use this qcow2 instead of `make debian-image`
#   E2E_ACCEL=tcg    accel of the guests (tcg: KVM is not usable on the CI machines)
# tests/run runs the two modes as two tests, side by side:
# test: variants E2E_MODES=user E2E_MODES=nat
source "$(dirname "$0")/../lib/tap.sh"
cd "$HUTCH_SRC" || exit 1
MODES=${E2E_MODES:-user nat}

T=$(mktemp -d /tmp/hutch-e2e.XXXXXX)
# as root, hooks and ansible-playbook run as the unprivileged hutch-vm: it must reach the projects
chmod 755 "$T"
NS=ssh-e2e-$$
NSX=()
SSHD_PID= SV_PID=
cleanup() {
	local d
	[ -n "$SSHD_PID" ] && kill "$SSHD_PID" 2>/dev/null
	[ -n "$SV_PID" ] && kill "$SV_PID" 2>/dev/null
	for d in "$T"/proj-*; do
		[ -f "$d/hutch.yaml" ] || continue
		"${NSX[@]}" "$HUTCH" -C "$d" destroy >/dev/null 2>&1 || true
	done
	ip netns del "$NS" 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT

export HOME=$T/home XDG_DATA_HOME=$T/data XDG_CACHE_HOME=$T/cache XDG_CONFIG_HOME=$T/config
export XDG_RUNTIME_DIR=$T/run
mkdir -p "$HOME" "$XDG_DATA_HOME" "$XDG_CACHE_HOME" "$XDG_CONFIG_HOME" "$XDG_RUNTIME_DIR"
chmod 700 "$XDG_RUNTIME_DIR"

# --- prerequisites -----------------------------------------------------------
if "$HUTCH" -C "$T" up 2>&1 | grep -q 'not implemented'; then
	skip "end to end" "the lifecycle verbs (core) are not in this build yet"
	done_testing; exit 0
fi
# --- pinning against a real sshd, without a guest ----------------------------
# OpenSSH's sshd from the Debian archive, unpacked (not installed: nothing
# starts on the host), run in a network namespace of ours and a private
# mount namespace whose /etc/passwd has a test user.  Checks what `hutch ssh`,
# `ssh-config` and `provision` do with the pinned host key.
local_sshd() {
	local D=$T/sshd S=$HUTCH_SRC/build/e2e-sshd P=$T/proj-pin vmd out rc pid
	if [ "$(id -u)" -ne 0 ]; then skip "local sshd" "needs root for namespaces"; return; fi
	mkdir -p "$S" "$D/srv" "$D/home" "$P"
	if ! ls "$S"/openssh-server_*.deb >/dev/null 2>&1 || ! ls "$S"/libwrap0_*.deb >/dev/null 2>&1; then
		(cd "$S" && apt-get download openssh-server libwrap0 >/dev/null 2>&1)
	fi
	if ! ls "$S"/openssh-server_*.deb >/dev/null 2>&1; then
		skip "local sshd" "apt-get download openssh-server failed (no archive)"; return
	fi
	for f in "$S"/openssh-server_*.deb "$S"/libwrap0_*.deb; do dpkg-deb -x "$f" "$D/root"; done
	# a copy of /etc, bound over the whole directory in the server's mount
	# namespace: a file bound over /etc/passwd alone is detached by the
	# kernel when a test beside this one adds or removes a user (useradd
	# renames a new file over it), and sshd then finds no sshd user
	cp -a /etc "$D/etc" 2>/dev/null
	[ -e "$D/etc/shadow" ] || : >"$D/etc/shadow"
	echo 'sshd:x:990:65534::/run/sshd:/usr/sbin/nologin' >>"$D/etc/passwd"
	echo "tester:x:4321:4321::$D/home:/bin/sh" >>"$D/etc/passwd"
	echo 'tester:x:4321:' >>"$D/etc/group"
	printf 'sshd:*:19000:0:99999:7:::\ntester:not-locked:19000:0:99999:7:::\n' >>"$D/etc/shadow"
	chown 4321:4321 "$D/home"
	chmod 755 "$T" "$D"
	: >"$P/k"	# never booted: the state below says "running"
	cat >"$P/hutch.yaml" <<Y
name: pin
kernel: {path: ./k}
network: {mode: user}
ssh: {user: tester}
Y
	printf -- '- hosts: all\n  gather_facts: false\n  tasks:\n    - ansible.builtin.copy:\n        dest: "%s/home/provisioned"\n        content: "yes\\n"\n' "$D" >"$P/playbook.yml"
	vmd=$XDG_DATA_HOME/hutch/vms/pin
	mkdir -p "$vmd/ssh"
	ssh-keygen -q -t ed25519 -N '' -C hutch-pin -f "$vmd/ssh/host_ed25519"
	echo "hutch-pin $(cut -d' ' -f1,2 "$vmd/ssh/host_ed25519.pub")" >"$vmd/ssh/known_hosts"
	# a stand-in supervisor: liveness is checked by its command line
	# ("__supervise VM_DIR"), never by a bare kill(pid, 0)
	python3 -c 'import time; time.sleep(3600)' __supervise "$vmd" &
	SV_PID=$!
	printf '{"name":"pin","status":"running","supervisor_pid":%d,"ssh":{"host":"127.0.0.1","port":2222}}\n' \
		"$SV_PID" >"$vmd/state.json"
	cp "$vmd/ssh/host_ed25519" "$D/srv/hk"
	cp "$HOME/.ssh/hutch.pub" "$D/srv/ak"
	printf 'Port 2222\nListenAddress 127.0.0.1\nHostKey %s/srv/hk\nAuthorizedKeysFile %s/srv/ak\nStrictModes no\nUsePAM no\nPidFile none\nPasswordAuthentication no\n' "$D" "$D" >"$D/srv/cfg"
	cat >"$D/srv/run.sh" <<Y
mount --bind $D/etc /etc || exit 1
mount -t tmpfs none /run && mkdir -m 755 /run/sshd
export LD_LIBRARY_PATH=$D/root/usr/lib/x86_64-linux-gnu:$D/root/lib/x86_64-linux-gnu
exec $D/root/usr/sbin/sshd -D -e -f $D/srv/cfg
Y
	ip netns add "$NS" && ip netns exec "$NS" ip link set lo up || { fail "netns $NS"; return; }
	# sshd_ready: the test's sshd answers with its banner; one that stopped
	# answering (its connections reset at once: seen on loaded CI hosts, with
	# nothing of hutch's involved) is started again, its log kept
	sshd_banner() { ip netns exec "$NS" timeout 20 bash -c 'exec 3<>/dev/tcp/127.0.0.1/2222 && head -c 7 <&3' 2>/dev/null | grep -q '^SSH-2.0'; }
	sshd_ready() {
		if [ -n "$SSHD_PID" ] && sshd_banner; then return 0; fi
		if [ -n "$SSHD_PID" ]; then
			diag "the test's sshd stopped answering; starting it again. Its log:"
			tail -5 "$D/srv/log" | sed 's/^/#   /'
			kill "$SSHD_PID" 2>/dev/null; wait "$SSHD_PID" 2>/dev/null
			cat "$D/srv/log" >>"$D/srv/log.old"
		fi
		ip netns exec "$NS" unshare -m --propagation private bash "$D/srv/run.sh" >"$D/srv/log" 2>&1 &
		SSHD_PID=$!
		wait_until 120 grep -q 'Server listening' "$D/srv/log" && wait_until 60 sshd_banner
	}
	sshd_ready
	local X=(ip netns exec "$NS" "$HUTCH" -C "$P")
	out=$("${X[@]}" ssh -- 'echo hi from $(id -un)' </dev/null 2>&1)
	is "sshd: hutch ssh logs in with the managed key and the pinned host key" "$out" "hi from tester"
	"${X[@]}" ssh -- exit 7 </dev/null >/dev/null 2>&1; rc=$?
	is "sshd: exit status passed through" "$rc" "7"
	"${X[@]}" ssh-config >"$D/sc" 2>&1
	out=$(ip netns exec "$NS" ssh -F "$D/sc" -o BatchMode=yes hutch-pin echo via-config </dev/null 2>&1)
	is "sshd: ssh -F with hutch ssh-config" "$out" "via-config"
	"${X[@]}" provision </dev/null >"$D/prov.log" 2>&1; rc=$?
	if [ "$rc" = 77 ] && [ ! -f "$D/home/provisioned" ]; then
		ok "sshd: provision without 'hutch allow' is refused (exit 77)"
	else
		fail "sshd: provision without consent (exit $rc)"; tail -5 "$D/prov.log" | sed 's/^/#   /'
	fi
	"${X[@]}" allow >/dev/null 2>&1
	sshd_ready
	if "${X[@]}" provision >"$D/prov.log" 2>&1 && [ -f "$D/home/provisioned" ]; then
		ok "sshd: provision runs the playbook over the pinned SSH"
	else
		fail "sshd: provision"; tail -15 "$D/prov.log" | sed 's/^/#   /'
		diag "sshd's log:"; tail -8 "$D/srv/log" | sed 's/^/#   /'
	fi
	ssh-keygen -q -t ed25519 -N '' -f "$D/other"
	echo "hutch-pin $(cut -d' ' -f1,2 "$D/other.pub")" >"$vmd/ssh/known_hosts"
	sshd_ready
	out=$("${X[@]}" ssh -- echo should-not-run </dev/null 2>&1); rc=$?
	if [ "$rc" -eq 255 ] && [[ $out == *"Host key verification failed"* ]]; then
		ok "sshd: a server whose key is not the pinned one is refused"
	else
		fail "sshd: a server whose key is not the pinned one is refused"; diag "rc=$rc out=$out"
		diag "sshd's log:"; tail -8 "$D/srv/log" | sed 's/^/#   /'
	fi
	kill "$SSHD_PID" "$SV_PID" 2>/dev/null; wait "$SSHD_PID" "$SV_PID" 2>/dev/null
	SV_PID= SSHD_PID=
	ip netns del "$NS" 2>/dev/null
	rm -rf "$vmd" "$P"
}
check "hutch pubkey creates the managed key" "$HUTCH" pubkey
is "managed key has the comment hutch" "$(awk '{print $3}' "$HOME/.ssh/hutch.pub" 2>/dev/null)" "hutch"
# a key with the comment "hutch" that is not ~/.ssh/hutch.pub fails up early
mkdir -p "$T/proj-badkey"
: >"$T/proj-badkey/k"
printf 'name: badkey\nkernel: {path: ./k}\nnetwork: {mode: user}\n' >"$T/proj-badkey/hutch.yaml"
ssh-keygen -q -t ed25519 -N '' -C hutch -f "$T/notmanaged"
printf '#cloud-config\nusers:\n  - name: dev\n    ssh_authorized_keys:\n      - %s\n' "$(cat "$T/notmanaged.pub")" >"$T/proj-badkey/cloud-init.yml"
out=$("$HUTCH" -C "$T/proj-badkey" up 2>&1); rc=$?
if [ "$rc" -ne 0 ] && [[ $out == *"comment 'hutch' that is not"* ]]; then
	ok "up refuses a 'hutch' key in cloud-init.yml that is not ~/.ssh/hutch.pub"
else
	fail "up refuses a 'hutch' key in cloud-init.yml that is not ~/.ssh/hutch.pub"; diag "rc=$rc $out"
fi
rm -rf "$T/proj-badkey"

# (once: with mode nat, which needs root and namespaces as local_sshd does)
case " $MODES " in *" nat "*) local_sshd ;; esac

IMAGE=${E2E_IMAGE:-}
if [ -z "$IMAGE" ]; then
	if [ -f build/guests/debian-12/image.qcow2 ]; then
		IMAGE=$PWD/build/guests/debian-12/image.qcow2
	elif make -n debian-image >/dev/null 2>&1; then
		diag "building the debian-12 guest (make debian-image, several minutes)"
		if timeout 3000 make debian-image >build/e2e-image.log 2>&1 && [ -f build/guests/debian-12/image.qcow2 ]; then
			IMAGE=$PWD/build/guests/debian-12/image.qcow2
		else
			fail "make debian-image"; tail -20 build/e2e-image.log | sed 's/^/#   /'
			done_testing; exit 1
		fi
	else
		skip "end to end" "no debian-12 guest recipe (make debian-image) in this build"
		done_testing; exit 0
	fi
fi
ok "debian-12 image: $IMAGE"
# the image lives outside the test projects: allowed by the user's own config
mkdir -p "$XDG_CONFIG_HOME/hutch"
printf 'allow_paths:\n  - %s\n' "$(dirname "$IMAGE")" >"$XDG_CONFIG_HOME/hutch/config.yaml"

state() { # state NAME KEY[.SUB]: a value of state.json
	python3 - "$XDG_DATA_HOME/hutch/vms/$1/state.json" "$2" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2].split('.'):
    v = v.get(k) if isinstance(v, dict) else None
print('' if v is None else v)
PY
}

starts() { grep -c '^==> hutch provision: start' "$1" 2>/dev/null || echo 0; }

# image_checks MODE NAME VMDIR: what hutch relies on in the debian-12 image
# (images/recipes/debian-12.sh; tests/e2e/t-debian-recipe.sh builds it), as
# hutch booted it: cloud-init read the NoCloud seed from a read-only virtio
# disk labelled cidata, the network came up through cloud-init, and so on.
# All in one ssh (a command costs seconds under TCG on a loaded host).
IMAGE_CHECKS=(
	'hostname from meta-data (the VM name)|test "$(hostname)" = "$1"'
	'datasource is NoCloud|grep -qi nocloud /run/cloud-init/status.json'
	'cloud-init says done|cloud-init status | grep -q "status: done"'
	'seed on a read-only virtio disk labelled cidata|d=$(sudo -n /sbin/blkid -L cidata) && case $d in /dev/vd*) test "$(cat /sys/class/block/${d#/dev/}/ro)" = 1 ;; *) false ;; esac'
	'passwordless sudo from user-data|sudo -n true'
	'root filesystem is the ext4 virtio disk|findmnt -n -o SOURCE,FSTYPE / | grep -q "^/dev/vda1 ext4"'
	'network configured by cloud-init (networkd, default route)|ls /etc/systemd/network/ | grep -q cloud-init && ip route | grep -q "^default via"'
	'DNS configured (resolved)|grep -q "^nameserver" /etc/resolv.conf && resolvectl dns | grep -q "[0-9]"'
	'dbus and logind running (power button works)|systemctl is-active dbus systemd-logind'
	'kernel cmdline has console=ttyS0|grep -q "console=ttyS0" /proc/cmdline'
)
image_checks() {
	local mode=$1 name=$2 vmd=$3 c script='' i=0 out
	for c in "${IMAGE_CHECKS[@]}"; do
		i=$((i + 1))
		script+="if ( ${c#*|} ) >/dev/null 2>&1; then echo 'check $i ok'; else echo 'check $i failed'; fi"$'\n'
	done
	script+='systemd-analyze 2>&1 | head -n 1; systemd-analyze blame 2>&1 | head -n 5'
	out=$("${H[@]}" ssh -- bash -c "$(printf '%q' "$script")" x "$name" </dev/null 2>&1)
	i=0
	for c in "${IMAGE_CHECKS[@]}"; do
		i=$((i + 1))
		is "$mode: image: ${c%%|*}" "$(grep -x "check $i [a-z]*" <<<"$out" | cut -d' ' -f3)" ok
	done
	grep -v '^check [0-9]' <<<"$out" | sed 's/^/# /'
	check "$mode: image: boot messages on the serial console" grep -q 'cloud-init' "$vmd/console.log"
}

run_mode() {
	local mode=$1 name=e2e-$1 P=$T/proj-$1 vmd t0 t1 out rc
	vmd=$XDG_DATA_HOME/hutch/vms/$name
	mkdir -p "$P/hooks"
	: >"$P/hooks.log"
	chmod 666 "$P/hooks.log"	# the hooks write it as the unprivileged user
	cat >"$P/hutch.yaml" <<Y
name: $name
image: $IMAGE
cpus: 2
accel: ${E2E_ACCEL:-tcg}
memory: 1024
network:
  mode: $mode
timeouts: {boot: 1200, ssh: 1200, cloud_init: 1500, shutdown: 240}
Y
	cat >"$P/cloud-init.yml" <<'Y'
#cloud-config
users:
  - name: tester
    shell: /bin/bash
    sudo: ALL=(ALL) NOPASSWD:ALL
    ssh_authorized_keys:
      - __HUTCH_PUBKEY__
package_update: false
Y
	cat >"$P/playbook.yml" <<'Y'
- hosts: all
  become: true
  gather_facts: false
  tasks:
    - name: leave a mark
      ansible.builtin.copy:
        dest: /etc/hutch-provisioned
        content: "provisioned by ansible through hutch\n"
Y
	for h in pre-up post-up pre-down post-down; do
		printf '#!/bin/sh\necho "$HUTCH_HOOK $HUTCH_TRIGGER $HUTCH_VM_NAME" >> "%s/hooks.log"\n' "$P" >"$P/hooks/$h"
		chmod +x "$P/hooks/$h"
	done
	H=("${NSX[@]}" "$HUTCH" -C "$P")

	# a cloned project's hooks and playbook run only once the user allowed them
	"${H[@]}" up </dev/null >"$T/up0-$mode.log" 2>&1; rc=$?
	if [ "$rc" = 77 ] && [ ! -s "$P/hooks.log" ] && [ ! -d "$vmd" ]; then	# hooks.log: made empty above
		ok "$mode: up without 'hutch allow' refuses (exit 77), nothing ran or was made"
	else
		fail "$mode: up without consent (exit $rc)"; tail -10 "$T/up0-$mode.log" | sed 's/^/#   /'
	fi
	check "$mode: hutch allow" "${H[@]}" allow

	t0=$(date +%s)
	if "${H[@]}" up >"$T/up-$mode.log" 2>&1; then
		ok "$mode: up ($(( $(date +%s) - t0 ))s)"
	else
		fail "$mode: up"; grep -v '^  ' "$T/up-$mode.log" | tail -15 | sed 's/^/#   /'
		tail -15 "$T/up-$mode.log" | sed 's/^/#   /'
		"${H[@]}" destroy >/dev/null 2>&1
		return
	fi
	is "$mode: status running" "$(state "$name" status)" "running"
	check "$mode: provisioned on first create" test -f "$vmd/provisioned"
	is "$mode: playbook ran once" "$(starts "$vmd/provision.log")" "1"
	is "$mode: ssh user is the first cloud-init user" "$(cat "$vmd/ssh/user")" "tester"
	grep -q '^pre-up up e2e' "$P/hooks.log" && grep -q '^post-up up e2e' "$P/hooks.log" \
		&& ok "$mode: pre-up and post-up hooks ran with HUTCH_* env" || fail "$mode: hooks on up"

	out=$("${H[@]}" ssh -- cat /etc/hutch-provisioned 2>&1 </dev/null)
	is "$mode: ssh -- cat /etc/hutch-provisioned" "$out" "provisioned by ansible through hutch"
	"${H[@]}" ssh -- false </dev/null >/dev/null 2>&1; rc=$?
	is "$mode: ssh -- false exits 1" "$rc" "1"
	"${H[@]}" ssh -- exit 7 </dev/null >/dev/null 2>&1; rc=$?
	is "$mode: exit status passed through" "$rc" "7"
	out=$("${H[@]}" ssh -- whoami </dev/null 2>&1)
	is "$mode: logged in as tester" "$out" "tester"
	image_checks "$mode" "$name" "$vmd"

	# the guest serves exactly the host key hutch generated and pinned
	local th tp
	if [ -n "$(state "$name" ssh.host)" ]; then
		th=$(state "$name" ssh.host) tp=$(state "$name" ssh.port)
	else
		th=$(state "$name" net.ip) tp=22
	fi
	out=$("${NSX[@]}" ssh-keyscan -t ed25519 -p "$tp" "$th" 2>/dev/null | awk '{print $3}')
	is "$mode: the key sshd presents is the pinned one" "$out" "$(awk '{print $2}' "$vmd/ssh/host_ed25519.pub")"
	out=$("${H[@]}" ssh -- 'ls /etc/ssh/ | grep -c "^ssh_host_.*_key$"' </dev/null 2>/dev/null)
	is "$mode: no other host keys in the guest" "$out" "1"

	if "${H[@]}" ssh-config >"$T/sshcfg-$mode" 2>"$T/sshcfg-$mode.err"; then
		ok "$mode: ssh-config"
		out=$("${NSX[@]}" ssh -F "$T/sshcfg-$mode" -o BatchMode=yes "hutch-$name" echo via-config </dev/null 2>&1)
		is "$mode: ssh -F with the ssh-config block" "$out" "via-config"
		ssh-keygen -q -t ed25519 -N '' -f "$T/other-$mode" >/dev/null
		echo "hutch-$name $(cut -d' ' -f1,2 "$T/other-$mode.pub")" >"$T/bad_known_hosts-$mode"
		sed "s|UserKnownHostsFile .*|UserKnownHostsFile \"$T/bad_known_hosts-$mode\"|" "$T/sshcfg-$mode" >"$T/sshcfg-bad-$mode"
		out=$("${NSX[@]}" ssh -F "$T/sshcfg-bad-$mode" -o BatchMode=yes "hutch-$name" echo via-config </dev/null 2>&1)
		case $out in
		*via-config*) fail "$mode: a different pinned key is refused" ;;
		*) ok "$mode: a different pinned key is refused" ;;
		esac
	else
		fail "$mode: ssh-config"; sed 's/^/#   /' "$T/sshcfg-$mode.err"
	fi

	t0=$(date +%s)
	if "${H[@]}" halt >"$T/halt-$mode.log" 2>&1; then
		t1=$(date +%s)
		ok "$mode: halt ($((t1 - t0))s, within timeouts.shutdown)"
	else
		fail "$mode: halt"; tail -20 "$T/halt-$mode.log" | sed 's/^/#   /'
	fi
	is "$mode: status stopped" "$(state "$name" status)" "stopped"
	is "$mode: stopped by the guest (ACPI)" "$(state "$name" exit_reason)" "guest-shutdown"
	grep -q '^pre-down halt' "$P/hooks.log" && grep -q '^post-down halt' "$P/hooks.log" \
		&& ok "$mode: down hooks ran with HUTCH_TRIGGER=halt" || fail "$mode: down hooks on halt"

	# The second boot (no re-provisioning, the disk kept, provision again)
	# in mode user, where each start forwards a new SSH port that `ssh`
	# must follow; nat's halt and up again are tests/vm/t-nat.sh's, with the
	# tiny guest (a Debian boot under TCG costs ~100 s of CPU), and nat's
	# destroy here is of a stopped VM.
	if [ "$mode" = user ]; then
		if "${H[@]}" up >"$T/up2-$mode.log" 2>&1; then
			ok "$mode: up again"
		else
			fail "$mode: up again"; tail -30 "$T/up2-$mode.log" | sed 's/^/#   /'
		fi
		is "$mode: no re-provisioning on a second up" "$(starts "$vmd/provision.log")" "1"
		out=$("${H[@]}" ssh -- cat /etc/hutch-provisioned 2>&1 </dev/null)
		is "$mode: disk kept across halt/up" "$out" "provisioned by ansible through hutch"

		if "${H[@]}" provision >"$T/prov-$mode.log" 2>&1; then
			ok "$mode: provision"
		else
			fail "$mode: provision"; tail -30 "$T/prov-$mode.log" | sed 's/^/#   /'
		fi
		is "$mode: provision ran the playbook again" "$(starts "$vmd/provision.log")" "2"
	fi

	check "$mode: destroy" "${H[@]}" destroy
	grep -q '^pre-down destroy' "$P/hooks.log" && ok "$mode: pre-down hook with HUTCH_TRIGGER=destroy" \
		|| fail "$mode: pre-down on destroy"
	check_fails "$mode: disk gone after destroy" test -e "$vmd/disk.qcow2"
}

for mode in $MODES; do
	NSX=()
	if [ "$mode" = nat ]; then
		if [ "$(id -u)" -ne 0 ]; then
			skip "nat" "needs root for a network namespace"; continue
		fi
		if ! nm "$HUTCH" 2>/dev/null | grep -q ' net_sv_ext$'; then
			skip "nat" "the net module is not in this build yet"; continue
		fi
		ip netns add "$NS" && ip netns exec "$NS" ip link set lo up || { fail "netns $NS"; continue; }
		NSX=(ip netns exec "$NS")
	fi
	run_mode "$mode"
	[ "$mode" = nat ] && ip netns del "$NS" 2>/dev/null
done
done_testing
