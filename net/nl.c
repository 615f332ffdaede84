// SPDX-License-Identifier: MIT
/*
 * netlink through libmnl: sockets, requests, queries, batches and events
 * (the model is in nl.h's DOC block), then hutch's rtnetlink operations
 * built on them.
 */
#include "net/nl.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/genetlink.h>
#include <linux/if_bridge.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <libmnl/libmnl.h>
#include <arpa/inet.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "net/net.h"
#include "src/log.h"
#include "src/util.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71	/* Linux 5.14 */
#endif
#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif

/* Large enough for any single message the kernel sends us (dumps fill up to 32 KiB) */
#define NL_RECV_BUF (64 * 1024)

struct nl_sock {
	struct mnl_socket *mnl;
	int fd;
	uint32_t portid;
	char *buf;		/* NL_RECV_BUF, for answers */
};

/**
 * struct nl_msg_rec - one sent message, to match its answers
 * @seq:    its sequence number
 * @ack:    an answer ends it (NLM_F_ACK, or a dump's DONE)
 * @done:   that answer arrived
 * @what:   the object, for errors
 */
struct nl_msg_rec {
	uint32_t seq;
	bool ack, done;
	char what[NL_WHAT_MAX];
};

struct nl_batch {
	char *buf;
	size_t len, cap;
	size_t n;
	bool reserved;
	int err;
	struct nl_msg_rec *msg;		/* NL_BATCH_MSGS */
};

/* One exchange in flight: what nl_collect() needs besides the socket */
struct nl_xchg {
	struct nl_msg_rec *msg;
	size_t n, waiting;
	const char *what;
	int quiet;
	nl_msg_cb cb;
	void *data;
	int rc;
	bool intr;
};

static uint32_t nl_seq_last;

/* Sequence numbers increase for the process; the start is random so two runs differ */
static uint32_t nl_seq_next(void)
{
	if (!nl_seq_last && getrandom(&nl_seq_last, sizeof(nl_seq_last), GRND_NONBLOCK) < 0)
		nl_seq_last = (uint32_t)time(NULL);
	if (++nl_seq_last == 0)	/* 0 is what the kernel's own notifications carry */
		nl_seq_last = 1;
	return nl_seq_last;
}

struct nl_sock *nl_open(int bus)
{
	struct nl_sock *s = calloc(1, sizeof(*s));
	int one = 1, e;

	if (!s)
		return NULL;
	s->buf = malloc(NL_RECV_BUF);
	s->mnl = s->buf ? mnl_socket_open2(bus, SOCK_CLOEXEC | SOCK_NONBLOCK) : NULL;
	if (!s->mnl)
		goto err;
	/* best effort: old kernels lack them, the errno still tells */
	mnl_socket_setsockopt(s->mnl, NETLINK_EXT_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(s->mnl, NETLINK_CAP_ACK, &one, sizeof(one));
	if (mnl_socket_bind(s->mnl, 0, MNL_SOCKET_AUTOPID) < 0)
		goto err;
	s->fd = mnl_socket_get_fd(s->mnl);
	s->portid = mnl_socket_get_portid(s->mnl);
	return s;
err:
	e = errno ? errno : ENOMEM;
	nl_close(s);
	errno = e;
	return NULL;
}

void nl_close(struct nl_sock *s)
{
	if (!s)
		return;
	if (s->mnl)
		mnl_socket_close(s->mnl);
	free(s->buf);
	free(s);
}

const char *nl_ack_msg(const struct nlmsghdr *nlh)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	size_t len = mnl_nlmsg_get_payload_len(nlh), off;
	const struct nlattr *attr;

	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS) || len < sizeof(*e))
		return NULL;
	off = sizeof(*e);
	/* without NETLINK_CAP_ACK the original request follows the error */
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED)) {
		if (e->msg.nlmsg_len < sizeof(struct nlmsghdr))
			return NULL;
		off += e->msg.nlmsg_len - sizeof(struct nlmsghdr);
	}
	off = MNL_ALIGN(off);
	if (off > len)
		return NULL;
	mnl_attr_for_each_payload((const void *)((const char *)e + off), len - off) {
		if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG &&
		    mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0)
			return mnl_attr_get_str(attr);
	}
	return NULL;
}

/*
 * nl_recv() - the next datagram for @s, waiting until @deadline (monotonic
 * ms).  Return: its length, -ETIMEDOUT, -EMSGSIZE (did not fit: the answer
 * is lost, so the call fails rather than guess), or a negative errno.
 */
static ssize_t nl_recv(struct nl_sock *s, uint64_t deadline)
{
	for (;;) {
		struct sockaddr_nl from;
		socklen_t fl = sizeof(from);
		struct pollfd p = { .fd = s->fd, .events = POLLIN };
		uint64_t now;
		ssize_t n;

		n = recvfrom(s->fd, s->buf, NL_RECV_BUF, MSG_TRUNC, (struct sockaddr *)&from, &fl);
		if (n > NL_RECV_BUF)
			return -EMSGSIZE;
		if (n >= 0) {
			if (fl != sizeof(from) || from.nl_family != AF_NETLINK || from.nl_pid != 0)
				continue;	/* not the kernel: never an answer */
			return n;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		now = util_monotonic_ms();
		if (now >= deadline)
			return -ETIMEDOUT;
		if (poll(&p, 1, (int)(deadline - now)) < 0 && errno != EINTR)
			return -errno;
	}
}

static struct nl_msg_rec *nl_xchg_find(struct nl_xchg *x, uint32_t seq)
{
	for (size_t i = 0; i < x->n; i++)
		if (x->msg[i].seq == seq)
			return &x->msg[i];
	return NULL;
}

/* An NLMSG_ERROR (an ACK when its error is 0) for message @m */
static void nl_xchg_error(struct nl_xchg *x, struct nl_msg_rec *m, const struct nlmsghdr *nlh)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	const char *msg;
	int err;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*e)) {
		err = -EBADMSG;
		msg = NULL;
	} else {
		err = e->error < 0 ? e->error : -e->error;
		msg = nl_ack_msg(nlh);
	}
	if (m->ack && !m->done) {
		m->done = true;
		x->waiting--;
	}
	if (!err)
		return;
	if (!x->rc)
		x->rc = err;
	if (err == x->quiet)
		log_debug("netlink: %s: %s%s%s", m->what, strerror(-err), msg ? ": " : "", msg ? msg : "");
	else if (x->n > 1)
		log_errno(err, "netlink: %s: %s%s%s", x->what, m->what, msg ? ": " : "", msg ? msg : "");
	else
		log_errno(err, "netlink: %s%s%s", m->what, msg ? ": " : "", msg ? msg : "");
}

/* Handle one datagram of answers */
static void nl_xchg_input(struct nl_sock *s, struct nl_xchg *x, size_t len)
{
	const struct nlmsghdr *nlh = (const struct nlmsghdr *)s->buf;
	int left = (int)len;	/* len <= NL_RECV_BUF: fits */

	for (; mnl_nlmsg_ok(nlh, left); nlh = mnl_nlmsg_next(nlh, &left)) {
		struct nl_msg_rec *m;

		if (nlh->nlmsg_pid != s->portid || !(m = nl_xchg_find(x, nlh->nlmsg_seq)))
			continue;	/* not an answer to this call */
		if (nlh->nlmsg_flags & NLM_F_DUMP_INTR)
			x->intr = true;
		if (nlh->nlmsg_type == NLMSG_ERROR) {
			nl_xchg_error(x, m, nlh);
		} else if (nlh->nlmsg_type == NLMSG_DONE) {
			if (m->ack && !m->done) {
				m->done = true;
				x->waiting--;
			}
		} else if (nlh->nlmsg_type >= NLMSG_MIN_TYPE && x->cb) {
			int rc = x->cb(nlh, x->data);

			if (rc < 0 && !x->rc)
				x->rc = rc;
		}
	}
}

/*
 * nl_collect() - read answers until every message that expects one has it.
 * After an error, what is already queued is read and the rest not waited
 * for: a failed nftables batch does not answer all of its messages.
 */
static int nl_collect(struct nl_sock *s, struct nl_xchg *x)
{
	uint64_t deadline = util_monotonic_ms() + NL_TIMEOUT_MS;

	while (x->waiting) {
		ssize_t n = nl_recv(s, x->rc ? 0 : deadline);

		if (n == -ETIMEDOUT && x->rc)
			break;
		if (n < 0) {
			log_errno(n, "netlink: %s: %zu of %zu answers", x->what, x->n - x->waiting, x->n);
			return x->rc ? x->rc : (int)n;
		}
		nl_xchg_input(s, x, (size_t)n);
	}
	if (!x->rc && x->intr) {
		log_debug("netlink: %s: the dump changed while it was read", x->what);
		return -EAGAIN;
	}
	return x->rc;
}

static int nl_send(struct nl_sock *s, const void *buf, size_t len, const char *what)
{
	ssize_t n;

	do
		n = send(s->fd, buf, len, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		int rc = -errno;

		log_errno(rc, "netlink: %s: sending", what);
		return rc;
	}
	return n == (ssize_t)len ? 0 : -EIO;
}

/* one request, its answers through @cb */
static int nl_talk(struct nl_sock *s, struct nlmsghdr *nlh, const char *what, nl_msg_cb cb,
		   void *data, int quiet)
{
	struct nl_msg_rec m = { .ack = true };
	struct nl_xchg x = { .msg = &m, .n = 1, .waiting = 1, .what = what, .quiet = quiet,
			     .cb = cb, .data = data };
	int rc;

	if (!s || !nlh)
		return -EINVAL;
	util_snprintf(m.what, sizeof(m.what), "%s", what);	/* a description: may be cut */
	m.seq = nlh->nlmsg_seq = nl_seq_next();
	nlh->nlmsg_pid = 0;
	if ((rc = nl_send(s, nlh, nlh->nlmsg_len, what)))
		return rc;
	return nl_collect(s, &x);
}

int nl_request(struct nl_sock *s, struct nlmsghdr *nlh, const char *what, int quiet)
{
	if (nlh)
		nlh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	return nl_talk(s, nlh, what, NULL, NULL, quiet);
}

int nl_query(struct nl_sock *s, struct nlmsghdr *nlh, const char *what, nl_msg_cb cb, void *data,
	     int quiet)
{
	if (nlh) {
		nlh->nlmsg_flags |= NLM_F_REQUEST;
		/* a single GET ends with its ACK; a dump with DONE (or an error) */
		if ((nlh->nlmsg_flags & NLM_F_DUMP) != NLM_F_DUMP)
			nlh->nlmsg_flags |= NLM_F_ACK;
	}
	return nl_talk(s, nlh, what, cb, data, quiet);
}

/* ---- batches ---------------------------------------------------------- */

struct nl_batch *nl_batch_new(void)
{
	struct nl_batch *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->cap = 4 * NL_BATCH_ROOM;
	b->buf = malloc(b->cap);
	b->msg = calloc(NL_BATCH_MSGS, sizeof(*b->msg));
	if (!b->buf || !b->msg) {
		nl_batch_free(b);
		return NULL;
	}
	return b;
}

void nl_batch_free(struct nl_batch *b)
{
	if (!b)
		return;
	free(b->buf);
	free(b->msg);
	free(b);
}

void nl_batch_fail(struct nl_batch *b, int err)
{
	if (b && !b->err)
		b->err = err;
}

int nl_batch_error(const struct nl_batch *b)
{
	return b->err;
}

size_t nl_batch_count(const struct nl_batch *b)
{
	return b->n;
}

void *nl_batch_reserve(struct nl_batch *b, uint32_t *seq, const char *fmt, ...)
{
	struct nl_msg_rec *m;
	va_list ap;

	if (b->err)
		return NULL;
	if (b->n >= NL_BATCH_MSGS) {
		b->err = -E2BIG;
		return NULL;
	}
	if (b->cap - b->len < NL_BATCH_ROOM) {
		char *nb = realloc(b->buf, b->cap * 2);

		if (!nb) {
			b->err = -ENOMEM;
			return NULL;
		}
		b->buf = nb;
		b->cap *= 2;
	}
	m = &b->msg[b->n];
	memset(m, 0, sizeof(*m));
	va_start(ap, fmt);
	vsnprintf(m->what, sizeof(m->what), fmt, ap);	/* a description: may be cut */
	va_end(ap);
	m->seq = *seq = nl_seq_next();
	memset(b->buf + b->len, 0, sizeof(struct nlmsghdr));
	b->reserved = true;
	return b->buf + b->len;
}

int nl_batch_push(struct nl_batch *b)
{
	struct nlmsghdr *nlh = (struct nlmsghdr *)(b->buf + b->len);

	if (b->err)
		return b->err;
	if (!b->reserved)
		return b->err = -EINVAL;
	b->reserved = false;
	if (nlh->nlmsg_len < sizeof(*nlh) || nlh->nlmsg_len > NL_BATCH_ROOM ||
	    nlh->nlmsg_seq != b->msg[b->n].seq)
		return b->err = -EMSGSIZE;
	nlh->nlmsg_pid = 0;
	b->msg[b->n].ack = (nlh->nlmsg_flags & NLM_F_ACK) != 0;
	b->len += MNL_ALIGN(nlh->nlmsg_len);
	b->n++;
	return 0;
}

int nl_batch_talk(struct nl_sock *s, struct nl_batch *b, const char *what, int quiet)
{
	struct nl_xchg x = { .msg = b->msg, .n = b->n, .what = what, .quiet = quiet };
	int rc;

	if (b->err) {
		log_errno(b->err, "netlink: %s: building the batch", what);
		return b->err;
	}
	if (!s || !b->n)
		return s ? 0 : -EINVAL;
	for (size_t i = 0; i < b->n; i++)
		x.waiting += b->msg[i].ack;
	/*
	 * Every answer of the batch is queued while sendmsg() runs: make room
	 * for them (an error answer with its ext-ack text takes ~1 KiB of
	 * buffer), or the kernel drops some (ENOBUFS) and an error goes unnamed.
	 */
	{
		int want = (int)(x.waiting * 1024), have = 0;
		socklen_t len = sizeof(have);

		if (getsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &have, &len) == 0 && have < want &&
		    setsockopt(s->fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof(want)) < 0)
			setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof(want));
	}
	if ((rc = nl_send(s, b->buf, b->len, what)))
		return rc;
	return nl_collect(s, &x);
}

/* ---- generic netlink -------------------------------------------------- */

static int nl_genl_family_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *a;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(struct genlmsghdr))
		return -EBADMSG;
	mnl_attr_for_each(a, nlh, sizeof(struct genlmsghdr)) {
		if (mnl_attr_get_type(a) == CTRL_ATTR_FAMILY_ID &&
		    mnl_attr_validate(a, MNL_TYPE_U16) == 0)
			*(int *)data = mnl_attr_get_u16(a);
	}
	return 0;
}

int nl_genl_family(struct nl_sock *s, const char *name, uint16_t *id)
{
	char buf[512], what[64];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct genlmsghdr *g;
	int got = -1, rc;

	if (!name || strlen(name) >= GENL_NAMSIZ)
		return -EINVAL;
	nlh->nlmsg_type = GENL_ID_CTRL;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->cmd = CTRL_CMD_GETFAMILY;
	g->version = 1;
	mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, name);
	util_snprintf(what, sizeof(what), "generic netlink family %s", name);
	rc = nl_query(s, nlh, what, nl_genl_family_cb, &got, -ENOENT);
	if (rc)
		return rc;
	if (got <= 0)
		return -ENOENT;
	*id = (uint16_t)got;
	return 0;
}

/* ---- events ----------------------------------------------------------- */

int nl_event_open(int bus, unsigned int group)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	int fd, rc;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, bus);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof(group)) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

int nl_event_read(int fd, nl_msg_cb cb, void *data)
{
	char buf[NL_RECV_BUF] __attribute__((aligned(8)));
	int rc = 0;

	for (;;) {
		struct sockaddr_nl from;
		socklen_t fl = sizeof(from);
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf;
		ssize_t len = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC,
				       (struct sockaddr *)&from, &fl);
		int left;

		if (len < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return rc;
			return -errno;	/* -ENOBUFS: events were lost */
		}
		if (len > (ssize_t)sizeof(buf))
			return -ENOBUFS;	/* cut: as good as lost */
		if (fl != sizeof(from) || from.nl_pid != 0)
			continue;
		for (left = (int)len; mnl_nlmsg_ok(nlh, left); nlh = mnl_nlmsg_next(nlh, &left)) {
			int r = cb(nlh, data);

			if (r < 0 && !rc)
				rc = r;
		}
	}
}

/* ---- rtnetlink -------------------------------------------------------- */

/* one rtnetlink request on a socket of its own */
static int nl_route(struct nlmsghdr *nlh, const char *what, nl_msg_cb cb, void *data, int quiet)
{
	struct nl_sock *s = nl_open(NETLINK_ROUTE);
	int rc;

	if (!s)
		return -errno;
	if (cb || (nlh->nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP)
		rc = nl_query(s, nlh, what, cb, data, quiet);
	else
		rc = nl_request(s, nlh, what, quiet);
	nl_close(s);
	return rc;
}

static struct nlmsghdr *nl_link_msg(char *buf, uint16_t type, uint16_t flags, int family,
				    struct ifinfomsg **ifip)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifinfomsg *ifi;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = (unsigned char)family;
	*ifip = ifi;
	return nlh;
}

struct nl_link_info {
	int ifindex;
	uint8_t mac[6];
	int has_mac;
	int isolated;
	int learning;
};

static int nl_link_info_attr(const struct nlattr *a, void *data)
{
	struct nl_link_info *li = data;

	if (mnl_attr_get_type(a) == IFLA_ADDRESS && mnl_attr_get_payload_len(a) == 6) {
		memcpy(li->mac, mnl_attr_get_payload(a), 6);
		li->has_mac = 1;
	}
	if (mnl_attr_get_type(a) == IFLA_PROTINFO) {
		const struct nlattr *b;

		mnl_attr_for_each_nested(b, a) {
			if (mnl_attr_get_type(b) == IFLA_BRPORT_ISOLATED &&
			    mnl_attr_validate(b, MNL_TYPE_U8) == 0)
				li->isolated = mnl_attr_get_u8(b);
			if (mnl_attr_get_type(b) == IFLA_BRPORT_LEARNING &&
			    mnl_attr_validate(b, MNL_TYPE_U8) == 0)
				li->learning = mnl_attr_get_u8(b);
		}
	}
	return MNL_CB_OK;
}

static int nl_link_info_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nl_link_info *li = data;
	const struct ifinfomsg *ifi;

	if (nlh->nlmsg_type != RTM_NEWLINK || mnl_nlmsg_get_payload_len(nlh) < sizeof(*ifi))
		return -EBADMSG;
	ifi = mnl_nlmsg_get_payload(nlh);
	li->ifindex = ifi->ifi_index;
	if (mnl_attr_parse(nlh, sizeof(*ifi), nl_link_info_attr, li) < 0)
		return -EBADMSG;
	return 0;
}

static int nl_name_ok(const char *name)
{
	return net_ifname_valid(name) ? 0 : -EINVAL;
}

static int nl_link_query(const char *name, int family, struct nl_link_info *li)
{
	char buf[MNL_SOCKET_BUFFER_SIZE], what[64];
	struct ifinfomsg *ifi;
	struct nlmsghdr *nlh;
	int rc;

	if ((rc = nl_name_ok(name)))
		return rc;
	nlh = nl_link_msg(buf, RTM_GETLINK, 0, family, &ifi);
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	memset(li, 0, sizeof(*li));
	util_snprintf(what, sizeof(what), "get link %s", name);
	rc = nl_route(nlh, what, nl_link_info_cb, li, -ENODEV);
	if (rc == 0 && li->ifindex <= 0)
		rc = -ENODEV;
	return rc;
}

int nl_link_get(const char *name, int *ifindex, uint8_t mac[6])
{
	struct nl_link_info li;
	int rc = nl_link_query(name, AF_UNSPEC, &li);

	if (rc)
		return rc;
	if (mac) {
		if (!li.has_mac)
			return -EADDRNOTAVAIL;
		memcpy(mac, li.mac, 6);
	}
	*ifindex = li.ifindex;
	return 0;
}

/*
 * no_linklocal_learn: link-local frames (01:80:c2:00:00:0X, STP, LLDP,
 * 802.1X) are delivered by the bridge's input path, which by default still
 * learns their source MAC, even on a port whose learning is off in older
 * kernels' eyes.  Nothing hutch runs needs link-local learning.
 */
static void nl_put_no_ll_learn(struct nlmsghdr *nlh)
{
	struct br_boolopt_multi bm = { .optval = 1u << BR_BOOLOPT_NO_LL_LEARN,
				       .optmask = 1u << BR_BOOLOPT_NO_LL_LEARN };

	mnl_attr_put(nlh, IFLA_BR_MULTI_BOOLOPT, sizeof(bm), &bm);
}

/*
 * The bridge gets a MAC of its own (random, locally administered): without
 * one, the kernel gives the bridge the lowest MAC of its ports, so halting
 * the VM whose tap had it changes the gateway's MAC under the other VMs,
 * whose ARP entries then point nowhere until they expire (their traffic
 * stops for tens of seconds).  A MAC set at creation is never recalculated.
 */
int nl_bridge_add(const char *name)
{
	char buf[MNL_SOCKET_BUFFER_SIZE], what[64];
	struct ifinfomsg *ifi;
	struct nlmsghdr *nlh;
	struct nlattr *li, *data;
	uint8_t mac[6];
	int rc;

	if ((rc = nl_name_ok(name)))
		return rc;
	if (getrandom(mac, sizeof(mac), 0) != (ssize_t)sizeof(mac))
		return -errno;
	mac[0] = (uint8_t)((mac[0] & 0xfe) | 0x02);	/* unicast, locally administered */
	nlh = nl_link_msg(buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, AF_UNSPEC, &ifi);
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	mnl_attr_put(nlh, IFLA_ADDRESS, sizeof(mac), mac);
	li = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "bridge");
	data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
	/* no STP: a single bridge with tap ports only; STP would delay forwarding */
	mnl_attr_put_u32(nlh, IFLA_BR_STP_STATE, 0);
	nl_put_no_ll_learn(nlh);
	mnl_attr_nest_end(nlh, data);
	mnl_attr_nest_end(nlh, li);
	util_snprintf(what, sizeof(what), "create bridge %s", name);
	return nl_route(nlh, what, NULL, NULL, -EEXIST);
}

int nl_bridge_secure(const char *name)
{
	char buf[MNL_SOCKET_BUFFER_SIZE], what[64];
	struct ifinfomsg *ifi;
	struct nlmsghdr *nlh;
	struct nlattr *li, *data;
	int ifindex, rc;

	if ((rc = nl_link_get(name, &ifindex, NULL)))
		return rc;
	nlh = nl_link_msg(buf, RTM_NEWLINK, 0, AF_UNSPEC, &ifi);
	ifi->ifi_index = ifindex;
	li = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "bridge");
	data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
	nl_put_no_ll_learn(nlh);
	mnl_attr_nest_end(nlh, data);
	mnl_attr_nest_end(nlh, li);
	util_snprintf(what, sizeof(what), "no_linklocal_learn on bridge %s", name);
	return nl_route(nlh, what, NULL, NULL, 0);
}

int nl_addr_set(const char *name, struct in_addr addr, uint8_t prefix)
{
	char buf[MNL_SOCKET_BUFFER_SIZE], what[96], a[INET_ADDRSTRLEN];
	struct nlmsghdr *nlh;
	struct ifaddrmsg *ifa;
	struct in_addr brd;
	int ifindex, rc;

	if (prefix > 32)
		return -EINVAL;
	rc = nl_link_get(name, &ifindex, NULL);
	if (rc)
		return rc;
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_NEWADDR;
	/* REPLACE: the same address already there (a restart) is not an error */
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE;
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = AF_INET;
	ifa->ifa_prefixlen = prefix;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	ifa->ifa_index = (unsigned int)ifindex;
	brd.s_addr = addr.s_addr | ~net_mask(prefix);
	mnl_attr_put(nlh, IFA_LOCAL, sizeof(addr), &addr);
	mnl_attr_put(nlh, IFA_ADDRESS, sizeof(addr), &addr);
	mnl_attr_put(nlh, IFA_BROADCAST, sizeof(brd), &brd);
	inet_ntop(AF_INET, &addr, a, sizeof(a));
	util_snprintf(what, sizeof(what), "address %s/%u on %s", a, prefix, name);
	return nl_route(nlh, what, NULL, NULL, 0);
}

/**
 * struct nl_link_set - what nl_link_change() changes on an existing link
 * @flags, @change:  ifi_flags and ifi_change (IFF_UP)
 * @master:          ifindex of a new master, or 0
 * @brport:          AF_BRIDGE port flags follow (RTM_SETLINK, IFLA_PROTINFO)
 * @isolated, @learning, @flood: the port flags, when @brport
 */
struct nl_link_set {
	unsigned int flags, change;
	int master;
	bool brport;
	uint8_t isolated, learning, flood;
};

static int nl_link_change(const char *name, const struct nl_link_set *set, const char *what)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct ifinfomsg *ifi;
	struct nlmsghdr *nlh;
	int ifindex, rc;

	rc = nl_link_get(name, &ifindex, NULL);
	if (rc)
		return rc;
	nlh = nl_link_msg(buf, set->brport ? RTM_SETLINK : RTM_NEWLINK, 0,
			  set->brport ? AF_BRIDGE : AF_UNSPEC, &ifi);
	ifi->ifi_index = ifindex;
	ifi->ifi_flags = set->flags;
	ifi->ifi_change = set->change;
	if (set->master > 0)
		mnl_attr_put_u32(nlh, IFLA_MASTER, (uint32_t)set->master);
	if (set->brport) {
		struct nlattr *pi = mnl_attr_nest_start(nlh, IFLA_PROTINFO);

		mnl_attr_put_u8(nlh, IFLA_BRPORT_ISOLATED, set->isolated);
		mnl_attr_put_u8(nlh, IFLA_BRPORT_LEARNING, set->learning);
		mnl_attr_put_u8(nlh, IFLA_BRPORT_UNICAST_FLOOD, set->flood);
		mnl_attr_nest_end(nlh, pi);
	}
	return nl_route(nlh, what, NULL, NULL, 0);
}

int nl_link_up(const char *name)
{
	struct nl_link_set set = { .flags = IFF_UP, .change = IFF_UP };
	char what[64];

	util_snprintf(what, sizeof(what), "set %s up", name);
	return nl_link_change(name, &set, what);
}

int nl_link_down(const char *name)
{
	struct nl_link_set set = { .flags = 0, .change = IFF_UP };
	char what[64];

	util_snprintf(what, sizeof(what), "set %s down", name);
	return nl_link_change(name, &set, what);
}

int nl_link_set_master(const char *port, const char *bridge)
{
	struct nl_link_set set = { 0 };
	char what[96];
	int rc;

	rc = nl_link_get(bridge, &set.master, NULL);
	if (rc)
		return rc;
	util_snprintf(what, sizeof(what), "enslave %s to %s", port, bridge);
	return nl_link_change(port, &set, what);
}

/*
 * Learning off matters for frames the bridge filters never see: link-local
 * destinations (01:80:c2:00:00:0X) take the bridge's input path, not
 * prerouting, and their source MAC used to be learned there, so a guest
 * could move another guest's MAC to its own port and receive the host's
 * traffic for it.  Static FDB entries (nl_fdb_add()) replace learning.
 */
int nl_brport_isolate(const char *port, bool on)
{
	struct nl_link_set set = { .brport = true, .isolated = on, .learning = !on, .flood = !on };
	char what[64];

	util_snprintf(what, sizeof(what), "%s bridge port %s", on ? "isolate" : "un-isolate", port);
	return nl_link_change(port, &set, what);
}

int nl_fdb_add(const char *port, const uint8_t mac[6])
{
	char buf[MNL_SOCKET_BUFFER_SIZE], what[96];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ndmsg *nd;
	int ifindex, rc;

	if ((rc = nl_link_get(port, &ifindex, NULL)))
		return rc;
	nlh->nlmsg_type = RTM_NEWNEIGH;
	/* REPLACE: a learned (or stale) entry for the MAC becomes ours */
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE;
	nd = mnl_nlmsg_put_extra_header(nlh, sizeof(*nd));
	nd->ndm_family = AF_BRIDGE;
	nd->ndm_ifindex = ifindex;
	/* NUD_NOARP is "static" (forward to the port); NUD_PERMANENT would mean "local to the host" */
	nd->ndm_state = NUD_NOARP;
	nd->ndm_flags = NTF_MASTER;
	mnl_attr_put(nlh, NDA_LLADDR, 6, mac);
	util_snprintf(what, sizeof(what), "static FDB entry %02x:%02x:%02x:%02x:%02x:%02x on %s", mac[0],
		      mac[1], mac[2], mac[3], mac[4], mac[5], port);
	return nl_route(nlh, what, NULL, NULL, 0);
}

struct nl_brport_q {
	int ifindex;
	int found;
	struct nl_link_info li;
};

static int nl_brport_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nl_brport_q *q = data;
	const struct ifinfomsg *ifi;
	struct nl_link_info li = { 0 };

	if (nlh->nlmsg_type != RTM_NEWLINK || mnl_nlmsg_get_payload_len(nlh) < sizeof(*ifi))
		return 0;
	ifi = mnl_nlmsg_get_payload(nlh);
	if (ifi->ifi_index != q->ifindex)
		return 0;
	if (mnl_attr_parse(nlh, sizeof(*ifi), nl_link_info_attr, &li) < 0)
		return -EBADMSG;
	q->li = li;
	q->found = 1;
	return 0;
}

/*
 * The bridge answers RTM_GETLINK for AF_BRIDGE only as a dump (the port
 * flags, IFLA_PROTINFO, are not in a plain link query), so dump and pick.
 */
static int nl_brport_get(const char *port, struct nl_link_info *li)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nl_brport_q q = { 0 };
	struct ifinfomsg *ifi;
	struct nlmsghdr *nlh;
	int rc;

	if ((rc = nl_link_get(port, &q.ifindex, NULL)))
		return rc;
	nlh = nl_link_msg(buf, RTM_GETLINK, NLM_F_DUMP, AF_BRIDGE, &ifi);
	rc = nl_route(nlh, "list bridge ports", nl_brport_cb, &q, 0);
	if (rc)
		return rc;
	if (!q.found)
		return -ENOTCONN;	/* not a bridge port */
	*li = q.li;
	return 0;
}

int nl_brport_isolated(const char *port, bool *on)
{
	struct nl_link_info li;
	int rc = nl_brport_get(port, &li);

	if (rc == 0)
		*on = li.isolated != 0;
	return rc;
}

int nl_brport_learning(const char *port, bool *on)
{
	struct nl_link_info li;
	int rc = nl_brport_get(port, &li);

	if (rc == 0)
		*on = li.learning != 0;
	return rc;
}

int nl_link_del(const char *name)
{
	char buf[MNL_SOCKET_BUFFER_SIZE], what[64];
	struct ifinfomsg *ifi;
	struct nlmsghdr *nlh;
	int rc;

	if ((rc = nl_name_ok(name)))
		return rc;
	nlh = nl_link_msg(buf, RTM_DELLINK, 0, AF_UNSPEC, &ifi);
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	util_snprintf(what, sizeof(what), "delete link %s", name);
	return nl_route(nlh, what, NULL, NULL, -ENODEV);
}

struct nl_list {
	const char *prefix;
	int master;
	char (*names)[IFNAMSIZ];
	size_t max, n;
};

struct nl_list_attrs {
	const char *name;
	int master;
};

static int nl_list_attr(const struct nlattr *a, void *data)
{
	struct nl_list_attrs *la = data;

	if (mnl_attr_get_type(a) == IFLA_IFNAME && mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0 &&
	    mnl_attr_get_payload_len(a) <= IFNAMSIZ)
		la->name = mnl_attr_get_str(a);
	if (mnl_attr_get_type(a) == IFLA_MASTER && mnl_attr_validate(a, MNL_TYPE_U32) == 0)
		la->master = (int)mnl_attr_get_u32(a);
	return MNL_CB_OK;
}

static int nl_list_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nl_list *l = data;
	struct nl_list_attrs la = { 0 };

	if (nlh->nlmsg_type != RTM_NEWLINK ||
	    mnl_nlmsg_get_payload_len(nlh) < sizeof(struct ifinfomsg))
		return 0;
	if (mnl_attr_parse(nlh, sizeof(struct ifinfomsg), nl_list_attr, &la) < 0 || !la.name)
		return 0;
	if (strncmp(la.name, l->prefix, strlen(l->prefix)))
		return 0;
	if (l->master && la.master != l->master)
		return 0;
	if (l->n < l->max)
		memcpy(l->names[l->n], la.name, strlen(la.name) + 1);
	l->n++;
	return 0;
}

int nl_link_list(const char *prefix, const char *master, char (*names)[IFNAMSIZ], size_t max,
		 size_t *n)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nl_list l = { .prefix = prefix, .names = names, .max = max };
	struct ifinfomsg *ifi;
	struct nlmsghdr *nlh;
	int rc;

	if (master) {
		rc = nl_link_get(master, &l.master, NULL);
		if (rc == -ENODEV) {
			*n = 0;
			return 0;
		}
		if (rc)
			return rc;
	}
	nlh = nl_link_msg(buf, RTM_GETLINK, NLM_F_DUMP, AF_UNSPEC, &ifi);
	rc = nl_route(nlh, "list links", nl_list_cb, &l, 0);
	if (rc)
		return rc;
	*n = l.n;
	return 0;
}

int nl_sysctl_write(const char *rel, const char *val, char *old, size_t oldsz)
{
	char path[256], prev[64];
	ssize_t r;
	int fd, rc = 0;

	if (strstr(rel, ".."))
		return -EINVAL;
	if ((rc = util_snprintf(path, sizeof(path), "/proc/sys/%s", rel)))
		return rc;
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (old) {
		r = read(fd, prev, sizeof(prev) - 1);
		if (r < 0) {
			rc = -errno;
			goto out;
		}
		prev[r] = 0;
		prev[strcspn(prev, "\n")] = 0;
		if ((rc = util_snprintf(old, oldsz, "%s", prev)))
			goto out;
		if (lseek(fd, 0, SEEK_SET) < 0) {
			rc = -errno;
			goto out;
		}
	}
	rc = util_write_all(fd, val, strlen(val));
out:
	close(fd);
	return rc;
}

/*
 * Per-interface choices, for the bridge and each tap:
 * - disable_ipv6=1 unless the VM asked for IPv6: no link-local address, no
 *   router solicitations, nothing for the guest to reach over IPv6.
 * - bridge: send_redirects=0 (the host must not tell guests about other
 *   routes), accept_redirects=0, rp_filter=1 (strict: a guest cannot send
 *   with a source that would not route back through the bridge; the nft
 *   anti-spoofing rules are the main defence, this is a second one).
 * - route_localnet stays 0: guests must never reach 127.0.0.0/8 of the host.
 * - IPv4 on the taps themselves: none; they are bridge ports.
 */
int nl_if_sysctls(const char *name, bool ipv6, bool is_bridge)
{
	char rel[128];
	int rc;

	if ((rc = nl_name_ok(name)))
		return rc;
	if (!ipv6) {
		util_snprintf(rel, sizeof(rel), "net/ipv6/conf/%s/disable_ipv6", name);
		rc = nl_sysctl_write(rel, "1", NULL, 0);
		if (rc && rc != -ENOENT)
			return rc;
	}
	if (!is_bridge)
		return 0;
	static const char *const v4[][2] = {
		{ "send_redirects", "0" },
		{ "accept_redirects", "0" },
		{ "rp_filter", "1" },
		{ "route_localnet", "0" },
	};
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(v4); i++) {
		util_snprintf(rel, sizeof(rel), "net/ipv4/conf/%s/%s", name, v4[i][0]);
		rc = nl_sysctl_write(rel, v4[i][1], NULL, 0);
		if (rc)
			return rc;
	}
	return 0;
}

/*
 * Where hutch records that it turned ip_forward on: a file per network
 * namespace (ip_forward is per namespace; tests run hutch in several), in a
 * root-owned directory that outlives every supervisor, so the last VM to
 * stop, or `hutch gc` after a crash, can put the old value back.
 */
static int nl_forward_record(char *path, size_t n)
{
	uint64_t cookie = 0;
	socklen_t len = sizeof(cookie);
	int fd, rc;

	/*
	 * The namespace's cookie, unique until reboot (/run goes with it); an
	 * nsfs inode number can be reused by a later namespace, which would
	 * then inherit a stale record.
	 */
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	rc = getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len) < 0 ? -errno : 0;
	close(fd);
	if (rc)
		return rc;
	return util_snprintf(path, n, "%s/ip_forward.%llu", NL_FORWARD_DIR, (unsigned long long)cookie);
}

int nl_forwarding_on(void)
{
	char old[16], path[256];
	int rc = nl_sysctl_write("net/ipv4/ip_forward", "1", old, sizeof(old));

	if (rc || !strcmp(old, "1"))
		return rc;
	log_info("enabled net.ipv4.ip_forward (was %s) for NAT; restored when the last VM stops", old);
	if ((rc = nl_forward_record(path, sizeof(path))) || (rc = util_mkdir_p(NL_FORWARD_DIR, 0755)) ||
	    (rc = util_write_atomic(path, old, strlen(old), 0644)))
		log_warno(rc, "recording the previous ip_forward in %s; it will stay on", NL_FORWARD_DIR);
	return 0;
}

int nl_forwarding_restore(void)
{
	char path[256], *old = NULL, cur[16];
	size_t n = 0, len = 0;
	int rc;

	if ((rc = nl_link_list(NET_TAP_PREFIX, NULL, NULL, 0, &n)))
		return rc;
	if (n)
		return 0;	/* another VM (of any bridge) still needs it */
	if ((rc = nl_forward_record(path, sizeof(path))))
		return rc;
	rc = util_read_file(path, 16, &old, &len);
	if (rc == -ENOENT)
		return 0;
	if (rc)
		return rc;
	old[strcspn(old, "\n")] = 0;
	/* the record is root's, but check it anyway: only a plain 0 goes back */
	if (strcmp(old, "0")) {
		unlink(path);
		free(old);
		return 0;
	}
	rc = nl_sysctl_write("net/ipv4/ip_forward", old, cur, sizeof(cur));
	if (rc == 0) {
		log_info("restored net.ipv4.ip_forward to %s (hutch had turned it on)", old);
		unlink(path);
	}
	free(old);
	return rc ? rc : 1;
}

/* net.h: the shared bridge settings live here because every user of them also needs netlink */

int net_ifname_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n >= IFNAMSIZ || !strcmp(s, ".") || !strcmp(s, ".."))
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return 0;
	}
	return 1;
}

int net_subnet_parse(const char *s, struct net_conf *nc)
{
	char addr[INET_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	struct in_addr a;
	long p;
	size_t n;

	if (!slash)
		return -EINVAL;
	n = (size_t)(slash - s);
	if (n == 0 || n >= sizeof(addr))
		return -EINVAL;
	memcpy(addr, s, n);
	addr[n] = 0;
	if (inet_pton(AF_INET, addr, &a) != 1)
		return -EINVAL;
	if (util_parse_long(slash + 1, 8, 30, &p))
		return -EINVAL;
	/* the gateway must be a host address of its subnet */
	if ((a.s_addr & ~net_mask((uint8_t)p)) == 0 ||
	    (a.s_addr | net_mask((uint8_t)p)) == 0xffffffffu)
		return -EINVAL;
	nc->gw = a;
	nc->prefix = (uint8_t)p;
	nc->net.s_addr = a.s_addr & net_mask((uint8_t)p);
	return 0;
}

int net_conf_get(struct net_conf *nc)
{
	const char *br = getenv("HUTCH_BRIDGE"), *sub = getenv("HUTCH_SUBNET");
	struct net_conf c = { 0 };

	if (!br || !*br)
		br = NET_BRIDGE_DEFAULT;
	if (!sub || !*sub)
		sub = NET_SUBNET_DEFAULT;
	if (!net_ifname_valid(br) || !strncmp(br, NET_TAP_PREFIX, strlen(NET_TAP_PREFIX))) {
		log_err("HUTCH_BRIDGE: '%s' is not a usable bridge name", br);
		return -EINVAL;
	}
	if (net_subnet_parse(sub, &c)) {
		log_err("HUTCH_SUBNET: '%s' is not A.B.C.D/N with N in 8..30 and a host address", sub);
		return -EINVAL;
	}
	memcpy(c.bridge, br, strlen(br) + 1);
	*nc = c;
	return 0;
}
