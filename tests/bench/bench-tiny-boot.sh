#!/usr/bin/env bash
# Tiny guest figures under TCG with plain QEMU: boot to "hutch-tiny: ready"
# (with DHCP on user-mode networking), and QMP system_powerdown to QEMU exit.
# BENCH_RUNS (default 3) boots; prints each run and the best.
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$HUTCH_SRC/tests/lib/guest.sh"
guest_tiny_build || { echo "bench-tiny-boot: make tiny failed"; exit 1; }
T=$(mktemp -d /tmp/guests-bench.XXXXXX)
trap 'tiny_stop "$T/cur" 2>/dev/null; rm -rf "$T"' EXIT
best_boot= best_off=
for ((r = 1; r <= ${BENCH_RUNS:-3}; r++)); do
	rm -rf "$T/cur"
	t0=$(now)
	TINY_CMDLINE=hutch.net=dhcp tiny_boot "$T/cur" -netdev user,id=n0 -device virtio-net-pci,netdev=n0
	guestsh --timeout 120 --wait-ready "$T/cur/console.sock" || { echo "bench-tiny-boot: no ready"; exit 1; }
	boot=$(since $t0)
	t1=$(now)
	guestsh --qmp "$T/cur/qmp.sock" system_powerdown >/dev/null
	wait "$TINY_PID"
	TINY_PID=
	off=$(since $t1)
	printf 'tiny run %d: boot to ready %.2f s, powerdown to exit %.2f s\n' "$r" "$boot" "$off"
	best_boot=$(awk -v a="$boot" -v b="${best_boot:-1e9}" 'BEGIN { print (a < b) ? a : b }')
	best_off=$(awk -v a="$off" -v b="${best_off:-1e9}" 'BEGIN { print (a < b) ? a : b }')
done
printf 'tiny best: boot to ready %.2f s, powerdown to exit %.2f s (TCG, -m 256, q35)\n' "$best_boot" "$best_off"
