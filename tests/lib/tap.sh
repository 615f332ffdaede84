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
check() { local what=$1; shift; if "$@" >/tmp/tap.$$.out 2>&1; then ok "$what"; else fail "$what"; sed 's/^/#   /' /tmp/tap.$$.out | tail -20; fi; rm -f /tmp/tap.$$.out; }
# check_fails "what" cmd args...: ok if the command fails
check_fails() { local what=$1; shift; if "$@" >/tmp/tap.$$.out 2>&1; then fail "$what"; sed 's/^/#   /' /tmp/tap.$$.out | tail -20; else ok "$what"; fi; rm -f /tmp/tap.$$.out; }
# is "what" got want
is() { if [ "$2" = "$3" ]; then ok "$1"; else fail "$1"; diag "got:  '$2'"; diag "want: '$3'"; fi; }
done_testing() { echo "1..$TAP_N"; [ "$TAP_FAILED" -eq 0 ]; }
# Root of the source tree and the built binary
HUTCH_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HUTCH=${HUTCH:-$HUTCH_SRC/hutch}
export HUTCH HUTCH_SRC
