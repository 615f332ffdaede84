#!/usr/bin/env bash
# debian-12 guest figures under TCG with plain QEMU, without hutch (-m 1024,
# virtio disk, NoCloud seed on a read-only virtio disk, user networking):
# image build (0 when cached), boot to SSH, boot to cloud-init done,
# powerdown to exit; the baseline that `hutch up` adds to.  Needs root, like
# `make debian-image`.
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$HUTCH_SRC/tests/lib/guest.sh"
cd "$HUTCH_SRC" || exit 1
for t in qemu-system-x86_64 qemu-img genisoimage ssh ssh-keygen python3; do
	command -v "$t" >/dev/null || { echo "bench-debian-boot: skipped, no $t"; exit 0; }
done
[ "$(id -u)" -eq 0 ] || { echo "bench-debian-boot: skipped, building the image needs root"; exit 0; }

T=$(mktemp -d /tmp/bench-deb.XXXXXX)
QPID=
cleanup() {
	[ -n "$QPID" ] && kill "$QPID" 2>/dev/null && wait "$QPID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
die() { echo "bench-debian-boot: $*"; tail -20 "$T/console.log" 2>/dev/null | sed 's/^/  console: /'; exit 1; }

s=$SECONDS
make --no-print-directory debian-image >"$T/build.log" 2>&1 || { tail -20 "$T/build.log"; die "make debian-image failed"; }
echo "debian-12: image build: $((SECONDS - s)) s"
IMG=$HUTCH_SRC/build/guests/debian-12/image.qcow2

qemu-img create -q -f qcow2 -b "$IMG" -F qcow2 "$T/disk.qcow2"
ssh-keygen -q -t ed25519 -N '' -C bench -f "$T/key"
mkdir "$T/seed"
printf 'instance-id: iid-bench\nlocal-hostname: hutchdeb\n' >"$T/seed/meta-data"
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
	-o BatchMode=yes -o ConnectTimeout=120 tester@127.0.0.1)
up=
for ((i = 0; i < 400; i++)); do	# a ceiling for a loaded host, not a figure
	kill -0 "$QPID" 2>/dev/null || break
	if "${SSH[@]}" true 2>/dev/null; then up=1; break; fi
	sleep 3
done
[ -n "$up" ] || die "no SSH"
echo "debian-12: boot to SSH: $(since "$t0") s"
"${SSH[@]}" 'timeout 1500 cloud-init status --wait' 2>&1 | grep -q 'status: done' || die "cloud-init did not finish"
echo "debian-12: boot to cloud-init done: $(since "$t0") s"
"${SSH[@]}" 'systemd-analyze' 2>&1 | head -n 1 | sed 's/^/debian-12: /'
t1=$(now)
guestsh --qmp "$T/qmp.sock" system_powerdown >/dev/null
wait_until 300 gone "$QPID" || die "system_powerdown: QEMU still runs after 300 s"
wait "$QPID"
QPID=
echo "debian-12: powerdown to exit: $(since "$t1") s"
