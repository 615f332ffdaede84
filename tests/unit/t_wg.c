// SPDX-License-Identifier: MIT
/*
 * WireGuard, the parts without a kernel: wireguard.conf parsing and its
 * messages, keys, the file checks, the UAPI text both ways, the generic
 * netlink SET_DEVICE message (built, then read back as the kernel would
 * see it) and GET_DEVICE replies, link/route/rule event parsing.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/wireguard.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libmnl/libmnl.h>

#include "net/nft.h"
#include "net/wg.h"
#include "net/wg_conf.h"
#include "net/wg_rt.h"
#include "src/util.h"
#include "tests/unit/tap.h"

/* keys as `wg genkey` / `wg pubkey` print them */
#define K1 "YFviHkLYhhqBoGSTWof8RL7G0Ia6Swb6v5CkeL9EN24="
#define K2 "IJVcaH+0mh/zQKdFC6Zlfdzg9qQ9GtKN6NBZSInnkkg="
#define K3 "KPCwrYccPyH00R2q4OWymqbNdRRHNziu4JEySYYewko="

static const char good[] = "# a comment\n"
			   "[Interface]\n"
			   "PrivateKey = " K1 "\n"
			   "Address = 10.64.0.2/32, fd00::2/128\n"
			   "DNS = 10.64.0.1\n"
			   "MTU = 1380\r\n"
			   "\n"
			   "[peer]\n"
			   "publickey=" K2 "   # trailing comment\n"
			   "PresharedKey = " K3 "\n"
			   "Endpoint = vpn.example.net:51820\n"
			   "AllowedIPs = 0.0.0.0/0\n"
			   "AllowedIPs = ::/0\n"
			   "PersistentKeepalive = 25\n";

/* parse @text with one line replaced: "N:LINE" (N 1-based, LINE may be empty) or none */
static int parse_edit(const char *text, unsigned line, const char *repl, struct wg_conf *c,
		      struct wg_conf_error *e)
{
	char buf[4096];
	size_t o = 0;
	unsigned n = 1;

	for (const char *p = text; *p; p++) {
		if (n == line) {
			if (p == text || p[-1] == '\n') {
				o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s", repl);
				while (*p && *p != '\n')
					p++;
				if (!*p)
					break;
			}
		}
		buf[o++] = *p;
		if (*p == '\n')
			n++;
	}
	buf[o] = 0;
	return wg_conf_parse(buf, o, "wireguard.conf", c, e);
}

static void bad(unsigned line, const char *repl, const char *want)
{
	struct wg_conf c;
	struct wg_conf_error e;
	int rc = parse_edit(good, line, repl, &c, &e);

	ok(rc == -EINVAL && strstr(e.msg, want), "line %u '%s' -> %s", line, repl, want);
	if (rc != -EINVAL || !strstr(e.msg, want))
		printf("#   got %d: %s\n", rc, e.msg);
	ok(!strstr(e.msg, K1), "  the private key is not in the message");
}

static void test_parse(void)
{
	struct wg_conf c;
	struct wg_conf_error e;
	char b[64], k[WG_KEY_B64_LEN + 1];

	is_int(wg_conf_parse(good, strlen(good), "wireguard.conf", &c, &e), 0, "the example parses");
	if (e.msg[0])
		printf("#   %s\n", e.msg);
	wg_key_to_base64(c.private_key, k);
	ok(!strcmp(k, K1), "private key decoded and encoded back");
	wg_key_to_base64(c.peer.public_key, k);
	ok(!strcmp(k, K2) && c.peer.has_psk, "peer key (lower-case key name, trailing comment), psk");
	ok(c.n_addr == 2 && !wg_cidr_str(&c.addr[0], b, sizeof(b)) && !strcmp(b, "10.64.0.2/32"),
	   "two addresses, the first 10.64.0.2/32");
	ok(wg_conf_first_v4(&c) == &c.addr[0] && c.n_dns == 1 && c.mtu == 1380, "IPv4 address, DNS, MTU (CRLF)");
	ok(!strcmp(c.peer.host, "vpn.example.net") && c.peer.port == 51820, "endpoint name:port");
	ok(c.peer.n_allowed == 2 && wg_conf_covers_default(&c), "AllowedIPs accumulate, 0.0.0.0/0 covered");
	ok(c.peer.keepalive == 25, "keepalive");

	bad(3, "PrivateKey = abc", "wireguard.conf:3: PrivateKey is not a WireGuard key");
	bad(3, "PrivateKey = " "YFviHkLYhhqBoGSTWof8RL7G0Ia6Swb6v5CkeL9EN25=", ":3: PrivateKey is not");
	bad(3, "", ":2: [Interface] has no PrivateKey");
	bad(4, "Address = fd00::2/128", "has no IPv4 Address");
	bad(4, "Address = 10.64.0.2/33", ":4: Address: '10.64.0.2/33' is not");
	bad(5, "DNS = vpn.local", ":5: DNS: 'vpn.local' is not an address (search domains");
	bad(6, "MTU = 12", ":6: MTU must be a number in 576..9000");
	bad(6, "PostUp = iptables -A ...", ":6: PostUp is refused: hutch never runs commands");
	bad(6, "Table = off", ":6: Table is refused");
	bad(6, "SaveConfig = true", ":6: SaveConfig is refused");
	bad(6, "Colour = red", ":6: unknown key 'Colour' in [Interface]");
	bad(6, "PrivateKey = " K1, ":6: PrivateKey given twice (first on line 3)");
	bad(6, "no equals sign", ":6: expected Key = Value");
	bad(7, "[Peer]", ":8: a second [Peer] (the first is on line 7)");
	bad(7, "[Tunnel]", ":7: unknown section '[Tunnel]'");
	bad(8, "", ":9: unknown key 'publickey' in [Interface]");
	{
		static const char only[] = "[Interface]\nPrivateKey = " K1 "\nAddress = 10.0.0.2\n";

		ok(wg_conf_parse(only, strlen(only), "w", &c, &e) == -EINVAL && strstr(e.msg, "w: no [Peer] section"),
		   "no [Peer] at all (%s)", e.msg);
	}
	bad(9, "PublicKey = " K1, "the peer's PublicKey is this interface's PrivateKey");
	bad(9, "", ":8: [Peer] has no PublicKey");
	bad(11, "", ":8: [Peer] has no Endpoint");
	bad(11, "Endpoint = 203.0.113.2", ":11: Endpoint '203.0.113.2': expected host:port");
	bad(11, "Endpoint = 203.0.113.2:0", "the port must be 1..65535");
	bad(11, "Endpoint = fd00::1:51820", "an IPv6 endpoint is written [address]:port");
	bad(11, "Endpoint = bad_host!:51820", "not an address or a host name");
	bad(12, "AllowedIPs = 0.0.0.0/0,,", ":12: AllowedIPs: empty list item");
	bad(14, "PersistentKeepalive = 70000", ":14: PersistentKeepalive must be a number");
	bad(1, "MTU = 1400", ":1: 'MTU' before any [Interface] or [Peer] section");

	is_int(parse_edit(good, 11, "Endpoint = [fd00::1]:51820", &c, &e), 0, "IPv6 endpoint in brackets");
	ok(!strcmp(c.peer.host, "fd00::1"), "  host without brackets");
	is_int(parse_edit(good, 14, "PersistentKeepalive = off", &c, &e), 0, "keepalive off");
	ok(wg_conf_parse("[Interface]\0", 12, "x", &c, &e) == -EINVAL && strstr(e.msg, "NUL"), "a NUL byte refused");
	{
		char *big = malloc(WG_CONF_MAX_BYTES + 2);

		memset(big, '#', WG_CONF_MAX_BYTES + 1);
		ok(wg_conf_parse(big, WG_CONF_MAX_BYTES + 1, "x", &c, &e) == -EINVAL && strstr(e.msg, "larger"),
		   "an oversized file refused");
		memset(big, 'a', 5000);
		ok(wg_conf_parse(big, 5000, "x", &c, &e) == -EINVAL && strstr(e.msg, "line longer"), "a long line refused");
		free(big);
	}
}

static void test_file(void)
{
	char dir[] = "/tmp/t_wg.XXXXXX", path[128];
	struct wg_conf c;
	struct wg_conf_error e;
	int fd;

	if (!mkdtemp(dir)) {
		ok(0, "mkdtemp");
		return;
	}
	snprintf(path, sizeof(path), "%s/wireguard.conf", dir);
	ok(!wg_conf_present(dir) && wg_conf_load(dir, &c, &e) == -ENOENT, "no file: -ENOENT, not present");
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	ok(fd >= 0 && write(fd, good, strlen(good)) == (ssize_t)strlen(good), "write the example");
	close(fd);
	is_int(wg_conf_load(dir, &c, &e), 0, "mode 600: loads");
	chmod(path, 0640);
	ok(wg_conf_load(dir, &c, &e) == -EACCES && strstr(e.msg, "other users can read it (mode 640)"),
	   "group-readable: refused (%s)", e.msg);
	chmod(path, 0620);
	ok(wg_conf_load(dir, &c, &e) == -EACCES && strstr(e.msg, "other users can change it"),
	   "group-writable: refused");
	chmod(path, 0600);
	{
		char link[160];

		snprintf(link, sizeof(link), "%s/l", dir);
		rename(path, link);
		ok(symlink(link, path) == 0, "wireguard.conf as a symlink");
		ok(wg_conf_present(dir) && wg_conf_load(dir, &c, &e) == -ELOOP && strstr(e.msg, "symbolic link"),
		   "symlink: present, refused");
		unlink(path);
		unlink(link);
	}
	ok(mkfifo(path, 0600) == 0, "wireguard.conf as a FIFO");
	ok(wg_conf_load(dir, &c, &e) == -EACCES && strstr(e.msg, "not a regular file"), "FIFO: refused at once");
	unlink(path);
	rmdir(dir);
}

static void spec_init(struct wg_spec *s, struct wg_conf *c)
{
	struct wg_conf_error e;
	struct sockaddr_in *a = (struct sockaddr_in *)&s->endpoint;

	memset(s, 0, sizeof(*s));
	wg_conf_parse(good, strlen(good), "x", c, &e);
	snprintf(s->ifname, sizeof(s->ifname), "hw-abc123");
	s->table = WG_TABLE_MIN + 5;
	s->conf = c;
	a->sin_family = AF_INET;
	a->sin_port = htons(51820);
	inet_pton(AF_INET, "203.0.113.2", &a->sin_addr);
	s->endpoint_len = sizeof(*a);
}

static void test_uapi(void)
{
	struct wg_conf c;
	struct wg_spec s;
	struct wg_live l;
	char buf[4096], want_key[65];
	size_t n = 0;
	static const char reply[] = "private_key=0000000000000000000000000000000000000000000000000000000000000000\n"
				    "listen_port=4242\n"
				    "public_key=20955c687fb49a1ff340a7450ba6657ddce0f6a43d1ad28de8d0594889e79248\n"
				    "endpoint=203.0.113.2:51820\n"
				    "last_handshake_time_sec=1700000000\n"
				    "last_handshake_time_nsec=5\n"
				    "tx_bytes=1234\nrx_bytes=5678\n"
				    "persistent_keepalive_interval=25\n"
				    "allowed_ip=0.0.0.0/0\n"
				    "public_key=0101010101010101010101010101010101010101010101010101010101010101\n"
				    "rx_bytes=1\nprotocol_version=1\nerrno=0\n\n";

	spec_init(&s, &c);
	is_int(wg_uapi_set_text(&s, buf, sizeof(buf), &n), 0, "UAPI set text built");
	ok(n > 0 && buf[n - 1] == '\n' && buf[n - 2] == '\n', "  ends with an empty line");
	snprintf(want_key, sizeof(want_key), "20955c687fb49a1ff340a7450ba6657ddce0f6a43d1ad28de8d0594889e79248");
	ok(strstr(buf, "set=1\nprivate_key=") == buf && strstr(buf, "replace_peers=true\n") &&
		   strstr(buf, want_key) && strstr(buf, "endpoint=203.0.113.2:51820\n") &&
		   strstr(buf, "allowed_ip=0.0.0.0/0\nallowed_ip=::/0\n") &&
		   strstr(buf, "persistent_keepalive_interval=25\n") && strstr(buf, "preshared_key="),
	   "  keys in hex, peer, endpoint, allowed IPs, keepalive");
	is_int(wg_uapi_set_text(&s, buf, 100, &n), -ENOSPC, "a short buffer: -ENOSPC");

	memset(&l, 0, sizeof(l));
	is_int(wg_uapi_parse(reply, strlen(reply), &l), 0, "UAPI get answer parsed");
	ok(l.has_peer && l.handshake == 1700000000 && l.tx == 1234 && l.rx == 5678 && l.keepalive == 25,
	   "  first peer: handshake, bytes, keepalive (the second peer ignored)");
	ok(l.endpoint.ss_family == AF_INET && !memcmp(l.peer_key, c.peer.public_key, 32), "  endpoint, key");
	is_int(wg_uapi_parse("errno=22\n\n", 10, &l), -EPROTO, "errno != 0: -EPROTO");
	is_int(wg_uapi_parse("rx_bytes=12", 11, &l), -EPROTO, "no final newline: -EPROTO");
	is_int(wg_uapi_parse("public_key=zz\n\n", 15, &l), -EPROTO, "a bad key: -EPROTO");
	is_int(wg_uapi_parse("public_key=0101010101010101010101010101010101010101010101010101010101010101\n"
			     "tx_bytes=-1\n\n", 90, &l), -EPROTO, "a negative counter: -EPROTO");
	is_int(wg_uapi_parse("garbage\n\n", 9, &l), -EPROTO, "no '=': -EPROTO");
	wg_conf_wipe(&c);
}

/* walk the built SET_DEVICE message as the kernel would */
struct seen {
	int ifname, key, flags, peer_key, endpoint, ka, ips, psk;
};

static int peer_cb(const struct nlattr *a, void *d)
{
	struct seen *s = d;
	const struct nlattr *ip;

	switch (mnl_attr_get_type(a)) {
	case WGPEER_A_PUBLIC_KEY:
		s->peer_key = mnl_attr_get_payload_len(a) == 32;
		break;
	case WGPEER_A_PRESHARED_KEY:
		s->psk = 1;
		break;
	case WGPEER_A_ENDPOINT:
		s->endpoint = mnl_attr_get_payload_len(a) == sizeof(struct sockaddr_in);
		break;
	case WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL:
		s->ka = mnl_attr_get_u16(a);
		break;
	case WGPEER_A_ALLOWEDIPS:
		mnl_attr_for_each_nested(ip, a)
			s->ips++;
		break;
	default:
		break;
	}
	return MNL_CB_OK;
}

static int dev_cb(const struct nlattr *a, void *d)
{
	struct seen *s = d;
	const struct nlattr *p;

	switch (mnl_attr_get_type(a)) {
	case WGDEVICE_A_IFNAME:
		s->ifname = !strcmp(mnl_attr_get_str(a), "hw-abc123");
		break;
	case WGDEVICE_A_PRIVATE_KEY:
		s->key = mnl_attr_get_payload_len(a) == 32;
		break;
	case WGDEVICE_A_FLAGS:
		s->flags = mnl_attr_get_u32(a) == WGDEVICE_F_REPLACE_PEERS;
		break;
	case WGDEVICE_A_PEERS:
		mnl_attr_for_each_nested(p, a)
			mnl_attr_parse_nested(p, peer_cb, s);
		break;
	default:
		break;
	}
	return MNL_CB_OK;
}

static void test_genl(void)
{
	char buf[8192] __attribute__((aligned(8)));
	struct wg_conf c;
	struct wg_spec s;
	struct seen seen = { 0 };
	struct wg_live l;
	size_t n;

	spec_init(&s, &c);
	n = wg_genl_build_set(buf, sizeof(buf), 0x20, &s);
	ok(n > 0, "SET_DEVICE built (%zu bytes)", n);
	mnl_attr_parse((struct nlmsghdr *)buf, sizeof(struct genlmsghdr), dev_cb, &seen);
	ok(seen.ifname && seen.key && seen.flags, "  device: name, key, REPLACE_PEERS");
	ok(seen.peer_key && seen.psk && seen.endpoint && seen.ka == 25 && seen.ips == 2,
	   "  peer: key, psk, endpoint, keepalive, 2 allowed IPs");
	is_int(wg_genl_build_set(buf, 120, 0x20, &s), 0, "a short buffer: 0, nothing half-built");

	/* a GET_DEVICE reply: device attributes and one peer */
	{
		struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
		struct genlmsghdr *g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
		struct nlattr *peers, *peer;
		int64_t ts[2] = { 1700000001, 0 };

		nlh->nlmsg_type = 0x20;
		g->cmd = WG_CMD_GET_DEVICE;
		mnl_attr_put_strz(nlh, WGDEVICE_A_IFNAME, "hw-abc123");
		peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
		peer = mnl_attr_nest_start(nlh, 0);
		mnl_attr_put(nlh, WGPEER_A_PUBLIC_KEY, 32, c.peer.public_key);
		mnl_attr_put(nlh, WGPEER_A_ENDPOINT, sizeof(struct sockaddr_in), &s.endpoint);
		mnl_attr_put(nlh, WGPEER_A_LAST_HANDSHAKE_TIME, sizeof(ts), ts);
		mnl_attr_put_u64(nlh, WGPEER_A_RX_BYTES, 77);
		mnl_attr_put_u64(nlh, WGPEER_A_TX_BYTES, 88);
		mnl_attr_nest_end(nlh, peer);
		mnl_attr_nest_end(nlh, peers);
		memset(&l, 0, sizeof(l));
		is_int(wg_genl_parse(buf, nlh->nlmsg_len, &l), 0, "GET_DEVICE reply parsed");
		ok(l.has_peer && l.handshake == 1700000001 && l.rx == 77 && l.tx == 88 &&
			   l.endpoint.ss_family == AF_INET, "  peer, handshake, bytes, endpoint");
		is_int(wg_genl_parse(buf, 10, &l), -EBADMSG, "a truncated reply: -EBADMSG");
	}
	wg_conf_wipe(&c);
}

static void test_events(void)
{
	char buf[512] __attribute__((aligned(8)));
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifi;
	struct rtmsg *rtm;

	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_DELLINK;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	mnl_attr_put_strz(nlh, IFLA_IFNAME, "hw-abc123");
	is_int(wg_rt_event(buf, nlh->nlmsg_len, "hw-abc123", 7), WG_EV_LINK, "DELLINK of our link");
	is_int(wg_rt_event(buf, nlh->nlmsg_len, "hw-other", 7), 0, "DELLINK of another link");
	(void)ifi;
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_DELROUTE;
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = AF_INET;
	mnl_attr_put_u32(nlh, RTA_TABLE, 7);
	is_int(wg_rt_event(buf, nlh->nlmsg_len, "hw-abc123", 7), WG_EV_TABLE, "DELROUTE in our table");
	is_int(wg_rt_event(buf, nlh->nlmsg_len, "hw-abc123", 8), 0, "DELROUTE in another table");
	is_int(wg_rt_event(buf, 12, "hw-abc123", 7), 0, "a truncated message: nothing");
}

static void test_names(void)
{
	char n[IFNAMSIZ];

	ok(wg_ifname("abc123de", n, sizeof(n)) == 0 && !strcmp(n, "hw-abc123de"), "hw-<id>");
	ok(wg_ifname("ABC", n, sizeof(n)) && wg_ifname("../x", n, sizeof(n)) &&
		   wg_ifname("0123456789abc", n, sizeof(n)), "bad ids refused");
	ok(!strcmp(wg_impl_name(WG_IMPL_GO), "wireguard-go") && !strcmp(wg_impl_name(WG_IMPL_KERNEL), "kernel"),
	   "implementation names");
}

/* as root, in a network namespace of our own: the kill-switch rules and the routing */
static int dump_has(const char *id, const char *needle)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int found;

	if (!f)
		return -1;
	found = nft_dump(id, f) == 0 ? 0 : -1;
	fclose(f);
	if (found == 0 && buf && strstr(buf, needle))
		found = 1;
	free(buf);
	return found;
}

static void test_kernel_nft(void)
{
	struct nft_vm a = { .isolation = true, .prefix = 24, .mac = { 0x52, 0x54, 0, 0, 0, 1 } };
	struct nft_vm b;
	struct in_addr net;
	uint64_t pk = 9, by = 9;
	char ids[4][NFT_ID_MAX];
	size_t n = 0;

	snprintf(a.id, sizeof(a.id), "wga");
	snprintf(a.tap, sizeof(a.tap), "ht-wga");
	inet_pton(AF_INET, "10.77.0.10", &a.addr);
	inet_pton(AF_INET, "10.77.0.1", &a.gw);
	inet_pton(AF_INET, "10.77.0.0", &net);
	b = a;
	snprintf(b.id, sizeof(b.id), "wgb");
	snprintf(b.tap, sizeof(b.tap), "ht-wgb");
	inet_pton(AF_INET, "10.77.0.11", &b.addr);
	snprintf(a.wg.ifname, sizeof(a.wg.ifname), "hw-wga");
	a.wg.mark = WG_TABLE_MIN + 5;
	inet_pton(AF_INET, "10.64.0.1", &a.wg.dns);
	is_int(nft_base_ensure("hutch0", net, 24), 0, "nft: base rules");
	is_int(nft_vm_add(&a), 0, "nft: a VM with a tunnel");
	is_int(nft_vm_add(&b), 0, "nft: a VM without");
	ok(dump_has("wga", "kill switch: drop what would leave by another interface than hw-wga") == 1 &&
		   dump_has("wga", "wg: mark 0x68770006") == 1 &&
		   dump_has("wga", "wg: drop DNS udp/53 to the host") == 1 &&
		   dump_has("wga", "wg: the tunnel's DNS 10.64.0.1 udp/53") == 1,
	   "  its chains: mark, kill switch, DNS only through the tunnel");
	ok(dump_has(NULL, "wg: DNS udp/53 to the gateway -> the tunnel's DNS 10.64.0.1") == 1, "  its DNAT chain");
	ok(dump_has("wgb", "kill switch") == 0 && dump_has("wgb", "wg:") == 0, "  the other VM has none of it");
	ok(nft_wg_drops("wga", &pk, &by) == 0 && pk == 0 && by == 0, "  kill-switch counters read (0)");
	/* the supervisor's watch compares what is in force with what it installed */
	is_int(nft_vm_intact(&a), 1, "nft: the tunnelled VM's rules are found intact");
	{
		struct cfg_host_access ha[3] = { { .kind = CFG_HA_LAN_HOST },
						 { .kind = CFG_HA_HOST_PORT, .proto = CFG_PROTO_TCP,
						   .port = 8081 } };
		struct nft_vm c = a;

		inet_pton(AF_INET, "192.168.77.50", &ha[0].addr);
		c.host_access = ha;
		c.n_host_access = 2;
		c.dns = true;
		is_int(nft_vm_add(&c), 0, "nft: with allow-lan-host, allow-host-port and DNS");
		is_int(nft_vm_intact(&c), 1, "nft: ... found intact too");
		is_int(nft_repair(&c, "hutch0", net, 24), 0, "nft: ... and nothing to repair");
		is_int(nft_vm_add(&a), 0, "nft: back as it was");
	}
	is_int(nft_vm_add(&a), 0, "nft: the tunnelled VM replaced in one batch");
	is_int(nft_vm_del("wga"), 0, "nft: the tunnelled VM removed");
	ok(dump_has(NULL, "wg:") == 0 && dump_has("wgb", "drop daddr 10.0.0.0/8") == 1,
	   "  nothing of it is left (its DNAT chain too); the other VM's rules stay");
	ok(nft_vm_list(ids, 4, &n) == 0 && n == 1 && !strcmp(ids[0], "wgb"), "  one VM left");
	nft_base_remove();
}

static void test_kernel_rt(void)
{
	uint32_t t = WG_TABLE_MIN + 7;
	struct wg_rule mark = { .prio = WG_RULE_PRIO, .table = t, .fwmark = t };
	struct wg_rule src = { .prio = WG_RULE_PRIO, .table = t, .src_len = 32 };
	struct wg_rule lan = { .prio = WG_RULE_PRIO - 1, .table = WG_TABLE_MAIN, .src_len = 32, .dst_len = 32 };
	struct in_addr vm;
	unsigned ev = 0;
	int fd;

	inet_pton(AF_INET, "10.77.0.10", &vm);
	src.src = lan.src = vm;
	inet_pton(AF_INET, "192.168.1.5", &lan.dst);
	snprintf(src.iif, sizeof(src.iif), "hutch0");
	is_int(wg_rt_table_in_use(t), 0, "rt: the table is free");
	is_int(wg_rt_route_unreachable(t, true), 0, "rt: unreachable default in it");
	ok(wg_rt_rule(&mark, true) == 0 && wg_rt_rule(&mark, true) == 0, "rt: fwmark rule (twice is fine)");
	ok(wg_rt_rule(&src, true) == 0 && wg_rt_rule(&lan, true) == 0, "rt: source and allow-lan-host rules");
	is_int(wg_rt_table_in_use(t), 1, "rt: the table is in use");
	fd = wg_rt_watch_open();
	ok(fd >= 0, "rt: event socket");
	is_int(wg_rt_route_unreachable(t, false), 0, "rt: route removed behind our back");
	ok(wg_rt_watch_read(fd, "hw-x", t, &ev) == 0 && (ev & WG_EV_TABLE), "  the event names our table");
	wg_rt_route_unreachable(t, true);
	is_int(wg_rt_flush_table(t, vm), 0, "rt: flush");
	is_int(wg_rt_table_in_use(t), 0, "  nothing refers to the table any more");
	ok(wg_rt_rule(&lan, false) == -ENOENT, "  the allow-lan-host rule went too");
	close(fd);
}

/* what hutch sends hutch-helper: wireguard.conf text that parses back to the same struct */
static void test_text(void)
{
	struct wg_conf c, d;
	struct wg_conf_error e;
	struct sockaddr_storage ss;
	socklen_t len = 0;
	char buf[4096], small[64], s[80];
	size_t n = 0;

	is_int(wg_conf_parse(good, strlen(good), "wireguard.conf", &c, &e), 0, "the example parses");
	is_int(wg_conf_text(&c, buf, sizeof(buf), &n), 0, "written back as text");
	ok(n > 0 && n < sizeof(buf) && strstr(buf, K1), "  with its private key (for the helper only)");
	is_int(wg_conf_parse(buf, n, "conf", &d, &e), 0, "  which parses");
	if (e.msg[0])
		printf("#   %s\n", e.msg);
	ok(!memcmp(&c, &d, sizeof(c)), "  to the same struct");
	is_int(wg_conf_text(&c, small, sizeof(small), &n), -ENOSPC, "a buffer too small: -ENOSPC");
	ok(!memchr(small, '=', sizeof(small)), "  and the buffer is wiped");
	is_int(wg_sockaddr_parse("203.0.113.2:51820", &ss, &len), 0, "endpoint A.B.C.D:P");
	ok(ss.ss_family == AF_INET && len == sizeof(struct sockaddr_in) && !wg_sockaddr_str(&ss, s, sizeof(s)) &&
	   !strcmp(s, "203.0.113.2:51820"), "  and back: %s", s);
	is_int(wg_sockaddr_parse("[2001:db8::1]:443", &ss, &len), 0, "endpoint [v6]:P");
	ok(ss.ss_family == AF_INET6 && !wg_sockaddr_str(&ss, s, sizeof(s)) && !strcmp(s, "[2001:db8::1]:443"),
	   "  and back: %s", s);
	is_int(wg_sockaddr_parse("example.com:51820", &ss, &len), -EINVAL, "a name: refused (nothing resolved)");
	is_int(wg_sockaddr_parse("1.2.3.4:0", &ss, &len), -EINVAL, "port 0: refused");
	is_int(wg_sockaddr_parse("1.2.3.4:65536", &ss, &len), -EINVAL, "port 65536: refused");
	is_int(wg_sockaddr_parse("1.2.3.4", &ss, &len), -EINVAL, "no port: refused");
	is_int(wg_sockaddr_parse("2001:db8::1:443", &ss, &len), -EINVAL, "IPv6 without brackets: refused");
	wg_conf_wipe(&c);
	wg_conf_wipe(&d);
}

int main(void)
{
	test_parse();
	test_text();
	test_file();
	test_uapi();
	test_genl();
	test_events();
	test_names();
	if (geteuid() == 0 && unshare(CLONE_NEWNET) == 0) {
		test_kernel_nft();
		test_kernel_rt();
	} else {
		ok(1, "# SKIP kernel checks need root");
	}
	return tap_done();
}
