// SPDX-License-Identifier: MIT
/*
 * rtnetlink for the WireGuard tunnel (see wg_rt.h): link, address, routes,
 * policy rules, link events.  Every change asks for an ACK; dumps are read
 * to NLMSG_DONE with the port id and sequence checked, as in net/nl.c.
 */
#include "net/wg_rt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/fib_rules.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>

#include "net/net.h"
#include "net/nl.h"
#include "src/log.h"
#include "src/util.h"

#define WG_RT_BUF 8192
#define WG_FLUSH_MAX 32		/* objects removed per pass; a flush loops until none is left */

/*
 * One request on a socket of its own, through nl.c's talk loop (its
 * checks, its timeout): a change with its ACK, or with @cb a query.
 */
int wg_nl_talk(int proto, struct nlmsghdr *nlh, const char *what, wg_nl_cb cb, void *data,
	       int quiet)
{
	struct nl_sock *s = nl_open(proto);
	int rc;

	if (!s)
		return -errno;
	rc = cb ? nl_query(s, nlh, what, cb, data, quiet) : nl_request(s, nlh, what, quiet);
	nl_close(s);
	return rc;
}

static struct nlmsghdr *msg_new(char *buf, uint16_t type, uint16_t flags)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	return nlh;
}

/* ---- link ------------------------------------------------------------- */

int wg_rt_link_add_kernel(const char *ifname)
{
	char buf[WG_RT_BUF] __attribute__((aligned(8))), what[64];
	struct nlmsghdr *nlh;
	struct nlattr *li;
	struct ifinfomsg *ifi;

	if (!net_ifname_valid(ifname))
		return -EINVAL;
	nlh = msg_new(buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, ifname);
	li = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "wireguard");
	mnl_attr_nest_end(nlh, li);
	util_snprintf(what, sizeof(what), "create wireguard link %s", ifname);
	/* no module: "Unknown device type"; the caller falls back quietly */
	return wg_nl_talk(NETLINK_ROUTE, nlh, what, NULL, NULL, -EOPNOTSUPP);
}

int wg_rt_link_setup(const char *ifname, unsigned mtu)
{
	char buf[WG_RT_BUF] __attribute__((aligned(8))), what[64];
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifi;
	int ifindex, rc;

	if ((rc = nl_link_get(ifname, &ifindex, NULL)))
		return rc;
	nlh = msg_new(buf, RTM_NEWLINK, 0);
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = ifindex;
	ifi->ifi_flags = IFF_UP;
	ifi->ifi_change = IFF_UP;
	mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
	util_snprintf(what, sizeof(what), "set %s up, mtu %u", ifname, mtu);
	return wg_nl_talk(NETLINK_ROUTE, nlh, what, NULL, NULL, 0);
}

int wg_rt_addr_add(const char *ifname, const struct wg_cidr *a)
{
	char buf[WG_RT_BUF] __attribute__((aligned(8))), what[96], s[64];
	struct nlmsghdr *nlh;
	struct ifaddrmsg *ifa;
	int ifindex, rc;

	if (a->family != AF_INET)
		return 0;
	if ((rc = nl_link_get(ifname, &ifindex, NULL)))
		return rc;
	nlh = msg_new(buf, RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE);
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = AF_INET;
	/*
	 * Always a /32: the address is only the tunnel's source.  Its prefix
	 * would put a route for the whole subnet into the host's main table
	 * through this VM's tunnel: a wireguard.conf (a member of group hutch
	 * writes it) could pull host traffic into its tunnel that way.
	 */
	ifa->ifa_prefixlen = 32;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	ifa->ifa_index = (unsigned int)ifindex;
	mnl_attr_put(nlh, IFA_LOCAL, 4, a->addr);
	mnl_attr_put(nlh, IFA_ADDRESS, 4, a->addr);
	if (wg_cidr_str(a, s, sizeof(s)))
		s[0] = 0;
	util_snprintf(what, sizeof(what), "address %s on %s", s, ifname);
	return wg_nl_talk(NETLINK_ROUTE, nlh, what, NULL, NULL, 0);
}

/* ---- routes ----------------------------------------------------------- */

static int route_msg(uint32_t table, uint8_t type, int ifindex, uint32_t metric, bool add)
{
	char buf[WG_RT_BUF] __attribute__((aligned(8))), what[96];
	struct nlmsghdr *nlh;
	struct rtmsg *rtm;

	nlh = msg_new(buf, add ? RTM_NEWROUTE : RTM_DELROUTE, add ? NLM_F_CREATE | NLM_F_REPLACE : 0);
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = AF_INET;
	rtm->rtm_table = RT_TABLE_UNSPEC;	/* > 255: RTA_TABLE */
	rtm->rtm_protocol = RTPROT_STATIC;
	rtm->rtm_type = type;
	rtm->rtm_scope = !add ? RT_SCOPE_NOWHERE : type == RTN_UNICAST ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;
	mnl_attr_put_u32(nlh, RTA_TABLE, table);
	mnl_attr_put_u32(nlh, RTA_PRIORITY, metric);
	if (ifindex > 0)
		mnl_attr_put_u32(nlh, RTA_OIF, (uint32_t)ifindex);
	util_snprintf(what, sizeof(what), "%s %s default in table %u", add ? "add" : "delete",
		      type == RTN_UNICAST ? "device" : "unreachable", table);
	return wg_nl_talk(NETLINK_ROUTE, nlh, what, NULL, NULL, add ? 0 : -ESRCH);
}

int wg_rt_route_dev(uint32_t table, int ifindex, bool add)
{
	return route_msg(table, RTN_UNICAST, ifindex, 0, add);
}

int wg_rt_route_unreachable(uint32_t table, bool add)
{
	return route_msg(table, RTN_UNREACHABLE, 0, WG_UNREACH_METRIC, add);
}

/* ---- rules ------------------------------------------------------------ */

int wg_rt_rule(const struct wg_rule *r, bool add)
{
	char buf[WG_RT_BUF] __attribute__((aligned(8))), what[160], s[INET_ADDRSTRLEN], d[INET_ADDRSTRLEN];
	struct fib_rule_hdr *frh;
	struct nlmsghdr *nlh;
	int rc;

	nlh = msg_new(buf, add ? RTM_NEWRULE : RTM_DELRULE, add ? NLM_F_CREATE | NLM_F_EXCL : 0);
	frh = mnl_nlmsg_put_extra_header(nlh, sizeof(*frh));
	frh->family = AF_INET;
	frh->action = FR_ACT_TO_TBL;
	frh->table = RT_TABLE_UNSPEC;
	frh->src_len = r->src_len;
	frh->dst_len = r->dst_len;
	mnl_attr_put_u32(nlh, FRA_PRIORITY, r->prio);
	mnl_attr_put_u32(nlh, FRA_TABLE, r->table);
	if (r->fwmark) {
		mnl_attr_put_u32(nlh, FRA_FWMARK, r->fwmark);
		mnl_attr_put_u32(nlh, FRA_FWMASK, 0xffffffffu);
	}
	if (r->iif[0])
		mnl_attr_put_strz(nlh, FRA_IIFNAME, r->iif);
	if (r->src_len)
		mnl_attr_put(nlh, FRA_SRC, 4, &r->src);
	if (r->dst_len)
		mnl_attr_put(nlh, FRA_DST, 4, &r->dst);
	inet_ntop(AF_INET, &r->src, s, sizeof(s));
	inet_ntop(AF_INET, &r->dst, d, sizeof(d));
	util_snprintf(what, sizeof(what), "%s rule %u: fwmark 0x%x iif %s from %s/%u to %s/%u lookup %u",
		      add ? "add" : "delete", r->prio, r->fwmark, r->iif[0] ? r->iif : "any", s,
		      r->src_len, d, r->dst_len, r->table);
	rc = wg_nl_talk(NETLINK_ROUTE, nlh, what, NULL, NULL, add ? -EEXIST : -ENOENT);
	return rc == -EEXIST && add ? 0 : rc;
}

/*
 * A dump of rules or routes, keeping copies of the messages that @match
 * accepts, so they can be sent back as deletions once the dump is over (a
 * change in the middle of a dump would make the kernel restart it).
 */
struct wg_collect {
	uint32_t table;
	struct in_addr src;	/* allow-lan-host rules of the VM with this source */
	bool routes;
	int ifindex;		/* wg_rt_has_default: a route through it */
	size_t n, found;
	uint8_t msg[WG_FLUSH_MAX][512];
	uint32_t len[WG_FLUSH_MAX];
};

struct wg_attrs {
	uint32_t table, prio, fwmark, oif;
	const void *src;
};

static int wg_attr_cb(const struct nlattr *a, void *data)
{
	struct wg_attrs *w = data;
	uint16_t t = mnl_attr_get_type(a);

	/* FRA_TABLE == RTA_TABLE, FRA_PRIORITY == RTA_PRIORITY, FRA_SRC == RTA_SRC (2) */
	if (mnl_attr_validate(a, MNL_TYPE_U32) == 0) {
		if (t == FRA_TABLE)
			w->table = mnl_attr_get_u32(a);
		else if (t == FRA_PRIORITY)
			w->prio = mnl_attr_get_u32(a);
		else if (t == FRA_FWMARK)
			w->fwmark = mnl_attr_get_u32(a);
		else if (t == RTA_OIF)
			w->oif = mnl_attr_get_u32(a);
	}
	if (t == FRA_SRC && mnl_attr_get_payload_len(a) == 4)
		w->src = mnl_attr_get_payload(a);
	return MNL_CB_OK;
}

static int collect_cb(const struct nlmsghdr *nlh, void *data)
{
	struct wg_collect *c = data;
	struct wg_attrs w = { 0 };
	size_t hdr = c->routes ? sizeof(struct rtmsg) : sizeof(struct fib_rule_hdr);
	bool hit;

	if (nlh->nlmsg_type != (c->routes ? RTM_NEWROUTE : RTM_NEWRULE) ||
	    mnl_nlmsg_get_payload_len(nlh) < hdr)
		return 0;
	if (c->routes) {
		const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);

		w.table = rtm->rtm_table;
	} else {
		const struct fib_rule_hdr *frh = mnl_nlmsg_get_payload(nlh);

		w.table = frh->table;
	}
	if (mnl_attr_parse(nlh, (unsigned int)hdr, wg_attr_cb, &w) < 0)
		return 0;
	if (c->routes)
		hit = w.table == c->table && (c->ifindex <= 0 || (int)w.oif == c->ifindex);
	else
		hit = w.table == c->table || w.fwmark == c->table ||
		      (c->src.s_addr && w.prio == WG_RULE_PRIO - 1 && w.src &&
		       !memcmp(w.src, &c->src, 4));
	if (!hit)
		return 0;
	c->found++;
	if (c->n < WG_FLUSH_MAX && nlh->nlmsg_len <= sizeof(c->msg[0])) {
		memcpy(c->msg[c->n], nlh, nlh->nlmsg_len);
		c->len[c->n++] = nlh->nlmsg_len;
	}
	return 0;
}

static int collect(struct wg_collect *c)
{
	char buf[WG_RT_BUF] __attribute__((aligned(8)));
	struct nlmsghdr *nlh = msg_new(buf, c->routes ? RTM_GETROUTE : RTM_GETRULE, NLM_F_DUMP);
	struct rtgenmsg *g = mnl_nlmsg_put_extra_header(nlh, sizeof(struct rtmsg));

	g->rtgen_family = AF_INET;
	c->n = c->found = 0;
	return wg_nl_talk(NETLINK_ROUTE, nlh, c->routes ? "list routes" : "list rules", collect_cb, c, 0);
}

static int flush_pass(struct wg_collect *c)
{
	int rc = collect(c);

	if (rc)
		return rc;
	for (size_t i = 0; i < c->n; i++) {
		struct nlmsghdr *m = (struct nlmsghdr *)(void *)c->msg[i];

		m->nlmsg_type = c->routes ? RTM_DELROUTE : RTM_DELRULE;
		m->nlmsg_flags = NLM_F_REQUEST;
		m->nlmsg_pid = 0;
		rc = wg_nl_talk(NETLINK_ROUTE, m, c->routes ? "delete route" : "delete rule", NULL, NULL,
				c->routes ? -ESRCH : -ENOENT);
		if (rc && rc != -ESRCH && rc != -ENOENT)
			return rc;
	}
	return 0;
}

/* flush rules or routes: passes until a dump finds nothing (bounded) */
static int flush_all(struct wg_collect *c)
{
	for (int pass = 0; pass < 16; pass++) {
		int rc = flush_pass(c);

		if (rc)
			return rc;
		if (!c->found)
			return 0;
	}
	return -EAGAIN;
}

int wg_rt_flush_table(uint32_t table, struct in_addr vm_addr)
{
	struct wg_collect *c = calloc(1, sizeof(*c));
	int rc;

	if (!c)
		return -ENOMEM;
	c->table = table;
	c->src = vm_addr;
	rc = flush_all(c);
	if (!rc) {
		c->routes = true;
		rc = flush_all(c);
	}
	free(c);
	return rc;
}

int wg_rt_table_in_use(uint32_t table)
{
	struct wg_collect *c = calloc(1, sizeof(*c));
	int rc;

	if (!c)
		return -ENOMEM;
	c->table = table;
	rc = collect(c);
	if (!rc && !c->found) {
		c->routes = true;
		rc = collect(c);
	}
	if (!rc)
		rc = c->found ? 1 : 0;
	free(c);
	return rc;
}

int wg_rt_has_default(uint32_t table, int ifindex)
{
	struct wg_collect *c = calloc(1, sizeof(*c));
	int rc;

	if (!c)
		return -ENOMEM;
	c->table = table;
	c->routes = true;
	c->ifindex = ifindex;
	rc = collect(c);
	if (!rc)
		rc = c->found ? 1 : 0;
	free(c);
	return rc;
}

/* ---- link events ------------------------------------------------------ */

static int link_state_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct ifinfomsg *ifi;

	if (nlh->nlmsg_type != RTM_NEWLINK || mnl_nlmsg_get_payload_len(nlh) < sizeof(*ifi))
		return -EBADMSG;
	ifi = mnl_nlmsg_get_payload(nlh);
	*(int *)data = (ifi->ifi_flags & IFF_UP) ? WG_LINK_UP : WG_LINK_DOWN;
	return 0;
}

int wg_rt_link_state(const char *ifname)
{
	char buf[WG_RT_BUF] __attribute__((aligned(8))), what[64];
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifi;
	int st = WG_LINK_GONE, rc;

	if (!net_ifname_valid(ifname))
		return -EINVAL;
	nlh = msg_new(buf, RTM_GETLINK, 0);
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, ifname);
	util_snprintf(what, sizeof(what), "get link %s", ifname);
	rc = wg_nl_talk(NETLINK_ROUTE, nlh, what, link_state_cb, &st, -ENODEV);
	if (rc == -ENODEV)
		return WG_LINK_GONE;
	return rc ? rc : st;
}

int wg_rt_watch_open(void)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK,
				  .nl_groups = RTMGRP_LINK | RTMGRP_IPV4_ROUTE | RTMGRP_IPV4_RULE };
	int fd, rc;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

struct wg_ev_attrs {
	const char *name;
	uint32_t table;
};

static int ev_attr_cb(const struct nlattr *a, void *data)
{
	struct wg_ev_attrs *w = data;

	/* IFLA_IFNAME (3) in link messages; RTA_TABLE == FRA_TABLE (15) in the others */
	if (mnl_attr_get_type(a) == IFLA_IFNAME && mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0)
		w->name = mnl_attr_get_str(a);
	if (mnl_attr_get_type(a) == RTA_TABLE && mnl_attr_validate(a, MNL_TYPE_U32) == 0)
		w->table = mnl_attr_get_u32(a);
	return MNL_CB_OK;
}

unsigned wg_rt_event(const void *buf, size_t len, const char *ifname, uint32_t table)
{
	const struct nlmsghdr *nlh = buf;
	struct wg_ev_attrs w = { 0 };
	size_t hdr;

	if (len < sizeof(*nlh) || !mnl_nlmsg_ok(nlh, (int)len))
		return 0;
	switch (nlh->nlmsg_type) {
	case RTM_NEWLINK:
	case RTM_DELLINK:
		hdr = sizeof(struct ifinfomsg);
		break;
	case RTM_DELROUTE:
		hdr = sizeof(struct rtmsg);
		break;
	case RTM_DELRULE:
		hdr = sizeof(struct fib_rule_hdr);
		break;
	default:
		return 0;
	}
	if (mnl_nlmsg_get_payload_len(nlh) < hdr ||
	    mnl_attr_parse(nlh, (unsigned int)hdr, ev_attr_cb, &w) < 0)
		return 0;
	if (nlh->nlmsg_type == RTM_NEWLINK || nlh->nlmsg_type == RTM_DELLINK)
		return w.name && !strcmp(w.name, ifname) ? WG_EV_LINK : 0;
	return table && w.table == table ? WG_EV_TABLE : 0;
}

int wg_rt_watch_read(int fd, const char *ifname, uint32_t table, unsigned *ev)
{
	char buf[MNL_SOCKET_BUFFER_SIZE] __attribute__((aligned(8)));

	*ev = 0;
	for (;;) {
		ssize_t len = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf;
		int n;

		if (len < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -errno;
		}
		for (n = (int)len; mnl_nlmsg_ok(nlh, n); nlh = mnl_nlmsg_next(nlh, &n))
			*ev |= wg_rt_event(nlh, (size_t)n, ifname, table);
	}
}
