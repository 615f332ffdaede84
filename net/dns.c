// SPDX-License-Identifier: MIT
/*
 * DNS forwarder (RFC 1035 message format).  See dns.h for the model.  The
 * parser reads the header and the question only; answers are relayed as
 * bytes, never interpreted.
 */
#include "net/dns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/net.h"
#include "src/log.h"
#include "src/util.h"

#define DNS_HDR 12

struct dns_slot {
	uint64_t expire_ms;	/* 0: free */
	uint16_t up_id, client_id;
	struct sockaddr_in client;
	size_t up;		/* index of the upstream asked */
	struct dns_question q;
};

struct dns_fwd {
	int cfd, ufd;
	struct in_addr net;
	uint8_t prefix;
	struct in_addr self;
	struct sockaddr_in up[DNS_UPSTREAM_MAX];
	size_t n_up;
	size_t inflight;
	struct dns_slot slot[DNS_INFLIGHT_MAX];
};

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

int dns_parse(const uint8_t *p, size_t n, uint16_t *id, uint16_t *flags, struct dns_question *q)
{
	size_t off = DNS_HDR, nl = 0;

	if (n < DNS_HDR || n > DNS_PKT_MAX)
		return -EBADMSG;
	if (rd16(p + 4) != 1)		/* QDCOUNT: exactly one question */
		return -EBADMSG;
	for (;;) {
		uint8_t l;

		if (off >= n)
			return -EBADMSG;
		l = p[off];
		if (l & 0xc0)		/* compression or extended labels: not in a question */
			return -EBADMSG;
		if (nl + 1 + l > DNS_NAME_MAX || l > n - off - 1)
			return -EBADMSG;
		q->name[nl++] = l;
		for (size_t i = 0; i < l; i++) {
			uint8_t c = p[off + 1 + i];

			q->name[nl++] = (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
		}
		off += 1 + (size_t)l;
		if (l == 0)
			break;
	}
	if (n - off < 4)
		return -EBADMSG;
	q->name_len = nl;
	q->qtype = rd16(p + off);
	q->qclass = rd16(p + off + 2);
	*id = rd16(p);
	*flags = rd16(p + 2);
	return 0;
}

/*
 * A query as a stub resolver sends it (RFC 1035 4.1.1, RFC 6891 6.1.1):
 * QR 0, opcode QUERY, one question, no answer or authority records, and at
 * most one additional record, which must be an OPT (root name, type 41)
 * ending the message.  Anything else (UPDATE, NOTIFY, a "query" carrying
 * records) is not a question for the host's resolver, and is dropped.
 */
int dns_parse_query(const uint8_t *p, size_t n, uint16_t *id, uint16_t *flags, struct dns_question *q)
{
	struct dns_question qq;
	uint16_t i, f;
	size_t off;

	if (dns_parse(p, n, &i, &f, &qq))
		return -EBADMSG;
	if ((f & 0x8000) || ((f >> 11) & 0xf) != 0)	/* a response; an opcode other than QUERY */
		return -EBADMSG;
	if (rd16(p + 6) || rd16(p + 8) || rd16(p + 10) > 1)	/* ANCOUNT, NSCOUNT, ARCOUNT */
		return -EBADMSG;
	off = DNS_HDR + qq.name_len + 4;	/* dns_parse() checked that the question fits */
	if (rd16(p + 10) == 1) {
		/* OPT: name 0, TYPE 41, CLASS, TTL, RDLEN, RDATA up to the end */
		if (n - off < 11 || p[off] != 0 || rd16(p + off + 1) != 41 ||
		    rd16(p + off + 9) != n - off - 11)
			return -EBADMSG;
	} else if (off != n) {
		return -EBADMSG;
	}
	*id = i;
	*flags = f;
	*q = qq;
	return 0;
}

static int dns_resolv_parse(const char *path, struct sockaddr_in *up, size_t max, size_t *n,
			    int *only_stub)
{
	char *buf = NULL, *line, *save = NULL;
	size_t k = 0, seen = 0, stub = 0;
	int rc;

	rc = util_read_file(path, 64 * 1024, &buf, NULL);
	if (rc)
		return rc;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *s = line + strspn(line, " \t"), *v, *end;
		struct in_addr a;

		if (strncmp(s, "nameserver", 10) || (s[10] != ' ' && s[10] != '\t'))
			continue;
		v = s + 10 + strspn(s + 10, " \t");
		end = v + strcspn(v, " \t#;");
		*end = 0;
		if (inet_pton(AF_INET, v, &a) != 1)
			continue;	/* IPv6 or junk */
		seen++;
		if (a.s_addr == htonl(0x7f000035))
			stub++;
		if (k < max) {
			memset(&up[k], 0, sizeof(up[k]));
			up[k].sin_family = AF_INET;
			up[k].sin_port = htons(53);
			up[k].sin_addr = a;
			k++;
		}
	}
	free(buf);
	*n = k;
	*only_stub = seen > 0 && seen == stub;
	return 0;
}

int dns_resolv_load(const char *path, struct sockaddr_in *up, size_t max, size_t *n)
{
	size_t k = 0, k2 = 0;
	int stub = 0, stub2 = 0, rc;

	rc = dns_resolv_parse(path, up, max, &k, &stub);
	if (rc)
		return rc;
	if (stub) {
		struct sockaddr_in real[DNS_UPSTREAM_MAX];

		if (dns_resolv_parse("/run/systemd/resolve/resolv.conf", real,
				     max < DNS_UPSTREAM_MAX ? max : DNS_UPSTREAM_MAX, &k2, &stub2) == 0 &&
		    k2 > 0 && !stub2) {
			memcpy(up, real, k2 * sizeof(*up));
			k = k2;
		}
	}
	if (k == 0)
		return -ENOENT;
	*n = k;
	return 0;
}

static int dns_udp_socket(const struct sockaddr_in *bind_to, int reuseport)
{
	int fd, one = 1, rc;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) {
		rc = -errno;
		goto err;
	}
	if (bind_to && bind(fd, (const struct sockaddr *)bind_to, sizeof(*bind_to)) < 0) {
		rc = -errno;
		goto err;
	}
	return fd;
err:
	close(fd);
	return rc;
}

int dns_fwd_open(const struct sockaddr_in *listen, struct in_addr net, uint8_t prefix,
		 const struct sockaddr_in *up, size_t n_up, struct dns_fwd **out)
{
	int fd = dns_udp_socket(listen, 1);

	if (fd < 0)
		return fd;
	return dns_fwd_adopt(fd, listen->sin_addr, net, prefix, up, n_up, out);
}

int dns_fwd_adopt(int cfd, struct in_addr self, struct in_addr net, uint8_t prefix,
		  const struct sockaddr_in *up, size_t n_up, struct dns_fwd **out)
{
	struct dns_fwd *f;
	int rc;

	if (n_up == 0) {
		close(cfd);
		return -EINVAL;
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		close(cfd);
		return -ENOMEM;
	}
	f->cfd = cfd;
	f->ufd = -1;
	f->net = net;
	f->prefix = prefix;
	f->self = self;
	f->n_up = n_up < DNS_UPSTREAM_MAX ? n_up : DNS_UPSTREAM_MAX;
	memcpy(f->up, up, f->n_up * sizeof(*up));
	rc = dns_udp_socket(NULL, 0);	/* upstream: an ephemeral port, random per supervisor */
	if (rc < 0)
		goto err;
	f->ufd = rc;
	*out = f;
	return 0;
err:
	dns_fwd_close(f);
	return rc;
}

int dns_fwd_client_fd(const struct dns_fwd *f)
{
	return f->cfd;
}

int dns_fwd_upstream_fd(const struct dns_fwd *f)
{
	return f->ufd;
}

size_t dns_fwd_inflight(const struct dns_fwd *f)
{
	return f->inflight;
}

void dns_fwd_close(struct dns_fwd *f)
{
	if (!f)
		return;
	if (f->cfd >= 0)
		close(f->cfd);
	if (f->ufd >= 0)
		close(f->ufd);
	free(f);
}

static void dns_expire(struct dns_fwd *f, uint64_t now)
{
	for (size_t i = 0; i < DNS_INFLIGHT_MAX && f->inflight; i++) {
		if (f->slot[i].expire_ms && f->slot[i].expire_ms <= now) {
			f->slot[i].expire_ms = 0;
			f->inflight--;
		}
	}
}

static struct dns_slot *dns_find(struct dns_fwd *f, uint16_t up_id)
{
	for (size_t i = 0; i < DNS_INFLIGHT_MAX; i++)
		if (f->slot[i].expire_ms && f->slot[i].up_id == up_id)
			return &f->slot[i];
	return NULL;
}

/*
 * A free slot for a query from @client, or NULL: every client gets at most
 * DNS_INFLIGHT_PER_SRC of them, so one guest flooding queries that are slow
 * to answer cannot take the slots of the others (source addresses are bound
 * to their VMs by the rules, so a guest cannot spread over several).
 */
static struct dns_slot *dns_slot_for(struct dns_fwd *f, struct in_addr client)
{
	struct dns_slot *free_slot = NULL;
	size_t mine = 0;

	for (size_t i = 0; i < DNS_INFLIGHT_MAX; i++) {
		struct dns_slot *s = &f->slot[i];

		if (!s->expire_ms) {
			if (!free_slot)
				free_slot = s;
		} else if (s->client.sin_addr.s_addr == client.s_addr && ++mine >= DNS_INFLIGHT_PER_SRC) {
			return NULL;
		}
	}
	return free_slot;
}

void dns_fwd_on_client(struct dns_fwd *f)
{
	uint8_t buf[DNS_PKT_MAX + 1];

	for (int iter = 0; iter < 64; iter++) {
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		struct dns_question q;
		struct dns_slot *s = NULL;
		uint16_t id, flags, up_id;
		uint64_t now;
		ssize_t r;

		r = recvfrom(f->cfd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		/* clients: the bridge subnet only, never the gateway itself (no loops) */
		if (fl != sizeof(from) || from.sin_family != AF_INET ||
		    (from.sin_addr.s_addr & net_mask(f->prefix)) != f->net.s_addr ||
		    from.sin_addr.s_addr == f->self.s_addr || from.sin_port == 0)
			continue;
		if ((size_t)r > DNS_PKT_MAX || dns_parse_query(buf, (size_t)r, &id, &flags, &q))
			continue;
		now = util_monotonic_ms();
		dns_expire(f, now);
		s = dns_slot_for(f, from.sin_addr);
		if (!s)
			continue;	/* full, or this client's share is: drop, the client retries */
		/* a random id not in use, so replies cannot be matched by guessing */
		do {
			if (getrandom(&up_id, sizeof(up_id), 0) != (ssize_t)sizeof(up_id))
				goto next;
		} while (dns_find(f, up_id));
		s->expire_ms = now + DNS_TIMEOUT_MS;
		s->up_id = up_id;
		s->client_id = id;
		s->client = from;
		s->q = q;
		s->up = 0;
		f->inflight++;
		buf[0] = (uint8_t)(up_id >> 8);
		buf[1] = (uint8_t)up_id;
		if (sendto(f->ufd, buf, (size_t)r, 0, (const struct sockaddr *)&f->up[s->up],
			   sizeof(f->up[0])) < 0) {
			log_ratelimited(LOG_LVL_DEBUG, "dns-send", "dns: forwarding a query: %s", strerror(errno));
			s->expire_ms = 0;
			f->inflight--;
		}
next:;
	}
}

void dns_fwd_on_upstream(struct dns_fwd *f)
{
	uint8_t buf[DNS_PKT_MAX + 1];

	for (int iter = 0; iter < 64; iter++) {
		struct sockaddr_in from, *u;
		socklen_t fl = sizeof(from);
		struct dns_question q;
		struct dns_slot *s;
		uint16_t id, flags;
		ssize_t r;

		r = recvfrom(f->ufd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		if ((size_t)r > DNS_PKT_MAX || fl != sizeof(from) ||
		    dns_parse(buf, (size_t)r, &id, &flags, &q) || !(flags & 0x8000))
			continue;
		dns_expire(f, util_monotonic_ms());
		s = dns_find(f, id);
		if (!s)
			continue;
		u = &f->up[s->up];
		/* only the server we asked, with the question we asked */
		if (from.sin_addr.s_addr != u->sin_addr.s_addr || from.sin_port != u->sin_port)
			continue;
		if (q.name_len != s->q.name_len || memcmp(q.name, s->q.name, q.name_len) ||
		    q.qtype != s->q.qtype || q.qclass != s->q.qclass)
			continue;
		buf[0] = (uint8_t)(s->client_id >> 8);
		buf[1] = (uint8_t)s->client_id;
		if (sendto(f->cfd, buf, (size_t)r, 0, (const struct sockaddr *)&s->client,
			   sizeof(s->client)) < 0)
			log_ratelimited(LOG_LVL_DEBUG, "dns-answer", "dns: answering a client: %s", strerror(errno));
		s->expire_ms = 0;
		f->inflight--;
	}
}
