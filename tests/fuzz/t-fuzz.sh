#!/usr/bin/env bash
# Short libFuzzer runs over every parser of untrusted bytes (FUZZ_SECONDS each, default 5; `make fuzz` runs 20 s each, `make fuzz-long` ten minutes).
source "$(dirname "$0")/../lib/tap.sh"
cd "$HUTCH_SRC" || exit 1
secs=${FUZZ_SECONDS:-5}
if ! make -s fuzz >build/fuzz-build.log 2>&1; then
	fail "fuzz targets build"; tail -30 build/fuzz-build.log | sed 's/^/#   /'; done_testing; exit 1
fi
ok "fuzz targets build"
for f in build/fuzz/fuzz_*; do
	[ -x "$f" ] || continue
	n=$(basename "$f")
	mkdir -p "build/fuzz/corpus-$n"
	seeds="tests/fuzz/corpus/$n"; [ -d "$seeds" ] || seeds=
	if "$f" -max_total_time="$secs" -max_len=4096 -timeout=10 -rss_limit_mb=1024 -artifact_prefix="build/fuzz/$n-" \
		"build/fuzz/corpus-$n" $seeds >"build/fuzz/$n.log" 2>&1; then
		ok "$n: no crash in ${secs}s ($(grep -o 'Done [0-9]* runs' "build/fuzz/$n.log"))"
	else
		fail "$n found a crash"; grep -E 'ERROR|SUMMARY|Test unit written' "build/fuzz/$n.log" | head -5 | sed 's/^/#   /'
	fi
done
done_testing
