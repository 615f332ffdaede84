#!/usr/bin/env bash
# Issue 15.1: a cloned repository's hutch.yaml must not share (or name) a
# host folder outside the project.  The attacks: `..` out of the project,
# `~/.ssh`, an absolute path, a symlink inside the project that points out,
# and a folder the guest could write hooks into.  Each is refused with exit
# 77 (not allowed), before anything is created; a place outside the project
# becomes usable only through the user's own ~/.config/hutch/config.yaml.
source "$(dirname "$0")/../lib/tap.sh"
T=$(mktemp -d /tmp/hutch-sec01.XXXXXX)
trap 'rm -rf "$T"' EXIT
export HOME=$T/home XDG_CONFIG_HOME=$T/config XDG_DATA_HOME=$T/data XDG_CACHE_HOME=$T/cache
unset HUTCH_ALLOW_PATHS
mkdir -p "$HOME/.ssh" "$XDG_CONFIG_HOME" "$T/outside" "$T/a/b/proj"
echo secret >"$HOME/.ssh/id_ed25519"
P=$T/a/b/proj

# refused: exit 77, the message names the key and says why
refused() {	# refused WHAT HOST-VALUE
	local what=$1 host=$2 err rc
	printf 'name: s1\nkernel: {path: ./k}\nnetwork: {mode: none}\nshared_folders:\n  - {host: "%s", isolation: false}\n' \
		"$host" >"$P/hutch.yaml"
	err=$("$HUTCH" -C "$P" check-config 2>&1 >/dev/null); rc=$?
	if [ "$rc" = 77 ] && printf '%s' "$err" | grep -q 'shared_folders.host' &&
		printf '%s' "$err" | grep -qi 'outside the project\|symbolic link\|hooks'; then
		ok "check-config refuses $what with exit 77"
	else
		fail "check-config refuses $what (exit $rc)"; diag "$err"
	fi
}
: >"$P/k"
refused "a share out of the project through .." "../../../../../../etc"
refused "a share of ~/.ssh" "~/.ssh"
refused "a share at an absolute path outside" "$T/outside"
ln -s "$T/outside" "$P/ws"
refused "a share through a symlink that leads out" "ws"
ln -s /etc "$P/inner"
refused "a share below a symlinked folder" "inner/ssl"
mkdir -p "$P/hooks"
refused "a share of hooks/ (the guest would write host code)" "hooks"

# `up` stops before anything is made: no VM, no image beside the folder
printf 'name: s1\nkernel: {path: ./k}\nnetwork: {mode: none}\nshared_folders:\n  - {host: ws}\n' >"$P/hutch.yaml"
"$HUTCH" -C "$P" up >"$T/up.out" 2>&1; rc=$?
is "up with a symlinked share: exit 77" "$rc" 77
if [ ! -e "$T/outside.img" ] && [ ! -e "$P/ws.img" ] && [ ! -d "$XDG_DATA_HOME/hutch/vms/s1" ]; then
	ok "up refused before creating an image or a VM"
else
	fail "up created something"; ls -la "$T" "$P" "$XDG_DATA_HOME/hutch/vms" 2>&1 | sed 's/^/# /'
fi

# the repository cannot allow itself: a config.yaml inside the project is not read
mkdir -p "$P/.config/hutch"
printf 'allow_paths: [%s]\n' "$T/outside" >"$P/.config/hutch/config.yaml"
refused "a share outside, with a config.yaml planted in the project" "$T/outside"

# the user can: ~/.config/hutch/config.yaml (XDG_CONFIG_HOME) allow_paths
mkdir -p "$XDG_CONFIG_HOME/hutch"
printf 'allow_paths:\n  - %s\n' "$T/outside" >"$XDG_CONFIG_HOME/hutch/config.yaml"
printf 'name: s1\nkernel: {path: ./k}\nnetwork: {mode: none}\nshared_folders:\n  - {host: "%s", isolation: false}\n' \
	"$T/outside" >"$P/hutch.yaml"
check "a share the user allowed in ~/.config/hutch/config.yaml passes" "$HUTCH" -C "$P" check-config
# ...and only that: a sibling stays refused
refused "a sibling of the allowed folder" "$T/outside2"
# the user config is parsed strictly
printf 'allow_path: [/x]\n' >"$XDG_CONFIG_HOME/hutch/config.yaml"
err=$("$HUTCH" -C "$P" check-config 2>&1 >/dev/null); rc=$?
if [ "$rc" = 2 ] && printf '%s' "$err" | grep -q "config.yaml:1:1: unknown key 'allow_path'.*allow_paths"; then
	ok "user config: unknown key is an error with file:line:col"
else
	fail "user config strict (exit $rc)"; diag "$err"
fi
printf 'allow_paths: [relative/dir]\n' >"$XDG_CONFIG_HOME/hutch/config.yaml"
err=$("$HUTCH" -C "$P" check-config 2>&1 >/dev/null); rc=$?
if [ "$rc" = 2 ] && printf '%s' "$err" | grep -q "config.yaml:1:15: allow_paths"; then
	ok "user config: a relative allowed path is an error"
else
	fail "user config relative path (exit $rc)"; diag "$err"
fi
# a user config others can write is not the user's word
printf 'allow_paths: [%s]\n' "$T/outside" >"$XDG_CONFIG_HOME/hutch/config.yaml"
chmod 666 "$XDG_CONFIG_HOME/hutch/config.yaml"
err=$("$HUTCH" -C "$P" check-config 2>&1 >/dev/null); rc=$?
if [ "$rc" = 77 ] && printf '%s' "$err" | grep -q 'writable'; then
	ok "a world-writable user config is refused"
else
	fail "world-writable user config (exit $rc)"; diag "$err"
fi
done_testing
