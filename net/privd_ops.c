// SPDX-License-Identifier: MIT
/*
 * The operations of the privileged side (see privd.h for the model).  Each
 * one runs under the registry lock, checks the caller against the registry
 * before it touches anything, records a new object before creating it, and
 * raises the one capability a call needs around that call.  These are the
 * only places that bring a bridge, tap or VM rules up or down, or mount a
 * share image, for a VM.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "net/dhcp.h"
#include "net/nl.h"
#include "net/privd.h"
#include "net/tap.h"
#include "share/share.h"
#include "src/log.h"
#include "src/proc.h"
#include "src/util.h"

#define PRIVD_SWEEP_MAX 256	/* orphan ids / taps looked at per gc */

/* ---- bridge primitives (the privileged side's only) ---- */

int net_bridge_ensure(const struct net_conf *nc, bool ipv6, const char *recdir)
{
	int rc;

	rc = nl_bridge_add(nc->bridge);
	if (rc == -EEXIST)
		rc = nl_bridge_secure(nc->bridge);	/* made by an older hutch */
	if (rc)
		return rc;
	if ((rc = nl_if_sysctls(nc->bridge, ipv6, true)))
		return rc;
	if ((rc = nl_addr_set(nc->bridge, nc->gw, nc->prefix)))
		return rc;
	if ((rc = nl_link_up(nc->bridge)))
		return rc;
	return nl_forwarding_on(recdir);
}

int net_port_attach(const char *port, const char *bridge, bool ipv6)
{
	int rc;

	if ((rc = nl_if_sysctls(port, ipv6, false)))
		return rc;
	if ((rc = nl_link_set_master(port, bridge)))
		return rc;
	/* bridge port isolation: isolated ports cannot reach each other, only the bridge/host */
	return nl_brport_isolate(port, true);
}

int net_bridge_release(const char *bridge, const char *recdir)
{
	size_t n = 0;
	int rc, ifi;

	/*
	 * Not there: another VM's release took it while this VM's rules were
	 * still in place (its tap went with its QEMU), so the base rules were
	 * kept then (EBUSY).  Remove them now unless a VM, of any bridge, still
	 * has rules.
	 */
	if (nl_link_get(bridge, &ifi, NULL) == -ENODEV) {
		rc = nft_base_remove();
		return rc == -EBUSY ? 0 : rc;
	}
	rc = nl_link_list(NET_TAP_PREFIX, bridge, NULL, 0, &n);
	if (rc)
		return rc;
	if (n)
		return 0;
	rc = nl_link_del(bridge);
	if (rc && rc != -ENODEV)
		return rc;
	rc = nft_base_remove();
	if (rc && rc != -EBUSY)	/* EBUSY: VMs of another bridge still have rules */
		log_warno(rc, "removing hutch's base nftables rules");
	rc = nl_forwarding_restore(recdir);
	if (rc < 0)
		log_warno(rc, "restoring net.ipv4.ip_forward");
	return 1;
}

/* ---- helpers ---- */

static bool privd_is_root(const struct privd *d)
{
	return d->uid == 0;
}

bool privd_ent_mine(const struct privd *d, const struct privd_ent *e)
{
	return e->pid == d->pid && e->start == d->start;
}

static void ent_nft(const struct privd_ent *e, struct cfg_vm *vm, struct nft_vm *nv)
{
	char tap[IFNAMSIZ];

	memset(vm, 0, sizeof(*vm));
	vm->network.isolation = e->isolation;
	vm->network.ipv6 = e->ipv6;
	vm->network.host_access = (struct cfg_host_access *)e->ha;
	vm->network.n_host_access = e->n_ha;
	if (tap_name(e->id, tap, sizeof(tap)) ||
	    nft_vm_init(nv, e->id, tap, e->mac, e->addr, e->nc.gw, e->nc.prefix, vm))
		memset(nv, 0, sizeof(*nv));
	else {
		nv->wg = e->wg;	/* the kill switch is repaired with the rest */
		/* udp/53 to the gateway: only while the VM's forwarder runs */
		nv->dns = e->dns;
	}
}

/* the VM's rules and tap; both may be gone already */
static void ops_net_remove(const struct privd *d, const char *id)
{
	char tap[IFNAMSIZ];
	int rc;

	privd_caps(d, PRIVD_CAP_NET);
	rc = nft_vm_del(id);
	if (rc)
		log_warno(rc, "removing the rules of %s", id);
	if (tap_name(id, tap, sizeof(tap)) == 0) {
		rc = nl_link_del(tap);
		if (rc && rc != -ENODEV)
			log_warno(rc, "removing %s", tap);
	}
	privd_caps(d, 0);
}

static void ops_bridge_release(const struct privd *d, const char *bridge)
{
	int rc;

	if (!bridge[0])
		return;
	/* DAC: the ip_forward record in the registry's root-owned directory */
	privd_caps(d, PRIVD_CAP_NET | PRIVD_CAP_DAC);
	rc = net_bridge_release(bridge, d->conf.rundir);
	privd_caps(d, 0);
	if (rc < 0)
		log_warno(rc, "removing bridge %s", bridge);
}

static void ops_unmount_ent(const struct privd *d, const struct privd_ent *e)
{
	int rc;

	privd_caps(d, PRIVD_CAP_MOUNT | PRIVD_CAP_DAC);
	rc = share_unmount(e->image, e->dir, privd_is_root(d) ? 0 : e->uid);
	privd_caps(d, 0);
	if (rc < 0 && rc != -EBUSY && rc != -ENOENT)
		log_warno(rc, "unmounting %s", e->dir);
}

/*
 * Remove the entries whose owner died (and, with @self_gone, this caller's
 * own): their objects when they live in our namespaces, else only the
 * entry (a dead namespace took its objects along; a live one is swept by
 * its own gc, which sees them as orphans).
 */
static int ops_sweep(struct privd *d, struct privd_reg *r, bool self_gone, char *bridge,
		     size_t bn)
{
	int removed = 0;

	for (size_t i = r->n; i-- > 0;) {
		struct privd_ent *e = &r->e[i];
		bool here = e->ns == (e->kind == PRIVD_ENT_MOUNT ? d->mntns : d->netns);

		if (!(self_gone && privd_ent_mine(d, e)) && privd_ent_alive(e))
			continue;
		if (here && e->kind == PRIVD_ENT_NET) {
			log_info("removing the network of VM %s (%s): its supervisor %d is gone",
				 e->name, e->id, (int)e->pid);
			privd_wg_vm_rules(d, e, false);
			ops_net_remove(d, e->id);
			util_snprintf(bridge, bn, "%s", e->nc.bridge);
		} else if (here && e->kind == PRIVD_ENT_WG) {
			log_info("removing the tunnel of VM %s (hw-%s): its supervisor %d is gone",
				 e->name, e->id, (int)e->pid);
			privd_wg_remove(d, r, e);
		} else if (here) {
			log_info("unmounting %s: its owner %d is gone", e->dir, (int)e->pid);
			ops_unmount_ent(d, e);
		}
		privd_reg_del(r, i);
		removed++;
	}
	return removed;
}

/* hutch's rules and taps that no registry entry of this namespace owns */
static int ops_orphans(struct privd *d, const struct privd_reg *r)
{
	char (*ids)[NFT_ID_MAX] = calloc(PRIVD_SWEEP_MAX, NFT_ID_MAX);
	char (*taps)[IFNAMSIZ] = calloc(PRIVD_SWEEP_MAX, IFNAMSIZ);
	size_t n = 0, plen = strlen(NET_TAP_PREFIX);
	int removed = 0;

	if (!ids || !taps)
		goto out;
	privd_caps(d, PRIVD_CAP_NET);
	if (nft_vm_list(ids, PRIVD_SWEEP_MAX, &n) == 0) {
		for (size_t i = 0; i < n && i < PRIVD_SWEEP_MAX; i++) {
			ssize_t k = privd_reg_find(r, ids[i]);

			if (k >= 0 && r->e[k].ns == d->netns)
				continue;
			log_info("removing rules %s that no VM owns", ids[i]);
			nft_vm_del(ids[i]);
			removed++;
		}
	}
	n = 0;
	if (nl_link_list(NET_TAP_PREFIX, NULL, taps, PRIVD_SWEEP_MAX, &n) == 0) {
		for (size_t i = 0; i < n && i < PRIVD_SWEEP_MAX; i++) {
			ssize_t k = privd_reg_find(r, taps[i] + plen);

			if (k >= 0 && r->e[k].ns == d->netns)
				continue;
			log_info("removing %s that no VM owns", taps[i]);
			nl_link_del(taps[i]);
			removed++;
		}
	}
	privd_caps(d, 0);
	removed += privd_wg_orphans(d, r);
out:
	free(ids);
	free(taps);
	return removed;
}

static void ops_watch_start(struct privd *d)
{
	int fd;

	if (d->watch_fd >= 0 || d->n_owned == 0)
		return;
	privd_caps(d, PRIVD_CAP_NET);
	fd = nft_watch_open();
	privd_caps(d, 0);
	if (fd < 0)
		log_warno(fd, "nftables: cannot watch for rule changes");
	else
		d->watch_fd = fd;
}

static void ops_own(struct privd *d, const char *id, bool on)
{
	for (size_t i = 0; i < d->n_owned; i++) {
		if (!strcmp(d->owned[i], id)) {
			if (!on)
				memcpy(d->owned[i], d->owned[--d->n_owned], NFT_ID_MAX);
			return;
		}
	}
	if (on && d->n_owned < PRIVD_OWNED_MAX)
		memcpy(d->owned[d->n_owned++], id, strlen(id) + 1);
	ops_watch_start(d);
}

/*
 * Rules back after a host flush or a change: every live VM of this
 * namespace has its rules compared, by content, with what hutch installs
 * (nft_repair(): a flushed table keeps its chains, so names are not
 * enough), and the base and the VM's rules put back where they differ.  A
 * VM whose rules cannot be restored has its tap taken down (fail closed: no
 * rules, no traffic) until a later repair succeeds.
 */
static void ops_repair_locked(struct privd *d, const struct privd_reg *r)
{
	int rc;

	privd_caps(d, PRIVD_CAP_NET);
	for (size_t i = 0; i < r->n; i++) {
		const struct privd_ent *e = &r->e[i];
		char tap[IFNAMSIZ];
		struct cfg_vm vm;
		struct nft_vm nv;

		if (e->kind != PRIVD_ENT_NET || e->ns != d->netns || !privd_ent_alive(e) ||
		    tap_name(e->id, tap, sizeof(tap)))
			continue;
		ent_nft(e, &vm, &nv);
		rc = nv.id[0] ? nft_repair(&nv, e->nc.bridge, e->nc.net, e->nc.prefix) : -EINVAL;
		if (rc == 1)
			log_warn("nftables: the rules of VM %s (%s) had changed; restored", e->name,
				 e->id);
		if (rc < 0) {
			log_errno(rc, "nftables: the rules of %s cannot be restored; taking %s down",
				  e->id, tap);
			if ((rc = nl_link_down(tap)) && rc != -ENODEV)
				log_errno(rc, "taking %s down", tap);
		} else if (rc == 1 && nl_link_up(tap) == 0) {
			log_info("nftables: the rules of %s are in place; %s is up", e->id, tap);
		}
	}
	privd_caps(d, 0);
}

void privd_watch(struct privd *d)
{
	struct privd_reg r;
	int rc = nft_watch_handle(d->watch_fd);

	if (rc == 0)
		return;
	if (privd_reg_lock(d, &r))
		return;
	ops_repair_locked(d, &r);
	privd_reg_unlock(d, &r);
}

void privd_hangup(struct privd *d)
{
	char bridge[IFNAMSIZ] = "";
	struct privd_reg r;

	if (d->reg_fd < 0 || privd_reg_lock(d, &r))
		return;
	if (ops_sweep(d, &r, true, bridge, sizeof(bridge)))
		privd_reg_save(d, &r);
	ops_bridge_release(d, bridge);
	privd_reg_unlock(d, &r);
}

/* ---- net_up ---- */

static bool ops_net_allowed(const struct privd *d, const struct net_conf *nc)
{
	if (d->any_net)
		return true;
	for (size_t i = 0; i < d->conf.n_nets; i++) {
		const struct net_conf *a = &d->conf.nets[i];

		if (!strcmp(a->bridge, nc->bridge) && a->gw.s_addr == nc->gw.s_addr &&
		    a->prefix == nc->prefix)
			return true;
	}
	return false;
}

/* the gateway's port 53; REUSEADDR so that every user's forwarder may bind it (see net/dns.h) */
static int ops_dns_socket(const struct privd *d, struct in_addr gw)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(53), .sin_addr = gw };
	int fd, one = 1, rc = 0;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	privd_caps(d, PRIVD_CAP_BIND);
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		rc = -errno;
	privd_caps(d, 0);
	if (rc) {
		close(fd);
		return rc;
	}
	return fd;
}

struct ops_net {
	char tap[IFNAMSIZ];
	int ifindex;
	uint8_t gw_mac[6];
	int fds[3];
};

/* bridge, base rules, tap, VM rules, tap up, sockets: in this order (fail closed) */
static int ops_net_create(struct privd *d, const struct privd_ent *e, struct ops_net *o,
			  char *err, size_t en)
{
	struct cfg_vm vm;
	struct nft_vm nv;
	int rc, bi;

	o->fds[0] = o->fds[1] = o->fds[2] = -1;
	if ((rc = tap_name(e->id, o->tap, sizeof(o->tap))))
		return privd_err(err, en, rc, "bad id");
	privd_caps(d, PRIVD_CAP_NET | PRIVD_CAP_DAC);	/* DAC: as in ops_bridge_release() */
	rc = net_bridge_ensure(&e->nc, e->ipv6, d->conf.rundir);
	privd_caps(d, PRIVD_CAP_NET);
	if (rc) {
		privd_err(err, en, rc, "setting up bridge %s: %s", e->nc.bridge, strerror(-rc));
		goto out;
	}
	if ((rc = nft_base_ensure(e->nc.bridge, e->nc.net, e->nc.prefix))) {
		privd_err(err, en, rc, "hutch's base nftables rules: %s", strerror(-rc));
		goto out;
	}
	/* /dev/net/tun is 0600 root on some hosts: the only file opened with DAC raised here */
	privd_caps(d, PRIVD_CAP_NET | PRIVD_CAP_DAC);
	rc = tap_open(o->tap, d->uid, d->gid, &o->fds[0]);
	privd_caps(d, PRIVD_CAP_NET);
	if (rc) {
		privd_err(err, en, rc, "creating tap %s: %s", o->tap, strerror(-rc));
		goto out;
	}
	/* no MAC learning on VM ports: the VM's MAC is a static FDB entry (issue 15.10) */
	if ((rc = net_port_attach(o->tap, e->nc.bridge, e->ipv6)) ||
	    (rc = nl_fdb_add(o->tap, e->mac))) {
		privd_err(err, en, rc, "attaching %s to %s: %s", o->tap, e->nc.bridge, strerror(-rc));
		goto out;
	}
	ent_nft(e, &vm, &nv);
	if ((rc = nv.id[0] ? nft_vm_add(&nv) : -EINVAL)) {
		privd_err(err, en, rc, "installing the VM's nftables rules: %s", strerror(-rc));
		goto out;
	}
	if ((rc = nl_link_up(o->tap)) || (rc = nl_link_get(o->tap, &o->ifindex, NULL)) ||
	    (rc = nl_link_get(e->nc.bridge, &bi, o->gw_mac))) {
		privd_err(err, en, rc, "bringing %s up: %s", o->tap, strerror(-rc));
		goto out;
	}
	privd_caps(d, PRIVD_CAP_RAW);
	rc = o->fds[1] = dhcp_open(o->ifindex);
	if (rc < 0) {
		privd_err(err, en, rc, "DHCP socket on %s: %s", o->tap, strerror(-rc));
		goto out;
	}
	rc = o->fds[2] = e->dns ? ops_dns_socket(d, e->nc.gw) : -1;
	if (e->dns && rc < 0) {
		privd_err(err, en, rc, "DNS socket on port 53: %s", strerror(-rc));
		goto out;
	}
	rc = 0;
out:
	privd_caps(d, 0);
	if (rc)
		for (int i = 0; i < 3; i++)
			if (o->fds[i] >= 0)
				close(o->fds[i]);
	return rc;
}

int privd_ent_quota(const struct privd *d, const struct privd_reg *r, enum privd_kind kind, char *err,
		    size_t en)
{
	static const char *const what[] = { [PRIVD_ENT_NET] = "VM networks", [PRIVD_ENT_MOUNT] = "mounts",
					    [PRIVD_ENT_WG] = "tunnels" };
	int n = 0;

	for (size_t i = 0; i < r->n; i++)
		n += r->e[i].kind == kind && r->e[i].uid == d->uid;
	if (n < PRIVD_USER_VMS)
		return 0;
	return privd_err(err, en, -EDQUOT, "uid %u has %d %s already", (unsigned)d->uid, PRIVD_USER_VMS,
			 what[kind]);
}

void privd_ent_owner(const struct privd *d, struct privd_ent *e)
{
	e->uid = d->uid;
	e->pid = d->pid;
	e->start = d->start;
	e->ns = e->kind == PRIVD_ENT_MOUNT ? d->mntns : d->netns;
}

static int ops_new_id(const struct privd_reg *r, char *id)
{
	for (int tries = 0; tries < 32; tries++) {
		char tap[IFNAMSIZ];
		int ifi, rc;

		if ((rc = tap_new_id(id, NFT_ID_MAX)) || (rc = tap_name(id, tap, sizeof(tap))))
			return rc;
		if (privd_reg_find(r, id) < 0 && nl_link_get(tap, &ifi, NULL) == -ENODEV)
			return 0;
	}
	return -EEXIST;
}

static int op_net_up(struct privd *d, const struct privd_req *q, json_t *out, int fds[3],
		     size_t *nfds, char *err, size_t en)
{
	char bridge[IFNAMSIZ] = "", a[INET_ADDRSTRLEN], m[18], g[18];
	struct privd_ent e = { .kind = PRIVD_ENT_NET };
	struct privd_reg r;
	struct ops_net o;
	int rc;

	if (!ops_net_allowed(d, &q->nc))
		return privd_err(err, en, -EPERM, "network %s %s/%u is not one hutch-helper allows (%s)",
			    q->nc.bridge, inet_ntop(AF_INET, &q->nc.gw, a, sizeof(a)), q->nc.prefix,
			    d->conf_path[0] ? d->conf_path : "hutch-helper.conf");
	if (d->n_owned >= PRIVD_OWNED_MAX)
		return privd_err(err, en, -EMFILE, "too many VM networks on one connection");
	if ((rc = privd_reg_lock(d, &r)))
		return privd_err(err, en, rc, "the registry: %s", strerror(-rc));
	ops_sweep(d, &r, false, bridge, sizeof(bridge));
	if (q->wg.ifname[0] && (rc = privd_wg_net_check(d, &r, &q->wg, err, en)))
		goto out;
	if ((rc = privd_ent_quota(d, &r, PRIVD_ENT_NET, err, en)))
		goto out;
	privd_ent_owner(d, &e);
	e.nc = q->nc;
	e.isolation = q->isolation;
	e.wg = q->wg;
	e.ipv6 = q->ipv6;
	e.dns = q->dns;
	e.n_ha = q->n_ha;
	memcpy(e.ha, q->ha, sizeof(e.ha));
	memcpy(e.name, q->name, sizeof(e.name));
	if ((rc = privd_reg_pick(&r, d->netns, &q->nc, q->prefer, q->mac, &e.addr, e.mac))) {
		privd_err(err, en, rc, "no free address left in %s's subnet", q->nc.bridge);
		goto out;
	}
	if ((rc = ops_new_id(&r, e.id)) || (rc = privd_reg_add(&r, &e)) ||
	    (rc = privd_reg_save(d, &r))) {
		privd_err(err, en, rc, "recording the VM: %s", strerror(-rc));
		goto out;
	}
	rc = ops_net_create(d, &e, &o, err, en);
	if (!rc && e.wg.ifname[0] && (rc = privd_wg_vm_rules(d, &e, true)) != 0) {
		privd_err(err, en, rc, "the VM's routing rules to its tunnel: %s", strerror(-rc));
		for (int i = 0; i < 3; i++)
			if (o.fds[i] >= 0)
				close(o.fds[i]);
	}
	if (rc) {
		privd_wg_vm_rules(d, &e, false);
		ops_net_remove(d, e.id);
		util_snprintf(bridge, sizeof(bridge), "%s", e.nc.bridge);
		privd_reg_del(&r, (size_t)privd_reg_find(&r, e.id));
		privd_reg_save(d, &r);
		goto out;
	}
	inet_ntop(AF_INET, &e.addr, a, sizeof(a));
	util_snprintf(m, sizeof(m), "%02x:%02x:%02x:%02x:%02x:%02x", e.mac[0], e.mac[1], e.mac[2],
		      e.mac[3], e.mac[4], e.mac[5]);
	util_snprintf(g, sizeof(g), "%02x:%02x:%02x:%02x:%02x:%02x", o.gw_mac[0], o.gw_mac[1],
		      o.gw_mac[2], o.gw_mac[3], o.gw_mac[4], o.gw_mac[5]);
	json_object_set_new(out, "id", json_string(e.id));
	json_object_set_new(out, "tap", json_string(o.tap));
	json_object_set_new(out, "addr", json_string(a));
	json_object_set_new(out, "mac", json_string(m));
	json_object_set_new(out, "gw_mac", json_string(g));
	json_object_set_new(out, "ifindex", json_integer(o.ifindex));
	memcpy(fds, o.fds, sizeof(o.fds));
	*nfds = e.dns ? 3 : 2;
	ops_own(d, e.id, true);
	bridge[0] = 0;
out:
	ops_bridge_release(d, bridge);
	privd_reg_unlock(d, &r);
	return rc;
}

/* ---- net_down, attach, gc, inspect ---- */

int privd_ent_may(const struct privd *d, const struct privd_ent *e, bool live_ok, char *err,
		  size_t en)
{
	const char *what = e->kind == PRIVD_ENT_WG ? "tunnel" : "VM";

	if (e->uid != d->uid && !privd_is_root(d))
		return privd_err(err, en, -EPERM, "%s %s belongs to another user (uid %u)", what, e->id,
			    (unsigned)e->uid);
	if (!live_ok && !privd_ent_mine(d, e) && privd_ent_alive(e))
		return privd_err(err, en, -EBUSY, "%s %s (%s) is running under process %d", what, e->id,
			    e->name, (int)e->pid);
	return 0;
}

static int op_net_down(struct privd *d, const struct privd_req *q, char *err, size_t en)
{
	char bridge[IFNAMSIZ] = "";
	struct privd_reg r;
	ssize_t k;
	int rc;

	if ((rc = privd_reg_lock(d, &r)))
		return privd_err(err, en, rc, "the registry: %s", strerror(-rc));
	k = privd_reg_find(&r, q->id);
	if (k >= 0 && (rc = privd_ent_may(d, &r.e[k], false, err, en)))
		goto out;
	/* no entry: orphaned objects (or none), which anyone may remove */
	if (k >= 0)
		privd_wg_vm_rules(d, &r.e[k], false);
	ops_net_remove(d, q->id);
	if (k >= 0) {
		util_snprintf(bridge, sizeof(bridge), "%s", r.e[k].nc.bridge);
		privd_reg_del(&r, (size_t)k);
		rc = privd_reg_save(d, &r);
	}
	ops_own(d, q->id, false);
	if (d->n_owned == 0 && d->watch_fd >= 0) {
		close(d->watch_fd);
		d->watch_fd = -1;
	}
out:
	ops_bridge_release(d, bridge);
	privd_reg_unlock(d, &r);
	return rc;
}

static int op_attach(struct privd *d, const struct privd_req *q, char *err, size_t en)
{
	struct privd_reg r;
	ssize_t k;
	int rc;

	if ((rc = privd_reg_lock(d, &r)))
		return privd_err(err, en, rc, "the registry: %s", strerror(-rc));
	k = privd_reg_find(&r, q->id);
	if (k < 0)
		rc = privd_err(err, en, -ENOENT, "no VM network %s", q->id);
	else if (!(rc = privd_ent_may(d, &r.e[k], true, err, en)) && !privd_ent_mine(d, &r.e[k]))
		rc = privd_err(err, en, -EPERM, "VM %s belongs to another process", q->id);
	if (!rc) {
		ops_own(d, q->id, true);
		ops_repair_locked(d, &r);
	}
	privd_reg_unlock(d, &r);
	return rc;
}

static int op_gc(struct privd *d, const struct privd_req *q, json_t *out, char *err, size_t en)
{
	char bridge[IFNAMSIZ] = "";
	struct privd_reg r;
	int rc, n;

	if ((rc = privd_reg_lock(d, &r)))
		return privd_err(err, en, rc, "the registry: %s", strerror(-rc));
	if (q->has_id) {
		ssize_t k = privd_reg_find(&r, q->id);

		if (k >= 0 && (rc = privd_ent_may(d, &r.e[k], false, err, en)))
			goto out;
	}
	n = ops_sweep(d, &r, false, bridge, sizeof(bridge));
	if (n)
		rc = privd_reg_save(d, &r);
	n += ops_orphans(d, &r);
	if (!bridge[0]) {
		/* an orphaned bridge: every configured one without ports goes */
		for (size_t i = 0; i < d->conf.n_nets; i++)
			ops_bridge_release(d, d->conf.nets[i].bridge);
	}
	json_object_set_new(out, "removed", json_integer(n));
out:
	ops_bridge_release(d, bridge);
	privd_reg_unlock(d, &r);
	return rc;
}

static int op_inspect(struct privd *d, const struct privd_req *q, json_t *out, char *err,
		      size_t en)
{
	const struct privd_ent *e;
	char tap[IFNAMSIZ], a[INET_ADDRSTRLEN], *text = NULL;
	struct privd_reg r;
	size_t len = 0;
	bool iso = false;
	FILE *f;
	ssize_t k;
	int rc;

	if ((rc = privd_reg_lock(d, &r)))
		return privd_err(err, en, rc, "the registry: %s", strerror(-rc));
	k = privd_reg_find(&r, q->id);
	if (k < 0) {
		rc = privd_err(err, en, -ENOENT, "no VM network %s", q->id);
		goto out;
	}
	e = &r.e[k];
	if ((rc = privd_ent_may(d, e, true, err, en)) || (rc = tap_name(e->id, tap, sizeof(tap))))
		goto out;
	f = open_memstream(&text, &len);
	if (!f) {
		rc = -ENOMEM;
		goto out;
	}
	fprintf(f, "  owner    uid %u, supervisor %d (%s)\n", (unsigned)e->uid, (int)e->pid,
		privd_ent_alive(e) ? "running" : "gone");
	fprintf(f, "  lease    %s\n", inet_ntop(AF_INET, &e->addr, a, sizeof(a)));
	if (nl_brport_isolated(tap, &iso) == 0)
		fprintf(f, "  port     %s\n", iso ? "isolated" : "NOT isolated");
	fprintf(f, "rules:\n");
	privd_caps(d, PRIVD_CAP_NET);
	nft_dump(e->id, f);
	privd_caps(d, 0);
	if (fclose(f) == 0 && text) {
		if (len > PRIV_REPLY_MAX / 2)
			text[PRIV_REPLY_MAX / 2] = 0;	/* still valid UTF-8: nft output is ASCII */
		json_object_set_new(out, "text", json_string(text));
	}
	free(text);
out:
	privd_reg_unlock(d, &r);
	return rc;
}

/* ---- mount, unmount ---- */

/*
 * Open @path without following any symlink on the way (openat2
 * RESOLVE_NO_SYMLINKS), as the caller (the helper's file system uid is
 * the caller's; nothing is raised here), and check its type and owner.
 */
static int ops_path_check(const struct privd *d, const char *what, const char *path, mode_t type,
			  char *err, size_t en)
{
	struct open_how how = { .flags = O_PATH | O_CLOEXEC,
				.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS };
	struct stat st;
	long fd;
	int rc = 0;

	fd = syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof(how));
	if (fd < 0) {
		rc = -errno;
		if (rc == -ELOOP || rc == -EXDEV)
			return privd_err(err, en, -ELOOP, "%s %s: a symlink in the path is refused", what,
				    path);
		return privd_err(err, en, rc, "%s %s: %s", what, path, strerror(-rc));
	}
	if (fstat((int)fd, &st) < 0)
		rc = privd_err(err, en, -errno, "%s %s: %s", what, path, strerror(errno));
	else if ((st.st_mode & S_IFMT) != type)
		rc = privd_err(err, en, -EINVAL, "%s %s is not a %s", what, path,
			  type == S_IFDIR ? "directory" : "regular file");
	else if (st.st_uid != d->uid && !privd_is_root(d))
		rc = privd_err(err, en, -EPERM, "%s %s belongs to uid %u, not to you (uid %u)", what, path,
			  (unsigned)st.st_uid, (unsigned)d->uid);
	close((int)fd);
	return rc;
}

/* the folder, or (not created yet) its parent, must be the caller's */
static int ops_dir_check(const struct privd *d, const char *dir, char *err, size_t en)
{
	char parent[PATH_MAX];
	char *slash;
	int rc = ops_path_check(d, "folder", dir, S_IFDIR, err, en);

	if (rc != -ENOENT)
		return rc;
	if ((rc = util_snprintf(parent, sizeof(parent), "%s", dir)))
		return rc;
	slash = strrchr(parent, '/');
	if (slash == parent)
		slash[1] = 0;
	else
		*slash = 0;
	return ops_path_check(d, "parent folder", parent, S_IFDIR, err, en);
}

static ssize_t ops_find_mount(const struct privd *d, const struct privd_reg *r, const char *dir)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->e[i].kind == PRIVD_ENT_MOUNT && r->e[i].ns == d->mntns &&
		    !strcmp(r->e[i].dir, dir))
			return (ssize_t)i;
	return -1;
}

/*
 * The share image's owner and where its provenance record lives.  In the
 * helper: the caller (SO_PEERCRED), whose image it is, and the helper's own
 * root-owned state dir, which no user can write a record into.  In-process
 * (hutch runs as root): the user that runs virtiofsd (src/proc.h: SUDO_UID,
 * or hutch-vm) and root's own data dir: root trusts its own records.
 */
static int ops_share_req(struct privd *d, const struct privd_req *q, struct share_req *r,
			 char *recdir, size_t rn, char *err, size_t en)
{
	struct proc_user pu;
	int rc;

	*r = (struct share_req){ .dir = q->dir, .uid = d->uid, .gid = d->gid,
				 .size_gib = q->size_gib, .recdir = recdir };
	if (!privd_is_root(d)) {
		rc = util_snprintf(recdir, rn, "%s/shares", d->conf.statedir);
		return rc ? privd_err(err, en, rc, "state dir too long") : 0;
	}
	if ((rc = proc_user_resolve(&pu)) || (rc = share_record_dir(recdir, rn)))
		return privd_err(err, en, rc, "the user that runs virtiofsd: %s", strerror(-rc));
	r->uid = pu.uid;
	r->gid = pu.gid;
	return 0;
}

/* the helper's record dir: <statedir>/shares, root's 0700 (made with CAP_DAC_OVERRIDE) */
static int ops_recdir(struct privd *d, const char *recdir, char *err, size_t en)
{
	int rc = 0;

	if (privd_is_root(d))
		return 0;	/* share_record_dir() made the user's own */
	privd_caps(d, PRIVD_CAP_DAC);
	if ((mkdir(d->conf.statedir, 0700) < 0 && errno != EEXIST) ||
	    (mkdir(recdir, 0700) < 0 && errno != EEXIST))
		rc = -errno;
	privd_caps(d, 0);
	return rc ? privd_err(err, en, rc, "%s: %s", recdir, strerror(-rc)) : 0;
}

/* create the image if missing (its record in @r->recdir), then mount it */
static int ops_share_mount(struct privd *d, const struct share_req *r, int *loop)
{
	int rc;

	/* share/ checks image and folder again, by fd, against r->uid */
	privd_caps(d, PRIVD_CAP_MOUNT | PRIVD_CAP_DAC);
	rc = share_image_create(r, NULL);
	if (rc == 0)
		rc = share_mount(r, loop);
	privd_caps(d, 0);
	return rc;
}

static int op_mount(struct privd *d, const struct privd_req *q, json_t *out, char *err, size_t en)
{
	char img[PATH_MAX], recdir[PATH_MAX], bridge[IFNAMSIZ] = "";
	struct privd_ent e = { .kind = PRIVD_ENT_MOUNT, .uid = d->uid, .ns = d->mntns,
			       .image = img, .dir = (char *)q->dir };
	struct share_req r;
	struct privd_reg reg;
	ssize_t k;
	int rc, loop = -1;

	if ((rc = util_snprintf(img, sizeof(img), "%s.img", q->dir)) ||
	    (rc = ops_dir_check(d, q->dir, err, en)) ||
	    (rc = ops_share_req(d, q, &r, recdir, sizeof(recdir), err, en)) ||
	    (rc = ops_recdir(d, recdir, err, en)))
		return rc;
	if (!q->keep) {
		e.pid = d->pid;
		e.start = d->start;
	}
	if ((rc = privd_reg_lock(d, &reg)))
		return privd_err(err, en, rc, "the registry: %s", strerror(-rc));
	ops_sweep(d, &reg, false, bridge, sizeof(bridge));
	k = ops_find_mount(d, &reg, q->dir);
	if (k >= 0 && reg.e[k].uid != d->uid && !privd_is_root(d)) {
		rc = privd_err(err, en, -EPERM, "%s is mounted by another user", q->dir);
		goto out;
	}
	if (k >= 0)
		privd_reg_del(&reg, (size_t)k);
	if ((rc = privd_ent_quota(d, &reg, PRIVD_ENT_MOUNT, err, en)))
		goto out;
	if ((rc = privd_reg_add(&reg, &e)) || (rc = privd_reg_save(d, &reg))) {
		privd_err(err, en, rc, "recording the mount: %s", strerror(-rc));
		goto out;
	}
	rc = ops_share_mount(d, &r, &loop);
	if (rc < 0) {
		privd_err(err, en, rc, "mounting %s on %s: %s", img, q->dir, strerror(-rc));
		k = ops_find_mount(d, &reg, q->dir);
		if (k >= 0)
			privd_reg_del(&reg, (size_t)k);
		privd_reg_save(d, &reg);
		goto out;
	}
	json_object_set_new(out, "loop", json_integer(loop));
out:
	ops_bridge_release(d, bridge);
	privd_reg_unlock(d, &reg);
	return rc;
}

static int op_unmount(struct privd *d, const struct privd_req *q, char *err, size_t en)
{
	char img[PATH_MAX];
	struct privd_reg r;
	ssize_t k;
	int rc;

	rc = ops_path_check(d, "folder", q->dir, S_IFDIR, err, en);
	if (rc == -ENOENT)
		return 0;	/* nothing can be mounted there */
	if (rc || (rc = util_snprintf(img, sizeof(img), "%s.img", q->dir)))
		return rc;
	if ((rc = privd_reg_lock(d, &r)))
		return privd_err(err, en, rc, "the registry: %s", strerror(-rc));
	k = ops_find_mount(d, &r, q->dir);
	if (k >= 0 && r.e[k].uid != d->uid && !privd_is_root(d)) {
		rc = privd_err(err, en, -EPERM, "%s is mounted by another user", q->dir);
		goto out;
	}
	privd_caps(d, PRIVD_CAP_MOUNT | PRIVD_CAP_DAC);
	/* only the mount of this image, and (not root) only the caller's image */
	rc = share_unmount(img, q->dir, privd_is_root(d) ? 0 : d->uid);
	privd_caps(d, 0);
	if (rc < 0) {
		privd_err(err, en, rc, rc == -EBUSY ? "%s is mounted from something else; not touching it" :
			     "cannot unmount %s", q->dir);
		goto out;
	}
	if (k >= 0) {
		privd_reg_del(&r, (size_t)k);
		rc = privd_reg_save(d, &r);
	}
out:
	privd_reg_unlock(d, &r);
	return rc;
}

int privd_ops_run(struct privd *d, const struct privd_req *q, json_t *out, int fds[3],
		  size_t *nfds, char *err, size_t en)
{
	switch (q->op) {
	case PRIVD_PING:
		json_object_set_new(out, "uid", json_integer(d->uid));
		json_object_set_new(out, "helper", json_boolean(d->helper));
		return 0;
	case PRIVD_NET_UP:
		return op_net_up(d, q, out, fds, nfds, err, en);
	case PRIVD_NET_DOWN:
		return op_net_down(d, q, err, en);
	case PRIVD_ATTACH:
		return op_attach(d, q, err, en);
	case PRIVD_GC:
		return op_gc(d, q, out, err, en);
	case PRIVD_INSPECT:
		return op_inspect(d, q, out, err, en);
	case PRIVD_MOUNT:
		return op_mount(d, q, out, err, en);
	case PRIVD_UNMOUNT:
		return op_unmount(d, q, err, en);
	case PRIVD_USERNS_MAP:
		return privd_userns_map(d, q, err, en);
	case PRIVD_WG_UP:
	case PRIVD_WG_FIX:
	case PRIVD_WG_DOWN:
	case PRIVD_WG_GET:
		return privd_wg_run(d, q, out, fds, nfds, err, en);
	}
	return privd_err(err, en, -EINVAL, "unknown operation");
}
