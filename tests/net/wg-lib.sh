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
