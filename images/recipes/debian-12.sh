#!/usr/bin/env bash
# debian-12.sh OUTDIR: builds OUTDIR/image.qcow2, a Debian 12 (bookworm) image
# that boots like a downloaded cloud image (MBR, one ext4 partition, GRUB in
# the boot sector, kernel cmdline console=ttyS0), from Debian packages alone.
#   - rootfs: debootstrap --variant=minbase with systemd, dbus (logind needs
#     it, or the ACPI power button is ignored), udev, cloud-init (NoCloud,
#     networkd renderer), openssh-server, sudo, python3 (Ansible), the cloud
#     kernel, systemd-networkd + systemd-resolved.
#   - disk: the filesystem is built in a file with mkfs.ext4 -d and assembled
#     with sfdisk and dd; GRUB's boot.img and a core.img made by the target's
#     own grub-mkimage go into sectors 0 and 1..2047 (what grub-bios-setup
#     would do for an MBR disk), so no loop device, mount or host GRUB is used.
# Debian's cloud kernel has no AHCI driver: hutch attaches the NoCloud seed
# as a read-only virtio disk labelled "cidata", which cloud-init finds with
# blkid.
# Needs root (debootstrap).  Caches (HUTCH_GUEST_CACHE, default
# OUTDIR/../cache): downloaded .debs in debs/, the debootstrapped tree in
# debian-12-rootfs.<key>/.  Does nothing when OUTDIR/image.qcow2 is up to
# date with this recipe.  Environment: DEBIAN_MIRROR (default
# http://deb.debian.org/debian), HUTCH_IMAGE_SIZE (default 3G).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:?usage: debian-12.sh OUTDIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
CACHE=${HUTCH_GUEST_CACHE:-$(dirname "$OUT")/cache}
mkdir -p "$CACHE/debs"
CACHE=$(cd "$CACHE" && pwd)
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SIZE=${HUTCH_IMAGE_SIZE:-3G}
SUITE=bookworm

[ "$(id -u)" -eq 0 ] || { echo "debian-12.sh: needs root (debootstrap)" >&2; exit 1; }
for t in debootstrap mkfs.ext4 sfdisk qemu-img; do
	command -v "$t" >/dev/null || { echo "debian-12.sh: $t not found" >&2; exit 1; }
done

exec 9>"$OUT/.lock"
flock 9

# debootstrap does not resolve virtual packages: python3-cffi-backend
# provides the python3-cffi-backend-api-* that python3-cryptography (cloud-init)
# needs.
PKGS=(
	systemd-sysv dbus udev kmod
	cloud-init cloud-guest-utils fdisk
	python3-cffi-backend
	openssh-server sudo python3
	linux-image-cloud-amd64 initramfs-tools
	grub-pc-bin grub2-common
	e2fsprogs ca-certificates iproute2 iputils-ping netbase procps
	systemd-resolved
)
pkgs=$(IFS=,; echo "${PKGS[*]}")
rootkey=$(echo "$SUITE $MIRROR $pkgs" | sha256sum | cut -c1-12)
stamp=$(sha256sum <"$0" | cut -c1-16)-$rootkey-$SIZE
if [ -f "$OUT/.stamp" ] && [ "$(cat "$OUT/.stamp")" = "$stamp" ] && [ -s "$OUT/image.qcow2" ]; then
	exit 0
fi

# debootstrap mounts /proc (and more) inside the tree; when a package's
# configuration fails and is retried it can leave them mounted, and a copy
# of the tree would then copy /proc/kcore until the disk is full.
unmount_under() {
	local m
	awk -v r="$1/" 'index($2 "/", r) == 1 { print $2 }' /proc/self/mounts | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null; done
}

ROOTFS=$CACHE/debian-12-rootfs.$rootkey
unmount_under "$ROOTFS"
if [ ! -f "$ROOTFS.done" ]; then
	rm -rf "$ROOTFS"
	echo "debian-12.sh: debootstrap $SUITE into $ROOTFS (several minutes)" >&2
	if ! debootstrap --variant=minbase --include="$pkgs" --cache-dir="$CACHE/debs" \
		"$SUITE" "$ROOTFS" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1; then
		tail -30 "$CACHE/debootstrap.log" >&2
		[ -f "$ROOTFS/debootstrap/debootstrap.log" ] && tail -30 "$ROOTFS/debootstrap/debootstrap.log" >&2
		echo "debian-12.sh: debootstrap failed" >&2
		exit 1
	fi
	rm -f "$ROOTFS"/var/cache/apt/archives/*.deb
	unmount_under "$ROOTFS"
	touch "$ROOTFS.done"
	# Older trees for other package lists are dead weight.
	for old in "$CACHE"/debian-12-rootfs.*; do
		case $old in "$ROOTFS" | "$ROOTFS.done") ;; *) rm -rf "$old" ;; esac
	done
fi

WORK=$(mktemp -d "$OUT/.work.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
R=$WORK/root
echo "debian-12.sh: configuring the image" >&2
cp -a --one-file-system "$ROOTFS" "$R"

uuid=$(cat /proc/sys/kernel/random/uuid)
kernel=$(cd "$R/boot" && ls vmlinuz-* | sort -V | tail -1)
initrd=initrd.img-${kernel#vmlinuz-}
[ -f "$R/boot/$initrd" ] || { echo "debian-12.sh: no $initrd in the rootfs" >&2; exit 1; }

cat >"$R/etc/fstab" <<FSTAB
UUID=$uuid / ext4 rw,discard,errors=remount-ro 0 1
FSTAB
echo localhost >"$R/etc/hostname"
echo LANG=C.UTF-8 >"$R/etc/default/locale"
cat >"$R/etc/hosts" <<'HOSTS'
127.0.0.1 localhost
::1 localhost ip6-localhost ip6-loopback
HOSTS
mkdir -p "$R/etc/cloud/cloud.cfg.d"
cat >"$R/etc/cloud/cloud.cfg.d/90-hutch.cfg" <<'CC'
# hutch: NoCloud seed only (a read-only virtio disk labelled cidata).
datasource_list: [NoCloud, None]
# Only C.UTF-8 exists without the locales package (en_US.UTF-8, cloud-init's
# Debian default, makes its locale module fail and the status "error").
locale: C.UTF-8
system_info:
  network:
    renderers: [networkd]
    activators: [networkd]
CC
# Networking: cloud-init writes systemd-networkd units; resolved serves DNS.
chroot "$R" systemctl enable systemd-networkd.service systemd-resolved.service >/dev/null 2>&1
ln -sf /run/systemd/resolve/stub-resolv.conf "$R/etc/resolv.conf"
# Boot time under TCG and test determinism: no e2scrub at boot, no apt timers
# (they take the dpkg lock while Ansible or a test wants it), no fstrim.
chroot "$R" systemctl mask e2scrub_reap.service >/dev/null 2>&1
chroot "$R" systemctl disable e2scrub_all.timer apt-daily.timer apt-daily-upgrade.timer \
	fstrim.timer >/dev/null 2>&1 || true
# Per-instance identity: systemd makes a machine-id on first boot and
# cloud-init generates SSH host keys (or installs the ones it is given).
: >"$R/etc/machine-id"
rm -f "$R/var/lib/dbus/machine-id" "$R"/etc/ssh/ssh_host_*
rm -rf "$R/var/lib/cloud" "$R"/var/log/*.log "$R/debootstrap"
cat >"$R/etc/apt/sources.list" <<APT
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb http://security.debian.org/debian-security $SUITE-security main
APT

# GRUB: modules on the filesystem, a core.img that finds (hd0,msdos1).
mkdir -p "$R/boot/grub/i386-pc"
cp "$R"/usr/lib/grub/i386-pc/*.mod "$R"/usr/lib/grub/i386-pc/*.lst "$R/boot/grub/i386-pc/"
cat >"$R/boot/grub/grub.cfg" <<GRUB
set timeout=0
set default=0
menuentry "Debian GNU/Linux 12" {
	search --no-floppy --fs-uuid --set=root $uuid
	linux /boot/$kernel root=UUID=$uuid ro console=tty0 console=ttyS0,115200n8
	initrd /boot/$initrd
}
GRUB
chroot "$R" grub-mkimage -O i386-pc -o /tmp/core.img -p '(hd0,msdos1)/boot/grub' \
	biosdisk part_msdos ext2 search_fs_uuid normal linux configfile echo test gzio
mv "$R/tmp/core.img" "$WORK/core.img"
cp "$R/usr/lib/grub/i386-pc/boot.img" "$WORK/boot.img"
core_sectors=$((($(stat -c %s "$WORK/core.img") + 511) / 512))
[ "$core_sectors" -lt 2047 ] || { echo "debian-12.sh: core.img too big ($core_sectors sectors)" >&2; exit 1; }

echo "debian-12.sh: making the filesystem" >&2
bytes=$(numfmt --from=iec "$SIZE")
part_bytes=$((bytes - 1048576))
truncate -s "$part_bytes" "$WORK/part.img"
mkfs.ext4 -q -F -L root -U "$uuid" -O ^metadata_csum_seed,^orphan_file \
	-E root_owner=0:0 -d "$R" "$WORK/part.img"
rm -rf "$R"

truncate -s "$bytes" "$WORK/disk.raw"
echo 'label: dos
start=2048, type=83, bootable' | sfdisk -q "$WORK/disk.raw"
dd if="$WORK/part.img" of="$WORK/disk.raw" bs=1M seek=1 conv=sparse,notrunc status=none
rm -f "$WORK/part.img"
# boot.img's code goes before the partition table (bytes 0..439); its
# default "kernel sector" is 1 and grub-mkimage already filled in diskboot's
# length, so core.img just goes right after the MBR.
dd if="$WORK/boot.img" of="$WORK/disk.raw" bs=440 count=1 conv=notrunc status=none
printf '\x55\xaa' | dd of="$WORK/disk.raw" bs=1 seek=510 conv=notrunc status=none
dd if="$WORK/core.img" of="$WORK/disk.raw" bs=512 seek=1 conv=notrunc status=none

echo "debian-12.sh: converting to qcow2" >&2
qemu-img convert -c -O qcow2 "$WORK/disk.raw" "$WORK/image.qcow2"
mv -f "$WORK/image.qcow2" "$OUT/image.qcow2"
echo "$stamp" >"$OUT/.stamp"
echo "debian-12.sh: built $OUT/image.qcow2 ($(du -h "$OUT/image.qcow2" | cut -f1), kernel ${kernel#vmlinuz-})" >&2
