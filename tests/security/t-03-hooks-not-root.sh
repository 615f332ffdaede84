#!/usr/bin/env bash
# Issue 15 item 3 (its "never as root" part): a project's hooks run as the
# invoking user, under sudo as SUDO_UID, and as plain root as the unprivileged
# hutch-vm, never as root.  The hook attacks: it reads /etc/shadow, writes
# into /root and /etc, and tries to regain root through a set-uid binary
# (no_new_privs).  Each attempt must fail, and the hook's own
# /proc/self/status must show a non-zero Uid and no capabilities.  A failing
# pre-up hook aborts `up` before any VM starts, so no guest is needed.
source "$(dirname "$0")/../lib/tap.sh"
cd "$HUTCH_SRC" || exit 1
[ "$(id -u)" -eq 0 ] || { skip "hooks not root" "needs root (hutch as root is what is tested)"; done_testing; exit 0; }
source tests/lib/guest.sh
guest_tiny_build || { skip "hooks not root" "tiny guest does not build"; done_testing; exit 0; }

T=$(mktemp -d /tmp/hutch-sec03.XXXXXX)
chmod 755 "$T"
export XDG_DATA_HOME=$T/data XDG_CACHE_HOME=$T/cache HOME=$T/home
unset HUTCH_DIR SUDO_UID SUDO_GID SUDO_USER
OUT=$T/out P=$T/p
mkdir -p "$HOME" "$OUT" "$P/hooks" && chmod 1777 "$OUT"
trap 'rm -rf "$T" /root/.hutch-sec03-$$ /etc/hutch-sec03-$$' EXIT
field() { awk -v k="$1:" '$1 == k {print $2; exit}' "$2"; }

cat >"$P/hutch.yaml" <<EOF
name: sec03
memory: 128
kernel: {path: $TINY_KERNEL, initrd: $TINY_INITRD}
accel: tcg
network: {mode: none}
EOF
printf '#cloud-config\n' >"$P/cloud-init.yml"
cat >"$P/hooks/pre-up" <<EOF
#!/bin/sh
cat /proc/self/status >"$OUT/status"
cat /etc/shadow >"$OUT/shadow" 2>/dev/null && echo read >"$OUT/shadow-read"
touch /root/.hutch-sec03-$$ 2>/dev/null && echo yes >"$OUT/root-write"
touch /etc/hutch-sec03-$$ 2>/dev/null && echo yes >"$OUT/etc-write"
# su is set-uid root: with no_new_privs it cannot raise us
su -c id root </dev/null >"$OUT/su" 2>&1 && echo yes >"$OUT/su-ok"
exit 1
EOF
chmod 755 "$P/hooks/pre-up"

# attack NAME [env...]: run up (the hook fails it), then check what the hook achieved
attack() {
	local what=$1 uid eff nnp
	shift
	rm -f "$OUT"/*
	env "$@" "$HUTCH" -C "$P" up --yes >"$T/up.log" 2>&1
	is "$what: a failing pre-up hook aborts up" "$?" 1
	if [ ! -f "$OUT/status" ]; then fail "$what: the hook did not run"; sed 's/^/#   /' "$T/up.log" | tail -5; return; fi
	uid=$(field Uid "$OUT/status") eff=$(field CapEff "$OUT/status") nnp=$(field NoNewPrivs "$OUT/status")
	HOOK_UID=$uid
	[ "$uid" != 0 ] && ok "$what: the hook's Uid is $uid, not root" || fail "$what: the hook ran as root"
	is "$what: the hook's CapEff" "$eff" 0000000000000000
	is "$what: the hook runs with no_new_privs" "$nnp" 1
	check_fails "$what: the hook could not read /etc/shadow" test -e "$OUT/shadow-read"
	check_fails "$what: the hook could not write into /root" test -e "/root/.hutch-sec03-$$"
	check_fails "$what: the hook could not write into /etc" test -e "/etc/hutch-sec03-$$"
	check_fails "$what: su (set-uid root) did not make the hook root" test -e "$OUT/su-ok"
	check_fails "$what: no VM directory was left running" test -e "$XDG_DATA_HOME/hutch/vms/sec03/supervisor.pid"
}

attack "plain root"
is "plain root: the hook ran as the dedicated user" "$(id -un "$HOOK_UID" 2>/dev/null)" hutch-vm
attack "sudo" SUDO_UID=65534 SUDO_GID=65534 SUDO_USER=nobody
is "sudo: the hook ran as SUDO_UID" "$HOOK_UID" 65534
# a SUDO_UID of 0 (root ran sudo) is plain root, never root for the hook
attack "sudo from root" SUDO_UID=0 SUDO_GID=0
is "sudo from root: the hook ran as the dedicated user" "$(id -un "$HOOK_UID" 2>/dev/null)" hutch-vm
done_testing
