#!/usr/bin/env bash
# Issue 15.11, the config items: an `allow-lan-host` in 169.254/16 (where
# cloud metadata services answer, 169.254.169.254) is allowed but warned
# about; `firmware: uefi` is refused by check-config, as README says.
source "$(dirname "$0")/../lib/tap.sh"
T=$(mktemp -d /tmp/hutch-sec11.XXXXXX)
trap 'rm -rf "$T"' EXIT
export HOME=$T/home XDG_CONFIG_HOME=$T/config
mkdir -p "$HOME"
printf 'name: c11\nnetwork:\n  host_access: [allow-lan-host 169.254.169.254]\n' >"$T/hutch.yaml"
err=$("$HUTCH" -C "$T" check-config 2>&1 >/dev/null); rc=$?
if [ "$rc" = 0 ] && printf '%s' "$err" | grep -q 'warning: .*hutch.yaml:3:17: .*169.254.169.254.*metadata'; then
	ok "allow-lan-host 169.254.169.254: accepted with a warning at file:line:col"
else
	fail "link-local warning (exit $rc)"; diag "$err"
fi
printf 'name: c11\nnetwork:\n  host_access: [allow-lan-host 192.168.1.5]\n' >"$T/hutch.yaml"
err=$("$HUTCH" -C "$T" check-config 2>&1 >/dev/null); rc=$?
if [ "$rc" = 0 ] && [ -z "$err" ]; then ok "a LAN host elsewhere: no warning"; else fail "no warning (exit $rc)"; diag "$err"; fi

printf 'name: c11\nfirmware: uefi\n' >"$T/hutch.yaml"
err=$("$HUTCH" -C "$T" check-config 2>&1 >/dev/null); rc=$?
if [ "$rc" = 2 ] && printf '%s' "$err" | grep -q 'hutch.yaml:2:11: firmware: uefi is not supported'; then
	ok "firmware: uefi is refused by check-config"
else
	fail "firmware: uefi (exit $rc)"; diag "$err"
fi
if grep -q 'firmware: uefi` is refused' "$HUTCH_SRC/README.md"; then
	ok "README says the same"
else
	fail "README on firmware: uefi"
fi
done_testing
