// SPDX-License-Identifier: MIT
/*
 * The kernel's WireGuard, through generic netlink and libmnl
 * (include/uapi/linux/wireguard.h describes every attribute used here).
 *
 * SET_DEVICE replaces the device's whole configuration in one message
 * (WGDEVICE_F_REPLACE_PEERS, WGPEER_F_REPLACE_ALLOWEDIPS): a restart or a
 * repair never leaves an old peer or allowed IP behind.  One peer with at
 * most WG_ALLOWED_MAX allowed IPs always fits one message, so the
 * multi-message splitting that wg(8) does is not needed.
 *
 * GET_DEVICE is a dump; replies are read with bounded libmnl accessors and
 * only the first peer is kept (hutch configures exactly one).
 */
#include "net/nl.h"
#include "net/wg.h"

#include <errno.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/wireguard.h>
#include <string.h>
#include <time.h>

#include <libmnl/libmnl.h>

#include "net/net.h"
#include "net/wg_rt.h"
#include "src/log.h"
#include "src/util.h"

#define WG_GENL_BUF 8192

/* ---- family ----------------------------------------------------------- */

int wg_genl_family(uint16_t *id)
{
	struct nl_sock *s = nl_open(NETLINK_GENERIC);
	int rc;

	if (!s)
		return -errno;
	/* ENOENT: no module (the kernel tried to load it) */
	rc = nl_genl_family(s, WG_GENL_NAME, id);
	nl_close(s);
	return rc;
}

/* ---- SET_DEVICE ------------------------------------------------------- */

static void put_allowed(struct nlmsghdr *nlh, size_t n, const struct wg_cidr *c, uint16_t idx)
{
	struct nlattr *one = mnl_attr_nest_start_check(nlh, n, idx);

	if (!one)
		return;
	mnl_attr_put_u16_check(nlh, n, WGALLOWEDIP_A_FAMILY, (uint16_t)c->family);
	mnl_attr_put_check(nlh, n, WGALLOWEDIP_A_IPADDR, c->family == AF_INET ? 4 : 16, c->addr);
	mnl_attr_put_u8_check(nlh, n, WGALLOWEDIP_A_CIDR_MASK, c->prefix);
	mnl_attr_nest_end(nlh, one);
}

size_t wg_genl_build_set(void *buf, size_t n, uint16_t family, const struct wg_spec *s)
{
	const struct wg_conf *c = s->conf;
	struct nlmsghdr *nlh;
	struct genlmsghdr *g;
	struct nlattr *peers, *peer, *ips;
	bool ok = true;

	if (n < MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(*g)) + 64)
		return 0;
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = family;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->cmd = WG_CMD_SET_DEVICE;
	g->version = WG_GENL_VERSION;
	ok = ok && mnl_attr_put_strz_check(nlh, n, WGDEVICE_A_IFNAME, s->ifname);
	ok = ok && mnl_attr_put_check(nlh, n, WGDEVICE_A_PRIVATE_KEY, WG_KEY_LEN, c->private_key);
	ok = ok && mnl_attr_put_u16_check(nlh, n, WGDEVICE_A_LISTEN_PORT, c->listen_port);
	ok = ok && mnl_attr_put_u32_check(nlh, n, WGDEVICE_A_FLAGS, WGDEVICE_F_REPLACE_PEERS);
	peers = ok ? mnl_attr_nest_start_check(nlh, n, WGDEVICE_A_PEERS) : NULL;
	peer = peers ? mnl_attr_nest_start_check(nlh, n, 0) : NULL;
	if (!peer)
		return 0;
	ok = ok && mnl_attr_put_check(nlh, n, WGPEER_A_PUBLIC_KEY, WG_KEY_LEN, c->peer.public_key);
	ok = ok && mnl_attr_put_u32_check(nlh, n, WGPEER_A_FLAGS, WGPEER_F_REPLACE_ALLOWEDIPS);
	if (c->peer.has_psk)
		ok = ok && mnl_attr_put_check(nlh, n, WGPEER_A_PRESHARED_KEY, WG_KEY_LEN, c->peer.psk);
	ok = ok && mnl_attr_put_check(nlh, n, WGPEER_A_ENDPOINT, s->endpoint_len, &s->endpoint);
	ok = ok && mnl_attr_put_u16_check(nlh, n, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL,
					  c->peer.keepalive);
	ips = ok ? mnl_attr_nest_start_check(nlh, n, WGPEER_A_ALLOWEDIPS) : NULL;
	if (!ips)
		return 0;
	for (size_t i = 0; i < c->peer.n_allowed; i++)
		put_allowed(nlh, n, &c->peer.allowed[i], (uint16_t)i);
	/* every nest closed once, whatever fitted: a short message is refused below */
	mnl_attr_nest_end(nlh, ips);
	mnl_attr_nest_end(nlh, peer);
	mnl_attr_nest_end(nlh, peers);
	/* a put that did not fit leaves the message shorter than a full one: fail */
	if (!ok || nlh->nlmsg_len + 64 > n)
		return 0;
	return nlh->nlmsg_len;
}

int wg_genl_set(const struct wg_spec *s)
{
	char buf[WG_GENL_BUF] __attribute__((aligned(8))), what[64];
	uint16_t fam;
	int rc;

	if ((rc = wg_genl_family(&fam)))
		return rc;
	if (!wg_genl_build_set(buf, sizeof(buf), fam, s))
		return -EMSGSIZE;
	util_snprintf(what, sizeof(what), "configure wireguard device %s", s->ifname);
	rc = wg_nl_talk(NETLINK_GENERIC, (struct nlmsghdr *)buf, what, NULL, NULL, 0);
	explicit_bzero(buf, sizeof(buf));
	return rc;
}

/* ---- GET_DEVICE ------------------------------------------------------- */

struct peer_attrs {
	struct wg_live *out;
	bool first;
};

static int peer_attr_cb(const struct nlattr *a, void *data)
{
	struct wg_live *l = data;
	uint16_t len = mnl_attr_get_payload_len(a);
	const void *p = mnl_attr_get_payload(a);

	switch (mnl_attr_get_type(a)) {
	case WGPEER_A_PUBLIC_KEY:
		if (len == WG_KEY_LEN) {
			memcpy(l->peer_key, p, WG_KEY_LEN);
			l->has_peer = true;
		}
		break;
	case WGPEER_A_ENDPOINT:
		if (len == sizeof(struct sockaddr_in) || len == sizeof(struct sockaddr_in6)) {
			memset(&l->endpoint, 0, sizeof(l->endpoint));
			memcpy(&l->endpoint, p, len);
		}
		break;
	case WGPEER_A_LAST_HANDSHAKE_TIME:
		if (len == 16) {	/* struct __kernel_timespec: s64 sec, s64 nsec */
			int64_t sec;

			memcpy(&sec, p, sizeof(sec));
			l->handshake = sec > 0 ? sec : 0;
		}
		break;
	case WGPEER_A_RX_BYTES:
		if (mnl_attr_validate(a, MNL_TYPE_U64) == 0)
			l->rx = mnl_attr_get_u64(a);
		break;
	case WGPEER_A_TX_BYTES:
		if (mnl_attr_validate(a, MNL_TYPE_U64) == 0)
			l->tx = mnl_attr_get_u64(a);
		break;
	case WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL:
		if (mnl_attr_validate(a, MNL_TYPE_U16) == 0)
			l->keepalive = mnl_attr_get_u16(a);
		break;
	default:
		break;
	}
	return MNL_CB_OK;
}

static int dev_attr_cb(const struct nlattr *a, void *data)
{
	struct peer_attrs *pa = data;
	const struct nlattr *peer;

	if (mnl_attr_get_type(a) != WGDEVICE_A_PEERS || mnl_attr_validate(a, MNL_TYPE_NESTED) < 0)
		return MNL_CB_OK;
	mnl_attr_for_each_nested(peer, a) {
		struct wg_live l = { 0 };

		if (!pa->first || mnl_attr_validate(peer, MNL_TYPE_NESTED) < 0)
			continue;
		if (mnl_attr_parse_nested(peer, peer_attr_cb, &l) < 0 || !l.has_peer)
			continue;
		*pa->out = l;
		pa->first = false;
	}
	return MNL_CB_OK;
}

int wg_genl_parse(const void *msg, size_t len, struct wg_live *out)
{
	const struct nlmsghdr *nlh = msg;
	struct peer_attrs pa = { .out = out, .first = !out->has_peer };

	if (len < sizeof(*nlh) || !mnl_nlmsg_ok(nlh, (int)len))
		return -EBADMSG;
	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(struct genlmsghdr))
		return -EBADMSG;
	if (mnl_attr_parse(nlh, sizeof(struct genlmsghdr), dev_attr_cb, &pa) < 0)
		return -EBADMSG;
	return 0;
}

static int get_cb(const struct nlmsghdr *nlh, void *data)
{
	/* a bad message is skipped, not fatal: the rest of the dump still counts */
	wg_genl_parse(nlh, nlh->nlmsg_len, data);
	return 0;
}

int wg_genl_get(const char *ifname, struct wg_live *out)
{
	char buf[WG_GENL_BUF] __attribute__((aligned(8))), what[64];
	struct nlmsghdr *nlh;
	struct genlmsghdr *g;
	struct wg_live l = { 0 };
	uint16_t fam;
	int rc;

	if (!net_ifname_valid(ifname))
		return -EINVAL;
	if ((rc = wg_genl_family(&fam)))
		return rc;
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = fam;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->cmd = WG_CMD_GET_DEVICE;
	g->version = WG_GENL_VERSION;
	mnl_attr_put_strz(nlh, WGDEVICE_A_IFNAME, ifname);
	util_snprintf(what, sizeof(what), "read wireguard device %s", ifname);
	rc = wg_nl_talk(NETLINK_GENERIC, nlh, what, get_cb, &l, -ENODEV);
	if (rc)
		return rc;
	*out = l;
	return 0;
}
