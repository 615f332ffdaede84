# shellcheck shell=bash
# Unprivileged users and a test copy of hutch-helper, for tests that run
# hutch as a normal user (source after tap.sh; needs root).
#   priv_init DIR        DIR (created, root's, 0755) holds bin/hutch-helper,
#                        set up by `hutch setup --helper --group --rundir` with
#                        its registry in DIR/run: nothing goes to system paths
#                        except the test users and group, removed by priv_fini
#   priv_start DIR NAME...  priv_init DIR and priv_user NAME...; on failure a TAP
#                        "not ok" with the set-up log, and exit
#   priv_user NAME       create user NAME (no home), in the test group;
#                        its HOME is DIR/home-NAME
#   as_user NAME CMD...  run CMD as NAME (uid, gid, groups), environment kept,
#                        HOME and XDG dirs set to the user's (priv_argv: the prefix)
#   priv_registry        the registry's content (JSON)
#   jget FILE KEY...     a member of a JSON file (state.json), or nothing
#   priv_fini            `hutch setup --uninstall` of the copy; users and group gone
# Changes to the user database (useradd, userdel, setup's groupadd) take
# PRIV_LOCK, so that tests running side by side (tests/run) wait for each
# other instead of failing on shadow's lock of /etc/passwd.
PRIV_DIR= PRIV_GROUP= PRIV_USERS=()
PRIV_LOCK=${PRIV_LOCK:-/run/lock/hutch-test-users.lock}
users_locked() { flock -w 600 "$PRIV_LOCK" "$@"; }
priv_init() {
	PRIV_DIR=$1
	PRIV_GROUP=htg$$
	mkdir -p "$PRIV_DIR/bin" && chmod 755 "$PRIV_DIR" "$PRIV_DIR/bin" || return 1
	cp "$HUTCH_SRC/hutch-helper" "$PRIV_DIR/bin/hutch-helper" || return 1
	export HUTCH_HELPER=$PRIV_DIR/bin/hutch-helper
	users_locked "$HUTCH" setup --helper "$HUTCH_HELPER" --group "$PRIV_GROUP" --rundir "$PRIV_DIR/run" \
		>"$PRIV_DIR/setup.log" 2>&1
	[ -f "$PRIV_DIR/run/registry.json" ] && getent group "$PRIV_GROUP" >/dev/null
}
priv_start() {
	local d=$1 u; shift
	if priv_init "$d"; then
		for u in "$@"; do priv_user "$u" || break; done && return 0
	fi
	fail "test users and a test copy of hutch-helper"; sed 's/^/#   /' "$d/setup.log"
	done_testing; exit 1
}
priv_user() {
	local u=$1
	users_locked useradd -M -N -d "$PRIV_DIR/home-$u" -s /bin/sh -G "$PRIV_GROUP" "$u" || return 1
	PRIV_USERS+=("$u")
	mkdir -p "$PRIV_DIR/home-$u" && chown "$u:" "$PRIV_DIR/home-$u" && chmod 700 "$PRIV_DIR/home-$u"
}
# priv_argv NAME: PRIV_ARGV=(env ... setpriv ... --), to put before a command
# (e.g. behind `ip netns exec NS`, which cannot run a shell function)
priv_argv() {
	local h=$PRIV_DIR/home-$1
	PRIV_ARGV=(env HOME="$h" XDG_DATA_HOME="$h/data" XDG_CACHE_HOME="$h/cache"
		XDG_CONFIG_HOME="$h/config" setpriv --reuid="$1" --regid="$(id -g "$1")" --init-groups --)
}
as_user() { priv_argv "$1"; shift; "${PRIV_ARGV[@]}" "$@"; }
jget() { python3 -c 'import json,sys
try:
    v = json.load(open(sys.argv[1]))
    for k in sys.argv[2:]: v = v[k]
    print(v)
except Exception: pass' "$@"; }
# the registry's active slot (net/privd_reg.c: a header names the slot)
priv_registry() { python3 -c 'import sys
try:
    b = open(sys.argv[1], "rb").read()
    if b:
        h = b[:64].decode().split()
        slot, n = int(h[2][5:]), int(h[3][4:])
        off = 4096 + slot * (1 << 20)
        sys.stdout.write(b[off:off + n].decode())
except Exception as e: print("bad registry:", e)' "$PRIV_DIR/run/registry.json"; }
priv_fini() {
	local u
	[ -n "$PRIV_DIR" ] || return 0
	users_locked "$HUTCH" setup --uninstall --helper "$PRIV_DIR/bin/hutch-helper" --group "$PRIV_GROUP" \
		--rundir "$PRIV_DIR/run" >/dev/null 2>&1
	for u in "${PRIV_USERS[@]}"; do users_locked userdel "$u" 2>/dev/null; done
	getent group "$PRIV_GROUP" >/dev/null && users_locked groupdel "$PRIV_GROUP" 2>/dev/null
	return 0
}
