/* SPDX-License-Identifier: MIT */
#ifndef HUTCH_DNS_H
#define HUTCH_DNS_H
/**
 * DOC: dns - a small DNS forwarder on the gateway address, UDP port 53
 *
 * Guests use the bridge address as their resolver (DHCP option 6); the
 * forwarder relays their queries to the host's resolvers.  Several
 * supervisors (one per VM) each bind gw:53 with SO_REUSEPORT: the kernel
 * hands a query to any one of them, and that is fine because every
 * forwarder serves any client of the bridge subnet and answers to the
 * client's own address.  Nothing else is served: the socket is bound to the
 * gateway address only and sources outside the subnet are dropped (no open
 * resolver).
 *
 * Upstreams come from /etc/resolv.conf ($HUTCH_RESOLV_CONF for tests).  When
 * it names only systemd-resolved's stub (127.0.0.53), the real list in
 * /run/systemd/resolve/resolv.conf is used when readable, so the queries go
 * to the same servers resolved would use without a second cache in the way;
 * otherwise the stub itself is used (the supervisor runs on the host, it can
 * reach it).  IPv4 upstreams only; the first one is asked.
 *
 * Only queries are forwarded (dns_parse_query()): an UPDATE, a NOTIFY or a
 * "query" carrying records never reaches the host's resolver.  In-flight
 * state is bounded (DNS_INFLIGHT_MAX queries, at most DNS_INFLIGHT_PER_SRC
 * per client, each forgotten after DNS_TIMEOUT_MS); upstream query ids are
 * random (getrandom) and mapped back to the client's id and address; a
 * reply is accepted only from the upstream address and port we asked, with
 * the id we chose and the same question.
 *
 * UDP only, by choice: the rules close tcp/53 on the gateway (and open
 * udp/53 only while a forwarder runs, see nft_vm.dns).  The guest's EDNS0
 * OPT record is passed on, so answers up to DNS_PKT_MAX bytes come back by
 * UDP; a larger one arrives truncated (TC) and its TCP retry fails.  A TCP
 * path would be a second parser and per-connection state reachable by the
 * guest, for answers that stub resolvers rarely need.
 */
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#define DNS_INFLIGHT_MAX 256
#define DNS_INFLIGHT_PER_SRC 32	/* one client's share of the slots */
#define DNS_TIMEOUT_MS   5000
#define DNS_UPSTREAM_MAX 3
#define DNS_NAME_MAX     255
#define DNS_PKT_MAX      4096

/** struct dns_question - the question of a message (wire-format name, lowercased) */
struct dns_question {
	uint8_t name[DNS_NAME_MAX];
	size_t name_len;
	uint16_t qtype, qclass;
};

/**
 * dns_parse() - check a message and read its header and single question
 * @p, @n:   the message (untrusted)
 * @id:      set to the message id
 * @flags:   set to the header flags
 * @q:       set to the question
 * Return: 0, or -EBADMSG (not exactly one well-formed question, compression
 * pointer in the question, name too long, truncated)
 */
int dns_parse(const uint8_t *p, size_t n, uint16_t *id, uint16_t *flags, struct dns_question *q);

/**
 * dns_parse_query() - dns_parse(), and the message must be a plain query:
 * QR 0, opcode QUERY, one question, no answer or authority records, at most
 * one additional record and that one an OPT ending the message
 * Return: 0, or -EBADMSG (nothing to forward)
 */
int dns_parse_query(const uint8_t *p, size_t n, uint16_t *id, uint16_t *flags, struct dns_question *q);

/** dns_resolv_load() - IPv4 nameservers of a resolv.conf (port 53), stub rule applied */
int dns_resolv_load(const char *path, struct sockaddr_in *up, size_t max, size_t *n);

struct dns_fwd;

/**
 * dns_fwd_open() - start a forwarder
 * @listen: address (and port: 53, or another for tests) to serve on
 * @net, @prefix: the subnet of allowed clients
 * @up, @n_up: upstream servers
 * Return: 0 with *@out set, or a negative errno
 */
int dns_fwd_open(const struct sockaddr_in *listen, struct in_addr net, uint8_t prefix,
		 const struct sockaddr_in *up, size_t n_up, struct dns_fwd **out);
/**
 * dns_fwd_adopt() - start a forwarder on an already bound client socket
 * @cfd:  UDP socket bound to the gateway's port 53 (opened by the
 *        privileged side, net/priv.h); owned by the forwarder from here on,
 *        closed on error too
 * @self: the address it is bound to
 * Other parameters and return as dns_fwd_open().
 */
int dns_fwd_adopt(int cfd, struct in_addr self, struct in_addr net, uint8_t prefix,
		  const struct sockaddr_in *up, size_t n_up, struct dns_fwd **out);
/** dns_fwd_client_fd() / dns_fwd_upstream_fd() - the two sockets to poll */
int dns_fwd_client_fd(const struct dns_fwd *f);
int dns_fwd_upstream_fd(const struct dns_fwd *f);
/** dns_fwd_on_client() - relay pending client queries (call when the client fd is readable) */
void dns_fwd_on_client(struct dns_fwd *f);
/** dns_fwd_on_upstream() - relay pending upstream replies */
void dns_fwd_on_upstream(struct dns_fwd *f);
/** dns_fwd_inflight() - queries waiting for an answer (tests) */
size_t dns_fwd_inflight(const struct dns_fwd *f);
void dns_fwd_close(struct dns_fwd *f);

#endif
