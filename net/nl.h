/* SPDX-License-Identifier: MIT */
#ifndef HUTCH_NL_H
#define HUTCH_NL_H
/**
 * DOC: nl - every netlink conversation of hutch, through libmnl
 *
 * All of hutch's netlink goes through this module: rtnetlink (links,
 * addresses, bridge ports, FDB, and the wg module's policy rules and
 * routes), nfnetlink (nftables batches and queries, net/nft.c) and generic
 * netlink (the "wireguard" family).  A module builds its messages (with
 * libmnl, libnftnl, ...) and hands them to one of four calls here:
 *
 * - nl_open(bus) / nl_close(): one socket per purpose.  A socket serves one
 *   operation of one module (e.g. "install VM x's rules": its queries and its
 *   batch) and is closed after it, so a late reply to an earlier operation
 *   can never be read as an answer to a later one.  Sockets are CLOEXEC,
 *   non-blocking, bound with a kernel-chosen port id, and ask for extended
 *   acks (NETLINK_EXT_ACK) without the request echoed back (NETLINK_CAP_ACK).
 * - nl_request(): one change, NLM_F_ACK set here; returns the kernel's errno.
 * - nl_query(): one GET, single object or dump (NLM_F_DUMP set by the
 *   caller); every reply message is passed to a callback.  A dump that the
 *   kernel marks as interrupted (NLM_F_DUMP_INTR: the object list changed
 *   while it was read) returns -EAGAIN.
 * - nl_batch_*(): several messages sent in one sendmsg() (an nftables
 *   transaction between its BEGIN and END messages, or any sequence of
 *   requests).  Each message gets its own sequence number and a
 *   description of the object it touches; every ACK is collected, and an
 *   error is logged with the description of the message it answers and the
 *   kernel's extended-ack text (the model is nftables' mnl_batch_talk()).
 *
 * Checks on every answer: the sender is the kernel (port id 0), the
 * destination port id is ours, and the sequence number is one this call
 * sent; anything else is skipped, never taken as our answer.  Sequence
 * numbers increase for the whole process.
 *
 * Timeout: one policy for every call.  The kernel answers rtnetlink,
 * nfnetlink and genetlink requests synchronously inside sendmsg(), so the
 * answers are normally queued when it returns; a call then waits at most
 * NL_TIMEOUT_MS in all for the rest and fails with -ETIMEDOUT, so a
 * supervisor's loop can never hang on netlink.
 *
 * Errors: a kernel error is returned as a negative errno and logged with the
 * object ("netlink: create bridge hutch0: File exists") unless it is the one
 * errno the caller said it expects (@quiet, e.g. -ENOENT for "delete if
 * present"); then it is logged at debug level only.
 *
 * Events (multicast groups: nftables changes, link changes) use plain fds:
 * nl_event_open() subscribes, nl_event_read() drains and passes each
 * message to a callback; a lost event (the socket overran) is -ENOBUFS.
 *
 * Example, a route (any rtnetlink change works the same way):
 *
 *	char buf[MNL_SOCKET_BUFFER_SIZE];
 *	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
 *	nlh->nlmsg_type = RTM_NEWROUTE;
 *	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL;
 *	... mnl_nlmsg_put_extra_header(), mnl_attr_put_*() ...
 *	s = nl_open(NETLINK_ROUTE);
 *	rc = s ? nl_request(s, nlh, "default route of table 1234", 0) : -errno;
 *	nl_close(s);
 *
 * and generic netlink: nl_genl_family(s, "wireguard", &id) resolves the
 * family id for the nlmsg_type of its requests.
 *
 * Per-interface sysctls are written through /proc/sys (nl_sysctl_write()).
 */
#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NL_TIMEOUT_MS  5000		/* the most any call waits for its answers */
#define NL_BATCH_MSGS  512		/* messages in one batch */
#define NL_BATCH_ROOM  16384		/* bytes a batch message may take at most */
#define NL_WHAT_MAX    112		/* description of one batch message */

struct nlmsghdr;
struct nl_sock;
struct nl_batch;

/** nl_msg_cb - called with each data message of a query or event; 0 to go on, or a negative errno */
typedef int (*nl_msg_cb)(const struct nlmsghdr *nlh, void *data);

/**
 * nl_open() - a request socket for one purpose
 * @bus: NETLINK_ROUTE, NETLINK_NETFILTER or NETLINK_GENERIC
 *
 * Return: the socket (the caller closes it with nl_close()), or NULL with errno set
 */
struct nl_sock *nl_open(int bus);
/** nl_close() - close @s (NULL is fine) */
void nl_close(struct nl_sock *s);

/**
 * nl_request() - send one change and wait for its ACK
 * @s:     from nl_open()
 * @nlh:   the request; its seq is set and NLM_F_ACK added here
 * @what:  the object, for messages ("create bridge hutch0")
 * @quiet: an errno the caller expects (negative, e.g. -EEXIST): not logged; or 0
 *
 * Return: 0, the kernel's negative errno, or -ETIMEDOUT
 */
int nl_request(struct nl_sock *s, struct nlmsghdr *nlh, const char *what, int quiet);

/**
 * nl_query() - send one GET (with NLM_F_DUMP for a dump) and pass each reply to @cb
 * @cb:   called with every data message answering this request; a negative
 *        return is kept as the result (the rest of the answer is still read)
 *
 * Return: 0, the first negative errno of @cb or the kernel, -EAGAIN for an
 * interrupted dump, or -ETIMEDOUT
 */
int nl_query(struct nl_sock *s, struct nlmsghdr *nlh, const char *what, nl_msg_cb cb, void *data,
	     int quiet);

/** nl_batch_new() - an empty batch; NULL when out of memory */
struct nl_batch *nl_batch_new(void);
/** nl_batch_free() - free @b (NULL is fine) */
void nl_batch_free(struct nl_batch *b);
/**
 * nl_batch_reserve() - room for the next message of @b
 * @seq:  set to the sequence number the message must carry
 * @fmt:  what the message does, for errors ("add chain inet hutch vm-x")
 *
 * The caller writes one message (at most NL_BATCH_ROOM bytes) at the
 * returned address, then calls nl_batch_push().
 *
 * Return: the address, or NULL when the batch is full or failed before
 * (the error sticks: nl_batch_talk() then returns it without sending)
 */
void *nl_batch_reserve(struct nl_batch *b, uint32_t *seq, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/** nl_batch_push() - take the message written at the last reservation (its nlmsg_len counts) */
int nl_batch_push(struct nl_batch *b);
/** nl_batch_fail() - make @b fail with @err (a builder ran out of memory, ...); keeps the first */
void nl_batch_fail(struct nl_batch *b, int err);
/** nl_batch_error() - the error that stuck to @b, or 0 */
int nl_batch_error(const struct nl_batch *b);
/** nl_batch_count() - messages pushed so far */
size_t nl_batch_count(const struct nl_batch *b);
/**
 * nl_batch_talk() - send @b in one sendmsg() and collect one answer per
 * message that asked for an ACK
 * @what:  the operation, for messages ("VM abc")
 * @quiet: an errno not logged (e.g. -ENOENT), or 0
 *
 * Every error answer is logged (unless @quiet) with the description of the
 * message it answers and the kernel's extended-ack text.
 *
 * Return: 0, the first negative errno answered, or -ETIMEDOUT
 */
int nl_batch_talk(struct nl_sock *s, struct nl_batch *b, const char *what, int quiet);

/**
 * nl_genl_family() - the id of generic netlink family @name ("wireguard")
 * @s: a NETLINK_GENERIC socket
 *
 * Return: 0 with *@id set, -ENOENT when the family is not registered (its
 * module not loaded), or a negative errno
 */
int nl_genl_family(struct nl_sock *s, const char *name, uint16_t *id);

/**
 * nl_event_open() - a socket subscribed to multicast group @group of @bus
 *
 * Return: a non-blocking CLOEXEC fd the caller polls and closes, or a negative errno
 */
int nl_event_open(int bus, unsigned int group);
/**
 * nl_event_read() - drain @fd, passing every kernel message to @cb
 *
 * Return: 0 when drained, -ENOBUFS when events were lost (the caller must
 * assume anything changed), the first negative return of @cb, or a negative errno
 */
int nl_event_read(int fd, nl_msg_cb cb, void *data);

/**
 * nl_ack_msg() - the kernel's extended-ack text in an NLMSG_ERROR, or NULL
 * @nlh: the error message (bounds taken from its own length)
 */
const char *nl_ack_msg(const struct nlmsghdr *nlh);

/** nl_link_get() - ifindex (and MAC, when @mac) of @name; -ENODEV if absent */
int nl_link_get(const char *name, int *ifindex, uint8_t mac[6]);
/**
 * nl_bridge_add() - create bridge @name: STP off, a random MAC of its own,
 * and no learning from link-local frames (no_linklocal_learn); -EEXIST if it exists
 */
int nl_bridge_add(const char *name);
/** nl_bridge_secure() - no_linklocal_learn on an existing bridge @name (one made by an older hutch) */
int nl_bridge_secure(const char *name);
/** nl_addr_set() - put @addr/@prefix (with broadcast) on @name; present already is fine */
int nl_addr_set(const char *name, struct in_addr addr, uint8_t prefix);
/** nl_link_up() - set IFF_UP on @name */
int nl_link_up(const char *name);
/** nl_link_down() - clear IFF_UP on @name: nothing passes it any more (fail closed) */
int nl_link_down(const char *name);
/** nl_link_set_master() - enslave @port to @bridge */
int nl_link_set_master(const char *port, const char *bridge);
/**
 * nl_brport_isolate() - lock bridge port @port down for one guest (@on) or undo it
 *
 * Sets IFLA_BRPORT_ISOLATED (isolated ports cannot talk to each other),
 * turns off MAC learning (a guest's forged source MAC never moves another
 * guest's FDB entry to this port) and unknown-unicast flooding (frames for a
 * MAC the bridge does not know never reach this guest).  The guest's own MAC
 * is then a static FDB entry: nl_fdb_add().
 */
int nl_brport_isolate(const char *port, bool on);
/** nl_brport_isolated() - read the port's isolated flag back (tests, inspect) */
int nl_brport_isolated(const char *port, bool *on);
/** nl_brport_learning() - read the port's learning flag back (tests, inspect) */
int nl_brport_learning(const char *port, bool *on);
/**
 * nl_fdb_add() - a static FDB entry: frames for @mac go to bridge port @port
 * only, whatever source MACs other ports send (present already is fine)
 */
int nl_fdb_add(const char *port, const uint8_t mac[6]);
/** nl_link_del() - delete @name; -ENODEV when absent */
int nl_link_del(const char *name);
/**
 * nl_link_list() - names of links starting with @prefix
 * @master: only ports of this bridge when not NULL (a missing bridge: none)
 * @names:  filled with up to @max names; *@n set to how many matched in all
 */
int nl_link_list(const char *prefix, const char *master, char (*names)[IFNAMSIZ], size_t max,
		 size_t *n);

/**
 * nl_sysctl_write() - write @val to /proc/sys/@rel (e.g. "net/ipv4/ip_forward")
 * @old: when not NULL, set to the previous value (trailing newline removed)
 */
int nl_sysctl_write(const char *rel, const char *val, char *old, size_t oldsz);
/**
 * nl_if_sysctls() - hutch's per-interface settings for the bridge or a tap
 * @ipv6: keep IPv6; otherwise disable_ipv6=1 so neither side gets an address
 *
 * Missing IPv6 support (no /proc/sys/net/ipv6) is fine.
 */
int nl_if_sysctls(const char *name, bool ipv6, bool is_bridge);
/**
 * nl_forwarding_on() - ip_forward=1; when hutch turned it on, the previous
 * value is recorded in NL_FORWARD_DIR/ip_forward.<netns cookie> for nl_forwarding_restore()
 */
int nl_forwarding_on(void);
/**
 * nl_forwarding_restore() - when no hutch tap (ht-*) is left in this network
 * namespace and hutch turned ip_forward on, put the previous value back
 *
 * Return: 1 when restored, 0 when nothing was to do, or a negative errno
 */
int nl_forwarding_restore(void);

#ifndef NL_FORWARD_DIR
#define NL_FORWARD_DIR "/run/hutch"	/* survives supervisors, not reboots (nor does ip_forward) */
#endif

#endif
