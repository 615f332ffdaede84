#!/usr/bin/env bash
# under-load.sh CMD...: runs CMD while every core is kept busy, as on a shared
# CI machine or a laptop that compiles beside the tests: stress-ng --cpu N
# (N = LOAD_CPUS, default the number of cores), or N shell busy loops where
# stress-ng is missing.  The load stops with CMD; CMD's status is returned.
set -u
n=${LOAD_CPUS:-$(nproc)}
pids=()
stop() { [ ${#pids[@]} -eq 0 ] || kill "${pids[@]}" 2>/dev/null; wait "${pids[@]}" 2>/dev/null; pids=(); }
trap stop EXIT
trap 'stop; exit 130' INT TERM
if command -v stress-ng >/dev/null; then
	stress-ng --cpu "$n" --timeout 0 --quiet &
	pids+=($!)
	what="stress-ng --cpu $n"
else
	for ((i = 0; i < n; i++)); do
		bash -c 'while :; do :; done' &
		pids+=($!)
	done
	what="$n busy loops"
fi
echo "under load: $what beside: $*"
"$@"
rc=$?
echo "under load: $what; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
exit $rc
