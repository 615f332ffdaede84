#!/usr/bin/env bash
# The CLI's global contract: help, version, exit codes for usage errors, completions.
source "$(dirname "$0")/../lib/tap.sh"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT

out=$("$HUTCH" --version); is "--version prints the version" "${out%% *}" "hutch"
check "--help lists commands on stdout" bash -c '"$HUTCH" --help | grep -q "^  up "'
"$HUTCH" frobnicate 2>"$T/err"; is "unknown command exits 2" "$?" 2
check "unknown command names itself" grep -q "unknown command 'frobnicate'" "$T/err"
"$HUTCH" --bogus up 2>/dev/null; is "unknown global option exits 2" "$?" 2
"$HUTCH" 2>/dev/null; is "no command exits 2" "$?" 2
"$HUTCH" -C /nonexistent/dir status 2>/dev/null; is "-C to a missing directory exits 2" "$?" 2
check "help CMD describes it" bash -c '"$HUTCH" help halt | grep -q "ACPI"'
check "CMD --help describes it" bash -c '"$HUTCH" up --help | grep -q "usage: hutch up"'
"$HUTCH" --color=sometimes status 2>/dev/null; is "bad --color exits 2" "$?" 2
check "bash completion is valid bash" bash -c '"$HUTCH" completion bash > "'"$T"'/c" && bash -n "'"$T"'/c"'
check "bash completion completes verbs" bash -c 'source <("$HUTCH" completion bash); COMP_WORDS=(hutch ha); COMP_CWORD=1; _hutch; [ "${COMPREPLY[*]}" = halt ]'
check "fish completion lists up" bash -c '"$HUTCH" completion fish | grep -q "\-a up "'
check "zsh completion has #compdef" bash -c '"$HUTCH" completion zsh | head -1 | grep -q "^#compdef hutch"'
"$HUTCH" completion ksh 2>/dev/null; is "unknown shell exits 2" "$?" 2

# global options before or after the verb (issue 16): the same result either way
mkdir -p "$T/p"
printf 'name: cli-t\nkernel: {path: vmlinuz}\n' >"$T/p/hutch.yaml"; : >"$T/p/vmlinuz"
export XDG_DATA_HOME="$T/data" HOME="$T/home"
a=$("$HUTCH" -C "$T/p" --json status 2>&1); b=$("$HUTCH" status --json -C "$T/p" 2>&1)
is "status --json after the verb = before it" "$b" "$a"
jq -e '.status == "not-created"' >/dev/null 2>&1 <<<"$b" && ok "status --json of a VM never created says not-created" ||
	{ fail "status --json of a VM never created says not-created"; diag "$b"; }
check "list --json is a JSON array" bash -c '"$HUTCH" list --json | jq -e "type == \"array\"" >/dev/null'
check "list -q --json works too" bash -c '"$HUTCH" list -q --json | jq -e "length == 0" >/dev/null'
"$HUTCH" status -q -v -C "$T/p" 2>"$T/err"; is "-q with -v is a usage error" "$?" 2
"$HUTCH" -C "$T/p" status -C /tmp 2>"$T/err"; is "two different -C is a usage error" "$?" 2
"$HUTCH" status --frob -C "$T/p" 2>"$T/err"; is "an unknown verb option exits 2" "$?" 2
check "... and points at the verb's help" grep -q "hutch help status" "$T/err"
check "ssh -- keeps -v for the remote command (not parsed as global)" bash -c '"$HUTCH" -C "'"$T"'/p" ssh -- -v 2>&1 | grep -q "does not exist"'

# every verb --help lists has a real page: usage, a description, an example
verbs=$("$HUTCH" --help | awk '/^Commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 } on && /^$/ { exit }')
n=0 bad=
for v in $verbs; do
	n=$((n + 1))
	page=$("$HUTCH" help "$v" 2>&1) || bad="$bad $v(rc)"
	grep -q "^usage: hutch $v" <<<"$page" || bad="$bad $v(usage)"
	grep -q "Example" <<<"$page" || bad="$bad $v(example)"
	[ "$(wc -l <<<"$page")" -ge 12 ] || bad="$bad $v(short)"
done
[ "$n" -ge 20 ] && [ -z "$bad" ] && ok "all $n listed verbs have a help page with usage and examples" ||
	{ fail "help pages"; diag "verbs: $n, missing:$bad"; }
check "a hidden verb has no help page" bash -c '! "$HUTCH" help __supervise 2>/dev/null'
if command -v groff >/dev/null; then
	"$HUTCH" __man >"$T/hutch.1"
	w=$(groff -man -ww -z "$T/hutch.1" 2>&1)
	is "the man page renders without groff warnings" "$w" ""
	check "the man page documents every listed verb" bash -c 'for v in '"$(echo $verbs)"'; do grep -q "^\.SS \"$v" "'"$T"'/hutch.1" || exit 1; done'
else
	skip "man page" "groff is not installed"
fi

# the managed key under load: many `up`s at once in a fresh HOME (issue 16)
mkdir -p "$T/h2"
for i in $(seq 16); do HOME="$T/h2" "$HUTCH" pubkey >"$T/pk.$i" 2>"$T/pke.$i" & done
wait
is "16 pubkey at once: one key, the same for all" "$(cat "$T"/pk.* | sort -u | wc -l)" 1
is "... created once" "$(cat "$T"/pke.* | grep -c created)" 1
check "... and no ssh-keygen prompt or error" bash -c '! grep -qi "overwrite\|error" "'"$T"'"/pke.*'
# make install: the binary and the recipes land under DESTDIR/PREFIX, and the
# installed hutch finds its recipes there (images build looks in DATADIR)
if make -s -C "$HUTCH_SRC" install PREFIX=/usr DESTDIR="$T/inst" >"$T/inst.log" 2>&1; then
	ok "make install PREFIX=/usr DESTDIR=..."
	out=$("$T/inst/usr/bin/hutch" --version); is "installed hutch runs" "${out%% *}" "hutch"
	check "recipes installed" test -x "$T/inst/usr/share/hutch/recipes/debian-12.sh"
	check "man page installed" test -s "$T/inst/usr/share/man/man1/hutch.1"
	check "completions installed (bash, zsh, fish)" test -s "$T/inst/usr/share/bash-completion/completions/hutch" -a -s "$T/inst/usr/share/zsh/site-functions/_hutch" -a -s "$T/inst/usr/share/fish/vendor_completions.d/hutch.fish"
	# a recipe that fails at once: proves the installed hutch found the installed recipes dir
	cp "$T/inst/usr/share/hutch/recipes/debian-12.sh" "$T/keep.sh"
	printf '#!/bin/sh\necho "recipe from $0" >&2\nexit 3\n' >"$T/inst/usr/share/hutch/recipes/debian-12.sh"
	env -u HUTCH_RECIPES XDG_CACHE_HOME="$T/cache" "$T/inst/usr/bin/hutch" images build debian-12 2>"$T/build.err"
	check "installed hutch runs the installed recipes" grep -q "recipe from $T/inst/usr/bin/../share/hutch/recipes/debian-12.sh" "$T/build.err"
	check "make uninstall removes them" bash -c 'make -s -C "$HUTCH_SRC" uninstall PREFIX=/usr DESTDIR="'"$T"'/inst" && [ ! -e "'"$T"'/inst/usr/bin/hutch" ] && [ ! -e "'"$T"'/inst/usr/share/hutch" ] && [ ! -e "'"$T"'/inst/usr/share/man/man1/hutch.1" ]'
else
	fail "make install PREFIX=/usr DESTDIR=..."; sed 's/^/#   /' "$T/inst.log" | tail -5
fi
done_testing
