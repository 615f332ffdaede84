#!/usr/bin/env bash
# Figures for the image cache: local download throughput (libcurl over
# loopback, sha256 included), hashing speed, each decompressor, cache-hit
# latency, overlay creation, and the seed ISO writer.
set -u
SRC=$(cd "$(dirname "$0")/../.." && pwd)
HUTCH=${HUTCH:-$SRC/hutch}
T=$(mktemp -d /tmp/images-bench.XXXXXX)
SRV=
trap '[ -n "$SRV" ] && kill $SRV 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
export XDG_CACHE_HOME=$T/cache HUTCH_ALLOW_HTTP_LOCAL=1
MB=${BENCH_MB:-256}
now() { date +%s.%N; }
rate() { python3 -c "import sys; s=float(sys.argv[2])-float(sys.argv[1]); print('%.2fs  %.0f MiB/s' % (s, float(sys.argv[3])/s))" "$@"; }
ms() { python3 -c "import sys; print('%.0f ms' % ((float(sys.argv[2])-float(sys.argv[1]))*1000))" "$@"; }

mkdir -p "$T/srv"
head -c $((MB / 2 * 1048576)) /dev/urandom >"$T/srv/img.raw"
head -c $((MB / 2 * 1048576)) /dev/zero >>"$T/srv/img.raw"
python3 "$SRC/tests/images/range_server.py" "$T/srv" "$T/port" "$T/log" 2>/dev/null &
SRV=$!
for _ in $(seq 100); do [ -s "$T/port" ] && break; sleep 0.1; done
U=http://127.0.0.1:$(cat "$T/port")
S=$(sha256sum "$T/srv/img.raw" | cut -c1-64)

t0=$(now); sha256sum "$T/srv/img.raw" >/dev/null; t1=$(now)
echo "sha256sum of ${MB} MiB (reference):        $(rate "$t0" "$t1" "$MB")"
t0=$(now); "$HUTCH" images pull "$U/img.raw" --sha256 "$S" >/dev/null 2>&1; t1=$(now)
echo "pull ${MB} MiB over loopback + sha256:      $(rate "$t0" "$t1" "$MB")"
t0=$(now); "$HUTCH" images pull "$U/img.raw" >/dev/null 2>&1; t1=$(now)
echo "cache hit (size/mtime unchanged):          $(ms "$t0" "$t1")"
t0=$(now); "$HUTCH" images pull "$U/img.raw" --sha256 "$S" >/dev/null 2>&1; t1=$(now)
echo "cache hit with image_sha256 (re-hash):     $(ms "$t0" "$t1")"
for z in xz zst gz; do
	case $z in
	xz) xz -T0 -1 -c "$T/srv/img.raw" >"$T/srv/img.$z.raw.$z" ;;
	zst) zstd -q -c "$T/srv/img.raw" >"$T/srv/img.$z.raw.$z" ;;
	gz) gzip -1 -c "$T/srv/img.raw" >"$T/srv/img.$z.raw.$z" ;;
	esac
	t0=$(now); "$HUTCH" images pull "$U/img.$z.raw.$z" >/dev/null 2>&1; t1=$(now)
	printf 'pull + decompress .%-4s %4d MiB out:       %s\n' "$z" "$MB" "$(rate "$t0" "$t1" "$MB")"
done
qemu-img create -q -f qcow2 "$T/base.qcow2" 10G
if [ -x "$SRC/build/tests/img_tool" ]; then
	t0=$(now); (cd "$T" && "$SRC/build/tests/img_tool" overlay base.qcow2 "$T/ov.qcow2" 20 >/dev/null); t1=$(now)
	echo "overlay create (qemu-img, 20G over 10G):   $(ms "$t0" "$t1")"
fi
if [ -x "$SRC/build/tests/iso_mk" ]; then
	printf '#cloud-config\n' >"$T/ud"; printf 'instance-id: x\n' >"$T/md"
	t0=$(now)
	for _ in $(seq 100); do "$SRC/build/tests/iso_mk" "$T/seed.iso" cidata user-data="$T/ud" meta-data="$T/md"; done
	t1=$(now)
	echo "seed ISO write (iso_mk, 2 files), per run: $(python3 -c "import sys; print('%.1f ms' % ((float(sys.argv[2])-float(sys.argv[1]))*10))" "$t0" "$t1")"
fi
