#!/usr/bin/env bash
# debian-12 guest figures under TCG with plain QEMU (-m 1024, virtio disk,
# NoCloud seed on virtio): image build (0 when cached), boot to SSH, boot to
# cloud-init done, powerdown to exit.  Runs tests/e2e/t-debian-recipe.sh and
# keeps its timing lines; needs root like that test.
set -u
cd "$(dirname "$0")/../.."
out=$(bash tests/e2e/t-debian-recipe.sh 2>&1)
rc=$?
echo "$out" | grep -E '^# (image build|boot to|powerdown|Startup finished)' | sed 's/^# /debian-12: /'
[ "$rc" -eq 0 ] || { echo "bench-debian-boot: the e2e test failed:"; echo "$out" | grep -E '^not ok' ; exit 1; }
