#!/usr/bin/env bash
# Issue 15 item 12: fuzzing that reaches the code.  Each target's seed
# corpus is run once with libFuzzer's coverage report, and the functions
# that only a target past its preamble can reach must be covered:
# - fuzz_qmp: events and command replies after the handshake (qmp_dispatch
#   and the harness's event callback); before, every event died with the
#   handshake because the canned capabilities reply arrived before the
#   command it answers;
# - fuzz_dns_fwd: the forwarder's whole request path (client query,
#   checks, slot, upstream answer, relay back), not only the parser;
# - fuzz_fwd: the port-forward relay (both directions, half-close, timers).
# Every target is also in `make check` (tests/fuzz/t-fuzz.sh runs them
# all) and in `make fuzz-long` (10 minutes each).
source "$(dirname "$0")/../lib/tap.sh"
cd "$HUTCH_SRC" || exit 1
command -v clang >/dev/null || { skip "fuzz targets" "clang missing"; done_testing; exit 0; }
if ! make -s fuzz >build/fuzz-build.log 2>&1; then
	fail "fuzz targets build"; tail -20 build/fuzz-build.log | sed 's/^/#   /'; done_testing; exit 1
fi
covered() {	# covered TARGET FUNC...: each FUNC has hits on the seed corpus
	local t=$1 f out hits
	shift
	if [ ! -x "build/fuzz/$t" ]; then
		fail "$t exists"; return
	fi
	out=$("build/fuzz/$t" -runs=0 -print_coverage=1 -timeout=30 "tests/fuzz/corpus/$t" 2>&1)
	for f in "$@"; do
		hits=$(awk -v f="$f" '$1 == "COVERED_FUNC:" && $6 == f { print $3 }' <<<"$out" | head -n1)
		[ "${hits:-0}" -gt 0 ] && ok "$t reaches $f ($(awk -v f="$f" '$6 == f { print $5 }' <<<"$out" | head -n1) edges)" ||
			fail "$t reaches $f"
	done
}
covered fuzz_qmp qmp_dispatch on_event
covered fuzz_dns_fwd dns_parse_query dns_fwd_on_client dns_fwd_on_upstream client_read
covered fuzz_fwd fwd_dispatch fwd_handle pipe_read pipe_write fwd_tick
n=$(make -s -n fuzz-long FUZZ_LONG_SECONDS=600 2>/dev/null | grep -c 'max_total_time=600')
[ "$n" -ge 1 ] && ok "make fuzz-long runs every target for 600 s" || fail "make fuzz-long runs every target for 600 s"
grep -q 'for f in build/fuzz/fuzz_\*' tests/fuzz/t-fuzz.sh && ok "tests/fuzz/t-fuzz.sh runs every target" ||
	fail "tests/fuzz/t-fuzz.sh runs every target"
done_testing
