#!/usr/bin/env bash
# The scripted-rig figures (issue 16): RIG_N (16) tiny VMs in mode nat started
# at once from a fresh HOME with `up --no-wait`, `hutch wait --for ip` for
# all in parallel, then all halted at once (tests/vm/t-rig.sh, which also
# checks that every VM came up with its own address).  Prints the wall time
# from the first `up` to the last lease, the summed RSS of the supervisors and
# the time to halt them all, with the load average (the machine is shared).
set -u
HUTCH_SRC=$(cd "$(dirname "$0")/../.." && pwd)
out=$(bash "$HUTCH_SRC/tests/vm/t-rig.sh" 2>&1)
rc=$?
fig=$(sed -n 's/^# rig: //p' <<<"$out")
if [ $rc -ne 0 ] || [ -z "$fig" ]; then
	echo "bench-rig: the rig failed (exit $rc)"
	grep -E '^not ok|^#' <<<"$out" | tail -20
	exit 1
fi
# vms=16 up_no_wait_s=.. ready_s=.. supervisor_rss_kib=.. halt_all_s=.. load=..
eval "$(tr ' ' '\n' <<<"$fig" | grep -E '^[a-z_]+=[0-9.]+$')"
printf 'rig: %d tiny VMs (nat, TCG) from a fresh HOME: up --no-wait for all %.1f s, all leased %.1f s after the first up\n' \
	"$vms" "$up_no_wait_s" "$ready_s"
printf 'rig: supervisors %.1f MiB RSS in all (%.1f MiB each), halt of all at once %.2f s (load average %s)\n' \
	"$(awk -v k="$supervisor_rss_kib" 'BEGIN { print k / 1024 }')" \
	"$(awk -v k="$supervisor_rss_kib" -v n="$vms" 'BEGIN { print k / 1024 / n }')" "$halt_all_s" "$load"
