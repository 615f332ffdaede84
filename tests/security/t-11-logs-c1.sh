#!/usr/bin/env bash
# Issue 15 item 11: `hutch logs` shows bytes the guest wrote to its console.
# A hostile guest must not drive the user's terminal: C0 controls (ESC),
# C1 controls both raw (0x9b is CSI on many terminals) and UTF-8-encoded
# (U+009B), and invalid UTF-8 come out as \xNN; valid text passes as it is.
source "$(dirname "$0")/../lib/tap.sh"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
export XDG_DATA_HOME=$T/data HOME=$T/home
V=$XDG_DATA_HOME/hutch/vms/c1-t
mkdir -p "$V" "$T/empty"
# ESC [ 2 J (clear), raw CSI 0x9b + "31m", UTF-8 C1 CSI (c2 9b), a lone 0xff,
# then valid UTF-8 (é, 漢) and a tab
printf 'a\033[2Jb\2331mc\302\2332Jd\377e\tf \303\251 \346\274\242\n' >"$V/console.log"
out=$(cd "$T/empty" && "$HUTCH" logs c1-t 2>"$T/err")
is "logs exits 0" "$?" 0
printf '%s' "$out" | LC_ALL=C grep -q $'[\x1b\x9b]' && fail "raw ESC or 0x9b reached the terminal" ||
	ok "no raw ESC or 0x9b byte in the output"
printf '%s' "$out" | LC_ALL=C grep -q $'\xc2\x9b' && fail "UTF-8 encoded C1 (U+009B) reached the terminal" ||
	ok "no UTF-8 encoded C1 control in the output"
is "each control shown as \\xNN, valid text kept" "$out" 'a\x1b[2Jb\x9b1mc\xc2\x9b2Jd\xffe	f é 漢'
# a UTF-8 sequence cut by the 8 KiB read buffer is not mangled
{ head -c 8191 /dev/zero | tr '\0' x; printf '\303\251\n'; } >"$V/console.log"
out=$(cd "$T/empty" && "$HUTCH" logs c1-t 2>/dev/null)
is "a character split across reads stays whole" "${out: -1}" "é"
done_testing
