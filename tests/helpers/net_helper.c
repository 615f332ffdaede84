// SPDX-License-Identifier: MIT
/*
 * net_helper CMD...: drives net/ for tests/net/ and tests/bench/, always
 * inside a network namespace the test created.
 *   bridge BR CIDR            create/configure bridge (net_bridge_ensure)
 *   attach PORT BR [MAC]      enslave + isolate + up an existing link (MAC: static FDB entry)
 *   tap ID BR                 create tap ht-ID on BR, print "ready ht-ID", hold it until stdin closes
 *   isolated PORT             print 1 or 0
 *   list PREFIX [MASTER]      print matching link names
 *   del NAME | release BR     delete a link | delete BR if no ht-* port is left (prints 1/0)
 *   serve PORT BR CIDR MAC ADDR NAME   DHCP for MAC on PORT + DNS on the gateway, until SIGTERM;
 *                             prints "ack ADDR" on each ACK
 *   probe IF MAC N            N DISCOVERs out of IF, prints OFFER latency in microseconds
 *   sv VMDIR NAME teardown|die|hold|guest   the net extension in a fake supervisor, the
 *                             test acting as QEMU on the tap fd: DISCOVER, REQUEST, prints
 *                             "lease IP", then tears down, _exit()s like a kill -9, serves
 *                             until stdin closes (hold), or plays the guest (guest: stdin
 *                             commands "tx HEX", "flood N HEX", "wait MS", "sync"; frames
 *                             to the guest printed as "rx HEX"); NET_HELPER_IPV6=1 sets
 *                             ipv6: true, NET_HELPER_FORWARD="tcp/H:G udp/H:G" forwards
 *   vm VMDIR NAME KERNEL INITRD   a minimal supervisor: the net extension + a real
 *                             qemu-system-x86_64 (TCG) booting KERNEL/INITRD with
 *                             hutch.net=dhcp, console on VMDIR/console.sock (+ .log);
 *                             writes qemu_pid to state; tears down when QEMU exits
 *                             or on SIGTERM (QEMU killed first); NET_HELPER_FORWARD=H:G
 *                             adds the forward tcp/H:G
 *   gc VMDIR | inspect VMDIR  the extension's gc / inspect from state.json
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "net/dhcp.h"
#include "net/dns.h"
#include "net/net.h"
#include "net/nl.h"
#include "net/tap.h"
#include "src/ext.h"
#include "src/log.h"
#include "src/proc.h"
#include "src/util.h"

extern const struct sv_ext net_sv_ext;

static volatile sig_atomic_t stop;

static void on_sig(int s)
{
	(void)s;
	stop = 1;
}

static int fail(int rc, const char *what)
{
	fprintf(stderr, "net_helper: %s: %s\n", what, strerror(rc < 0 ? -rc : rc));
	return 1;
}

/* a client frame (Ethernet/IP/UDP/BOOTP) of DHCP @type from @mac */
static size_t client_frame(uint8_t *f, const uint8_t *mac, uint8_t type, uint32_t xid,
			   struct in_addr req, struct in_addr srv)
{
	uint8_t *ip = f + 14, *udp = ip + 20, *bp = udp + 8, *o = bp + 240;
	size_t ol = 0, bplen, n;

	memset(f, 0, 600);
	memset(f, 0xff, 6);
	memcpy(f + 6, mac, 6);
	f[12] = 0x08;
	o[ol++] = 53;
	o[ol++] = 1;
	o[ol++] = type;
	if (req.s_addr) {
		o[ol++] = 50;
		o[ol++] = 4;
		memcpy(o + ol, &req, 4);
		ol += 4;
	}
	if (srv.s_addr) {
		o[ol++] = 54;
		o[ol++] = 4;
		memcpy(o + ol, &srv, 4);
		ol += 4;
	}
	o[ol++] = 255;
	bplen = 300;
	n = 14 + 20 + 8 + bplen;
	ip[0] = 0x45;
	ip[2] = (uint8_t)((20 + 8 + bplen) >> 8);
	ip[3] = (uint8_t)(20 + 8 + bplen);
	ip[8] = 64;
	ip[9] = 17;
	memset(ip + 16, 0xff, 4);
	udp[1] = 68;
	udp[3] = 67;
	udp[4] = (uint8_t)((8 + bplen) >> 8);
	udp[5] = (uint8_t)(8 + bplen);
	bp[0] = 1;
	bp[1] = 1;
	bp[2] = 6;
	memcpy(bp + 4, &xid, 4);
	memcpy(bp + 28, mac, 6);
	bp[236] = 99;
	bp[237] = 130;
	bp[238] = 83;
	bp[239] = 99;
	return n;
}

/* the DHCP type and yiaddr of a server reply frame for @xid, or -1 */
static int reply_info(const uint8_t *f, size_t n, uint32_t xid, struct in_addr *yi)
{
	const uint8_t *bp = f + 14 + 20 + 8, *v;
	uint8_t len;

	if (n < 14 + 20 + 8 + 240 || f[12] != 0x08 || f[13] != 0 || f[14 + 9] != 17 ||
	    f[14 + 20 + 3] != 68 || memcmp(bp + 4, &xid, 4))
		return -1;
	v = dhcp_opt_find(bp + 240, n - (14 + 20 + 8 + 240), 53, &len);
	if (!v || len != 1)
		return -1;
	memcpy(yi, bp + 16, 4);
	return *v;
}

static int cmd_serve(char **av)
{
	struct net_conf nc = { 0 };
	struct dhcp_lease l = { .lease_s = 3600, .mtu = 1500 };
	struct sockaddr_in up[DNS_UPSTREAM_MAX];
	struct dns_fwd *dns = NULL;
	size_t n_up = 0;
	int ifindex, fd, rc, brix;
	const char *rp = getenv("HUTCH_RESOLV_CONF");

	if ((rc = net_subnet_parse(av[2], &nc)))
		return fail(rc, "subnet");
	if ((rc = net_mac_parse(av[3], l.mac)))
		return fail(rc, "mac");
	if (inet_pton(AF_INET, av[4], &l.addr) != 1)
		return fail(EINVAL, "addr");
	util_snprintf(l.hostname, sizeof(l.hostname), "%s", av[5]);
	l.gw = nc.gw;
	l.prefix = nc.prefix;
	if ((rc = nl_link_get(av[0], &ifindex, NULL)) || (rc = nl_link_get(av[1], &brix, l.srv_mac)))
		return fail(rc, "link");
	fd = dhcp_open(ifindex);
	if (fd < 0)
		return fail(fd, "dhcp_open");
	if (rp && dns_resolv_load(rp, up, DNS_UPSTREAM_MAX, &n_up) == 0) {
		struct sockaddr_in lsn = { .sin_family = AF_INET, .sin_port = htons(53), .sin_addr = nc.gw };

		if ((rc = dns_fwd_open(&lsn, nc.net, nc.prefix, up, n_up, &dns)))
			return fail(rc, "dns_fwd_open");
	}
	printf("serving\n");
	fflush(stdout);
	while (!stop) {
		struct pollfd p[3] = { { .fd = fd, .events = POLLIN },
				       { .fd = dns ? dns_fwd_client_fd(dns) : -1, .events = POLLIN },
				       { .fd = dns ? dns_fwd_upstream_fd(dns) : -1, .events = POLLIN } };
		enum dhcp_event ev;

		if (poll(p, 3, 500) < 0)
			continue;
		if (p[0].revents) {
			dhcp_input(fd, ifindex, &l, &ev);
			if (ev == DHCP_EV_ACK) {
				printf("ack %s\n", av[4]);
				fflush(stdout);
			}
		}
		if (p[1].revents)
			dns_fwd_on_client(dns);
		if (p[2].revents)
			dns_fwd_on_upstream(dns);
	}
	dns_fwd_close(dns);
	close(fd);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static int cmd_probe(char **av)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_IP) };
	uint8_t mac[6], f[1600];
	struct in_addr none = { 0 }, yi;
	long n;
	uint64_t *lat;
	size_t got = 0;
	int fd, rc;

	if ((rc = nl_link_get(av[0], &sll.sll_ifindex, NULL)) || (rc = net_mac_parse(av[1], mac)) ||
	    (rc = util_parse_long(av[2], 1, 100000, &n)))
		return fail(rc ? rc : EINVAL, "args");
	lat = calloc((size_t)n, sizeof(*lat));
	fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_IP));
	if (fd < 0 || !lat || bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0)
		return fail(errno, "packet socket");
	for (long i = 0; i < n; i++) {
		uint32_t xid = (uint32_t)(0x1000 + i);
		size_t fl = client_frame(f, mac, 1, xid, none, none);
		uint64_t t0 = now_us();

		sll.sll_halen = 6;
		memset(sll.sll_addr, 0xff, 6);
		if (sendto(fd, f, fl, 0, (struct sockaddr *)&sll, sizeof(sll)) < 0)
			return fail(errno, "send");
		for (;;) {
			struct pollfd p = { .fd = fd, .events = POLLIN };
			ssize_t r;

			if (poll(&p, 1, 2000) <= 0)
				break;
			r = recv(fd, f, sizeof(f), 0);
			if (r > 0 && reply_info(f, (size_t)r, xid, &yi) == 2) {
				lat[got++] = now_us() - t0;
				break;
			}
		}
	}
	if (!got) {
		printf("no offer\n");
		return 1;
	}
	qsort(lat, got, sizeof(*lat), cmp_u64);
	printf("offers %zu/%ld min_us %llu median_us %llu p99_us %llu max_us %llu\n", got, n,
	       (unsigned long long)lat[0], (unsigned long long)lat[got / 2],
	       (unsigned long long)lat[got * 99 / 100], (unsigned long long)lat[got - 1]);
	free(lat);
	return 0;
}

/*
 * ---- a fake supervisor: just enough of the core's sv_* for net_sv_ext ----
 * These strong definitions keep the archive's src/sv.o out of the link (it
 * defines the same names); net_sv.o's up_* references resolve to src/vm.o,
 * which does not pull the supervisor in.
 */

struct watch {
	int fd;
	void (*cb)(struct sv_ctx *c, int fd, void *arg);
	void *arg;
};
static struct watch watches[8];
static int qemu_fd = -1;

static char *qemu_args[16];
static size_t n_qemu_args;

static int nh_qemu_arg(struct sv_ctx *c, const char *arg)
{
	(void)c;
	printf("qemu-arg %s\n", arg);
	if (n_qemu_args < UTIL_ARRAY_SIZE(qemu_args))
		qemu_args[n_qemu_args++] = strdup(arg);
	return 0;
}

static int nh_qemu_fd(struct sv_ctx *c, int fd)
{
	(void)c;
	qemu_fd = fd;
	return 3;
}

static int nh_watch_fd(struct sv_ctx *c, int fd, void (*cb)(struct sv_ctx *c, int fd, void *arg),
		       void *arg)
{
	(void)c;
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(watches); i++)
		if (!watches[i].cb) {
			watches[i] = (struct watch){ fd, cb, arg };
			return 0;
		}
	return -ENOSPC;
}

static void nh_unwatch_fd(struct sv_ctx *c, int fd)
{
	(void)c;
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(watches); i++)
		if (watches[i].cb && watches[i].fd == fd)
			watches[i].cb = NULL;
}

/* this program hosts the net extension in place of the supervisor */
static const struct sv_host nh_host = {
	.qemu_arg = nh_qemu_arg,
	.qemu_fd = nh_qemu_fd,
	.watch_fd = nh_watch_fd,
	.unwatch_fd = nh_unwatch_fd,
};

/* run the watched fds; return a reply frame from the tap (minus the vnet header) for @xid */
static int pump_until_reply(struct sv_ctx *c, uint32_t xid, struct in_addr *yi)
{
	uint8_t f[2048];
	uint64_t end = util_monotonic_ms() + 10000;

	while (util_monotonic_ms() < end) {
		struct pollfd p[UTIL_ARRAY_SIZE(watches) + 1];
		size_t n = 0;

		p[n++] = (struct pollfd){ .fd = qemu_fd, .events = POLLIN };
		for (size_t i = 0; i < UTIL_ARRAY_SIZE(watches); i++)
			p[n++] = (struct pollfd){ .fd = watches[i].cb ? watches[i].fd : -1, .events = POLLIN };
		if (poll(p, n, 200) <= 0)
			continue;
		for (size_t i = 1; i < n; i++)
			if (p[i].revents && watches[i - 1].cb)
				watches[i - 1].cb(c, watches[i - 1].fd, watches[i - 1].arg);
		if (p[0].revents) {
			ssize_t r = read(qemu_fd, f, sizeof(f));
			int t;

			/* IFF_VNET_HDR: a 10-byte virtio_net_hdr precedes each frame */
			if (r > 10 && (t = reply_info(f + 10, (size_t)r - 10, xid, yi)) > 0)
				return t;
		}
	}
	return -1;
}

static int load_state(const char *dir, json_t **st)
{
	char path[4096], *buf;
	size_t len;
	int rc;

	if ((rc = util_path_join(path, sizeof(path), dir, "state.json")))
		return rc;
	if ((rc = util_read_file(path, 1 << 20, &buf, &len)))
		return rc;
	*st = json_loadb(buf, len, 0, NULL);
	free(buf);
	return *st ? 0 : -EINVAL;
}

/* run every watched fd that is ready within @ms */
static void pump(struct sv_ctx *c, int ms)
{
	struct pollfd p[UTIL_ARRAY_SIZE(watches)];

	for (size_t i = 0; i < UTIL_ARRAY_SIZE(watches); i++)
		p[i] = (struct pollfd){ .fd = watches[i].cb ? watches[i].fd : -1, .events = POLLIN };
	if (poll(p, UTIL_ARRAY_SIZE(watches), ms) <= 0)
		return;
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(watches); i++)
		if (p[i].revents && watches[i].cb)
			watches[i].cb(c, watches[i].fd, watches[i].arg);
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* HEX into @f after a zeroed virtio_net_hdr (IFF_VNET_HDR); total length or 0 */
static size_t unhex_frame(const char *hex, uint8_t *f, size_t max)
{
	size_t n = 10;

	memset(f, 0, 10);
	for (; hex[0] && hex[1] && n < max; hex += 2) {
		int h = hexval(hex[0]), l = hexval(hex[1]);

		if (h < 0 || l < 0)
			break;
		f[n++] = (uint8_t)(h << 4 | l);
	}
	return n > 10 + 14 ? n : 0;
}

/*
 * One command of guest mode: "tx HEX" writes a frame into the tap as the
 * guest would send it; "flood N HEX" writes it N times while serving the
 * watches; "wait MS" serves the watches for MS; "sync" answers "synced".
 */
static void guest_cmd(struct sv_ctx *c, char *line)
{
	uint8_t f[2048];
	size_t n;
	long cnt = 1;
	char *hex = line;

	if (!strncmp(line, "wait ", 5)) {
		long ms = strtol(line + 5, NULL, 10);
		uint64_t end = util_monotonic_ms() + (uint64_t)(ms > 0 ? ms : 0);

		while (util_monotonic_ms() < end)
			pump(c, 50);
		return;
	}
	if (!strcmp(line, "sync")) {
		printf("synced\n");
		fflush(stdout);
		return;
	}
	if (!strncmp(line, "tx ", 3)) {
		hex = line + 3;
	} else if (!strncmp(line, "flood ", 6)) {
		cnt = strtol(line + 6, &hex, 10);
		hex += strspn(hex, " ");
	} else {
		return;
	}
	n = unhex_frame(hex, f, sizeof(f));
	if (!n)
		return;
	for (long i = 0; i < cnt; i++) {
		if (write(qemu_fd, f, n) < 0 && errno != EAGAIN)
			fprintf(stderr, "net_helper: tap write: %s\n", strerror(errno));
		if (i % 64 == 63)
			pump(c, 0);
	}
	printf("sent %ld\n", cnt);
	fflush(stdout);
}

/*
 * guest mode: commands on stdin (guest_cmd()), every frame the host sends
 * to the guest printed as "rx HEX" (without the vnet header), the watches
 * served, until stdin closes.
 */
static void guest_loop(struct sv_ctx *c)
{
	static char in[1 << 16];
	size_t have = 0;

	signal(SIGTERM, on_sig);
	while (!stop) {
		struct pollfd p[2] = { { .fd = 0, .events = POLLIN }, { .fd = qemu_fd, .events = POLLIN } };
		uint8_t f[2048];
		char *nl;
		ssize_t r;

		pump(c, 0);
		if (poll(p, 2, 20) <= 0)
			continue;
		if (p[1].revents & (POLLERR | POLLHUP | POLLNVAL))
			return;	/* the tap is gone (its namespace was deleted) */
		if (p[1].revents & POLLIN) {
			r = read(qemu_fd, f, sizeof(f));
			if (r > 10) {
				printf("rx ");
				for (ssize_t i = 10; i < r; i++)
					printf("%02x", f[i]);
				printf("\n");
				fflush(stdout);
			}
		}
		if (!(p[0].revents & (POLLIN | POLLHUP)))
			continue;
		r = read(0, in + have, sizeof(in) - 1 - have);
		if (r <= 0)
			return;
		have += (size_t)r;
		in[have] = 0;
		while ((nl = strchr(in, '\n'))) {
			*nl = 0;
			guest_cmd(c, in);
			have -= (size_t)(nl + 1 - in);
			memmove(in, nl + 1, have + 1);
		}
		if (have == sizeof(in) - 1)
			have = 0;	/* an overlong line: dropped */
	}
}

/* NET_HELPER_FORWARD="tcp/H:G udp/H:G": at most two forwards */
static size_t env_forwards(struct cfg_forward *fw)
{
	const char *e = getenv("NET_HELPER_FORWARD");
	size_t n = 0;
	char proto[4];
	unsigned int hp, gp;
	int used;

	while (e && n < 2 && sscanf(e, " %3[a-z]/%u:%u%n", proto, &hp, &gp, &used) == 3) {
		if (!hp || hp > 65535 || !gp || gp > 65535)
			break;
		fw[n] = (struct cfg_forward){ .proto = strcmp(proto, "udp") ? CFG_PROTO_TCP : CFG_PROTO_UDP,
					      .host_port = (uint16_t)hp, .guest_port = (uint16_t)gp };
		n++;
		e += used;
	}
	return n;
}

static int cmd_sv(char **av)
{
	struct cfg_vm vm = { .network = { .mode = CFG_NET_NAT, .isolation = true },
			     .timeouts = { .boot = 30 } };
	struct sv_ctx c = { .vm = &vm, .vm_dir = av[0], .uid = 0, .gid = 0, .host = &nh_host };
	uint8_t f[600], vf[610] = { 0 };
	struct in_addr none = { 0 }, yi, gw;
	const char *mac_s;
	uint8_t mac[6];
	void *priv = NULL;
	uint32_t xid = 0x4242;
	size_t n;
	int rc, t;

	struct cfg_forward fw[2];
	size_t nfw = env_forwards(fw);

	vm.network.ipv6 = getenv("NET_HELPER_IPV6") != NULL;
	vm.network.forward = nfw ? fw : NULL;
	vm.network.n_forward = nfw;
	util_snprintf(vm.name, sizeof(vm.name), "%s", av[1]);
	util_mkdir_p(av[0], 0700);
	if (load_state(av[0], &c.state))
		c.state = json_object();
	json_object_set_new(c.state, "name", json_string(vm.name));
	json_object_set_new(c.state, "supervisor_pid", json_integer(getpid()));
	rc = net_sv_ext.prepare(&c, &priv);
	if (rc)
		return fail(rc, "prepare");
	printf("prepared\n");
	fflush(stdout);
	mac_s = json_string_value(json_object_get(c.state, "mac"));
	if (!mac_s || net_mac_parse(mac_s, mac))
		return fail(EINVAL, "mac in state");
	/* the guest: DISCOVER, then REQUEST what was offered, through the tap fd like QEMU */
	n = client_frame(f, mac, 1, xid, none, none);
	memcpy(vf + 10, f, n);
	if (write(qemu_fd, vf, n + 10) < 0)
		return fail(errno, "tap write");
	t = pump_until_reply(&c, xid, &yi);
	printf("offer %s\n", t == 2 ? inet_ntoa(yi) : "none");
	inet_pton(AF_INET, json_string_value(json_object_get(json_object_get(c.state, "net"), "gateway")), &gw);
	n = client_frame(f, mac, 3, ++xid, yi, gw);
	memcpy(vf + 10, f, n);
	if (write(qemu_fd, vf, n + 10) < 0)
		return fail(errno, "tap write");
	t = pump_until_reply(&c, xid, &yi);
	printf("lease %s\n", t == 5 ? inet_ntoa(yi) : "none");
	fflush(stdout);
	if (!strcmp(av[2], "hold")) {
		/* keep the VM "running" until stdin closes, serving DHCP/DNS */
		signal(SIGTERM, on_sig);
		while (!stop) {
			struct pollfd p[UTIL_ARRAY_SIZE(watches) + 1];
			size_t k = 0;

			p[k++] = (struct pollfd){ .fd = 0, .events = POLLIN };
			for (size_t i = 0; i < UTIL_ARRAY_SIZE(watches); i++)
				p[k++] = (struct pollfd){ .fd = watches[i].cb ? watches[i].fd : -1, .events = POLLIN };
			if (poll(p, k, 500) <= 0)
				continue;
			if (p[0].revents) {
				char b[64];

				if (read(0, b, sizeof(b)) <= 0)
					break;
			}
			for (size_t i = 1; i < k; i++)
				if (p[i].revents && watches[i - 1].cb)
					watches[i - 1].cb(&c, watches[i - 1].fd, watches[i - 1].arg);
		}
	} else if (!strcmp(av[2], "guest")) {
		guest_loop(&c);
	} else if (!strcmp(av[2], "die")) {
		_exit(0);	/* like kill -9: no teardown, the kernel closes our fds */
	}
	close(qemu_fd);	/* QEMU exits */
	net_sv_ext.teardown(&c, priv);
	printf("down\n");
	json_decref(c.state);
	return 0;
}

static int cmd_vm(char **av)
{
	struct cfg_vm vm = { .network = { .mode = CFG_NET_NAT, .isolation = true },
			     .timeouts = { .boot = 300 } };
	struct sv_ctx c = { .vm = &vm, .vm_dir = av[0], .uid = 0, .gid = 0, .host = &nh_host };
	char append[256], chardev[4096 + 128], con[4096];
	const char *argv[48];
	struct proc_fdmap fds[1];
	struct proc_opts o = { .argv = argv, .fds = fds, .n_fds = 1, .want_pidfd = true };
	void *priv = NULL;
	pid_t pid;
	int pidfd, rc, st;
	size_t n = 0;

	struct cfg_forward fw = { .proto = CFG_PROTO_TCP };
	const char *fe = getenv("NET_HELPER_FORWARD");	/* "HOSTPORT:GUESTPORT", tcp */
	unsigned int hp, gp;

	if (fe && sscanf(fe, "%u:%u", &hp, &gp) == 2 && hp && hp < 65536 && gp && gp < 65536) {
		fw.host_port = (uint16_t)hp;
		fw.guest_port = (uint16_t)gp;
		vm.network.forward = &fw;
		vm.network.n_forward = 1;
	}
	util_snprintf(vm.name, sizeof(vm.name), "%s", av[1]);
	util_mkdir_p(av[0], 0700);
	if (load_state(av[0], &c.state))
		c.state = json_object();
	json_object_set_new(c.state, "name", json_string(vm.name));
	json_object_set_new(c.state, "supervisor_pid", json_integer(getpid()));
	rc = net_sv_ext.prepare(&c, &priv);
	if (rc)
		return fail(rc, "prepare");
	util_snprintf(append, sizeof(append), "console=ttyS0 quiet no_timer_check hutch.net=dhcp hutch.hostname=%s", vm.name);
	util_path_join(con, sizeof(con), av[0], "console.sock");
	util_snprintf(chardev, sizeof(chardev), "socket,id=con,path=%s,server=on,wait=off,logfile=%s.log", con, con);
	argv[n++] = "qemu-system-x86_64";
	argv[n++] = "-accel"; argv[n++] = "tcg";
	argv[n++] = "-M"; argv[n++] = "q35";
	argv[n++] = "-m"; argv[n++] = "256";
	argv[n++] = "-display"; argv[n++] = "none";
	argv[n++] = "-no-user-config"; argv[n++] = "-nodefaults";
	argv[n++] = "-kernel"; argv[n++] = av[2];
	argv[n++] = "-initrd"; argv[n++] = av[3];
	argv[n++] = "-append"; argv[n++] = append;
	argv[n++] = "-chardev"; argv[n++] = chardev;
	argv[n++] = "-serial"; argv[n++] = "chardev:con";
	for (size_t i = 0; i < n_qemu_args; i++)
		argv[n++] = qemu_args[i];
	argv[n] = NULL;
	fds[0] = (struct proc_fdmap){ qemu_fd, 3 };
	o.envp = proc_default_env();
	rc = proc_spawn(&o, &pid, &pidfd);
	if (rc) {
		net_sv_ext.teardown(&c, priv);
		return fail(rc, "qemu");
	}
	json_object_set_new(c.state, "qemu_pid", json_integer(pid));
	sv_state_save(&c);
	printf("qemu %d\n", (int)pid);
	fflush(stdout);
	while (!stop) {
		struct pollfd p[UTIL_ARRAY_SIZE(watches) + 1];
		size_t k = 0;

		p[k++] = (struct pollfd){ .fd = pidfd, .events = POLLIN };
		for (size_t i = 0; i < UTIL_ARRAY_SIZE(watches); i++)
			p[k++] = (struct pollfd){ .fd = watches[i].cb ? watches[i].fd : -1, .events = POLLIN };
		if (poll(p, k, 500) <= 0)
			continue;
		if (p[0].revents)
			break;
		for (size_t i = 1; i < k; i++)
			if (p[i].revents && watches[i - 1].cb)
				watches[i - 1].cb(&c, watches[i - 1].fd, watches[i - 1].arg);
	}
	kill(pid, SIGKILL);
	proc_wait(pid, &st);
	close(pidfd);
	net_sv_ext.teardown(&c, priv);
	printf("down\n");
	json_decref(c.state);
	return 0;
}

/* where ip_forward's previous value is recorded: the test's own run dir */
static const char *helper_run_dir(void)
{
	const char *d = getenv("HUTCH_RUN_DIR");

	return d && *d ? d : "/run/hutch";
}

int main(int argc, char **argv)
{
	int rc;
	const char *cmd = argc > 1 ? argv[1] : "";

	log_init("net_helper", LOG_LVL_INFO);
	signal(SIGTERM, on_sig);
	signal(SIGINT, on_sig);
	if (!strcmp(cmd, "bridge") && argc == 4) {
		struct net_conf nc = { 0 };

		if ((rc = net_subnet_parse(argv[3], &nc)))
			return fail(rc, "subnet");
		util_snprintf(nc.bridge, sizeof(nc.bridge), "%s", argv[2]);
		rc = net_bridge_ensure(&nc, false, helper_run_dir());
		return rc ? fail(rc, "bridge") : 0;
	}
	if (!strcmp(cmd, "attach") && (argc == 4 || argc == 5)) {
		uint8_t mac[6];

		/* the guest's MAC becomes a static FDB entry: ports do not learn */
		if (argc == 5 && (rc = net_mac_parse(argv[4], mac)))
			return fail(rc, "mac");
		if ((rc = net_port_attach(argv[2], argv[3], false)) ||
		    (argc == 5 && (rc = nl_fdb_add(argv[2], mac))) || (rc = nl_link_up(argv[2])))
			return fail(rc, "attach");
		return 0;
	}
	if (!strcmp(cmd, "tap") && argc == 4) {
		char name[IFNAMSIZ], b[64];
		int fd;

		if ((rc = tap_name(argv[2], name, sizeof(name))) || (rc = tap_open(name, 0, 0, &fd)))
			return fail(rc, "tap");
		if ((rc = net_port_attach(name, argv[3], false)) || (rc = nl_link_up(name)))
			return fail(rc, "attach");
		printf("ready %s\n", name);
		fflush(stdout);
		while (read(0, b, sizeof(b)) > 0)
			;
		close(fd);
		return 0;
	}
	if (!strcmp(cmd, "isolated") && argc == 3) {
		bool on;

		if ((rc = nl_brport_isolated(argv[2], &on)))
			return fail(rc, "isolated");
		printf("%d\n", on);
		return 0;
	}
	if (!strcmp(cmd, "list") && argc >= 3) {
		char names[64][IFNAMSIZ];
		size_t n;

		if ((rc = nl_link_list(argv[2], argc > 3 ? argv[3] : NULL, names, 64, &n)))
			return fail(rc, "list");
		for (size_t i = 0; i < n && i < 64; i++)
			printf("%s\n", names[i]);
		return 0;
	}
	if (!strcmp(cmd, "del") && argc == 3) {
		rc = nl_link_del(argv[2]);
		return rc ? fail(rc, "del") : 0;
	}
	if (!strcmp(cmd, "release") && argc == 3) {
		rc = net_bridge_release(argv[2], helper_run_dir());
		if (rc < 0)
			return fail(rc, "release");
		printf("%d\n", rc);
		return 0;
	}
	if (!strcmp(cmd, "serve") && argc == 8)
		return cmd_serve(argv + 2);
	if (!strcmp(cmd, "probe") && argc == 5)
		return cmd_probe(argv + 2);
	if (!strcmp(cmd, "vm") && argc == 6)
		return cmd_vm(argv + 2);
	if (!strcmp(cmd, "sv") && argc == 5)
		return cmd_sv(argv + 2);
	if ((!strcmp(cmd, "gc") || !strcmp(cmd, "inspect")) && argc == 3) {
		json_t *st;

		if ((rc = load_state(argv[2], &st)))
			return fail(rc, "state");
		if (!strcmp(cmd, "gc"))
			rc = net_sv_ext.gc(argv[2], st);
		else
			rc = net_sv_ext.inspect(argv[2], st, stdout, NULL);
		json_decref(st);
		return rc ? fail(rc, cmd) : 0;
	}
	fprintf(stderr, "usage: see the comment at the top of tests/helpers/net_helper.c\n");
	return 2;
}
