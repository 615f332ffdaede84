// SPDX-License-Identifier: MIT
/*
 * The privileged side of a VM's WireGuard tunnel (issue 11): wg_up,
 * wg_fix, wg_down and wg_get, for hutch-helper and for root in-process.
 *
 * What a caller may do: make a tunnel for itself (the helper picks its id,
 * link name and table, records it with the caller as owner before anything
 * exists, and holds the caller's wireguard.conf only for the call), mend
 * and remove its own tunnels, and read their counters.  What it may not:
 * name another's link or table (only ids, checked against the registry),
 * point its VM's mark at another's table (privd_wg_net_check()), put an
 * address with a prefix on the link (every address is a /32, so no route
 * for a subnet lands in the host's main table: net/wg_rt.c), or use a
 * loopback, multicast, link-local or hutch-subnet address for it.
 *
 * wireguard-go is not run here: its tun comes back to the caller, which
 * runs the daemon as the user, so the process that parses the peer's
 * packets holds no capability.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "net/net.h"
#include "net/nl.h"
#include "net/privd.h"
#include "net/tap.h"
#include "net/wg.h"
#include "net/wg_rt.h"
#include "src/log.h"
#include "src/util.h"

#define PRIVD_WG_SWEEP_MAX 64	/* hw- links looked at per gc */

static void wg_spec_of(const struct privd_ent *e, const struct wg_conf *c,
		       const struct privd_req *q, struct wg_spec *s)
{
	memset(s, 0, sizeof(*s));
	wg_ifname(e->id, s->ifname, sizeof(s->ifname));
	s->table = e->table;
	s->conf = c;
	if (q && q->has_wgc) {
		s->endpoint = q->wg_ep;
		s->endpoint_len = q->wg_ep_len;
	}
}

/* the tunnel's own addresses: none that the host or hutch's subnets use for something else */
static int wg_addrs_ok(const struct privd *d, const struct wg_conf *c, char *err, size_t en)
{
	for (size_t i = 0; i < c->n_addr; i++) {
		struct in_addr a;
		uint32_t h;

		if (c->addr[i].family != AF_INET)
			continue;
		memcpy(&a, c->addr[i].addr, 4);
		h = ntohl(a.s_addr);
		if ((h >> 24) == 0 || (h >> 24) == 127 || (h >> 16) == 0xa9fe || (h >> 28) >= 0xe)
			return privd_err(err, en, -EINVAL, "wireguard.conf: Address %s is not one a tunnel may have",
					 inet_ntoa(a));
		for (size_t k = 0; k < d->conf.n_nets; k++) {
			const struct net_conf *nc = &d->conf.nets[k];

			if ((a.s_addr & net_mask(nc->prefix)) == nc->net.s_addr)
				return privd_err(err, en, -EINVAL, "wireguard.conf: Address %s is in hutch's "
						 "subnet of %s", inet_ntoa(a), nc->bridge);
		}
	}
	return 0;
}

static int wg_new_id(const struct privd_reg *r, struct privd_ent *e)
{
	for (int tries = 0; tries < 32; tries++) {
		char ifname[IFNAMSIZ];
		uint32_t rnd;
		int ifi, rc;

		if ((rc = tap_new_id(e->id, sizeof(e->id))) || (rc = wg_ifname(e->id, ifname, sizeof(ifname))))
			return rc;
		if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
			return -EIO;
		e->table = WG_TABLE_MIN + rnd % (WG_TABLE_MAX - WG_TABLE_MIN + 1);
		if (privd_reg_find_kind(r, PRIVD_ENT_WG, e->id) >= 0 || nl_link_get(ifname, &ifi, NULL) == 0)
			continue;
		rc = wg_rt_table_in_use(e->table);
		if (rc < 0)
			return rc;
		if (rc == 0)
			return 0;
	}
	return -EADDRINUSE;
}

static void wg_reply(json_t *out, const struct privd_ent *e, const struct wg_link *l)
{
	char ifname[IFNAMSIZ];

	wg_ifname(e->id, ifname, sizeof(ifname));
	json_object_set_new(out, "id", json_string(e->id));
	json_object_set_new(out, "ifname", json_string(ifname));
	json_object_set_new(out, "table", json_integer(e->table));
	json_object_set_new(out, "impl", json_string(wg_impl_name(l->impl)));
	json_object_set_new(out, "ifindex", json_integer(l->ifindex));
}

/* wireguard-go's tun and UAPI socket go back with the reply (the kernel's tunnel has none) */
static void wg_fds(const int tun[2], int fds[3], size_t *nfds)
{
	if (tun[0] < 0)
		return;
	fds[0] = tun[0];
	fds[1] = tun[1];
	*nfds = 2;
}

static int op_wg_up(struct privd *d, const struct privd_req *q, json_t *out, int fds[3], size_t *nfds,
		    char *err, size_t en)
{
	struct privd_ent e = { .kind = PRIVD_ENT_WG };
	struct wg_link l = { .pidfd = -1 };
	struct privd_reg r;
	struct wg_spec s;
	int rc, tun[2] = { -1, -1 };

	if ((rc = wg_addrs_ok(d, &q->wgc, err, en)))
		return rc;
	if ((rc = privd_reg_lock(d, &r)))
		return privd_err(err, en, rc, "the registry: %s", strerror(-rc));
	if ((rc = privd_ent_quota(d, &r, PRIVD_ENT_WG, err, en)))
		goto out;
	privd_ent_owner(d, &e);
	memcpy(e.name, q->name, sizeof(e.name));
	privd_caps(d, PRIVD_CAP_NET);
	rc = wg_new_id(&r, &e);
	privd_caps(d, 0);
	if (rc || (rc = privd_reg_add(&r, &e)) || (rc = privd_reg_save(d, &r))) {
		privd_err(err, en, rc, "recording the tunnel: %s", strerror(-rc));
		goto out;
	}
	wg_spec_of(&e, &q->wgc, q, &s);
	/* DAC: /dev/net/tun, as for taps */
	privd_caps(d, PRIVD_CAP_NET | PRIVD_CAP_DAC);
	rc = wg_up(&s, &l, tun);
	privd_caps(d, 0);
	if (rc) {
		privd_err(err, en, rc, "bringing up %s: %s", s.ifname, strerror(-rc));
		privd_reg_del(&r, (size_t)privd_reg_find_kind(&r, PRIVD_ENT_WG, e.id));
		privd_reg_save(d, &r);
		goto out;
	}
	r.e[privd_reg_find_kind(&r, PRIVD_ENT_WG, e.id)].impl = l.impl;
	privd_reg_save(d, &r);
	wg_reply(out, &e, &l);
	wg_fds(tun, fds, nfds);
out:
	privd_reg_unlock(d, &r);
	return rc;
}

/* the caller's own tunnel @id (root: anyone's), or an error */
static ssize_t wg_find_mine(const struct privd *d, const struct privd_reg *r, const char *id, bool live_ok,
			    char *err, size_t en)
{
	ssize_t k = privd_reg_find_kind(r, PRIVD_ENT_WG, id);
	int rc;

	if (k < 0)
		return privd_err(err, en, -ENOENT, "no tunnel %s", id);
	rc = privd_ent_may(d, &r->e[k], live_ok, err, en);
	return rc ? rc : k;
}

/* the net entry of this namespace that routes into tunnel @w, or NULL */
static const struct privd_ent *wg_net_of(const struct privd_reg *r, const struct privd_ent *w)
{
	char ifname[IFNAMSIZ];

	if (wg_ifname(w->id, ifname, sizeof(ifname)))
		return NULL;
	for (size_t i = 0; i < r->n; i++)
		if (r->e[i].kind == PRIVD_ENT_NET && r->e[i].ns == w->ns && r->e[i].uid == w->uid &&
		    !strcmp(r->e[i].wg.ifname, ifname) && r->e[i].wg.mark == w->table)
			return &r->e[i];
	return NULL;
}

static int op_wg_fix(struct privd *d, const struct privd_req *q, json_t *out, int fds[3], size_t *nfds,
		     char *err, size_t en)
{
	struct wg_link l = { .pidfd = -1 };
	const struct privd_ent *net;
	struct privd_reg r;
	struct wg_spec s;
	int rc, tun[2] = { -1, -1 };
	ssize_t k;

	if (q->has_wgc && (rc = wg_addrs_ok(d, &q->wgc, err, en)))
		return rc;
	if ((rc = privd_reg_lock(d, &r)))
		return privd_err(err, en, rc, "the registry: %s", strerror(-rc));
	k = wg_find_mine(d, &r, q->id, false, err, en);
	if (k < 0) {
		rc = (int)k;
		goto out;
	}
	wg_spec_of(&r.e[k], q->has_wgc ? &q->wgc : NULL, q, &s);
	l.impl = r.e[k].impl;
	privd_caps(d, PRIVD_CAP_NET | PRIVD_CAP_DAC);
	rc = wg_fix(&s, q->wg_how, &l, tun);
	privd_caps(d, 0);
	net = rc ? NULL : wg_net_of(&r, &r.e[k]);
	if (net)
		rc = privd_wg_vm_rules(d, net, true);
	if (rc) {
		privd_err(err, en, rc, "repairing %s: %s", s.ifname, strerror(-rc));
		for (int i = 0; i < 2; i++)
			if (tun[i] >= 0)
				close(tun[i]);
		goto out;
	}
	if (r.e[k].impl != l.impl) {
		r.e[k].impl = l.impl;
		privd_reg_save(d, &r);
	}
	wg_reply(out, &r.e[k], &l);
	wg_fds(tun, fds, nfds);
out:
	privd_reg_unlock(d, &r);
	return rc;
}

void privd_wg_remove(const struct privd *d, const struct privd_reg *r, const struct privd_ent *e)
{
	const struct privd_ent *net = wg_net_of(r, e);
	char ifname[IFNAMSIZ];
	int rc;

	if (wg_ifname(e->id, ifname, sizeof(ifname)))
		return;
	/* DAC: the UAPI socket in root's WG_UAPI_DIR */
	privd_caps(d, PRIVD_CAP_NET | PRIVD_CAP_DAC);
	rc = wg_down(ifname, e->table, net ? net->addr : (struct in_addr){ 0 });
	privd_caps(d, 0);
	if (rc)
		log_warno(rc, "removing tunnel %s", ifname);
}

static int op_wg_down(struct privd *d, const struct privd_req *q, char *err, size_t en)
{
	struct privd_reg r;
	ssize_t k;
	int rc;

	if ((rc = privd_reg_lock(d, &r)))
		return privd_err(err, en, rc, "the registry: %s", strerror(-rc));
	k = wg_find_mine(d, &r, q->id, false, err, en);
	if (k < 0) {
		rc = k == -ENOENT ? 0 : (int)k;	/* gone already: nothing to do */
		goto out;
	}
	privd_wg_remove(d, &r, &r.e[k]);
	privd_reg_del(&r, (size_t)k);
	rc = privd_reg_save(d, &r);
out:
	privd_reg_unlock(d, &r);
	return rc;
}

static int op_wg_get(struct privd *d, const struct privd_req *q, json_t *out, char *err, size_t en)
{
	const struct privd_ent *net;
	struct wg_live lv = { 0 };
	char ifname[IFNAMSIZ], key[WG_KEY_B64_LEN + 1], ep[80];
	uint64_t pk = 0, by = 0;
	struct privd_reg r;
	ssize_t k;
	int rc;

	if ((rc = privd_reg_lock(d, &r)))
		return privd_err(err, en, rc, "the registry: %s", strerror(-rc));
	k = wg_find_mine(d, &r, q->id, true, err, en);
	if (k < 0) {
		rc = (int)k;
		goto out;
	}
	wg_ifname(r.e[k].id, ifname, sizeof(ifname));
	net = wg_net_of(&r, &r.e[k]);
	privd_caps(d, PRIVD_CAP_NET);
	if (r.e[k].impl == WG_IMPL_KERNEL && wg_genl_get(ifname, &lv) == 0) {
		json_t *o = json_pack("{s:I, s:I, s:I, s:i}", "handshake", (json_int_t)lv.handshake, "rx",
				      (json_int_t)lv.rx, "tx", (json_int_t)lv.tx, "keepalive", (int)lv.keepalive);

		if (o && lv.has_peer) {
			wg_key_to_base64(lv.peer_key, key);
			json_object_set_new(o, "peer", json_string(key));
		}
		if (o && lv.endpoint.ss_family && wg_sockaddr_str(&lv.endpoint, ep, sizeof(ep)) == 0)
			json_object_set_new(o, "endpoint", json_string(ep));
		json_object_set_new(out, "live", o);
	}
	if (net && nft_wg_drops(net->id, &pk, &by) == 0)
		json_object_set_new(out, "drops", json_pack("{s:I, s:I}", "packets", (json_int_t)pk, "bytes",
							    (json_int_t)by));
	privd_caps(d, 0);
out:
	privd_reg_unlock(d, &r);
	return rc;
}

int privd_wg_run(struct privd *d, const struct privd_req *q, json_t *out, int fds[3], size_t *nfds,
		 char *err, size_t en)
{
	if (q->op == PRIVD_WG_UP)
		return op_wg_up(d, q, out, fds, nfds, err, en);
	if (q->op == PRIVD_WG_FIX)
		return op_wg_fix(d, q, out, fds, nfds, err, en);
	if (q->op == PRIVD_WG_DOWN)
		return op_wg_down(d, q, err, en);
	if (q->op == PRIVD_WG_GET)
		return op_wg_get(d, q, out, err, en);
	return privd_err(err, en, -EINVAL, "unknown operation");
}

int privd_wg_net_check(const struct privd *d, const struct privd_reg *r, const struct nft_wg *wg,
		       char *err, size_t en)
{
	char ifname[IFNAMSIZ];

	for (size_t i = 0; i < r->n; i++) {
		const struct privd_ent *e = &r->e[i];

		if (e->kind != PRIVD_ENT_WG || wg_ifname(e->id, ifname, sizeof(ifname)) ||
		    strcmp(ifname, wg->ifname))
			continue;
		if (privd_ent_mine(d, e) && e->table == wg->mark && e->ns == d->netns)
			return 0;
		break;
	}
	return privd_err(err, en, -EPERM, "'wg': %s with mark 0x%x is not a tunnel of this process",
			 wg->ifname, wg->mark);
}

int privd_wg_vm_rules(const struct privd *d, const struct privd_ent *e, bool add)
{
	struct wg_spec s = { .table = e->wg.mark };
	struct cfg_vm vm;
	int rc;

	if (!e->wg.ifname[0])
		return 0;
	memcpy(s.ifname, e->wg.ifname, sizeof(s.ifname));
	memset(&vm, 0, sizeof(vm));
	vm.network.host_access = (struct cfg_host_access *)e->ha;
	vm.network.n_host_access = e->n_ha;
	privd_caps(d, PRIVD_CAP_NET);
	rc = wg_vm_rules(&s, e->nc.bridge, e->addr, &vm, add);
	privd_caps(d, 0);
	return rc;
}

int privd_wg_orphans(const struct privd *d, const struct privd_reg *r)
{
	char (*links)[IFNAMSIZ] = calloc(PRIVD_WG_SWEEP_MAX, IFNAMSIZ);
	size_t n = 0, plen = strlen(WG_IF_PREFIX);
	int removed = 0;

	if (!links)
		return 0;
	privd_caps(d, PRIVD_CAP_NET);
	if (nl_link_list(WG_IF_PREFIX, NULL, links, PRIVD_WG_SWEEP_MAX, &n) == 0) {
		for (size_t i = 0; i < n && i < PRIVD_WG_SWEEP_MAX; i++) {
			ssize_t k = privd_reg_find_kind(r, PRIVD_ENT_WG, links[i] + plen);

			if (k >= 0 && r->e[k].ns == d->netns)
				continue;
			log_info("removing %s that no VM owns", links[i]);
			nl_link_del(links[i]);
			removed++;
		}
	}
	privd_caps(d, 0);
	free(links);
	return removed;
}
