// SPDX-License-Identifier: MIT
/*
 * fuzz_fwd: the port-forward relay (net/fwd.c) driven through its epoll fd
 * over real loopback sockets, with the host's clients and the guest's
 * service both played from the fuzzed bytes.  One TCP and one UDP forward
 * (ephemeral ports) to a "guest" on 127.0.0.1.  The input is a script of
 * records [op][arg][len][len bytes]; @arg picks one of 8 client or guest
 * connections:
 *   0 a client connects           1 a client sends the bytes
 *   2 a client shuts down writing 3 a client closes (or resets, arg & 8)
 *   4 the guest accepts           5 the guest sends the bytes
 *   6 the guest shuts down / closes / resets (arg & 24)
 *   7 a UDP client sends          8 the guest answers UDP
 *   9 both sides read what they got
 * After each record the relay runs (fwd_dispatch()) until it has nothing
 * to do, and fwd_tick() runs with zero timeouts now and then, so the idle
 * and half-closed paths run too.  Crashes and sanitizer findings are what
 * this looks for.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/fwd.h"
#include "src/log.h"

#define CONNS 8

struct run {
	struct fwd *fw;
	int glis, gudp;			/* the guest's TCP listener and UDP socket */
	int cli[CONNS], gst[CONNS];	/* host clients, guest-side accepted connections */
	int ucli;			/* a UDP client */
	uint16_t tcp_port, udp_port;
	struct sockaddr_in upeer;	/* where the guest answers UDP */
};

static int sock_bound(int type, uint16_t *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int one = 1, fd = socket(AF_INET, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    (type == SOCK_STREAM && listen(fd, 16) < 0) ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
		close(fd);
		return -1;
	}
	*port = ntohs(sa.sin_port);
	return fd;
}

static void pump(struct run *r)
{
	int efd = fwd_epoll_fd(r->fw);

	for (int i = 0; i < 16; i++) {
		struct pollfd p = { .fd = efd, .events = POLLIN };

		if (efd < 0 || poll(&p, 1, 0) <= 0)
			break;
		fwd_dispatch(r->fw);
	}
}

static void drop(int *fd, bool reset)
{
	if (*fd < 0)
		return;
	if (reset) {
		struct linger l = { .l_onoff = 1, .l_linger = 0 };

		setsockopt(*fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	}
	close(*fd);
	*fd = -1;
}

static void drain(int fd)
{
	char buf[4096];

	while (fd >= 0 && recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}

static void step(struct run *r, uint8_t op, uint8_t arg, const uint8_t *p, size_t n)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int k = arg % CONNS;

	switch (op % 10) {
	case 0:
		if (r->cli[k] >= 0)
			break;
		r->cli[k] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		to.sin_port = htons(r->tcp_port);
		if (r->cli[k] >= 0 && connect(r->cli[k], (struct sockaddr *)&to, sizeof(to)) < 0 &&
		    errno != EINPROGRESS)
			drop(&r->cli[k], false);
		break;
	case 1:
		if (r->cli[k] >= 0)
			send(r->cli[k], p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		break;
	case 2:
		if (r->cli[k] >= 0)
			shutdown(r->cli[k], SHUT_WR);
		break;
	case 3:
		drop(&r->cli[k], arg & 8);
		break;
	case 4:
		if (r->gst[k] < 0)
			r->gst[k] = accept4(r->glis, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		break;
	case 5:
		if (r->gst[k] >= 0)
			send(r->gst[k], p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		break;
	case 6:
		if ((arg & 24) == 0 && r->gst[k] >= 0)
			shutdown(r->gst[k], SHUT_WR);
		else
			drop(&r->gst[k], arg & 16);
		break;
	case 7:
		to.sin_port = htons(r->udp_port);
		sendto(r->ucli, p, n, MSG_DONTWAIT, (struct sockaddr *)&to, sizeof(to));
		break;
	case 8: {
		char buf[2048];
		socklen_t fl = sizeof(r->upeer);

		if (recvfrom(r->gudp, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&r->upeer, &fl) >= 0 ||
		    r->upeer.sin_port)
			sendto(r->gudp, p, n, MSG_DONTWAIT, (struct sockaddr *)&r->upeer, sizeof(r->upeer));
		break;
	}
	default:
		for (int i = 0; i < CONNS; i++) {
			drain(r->cli[i]);
			drain(r->gst[i]);
		}
		drain(r->ucli);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *devnull;
	struct cfg_forward f[2] = { { .proto = CFG_PROTO_TCP }, { .proto = CFG_PROTO_UDP } };
	struct in_addr guest = { .s_addr = htonl(INADDR_LOOPBACK) };
	struct run r = { .glis = -1, .gudp = -1, .ucli = -1 };
	size_t off = 0;
	int steps = 0;

	if (!devnull) {
		devnull = fopen("/dev/null", "w");
		log_init("fuzz_fwd", LOG_LVL_DEBUG);
		log_set_file(devnull);
	}
	for (int i = 0; i < CONNS; i++)
		r.cli[i] = r.gst[i] = -1;
	r.glis = sock_bound(SOCK_STREAM, &f[0].guest_port);
	r.gudp = sock_bound(SOCK_DGRAM, &f[1].guest_port);
	r.ucli = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (r.glis < 0 || r.gudp < 0 || r.ucli < 0 || fwd_start(f, 2, guest, &r.fw))
		goto out;
	r.tcp_port = fwd_local_port(r.fw, 0);
	r.udp_port = fwd_local_port(r.fw, 1);
	if (!r.tcp_port || !r.udp_port || fwd_epoll_fd(r.fw) < 0)
		goto out;
	while (size - off >= 4 && steps++ < 64) {
		size_t n = (size_t)(data[off + 2] << 8 | data[off + 3]);

		if (n > size - off - 4)
			n = size - off - 4;
		step(&r, data[off], data[off + 1], data + off + 4, n);
		off += 4 + n;
		pump(&r);
		if (data[off - n - 4] >= 250) {
			/* everything idle and half-closed expires now */
			fwd_set_timeouts(r.fw, 0, 0);
			fwd_tick(r.fw);
			fwd_set_timeouts(r.fw, FWD_TCP_IDLE_MS, FWD_TCP_HALF_MS);
		}
	}
out:
	fwd_stop(r.fw);
	for (int i = 0; i < CONNS; i++) {
		drop(&r.cli[i], false);
		drop(&r.gst[i], false);
	}
	drop(&r.glis, false);
	drop(&r.gudp, false);
	drop(&r.ucli, false);
	return 0;
}
