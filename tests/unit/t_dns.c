// SPDX-License-Identifier: MIT
/* DNS forwarder on loopback: id mapping, reply checks, subnet filter, bounds, parser. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/dns.h"
#include "tests/unit/tap.h"

static int udp_bound(const char *ip, uint16_t port, struct sockaddr_in *sa)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	socklen_t l = sizeof(*sa);

	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons(port);
	inet_pton(AF_INET, ip, &sa->sin_addr);
	if (fd < 0 || bind(fd, (struct sockaddr *)sa, sizeof(*sa)) < 0)
		return -1;
	getsockname(fd, (struct sockaddr *)sa, &l);
	return fd;
}

static int readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms) == 1;
}

/* run the forwarder's handlers until nothing is pending for a short while */
static void pump(struct dns_fwd *f)
{
	for (int i = 0; i < 5; i++) {
		struct pollfd p[2] = { { .fd = dns_fwd_client_fd(f), .events = POLLIN },
				       { .fd = dns_fwd_upstream_fd(f), .events = POLLIN } };

		if (poll(p, 2, 50) <= 0)
			return;
		if (p[0].revents)
			dns_fwd_on_client(f);
		if (p[1].revents)
			dns_fwd_on_upstream(f);
	}
}

/* query for example.test A with @id */
static size_t query(uint8_t *b, uint16_t id, const char *name)
{
	size_t n = 12;

	memset(b, 0, 12);
	b[0] = (uint8_t)(id >> 8);
	b[1] = (uint8_t)id;
	b[2] = 0x01;	/* RD */
	b[5] = 1;
	while (*name) {
		const char *dot = strchr(name, '.');
		size_t l = dot ? (size_t)(dot - name) : strlen(name);

		b[n++] = (uint8_t)l;
		memcpy(b + n, name, l);
		n += l;
		name += l + (dot ? 1 : 0);
	}
	b[n++] = 0;
	b[n++] = 0;
	b[n++] = 1;
	b[n++] = 0;
	b[n++] = 1;
	return n;
}

int main(void)
{
	struct sockaddr_in lsn, upa, cla, from;
	struct dns_fwd *f = NULL;
	struct in_addr net;
	uint8_t b[4200], r[4200];
	int up, cl, rc;
	socklen_t fl;
	ssize_t n;
	size_t qn;
	uint16_t up_id;

	up = udp_bound("127.0.0.3", 0, &upa);
	cl = udp_bound("127.0.0.2", 0, &cla);
	ok(up >= 0 && cl >= 0, "test sockets");
	/* the forwarder's own port: find a free one */
	{
		int t = udp_bound("127.0.0.1", 0, &lsn);

		close(t);
	}
	inet_pton(AF_INET, "127.0.0.0", &net);
	rc = dns_fwd_open(&lsn, net, 8, &upa, 1, &f);
	is_int(rc, 0, "forwarder opens");
	if (rc)
		return tap_done();

	/* a query is relayed with a fresh id and the same question */
	qn = query(b, 0x1234, "Example.TEST");
	sendto(cl, b, qn, 0, (struct sockaddr *)&lsn, sizeof(lsn));
	pump(f);
	ok(readable(up, 1000), "upstream receives the query");
	fl = sizeof(from);
	n = recvfrom(up, r, sizeof(r), 0, (struct sockaddr *)&from, &fl);
	is_int(n, (long long)qn, "same length");
	up_id = (uint16_t)(r[0] << 8 | r[1]);
	ok(!memcmp(r + 2, b + 2, qn - 2), "same flags and question");
	is_int(dns_fwd_inflight(f), 1, "one query in flight");

	/* a reply with the right id from the wrong port is dropped */
	r[2] |= 0x80;
	{
		struct sockaddr_in other;
		int o = udp_bound("127.0.0.3", 0, &other);

		sendto(o, r, (size_t)n, 0, (struct sockaddr *)&from, sizeof(from));
		pump(f);
		ok(!readable(cl, 200), "reply from another port is not relayed");
		close(o);
	}
	/* a reply with another question is dropped */
	{
		uint8_t w[512];
		size_t wn = query(w, up_id, "evil.test");

		w[2] |= 0x80;
		sendto(up, w, wn, 0, (struct sockaddr *)&from, sizeof(from));
		pump(f);
		ok(!readable(cl, 200), "reply to another question is not relayed");
	}
	/* a reply with a wrong id is dropped */
	r[0] ^= 0x5a;
	sendto(up, r, (size_t)n, 0, (struct sockaddr *)&from, sizeof(from));
	pump(f);
	ok(!readable(cl, 200), "reply with an unknown id is not relayed");
	r[0] ^= 0x5a;
	/* the real reply goes back with the client's id */
	sendto(up, r, (size_t)n, 0, (struct sockaddr *)&from, sizeof(from));
	pump(f);
	ok(readable(cl, 1000), "client receives the answer");
	n = recv(cl, b, sizeof(b), 0);
	ok(n == (ssize_t)qn && b[0] == 0x12 && b[1] == 0x34 && (b[2] & 0x80), "answer carries the client's id");
	is_int(dns_fwd_inflight(f), 0, "nothing in flight");
	/* replaying it does nothing */
	sendto(up, r, (size_t)n, 0, (struct sockaddr *)&from, sizeof(from));
	pump(f);
	ok(!readable(cl, 200), "a replayed answer is not relayed");

	/* garbage and responses from clients are not forwarded */
	memset(b, 0xff, 40);
	sendto(cl, b, 40, 0, (struct sockaddr *)&lsn, sizeof(lsn));
	qn = query(b, 7, "a.test");
	b[2] |= 0x80;
	sendto(cl, b, qn, 0, (struct sockaddr *)&lsn, sizeof(lsn));
	pump(f);
	ok(!readable(up, 200), "malformed queries and responses are not forwarded");

	/* bounded in-flight table */
	for (int i = 0; i < DNS_INFLIGHT_MAX + 40; i++) {
		qn = query(b, (uint16_t)i, "flood.test");
		sendto(cl, b, qn, 0, (struct sockaddr *)&lsn, sizeof(lsn));
		if (i % 32 == 31)
			pump(f);
	}
	pump(f);
	ok(dns_fwd_inflight(f) <= DNS_INFLIGHT_PER_SRC && dns_fwd_inflight(f) > 0,
	   "one client gets at most its share of the in-flight table (%zu of %d)", dns_fwd_inflight(f),
	   DNS_INFLIGHT_MAX);
	dns_fwd_close(f);

	/* clients outside the subnet are refused: no open resolver */
	inet_pton(AF_INET, "10.77.0.0", &net);
	{
		int t = udp_bound("127.0.0.1", 0, &lsn);

		close(t);
	}
	while (recv(up, r, sizeof(r), MSG_DONTWAIT) > 0)
		;
	rc = dns_fwd_open(&lsn, net, 24, &upa, 1, &f);
	is_int(rc, 0, "second forwarder opens");
	qn = query(b, 9, "x.test");
	sendto(cl, b, qn, 0, (struct sockaddr *)&lsn, sizeof(lsn));
	pump(f);
	ok(!readable(up, 200), "query from outside the subnet dropped");
	dns_fwd_close(f);

	/* parser */
	{
		struct dns_question q;
		uint16_t id, fl2;

		qn = query(b, 1, "WWW.Example.Test");
		is_int(dns_parse(b, qn, &id, &fl2, &q), 0, "parse a query");
		ok(q.name_len == 18 && !memcmp(q.name, "\3www\7example\4test", 18), "name lowercased, wire format");
		ok(q.qtype == 1 && q.qclass == 1, "type and class");
		b[4] = 0;
		b[5] = 2;
		is_int(dns_parse(b, qn, &id, &fl2, &q), -EBADMSG, "two questions refused");
		b[5] = 1;
		b[12] = 0xc0;
		is_int(dns_parse(b, qn, &id, &fl2, &q), -EBADMSG, "compression pointer in question refused");
		qn = query(b, 1, "a.test");
		{
			int all = 1;

			for (size_t i = 0; i < qn; i++)
				if (dns_parse(b, i, &id, &fl2, &q) != -EBADMSG)
					all = 0;
			ok(all, "every truncation refused");
		}
		/* queries only: header flags and counts */
		qn = query(b, 1, "a.test");
		is_int(dns_parse_query(b, qn, &id, &fl2, &q), 0, "dns_parse_query: a plain query");
		b[2] |= 0x28;	/* opcode 5: UPDATE */
		is_int(dns_parse_query(b, qn, &id, &fl2, &q), -EBADMSG, "... UPDATE refused");
		b[2] = (uint8_t)((b[2] & 0x87) | 0x20);	/* opcode 4: NOTIFY */
		is_int(dns_parse_query(b, qn, &id, &fl2, &q), -EBADMSG, "... NOTIFY refused");
		b[2] &= 0x87;
		b[7] = 1;
		is_int(dns_parse_query(b, qn, &id, &fl2, &q), -EBADMSG, "... an answer count refused");
		b[7] = 0;
		b[9] = 1;
		is_int(dns_parse_query(b, qn, &id, &fl2, &q), -EBADMSG, "... an authority count refused");
		b[9] = 0;
		b[qn] = 0;	/* OPT: root, type 41, class 1232, ttl 0, rdlen 0 */
		memcpy(b + qn + 1, "\0\x29\x04\xd0\0\0\0\0\0\0", 10);
		b[11] = 1;
		is_int(dns_parse_query(b, qn + 11, &id, &fl2, &q), 0, "... one OPT accepted");
		b[qn + 2] = 1;	/* type A: not an OPT */
		is_int(dns_parse_query(b, qn + 11, &id, &fl2, &q), -EBADMSG, "... another record type refused");
		b[qn + 2] = 0x29;
		is_int(dns_parse_query(b, qn + 12, &id, &fl2, &q), -EBADMSG, "... bytes after the OPT refused");
		b[11] = 2;
		is_int(dns_parse_query(b, qn + 22, &id, &fl2, &q), -EBADMSG, "... two additional records refused");
		b[11] = 0;
		is_int(dns_parse_query(b, qn + 1, &id, &fl2, &q), -EBADMSG, "... trailing bytes refused");
		b[2] |= 0x80;
		is_int(dns_parse_query(b, qn, &id, &fl2, &q), -EBADMSG, "... a response refused");
		memset(b, 0, sizeof(b));
		b[5] = 1;
		for (size_t i = 12; i < 12 + 300; i += 64) {
			b[i] = 63;
		}
		is_int(dns_parse(b, 400, &id, &fl2, &q), -EBADMSG, "name over 255 bytes refused");
	}
	/* resolv.conf */
	{
		char path[] = "/tmp/t_dns.XXXXXX";
		int fd = mkstemp(path);
		const char *txt = "# c\nsearch x\nnameserver 192.0.2.1\nnameserver ::1\n"
				  "nameserver\t192.0.2.2 # two\noptions edns0\nnameserver 192.0.2.3\n"
				  "nameserver 192.0.2.4\n";
		struct sockaddr_in ups[DNS_UPSTREAM_MAX];
		size_t k = 0;
		char a[INET_ADDRSTRLEN];

		if (write(fd, txt, strlen(txt)) < 0)
			perror("write");
		close(fd);
		is_int(dns_resolv_load(path, ups, DNS_UPSTREAM_MAX, &k), 0, "resolv.conf loads");
		is_int(k, 3, "three IPv4 servers kept");
		inet_ntop(AF_INET, &ups[1].sin_addr, a, sizeof(a));
		ok(!strcmp(a, "192.0.2.2") && ntohs(ups[1].sin_port) == 53, "second is 192.0.2.2:53 (%s)", a);
		fd = open(path, O_WRONLY | O_TRUNC);
		if (write(fd, "search x\n", 9) < 0)
			perror("write");
		close(fd);
		is_int(dns_resolv_load(path, ups, DNS_UPSTREAM_MAX, &k), -ENOENT, "no nameserver: -ENOENT");
		unlink(path);
	}
	close(up);
	close(cl);
	return tap_done();
}
