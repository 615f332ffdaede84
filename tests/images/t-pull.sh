#!/usr/bin/env bash
# Downloads into the image cache from a local HTTP server (tests/images/
# range_server.py): sha256 checks, resume with Range, servers that ignore
# Range, decompression, refusals (backing files, http, redirects, size cap),
# aliases with their checksum files through HUTCH_IMAGES_MIRROR, and the
# offline use of a cached alias.
source "$(dirname "$0")/../lib/tap.sh"
T=$(mktemp -d /tmp/images-pull.XXXXXX)
SRV_PID=
cleanup() { [ -n "$SRV_PID" ] && kill "$SRV_PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
export XDG_CACHE_HOME=$T/cache XDG_DATA_HOME=$T/data HUTCH_ALLOW_HTTP_LOCAL=1
unset HUTCH_IMAGES_MIRROR HUTCH_IMAGES_MAX_BYTES
C=$XDG_CACHE_HOME/hutch/images
TOOL=$HUTCH_SRC/build/tests/img_tool
sha() { sha256sum "$1" | cut -c1-64; }
urlsha() { printf '%s' "$1" | sha256sum | cut -c1-64; }
# files in the cache other than sidecars of complete images
cache_count() { ls "$C" 2>/dev/null | wc -l | tr -d ' '; }

mkdir -p "$T/srv" "$T/proj"
qemu-img create -q -f qcow2 "$T/srv/base.qcow2" 64M
# some non-zero content so that corruptions show
qemu-io -c 'write -P 0xab 0 1M' "$T/srv/base.qcow2" >/dev/null 2>&1 ||
	head -c 300000 /dev/urandom >>"$T/srv/base.qcow2"
B=$(sha "$T/srv/base.qcow2")
python3 "$HUTCH_SRC/tests/images/range_server.py" "$T/srv" "$T/port" "$T/log" 2>"$T/server.err" &
SRV_PID=$!
wait_until 120 test -s "$T/port"
P=$(cat "$T/port")
U=http://127.0.0.1:$P
nreq() { wc -l <"$T/log" | tr -d ' '; }

# --- plain pull, sha256 given --------------------------------------------
out=$("$HUTCH" images pull "$U/base.qcow2" --sha256 "$B" 2>"$T/err")
rc=$?
is "pull by URL with the right sha256 succeeds" "$rc" 0
[ -f "$out" ] && cmp -s "$out" "$T/srv/base.qcow2" && ok "cached file is byte-identical" ||
	fail "cached file is byte-identical (got '$out')"
(cd "$C" && sha256sum -c --status "$(basename "$out").sha256") && ok ".sha256 record checks with sha256sum -c" ||
	fail ".sha256 record checks with sha256sum -c"
is "no .part left" "$(ls "$C" | grep -c '\.part$')" 0
n=$(nreq)
out2=$("$HUTCH" images pull "$U/base.qcow2" --sha256 "$B" 2>/dev/null)
is "second pull uses the cache (same path)" "$out2" "$out"
is "second pull made no request" "$(nreq)" "$n"
j=$("$HUTCH" --json images pull "$U/base.qcow2" 2>/dev/null)
is "pull --json: path, format, vsize" \
	"$(echo "$j" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["path"], d["format"], d["vsize"])')" \
	"$out qcow2 67108864"
r=$("$TOOL" resolve "$U/base.qcow2" 2>/dev/null)
is "img_resolve reports format and virtual size" "${r#* }" "qcow2 67108864"

# --- two hutch processes pulling the same image: one download, both get it ---------
head -c 20000000 /dev/urandom >"$T/srv/shared.raw"
S2=$(sha "$T/srv/shared.raw")
"$HUTCH" images pull "$U/shared.raw" --sha256 "$S2" >"$T/p1" 2>/dev/null &
p1=$!
"$HUTCH" images pull "$U/shared.raw" --sha256 "$S2" >"$T/p2" 2>/dev/null
r2=$?
wait $p1
r1=$?
is "concurrent pulls both succeed" "$r1 $r2" "0 0"
is "concurrent pulls give the same path" "$(cat "$T/p1")" "$(cat "$T/p2")"
cmp -s "$(cat "$T/p1")" "$T/srv/shared.raw" && ok "concurrent pulls: file intact" || fail "concurrent pulls: file intact"
is "concurrent pulls: downloaded once" "$(grep -c '^/shared.raw ' "$T/log")" 1

# --- progress bar only on a terminal --------------------------------------------
cp "$T/srv/base.qcow2" "$T/srv/prog.qcow2"
"$HUTCH" images pull "$U/prog.qcow2" >/dev/null 2>"$T/err"
grep -q '%' "$T/err" && fail "no progress bar when stderr is not a terminal" ||
	ok "no progress bar when stderr is not a terminal"
"$HUTCH" images rm "u-$(urlsha "$U/prog.qcow2" | cut -c1-16)-prog.qcow2" 2>/dev/null
if command -v script >/dev/null; then
	script -qec "$HUTCH images pull $U/prog.qcow2" /dev/null >"$T/tty" 2>&1
	tr '\r' '\n' <"$T/tty" | grep -q 'prog.qcow2 \[=*\] 100%' && ok "progress bar on a terminal ends at 100%" ||
		{ fail "progress bar on a terminal"; cat -A "$T/tty" | head -5 | sed 's/^/# /'; }
else
	skip "progress bar on a terminal" "no script(1)"
fi

# --- wrong sha256 -----------------------------------------------------------
cp "$T/srv/base.qcow2" "$T/srv/other.qcow2"
before=$(cache_count)
"$HUTCH" images pull "$U/other.qcow2" --sha256 "$(printf 'f%.0s' $(seq 64))" 2>"$T/err"
is "wrong sha256: exit 1" "$?" 1
grep -q "expected ffff.*got $B" "$T/err" && ok "error names expected and got" ||
	{ fail "error names expected and got"; sed 's/^/# /' "$T/err"; }
is "wrong sha256: nothing left in the cache" "$(cache_count)" "$before"
"$HUTCH" images pull "$U/other.qcow2" --sha256 abc 2>/dev/null
is "malformed sha256 is a usage error" "$?" 2

# --- interrupted download, resumed with Range ----------------------------------
size=$(stat -c %s "$T/srv/base.qcow2")
"$HUTCH" images pull "$U/cut/base.qcow2" --sha256 "$B" 2>/dev/null
is "interrupted download fails" "$?" 1
part=$C/$(urlsha "$U/cut/base.qcow2").part
is ".part keeps the first half" "$(stat -c %s "$part" 2>/dev/null)" "$((size / 2))"
out=$("$HUTCH" images pull "$U/cut/base.qcow2" --sha256 "$B" 2>/dev/null)
is "second attempt succeeds" "$?" 0
tail -1 "$T/log" | grep -q "range=bytes=$((size / 2))-" && ok "it asked for the rest with Range" ||
	fail "it asked for the rest with Range: $(tail -1 "$T/log")"
cmp -s "$out" "$T/srv/base.qcow2" && ok "resumed file is byte-identical" || fail "resumed file is byte-identical"
[ ! -e "$part" ] && ok ".part gone after success" || fail ".part gone after success"

# --- server ignoring Range: start over -------------------------------------------
part=$C/$(urlsha "$U/norange/base.qcow2").part
head -c 1000 /dev/urandom >"$part"
out=$("$HUTCH" images pull "$U/norange/base.qcow2" --sha256 "$B" 2>/dev/null)
is "server ignoring Range: pull succeeds" "$?" 0
cmp -s "$out" "$T/srv/base.qcow2" && ok "garbage .part replaced, file byte-identical" ||
	fail "garbage .part replaced, file byte-identical"

# --- a server answering another range than asked: refused, next attempt starts over ---
part=$C/$(urlsha "$U/badrange/base.qcow2").part
head -c 1000 "$T/srv/base.qcow2" >"$part"
"$HUTCH" images pull "$U/badrange/base.qcow2" --sha256 "$B" 2>"$T/err"
is "206 with the wrong Content-Range: exit 1" "$?" 1
grep -q "range we did not ask for" "$T/err" && ok "wrong range reported" || fail "wrong range reported"
is "wrong range: .part emptied" "$(stat -c %s "$part" 2>/dev/null)" 0
out=$("$HUTCH" images pull "$U/badrange/base.qcow2" --sha256 "$B" 2>/dev/null)
is "next attempt starts over and succeeds" "$?" 0
cmp -s "$out" "$T/srv/base.qcow2" && ok "restarted download byte-identical" || fail "restarted download byte-identical"

# --- a .part that is no prefix of the file: caught by the hash, then fine ----------
part=$C/$(urlsha "$U/redir/base.qcow2").part
head -c 1000 /dev/urandom >"$part"
"$HUTCH" images pull "$U/redir/base.qcow2" --sha256 "$B" 2>"$T/err"
is "corrupt resumed download: exit 1" "$?" 1
grep -q "mismatch" "$T/err" && ok "reported as a sha256 mismatch" || fail "reported as a sha256 mismatch"
[ ! -e "$part" ] && ok "corrupt .part deleted" || fail "corrupt .part deleted"
out=$("$HUTCH" images pull "$U/redir/base.qcow2" --sha256 "$B" 2>/dev/null)
is "retry after that (through a redirect) succeeds" "$?" 0
cmp -s "$out" "$T/srv/base.qcow2" && ok "redirected download byte-identical" || fail "redirected download"

# --- decompression ---------------------------------------------------------------
for z in xz zst gz; do
	case $z in
	xz) xz -k -c "$T/srv/base.qcow2" >"$T/srv/base.qcow2.xz" ;;
	zst) zstd -q -c "$T/srv/base.qcow2" >"$T/srv/base.qcow2.zst" ;;
	gz) gzip -c "$T/srv/base.qcow2" >"$T/srv/base.qcow2.gz" ;;
	esac
	zs=$(sha "$T/srv/base.qcow2.$z")
	out=$("$HUTCH" images pull "$U/base.qcow2.$z" --sha256 "$zs" 2>/dev/null)
	is ".$z: pull with the compressed file's sha256" "$?" 0
	cmp -s "$out" "$T/srv/base.qcow2" && ok ".$z: decompressed byte-identical" || fail ".$z: decompressed"
	case $out in *.$z) fail ".$z: suffix stripped from the cache name" ;; *) ok ".$z: suffix stripped from the cache name" ;; esac
	n=$(nreq)
	"$HUTCH" images pull "$U/base.qcow2.$z" --sha256 "$zs" >/dev/null 2>&1
	is ".$z: cache hit with the compressed sha256, no request" "$(nreq)" "$n"
done
# concatenated gzip members are one stream (RFC 1952)
{ printf 'QFI'; } | gzip -c >"$T/srv/multi.gz"; printf 'rest of it' | gzip -c >>"$T/srv/multi.gz"
out=$("$HUTCH" images pull "$U/multi.gz" --sha256 "$(sha "$T/srv/multi.gz")" 2>/dev/null)
is "multi-member gzip decompresses whole" "$(cat "$out" 2>/dev/null)" "QFIrest of it"
before=$(cache_count)
for z in xz zst gz; do
	head -c $(( $(stat -c %s "$T/srv/base.qcow2.$z") / 2 )) "$T/srv/base.qcow2.$z" >"$T/srv/trunc.qcow2.$z"
	"$HUTCH" images pull "$U/trunc.qcow2.$z" --sha256 "$(sha "$T/srv/trunc.qcow2.$z")" 2>"$T/err"
	is "truncated .$z: exit 1" "$?" 1
	is "truncated .$z: nothing left in the cache" "$(cache_count)" "$before"
done
head -c 20000000 /dev/zero | xz -c >"$T/srv/bomb.xz"
HUTCH_IMAGES_MAX_BYTES=1000000 "$HUTCH" images pull "$U/bomb.xz" --sha256 "$(sha "$T/srv/bomb.xz")" 2>"$T/err"
is "decompressing past the size cap fails" "$?" 1
is "size cap: nothing left in the cache" "$(cache_count)" "$before"
HUTCH_IMAGES_MAX_BYTES=1000 "$HUTCH" images pull "$U/other.qcow2" 2>"$T/err"
is "download past the size cap fails" "$?" 1
grep -q "limit" "$T/err" && ok "size cap error says so" || fail "size cap error says so"

# --- refusals -------------------------------------------------------------------------
qemu-img create -q -f qcow2 -F qcow2 -b "$T/srv/base.qcow2" "$T/srv/backed.qcow2"
before=$(cache_count)
"$HUTCH" images pull "$U/backed.qcow2" --sha256 "$(sha "$T/srv/backed.qcow2")" 2>"$T/err"
is "qcow2 with a backing file: exit 1" "$?" 1
grep -q "backing file" "$T/err" && ok "error says backing file" || fail "error says backing file"
is "backed image not left in the cache" "$(cache_count)" "$before"
(cd "$T/srv" && "$TOOL" resolve backed.qcow2 >/dev/null 2>&1)
is "local qcow2 with a backing file refused too" "$?" 1
HUTCH_ALLOW_HTTP_LOCAL= "$HUTCH" images pull "$U/base.qcow2" 2>"$T/err"
is "http without HUTCH_ALLOW_HTTP_LOCAL refused" "$?" 1
"$HUTCH" images pull "http://192.0.2.1/x.qcow2" 2>"$T/err"
is "http to a non-local host refused" "$?" 1
"$HUTCH" images pull "$U/tohttp/base.qcow2" 2>"$T/err"
is "redirect to non-local http refused" "$?" 1
grep -q "only https" "$T/err" && ok "refusal names the rule" || fail "refusal names the rule"
n=$(nreq)
"$HUTCH" images pull "$U/loop/x" 2>"$T/err"
is "redirect loop stops with an error" "$?" 1
is "redirect loop: the first request and 5 redirects followed" "$(( $(nreq) - n ))" 6
"$HUTCH" images pull "$U/status/404" 2>"$T/err"
is "HTTP 404: exit 1" "$?" 1
grep -q "404" "$T/err" && ok "error shows the status" || fail "error shows the status"

# --- local paths --------------------------------------------------------------------------
cp "$T/srv/base.qcow2" "$T/proj/disk.qcow2"
head -c 1048576 /dev/urandom >"$T/proj/raw.img"
r=$(cd "$T/proj" && "$TOOL" resolve disk.qcow2 "$B")
is "local path (relative to the project) with sha256" "$r" "$T/proj/disk.qcow2 qcow2 67108864"
r=$(cd "$T/proj" && "$TOOL" resolve raw.img)
is "raw image: format raw, size of the file" "$r" "$T/proj/raw.img raw 1048576"
(cd "$T/proj" && "$TOOL" resolve disk.qcow2 "$(sha "$T/proj/raw.img")" 2>/dev/null)
is "local path with the wrong sha256 refused" "$?" 1
(cd "$T/proj" && "$TOOL" resolve no-such-image 2>"$T/err")
is "unknown name: exit 1" "$?" 1
grep -q "not a known alias" "$T/err" && ok "unknown name explained" || fail "unknown name explained"

# --- aliases through a mirror: SHA512SUMS / SHA256SUMS / CHECKSUM / .SHA256 ----------------
mk_alias() { # dir file sumsfile format
	mkdir -p "$T/srv/$1"
	cp "$T/srv/base.qcow2" "$T/srv/$1/$2"
	case $4 in
	sha512) (cd "$T/srv/$1" && sha512sum "$2" >"$3") ;;
	sha256star) (cd "$T/srv/$1" && sha256sum -b "$2" >"$3") ;;
	bsd) (cd "$T/srv/$1" && { echo "-----BEGIN PGP SIGNED MESSAGE-----"; echo "Hash: SHA256"; echo;
		echo "# Fedora-Cloud 123 bytes"; sha256sum --tag "$2"; }) >"$T/srv/$1/$3" ;;
	sha256) (cd "$T/srv/$1" && sha256sum "$2" >"$3") ;;
	esac
}
mk_alias images/cloud/bookworm/latest debian-12-genericcloud-amd64.qcow2 SHA512SUMS sha512
mk_alias noble/current noble-server-cloudimg-amd64.img SHA256SUMS sha256star
mk_alias pub/fedora/linux/releases/41/Cloud/x86_64/images Fedora-Cloud-Base-Generic-41-1.4.x86_64.qcow2 \
	Fedora-Cloud-41-1.4-x86_64-CHECKSUM bsd
mk_alias images/latest Arch-Linux-x86_64-cloudimg.qcow2 Arch-Linux-x86_64-cloudimg.qcow2.SHA256 sha256
export HUTCH_IMAGES_MIRROR=$U
for a in debian-12 ubuntu-24.04 fedora-41 arch; do
	out=$("$HUTCH" images pull "$a" 2>"$T/err")
	is "alias $a pulled and checked against its checksum file" "$?" 0
	is "alias $a cached as $a.qcow2" "$out" "$C/$a.qcow2"
done
# debian-13: checksum file with a wrong entry
mk_alias images/cloud/trixie/latest debian-13-genericcloud-amd64.qcow2 SHA512SUMS sha512
sed -i 's/^./0/; s/^0/1/' "$T/srv/images/cloud/trixie/latest/SHA512SUMS"
"$HUTCH" images pull debian-13 2>"$T/err"
is "alias with a mismatching sha512: exit 1" "$?" 1
grep -q "sha512 mismatch" "$T/err" && ok "error says sha512 mismatch" || fail "error says sha512 mismatch"
[ ! -e "$C/debian-13.qcow2" ] && ok "mismatching alias not cached" || fail "mismatching alias not cached"

# --- a cached alias is used offline ---------------------------------------------------------
kill "$SRV_PID"; wait "$SRV_PID" 2>/dev/null; SRV_PID=
r=$("$TOOL" resolve debian-12 2>"$T/err")
is "cached alias resolves with the server gone" "$r" "$C/debian-12.qcow2 qcow2 67108864"
grep -q verifying "$T/err" && fail "unchanged cached alias not re-hashed" || ok "unchanged cached alias not re-hashed"
touch "$C/debian-12.qcow2"
"$TOOL" resolve debian-12 >/dev/null 2>"$T/err"
grep -q verifying "$T/err" && ok "mtime changed: re-hashed" || fail "mtime changed: re-hashed"
"$TOOL" resolve debian-12 "$B" >/dev/null 2>"$T/err"
is "image_sha256 given and matching: ok" "$?" 0
grep -q verifying "$T/err" && ok "image_sha256 given: re-hashed" || fail "image_sha256 given: re-hashed"
printf 'X' | dd of="$C/debian-12.qcow2" bs=1 seek=100000 conv=notrunc 2>/dev/null
touch -r "$C/debian-12.qcow2.verified" "$C/debian-12.qcow2" 2>/dev/null
touch -d '2001-01-01' "$C/debian-12.qcow2"
"$TOOL" resolve debian-12 >/dev/null 2>"$T/err"
is "cached image modified behind our back: exit 1" "$?" 1
grep -q "changed" "$T/err" && ok "error says the cached image changed" || fail "error says changed"
done_testing
