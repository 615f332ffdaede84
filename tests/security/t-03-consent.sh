#!/usr/bin/env bash
# Issue 15.3: code from a cloned project runs on the host only after the
# user allowed it.  hooks/*, playbook.yml (a `hosts: localhost` play runs on
# the host) and the project's ansible.cfg are refused (exit 77, with the
# list of what would run) until `hutch allow` recorded their sha256; a
# changed file asks again; --yes is the scripted answer.  Ansible is pinned
# to hutch's own config and inventory: `hosts: localhost`, `connection:
# local`, `delegate_to: localhost` and a project ansible.cfg never reach the
# host, and Jinja in hutch.yaml values is refused.  No guest is booted: up
# stops at the pre-up hook (which fails on purpose), provision talks to a
# port where nothing listens.
source "$(dirname "$0")/../lib/tap.sh"
T=$(mktemp -d /tmp/hutch-sec03.XXXXXX)
SRV=
trap '[ -n "$SRV" ] && kill "$SRV" 2>/dev/null; rm -rf "$T"' EXIT
export HOME=$T/home XDG_CONFIG_HOME=$T/config XDG_DATA_HOME=$T/data XDG_CACHE_HOME=$T/cache
unset HUTCH_ALLOW_PATHS
mkdir -p "$HOME" "$T/p/hooks"
P=$T/p M=$T/marks
mkdir -p "$M"
# hooks run as the user hutch runs them as (hutch-vm under plain root, see
# tests/security/t-03-hooks-not-root.sh): it must reach the project and the marks
chmod 0755 "$T" "$P" "$P/hooks"
chmod 0777 "$M"
: >"$P/k"
printf 'name: c3\nkernel: {path: ./k}\nnetwork: {mode: none}\n' >"$P/hutch.yaml"
printf '#!/bin/sh\ntouch %s/pre-up\nexit 3\n' "$M" >"$P/hooks/pre-up"
chmod +x "$P/hooks/pre-up"

# --- hooks ---------------------------------------------------------------
"$HUTCH" -C "$P" up </dev/null >"$T/out" 2>&1; rc=$?
is "up without consent: exit 77" "$rc" 77
if [ ! -e "$M/pre-up" ]; then ok "the hook did not run"; else fail "the hook ran without consent"; fi
is "the refusal is the only error (no errno line after it)" "$(grep -c 'Operation not permitted' "$T/out")" 0
if grep -q 'hooks/pre-up' "$T/out" && grep -q 'hutch allow' "$T/out"; then
	ok "up lists what would run and how to allow it"
else
	fail "up's refusal lists hooks/pre-up and 'hutch allow'"; sed 's/^/# /' "$T/out"
fi
[ ! -d "$XDG_DATA_HOME/hutch/vms/c3" ] && ok "nothing was created" || fail "a VM dir was created"

"$HUTCH" -C "$P" allow >"$T/out" 2>&1; rc=$?
is "hutch allow: exit 0" "$rc" 0
grep -q 'hooks/pre-up' "$T/out" && ok "hutch allow lists the hook" || { fail "allow lists"; sed 's/^/# /' "$T/out"; }
"$HUTCH" -C "$P" up </dev/null >"$T/out" 2>&1; rc=$?
if [ -e "$M/pre-up" ] && [ "$rc" != 77 ] && [ "$rc" != 0 ]; then
	ok "after allow the hook runs (and its failure aborts up, exit $rc)"
else
	fail "hook after allow (exit $rc)"; sed 's/^/# /' "$T/out"
fi
rm -f "$M/pre-up"

printf '#!/bin/sh\ntouch %s/pre-up-changed\nexit 3\n' "$M" >"$P/hooks/pre-up"
"$HUTCH" -C "$P" up </dev/null >"$T/out" 2>&1; rc=$?
is "a changed hook: exit 77 again" "$rc" 77
grep -q 'changed' "$T/out" && ok "the refusal says it changed" || { fail "says changed"; sed 's/^/# /' "$T/out"; }
[ ! -e "$M/pre-up-changed" ] && ok "the changed hook did not run" || fail "changed hook ran"
"$HUTCH" --yes -C "$P" up </dev/null >"$T/out" 2>&1; rc=$?
if [ -e "$M/pre-up-changed" ] && [ "$rc" != 77 ]; then ok "--yes allows and runs it"; else fail "--yes (exit $rc)"; sed 's/^/# /' "$T/out"; fi
rm -rf "$XDG_DATA_HOME/hutch/vms"

# on a terminal, up asks; "n" refuses, "y" allows (and records it)
if command -v script >/dev/null; then
	"$HUTCH" -C "$P" allow --revoke >/dev/null 2>&1
	rm -f "$M"/*
	printf 'n\n' | script -qec "$HUTCH -C $P up" /dev/null >"$T/out" 2>&1
	if grep -q 'Allow this code to run on this host' "$T/out" && [ -z "$(ls "$M")" ]; then
		ok "on a terminal: up asks, and 'n' runs nothing"
	else
		fail "terminal, n"; sed 's/^/# /' "$T/out"
	fi
	printf 'y\n' | script -qec "$HUTCH -C $P up" /dev/null >"$T/out" 2>&1
	if [ -e "$M/pre-up-changed" ]; then ok "on a terminal: 'y' allows and runs it"; else fail "terminal, y"; sed 's/^/# /' "$T/out"; fi
	"$HUTCH" -C "$P" up </dev/null >"$T/out" 2>&1; rc=$?
	if [ "$rc" != 77 ]; then ok "the terminal's 'y' was recorded"; else fail "terminal y not recorded"; fi
	rm -rf "$XDG_DATA_HOME/hutch/vms"
fi
rm -rf "$P/hooks" "$XDG_DATA_HOME/hutch/vms"

# a hook added after consent is new code: refused
"$HUTCH" -C "$P" allow >/dev/null 2>&1
mkdir -p "$P/hooks"
printf '#!/bin/sh\ntouch %s/post-down\n' "$M" >"$P/hooks/post-down"
chmod +x "$P/hooks/post-down"
"$HUTCH" -C "$P" up </dev/null >"$T/out" 2>&1; rc=$?
is "a new hook after allow: exit 77" "$rc" 77
rm -rf "$P/hooks" "$XDG_DATA_HOME/hutch/vms"

# --- consent comes before the image download ------------------------------
# a declined project costs nothing: the image it names is not fetched (a
# tracking beacon, gigabytes for nothing), no disk or VM dir is made
: >"$T/srvlog"
# any connection at all is logged (the image URL is https: no TLS needed to see it)
python3 -c '
import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(8)
open(sys.argv[1] + ".tmp", "w").write("%d\n" % s.getsockname()[1])
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
while True:
    c, _ = s.accept()
    open(sys.argv[2], "a").write("connection\n")
    c.close()
' "$T/port" "$T/srvlog" 2>"$T/srv.err" &
SRV=$!
wait_until 120 test -s "$T/port"
Q=$T/q
mkdir -p "$Q/hooks"
chmod 0755 "$Q" "$Q/hooks"
printf 'name: c3img\nimage: https://127.0.0.1:%s/base.qcow2\nnetwork: {mode: none}\n' "$(cat "$T/port")" >"$Q/hutch.yaml"
printf '#!/bin/sh\ntouch %s/img-pre-up\nexit 3\n' "$M" >"$Q/hooks/pre-up"
chmod +x "$Q/hooks/pre-up"
"$HUTCH" -C "$Q" up </dev/null >"$T/out" 2>&1; rc=$?
is "an image project without consent: exit 77" "$rc" 77
is "no request reached the image's server" "$(wc -l <"$T/srvlog" 2>/dev/null | tr -d ' ')" 0
if [ -z "$(ls "$XDG_CACHE_HOME/hutch/images" 2>/dev/null)" ] && [ ! -d "$XDG_DATA_HOME/hutch/vms/c3img" ]; then
	ok "nothing in the image cache, no VM dir"
else
	fail "a declined up left files"; ls -R "$XDG_CACHE_HOME" "$XDG_DATA_HOME/hutch/vms" 2>&1 | sed 's/^/# /'
fi
[ ! -e "$M/img-pre-up" ] && ok "the image project's hook did not run" || fail "hook ran"
kill "$SRV" 2>/dev/null; wait "$SRV" 2>/dev/null; SRV=
rm -rf "$Q" "$M"/*

# --- playbook.yml, ansible.cfg: pinned and consented ---------------------
rm -f "$M"/*
VD=$XDG_DATA_HOME/hutch/vms/c3
fake_running() {
	mkdir -p "$VD/ssh"
	ssh-keygen -q -t ed25519 -N '' -C hutch-c3 -f "$VD/ssh/host_ed25519"
	echo "hutch-c3 $(cut -d' ' -f1,2 "$VD/ssh/host_ed25519.pub")" >"$VD/ssh/known_hosts"
	printf '{"name":"c3","project":"%s","status":"running","ssh":{"host":"127.0.0.1","port":9}}\n' "$P" >"$VD/state.json"
}
if ! command -v ansible-playbook >/dev/null; then
	skip "playbook pinning" "ansible-playbook is not installed"
else
	fake_running
	cat >"$P/playbook.yml" <<Y
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.file: {path: "$M/localhost-play", state: touch}
- hosts: all
  gather_facts: false
  ignore_errors: true
  ignore_unreachable: true
  tasks:
    - ansible.builtin.file: {path: "$M/delegated", state: touch}
      delegate_to: localhost
    - ansible.builtin.file: {path: "$M/delegated-ip", state: touch}
      delegate_to: 127.0.0.1
- hosts: all
  gather_facts: false
  connection: local
  ignore_errors: true
  ignore_unreachable: true
  tasks:
    - ansible.builtin.file: {path: "$M/connection-local", state: touch}
Y
	mkdir -p "$P/cb"
	printf '[defaults]\ncallback_plugins = ./cb\ncallbacks_enabled = evil\n' >"$P/ansible.cfg"
	printf 'import os\nopen("%s/ansible-cfg", "w").close()\nfrom ansible.plugins.callback import CallbackBase\nclass CallbackModule(CallbackBase):\n    CALLBACK_NAME = "evil"\n' "$M" >"$P/cb/evil.py"
	"$HUTCH" -C "$P" provision </dev/null >"$T/out" 2>&1; rc=$?
	is "provision without consent: exit 77" "$rc" 77
	if grep -q 'playbook.yml' "$T/out" && grep -q 'ansible.cfg' "$T/out"; then
		ok "the refusal lists playbook.yml and ansible.cfg"
	else
		fail "refusal lists playbook.yml and ansible.cfg"; sed 's/^/# /' "$T/out"
	fi
	[ -z "$(ls "$M")" ] && ok "nothing ran" || { fail "something ran"; ls "$M" | sed 's/^/# /'; }
	"$HUTCH" -C "$P" allow >/dev/null 2>&1
	"$HUTCH" -C "$P" provision </dev/null >"$T/out" 2>&1; rc=$?
	diag "provision after allow: exit $rc (the VM is not there: failure expected)"
	for m in localhost-play connection-local delegated delegated-ip ansible-cfg; do
		if [ ! -e "$M/$m" ]; then ok "pinned Ansible: $m did not run on the host"; else fail "$m ran on the host"; fi
	done
	sed 's/^/# /' "$XDG_DATA_HOME/hutch/vms/c3/provision.log" 2>/dev/null | tail -30
	rm -f "$P/playbook.yml" "$P/ansible.cfg"
	rm -rf "$P/cb" "$M"/*
fi

# --- Jinja in values that reach Ansible -----------------------------------
# the key file exists under that very name, so only the template stops it
J="{{ lookup('pipe', 'touch jinja') }}"
ssh-keygen -q -t ed25519 -N '' -C x -f "$P/$J"
printf 'name: c3\nkernel: {path: ./k}\nnetwork: {mode: none}\nssh: {key: "./%s"}\n' "$J" >"$P/hutch.yaml"
err=$("$HUTCH" -C "$P" check-config 2>&1); rc=$?
if [ "$rc" = 2 ] && printf '%s' "$err" | grep -q "ssh.key.*template"; then
	ok "check-config refuses Jinja in ssh.key"
else
	fail "Jinja in ssh.key (exit $rc)"; diag "$err"
fi
if command -v ansible-playbook >/dev/null; then
	printf -- '- hosts: all\n  gather_facts: false\n  tasks:\n    - ansible.builtin.ping:\n' >"$P/playbook.yml"
	"$HUTCH" -C "$P" allow >/dev/null 2>&1; "$HUTCH" -C "$P" provision </dev/null >"$T/out" 2>&1
	if [ ! -e "$P/jinja" ]; then
		ok "provision: the lookup in ssh.key did not run"
	else
		fail "the lookup in ssh.key ran on the host"; sed 's/^/# /' "$T/out"
	fi
fi
done_testing
