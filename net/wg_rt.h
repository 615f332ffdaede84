/* SPDX-License-Identifier: MIT */
#ifndef HUTCH_WG_RT_H
#define HUTCH_WG_RT_H
/**
 * DOC: wg_rt - rtnetlink for a VM's WireGuard tunnel
 *
 * The wg link (kernel kind "wireguard"; a tun for wireguard-go), its
 * addresses, MTU and state, the VM's routing table and the policy rules that
 * lead to it, and the link events the supervisor watches.  Routing, per VM:
 *
 *   rule WG_RULE_PRIO:   fwmark M            lookup T   (set on the VM's tap, nft)
 *   rule WG_RULE_PRIO:   iif BR from A/32    lookup T   (holds when nft is flushed)
 *   rule WG_RULE_PRIO-1: iif BR from A to L  lookup main  (each allow-lan-host L)
 *   table T: default dev hw-<id>; unreachable default metric WG_UNREACH_METRIC
 *
 * When the wg link is deleted or set down, the kernel drops the routes
 * through it and the unreachable one answers: the guest's packets are
 * refused at the host, never routed out by the main table.  Rules and table
 * sit before `main` (32766) and after `local` (0), so the host's own
 * addresses (DHCP, DNS, allow-host-port) are still delivered locally.
 */
#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/wg_conf.h"

#define WG_RULE_PRIO      10770
#define WG_UNREACH_METRIC 4278190080u	/* far behind any real default route */
#define WG_TABLE_MIN      0x68770001u	/* "hw": hutch's tables and marks */
#define WG_TABLE_MAX      0x6877ffffu
#define WG_TABLE_MAIN     254		/* RT_TABLE_MAIN */

struct nlmsghdr;
/* reply parser: called for each data message of the answer */
typedef int (*wg_nl_cb)(const struct nlmsghdr *nlh, void *data);

/**
 * wg_nl_talk() - one request on a fresh socket of @proto, through nl.c
 * (nl_request(), or nl_query() with @cb)
 * @nlh:   the request; seq and flags are set by nl.c
 * @what:  the object, for messages
 * @cb:    data replies (may be NULL)
 * @quiet: an errno the caller expects (not logged), or 0
 *
 * Return: 0, or the kernel's negative errno (its ext-ack message logged)
 */
int wg_nl_talk(int proto, struct nlmsghdr *nlh, const char *what, wg_nl_cb cb, void *data,
	       int quiet);

/** wg_rt_link_add_kernel() - create @ifname of kind "wireguard"; -EOPNOTSUPP without the module */
int wg_rt_link_add_kernel(const char *ifname);
/** wg_rt_link_setup() - MTU @mtu and IFF_UP on @ifname */
int wg_rt_link_setup(const char *ifname, unsigned mtu);
/** wg_rt_addr_add() - put the IPv4 address of @a on @ifname as a /32 (its prefix is ignored); IPv6 is skipped */
int wg_rt_addr_add(const char *ifname, const struct wg_cidr *a);
/** wg_rt_route_dev() - add (or del) "default dev @ifindex" in @table */
int wg_rt_route_dev(uint32_t table, int ifindex, bool add);
/** wg_rt_route_unreachable() - add (or del) "unreachable default metric WG_UNREACH_METRIC" in @table */
int wg_rt_route_unreachable(uint32_t table, bool add);

/**
 * struct wg_rule - one policy rule (IPv4); zero fields are not matched
 * @iif: input interface name, or ""
 */
struct wg_rule {
	uint32_t prio;
	uint32_t table;
	uint32_t fwmark;
	char iif[IFNAMSIZ];
	struct in_addr src, dst;
	uint8_t src_len, dst_len;
};

/** wg_rt_rule() - add (or delete) @r; adding one that exists is fine */
int wg_rt_rule(const struct wg_rule *r, bool add);
/**
 * wg_rt_flush_table() - delete every IPv4 rule that leads to @table or
 * matches fwmark @table, the allow-lan-host rules (priority WG_RULE_PRIO-1)
 * from @vm_addr (0.0.0.0: none), and every route in @table
 * Return: 0 (nothing found is fine), or a negative errno
 */
int wg_rt_flush_table(uint32_t table, struct in_addr vm_addr);
/** wg_rt_table_in_use() - 1 when a rule or route refers to @table (or fwmark @table), 0, or a negative errno */
int wg_rt_table_in_use(uint32_t table);
/** wg_rt_has_default() - 1 when @table has a route through @ifindex, 0, or a negative errno */
int wg_rt_has_default(uint32_t table, int ifindex);

/** enum wg_link_ev - what a link event said about the wg link */
enum wg_link_ev { WG_LINK_NONE, WG_LINK_GONE, WG_LINK_DOWN, WG_LINK_UP };

/** wg_rt_link_state() - @ifname as it is now: WG_LINK_GONE, _DOWN or _UP; or a negative errno */
int wg_rt_link_state(const char *ifname);

#define WG_EV_LINK  1u	/* a change of the link itself */
#define WG_EV_TABLE 2u	/* a route of the table, or a rule leading to it, was deleted */

/** wg_rt_watch_open() - a non-blocking socket on link, IPv4 route and IPv4 rule events; the caller owns it */
int wg_rt_watch_open(void);
/**
 * wg_rt_watch_read() - drain @fd; *@ev gets WG_EV_* for what concerned
 * @ifname or @table (0: nothing)
 * Return: 0, -ENOBUFS when events were lost (check everything), or a negative errno
 */
int wg_rt_watch_read(int fd, const char *ifname, uint32_t table, unsigned *ev);
/** wg_rt_event() - WG_EV_* of one rtnetlink message (bounded parse; fuzzed) */
unsigned wg_rt_event(const void *buf, size_t len, const char *ifname, uint32_t table);

#endif
