// SPDX-License-Identifier: MIT
/*
 * nftctl CMD ...: drives net/nft.c (and net/fwd.c) for tests/net/t-isolation*.sh
 * and tests/bench/bench-nft.sh, without a supervisor or QEMU.
 *   base BRIDGE NET/PREFIX                  nft_base_ensure
 *   add ID TAP MAC ADDR GW PREFIX [noiso] [ipv6] [dns] [host tcp|udp/N]... [lan A]...
 *   del ID | list | dump [ID] | remove | present [ID]
 *   watch SECONDS                           prints "hit" when hutch's tables lose something
 *   bench N BRIDGE                          N x (add + del), prints ms per add and per del
 *   fwd GUEST_ADDR SPEC...                  relay "tcp/H:G" or "udp/H:G" until SIGTERM
 *                                           (through fwd_epoll_fd()/fwd_dispatch())
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "net/fwd.h"
#include "net/nft.h"
#include "src/log.h"
#include "src/util.h"

static int usage(void)
{
	fprintf(stderr, "usage: nftctl base|add|del|list|dump|remove|present|watch|bench|fwd ...\n");
	return 2;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	char end;

	if (sscanf(s, "%x:%x:%x:%x:%x:%x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &end) != 6)
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		if (v[i] > 255)
			return -EINVAL;
		mac[i] = (uint8_t)v[i];
	}
	return 0;
}

static int parse_proto_port(const char *s, enum cfg_proto *proto, const char **rest)
{
	if (!strncmp(s, "tcp/", 4))
		*proto = CFG_PROTO_TCP;
	else if (!strncmp(s, "udp/", 4))
		*proto = CFG_PROTO_UDP;
	else
		return -EINVAL;
	*rest = s + 4;
	return 0;
}

static int parse_net(const char *s, struct in_addr *a, uint8_t *prefix)
{
	char buf[32];
	char *slash;
	long p;

	if (util_snprintf(buf, sizeof(buf), "%s", s) < 0)
		return -EINVAL;
	slash = strchr(buf, '/');
	if (!slash)
		return -EINVAL;
	*slash = 0;
	if (inet_pton(AF_INET, buf, a) != 1 || util_parse_long(slash + 1, 0, 32, &p))
		return -EINVAL;
	*prefix = (uint8_t)p;
	return 0;
}

static int cmd_add(int argc, char **argv)
{
	struct cfg_host_access ha[16];
	struct nft_vm vm = { .isolation = true, .host_access = ha };
	long prefix;
	int rc;

	if (argc < 7)
		return usage();
	if (util_snprintf(vm.id, sizeof(vm.id), "%s", argv[1]) < 0 ||
	    util_snprintf(vm.tap, sizeof(vm.tap), "%s", argv[2]) < 0 || parse_mac(argv[3], vm.mac) ||
	    inet_pton(AF_INET, argv[4], &vm.addr) != 1 || inet_pton(AF_INET, argv[5], &vm.gw) != 1 ||
	    util_parse_long(argv[6], 0, 32, &prefix))
		return usage();
	vm.prefix = (uint8_t)prefix;
	for (int i = 7; i < argc; i++) {
		if (!strcmp(argv[i], "noiso")) {
			vm.isolation = false;
		} else if (!strcmp(argv[i], "ipv6")) {
			vm.ipv6 = true;
		} else if (!strcmp(argv[i], "dns")) {
			vm.dns = true;
		} else if (!strcmp(argv[i], "host") && i + 1 < argc && vm.n_host_access < 16) {
			struct cfg_host_access *h = &ha[vm.n_host_access++];
			const char *rest;
			long port;

			h->kind = CFG_HA_HOST_PORT;
			if (parse_proto_port(argv[++i], &h->proto, &rest) || util_parse_long(rest, 1, 65535, &port))
				return usage();
			h->port = (uint16_t)port;
		} else if (!strcmp(argv[i], "lan") && i + 1 < argc && vm.n_host_access < 16) {
			struct cfg_host_access *h = &ha[vm.n_host_access++];

			h->kind = CFG_HA_LAN_HOST;
			if (inet_pton(AF_INET, argv[++i], &h->addr) != 1)
				return usage();
		} else {
			return usage();
		}
	}
	rc = nft_vm_add(&vm);
	if (rc)
		fprintf(stderr, "nft_vm_add: %s\n", strerror(-rc));
	return rc ? 1 : 0;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmd_bench(int argc, char **argv)
{
	struct cfg_host_access ha[2] = { { .kind = CFG_HA_HOST_PORT, .proto = CFG_PROTO_TCP, .port = 8080 },
					 { .kind = CFG_HA_LAN_HOST } };
	struct nft_vm vm = { .isolation = true, .host_access = ha, .n_host_access = 2, .prefix = 24,
			     .mac = { 0x52, 0x54, 0, 1, 2, 3 } };
	double t_add = 0, t_del = 0, t;
	long n;
	int rc;

	if (argc < 3 || util_parse_long(argv[1], 1, 10000, &n))
		return usage();
	inet_pton(AF_INET, "192.168.1.50", &ha[1].addr);
	inet_pton(AF_INET, "10.77.0.1", &vm.gw);
	rc = nft_base_ensure(argv[2], (struct in_addr){ .s_addr = htonl(0x0a4d0000) }, 24);
	if (rc)
		return 1;
	for (long i = 0; i < n; i++) {
		snprintf(vm.id, sizeof(vm.id), "b%ld", i % 200);
		snprintf(vm.tap, sizeof(vm.tap), "ht-b%ld", i % 200);
		vm.addr.s_addr = htonl(0x0a4d0002 + (uint32_t)(i % 200));
		t = now_ms();
		rc = nft_vm_add(&vm);
		t_add += now_ms() - t;
		if (rc)
			return 1;
		t = now_ms();
		rc = nft_vm_del(vm.id);
		t_del += now_ms() - t;
		if (rc)
			return 1;
	}
	printf("nft_vm_add: %.2f ms/VM  nft_vm_del: %.2f ms/VM  (%ld each)\n", t_add / (double)n,
	       t_del / (double)n, n);

	/*
	 * The repair window: a VM's rules vanish (as with `nft flush table`),
	 * the watch fd reports it, nft_repair() finds what differs and puts it
	 * back.  And what the content check costs when nothing changed (every
	 * event, hutch's own included, runs it).
	 */
	{
		struct in_addr net = { .s_addr = htonl(0x0a4d0000) };
		struct pollfd p;
		int fd = nft_watch_open();
		double t0, tr, t1, t2, tc;

		if (fd < 0 || nft_vm_add(&vm))
			return 1;
		t = now_ms();
		for (long i = 0; i < n; i++)
			if (nft_repair(&vm, argv[2], net, 24) != 0)
				return 1;
		tc = (now_ms() - t) / (double)n;
		while (nft_watch_handle(fd) > 0)	/* our own events so far */
			;
		p = (struct pollfd){ .fd = fd, .events = POLLIN };
		t0 = now_ms();
		if (nft_vm_del(vm.id))
			return 1;
		tr = now_ms();
		while (poll(&p, 1, 5000) == 1 && nft_watch_handle(fd) == 0)
			;
		t1 = now_ms();
		rc = nft_repair(&vm, argv[2], net, 24) == 1 ? 0 : -1;
		t2 = now_ms();
		close(fd);
		if (rc)
			return 1;
		printf("content check with nothing to repair: %.2f ms\n", tc);
		printf("repair window: deleting the VM's rules %.2f ms; event read %.2f ms after; checked and "
		       "back in %.2f ms\n", tr - t0, t1 - tr, t2 - t1);
	}
	if (nft_vm_del(vm.id))
		return 1;
	return nft_base_remove() ? 1 : 0;
}

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static int cmd_fwd(int argc, char **argv)
{
	struct cfg_forward f[8];
	struct in_addr guest;
	struct fwd *fw;
	size_t n = 0;
	int rc;

	if (argc < 3 || inet_pton(AF_INET, argv[1], &guest) != 1)
		return usage();
	for (int i = 2; i < argc && n < 8; i++) {
		const char *rest;
		long h, g;
		char *colon;
		char buf[32];

		if (parse_proto_port(argv[i], &f[n].proto, &rest) || util_snprintf(buf, sizeof(buf), "%s", rest) < 0)
			return usage();
		colon = strchr(buf, ':');
		if (!colon)
			return usage();
		*colon = 0;
		if (util_parse_long(buf, 1, 65535, &h) || util_parse_long(colon + 1, 1, 65535, &g))
			return usage();
		f[n].host_port = (uint16_t)h;
		f[n].guest_port = (uint16_t)g;
		n++;
	}
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	signal(SIGPIPE, SIG_IGN);
	rc = fwd_start(f, n, guest, &fw);
	if (rc) {
		fprintf(stderr, "fwd_start: %s\n", strerror(-rc));
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	/* One fd, as the supervisor's sv_watch_fd() would see it */
	while (!stop) {
		struct pollfd p = { .fd = fwd_epoll_fd(fw), .events = POLLIN };

		if (p.fd < 0 || (poll(&p, 1, 1000) < 0 && errno != EINTR))
			break;
		if (p.revents & POLLIN)
			fwd_dispatch(fw);
	}
	fwd_stop(fw);
	return 0;
}

int main(int argc, char **argv)
{
	int rc;

	log_init("nftctl", LOG_LVL_INFO);
	if (argc < 2)
		return usage();
	argc--;
	argv++;
	if (!strcmp(argv[0], "base")) {
		struct in_addr net;
		uint8_t prefix;

		if (argc != 3 || parse_net(argv[2], &net, &prefix))
			return usage();
		rc = nft_base_ensure(argv[1], net, prefix);
	} else if (!strcmp(argv[0], "add")) {
		return cmd_add(argc, argv);
	} else if (!strcmp(argv[0], "del") && argc == 2) {
		rc = nft_vm_del(argv[1]);
	} else if (!strcmp(argv[0], "remove")) {
		rc = nft_base_remove();
	} else if (!strcmp(argv[0], "list")) {
		char ids[64][NFT_ID_MAX];
		size_t n = 0;

		rc = nft_vm_list(ids, 64, &n);
		for (size_t i = 0; rc == 0 && i < n; i++)
			printf("%s\n", ids[i]);
	} else if (!strcmp(argv[0], "dump")) {
		rc = nft_dump(argc > 1 ? argv[1] : NULL, stdout);
	} else if (!strcmp(argv[0], "present")) {
		rc = argc > 1 ? nft_vm_present(argv[1]) : nft_base_present();
		if (rc >= 0) {
			printf("%s\n", rc ? "yes" : "no");
			rc = 0;
		}
	} else if (!strcmp(argv[0], "watch") && argc == 2) {
		long secs;
		int fd;
		uint64_t end;

		if (util_parse_long(argv[1], 1, 3600, &secs))
			return usage();
		fd = nft_watch_open();
		if (fd < 0)
			return 1;
		printf("watching\n");
		fflush(stdout);
		end = util_monotonic_ms() + (uint64_t)secs * 1000;
		rc = 0;
		while (util_monotonic_ms() < end) {
			struct pollfd p = { .fd = fd, .events = POLLIN };

			if (poll(&p, 1, 200) > 0 && nft_watch_handle(fd) != 0) {
				printf("hit base=%d\n", nft_base_present());
				fflush(stdout);
				break;
			}
		}
		close(fd);
	} else if (!strcmp(argv[0], "bench")) {
		return cmd_bench(argc, argv);
	} else if (!strcmp(argv[0], "fwd")) {
		return cmd_fwd(argc, argv);
	} else {
		return usage();
	}
	if (rc)
		fprintf(stderr, "nftctl %s: %s\n", argv[0], strerror(-rc));
	return rc ? 1 : 0;
}
