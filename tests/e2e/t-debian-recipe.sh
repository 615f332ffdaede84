#!/usr/bin/env bash
# The debian-12 test guest (images/recipes/debian-12.sh): builds (or reuses)
# the image, boots it with plain QEMU under TCG from a virtio disk with a
# NoCloud seed on a second, read-only virtio disk (the cloud kernel has no
# AHCI), and checks what hutch relies on: cloud-init reads the seed (hostname,
# user, SSH key), SSH answers, cloud-init finishes ("done"), the network came
# up through cloud-init, and QMP system_powerdown makes QEMU exit on its own.
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$HUTCH_SRC/tests/lib/guest.sh"

for t in qemu-system-x86_64 qemu-img genisoimage ssh ssh-keygen debootstrap; do
	command -v "$t" >/dev/null || { skip "debian-12 guest" "no $t"; done_testing; exit; }
done
[ "$(id -u)" -eq 0 ] || { skip "debian-12 guest" "building the image needs root"; done_testing; exit; }

T=$(mktemp -d /tmp/guests-deb.XXXXXX)
QPID=
cleanup() {
	[ -n "$QPID" ] && kill "$QPID" 2>/dev/null && wait "$QPID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

s=$SECONDS
if make -C "$HUTCH_SRC" --no-print-directory debian-image >"$T/build.log" 2>&1; then
	ok "make debian-image builds image.qcow2"
else
	fail "make debian-image builds image.qcow2"
	tail -30 "$T/build.log" | sed 's/^/#   /'
	done_testing
	exit 1
fi
diag "image build: $((SECONDS - s)) s"
IMG=$HUTCH_SRC/build/guests/debian-12/image.qcow2
is "image is qcow2" "$(qemu-img info --output=json "$IMG" | python3 -c 'import json,sys; print(json.load(sys.stdin)["format"])')" qcow2

s=$SECONDS
make -C "$HUTCH_SRC" --no-print-directory debian-image >"$T/rebuild.log" 2>&1
is "make debian-image again is a no-op" "$(cat "$T/rebuild.log")" ""

qemu-img create -q -f qcow2 -b "$IMG" -F qcow2 "$T/disk.qcow2"
ssh-keygen -q -t ed25519 -N '' -C test -f "$T/key"
mkdir "$T/seed"
cat >"$T/seed/meta-data" <<EOT
instance-id: iid-guests-test
local-hostname: hutchdeb
EOT
cat >"$T/seed/user-data" <<EOT
#cloud-config
users:
  - name: tester
    shell: /bin/bash
    sudo: ALL=(ALL) NOPASSWD:ALL
    ssh_authorized_keys:
      - $(cat "$T/key.pub")
EOT
genisoimage -quiet -output "$T/seed.iso" -volid cidata -joliet -rock "$T/seed/user-data" "$T/seed/meta-data"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

t0=$(now)
qemu-system-x86_64 -accel tcg -M q35 -m 1024 -display none -no-user-config -nodefaults \
	-drive "file=$T/disk.qcow2,if=virtio,format=qcow2" \
	-drive "file=$T/seed.iso,if=virtio,format=raw,readonly=on" \
	-netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$PORT-:22" -device virtio-net-pci,netdev=n0 \
	-serial "file:$T/console.log" -qmp "unix:$T/qmp.sock,server=on,wait=off" \
	</dev/null >"$T/qemu.log" 2>&1 &
QPID=$!

SSH=(ssh -q -i "$T/key" -p "$PORT" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
	-o BatchMode=yes -o ConnectTimeout=120 tester@127.0.0.1)	# (a ceiling: a loaded host is slow)
up=
for ((i = 0; i < 120; i++)); do   # generous: TCG on a shared 2-core box
	kill -0 "$QPID" 2>/dev/null || break
	if "${SSH[@]}" true 2>/dev/null; then up=1; break; fi
	sleep 3
done
if [ -n "$up" ]; then
	ok "SSH with the key from user-data"
	diag "boot to SSH: $(since $t0) s"
else
	fail "SSH with the key from user-data"
	tail -40 "$T/console.log" | sed 's/^/#   /'
	done_testing
	exit 1
fi

st=$("${SSH[@]}" 'timeout 1500 cloud-init status --wait' 2>&1)
if echo "$st" | grep -q 'status: done'; then ok "cloud-init status --wait says done"; else
	fail "cloud-init status --wait says done"
	"${SSH[@]}" 'cloud-init status --long; sudo grep -E "WARNING|ERROR|Traceback|Error" /var/log/cloud-init.log | tail -30' 2>&1 | sed 's/^/#   /'
fi
diag "boot to cloud-init done: $(since $t0) s"
"${SSH[@]}" 'systemd-analyze; systemd-analyze blame | head -5' 2>&1 | sed 's/^/# /'
is "hostname from meta-data" "$("${SSH[@]}" hostname)" hutchdeb
check "datasource is NoCloud" "${SSH[@]}" 'grep -qi nocloud /run/cloud-init/status.json'
check "seed found on a virtio disk labelled cidata" "${SSH[@]}" 'test "$(/sbin/blkid -s LABEL -o value /dev/vdb)" = cidata'
check "passwordless sudo from user-data" "${SSH[@]}" 'sudo -n true'
check "root filesystem is the ext4 virtio disk" "${SSH[@]}" 'findmnt -n -o SOURCE,FSTYPE / | grep -q "^/dev/vda1 ext4"'
check "network configured by cloud-init (default route)" "${SSH[@]}" 'ip route | grep -q "^default via 10.0.2.2"'
check "DNS configured (resolved)" "${SSH[@]}" 'grep -q "^nameserver" /etc/resolv.conf && resolvectl dns | grep -q 10.0.2.3'
check "python3 for Ansible" "${SSH[@]}" 'python3 -c "import json"'
check "dbus and logind running (power button works)" "${SSH[@]}" 'systemctl is-active dbus systemd-logind'
check "kernel cmdline has console=ttyS0" "${SSH[@]}" 'grep -q "console=ttyS0" /proc/cmdline'
check "host keys generated on this instance" "${SSH[@]}" 'ls /etc/ssh/ssh_host_ed25519_key.pub'
check "boot messages on the serial console" grep -q 'cloud-init' "$T/console.log"

t1=$(now)
guestsh --qmp "$T/qmp.sock" system_powerdown >/dev/null
qemu_gone() { ! kill -0 "$QPID" 2>/dev/null; }
if wait_until 300 qemu_gone; then	# a ceiling for a loaded host: it takes seconds
	ok "system_powerdown makes QEMU exit"
	diag "powerdown to exit: $(since $t1) s"
	wait "$QPID"
	is "QEMU exits with status 0" "$?" 0
	QPID=
else
	fail "system_powerdown makes QEMU exit (within 300 s)"
	tail -20 "$T/console.log" | sed 's/^/#   /'
fi
done_testing
