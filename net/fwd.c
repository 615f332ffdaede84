// SPDX-License-Identifier: MIT
/*
 * fwd.c - userspace relay for port forwards; see the DOC block in fwd.h for
 * why forwards are not DNAT rules.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "net/fwd.h"
#include "src/log.h"
#include "src/util.h"

struct fwd_lis {
	int fd;
	struct cfg_forward f;
};

/* One direction of a TCP connection: bytes read from one side, not yet written to the other */
struct fwd_pipe {
	char buf[FWD_BUF];
	size_t off, len;
	bool eof;	/* the reading side closed */
	bool shut;	/* shutdown(SHUT_WR) done on the writing side */
};

struct fwd_tcp {
	int cfd, gfd;	/* -1 when the slot is free */
	bool connecting;
	uint64_t last;	/* monotonic ms of the last byte moved (or the accept) */
	struct fwd_pipe c2g, g2c;
};

struct fwd_udp {
	int fd;		/* connected to guest:G; -1 when free */
	int lis;	/* index of the listener */
	struct sockaddr_in peer;
	uint64_t last;
};

/* What the epoll set holds, to change only what changed */
struct fwd_reg {
	int fd;
	short ev;
};

struct fwd {
	struct in_addr guest;
	uint64_t idle_ms, half_ms;	/* FWD_TCP_IDLE_MS, FWD_TCP_HALF_MS unless a test set them */
	int epfd, tfd;		/* fwd_epoll_fd() and its idle timer; -1 until asked for */
	bool timer_on;
	struct fwd_reg reg[FWD_MAX_FDS];
	size_t n_reg;
	struct fwd_lis lis[FWD_MAX];
	size_t n_lis;
	struct fwd_tcp tcp[FWD_TCP_MAX];
	struct fwd_udp udp[FWD_UDP_MAX];
};

/*
 * fd_close() - close one of the relay's sockets, leaving the epoll set and
 * its record first: the number may be reused at once by the next accept,
 * which must then be seen as new.
 */
static void fd_close(struct fwd *fw, int fd)
{
	if (fd < 0)
		return;
	if (fw->epfd >= 0) {
		epoll_ctl(fw->epfd, EPOLL_CTL_DEL, fd, NULL);
		for (size_t j = 0; j < fw->n_reg; j++) {
			if (fw->reg[j].fd == fd) {
				fw->reg[j] = fw->reg[--fw->n_reg];
				break;
			}
		}
	}
	close(fd);
}

static void tcp_close(struct fwd *fw, struct fwd_tcp *c)
{
	fd_close(fw, c->cfd);
	fd_close(fw, c->gfd);
	c->cfd = c->gfd = -1;
}

void fwd_stop(struct fwd *fw)
{
	if (!fw)
		return;
	for (size_t i = 0; i < fw->n_lis; i++)
		close(fw->lis[i].fd);
	for (size_t i = 0; i < FWD_TCP_MAX; i++)
		tcp_close(fw, &fw->tcp[i]);
	for (size_t i = 0; i < FWD_UDP_MAX; i++)
		if (fw->udp[i].fd >= 0)
			close(fw->udp[i].fd);
	if (fw->tfd >= 0)
		close(fw->tfd);
	if (fw->epfd >= 0)
		close(fw->epfd);
	free(fw);
}

static int lis_open(const struct cfg_forward *f)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(f->host_port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	bool tcp = f->proto == CFG_PROTO_TCP;
	int fd, one = 1, rc;

	fd = socket(AF_INET, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Restarting a VM must not wait for TIME_WAIT of the previous relay */
	if (tcp && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		goto err;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		goto err;
	if (tcp && listen(fd, 16) < 0)
		goto err;
	return fd;
err:
	rc = -errno;
	close(fd);
	return rc;
}

int fwd_start(const struct cfg_forward *f, size_t n, struct in_addr guest, struct fwd **out)
{
	struct fwd *fw;
	int rc;

	if (n > FWD_MAX || (n && !f))
		return -EINVAL;
	fw = calloc(1, sizeof(*fw));
	if (!fw)
		return -ENOMEM;
	fw->guest = guest;
	fw->idle_ms = FWD_TCP_IDLE_MS;
	fw->half_ms = FWD_TCP_HALF_MS;
	fw->epfd = fw->tfd = -1;
	for (size_t i = 0; i < FWD_TCP_MAX; i++)
		fw->tcp[i].cfd = fw->tcp[i].gfd = -1;
	for (size_t i = 0; i < FWD_UDP_MAX; i++)
		fw->udp[i].fd = -1;
	for (size_t i = 0; i < n; i++) {
		rc = lis_open(&f[i]);
		if (rc < 0) {
			log_errno(rc, "forward %s/%u:%u: listening on 127.0.0.1:%u",
				  f[i].proto == CFG_PROTO_TCP ? "tcp" : "udp", f[i].host_port, f[i].guest_port,
				  f[i].host_port);
			fwd_stop(fw);
			return rc;
		}
		fw->lis[fw->n_lis].fd = rc;
		fw->lis[fw->n_lis].f = f[i];
		fw->n_lis++;
	}
	*out = fw;
	return 0;
}

static void add_pfd(struct pollfd *p, size_t max, size_t *n, int fd, short ev)
{
	if (ev && *n < max) {
		p[*n].fd = fd;
		p[*n].events = ev;
		p[*n].revents = 0;
		(*n)++;
	}
}

void fwd_pollfds(struct fwd *fw, struct pollfd *p, size_t max, size_t *n)
{
	*n = 0;
	for (size_t i = 0; i < fw->n_lis; i++)
		add_pfd(p, max, n, fw->lis[i].fd, POLLIN);
	for (size_t i = 0; i < FWD_TCP_MAX; i++) {
		struct fwd_tcp *c = &fw->tcp[i];
		short ce = 0, ge = 0;

		if (c->cfd < 0)
			continue;
		if (c->connecting) {
			add_pfd(p, max, n, c->gfd, POLLOUT);
			continue;
		}
		if (!c->c2g.eof && c->c2g.len < FWD_BUF)
			ce |= POLLIN;
		if (c->g2c.len)
			ce |= POLLOUT;
		if (!c->g2c.eof && c->g2c.len < FWD_BUF)
			ge |= POLLIN;
		if (c->c2g.len)
			ge |= POLLOUT;
		/*
		 * An fd with nothing to do is left out: poll would report a
		 * hang-up on it over and over (a busy loop) while the other
		 * side drains; its errors show on the next read or write.
		 */
		add_pfd(p, max, n, c->cfd, ce);
		add_pfd(p, max, n, c->gfd, ge);
	}
	for (size_t i = 0; i < FWD_UDP_MAX; i++)
		if (fw->udp[i].fd >= 0)
			add_pfd(p, max, n, fw->udp[i].fd, POLLIN);
}

static int guest_socket(const struct fwd *fw, const struct cfg_forward *f, bool *inprogress)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(f->guest_port),
				  .sin_addr = fw->guest };
	bool tcp = f->proto == CFG_PROTO_TCP;
	int fd, rc;

	fd = socket(AF_INET, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	*inprogress = false;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno != EINPROGRESS) {
			rc = -errno;
			close(fd);
			return rc;
		}
		*inprogress = true;
	}
	return fd;
}

/*
 * A free slot, or the one whose connection has been idle longest when that
 * is at least FWD_TCP_EVICT_MS: a guest that keeps connections open without
 * a byte must not lock the host out of its forwards.  NULL when all are busy.
 */
static struct fwd_tcp *tcp_slot(struct fwd *fw, uint16_t port)
{
	struct fwd_tcp *lru = NULL;
	uint64_t now = util_monotonic_ms();

	for (size_t i = 0; i < FWD_TCP_MAX; i++) {
		struct fwd_tcp *c = &fw->tcp[i];

		if (c->cfd < 0)
			return c;
		if (!lru || c->last < lru->last)
			lru = c;
	}
	if (now - lru->last < FWD_TCP_EVICT_MS)
		return NULL;
	log_ratelimited(LOG_LVL_WARN, "fwd-evict", "forward tcp/%u: %d connections open; closing the one idle "
			"for %llu s", port, FWD_TCP_MAX, (unsigned long long)((now - lru->last) / 1000));
	tcp_close(fw, lru);
	return lru;
}

static void tcp_accept(struct fwd *fw, struct fwd_lis *l)
{
	struct fwd_tcp *c;
	bool inprogress = false;
	int cfd, gfd;

	cfd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (cfd < 0)
		return;
	c = tcp_slot(fw, l->f.host_port);
	if (!c) {
		/* Refuse rather than queue: the cap bounds memory and fds */
		log_ratelimited(LOG_LVL_WARN, "fwd-full", "forward tcp/%u: %d connections busy, refusing one",
				l->f.host_port, FWD_TCP_MAX);
		close(cfd);
		return;
	}
	gfd = guest_socket(fw, &l->f, &inprogress);
	if (gfd < 0) {
		log_ratelimited(LOG_LVL_WARN, "fwd-connect", "forward tcp/%u: connecting to the guest's port %u: %s",
				l->f.host_port, l->f.guest_port, strerror(-gfd));
		close(cfd);
		return;
	}
	memset(c, 0, sizeof(*c));
	c->cfd = cfd;
	c->gfd = gfd;
	c->connecting = inprogress;
	c->last = util_monotonic_ms();
}

/* Move bytes from @from into @p (*@moved set when any moved); false when the connection must close */
static bool pipe_read(struct fwd_pipe *p, int from, bool *moved)
{
	ssize_t r;

	if (p->eof || p->len == FWD_BUF)
		return true;
	if (p->off && p->len)
		memmove(p->buf, p->buf + p->off, p->len);
	p->off = 0;
	r = read(from, p->buf + p->len, FWD_BUF - p->len);
	if (r < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
	if (r == 0)
		p->eof = true;
	p->len += (size_t)r;
	*moved = true;	/* a hang-up counts: the half-closed timer starts now */
	return true;
}

static bool pipe_write(struct fwd_pipe *p, int to, bool *moved)
{
	ssize_t w;

	if (p->len) {
		w = send(to, p->buf + p->off, p->len, MSG_NOSIGNAL);
		if (w < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
		p->off += (size_t)w;
		p->len -= (size_t)w;
		if (!p->len)
			p->off = 0;
		if (w > 0)
			*moved = true;
	}
	/* Half-close passes through once everything read has been written */
	if (p->eof && !p->len && !p->shut) {
		shutdown(to, SHUT_WR);
		p->shut = true;
	}
	return true;
}

static void tcp_io(struct fwd *fw, struct fwd_tcp *c, int fd, short rev)
{
	bool ok = true, moved = false;

	if (c->connecting) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(c->gfd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
			tcp_close(fw, c);	/* the client sees its connection closed */
			return;
		}
		c->connecting = false;
		return;
	}
	if (fd == c->cfd) {
		if (rev & (POLLIN | POLLHUP | POLLERR))
			ok = pipe_read(&c->c2g, c->cfd, &moved);
		if (ok && (rev & POLLOUT))
			ok = pipe_write(&c->g2c, c->cfd, &moved);
		if (ok)
			ok = pipe_write(&c->c2g, c->gfd, &moved);
	} else {
		if (rev & (POLLIN | POLLHUP | POLLERR))
			ok = pipe_read(&c->g2c, c->gfd, &moved);
		if (ok && (rev & POLLOUT))
			ok = pipe_write(&c->c2g, c->gfd, &moved);
		if (ok)
			ok = pipe_write(&c->g2c, c->cfd, &moved);
	}
	if (moved)
		c->last = util_monotonic_ms();
	if ((rev & POLLERR) || !ok || (c->c2g.shut && c->g2c.shut))
		tcp_close(fw, c);
}

static void udp_from_client(struct fwd *fw, size_t li)
{
	struct fwd_lis *l = &fw->lis[li];
	struct sockaddr_in peer = { 0 };
	socklen_t plen = sizeof(peer);
	char buf[65536];
	struct fwd_udp *s = NULL, *oldest = NULL;
	bool inprogress = false;
	ssize_t r;

	r = recvfrom(l->fd, buf, sizeof(buf), 0, (struct sockaddr *)&peer, &plen);
	if (r < 0 || plen != sizeof(peer))
		return;
	for (size_t i = 0; i < FWD_UDP_MAX; i++) {
		struct fwd_udp *u = &fw->udp[i];

		if (u->fd >= 0 && u->lis == (int)li && u->peer.sin_port == peer.sin_port &&
		    u->peer.sin_addr.s_addr == peer.sin_addr.s_addr) {
			s = u;
			break;
		}
		/* A free slot wins; else the least recently used peer */
		if (!oldest || (oldest->fd >= 0 && (u->fd < 0 || u->last < oldest->last)))
			oldest = u;
	}
	if (!s) {
		int fd = guest_socket(fw, &l->f, &inprogress);

		if (fd < 0)
			return;
		s = oldest;	/* a free slot, else the least recently used peer */
		fd_close(fw, s->fd);
		s->fd = fd;
		s->lis = (int)li;
		s->peer = peer;
	}
	s->last = util_monotonic_ms();
	(void)send(s->fd, buf, (size_t)r, MSG_DONTWAIT);
}

static void udp_from_guest(struct fwd *fw, struct fwd_udp *s)
{
	char buf[65536];
	ssize_t r;

	r = recv(s->fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (r < 0)
		return;	/* e.g. ECONNREFUSED from an ICMP error: the peer may retry */
	s->last = util_monotonic_ms();
	(void)sendto(fw->lis[s->lis].fd, buf, (size_t)r, MSG_DONTWAIT, (struct sockaddr *)&s->peer,
		     sizeof(s->peer));
}

void fwd_handle(struct fwd *fw, int fd, short revents)
{
	for (size_t i = 0; i < fw->n_lis; i++) {
		if (fw->lis[i].fd != fd)
			continue;
		if (fw->lis[i].f.proto == CFG_PROTO_TCP)
			tcp_accept(fw, &fw->lis[i]);
		else
			udp_from_client(fw, i);
		return;
	}
	for (size_t i = 0; i < FWD_TCP_MAX; i++) {
		struct fwd_tcp *c = &fw->tcp[i];

		if (c->cfd >= 0 && (c->cfd == fd || c->gfd == fd)) {
			tcp_io(fw, c, fd, revents);
			return;
		}
	}
	for (size_t i = 0; i < FWD_UDP_MAX; i++) {
		if (fw->udp[i].fd == fd) {
			udp_from_guest(fw, &fw->udp[i]);
			return;
		}
	}
}

uint16_t fwd_local_port(const struct fwd *fw, size_t i)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);

	if (i >= fw->n_lis || getsockname(fw->lis[i].fd, (struct sockaddr *)&sa, &len) < 0 ||
	    len != sizeof(sa))
		return 0;
	return ntohs(sa.sin_port);
}

void fwd_set_timeouts(struct fwd *fw, uint64_t idle_ms, uint64_t half_ms)
{
	fw->idle_ms = idle_ms;
	fw->half_ms = half_ms;
}

/*
 * A connection with no byte moved for fw->idle_ms is closed, and one where
 * either side has hung up (sent its FIN) after fw->half_ms: the host's
 * client has gone (or the guest has), and a guest that never answers nor
 * closes must not keep the slot.  A reset shows up on the next read or write.
 */
static void tcp_tick(struct fwd *fw, uint64_t now)
{
	for (size_t i = 0; i < FWD_TCP_MAX; i++) {
		struct fwd_tcp *c = &fw->tcp[i];
		bool half;

		if (c->cfd < 0)
			continue;
		half = c->c2g.eof || c->g2c.eof;
		if (now - c->last >= (half ? fw->half_ms : fw->idle_ms))
			tcp_close(fw, c);
	}
}

void fwd_tick(struct fwd *fw)
{
	uint64_t now = util_monotonic_ms();

	tcp_tick(fw, now);
	for (size_t i = 0; i < FWD_UDP_MAX; i++) {
		struct fwd_udp *u = &fw->udp[i];

		if (u->fd >= 0 && now - u->last > FWD_UDP_IDLE_MS) {
			fd_close(fw, u->fd);
			u->fd = -1;
		}
	}
}

static uint32_t ep_events(short ev)
{
	return (ev & POLLIN ? EPOLLIN : 0) | (ev & POLLOUT ? EPOLLOUT : 0);
}

/*
 * ep_sync() - make the epoll set match fwd_pollfds(): fds whose wanted
 * events changed are modified, new ones added, gone ones removed (a closed
 * fd has already left the set; its number may be reused, hence ADD on ENOENT
 * and EEXIST handled).  The idle timer runs only while UDP peers exist.
 */
static void ep_sync(struct fwd *fw)
{
	struct pollfd p[FWD_MAX_FDS];
	struct fwd_reg nreg[FWD_MAX_FDS];
	size_t n = 0;
	bool udp = false;

	fwd_pollfds(fw, p, FWD_MAX_FDS, &n);
	for (size_t i = 0; i < n; i++) {
		struct epoll_event e = { .events = ep_events(p[i].events), .data.fd = p[i].fd };
		size_t j;

		for (j = 0; j < fw->n_reg && fw->reg[j].fd != p[i].fd; j++)
			;
		if (j == fw->n_reg) {
			if (epoll_ctl(fw->epfd, EPOLL_CTL_ADD, p[i].fd, &e) < 0 && errno == EEXIST)
				epoll_ctl(fw->epfd, EPOLL_CTL_MOD, p[i].fd, &e);
		} else if (fw->reg[j].ev != p[i].events) {
			if (epoll_ctl(fw->epfd, EPOLL_CTL_MOD, p[i].fd, &e) < 0 && errno == ENOENT)
				epoll_ctl(fw->epfd, EPOLL_CTL_ADD, p[i].fd, &e);
		}
		nreg[i] = (struct fwd_reg){ .fd = p[i].fd, .ev = p[i].events };
	}
	for (size_t j = 0; j < fw->n_reg; j++) {
		size_t i;

		for (i = 0; i < n && nreg[i].fd != fw->reg[j].fd; i++)
			;
		if (i == n)
			epoll_ctl(fw->epfd, EPOLL_CTL_DEL, fw->reg[j].fd, NULL);	/* EBADF/ENOENT if closed */
	}
	memcpy(fw->reg, nreg, n * sizeof(nreg[0]));
	fw->n_reg = n;

	/* the timer runs while anything can expire: UDP peers, TCP connections */
	for (size_t i = 0; i < FWD_UDP_MAX; i++)
		udp |= fw->udp[i].fd >= 0;
	for (size_t i = 0; i < FWD_TCP_MAX; i++)
		udp |= fw->tcp[i].cfd >= 0;
	if (udp != fw->timer_on) {
		struct itimerspec its = { 0 };

		if (udp)
			its.it_value.tv_sec = its.it_interval.tv_sec = FWD_TICK_S;
		timerfd_settime(fw->tfd, 0, &its, NULL);
		fw->timer_on = udp;
	}
}

int fwd_epoll_fd(struct fwd *fw)
{
	struct epoll_event e = { .events = EPOLLIN };
	int rc;

	if (fw->epfd >= 0)
		return fw->epfd;
	fw->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (fw->epfd < 0)
		return -errno;
	fw->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (fw->tfd < 0)
		goto err;
	e.data.fd = fw->tfd;
	if (epoll_ctl(fw->epfd, EPOLL_CTL_ADD, fw->tfd, &e) < 0)
		goto err;
	ep_sync(fw);
	return fw->epfd;
err:
	rc = -errno;
	if (fw->tfd >= 0)
		close(fw->tfd);
	close(fw->epfd);
	fw->epfd = fw->tfd = -1;
	return rc;
}

void fwd_dispatch(struct fwd *fw)
{
	struct epoll_event ev[32];
	int n;

	if (fw->epfd < 0)
		return;
	n = epoll_wait(fw->epfd, ev, (int)UTIL_ARRAY_SIZE(ev), 0);
	for (int i = 0; i < n; i++) {
		short re = (short)((ev[i].events & EPOLLIN ? POLLIN : 0) | (ev[i].events & EPOLLOUT ? POLLOUT : 0) |
				   (ev[i].events & EPOLLERR ? POLLERR : 0) | (ev[i].events & EPOLLHUP ? POLLHUP : 0));

		if (ev[i].data.fd == fw->tfd) {
			uint64_t ticks;

			if (read(fw->tfd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
				log_warno(-errno, "forward: idle timer");
			fwd_tick(fw);
			continue;
		}
		/* A previous event in this batch may have closed (and freed the slot of) this fd */
		fwd_handle(fw, ev[i].data.fd, re);
	}
	ep_sync(fw);
}
