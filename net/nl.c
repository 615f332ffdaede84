// SPDX-License-Identifier: MIT
/*
 * rtnetlink through libmnl.  One socket per request (see nl.h), ext-ack on,
 * replies checked for port id and sequence, kernel messages logged.
 */
#include "net/nl.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_bridge.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <libmnl/libmnl.h>
#include <arpa/inet.h>
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

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif

static unsigned int nl_seq_next;

/* reply parser: called for every message that is not an error/ack/done */
typedef int (*nl_data_cb)(const struct nlmsghdr *nlh, void *data);

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

/**
 * nl_talk() - send one request, collect its replies until the ACK or DONE
 * @nlh:  the request; seq and NLM_F_ACK are set here
 * @what: the object, for error messages ("bridge hutch0")
 * @cb:   called for data replies (may be NULL)
 *
 * Return: 0, or the kernel's negative errno (its ext-ack message logged at
 * debug level when the caller expects the error, else as an error).
 */
static int nl_talk(struct nlmsghdr *nlh, const char *what, nl_data_cb cb, void *data,
		   int quiet_err)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct mnl_socket *nl;
	unsigned int portid, seq;
	int one = 1, rc = 0, done = 0;
	ssize_t n;

	nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!nl)
		return -errno;
	/* both are best effort: old kernels lack them, the errno still tells */
	mnl_socket_setsockopt(nl, NETLINK_EXT_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(nl, NETLINK_CAP_ACK, &one, sizeof(one));
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		rc = -errno;
		goto out;
	}
	portid = mnl_socket_get_portid(nl);
	if (!nl_seq_next)
		nl_seq_next = (unsigned int)time(NULL);
	seq = ++nl_seq_next;
	nlh->nlmsg_seq = seq;
	nlh->nlmsg_flags |= NLM_F_ACK;
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		rc = -errno;
		goto out;
	}
	while (!done) {
		const struct nlmsghdr *m;
		int left;

		n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			goto out;
		}
		left = (int)n;
		for (m = (const struct nlmsghdr *)buf; mnl_nlmsg_ok(m, left);
		     m = mnl_nlmsg_next(m, &left)) {
			if (!mnl_nlmsg_portid_ok(m, portid) || !mnl_nlmsg_seq_ok(m, seq))
				continue;	/* not ours: never taken as our answer */
			if (m->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = mnl_nlmsg_get_payload(m);
				const char *msg;

				if (mnl_nlmsg_get_payload_len(m) < sizeof(*e)) {
					rc = -EBADMSG;
				} else if (e->error) {
					rc = e->error < 0 ? e->error : -e->error;
					msg = nl_ack_msg(m);
					if (!quiet_err)
						log_msg(LOG_LVL_ERR, rc, "netlink: %s%s%s", what,
							msg ? ": " : "", msg ? msg : "");
					else if (msg)
						log_debug("netlink: %s: %s", what, msg);
				}
				done = 1;
				break;
			}
			if (m->nlmsg_type == NLMSG_DONE) {
				done = 1;
				break;
			}
			if (cb && rc == 0)
				rc = cb(m, data);
		}
	}
out:
	mnl_socket_close(nl);
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
	rc = nl_talk(nlh, what, nl_link_info_cb, li, 1);
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
	mnl_attr_nest_end(nlh, data);
	mnl_attr_nest_end(nlh, li);
	util_snprintf(what, sizeof(what), "create bridge %s", name);
	return nl_talk(nlh, what, NULL, NULL, 0);
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
	return nl_talk(nlh, what, NULL, NULL, 0);
}

/* RTM_NEWLINK on an existing link; @fill adds the attributes */
static int nl_link_change(const char *name, int family, unsigned int flags, unsigned int change,
			  int master, int isolated, const char *what)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct ifinfomsg *ifi;
	struct nlmsghdr *nlh;
	int ifindex, rc;

	rc = nl_link_get(name, &ifindex, NULL);
	if (rc)
		return rc;
	nlh = nl_link_msg(buf, family == AF_BRIDGE ? RTM_SETLINK : RTM_NEWLINK, 0, family, &ifi);
	ifi->ifi_index = ifindex;
	ifi->ifi_flags = flags;
	ifi->ifi_change = change;
	if (master > 0)
		mnl_attr_put_u32(nlh, IFLA_MASTER, (uint32_t)master);
	if (isolated >= 0) {
		struct nlattr *pi = mnl_attr_nest_start(nlh, IFLA_PROTINFO);

		mnl_attr_put_u8(nlh, IFLA_BRPORT_ISOLATED, (uint8_t)isolated);
		mnl_attr_nest_end(nlh, pi);
	}
	return nl_talk(nlh, what, NULL, NULL, 0);
}

int nl_link_up(const char *name)
{
	char what[64];

	util_snprintf(what, sizeof(what), "set %s up", name);
	return nl_link_change(name, AF_UNSPEC, IFF_UP, IFF_UP, 0, -1, what);
}

int nl_link_set_master(const char *port, const char *bridge)
{
	char what[96];
	int br, rc;

	rc = nl_link_get(bridge, &br, NULL);
	if (rc)
		return rc;
	util_snprintf(what, sizeof(what), "enslave %s to %s", port, bridge);
	return nl_link_change(port, AF_UNSPEC, 0, 0, br, -1, what);
}

int nl_brport_isolate(const char *port, bool on)
{
	char what[64];

	util_snprintf(what, sizeof(what), "isolate bridge port %s", port);
	return nl_link_change(port, AF_BRIDGE, 0, 0, 0, on ? 1 : 0, what);
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
int nl_brport_isolated(const char *port, bool *on)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nl_brport_q q = { 0 };
	struct ifinfomsg *ifi;
	struct nlmsghdr *nlh;
	int rc;

	if ((rc = nl_link_get(port, &q.ifindex, NULL)))
		return rc;
	nlh = nl_link_msg(buf, RTM_GETLINK, NLM_F_DUMP, AF_BRIDGE, &ifi);
	rc = nl_talk(nlh, "list bridge ports", nl_brport_cb, &q, 0);
	if (rc)
		return rc;
	if (!q.found)
		return -ENOTCONN;	/* not a bridge port */
	*on = q.li.isolated != 0;
	return 0;
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
	rc = nl_talk(nlh, what, NULL, NULL, 1);
	if (rc && rc != -ENODEV)
		log_errno(rc, "netlink: %s", what);
	return rc;
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
	rc = nl_talk(nlh, "list links", nl_list_cb, &l, 0);
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

int nl_forwarding_on(void)
{
	char old[16];
	int rc = nl_sysctl_write("net/ipv4/ip_forward", "1", old, sizeof(old));

	if (rc == 0 && strcmp(old, "1"))
		log_info("enabled net.ipv4.ip_forward (was %s) for NAT", old);
	return rc;
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
