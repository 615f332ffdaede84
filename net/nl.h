/* SPDX-License-Identifier: MIT */
#ifndef HUTCH_NL_H
#define HUTCH_NL_H
/**
 * DOC: nl - all of hutch's rtnetlink, through libmnl
 *
 * Each call opens its own NETLINK_ROUTE socket (one socket per purpose: a
 * stray reply can never be taken for another request's), turns extended
 * acks on, sends one request with an increasing sequence number and
 * NLM_F_ACK on every change, and accepts only replies carrying our port id
 * and that sequence number.  A kernel error is returned as a negative errno
 * and its extended-ack message is logged with the object it concerns.
 * Per-interface sysctls are written through /proc/sys directly.
 */
#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nlmsghdr;
/**
 * nl_ack_msg() - the kernel's extended-ack text in an NLMSG_ERROR, or NULL
 * @nlh: the error message (bounds taken from its own length)
 *
 * Shared by the link code and the nftables batches: both ask for extended
 * acks, so a failure can name the kernel's reason.
 */
const char *nl_ack_msg(const struct nlmsghdr *nlh);

/** nl_link_get() - ifindex (and MAC, when @mac) of @name; -ENODEV if absent */
int nl_link_get(const char *name, int *ifindex, uint8_t mac[6]);
/** nl_bridge_add() - create bridge @name (STP off); -EEXIST if it exists */
int nl_bridge_add(const char *name);
/** nl_addr_set() - put @addr/@prefix (with broadcast) on @name; present already is fine */
int nl_addr_set(const char *name, struct in_addr addr, uint8_t prefix);
/** nl_link_up() - set IFF_UP on @name */
int nl_link_up(const char *name);
/** nl_link_set_master() - enslave @port to @bridge */
int nl_link_set_master(const char *port, const char *bridge);
/** nl_brport_isolate() - IFLA_BRPORT_ISOLATED on bridge port @port: isolated ports cannot talk to each other */
int nl_brport_isolate(const char *port, bool on);
/** nl_brport_isolated() - read the port's isolated flag back (tests, inspect) */
int nl_brport_isolated(const char *port, bool *on);
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
/** nl_forwarding_on() - ip_forward=1; never turned back off (other users may rely on it) */
int nl_forwarding_on(void);

#endif
