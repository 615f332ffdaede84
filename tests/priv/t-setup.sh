#!/usr/bin/env bash
# hutch setup (issue 10), on a test copy of the helper, a test group and a
# test run directory (--helper/--group/--rundir), so that nothing is
# installed into system paths: --check on a host without the helper lists
# what is missing with exit 78; setup gives the helper root:GROUP, 0750 and
# exactly its file capabilities, writes its configuration and registry, and
# adds the user to the group; a second run changes nothing; --check is then
# happy; --uninstall takes it all back.  A user without the helper is told
# which command to run (exit 78); a user without root cannot run setup (77).
# test: serial (adds the test user to groups and runs setup/uninstall on the host's user database)
set -u
source "$(dirname "$0")/../lib/tap.sh"
source "$HUTCH_SRC/tests/lib/guest.sh"
if [ "$(id -u)" -ne 0 ]; then skip "hutch setup" "needs root"; done_testing; exit 0; fi
for t in getcap setpriv useradd; do
	command -v $t >/dev/null || { skip "hutch setup" "$t missing"; done_testing; exit 0; }
done
[ -x "$HUTCH_SRC/hutch-helper" ] || { skip "hutch setup" "make hutch-helper first"; done_testing; exit 0; }
if ! guest_tiny_build; then fail "make tiny"; done_testing; exit 1; fi

T=$(mktemp -d /tmp/privs.XXXXXX)
G=hts$$ U=htsu$$
chmod 755 "$T"
cleanup() {
	userdel "$U" 2>/dev/null
	getent group "$G" >/dev/null && groupdel "$G"
	rm -rf "$T"
}
trap cleanup EXIT
useradd -M -N -d "$T/home" -s /bin/sh "$U" || { fail "a test user"; done_testing; exit 1; }
mkdir -p "$T/bin" "$T/home" && chown "$U:" "$T/home"
H=$T/bin/hutch-helper
OPTS=(--helper "$H" --group "$G" --rundir "$T/run" --user "$U")
setup() { "$HUTCH" setup "${OPTS[@]}" "$@"; }

# without the helper
out=$(setup --check 2>&1); rc=$?
is "--check without the helper: exit 78" "$rc" 78
grep -q "missing: *$H" <<<"$out" && ok "... names the missing helper" || { fail "... names the missing helper"; diag "$out"; }
grep -q "missing: *the group '$G'" <<<"$out" && ok "... and the missing group" || fail "... and the missing group"
grep -q "missing: *the registry $T/run" <<<"$out" && ok "... and the missing registry" || fail "... and the missing registry"
[ ! -e "$T/run" ] && ! getent group "$G" >/dev/null && ok "--check changed nothing" || fail "--check changed nothing"
out=$(setpriv --reuid="$U" --regid="$(id -g "$U")" --clear-groups "$HUTCH" setup 2>&1); rc=$?
is "setup as a user: exit 77" "$rc" 77
grep -q "sudo hutch setup" <<<"$out" && ok "... and says to use sudo" || { fail "... and says to use sudo"; diag "$out"; }

# a user's `hutch up` of a mode nat project without the helper: exit 78, the command to run
mkdir -p "$T/proj" && printf 'name: nohelper\naccel: tcg\nkernel: {path: %s, initrd: %s}\nnetwork: {mode: nat}\n' \
	"$TINY_KERNEL" "$TINY_INITRD" >"$T/proj/hutch.yaml" &&
	printf '#cloud-config\n' >"$T/proj/cloud-init.yml" && chown -R "$U:" "$T/proj"
out=$(env HOME="$T/home" XDG_DATA_HOME="$T/home/data" XDG_CACHE_HOME="$T/home/cache" HUTCH_HELPER="$H" \
	setpriv --reuid="$U" --regid="$(id -g "$U")" --clear-groups "$HUTCH" -C "$T/proj" up 2>&1); rc=$?
is "hutch up as a user without the helper: exit 78" "$rc" 78
grep -q "run 'sudo hutch setup'" <<<"$out" && ok "... and names 'sudo hutch setup'" || { fail "... and names 'sudo hutch setup'"; diag "$out"; }
ls "$T/home/data/hutch/vms/nohelper/supervisor.log" >/dev/null 2>&1 && fail "... before any supervisor started" ||
	ok "... before any supervisor started"

# setup
cp "$HUTCH_SRC/hutch-helper" "$H"
out=$(setup 2>&1); rc=$?
[ "$rc" -eq 0 ] || [ "$rc" -eq 78 ] && ok "setup runs (exit $rc)" || { fail "setup runs (exit $rc)"; diag "$out"; }
grep -q "done: *created the group '$G'" <<<"$out" && ok "setup: group created" || { fail "setup: group created"; diag "$out"; }
grep -q "done: *added $U to the group '$G'" <<<"$out" && ok "setup: user added" || fail "setup: user added"
id -nG "$U" | grep -qw "$G" && ok "the user is in the group" || fail "the user is in the group"
is "helper: owner, group, mode" "$(stat -c '%U:%G %a' "$H")" "root:$G 750"
caps=$(getcap "$H" | sed 's/^[^ ]* //')
is "helper: file capabilities (permitted only)" "$caps" \
	"cap_dac_override,cap_setgid,cap_net_bind_service,cap_net_admin,cap_net_raw,cap_sys_admin=p"
grep -qx "rundir $T/run" "$T/bin/hutch-helper.conf" && ok "helper configuration names the run directory" ||
	fail "helper configuration names the run directory"
is "registry: owner and mode" "$(stat -c '%U %a' "$T/run/registry.json" 2>&1)" "root 600"
out2=$(setup 2>&1)
grep -q "^done:" <<<"$out2" && { fail "a second setup changes nothing"; diag "$out2"; } || ok "a second setup changes nothing"
out=$(setup --check 2>&1); rc=$?
# qemu may be missing on a CI host: only the helper's items count here
grep -q "missing:.*\($H\|group\|registry\)" <<<"$out" && { fail "--check after setup"; diag "$out"; } || ok "--check after setup: nothing of the helper's missing"
out=$("$HUTCH" --json setup "${OPTS[@]}" --check 2>/dev/null)
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert set(d) >= {"ok","done","missing","warnings"}' "$out" 2>/dev/null &&
	ok "--check --json" || { fail "--check --json"; diag "$out"; }
out=$(env HUTCH_HELPER="$H" setpriv --reuid="$U" --regid="$(id -g "$U")" --init-groups "$HUTCH_SRC/build/tests/priv_client" "$H" '{"op":"ping"}' 2>&1)
grep -q '"ok":true' <<<"$out" && ok "the helper answers the user" || { fail "the helper answers the user"; diag "$out"; }
out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$HUTCH_SRC/build/tests/priv_client" "$H" '{"op":"ping"}' 2>&1)
grep -q '"ok":true' <<<"$out" && fail "a user outside the group cannot run the helper" || ok "a user outside the group cannot run the helper"

# uninstall
out=$(setup --uninstall 2>&1); rc=$?
is "--uninstall: exit 0" "$rc" 0
is "--uninstall: no capabilities left" "$(getcap "$H")" ""
[ ! -e "$T/run/registry.json" ] && [ ! -e "$T/bin/hutch-helper.conf" ] && ok "--uninstall: registry and configuration gone" ||
	fail "--uninstall: registry and configuration gone"
getent group "$G" >/dev/null && fail "--uninstall: group gone" || ok "--uninstall: group gone"
out=$(setup --check 2>&1); rc=$?
is "--check after --uninstall: exit 78" "$rc" 78
done_testing
