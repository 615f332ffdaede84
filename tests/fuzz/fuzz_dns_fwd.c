// SPDX-License-Identifier: MIT
/*
 * fuzz_dns_fwd: the DNS forwarder's whole path (net/dns.c), over real
 * loopback sockets: a client (a guest) and an upstream server, both played
 * from the fuzzed bytes.  The input is a script of records, each
 * [op][len][len bytes]:
 *   op % 4 == 0  the client sends the bytes to the forwarder, which relays
 *                (dns_fwd_on_client());
 *   op % 4 == 1  the upstream reads what the forwarder sent it and answers
 *                the bytes with the id of the last query it read (so answers
 *                can match), then dns_fwd_on_upstream();
 *   op % 4 == 2  the upstream answers the bytes as they are;
 *   op % 4 == 3  the client reads its answers.
 * Checked: the in-flight count stays within its bound, every answer the
 * client gets is at most DNS_PKT_MAX bytes and carries an id the client used.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/dns.h"
#include "src/log.h"

static int udp_bound(const char *addr)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	inet_pton(AF_INET, addr, &sa.sin_addr);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int local(int fd, struct sockaddr_in *sa)
{
	socklen_t len = sizeof(*sa);

	return getsockname(fd, (struct sockaddr *)sa, &len) == 0 && len == sizeof(*sa) ? 0 : -1;
}

struct run {
	struct dns_fwd *f;
	int cfd, ufd;
	struct sockaddr_in lsn, fwd_up;
	uint8_t last_id[2];
	uint8_t used[65536 / 8];	/* ids the client sent */
};

static void client_send(struct run *r, const uint8_t *p, size_t n)
{
	if (n >= 2)
		r->used[(p[0] << 8 | p[1]) / 8] |= (uint8_t)(1u << ((p[0] << 8 | p[1]) % 8));
	sendto(r->cfd, p, n, 0, (struct sockaddr *)&r->lsn, sizeof(r->lsn));
	dns_fwd_on_client(r->f);
}

static void upstream_answer(struct run *r, const uint8_t *p, size_t n, int patch)
{
	uint8_t buf[DNS_PKT_MAX + 64];
	struct sockaddr_in from;
	socklen_t fl = sizeof(from);
	ssize_t got;

	while ((got = recvfrom(r->ufd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl)) >= 2) {
		memcpy(r->last_id, buf, 2);	/* the forwarder's id for it */
		r->fwd_up = from;
		fl = sizeof(from);
	}
	if (n > sizeof(buf) || !r->fwd_up.sin_port)
		return;
	memcpy(buf, p, n);
	if (patch && n >= 2)
		memcpy(buf, r->last_id, 2);
	sendto(r->ufd, buf, n, 0, (struct sockaddr *)&r->fwd_up, sizeof(r->fwd_up));
	dns_fwd_on_upstream(r->f);
}

static void client_read(struct run *r)
{
	uint8_t buf[DNS_PKT_MAX + 64];
	ssize_t got;

	while ((got = recv(r->cfd, buf, sizeof(buf), MSG_TRUNC)) >= 0) {
		if (got > DNS_PKT_MAX || got < 2)
			__builtin_trap();	/* answers are whole DNS messages we relayed */
		if (!(r->used[(buf[0] << 8 | buf[1]) / 8] & (1u << ((buf[0] << 8 | buf[1]) % 8))))
			__builtin_trap();	/* an id the client never used */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *devnull;
	static struct run r;
	struct sockaddr_in up = { 0 };
	struct in_addr net;
	size_t off = 0;
	int lfd;

	if (!devnull) {
		devnull = fopen("/dev/null", "w");
		log_init("fuzz_dns_fwd", LOG_LVL_DEBUG);
		log_set_file(devnull);
	}
	memset(&r, 0, sizeof(r));
	r.cfd = udp_bound("127.0.0.2");
	r.ufd = udp_bound("127.0.0.3");
	lfd = udp_bound("127.0.0.1");	/* only to find a free port for the forwarder */
	if (r.cfd < 0 || r.ufd < 0 || lfd < 0 || local(lfd, &r.lsn) || local(r.ufd, &up))
		goto out;
	close(lfd);
	lfd = -1;
	inet_pton(AF_INET, "127.0.0.0", &net);
	/* clients: 127.0.0.0/8 (the client is 127.0.0.2; the forwarder 127.0.0.1) */
	if (dns_fwd_open(&r.lsn, net, 8, &up, 1, &r.f))
		goto out;
	while (size - off >= 3) {
		uint8_t op = data[off];
		size_t n = (size_t)(data[off + 1] << 8 | data[off + 2]);

		off += 3;
		if (n > size - off)
			n = size - off;
		switch (op % 4) {
		case 0:
			client_send(&r, data + off, n);
			break;
		case 1:
		case 2:
			upstream_answer(&r, data + off, n, op % 4 == 1);
			break;
		default:
			client_read(&r);
			break;
		}
		off += n;
		if (dns_fwd_inflight(r.f) > DNS_INFLIGHT_MAX)
			__builtin_trap();
	}
	client_read(&r);
	dns_fwd_close(r.f);
out:
	if (lfd >= 0)
		close(lfd);
	if (r.cfd >= 0)
		close(r.cfd);
	if (r.ufd >= 0)
		close(r.ufd);
	return 0;
}
