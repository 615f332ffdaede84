/* SPDX-License-Identifier: MIT */
#ifndef HUTCH_FWD_H
#define HUTCH_FWD_H
/**
 * DOC: fwd - port forwards (forward: "tcp/8080:80") relayed in userspace
 *
 * A forward publishes guest:G on 127.0.0.1:H of the host, and on nothing
 * else.  DNAT cannot do that: packets to 127.0.0.1 are only routed to
 * another interface with net.ipv4.conf.<if>.route_localnet=1, and with it on
 * the bridge the guest could in turn reach the host's loopback services
 * (the "127.0.0.1 via a forged route" attack the isolation rules stop).  So
 * the supervisor relays: it listens on 127.0.0.1:H and for each connection
 * (TCP) or peer (UDP) opens its own socket to guest:G.  The host reaches the
 * guest from the bridge address, which the rules allow (the guest's answers
 * are established traffic).
 *
 * Bounds: FWD_BUF bytes buffered per direction per TCP connection (a slow
 * reader stalls its writer, nothing grows); FWD_TCP_MAX connections and
 * FWD_UDP_MAX UDP peers at once; UDP peers idle for FWD_UDP_IDLE_MS are
 * forgotten.  The guest decides when its side of a connection ends, so a
 * hostile guest could keep every slot: a TCP connection is closed when no
 * byte moved for FWD_TCP_IDLE_MS, or for FWD_TCP_HALF_MS once either side
 * hung up (the host's client closed, the guest never does), and when all
 * slots are taken a new connection takes the slot idle longest (at least
 * FWD_TCP_EVICT_MS) instead of being refused.  Any local user of the host
 * can connect, as with QEMU's hostfwd.
 *
 * Two ways to drive it, both non-blocking (errors on one connection close
 * that connection only):
 * - one fd: fwd_epoll_fd() is readable whenever the relay has work (an epoll
 *   set of its sockets plus a timer for idle UDP peers); watch it with
 *   sv_watch_fd() and call fwd_dispatch() when it is readable;
 * - a poll loop of one's own: fwd_pollfds() fills pollfds, fwd_handle()
 *   takes each one with events, fwd_tick() about once a second.
 */
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#include "src/cfg.h"

#define FWD_MAX 16		/* forwards per VM */
#define FWD_TCP_MAX 64		/* TCP connections at once, all forwards together */
#define FWD_UDP_MAX 32		/* UDP peers at once */
#define FWD_BUF 16384		/* bytes buffered per direction per connection */
#define FWD_UDP_IDLE_MS 60000
#define FWD_TCP_IDLE_MS (15 * 60 * 1000)	/* no byte either way */
#define FWD_TCP_HALF_MS 30000		/* after a side hung up */
#define FWD_TCP_EVICT_MS 10000		/* idle enough to give its slot to a new connection */
#define FWD_TICK_S 2			/* how often the timeouts are checked */
#define FWD_MAX_FDS (FWD_MAX + 2 * FWD_TCP_MAX + FWD_UDP_MAX)

struct fwd;

/**
 * fwd_start() - listen on 127.0.0.1 for each forward
 * @f:     the forwards (copied)
 * @n:     how many (at most FWD_MAX)
 * @guest: the guest's address
 * @out:   set to the relay on success; free with fwd_stop()
 *
 * Return: 0, or a negative errno (-EADDRINUSE names the port in the log);
 * on error no socket stays open
 */
int fwd_start(const struct cfg_forward *f, size_t n, struct in_addr guest, struct fwd **out);

/** fwd_pollfds() - the fds to poll now, with their events, into @p (room for @max); *@n set */
void fwd_pollfds(struct fwd *fw, struct pollfd *p, size_t max, size_t *n);

/** fwd_handle() - act on @revents of @fd (one of fwd_pollfds()'s); unknown fds are ignored */
void fwd_handle(struct fwd *fw, int fd, short revents);

/** fwd_tick() - forget idle UDP peers, close idle or abandoned TCP connections; call about once a second */
void fwd_tick(struct fwd *fw);

/** fwd_local_port() - the port forward @i listens on, 0 when unknown (tests bind port 0) */
uint16_t fwd_local_port(const struct fwd *fw, size_t i);

/** fwd_set_timeouts() - other TCP idle and half-closed timeouts (tests) */
void fwd_set_timeouts(struct fwd *fw, uint64_t idle_ms, uint64_t half_ms);

/** fwd_epoll_fd() - an fd that is readable when fwd_dispatch() has work; owned by @fw */
int fwd_epoll_fd(struct fwd *fw);

/** fwd_dispatch() - handle whatever is ready (never blocks), expire idle UDP peers */
void fwd_dispatch(struct fwd *fw);

/** fwd_stop() - close every socket and free @fw (NULL is fine) */
void fwd_stop(struct fwd *fw);

#endif
