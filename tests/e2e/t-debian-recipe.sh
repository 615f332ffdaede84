#!/usr/bin/env bash
# The debian-12 test guest (images/recipes/debian-12.sh): builds (or reuses)
# the image, checks that it is qcow2 and that a second make is a no-op.
# What hutch relies on inside it (cloud-init reads the NoCloud seed from a
# read-only virtio disk labelled cidata, SSH, the network through cloud-init,
# logind for the power button, console=ttyS0) is checked where hutch boots
# it anyway, in tests/e2e/t-e2e.sh (image_checks): a boot of its own here
# cost a Debian boot under TCG in every `make check`.
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$HUTCH_SRC/tests/lib/guest.sh"

for t in qemu-img debootstrap; do
	command -v "$t" >/dev/null || { skip "debian-12 guest" "no $t"; done_testing; exit; }
done
[ "$(id -u)" -eq 0 ] || { skip "debian-12 guest" "building the image needs root"; done_testing; exit; }

T=$(mktemp -d /tmp/guests-deb.XXXXXX)
trap 'rm -rf "$T"' EXIT

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

make -C "$HUTCH_SRC" --no-print-directory debian-image >"$T/rebuild.log" 2>&1
is "make debian-image again is a no-op" "$(cat "$T/rebuild.log")" ""

done_testing
