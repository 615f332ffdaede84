#!/usr/bin/env bash
# Issue 15.6: the image cache and the data dir are hutch's own.  The attacks:
# a cache under a folder another user can write (they could swap images), a
# cached image that is a symlink to another file, a cached image and its
# `.verified` record written by someone else (the record would let a
# tampered image through unhashed).  And the dirs hutch creates are 0700.
source "$(dirname "$0")/../lib/tap.sh"
T=$(mktemp -d /tmp/hutch-sec06.XXXXXX)
trap 'rm -rf "$T"' EXIT
export HOME=$T/home XDG_CONFIG_HOME=$T/config XDG_DATA_HOME=$T/data XDG_CACHE_HOME=$T/cache
mkdir -p "$HOME" "$T/p"
chmod 755 "$T"
if ! command -v qemu-img >/dev/null; then skip "cache checks" "no qemu-img"; done_testing; exit 0; fi

# a fake cached alias: a small qcow2 with the records hutch writes
plant() {	# plant CACHE-IMAGES-DIR
	local d=$1 f=$1/debian-12.qcow2 s
	mkdir -p "$d"
	qemu-img create -q -f qcow2 "$f" 16M
	s=$(sha256sum "$f" | cut -d' ' -f1)
	printf '%s  debian-12.qcow2\n' "$s" >"$f.sha256"
	printf 'source=recipe:test\n' >"$f.source"
	printf '%s %s %s\n' "$(stat -c %s "$f")" "$(stat -c %Y "$f")" \
		"$(stat -c %y "$f" | sed 's/.*\.\([0-9]*\) .*/\1/' | sed 's/^0*//;s/^$/0/')" >"$f.verified"
}
pull() { "$HUTCH" -C "$T/p" images pull debian-12 >"$T/out" 2>&1; }

# sanity: a cache that is ours resolves without the network
plant "$XDG_CACHE_HOME/hutch/images"
if pull; then ok "a cached alias in a private cache resolves"; else fail "baseline pull"; sed 's/^/# /' "$T/out"; fi

if [ "$(id -u)" != 0 ]; then
	skip "foreign owners" "needs root to chown"; done_testing; exit 0
fi

# 1. the cache lives under a folder that another user owns and can write
rm -rf "$XDG_CACHE_HOME"
mkdir -p "$T/shared"
chown nobody "$T/shared"
chmod 777 "$T/shared"
export XDG_CACHE_HOME=$T/shared/cache
plant "$XDG_CACHE_HOME/hutch/images"
pull; rc=$?
if [ "$rc" != 0 ] && grep -q "$T/shared" "$T/out" && grep -qi 'writable\|owned' "$T/out"; then
	ok "a cache below a folder others can write is refused (exit $rc)"
else
	fail "cache below a foreign, world-writable folder (exit $rc)"; sed 's/^/# /' "$T/out"
fi
export XDG_CACHE_HOME=$T/cache
rm -rf "$XDG_CACHE_HOME"

# 2. the cached image is a symlink (with records that match its target)
mkdir -p "$T/elsewhere"
plant "$T/elsewhere"
mkdir -p "$XDG_CACHE_HOME/hutch/images"
C=$XDG_CACHE_HOME/hutch/images
ln -s "$T/elsewhere/debian-12.qcow2" "$C/debian-12.qcow2"
for e in sha256 source verified; do cp "$T/elsewhere/debian-12.qcow2.$e" "$C/debian-12.qcow2.$e"; done
pull; rc=$?
if [ "$rc" != 0 ] && grep -qi 'symbolic link\|symlink' "$T/out"; then
	ok "a cached image that is a symlink is refused (exit $rc)"
else
	fail "symlinked cache entry (exit $rc)"; sed 's/^/# /' "$T/out"
fi
rm -rf "$C"

# 3. someone else wrote the image and a matching .verified: the image was
#    swapped after the sha256 was recorded; only hashing would tell
plant "$C"
qemu-img create -q -f qcow2 "$T/evil.qcow2" 32M
cp "$T/evil.qcow2" "$C/debian-12.qcow2"
f=$C/debian-12.qcow2
printf '%s %s %s\n' "$(stat -c %s "$f")" "$(stat -c %Y "$f")" \
	"$(stat -c %y "$f" | sed 's/.*\.\([0-9]*\) .*/\1/' | sed 's/^0*//;s/^$/0/')" >"$f.verified"
chown nobody "$f" "$f.verified"
pull; rc=$?
if [ "$rc" != 0 ]; then
	ok "an image and record written by another user are not trusted (exit $rc)"
else
	fail "foreign .verified let a swapped image through"; sed 's/^/# /' "$T/out"
fi
# the same swap by the user themselves is caught only if the record is not
# trusted blindly either: the user's own .verified for a different file
chown root "$f"
chown nobody "$f.verified"
pull; rc=$?
if [ "$rc" != 0 ] && grep -q 'changed' "$T/out"; then
	ok "a .verified someone else wrote is ignored: the image is hashed and the swap found"
else
	fail "foreign .verified trusted (exit $rc)"; sed 's/^/# /' "$T/out"
fi
rm -rf "$XDG_CACHE_HOME"

# 4. what hutch creates is private: cache and data dirs 0700
HUTCH_ALLOW_HTTP_LOCAL=1 "$HUTCH" -C "$T/p" images pull http://127.0.0.1:9/x.qcow2 >/dev/null 2>&1
m=$(stat -c %a "$XDG_CACHE_HOME/hutch/images" 2>/dev/null)
is "the image cache is created 0700" "$m" 700
m=$(stat -c %a "$XDG_CACHE_HOME/hutch" 2>/dev/null)
is "the cache's hutch dir is created 0700" "$m" 700
done_testing
