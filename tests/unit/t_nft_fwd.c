// SPDX-License-Identifier: MIT
/*
 * net/fwd.c over loopback: the "guest" is a listener of this test on
 * 127.0.0.1, the relay is pumped by the test's own poll loop.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/fwd.h"
#include "src/log.h"
#include "src/util.h"
#include "tap.h"

static struct in_addr lo;

static uint16_t free_port(int type)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr = lo };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, type, 0);

	bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	getsockname(fd, (struct sockaddr *)&sa, &len);
	close(fd);
	return ntohs(sa.sin_port);
}

static int listener(int type, uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr = lo, .sin_port = htons(port) };
	int fd = socket(AF_INET, type | SOCK_NONBLOCK, 0), one = 1;

	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -1;
	if (type == SOCK_STREAM)
		listen(fd, 256);
	return fd;
}

static int client(int type, uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr = lo, .sin_port = htons(port) };
	int fd = socket(AF_INET, type, 0);

	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static bool use_epoll;

/* Run the relay for @ms, through fwd_pollfds()/fwd_handle() or fwd_epoll_fd()/fwd_dispatch() */
static void pump(struct fwd *fw, int ms)
{
	uint64_t end = util_monotonic_ms() + (uint64_t)ms;

	while (use_epoll && util_monotonic_ms() < end) {
		struct pollfd p = { .fd = fwd_epoll_fd(fw), .events = POLLIN };

		if (poll(&p, 1, 10) > 0)
			fwd_dispatch(fw);
	}
	while (util_monotonic_ms() < end) {
		struct pollfd p[FWD_MAX_FDS];
		size_t n;

		fwd_pollfds(fw, p, FWD_MAX_FDS, &n);
		if (poll(p, n, 10) <= 0)
			continue;
		for (size_t i = 0; i < n; i++)
			if (p[i].revents)
				fwd_handle(fw, p[i].fd, p[i].revents);
	}
}

static ssize_t recv_nb(int fd, char *buf, size_t n)
{
	ssize_t r = recv(fd, buf, n, MSG_DONTWAIT);

	return r;
}

static void run(void)
{
	uint16_t gport = free_port(SOCK_STREAM), hport = free_port(SOCK_STREAM);
	uint16_t ugport = free_port(SOCK_DGRAM), uhport = free_port(SOCK_DGRAM), dead = free_port(SOCK_STREAM);
	uint16_t dport = free_port(SOCK_STREAM);
	struct cfg_forward f[3] = {
		{ .proto = CFG_PROTO_TCP, .host_port = hport, .guest_port = gport },
		{ .proto = CFG_PROTO_UDP, .host_port = uhport, .guest_port = ugport },
		{ .proto = CFG_PROTO_TCP, .host_port = dport, .guest_port = dead },
	};
	struct fwd *fw = NULL, *fw2 = NULL;
	int gl, ul, c, g, busy;
	char buf[256];
	ssize_t r;

	gl = listener(SOCK_STREAM, gport);
	ul = listener(SOCK_DGRAM, ugport);
	ok(gl >= 0 && ul >= 0, "fake guest listening");

	is_int(fwd_start(f, 3, lo, &fw), 0, "fwd_start");
	if (!fw)
		return;
	if (use_epoll)
		ok(fwd_epoll_fd(fw) >= 0, "fwd_epoll_fd");

	/* TCP: both directions, then half-close each way */
	c = client(SOCK_STREAM, hport);
	ok(c >= 0, "client connects to 127.0.0.1:%u", hport);
	pump(fw, 200);
	g = accept(gl, NULL, NULL);
	ok(g >= 0, "the relay connected to the guest");
	send(c, "hello", 5, 0);
	pump(fw, 200);
	r = recv_nb(g, buf, sizeof(buf));
	ok(r == 5 && !memcmp(buf, "hello", 5), "client -> guest bytes");
	send(g, "world!", 6, 0);
	pump(fw, 200);
	r = recv_nb(c, buf, sizeof(buf));
	ok(r == 6 && !memcmp(buf, "world!", 6), "guest -> client bytes");
	shutdown(c, SHUT_WR);
	pump(fw, 200);
	is_int(recv_nb(g, buf, sizeof(buf)), 0, "client's half-close reaches the guest");
	send(g, "late", 4, 0);
	pump(fw, 200);
	r = recv_nb(c, buf, sizeof(buf));
	ok(r == 4 && !memcmp(buf, "late", 4), "guest can still answer after the client's half-close");
	close(g);
	pump(fw, 200);
	is_int(recv_nb(c, buf, sizeof(buf)), 0, "guest's close reaches the client");
	close(c);

	/* The guest port is closed: the client's connection is closed too */
	c = client(SOCK_STREAM, dport);
	pump(fw, 300);
	r = recv_nb(c, buf, sizeof(buf));
	ok(r == 0 || (r < 0 && errno == ECONNRESET), "no guest listener: client connection closed");
	close(c);

	/* Connection cap: FWD_TCP_MAX relayed, the next one refused */
	{
		int cs[FWD_TCP_MAX + 1], gs[FWD_TCP_MAX + 1], closed = 0, accepted = 0;

		for (int i = 0; i <= FWD_TCP_MAX; i++) {
			cs[i] = client(SOCK_STREAM, hport);
			pump(fw, 5);
		}
		pump(fw, 300);
		while (accepted <= FWD_TCP_MAX && (gs[accepted] = accept(gl, NULL, NULL)) >= 0)
			accepted++;
		pump(fw, 100);
		for (int i = 0; i <= FWD_TCP_MAX; i++) {
			r = recv_nb(cs[i], buf, sizeof(buf));
			if (r == 0 || (r < 0 && errno == ECONNRESET))
				closed++;
		}
		is_int(accepted, FWD_TCP_MAX, "FWD_TCP_MAX connections reach the guest");
		is_int(closed, 1, "the one over the cap is closed");
		for (int i = 0; i <= FWD_TCP_MAX; i++)
			close(cs[i]);
		for (int i = 0; i < accepted; i++)
			close(gs[i]);
		pump(fw, 300);
		c = client(SOCK_STREAM, hport);
		pump(fw, 200);
		g = accept(gl, NULL, NULL);
		ok(g >= 0, "slots are freed when connections close");
		close(g);
		close(c);
	}

	/*
	 * A guest that never closes: a connection whose client hung up expires
	 * after the half-closed timeout, an idle one after the idle timeout,
	 * and the guest's side sees its end.
	 */
	for (int idle = 0; idle < 2; idle++) {
		int cs, gs = -1;

		fwd_set_timeouts(fw, idle ? 200 : 60000, idle ? 60000 : 200);
		cs = client(SOCK_STREAM, hport);
		for (int k = 0; k < 50 && gs < 0; k++) {
			pump(fw, 20);
			gs = accept(gl, NULL, NULL);
		}
		if (!idle)
			close(cs);	/* the host's client hangs up; the guest keeps its end */
		pump(fw, 400);
		fwd_tick(fw);
		pump(fw, 100);
		r = gs >= 0 ? recv_nb(gs, buf, sizeof(buf)) : -1;
		ok(r == 0 || (r < 0 && errno == ECONNRESET), "%s connection: the relay closed it (%zd)",
		   idle ? "an idle" : "a hung-up", r);
		if (idle)
			close(cs);
		if (gs >= 0)
			close(gs);
	}
	fwd_set_timeouts(fw, FWD_TCP_IDLE_MS, FWD_TCP_HALF_MS);

	/* UDP: datagram there and the answer back to the right peer */
	{
		struct sockaddr_in from;
		socklen_t flen = sizeof(from);

		c = client(SOCK_DGRAM, uhport);
		send(c, "ping", 4, 0);
		pump(fw, 200);
		r = recvfrom(ul, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &flen);
		ok(r == 4 && !memcmp(buf, "ping", 4), "UDP client -> guest");
		sendto(ul, "pong", 4, 0, (struct sockaddr *)&from, flen);
		pump(fw, 200);
		r = recv_nb(c, buf, sizeof(buf));
		ok(r == 4 && !memcmp(buf, "pong", 4), "UDP guest -> client");
		close(c);
	}

	/* A port in use: error, and nothing left listening */
	busy = listener(SOCK_STREAM, free_port(SOCK_STREAM));
	{
		struct sockaddr_in sa;
		socklen_t len = sizeof(sa);
		struct cfg_forward f2[2] = { { .proto = CFG_PROTO_TCP, .host_port = free_port(SOCK_STREAM), .guest_port = 1 },
					     { .proto = CFG_PROTO_TCP, .guest_port = 1 } };

		getsockname(busy, (struct sockaddr *)&sa, &len);
		f2[1].host_port = ntohs(sa.sin_port);
		is_int(fwd_start(f2, 2, lo, &fw2), -EADDRINUSE, "port in use: -EADDRINUSE");
		c = client(SOCK_STREAM, f2[0].host_port);
		ok(c < 0, "the forward opened before the failure was closed again");
		if (c >= 0)
			close(c);
	}
	close(busy);
	is_int(fwd_start(f, FWD_MAX + 1, lo, &fw2), -EINVAL, "more than FWD_MAX forwards refused");

	fwd_stop(fw);
	c = client(SOCK_STREAM, hport);
	ok(c < 0, "fwd_stop closes the listeners");
	if (c >= 0)
		close(c);
	fwd_stop(NULL);
	close(gl);
	close(ul);
}

int main(void)
{
	log_init("t_nft_fwd", LOG_LVL_ERR);
	inet_pton(AF_INET, "127.0.0.1", &lo);
	printf("# driven by fwd_pollfds()/fwd_handle()\n");
	run();
	printf("# driven by fwd_epoll_fd()/fwd_dispatch()\n");
	use_epoll = true;
	run();
	return tap_done();
}
