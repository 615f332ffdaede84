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
# make install: the binary and the recipes land under DESTDIR/PREFIX, and the
# installed hutch finds its recipes there (images build looks in DATADIR)
if make -s -C "$HUTCH_SRC" install PREFIX=/usr DESTDIR="$T/inst" >"$T/inst.log" 2>&1; then
	ok "make install PREFIX=/usr DESTDIR=..."
	out=$("$T/inst/usr/bin/hutch" --version); is "installed hutch runs" "${out%% *}" "hutch"
	check "recipes installed" test -x "$T/inst/usr/share/hutch/recipes/debian-12.sh"
	# a recipe that fails at once: proves the installed hutch found the installed recipes dir
	cp "$T/inst/usr/share/hutch/recipes/debian-12.sh" "$T/keep.sh"
	printf '#!/bin/sh\necho "recipe from $0" >&2\nexit 3\n' >"$T/inst/usr/share/hutch/recipes/debian-12.sh"
	env -u HUTCH_RECIPES XDG_CACHE_HOME="$T/cache" "$T/inst/usr/bin/hutch" images build debian-12 2>"$T/build.err"
	check "installed hutch runs the installed recipes" grep -q "recipe from $T/inst/usr/bin/../share/hutch/recipes/debian-12.sh" "$T/build.err"
	check "make uninstall removes them" bash -c 'make -s -C "$HUTCH_SRC" uninstall PREFIX=/usr DESTDIR="'"$T"'/inst" && [ ! -e "'"$T"'/inst/usr/bin/hutch" ] && [ ! -e "'"$T"'/inst/usr/share/hutch" ]'
else
	fail "make install PREFIX=/usr DESTDIR=..."; sed 's/^/#   /' "$T/inst.log" | tail -5
fi
done_testing
