#!/usr/bin/env bash
# What confining QEMU, virtiofsd and hooks adds to their start (issue 10):
# spawn-to-exit of /bin/true with and without each confinement, and the
# memfd copy of the tiny guest's kernel and initrd (done only when QEMU's
# user may not read them).  The rest of a confined start (files by fd) is
# in bench-vm.sh's supervisor -> QMP-ready figure.
cd "$(dirname "$0")/../.." || exit 1
HUTCH_SRC=$PWD
source tests/lib/guest.sh
guest_tiny_build >/dev/null 2>&1 || true
B=build/tests/proc_bench
[ -x "$B" ] || { echo "bench-confine: $B missing (make unit)"; exit 1; }
"$B" "${RUNS:-50}" ${TINY_KERNEL:+"$TINY_KERNEL" "$TINY_INITRD"}
