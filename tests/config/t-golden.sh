#!/usr/bin/env bash
# Golden tests of `hutch check-config`:
#   bad/NAME.yaml   must fail with exit 2 (or the code in bad/NAME.rc: 77 for a
#                   path the project may not name) and exactly the stderr of
#                   bad/NAME.expected (the file is named relative to bad/, so
#                   messages are stable);
#   good/NAME.yaml  must pass, print good/NAME.out (the source tree shown as @SRC@),
#                   warn exactly good/NAME.err on stderr when that file exists,
#                   and that printed config must load again to the same output;
#   user-bad/NAME.yaml  as the user's ~/.config/hutch/config.yaml, must make
#                   check-config fail with exit 2 and user-bad/NAME.expected
#                   (the config's path shown as @CFG@).
# The user config of these runs is ours: it allows tests/config/ (so good/vms
# may share ../shared, and printed configs load again from elsewhere).
# UPDATE=1 rewrites the .expected/.out/.err files from the current binary (review the diff!).
source "$(dirname "$0")/../lib/tap.sh"
cd "$HUTCH_SRC/tests/config" || exit 1
if [ ! -x "$HUTCH" ]; then
	fail "hutch is built ($HUTCH)"; done_testing; exit 1
fi
tmp=$(mktemp -d /tmp/hutch-cfg-golden.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export HOME=$tmp/home XDG_CONFIG_HOME=$tmp/config
unset HUTCH_ALLOW_PATHS
mkdir -p "$HOME" "$XDG_CONFIG_HOME/hutch"
printf 'allow_paths: [%s/tests/config]\n' "$HUTCH_SRC" >"$XDG_CONFIG_HOME/hutch/config.yaml"

for y in bad/*.yaml; do
	n=$(basename "$y" .yaml)
	err=$(cd bad && "$HUTCH" check-config "$n.yaml" 2>&1 >"$tmp/stdout")
	rc=$?
	want_rc=$(cat "bad/$n.rc" 2>/dev/null || echo 2)
	[ "${UPDATE:-}" = 1 ] && printf '%s\n' "$err" >"bad/$n.expected"
	if [ "$rc" -ne "$want_rc" ]; then
		fail "bad/$n: exit $want_rc (got $rc)"; diag "$err"; continue
	fi
	if [ -s "$tmp/stdout" ]; then
		fail "bad/$n: nothing on stdout"; continue
	fi
	want=$(cat "bad/$n.expected" 2>/dev/null)
	if [ "$err" = "$want" ]; then
		ok "bad/$n: $(printf '%s' "$err" | sed 's/^hutch: error: [^ ]* //')"
	else
		fail "bad/$n: stderr as expected"; diag "got:  $err"; diag "want: $want"
	fi
done

for y in good/*.yaml; do
	n=$(basename "$y" .yaml)
	if ! "$HUTCH" check-config "$y" >"$tmp/$n.out" 2>"$tmp/$n.err"; then
		fail "good/$n passes"; sed 's/^/#   /' "$tmp/$n.err"; continue
	fi
	if [ -s "$tmp/$n.err" ] || [ -f "good/$n.err" ]; then
		[ "${UPDATE:-}" = 1 ] && cp "$tmp/$n.err" "good/$n.err"
		if cmp -s "$tmp/$n.err" "good/$n.err"; then
			ok "good/$n warns as good/$n.err says"
		else
			fail "good/$n: stderr"; diff "good/$n.err" "$tmp/$n.err" | head -10 | sed 's/^/#   /'
		fi
	fi
	sed "s|$HUTCH_SRC|@SRC@|g" "$tmp/$n.out" >"$tmp/$n.norm"
	[ "${UPDATE:-}" = 1 ] && cp "$tmp/$n.norm" "good/$n.out"
	if cmp -s "$tmp/$n.norm" "good/$n.out"; then
		ok "good/$n passes and prints the resolved config"
	else
		fail "good/$n prints good/$n.out"; diff "good/$n.out" "$tmp/$n.norm" | head -20 | sed 's/^/#   /'
	fi
	# the printed config is absolute, so it loads the same from anywhere
	mkdir -p "$tmp/rt-$n"
	cp "$tmp/$n.out" "$tmp/rt-$n/hutch.yaml"
	if (cd "$tmp/rt-$n" && "$HUTCH" check-config) >"$tmp/$n.again" 2>"$tmp/$n.again.err" &&
		cmp -s "$tmp/$n.out" "$tmp/$n.again"; then
		ok "good/$n: printed config loads again to the same config"
	else
		fail "good/$n: round trip"; diff "$tmp/$n.out" "$tmp/$n.again" | head -20 | sed 's/^/#   /'
	fi
done

for y in user-bad/*.yaml; do
	n=$(basename "$y" .yaml)
	mkdir -p "$tmp/u-$n/hutch"
	cp "$y" "$tmp/u-$n/hutch/config.yaml"
	err=$(XDG_CONFIG_HOME=$tmp/u-$n "$HUTCH" check-config good/minimal.yaml 2>&1 >/dev/null)
	rc=$?
	err=$(printf '%s' "$err" | sed "s|$tmp/u-$n/hutch/config.yaml|@CFG@|g")
	[ "${UPDATE:-}" = 1 ] && printf '%s\n' "$err" >"user-bad/$n.expected"
	if [ "$rc" = 2 ] && [ "$err" = "$(cat "user-bad/$n.expected" 2>/dev/null)" ]; then
		ok "user-bad/$n: $(printf '%s' "$err" | sed 's/^hutch: error: [^ ]* //')"
	else
		fail "user-bad/$n (exit $rc)"; diag "got:  $err"; diag "want: $(cat "user-bad/$n.expected")"
	fi
done

# the CLI around it
mkdir -p "$tmp/proj"
printf 'name: demo\nimage: ./disk.qcow2\n' >"$tmp/proj/hutch.yaml"
out=$("$HUTCH" -C "$tmp/proj" check-config 2>&1)
is "-C DIR: default file is DIR/hutch.yaml, paths resolved against it" \
	"$(printf '%s\n' "$out" | grep '^image:')" "image: $tmp/proj/disk.qcow2"
out=$(cd / && HUTCH_DIR="$tmp/proj" "$HUTCH" check-config 2>&1)
is "HUTCH_DIR: default file is \$HUTCH_DIR/hutch.yaml" "$(printf '%s\n' "$out" | head -1)" "name: demo"
out=$(cd "$tmp/proj" && "$HUTCH" check-config 2>&1)
is "no argument: ./hutch.yaml" "$(printf '%s\n' "$out" | head -1)" "name: demo"

for form in "--json check-config" "check-config --json"; do
	# shellcheck disable=SC2086
	if "$HUTCH" -C "$tmp/proj" $form >"$tmp/json" 2>"$tmp/json.err" &&
		python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
v = d["vms"][0]
assert d["path"] == sys.argv[2] + "/hutch.yaml", d["path"]
assert v["name"] == "demo" and v["cpus"] == 2 and v["memory"] == 2048
assert v["image"] == sys.argv[2] + "/disk.qcow2"
assert v["kernel"]["path"] is None and v["network"]["mode"] == "nat"
assert v["timeouts"] == {"boot": 300, "ssh": 300, "cloud_init": 1800, "shutdown": 60}
' "$tmp/json" "$tmp/proj"; then
		ok "hutch $form: the resolved config as JSON"
	else
		fail "hutch $form"; sed 's/^/#   /' "$tmp/json" "$tmp/json.err" | head -20
	fi
done

err=$("$HUTCH" -C "$tmp" check-config 2>&1 >/dev/null); rc=$?
if [ "$rc" = 2 ] && printf '%s' "$err" | grep -q "$tmp/hutch.yaml: cannot read: No such file" &&
	printf '%s' "$err" | grep -q 'hint: create hutch.yaml'; then
	ok "missing hutch.yaml: exit 2, the path, a hint"
else
	fail "missing hutch.yaml (rc $rc)"; diag "$err"
fi
head -c 1100000 /dev/zero | tr '\0' '#' >"$tmp/big.yaml"
err=$("$HUTCH" check-config "$tmp/big.yaml" 2>&1 >/dev/null); rc=$?
if [ "$rc" = 2 ] && printf '%s' "$err" | grep -q 'larger than'; then
	ok "a file over 1 MiB is refused before parsing"
else
	fail "big file (rc $rc)"; diag "$err"
fi
err=$("$HUTCH" check-config --bogus 2>&1); rc=$?
is "unknown option: exit 2" "$rc" 2
err=$("$HUTCH" check-config a.yaml b.yaml 2>&1); rc=$?
is "two files: exit 2" "$rc" 2
done_testing
