#!/usr/bin/env bash
# The NoCloud seed written by iso_write(), read back by other tools:
# isoinfo (Joliet names, byte-exact), xorriso, blkid (LABEL=cidata) and,
# where the kernel has it, the real isofs driver through a loop mount.
source "$(dirname "$0")/../lib/tap.sh"
MK=$HUTCH_SRC/build/tests/iso_mk
T=$(mktemp -d /tmp/images-iso.XXXXXX)
MNT=$T/mnt
cleanup() { mountpoint -q "$MNT" 2>/dev/null && umount "$MNT"; rm -rf "$T"; }
trap cleanup EXIT

printf '#cloud-config\nusers:\n  - name: dev\n' >"$T/user-data"
printf 'instance-id: iid-hutch\nlocal-hostname: agent\n' >"$T/meta-data"
: >"$T/empty"
head -c 10000 /dev/urandom >"$T/big"

check "iso_mk writes a seed with 3 files" "$MK" "$T/seed.iso" cidata \
	user-data="$T/user-data" meta-data="$T/meta-data" network-config="$T/big"
for f in user-data meta-data; do
	if isoinfo -J -x "/$f" -i "$T/seed.iso" | cmp -s - "$T/$f"; then
		ok "isoinfo -J reads /$f byte-exact"
	else fail "isoinfo -J reads /$f byte-exact"; fi
done
if isoinfo -J -x /network-config -i "$T/seed.iso" | cmp -s - "$T/big"; then
	ok "isoinfo -J reads a 10000-byte file (several sectors) byte-exact"
else fail "isoinfo reads the 10000-byte file"; fi
is "Joliet listing has the exact lower-case names" \
	"$(isoinfo -J -f -i "$T/seed.iso" | sort | tr '\n' ' ')" "/meta-data /network-config /user-data "
is "blkid sees LABEL=cidata" "$(blkid -o value -s LABEL "$T/seed.iso")" cidata
is "blkid sees TYPE=iso9660" "$(blkid -o value -s TYPE "$T/seed.iso")" iso9660
rm -rf "$T/x"
if osirrox -indev "$T/seed.iso" -extract / "$T/x" >/dev/null 2>&1 &&
	cmp -s "$T/x/user-data" "$T/user-data" && cmp -s "$T/x/network-config" "$T/big"; then
	ok "xorriso (osirrox) extracts the files"
else fail "xorriso (osirrox) extracts the files"; fi

check "empty file" "$MK" "$T/empty.iso" cidata meta-data="$T/empty"
is "empty file reads back empty" "$(isoinfo -J -x /meta-data -i "$T/empty.iso" | wc -c)" 0
check_fails "upper-case name refused" "$MK" "$T/bad.iso" cidata User-Data="$T/user-data"
[ ! -e "$T/bad.iso" ] && ok "nothing written on refusal" || fail "nothing written on refusal"
[ -z "$(ls "$T" | grep '\.tmp\.')" ] && ok "no temp files left" || fail "no temp files left"

# The kernel's isofs driver, which is what the guest uses.
mkdir -p "$MNT"
if ! grep -qw iso9660 /proc/filesystems && ! modprobe -q isofs 2>/dev/null; then
	skip "loop mount through isofs" "no iso9660 filesystem in this kernel (t-iso-guest.sh checks isofs in a guest)"
elif [ "$(id -u)" -ne 0 ]; then
	skip "loop mount through isofs" "needs root"
elif ! mount -o loop,ro -t iso9660 "$T/seed.iso" "$MNT" 2>"$T/mount.err"; then
	skip "loop mount through isofs" "mount failed: $(head -1 "$T/mount.err")"
else
	if cmp -s "$MNT/user-data" "$T/user-data" && cmp -s "$MNT/network-config" "$T/big" &&
		cmp -s "$MNT/meta-data" "$T/meta-data"; then
		ok "isofs mount: Joliet names and bytes exact"
	else fail "isofs mount: Joliet names and bytes exact"; ls -la "$MNT" | sed 's/^/# /'; fi
	umount "$MNT"
fi
done_testing
