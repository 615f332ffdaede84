#!/usr/bin/env bash
# Snapshots and warm start with the debian-12 guest (2 GiB, 2 vCPUs, TCG,
# network mode user, cloud_init_wait: false so that `up` ends at SSH ready):
#   - `hutch snapshot` (halt + flattened copy) and `hutch reset` (rebuild on
#     the snapshot + up to SSH ready) times;
#   - cold `up` -> SSH ready against warm `up` -> SSH ready, BENCH_RUNS each
#     (default 5), medians: both start the same provisioned, halted VM;
#     cold boots it, warm resumes the state saved by `snapshot save --running`;
#   - the saved state's size and how long `snapshot save --running` takes
#     (and how long the guest is paused in it);
#   - the same with one shared folder (virtiofs, unplugged for the save).
# The load average is printed before and after: on a shared machine TCG
# figures move with it.
#   E2E_IMAGE=path   the qcow2 to boot (default build/guests/debian-12/image.qcow2)
set -u
cd "$(dirname "$0")/../.." || exit 1
HUTCH=${HUTCH:-$PWD/hutch}
IMAGE=${E2E_IMAGE:-$PWD/build/guests/debian-12/image.qcow2}
RUNS=${BENCH_RUNS:-5}
if [ ! -f "$IMAGE" ]; then
	echo "bench-warm: skipped: no $IMAGE (make debian-image)"; exit 0
fi
T=$(mktemp -d /tmp/hutch-bench-warm.XXXXXX)
trap '"$HUTCH" -C "$T/p" destroy >/dev/null 2>&1; "$HUTCH" -C "$T/s" destroy >/dev/null 2>&1; rm -rf "$T"' EXIT
export HOME=$T/home XDG_DATA_HOME=$T/data XDG_CACHE_HOME=$T/cache XDG_RUNTIME_DIR=$T/run
export XDG_CONFIG_HOME=$T/config
mkdir -p "$HOME" "$XDG_DATA_HOME" "$XDG_CACHE_HOME" "$XDG_RUNTIME_DIR" "$XDG_CONFIG_HOME/hutch" "$T/p" "$T/s/ws"
chmod 700 "$XDG_RUNTIME_DIR"
# the image lives outside the projects: the user's config allows its folder
printf 'allow_paths:\n  - %s\n' "$(dirname "$IMAGE")" >"$XDG_CONFIG_HOME/hutch/config.yaml"
"$HUTCH" pubkey >/dev/null 2>&1

project() { # project DIR NAME [share]
	cat >"$1/hutch.yaml" <<Y
name: $2
image: $IMAGE
cpus: 2
memory: 2048
accel: ${E2E_ACCEL:-tcg}
network: {mode: user}
cloud_init_wait: false
timeouts: {boot: 1200, ssh: 1200, cloud_init: 1500, shutdown: 240}
Y
	[ -n "${3:-}" ] && printf 'shared_folders:\n  - {host: ws, guest: /ws, tag: ws, isolation: false}\n' >>"$1/hutch.yaml"
	cat >"$1/cloud-init.yml" <<'Y'
#cloud-config
users:
  - name: bench
    shell: /bin/bash
    sudo: ALL=(ALL) NOPASSWD:ALL
    ssh_authorized_keys:
      - __HUTCH_PUBKEY__
package_update: false
Y
}
now() { date +%s.%N; }
el() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# timed CMD...: seconds it took, or "fail" (its log in $T/last.log)
timed() { local t0; t0=$(now); if "$@" >"$T/last.log" 2>&1; then el "$t0"; else echo fail; fi; }
die() { echo "bench-warm: $*"; tail -20 "$T/last.log" | sed 's/^/  /'; exit 1; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

# cold and warm up of the VM in DIR: prints "cold: ... warm: ..." lines
cold_warm() { # cold_warm DIR LABEL
	local d=$1 label=$2 cold=() warm=() load=() sess=() t vmd s size paused
	for ((i = 0; i < RUNS; i++)); do
		"$HUTCH" -C "$d" halt >/dev/null 2>&1 || die "halt failed"
		t=$(timed "$HUTCH" -C "$d" up); [ "$t" = fail ] && die "$label: cold up failed"
		cold+=("$t")
	done
	t=$(timed "$HUTCH" -C "$d" snapshot save bench --running)
	[ "$t" = fail ] && die "$label: snapshot save --running failed"
	vmd=$XDG_DATA_HOME/hutch/vms/$(sed -n 's/^name: //p' "$d/hutch.yaml")
	size=$(stat -c %s "$vmd/snapshots/bench.vmstate")
	paused=$(jq -r '.items.bench.save_ms' "$vmd/snapshots/index.json")
	echo "bench-warm: $label: snapshot save --running: ${t} s (guest paused $(awk -v m="$paused" 'BEGIN { printf "%.1f", m / 1000 }') s), state $(awk -v b="$size" 'BEGIN { printf "%.0f", b / 1048576 }') MiB for 2048 MiB of RAM"
	# where the pause went, as the supervisor logged it (ms)
	s=$(grep -o 'guest paused [0-9]* ms (.*)' "$vmd/supervisor.log" | tail -1)
	[ -n "$s" ] && echo "bench-warm: $label: save: $s"
	for ((i = 0; i < RUNS; i++)); do
		"$HUTCH" -C "$d" halt >/dev/null 2>&1 || die "halt failed"
		t=$(timed "$HUTCH" -C "$d" up); [ "$t" = fail ] && die "$label: warm up failed"
		grep -q 'resumed the running state' "$T/last.log" || die "$label: up did not resume"
		warm+=("$t")
		# its two parts: QEMU loading the state (ms), then the first SSH session (s)
		load+=("$(sed -n 's/.*resumed the running state .* (\([0-9]*\) ms).*/\1/p' "$T/last.log")")
		sess+=("$(sed -n 's/.*SSH ready on .* after \([0-9.]*\)s.*/\1/p' "$T/last.log")")
	done
	s=$(echo "${cold[*]}" | median)
	t=$(echo "${warm[*]}" | median)
	echo "bench-warm: $label: cold up -> SSH ready: median ${s} s (runs: ${cold[*]})"
	echo "bench-warm: $label: warm up -> SSH ready: median ${t} s (runs: ${warm[*]})"
	echo "bench-warm: $label: warm up: state loaded and guest continued: median $(echo "${load[*]}" | median) ms; then the first SSH session (clock step${3:+, share mount}): median $(echo "${sess[*]}" | median) s"
	echo "bench-warm: $label: warm/cold: $(awk -v a="$t" -v b="$s" 'BEGIN { printf "%.0f %%", 100 * a / b }')"
}

echo "bench-warm: load average before: $(load) ($(nproc) CPUs)"
project "$T/p" bench-warm
t=$(timed "$HUTCH" -C "$T/p" up); [ "$t" = fail ] && die "first up failed"
echo "bench-warm: first up (create, cloud-init): $t s"
"$HUTCH" -C "$T/p" ssh -- 'echo kept > ~/kept' </dev/null >/dev/null 2>&1
t=$(timed "$HUTCH" -C "$T/p" snapshot); [ "$t" = fail ] && die "snapshot failed"
echo "bench-snapshot: snapshot (halt + flattened copy of $(du -BM "$XDG_DATA_HOME/hutch/vms/bench-warm/snapshot.qcow2" | cut -f1)): $t s"
"$HUTCH" -C "$T/p" up >/dev/null 2>&1 || die "up after snapshot failed"
t=$(timed "$HUTCH" -C "$T/p" reset); [ "$t" = fail ] && die "reset failed"
echo "bench-snapshot: reset (halt + rebuild + up -> SSH ready): $t s"
cold_warm "$T/p" "no share"
"$HUTCH" -C "$T/p" destroy >/dev/null 2>&1

project "$T/s" bench-share share
t=$(timed "$HUTCH" -C "$T/s" up); [ "$t" = fail ] && die "first up (share) failed"
cold_warm "$T/s" "one share" share
echo "bench-warm: load average after: $(load)"
