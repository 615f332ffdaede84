# shellcheck shell=bash
# TAP helpers for shell tests: source this, then call ok/fail/skip/check/done_testing.
# Each test script prints "ok N - what", "not ok N - what", "ok N - what # SKIP why".
TAP_N=0
TAP_FAILED=0
ok()   { TAP_N=$((TAP_N + 1)); echo "ok $TAP_N - $*"; }
fail() { TAP_N=$((TAP_N + 1)); TAP_FAILED=$((TAP_FAILED + 1)); echo "not ok $TAP_N - $*"; }
skip() { TAP_N=$((TAP_N + 1)); echo "ok $TAP_N - $1 # SKIP ${2:-}"; }
diag() { echo "# $*"; }
# check "what" cmd args...: ok if the command succeeds
check() {
	local what=$1 _tap_out
	shift
	_tap_out=$(mktemp "${TMPDIR:-/tmp}/tap.XXXXXX")
	if "$@" >"$_tap_out" 2>&1; then ok "$what"; else fail "$what"; sed 's/^/#   /' "$_tap_out" | tail -20; fi
	rm -f "$_tap_out"
}
# check_fails "what" cmd args...: ok if the command fails
check_fails() {
	local what=$1 _tap_out
	shift
	_tap_out=$(mktemp "${TMPDIR:-/tmp}/tap.XXXXXX")
	if "$@" >"$_tap_out" 2>&1; then fail "$what"; sed 's/^/#   /' "$_tap_out" | tail -20; else ok "$what"; fi
	rm -f "$_tap_out"
}
# is "what" got want
is() { if [ "$2" = "$3" ]; then ok "$1"; else fail "$1"; diag "got:  '$2'"; diag "want: '$3'"; fi; }
# wait_until SECONDS cmd...: runs cmd until it succeeds, for at most SECONDS.
# A ceiling, not a delay: it returns as soon as cmd succeeds (polling often at
# first, then every second).  Tests wait on events this way, with ceilings of
# minutes: a loaded machine (TCG guests, parallel tests, CI neighbours) makes
# everything slower, never wrong.  Status 1 if the time ran out.
wait_until() {
	local end=$((SECONDS + $1)) d=0.05
	shift
	while :; do
		"$@" && return 0
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep "$d"
		case $d in 0.05) d=0.1 ;; 0.1) d=0.2 ;; 0.2) d=0.5 ;; 0.5) d=1 ;; esac
	done
}
# alive PID: the process exists and is not a zombie; gone PID: it does not
alive() { [ -n "$1" ] && [ -d "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
gone() { ! alive "$1"; }
done_testing() { echo "1..$TAP_N"; [ "$TAP_FAILED" -eq 0 ]; }
# Root of the source tree and the built binary
HUTCH_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HUTCH=${HUTCH:-$HUTCH_SRC/hutch}
export HUTCH HUTCH_SRC
