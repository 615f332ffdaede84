# shellcheck shell=bash
# WireGuard test helpers (tests/net/t-wg*.sh, tests/bench/bench-wg.sh); source
# after tests/lib/tap.sh.  The peer side uses wireguard-go and the `wg` tool:
# hutch itself never runs either of them through a shell or `wg`.
#
#   wg_have_tools            0 when wireguard-go and wg are installed
#   wg_keys DIR              per-run keys: DIR/{client,peer}.{key,pub}
#   wg_peer_start NS IF ADDR/N PORT CLIENT_PUB ALLOWED KEYDIR
#                            wireguard-go on interface IF in namespace NS,
#                            listening on PORT, tunnel address ADDR/N, one
#                            peer (hutch) with AllowedIPs ALLOWED; pid in WG_PEER_PID
#   wg_peer_stop             kill it
#   wg_conf_write FILE KEYDIR ADDRESS ENDPOINT [DNS] [KEEPALIVE]
#                            a wireguard.conf for hutch's side, mode 600
#   wg_rig_setup HN PN TN PIF DIR
#                            the rig of t-wg.sh and bench-wg.sh (run it under
#                            `set -e` in a subshell):
#      guest -- hutch0 [HN] up0 203.0.113.1 -- 203.0.113.2 [PN] 198.51.100.1 -- [TN] 198.51.100.10
#                                               wireguard-go PIF 10.200.0.1:51820, masquerades
#                            keys in DIR/keys; HN's uplink counts (table inet
#                            wgtest) the tunnel's UDP, everything else leaving
#                            by up0 ("outside") and what is forwarded to it
#                            ("guest-forwarded")

wg_have_tools() { command -v wireguard-go >/dev/null && command -v wg >/dev/null; }

wg_keys() {
	local d=$1 s
	mkdir -p "$d"
	for s in client peer; do
		(umask 077; wg genkey >"$d/$s.key")
		wg pubkey <"$d/$s.key" >"$d/$s.pub"
	done
}

wg_peer_start() {
	local ns=$1 ifn=$2 addr=$3 port=$4 cpub=$5 allowed=$6 kd=$7 i
	WG_PEER_IF=$ifn
	ip netns exec "$ns" env WG_PROCESS_FOREGROUND=1 LOG_LEVEL=error wireguard-go -f "$ifn" \
		>"$kd/peer-$ifn.log" 2>&1 &
	WG_PEER_PID=$!
	for i in $(seq 100); do
		[ -S "/var/run/wireguard/$ifn.sock" ] && break
		sleep 0.1
	done
	ip netns exec "$ns" wg set "$ifn" private-key "$kd/peer.key" listen-port "$port" \
		peer "$cpub" allowed-ips "$allowed" || return 1
	ip -n "$ns" addr add "$addr" dev "$ifn" && ip -n "$ns" link set "$ifn" up
}

wg_peer_stop() {
	[ -n "${WG_PEER_PID:-}" ] && kill "$WG_PEER_PID" 2>/dev/null
	wait "${WG_PEER_PID:-0}" 2>/dev/null
	rm -f "/var/run/wireguard/${WG_PEER_IF:-none}.sock"
	WG_PEER_PID=
}

wg_conf_write() {
	local f=$1 kd=$2 addr=$3 ep=$4 dns=${5:-} ka=${6:-5}
	(umask 077; {
		echo "[Interface]"
		echo "PrivateKey = $(cat "$kd/client.key")"
		echo "Address = $addr"
		[ -n "$dns" ] && echo "DNS = $dns"
		echo
		echo "[Peer]"
		echo "PublicKey = $(cat "$kd/peer.pub")"
		echo "Endpoint = $ep"
		echo "AllowedIPs = 0.0.0.0/0"
		echo "PersistentKeepalive = $ka"
	} >"$f")
	chmod 600 "$f"
}

wg_rig_setup() {
	local HN=$1 PN=$2 TN=$3 PIF=$4 T=$5 n
	for n in $HN $PN $TN; do ip netns add "$n"; ip -n "$n" link set lo up; done
	ip netns exec "$HN" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
	ip link add up0 netns "$HN" type veth peer name eth0 netns "$PN"
	ip -n "$HN" addr add 203.0.113.1/24 dev up0
	ip -n "$HN" link set up0 up
	ip -n "$HN" route add default via 203.0.113.2
	ip -n "$PN" addr add 203.0.113.2/24 dev eth0
	ip -n "$PN" link set eth0 up
	ip link add eth1 netns "$PN" type veth peer name eth0 netns "$TN"
	ip -n "$PN" addr add 198.51.100.1/24 dev eth1
	ip -n "$PN" link set eth1 up
	ip -n "$TN" addr add 198.51.100.10/24 dev eth0
	ip -n "$TN" link set eth0 up
	ip -n "$TN" route add default via 198.51.100.1
	ip netns exec "$PN" sysctl -qw net.ipv4.ip_forward=1
	ip netns exec "$PN" nft "add table ip peer; add chain ip peer post { type nat hook postrouting priority 100; }; add rule ip peer post ip saddr 10.200.0.0/24 oifname eth1 masquerade"
	ip netns exec "$HN" nft "add table inet wgtest"
	ip netns exec "$HN" nft "add chain inet wgtest wpost { type filter hook postrouting priority 300; }"
	ip netns exec "$HN" nft "add rule inet wgtest wpost oifname up0 ip daddr 203.0.113.2 udp dport 51820 counter accept comment \"tunnel\""
	ip netns exec "$HN" nft "add rule inet wgtest wpost oifname up0 counter comment \"outside\""
	ip netns exec "$HN" nft "add chain inet wgtest wfwd { type filter hook forward priority 300; }"
	ip netns exec "$HN" nft "add rule inet wgtest wfwd oifname up0 counter comment \"guest-forwarded\""
	wg_keys "$T/keys"
	wg_peer_start "$PN" "$PIF" 10.200.0.1/24 51820 "$(cat "$T/keys/client.pub")" 10.200.0.2/32 "$T/keys"
}
