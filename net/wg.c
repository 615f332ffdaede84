// SPDX-License-Identifier: MIT
/*
 * One VM's WireGuard tunnel: the coarse operations of wg.h, on top of
 * wg_genl.c (kernel), wg_uapi.c (wireguard-go) and wg_rt.c (routing).
 *
 * Order matters for failing closed.  Up: the unreachable route goes into
 * the VM's table before anything points at the table, because a rule whose
 * table has no matching route falls through to the next rule (main, the
 * uplink).  Down: rules first, routes last, for the same reason.
 */
#include "net/wg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/net.h"
#include "net/nl.h"
#include "net/wg_rt.h"
#include "src/log.h"
#include "src/util.h"

const char *wg_impl_name(enum wg_impl i)
{
	switch (i) {
	case WG_IMPL_KERNEL:
		return "kernel";
	case WG_IMPL_GO:
		return "wireguard-go";
	case WG_IMPL_NONE:
		break;
	}
	return "none";
}

int wg_ifname(const char *id, char *buf, size_t n)
{
	size_t len = id ? strlen(id) : 0;

	if (len == 0 || len > IFNAMSIZ - 1 - strlen(WG_IF_PREFIX))
		return -EINVAL;
	for (size_t i = 0; i < len; i++)
		if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= '0' && id[i] <= '9')))
			return -EINVAL;
	return util_snprintf(buf, n < IFNAMSIZ ? n : IFNAMSIZ, WG_IF_PREFIX "%s", id);
}

int wg_sockaddr_str(const struct sockaddr_storage *ss, char *buf, size_t n)
{
	char a[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		return util_snprintf(buf, n, "%s:%u", a, ntohs(s4->sin_port));
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		return util_snprintf(buf, n, "[%s]:%u", a, ntohs(s6->sin6_port));
	}
	return util_snprintf(buf, n, "(none)");
}

int wg_sockaddr_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon, *h = s;
	size_t hl;
	unsigned long port;
	char *end;

	memset(ss, 0, sizeof(*ss));
	colon = s ? strrchr(s, ':') : NULL;
	if (!colon || colon == s)
		return -EINVAL;
	hl = (size_t)(colon - s);
	if (s[0] == '[') {
		if (hl < 3 || s[hl - 1] != ']')
			return -EINVAL;
		h = s + 1;
		hl -= 2;
	}
	if (hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, h, hl);
	host[hl] = 0;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || port == 0 || port > 65535)
		return -EINVAL;
	if (s[0] != '[') {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return -EINVAL;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		*len = sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
			return -EINVAL;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*s6);
	}
	return 0;
}

int wg_endpoint_resolve(const struct wg_conf *c, struct sockaddr_storage *ss, socklen_t *len)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM };
	struct addrinfo *res = NULL, *pick = NULL;
	int rc;

	rc = getaddrinfo(c->peer.host, NULL, &hints, &res);
	if (rc) {
		log_err("wireguard.conf: Endpoint %s: %s", c->peer.host, gai_strerror(rc));
		return -EHOSTUNREACH;
	}
	for (struct addrinfo *a = res; a; a = a->ai_next) {
		if (a->ai_family == AF_INET) {
			pick = a;
			break;
		}
		if (a->ai_family == AF_INET6 && !pick)
			pick = a;
	}
	if (!pick || pick->ai_addrlen > sizeof(*ss)) {
		freeaddrinfo(res);
		log_err("wireguard.conf: Endpoint %s has no IPv4 or IPv6 address", c->peer.host);
		return -EHOSTUNREACH;
	}
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, pick->ai_addr, pick->ai_addrlen);
	*len = pick->ai_addrlen;
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(c->peer.port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons(c->peer.port);
	freeaddrinfo(res);
	return 0;
}

/*
 * The device itself: the kernel's if it can (configured here, keys and
 * all), else a tun and a UAPI socket for wireguard-go, returned in @tun:
 * the caller (the supervisor, as the user) runs the daemon on them
 * (wg_go_run()).
 */
static int wg_link_make(const struct wg_spec *s, struct wg_link *l, int tun[2])
{
	uint16_t fam;
	int rc;

	tun[0] = tun[1] = -1;
	rc = wg_genl_family(&fam);
	if (rc == 0) {
		rc = wg_rt_link_add_kernel(s->ifname);
		if (rc == 0) {
			l->impl = WG_IMPL_KERNEL;
			return wg_genl_set(s);
		}
	}
	if (rc != -ENOENT && rc != -EOPNOTSUPP)
		return rc;
	log_info("wireguard: the kernel has no WireGuard module; using wireguard-go for %s", s->ifname);
	if ((rc = wg_go_tun(s->ifname, tun)))
		return rc;
	l->impl = WG_IMPL_GO;
	return 0;
}

/* addresses (each a /32, see wg_rt_addr_add()), sysctls, MTU, up */
static int wg_link_ready(const struct wg_spec *s, struct wg_link *l)
{
	const struct wg_conf *c = s->conf;
	char rel[96];
	int rc;

	/* no IPv6 on it: the guest has none and nothing must leave that way */
	if ((rc = nl_if_sysctls(s->ifname, false, false)))
		return rc;
	/*
	 * Replies come back on the wg link from addresses the main table
	 * routes via the uplink: strict rp_filter (1, from "all") would drop
	 * them.  Loose (2) still refuses sources with no route at all; the
	 * value in force is the larger of "all" and the link's.
	 */
	if ((rc = util_snprintf(rel, sizeof(rel), "net/ipv4/conf/%s/rp_filter", s->ifname)) ||
	    (rc = nl_sysctl_write(rel, "2", NULL, 0)))
		return rc;
	for (size_t i = 0; i < c->n_addr; i++)
		if ((rc = wg_rt_addr_add(s->ifname, &c->addr[i])))
			return rc;
	if ((rc = wg_rt_link_setup(s->ifname, c->mtu)))
		return rc;
	return nl_link_get(s->ifname, &l->ifindex, NULL);
}

static bool wg_spec_ok(const struct wg_spec *s)
{
	return net_ifname_valid(s->ifname) && !strncmp(s->ifname, WG_IF_PREFIX, strlen(WG_IF_PREFIX)) &&
	       s->table >= WG_TABLE_MIN && s->table <= WG_TABLE_MAX;
}

int wg_fix(const struct wg_spec *s, enum wg_fix how, struct wg_link *out, int tun[2])
{
	struct wg_rule r = { .prio = WG_RULE_PRIO, .table = s->table, .fwmark = s->table };
	struct wg_link l = { .pidfd = -1, .impl = out->impl };
	int rc, ifindex;

	tun[0] = tun[1] = -1;
	if (!wg_spec_ok(s) || (how != WG_FIX_RULES && !s->conf))
		return -EINVAL;
	/* fail closed first: the table refuses before anything leads to it */
	if ((rc = wg_rt_route_unreachable(s->table, true)))
		return rc;
	if (how == WG_FIX_RELINK) {
		rc = nl_link_del(s->ifname);
		if (rc && rc != -ENODEV)
			return rc;
		if ((rc = wg_link_make(s, &l, tun)))
			goto err;
	}
	if (how == WG_FIX_RULES) {
		/* the route back only while the link is up: a lost one waits for its restore */
		if (wg_rt_link_state(s->ifname) == WG_LINK_UP && nl_link_get(s->ifname, &ifindex, NULL) == 0 &&
		    wg_rt_has_default(s->table, ifindex) == 0)
			rc = wg_rt_route_dev(s->table, ifindex, true);
	} else if (!(rc = wg_link_ready(s, &l))) {
		rc = wg_rt_route_dev(s->table, l.ifindex, true);
	}
	if (!rc)
		rc = wg_rt_rule(&r, true);
	if (rc)
		goto err;
	if (how != WG_FIX_RULES) {
		out->impl = l.impl;
		out->ifindex = l.ifindex;
	}
	return 0;
err:
	if (how == WG_FIX_RELINK) {
		for (int i = 0; i < 2; i++)
			if (tun[i] >= 0)
				close(tun[i]);
		tun[0] = tun[1] = -1;
		nl_link_del(s->ifname);
	}
	return rc;
}

int wg_up(const struct wg_spec *s, struct wg_link *out, int tun[2])
{
	struct wg_link l = { .pidfd = -1 };
	int rc = wg_fix(s, WG_FIX_RELINK, &l, tun);

	if (rc) {
		log_errno(rc, "wireguard: bringing up %s", s->ifname);
		wg_down(s->ifname, s->table, (struct in_addr){ 0 });
		return rc;
	}
	*out = l;
	return 0;
}

int wg_vm_rules(const struct wg_spec *s, const char *bridge, struct in_addr vm,
		const struct cfg_vm *vm_cfg, bool add)
{
	struct wg_rule r = { .prio = WG_RULE_PRIO, .table = s->table, .src = vm, .src_len = 32 };
	int rc, first = 0;

	if (!net_ifname_valid(bridge) || !vm.s_addr)
		return -EINVAL;
	memcpy(r.iif, bridge, strlen(bridge) + 1);
	rc = wg_rt_rule(&r, add);
	if (rc && (add || rc != -ENOENT))
		first = rc;
	for (size_t i = 0; vm_cfg && i < vm_cfg->network.n_host_access; i++) {
		const struct cfg_host_access *h = &vm_cfg->network.host_access[i];
		struct wg_rule lan = r;

		if (h->kind != CFG_HA_LAN_HOST)
			continue;
		lan.prio = WG_RULE_PRIO - 1;
		lan.table = WG_TABLE_MAIN;
		lan.dst = h->addr;
		lan.dst_len = 32;
		rc = wg_rt_rule(&lan, add);
		if (rc && (add || rc != -ENOENT) && !first)
			first = rc;
	}
	return first;
}

int wg_down(const char *ifname, uint32_t table, struct in_addr vm)
{
	char uapi[128];
	struct stat sb;
	int rc = 0, r;

	if (net_ifname_valid(ifname)) {
		r = nl_link_del(ifname);
		if (r && r != -ENODEV)
			rc = r;
		if (wg_uapi_path(ifname, uapi, sizeof(uapi)) == 0 && lstat(uapi, &sb) == 0 &&
		    S_ISSOCK(sb.st_mode))
			unlink(uapi);
	}
	if (table >= WG_TABLE_MIN && table <= WG_TABLE_MAX) {
		r = wg_rt_flush_table(table, vm);
		if (r && !rc)
			rc = r;
	}
	return rc;
}

int wg_get(const struct wg_link *l, const char *ifname, struct wg_live *out)
{
	switch (l->impl) {
	case WG_IMPL_KERNEL:
		return wg_genl_get(ifname, out);
	case WG_IMPL_GO:
		return wg_go_get(l->uapi, out);
	case WG_IMPL_NONE:
		break;
	}
	return -ENOENT;
}
