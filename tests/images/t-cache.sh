#!/usr/bin/env bash
# Overlays over cached images (qemu-img info checks backing file, format,
# size), `hutch images list/rm`, and `hutch images build` with a fake recipe
# directory: the built image lands in the cache with its sha256 and is then
# found by name without any network.
source "$(dirname "$0")/../lib/tap.sh"
T=$(mktemp -d /tmp/images-cache.XXXXXX)
trap 'rm -rf "$T"' EXIT
export XDG_CACHE_HOME=$T/cache XDG_DATA_HOME=$T/data
unset HUTCH_IMAGES_MIRROR HUTCH_IMAGES_MAX_BYTES HUTCH_ALLOW_HTTP_LOCAL
C=$XDG_CACHE_HOME/hutch/images
TOOL=$HUTCH_SRC/build/tests/img_tool
jq_py() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# --- a fake recipe directory -------------------------------------------------------
mkdir -p "$T/recipes" "$T/proj"
cat >"$T/recipes/mini.sh" <<'R'
#!/bin/sh
# test recipe: a 256 MiB qcow2, counting its runs
set -e
echo run >>"$RUNS"
echo "${HUTCH_GUEST_CACHE:-unset}" >"$RUNS.gc"
qemu-img create -q -f qcow2 "$1/image.qcow2" 256M
echo "building in $1"
R
chmod +x "$T/recipes/mini.sh"
printf '#!/bin/sh\necho broken >&2\nexit 3\n' >"$T/recipes/broken.sh"
printf '#!/bin/sh\nexit 0\n' >"$T/recipes/empty.sh"
printf '#!/bin/sh\nqemu-img create -q -f qcow2 "$1/b.qcow2" 1M\nqemu-img create -q -f qcow2 -F qcow2 -b "$1/b.qcow2" "$1/image.qcow2"\n' >"$T/recipes/backed.sh"
export HUTCH_RECIPES=$T/recipes RUNS=$T/runs

out=$("$HUTCH" images build mini 2>"$T/err")
is "images build runs the recipe" "$?" 0
is "it prints the cached path" "$out" "$C/mini.qcow2"
is "recipe ran once" "$(wc -l <"$T/runs")" 1
(cd "$C" && sha256sum -c --status mini.qcow2.sha256) && ok "mini.qcow2.sha256 matches (sha256sum -c)" ||
	fail "mini.qcow2.sha256 matches"
grep -q "building in" "$T/err" && ok "recipe output goes to stderr" || fail "recipe output goes to stderr"
is "build directory cleaned up" "$(ls "$C" | grep -c '^build-')" 0
is "recipe gets HUTCH_GUEST_CACHE under hutch's cache" "$(cat "$T/runs.gc")" "$XDG_CACHE_HOME/hutch/recipes"
"$HUTCH" images build mini >/dev/null 2>&1
is "built again without --force: recipe not run" "$(wc -l <"$T/runs")" 1
HUTCH_GUEST_CACHE=$T/gc "$HUTCH" images build mini --force >/dev/null 2>&1
is "--force runs it again" "$(wc -l <"$T/runs")" 2
is "the user's HUTCH_GUEST_CACHE is kept" "$(cat "$T/runs.gc")" "$T/gc"
r=$(cd "$T/proj" && "$TOOL" resolve mini 2>/dev/null)
is "img_resolve finds the built image by name, offline" "$r" "$C/mini.qcow2 qcow2 268435456"
"$HUTCH" images build broken 2>"$T/err"
is "failing recipe: exit 1" "$?" 1
[ ! -e "$C/broken.qcow2" ] && ok "failing recipe: nothing cached" || fail "failing recipe: nothing cached"
"$HUTCH" images build empty 2>"$T/err"
is "recipe without image.qcow2: exit 1" "$?" 1
grep -q "image.qcow2" "$T/err" && ok "error names the missing image.qcow2" || fail "error names image.qcow2"
"$HUTCH" images build backed 2>"$T/err"
is "recipe producing a backed qcow2: refused" "$?" 1
"$HUTCH" images build nope 2>/dev/null
is "unknown recipe: exit 1" "$?" 1
"$HUTCH" images build 2>/dev/null
is "build without a name: usage, exit 2" "$?" 2
"$HUTCH" images build ../etc 2>/dev/null
is "build with a path as name: exit 2" "$?" 2
is "no build directories left" "$(ls "$C" | grep -c '^build-')" 0

# --- overlays ------------------------------------------------------------------------
info() { qemu-img info --output=json "$1" | jq_py "$2"; }
check "overlay at the base's size" "$TOOL" overlay mini "$T/o1.qcow2" 0
is "overlay: backing file is the cached image" "$(info "$T/o1.qcow2" "d['backing-filename']")" "$C/mini.qcow2"
is "overlay: backing format recorded" "$(info "$T/o1.qcow2" "d.get('backing-filename-format')")" qcow2
is "overlay: virtual size of the base" "$(info "$T/o1.qcow2" "d['virtual-size']")" 268435456
check "overlay grown to 2 GiB" "$TOOL" overlay mini "$T/o2.qcow2" 2
is "overlay: virtual size 2 GiB" "$(info "$T/o2.qcow2" "d['virtual-size']")" 2147483648
head -c 1048576 /dev/zero >"$T/proj/raw.img"
(cd "$T/proj" && "$TOOL" overlay raw.img "$T/o3.qcow2" 1 2>/dev/null)
is "overlay over a raw base" "$?" 0
is "raw base: backing format raw" "$(info "$T/o3.qcow2" "d.get('backing-filename-format')")" raw
qemu-img create -q -f qcow2 "$T/proj/big.qcow2" 3G
(cd "$T/proj" && "$TOOL" overlay big.qcow2 "$T/o4.qcow2" 2 2>"$T/err")
is "disk smaller than the base: exit 1" "$?" 1
grep -q "smaller" "$T/err" && ok "error says smaller" || fail "error says smaller"
[ ! -e "$T/o4.qcow2" ] && ok "no overlay written then" || fail "no overlay written then"
"$TOOL" overlay mini "$T/o2.qcow2" 4 2>/dev/null
is "existing disk is never overwritten" "$?" 1
is "existing disk unchanged" "$(info "$T/o2.qcow2" "d['virtual-size']")" 2147483648
sum=$(sha256sum <"$C/mini.qcow2")
qemu-io -c 'write -P 0xcd 0 64k' "$T/o1.qcow2" >/dev/null 2>&1
is "writes to the overlay leave the cached base unchanged" "$(sha256sum <"$C/mini.qcow2")" "$sum"

# --- list and rm ------------------------------------------------------------------------------
out=$("$HUTCH" images list)
echo "$out" | grep -q "^mini .*recipe:$T/recipes/mini.sh" && ok "list shows name and source" ||
	{ fail "list shows name and source"; echo "$out" | sed 's/^/# /'; }
echo "$out" | grep -q "$(cut -c1-12 "$C/mini.qcow2.sha256")" && ok "list shows the short sha256" ||
	fail "list shows the short sha256"
j=$("$HUTCH" --json images list)
is "--json list: name" "$(echo "$j" | jq_py "[e['name'] for e in d]")" "['mini']"
is "--json list: full sha256" "$(echo "$j" | jq_py "d[0]['sha256']")" "$(cut -c1-64 "$C/mini.qcow2.sha256")"
is "--json list: size" "$(echo "$j" | jq_py "d[0]['size']")" "$(stat -c %s "$C/mini.qcow2")"
is "images list --json (after the verb) works too" "$("$HUTCH" images list --json | jq_py "len(d)")" 1
mkdir -p "$XDG_DATA_HOME/hutch/vms/agent"
cp "$T/o1.qcow2" "$XDG_DATA_HOME/hutch/vms/agent/disk.qcow2"
"$HUTCH" images rm mini 2>"$T/err"
is "images rm of an image a VM's disk uses: refused (exit 1)" "$?" 1
grep -q 'is the base of the disk of \["agent"\].*--force' "$T/err" && ok "the refusal names the VM and --force" ||
	{ fail "the refusal names the VM and --force"; sed 's/^/# /' "$T/err"; }
[ "$(ls "$C" | grep -c '^mini')" -gt 0 ] && ok "and the image is still there" || fail "and the image is still there"
"$HUTCH" images rm --force mini 2>"$T/err"
is "images rm --force: exit 0" "$?" 0
is "rm --force removed the image and its records" "$(ls "$C" | grep -c '^mini')" 0
"$HUTCH" images rm mini 2>/dev/null
is "rm of a missing image: exit 1" "$?" 1
"$HUTCH" images rm 2>/dev/null
is "rm without a name: exit 2" "$?" 2
"$HUTCH" images frobnicate 2>/dev/null
is "unknown subcommand: exit 2" "$?" 2
is "list of an empty cache prints only the header" "$("$HUTCH" images list | wc -l)" 1
done_testing
