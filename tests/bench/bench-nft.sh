#!/usr/bin/env bash
# Time of one VM's nft_vm_add and nft_vm_del batches (net/nft.c), in a
# network namespace of its own (root needed).
set -u
cd "$(dirname "$0")/../.." || exit 1
NFTCTL=build/tests/nftctl
N=${N:-100}
if [ "$(id -u)" != 0 ] || [ ! -x "$NFTCTL" ]; then
	echo "bench-nft: skipped (needs root and make unit)"
	exit 0
fi
NS=nft-bench-$$
ip netns add "$NS" || exit 1
trap 'ip netns del "$NS" 2>/dev/null' EXIT
ip netns exec "$NS" ip link add hutch0 type bridge
echo "bench-nft: $N x (nft_vm_add + nft_vm_del), one batch each, 2 exceptions per VM"
ip netns exec "$NS" "$NFTCTL" bench "$N" hutch0
# With 20 other VMs installed: the maps and chains grow, the batches should not slow down
ip netns exec "$NS" "$NFTCTL" base hutch0 10.77.0.0/24 >/dev/null
for i in $(seq 100 119); do
	ip netns exec "$NS" "$NFTCTL" add "o$i" "ht-o$i" 52:54:00:00:01:$((i - 100 + 10)) 10.77.1.$i 10.77.0.1 24 || exit 1
done
echo "bench-nft: same with 20 other VMs installed"
ip netns exec "$NS" "$NFTCTL" bench "$N" hutch0
