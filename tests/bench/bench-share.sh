#!/usr/bin/env bash
# virtiofs throughput from inside the tiny guest (TCG) on an isolated share:
# sequential write of a 256 MiB file (dd, conv=fsync) and sequential read of
# it back after dropping the guest's page cache.  The host's page cache is
# left alone (the machine is shared): the read measures guest -> virtiofsd
# -> host page cache.  Figures in MiB/s; TCG makes them a floor, not what
# KVM gives.
HUTCH_SRC=$(cd "$(dirname "$0")/../.." && pwd)
source "$HUTCH_SRC/tests/share/lib-guest.sh"
if ! sg_find; then echo "bench-share: skipped: $SG_WHY"; exit 0; fi
T=$(mktemp -d /tmp/share-bench.XXXXXX)
trap 'sg_stop; rm -rf "$T"' EXIT
sg_boot "$T" 1 || { echo "bench-share: guest did not boot"; tail -5 "$T/qemu.log"; exit 1; }

# guest-side timing from /proc/uptime (10 ms resolution) so the console
# round trip is not counted
t() { SG_TIMEOUT=900 sg_sh "a=\$(cut -d' ' -f1 /proc/uptime); $1 >/dev/null 2>&1; b=\$(cut -d' ' -f1 /proc/uptime); echo \"\$a \$b\"" | tr -d '\r' | tail -1; }
mibs() { awk -v s="$1" 'BEGIN { split(s, x, " "); d = x[2] - x[1]; if (d <= 0) d = 0.01; printf "%.1f MiB/s (%.2f s)", 256 / d, d }'; }

w=$(t "dd if=/dev/zero of=/mnt/ws/bench bs=1M count=256 conv=fsync")
sg_sh "sync; echo 3 >/proc/sys/vm/drop_caches" >/dev/null
r=$(t "dd if=/mnt/ws/bench of=/dev/null bs=1M")
sg_sh "rm -f /mnt/ws/bench" >/dev/null
echo "share: virtiofs sequential write 256 MiB (conv=fsync): $(mibs "$w")"
echo "share: virtiofs sequential read  256 MiB (guest cache dropped): $(mibs "$r")"
