#!/usr/bin/env bash
# hutch-helper's userns_map (issue 10: virtiofsd as a user who has
# supplementary groups).  The helper writes "0 <uid> 1" into both maps of a
# fresh user namespace, leaving setgroups allowed, with CAP_SETGID.  Users A
# and B (B in a second, supplementary group) and a test copy of the helper
# (tests/lib/priv.sh); priv_client makes the processes (tests/helpers).
#  - B's own child: mapped to B's uid and gid; the child may then drop its
#    supplementary groups (setgroups works), which it could not with a map
#    it wrote itself;
#  - refused, each with its reason, the helper still answering afterwards:
#    a process that is not the caller's child, a process of another user, a
#    child still in the initial user namespace, a child whose maps were
#    written already, a namespace two levels down, a dead (reaped) pid, a
#    malformed pid.  No mapping request changes a map it refused.
set -u
source "$(dirname "$0")/../lib/tap.sh"
source "$HUTCH_SRC/tests/lib/priv.sh"
if [ "$(id -u)" -ne 0 ]; then skip "hutch-helper userns_map" "needs root"; done_testing; exit 0; fi
for t in setpriv useradd unshare python3; do
	command -v $t >/dev/null || { skip "hutch-helper userns_map" "$t missing"; done_testing; exit 0; }
done
CLIENT=$HUTCH_SRC/build/tests/priv_client
[ -x "$HUTCH_SRC/hutch-helper" ] && [ -x "$CLIENT" ] ||
	{ skip "hutch-helper userns_map" "make hutch-helper unit first"; done_testing; exit 0; }
if ! unshare -U true 2>/dev/null; then skip "hutch-helper userns_map" "no user namespaces"; done_testing; exit 0; fi

T=$(mktemp -d /tmp/privu.XXXXXX)
UA=htua$$ UB=htub$$ XG=htux$$ PIDS=() OTHER= APID=
chmod 755 "$T"
cleanup() {
	for p in "${PIDS[@]}" ${OTHER:-} ${APID:-}; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	priv_fini
	getent group "$XG" >/dev/null && groupdel "$XG" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
priv_start "$T/priv" "$UA" "$UB"
groupadd "$XG" && usermod -aG "$XG" "$UB" || { fail "a supplementary group for B"; done_testing; exit 1; }
ok "two users (B with a supplementary group), a helper copy with CAP_SETGID"
UIDB=$(id -u "$UB") GIDB=$(id -g "$UB")

client() { local u=$1; shift; as_user "$u" "$CLIENT" "$HUTCH_HELPER" "$@"; }

# the positive case: B's child, mapped by the helper
out=$(client "$UB" @map:child 2>&1)
grep -q '"ok":true' <<<"$out" && ok "B's child in a new user namespace is mapped" ||
	{ fail "B's child in a new user namespace is mapped"; diag "$out"; }
child=$(grep '^child:' <<<"$out" | tr -s ' ')
[[ $child == *"uid_map= 0 $UIDB 1 "* ]] && ok "uid_map is 0 -> B's uid, one id" ||
	{ fail "uid_map is 0 -> B's uid, one id"; diag "$child"; }
[[ $child == *"gid_map= 0 $GIDB 1 "* ]] && ok "gid_map is 0 -> B's primary gid, one id" ||
	{ fail "gid_map is 0 -> B's primary gid, one id"; diag "$child"; }
[[ $child == *"setgroups=ok groups=0"* ]] && ok "the child may drop its supplementary groups" ||
	{ fail "the child may drop its supplementary groups"; diag "$child"; }
# what a self-written map gives instead (the reason for the operation)
out=$(as_user "$UB" unshare -U --map-root-user sh -c 'cat /proc/self/setgroups' 2>&1)
is "a map the user writes itself denies setgroups" "$out" deny

# attack REASON EXPECTED-TEXT ARG: refused with EXPECTED-TEXT, and a ping on
# the same connection still answers (the helper stays up)
attack() {
	local out
	out=$(client "$UB" "$3" '{"op":"ping"}' 2>&1)
	if grep -q '"ok":false' <<<"$out" && grep -qF -- "$2" <<<"$out"; then
		ok "refused: $1"
	else
		fail "refused: $1"; diag "reply: $out"
	fi
	[ "$(grep -c '"ok":true' <<<"$out")" = 1 ] && grep -q '"uid":' <<<"$out" &&
		ok "the helper still answers after: $1" || fail "the helper still answers after: $1"
}
# a process of B's that B started elsewhere: B owns it and its namespace,
# but it is not the caller's child
as_user "$UB" unshare -U sleep 600 &
PIDS+=($!)
for _ in $(seq 100); do OTHER=$(pgrep -u "$UB" -x sleep | head -n1); [ -n "$OTHER" ] && break; sleep 0.1; done
# A's process in a fresh namespace of A's own, maps empty
as_user "$UA" unshare -U sleep 600 &
PIDS+=($!)
for _ in $(seq 100); do APID=$(pgrep -u "$UA" -x sleep | head -n1); [ -n "$APID" ] && break; sleep 0.1; done
[ -n "$OTHER" ] && [ -n "$APID" ] || fail "processes to aim at"
before_other=$(cat "/proc/$OTHER/uid_map" "/proc/$OTHER/gid_map" 2>&1)
before_a=$(cat "/proc/$APID/uid_map" "/proc/$APID/gid_map" 2>&1)

attack "a process of B's that is not the caller's child" "is not a child of the caller" \
	"{\"op\":\"userns_map\",\"pid\":$OTHER}"
attack "a grandchild (its parent is not the caller)" "is not a child of the caller" @map:grandchild
attack "a process of another user" "runs as uid $(id -u "$UA"), not as the caller" \
	"{\"op\":\"userns_map\",\"pid\":$APID}"
attack "a root process (this test)" "runs as uid 0, not as the caller" "{\"op\":\"userns_map\",\"pid\":$$}"
attack "a child still in the initial user namespace" "in hutch-helper's own user namespace" @map:initns
attack "a child whose maps are written already" "already has its maps" @map:written
attack "a namespace two levels down" "is not a child of hutch-helper's" @map:nested
attack "a dead (reaped) pid" "no such process" @map:dead
attack "a pid that is a string" "'pid' must be a process id" '{"op":"userns_map","pid":"1"}'
attack "pid 0" "'pid' must be a process id" '{"op":"userns_map","pid":0}'
attack "a map of B's choosing" "unknown key 'map'" \
	'{"op":"userns_map","pid":2,"map":"0 0 4294967295"}'
is "the refused processes' maps are unchanged (B's other process)" \
	"$(cat "/proc/$OTHER/uid_map" "/proc/$OTHER/gid_map" 2>&1)" "$before_other"
is "... and A's" "$(cat "/proc/$APID/uid_map" "/proc/$APID/gid_map" 2>&1)" "$before_a"
done_testing
