#!/usr/bin/env bash
# tiny.sh OUTDIR: builds the "tiny" test guest from Debian packages alone:
#   OUTDIR/vmlinuz     Debian's cloud kernel (linux-image-cloud-amd64)
#   OUTDIR/initrd.img  gzip'd cpio (newc): busybox-static, the kernel modules a
#                      QEMU guest needs (virtio pci/net/blk/console/rng,
#                      virtiofs+fuse, ACPI button, evdev) and /init (tiny-init).
# The kernel .deb is fetched with `apt-get download` into the cache dir
# (HUTCH_GUEST_CACHE, default OUTDIR/../cache) and only extracted, never
# installed on the host.  Nothing is done when OUTDIR is up to date with this
# recipe, tiny-init, the kernel package version and busybox-static's version.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:?usage: tiny.sh OUTDIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
CACHE=${HUTCH_GUEST_CACHE:-$(dirname "$OUT")/cache}
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
# Tests may build concurrently: one builder at a time per output dir.
exec 9>"$OUT/.lock"
flock 9

# Modules to load at boot (dependencies are added automatically, in order).
MODULES=(virtio_pci virtio_net virtio_blk virtio_console virtio_rng virtiofs button evdev)

kpkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}')
[ -n "$kpkg" ] || { echo "tiny.sh: cannot resolve linux-image-cloud-amd64 (apt-get update?)" >&2; exit 1; }
kver_pkg=$(apt-cache policy "$kpkg" | awk '/Candidate:/{print $2}')
# busybox-static ships /bin/busybox; the dynamic "busybox" package would not
# run inside an initramfs without its libc.
bb=/bin/busybox
bbver=$(dpkg-query -W -f='${Status} ${Version}' busybox-static 2>/dev/null || true)
case $bbver in
"install ok installed "*) bbver=${bbver##* } ;;
*) echo "tiny.sh: busybox-static is not installed" >&2; exit 1 ;;
esac

stamp=$(cat "$0" "$HERE/tiny-init" "$HERE/tiny-udhcpc" | sha256sum | cut -c1-16)-$kpkg-$kver_pkg-$bbver
if [ -f "$OUT/.stamp" ] && [ "$(cat "$OUT/.stamp")" = "$stamp" ] &&
	[ -s "$OUT/vmlinuz" ] && [ -s "$OUT/initrd.img" ]; then
	exit 0
fi

deb=$(ls "$CACHE/${kpkg}_"*.deb 2>/dev/null | grep -F "_${kver_pkg//:/%3a}_" | head -1 || true)
if [ -z "$deb" ]; then
	echo "tiny.sh: downloading $kpkg $kver_pkg" >&2
	(cd "$CACHE" && apt-get download -q "$kpkg=$kver_pkg" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2) || true
	deb=$(ls "$CACHE/${kpkg}_"*.deb 2>/dev/null | grep -F "_${kver_pkg//:/%3a}_" | head -1 || true)
	[ -n "$deb" ] || { echo "tiny.sh: apt-get download $kpkg failed" >&2; exit 1; }
fi

WORK=$(mktemp -d "$OUT/.work.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
dpkg-deb -x "$deb" "$WORK/k"
KVER=$(ls "$WORK/k/lib/modules" | head -1)
depmod -b "$WORK/k" "$KVER"

R=$WORK/root
mkdir -p "$R"/{bin,sbin,etc,etc/udhcpc,proc,sys,dev,run,tmp,root,mnt,usr/bin,usr/sbin,var/run}
mkdir -p "$R/lib/modules/$KVER"
cp "$bb" "$R/bin/busybox"
for a in $("$bb" --list-full); do
	[ "$a" = bin/busybox ] && continue
	[ -e "$R/$a" ] || ln -s /bin/busybox "$R/$a"
done
ln -sf /bin/busybox "$R/bin/sh"

# Resolve dependencies with the host's kmod against the extracted tree, keep
# the load order, copy each module once (decompressing if needed).
: >"$R/etc/modules.load"
for m in "${MODULES[@]}"; do
	modprobe -d "$WORK/k" -S "$KVER" --show-depends "$m" | while read -r kind path _; do
		[ "$kind" = insmod ] || continue
		rel=${path#"$WORK/k/lib/modules/$KVER/"}
		dst=$R/lib/modules/$KVER/${rel%.xz}
		dst=${dst%.zst}
		if [ ! -e "$dst" ]; then
			mkdir -p "$(dirname "$dst")"
			case $path in
			*.xz) xz -dc "$path" >"$dst" ;;
			*.zst) zstd -qdc "$path" >"$dst" ;;
			*) cp "$path" "$dst" ;;
			esac
			echo "/lib/modules/$KVER/${dst#"$R/lib/modules/$KVER/"}" >>"$R/etc/modules.load"
		fi
	done
done

install -m 0755 "$HERE/tiny-init" "$R/init"
install -m 0755 "$HERE/tiny-udhcpc" "$R/etc/udhcpc/default.script"
echo "root:x:0:0:root:/root:/bin/sh" >"$R/etc/passwd"
echo "root:x:0:" >"$R/etc/group"
echo tiny >"$R/etc/hostname"
: >"$R/etc/resolv.conf"

(cd "$R" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --owner=0:0 --quiet) | gzip -6 -n >"$WORK/initrd.img"
cp "$WORK/k/boot/vmlinuz-$KVER" "$WORK/vmlinuz"
mv -f "$WORK/vmlinuz" "$OUT/vmlinuz"
mv -f "$WORK/initrd.img" "$OUT/initrd.img"
echo "$stamp" >"$OUT/.stamp"
echo "tiny.sh: built $OUT (kernel $KVER, $(wc -l <"$R/etc/modules.load") modules)" >&2
