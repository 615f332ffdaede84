#!/usr/bin/env bash
# libcurl and libcrypto are dlopen()ed on first use (src/lazy.h), so that the
# per-VM supervisor stays small: hutch does not link them, a running
# supervisor has neither mapped, downloads still work (tests/images), and a
# missing library is a clear error with exit 69 (only libcurl is hidden here:
# without libcrypto, ssh-keygen and qemu-img fail first anyway).
source "$(dirname "$0")/../lib/tap.sh"
cd "$HUTCH_SRC" || exit 1

libs=$(ldd "$HUTCH" 2>&1)
for l in libcurl libcrypto libgnutls libkrb5 libldap libssh2 libnghttp2; do
	if grep -q "$l" <<<"$libs"; then fail "hutch does not link $l"; diag "$libs"; else ok "hutch does not link $l"; fi
done

T=$(mktemp -d /tmp/hutch-lazy.XXXXXX)
export XDG_DATA_HOME=$T/data XDG_CACHE_HOME=$T/cache
V=$XDG_DATA_HOME/hutch/vms/lazy-t
cleanup() {
	local p
	for p in $(jq -r '.supervisor_pid // empty, .qemu_pid // empty' "$V/state.json" 2>/dev/null); do
		grep -qs "$T" "/proc/$p/cmdline" && kill -9 "$p" 2>/dev/null
	done
	rm -rf "$T"
}
trap cleanup EXIT

# A library that cannot be loaded: hide it in a private mount namespace.
# hide LIB cmd...: run cmd with LIB replaced by an empty file
hide() {
	local lib; lib=$(ldconfig -p | awk -v l="$1" '$1 == l && /x86-64/ { print $NF; exit }')
	[ -n "$lib" ] || return 99
	shift
	unshare -m sh -c 'mount --bind /dev/null "$0" && exec "$@"' "$lib" "$@"
}
if [ "$(id -u)" = 0 ] && unshare -m true 2>/dev/null; then
	out=$(hide libcurl.so.4 "$HUTCH" images pull https://127.0.0.1:9/x.qcow2 2>&1); rc=$?
	is "no libcurl: images pull exits 69" "$rc" 69
	check "no libcurl: the error names the library and its package" \
		grep -q 'cannot load libcurl.so.4 (install libcurl4)' <<<"$out"
else
	skip "no libcurl: exit 69" "needs root and unshare -m"
	skip "no libcurl: message" "needs root and unshare -m"
fi

source tests/lib/guest.sh
guest_tiny_build >/dev/null || { skip "supervisor maps" "tiny guest does not build"; done_testing; exit; }
mkdir -p "$T/p"
cat >"$T/p/hutch.yaml" <<Y
name: lazy-t
cpus: 1
memory: 256
accel: tcg
kernel: {path: $TINY_KERNEL, initrd: $TINY_INITRD, cmdline: "console=ttyS0 quiet no_timer_check"}
network: {mode: none}
Y
check "up (tiny guest)" timeout 900 "$HUTCH" -q -C "$T/p" up
sp=$(jq -r .supervisor_pid "$V/state.json" 2>/dev/null)
if [ -n "$sp" ] && [ -r "/proc/$sp/maps" ]; then
	check_fails "the supervisor maps neither libcurl nor libcrypto" grep -E 'libcurl|libcrypto|libgnutls' "/proc/$sp/maps"
	diag "supervisor: $(grep -E '^(VmRSS|RssAnon)' "/proc/$sp/status" | tr -s ' \t\n' ' ')"
else
	fail "the supervisor maps neither libcurl nor libcrypto"; diag "no supervisor pid"
fi
check "destroy" timeout 600 "$HUTCH" -q -C "$T/p" destroy
done_testing
