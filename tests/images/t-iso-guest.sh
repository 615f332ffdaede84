#!/usr/bin/env bash
# The seed ISO read by the guest's own kernel: the tiny guest (Debian's cloud
# kernel) gets the image as a read-only virtio disk (as hutch attaches it:
# the cloud kernel has no AHCI), loads isofs from the same kernel package,
# mounts it, and must see the Joliet names and bytes exactly (the label is
# checked by t-iso.sh with blkid).  This covers hosts whose kernel has no
# iso9660 (t-iso.sh then skips its loop mount).
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$HUTCH_SRC/tests/lib/guest.sh"
command -v qemu-system-x86_64 >/dev/null || { skip "isofs in a guest" "no qemu-system-x86_64"; done_testing; exit; }

T=$(mktemp -d /tmp/images-isoguest.XXXXXX)
QPID=
cleanup() {
	if [ -n "$QPID" ]; then
		guestsh --timeout 60 --qmp "$T/qmp.sock" quit >/dev/null 2>&1
		wait_until 60 gone "$QPID"
		kill "$QPID" 2>/dev/null
		wait "$QPID" 2>/dev/null
	fi
	rm -rf "$T"
}
trap cleanup EXIT

if ! guest_tiny_build; then fail "tiny guest builds"; done_testing; exit 1; fi
deb=$(ls "$HUTCH_SRC"/build/guests/cache/linux-image-*-cloud-amd64_*.deb 2>/dev/null | head -1)
[ -n "$deb" ] || { fail "the tiny guest's kernel package is in build/guests/cache"; done_testing; exit 1; }

# isofs (and cdrom, which it needs) from that kernel, as a second initramfs archive
mkdir -p "$T/k" "$T/extra/lib/isofs"
dpkg-deb -x "$deb" "$T/k"
for m in cdrom isofs; do
	f=$(find "$T/k/lib/modules" -name "$m.ko*" | head -1)
	case $f in
	*.xz) xz -dc "$f" >"$T/extra/lib/isofs/$m.ko" ;;
	*.zst) zstd -qdc "$f" >"$T/extra/lib/isofs/$m.ko" ;;
	*) cp "$f" "$T/extra/lib/isofs/$m.ko" ;;
	esac
done
(cd "$T/extra" && find . | cpio -o -H newc --owner=0:0 --quiet | gzip -1) >"$T/extra.cpio.gz"
cat "$TINY_INITRD" "$T/extra.cpio.gz" >"$T/initrd.img"

# the seed: cloud-init's three files, one of them over several sectors
printf '#cloud-config\nusers:\n  - name: dev\n' >"$T/user-data"
printf 'instance-id: iid-hutch\nlocal-hostname: agent\n' >"$T/meta-data"
head -c 9000 /dev/urandom | base64 >"$T/network-config"
check "seed written" "$HUTCH_SRC/build/tests/iso_mk" "$T/seed.iso" cidata \
	user-data="$T/user-data" meta-data="$T/meta-data" network-config="$T/network-config"

qemu-system-x86_64 -accel tcg -M q35 -m 256 -display none -no-user-config -nodefaults \
	-kernel "$TINY_KERNEL" -initrd "$T/initrd.img" -append "console=ttyS0 quiet no_timer_check" \
	-chardev "socket,id=con,path=$T/console.sock,server=on,wait=off,logfile=$T/console.log" \
	-serial chardev:con -qmp "unix:$T/qmp.sock,server=on,wait=off" \
	-drive "file=$T/seed.iso,if=virtio,format=raw,readonly=on" \
	</dev/null >"$T/qemu.log" 2>&1 &
QPID=$!
if ! guestsh --timeout 600 --wait-ready "$T/console.sock"; then
	fail "tiny guest boots"; tail -20 "$T/console.log" | sed 's/^/#   /'; done_testing; exit 1
fi
ok "tiny guest boots with the seed as a virtio disk"
check "isofs loads in the guest" guestsh "$T/console.sock" \
	'insmod /lib/isofs/cdrom.ko && insmod /lib/isofs/isofs.ko && grep -qw iso9660 /proc/filesystems'
check "guest kernel mounts the seed (iso9660, ro)" guestsh "$T/console.sock" \
	'mkdir -p /mnt/seed && mount -t iso9660 -o ro /dev/vda /mnt/seed'
is "guest sees the exact Joliet names" "$(guestsh "$T/console.sock" 'ls -1 /mnt/seed' | tr -d '\r' | tr '\n' ' ')" \
	"meta-data network-config user-data "
for f in user-data meta-data network-config; do
	want=$(sha256sum <"$T/$f" | cut -c1-64)
	got=$(guestsh "$T/console.sock" "sha256sum /mnt/seed/$f" | tr -d '\r' | cut -c1-64)
	is "guest reads $f byte-exact" "$got" "$want"
done
done_testing
