// SPDX-License-Identifier: MIT
/*
 * The WireGuard extension: a project's wireguard.conf turned into one
 * tunnel per VM that the VM's traffic leaves by, or does not leave at all.
 * See net/wg_sv.h for the pieces and their order, net/wg.h for the tunnel
 * operations, net/nft.c ("WireGuard kill switch") for the rules.
 *
 * Threat: the guest is hostile and root inside; it may try any address,
 * any port, any DNS server.  What it can not change is where its packets
 * are routed and filtered on the host: a mark set on its tap and a source
 * rule both pick its table, whose only ways out are the wg link and an
 * `unreachable` route; and nftables drops whatever of its traffic would
 * leave by another interface.  Either defence alone keeps the traffic in
 * the tunnel; a deleted or downed link, a silent peer, a flushed rule set
 * or rule list each remove at most one of them.
 */
#include "net/wg_sv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "net/net.h"
#include "net/nl.h"
#include "net/priv.h"
#include "net/tap.h"
#include "net/wg.h"
#include "net/wg_conf.h"
#include "net/wg_rt.h"
#include "src/ext.h"
#include "src/log.h"
#include "src/proc.h"
#include "src/state.h"
#include "src/util.h"

#define WG_TICK_MS         1000
#define WG_HEALTH_EVERY    2		/* ticks between reads of the peer's counters */
#define WG_BACKOFF_MIN_MS  2000
#define WG_BACKOFF_MAX_MS  60000
#define WG_STABLE_MS       60000	/* up this long: the back-off starts over */
#define WG_SILENT_MS       25000	/* keepalive 10 s + rekey 5 s, and margin */
#define WG_SILENT_TX       2048		/* more than keepalives and handshakes send in that time */
#define WG_CONNECT_MS      30000
#define WG_REJECT_AFTER_S  180		/* WireGuard's REJECT_AFTER_TIME */

/** struct wg_priv - one VM's tunnel, owned by its supervisor */
struct wg_priv {
	struct sv_ctx *c;
	struct wg_conf conf;
	struct wg_spec spec;
	struct wg_link link;
	char id[NFT_ID_MAX];
	int ev_fd, timer_fd, pid_watched;
	/* health */
	char status[16];
	bool lost;		/* deleted, down or daemon gone: restore pending */
	uint64_t restore_at, backoff_ms, up_ms, start_ms, last_rx_ms;
	uint64_t rx, tx_at_rx;
	unsigned ticks;
};

/* ---- state ------------------------------------------------------------ */

static json_t *wg_state(json_t *state)
{
	json_t *wg = json_object_get(state, "wg");

	if (!json_is_object(wg)) {
		wg = json_object();
		if (!wg || json_object_set_new(state, "wg", wg))
			return NULL;
	}
	return wg;
}

/* a new status: logged, written to state.json (only on change) */
static void wg_set_status(struct wg_priv *p, const char *status, const char *reason)
{
	json_t *wg = wg_state(p->c->state);

	if (!strcmp(p->status, status))
		return;
	util_snprintf(p->status, sizeof(p->status), "%s", status);
	if (!strcmp(status, "up"))
		p->up_ms = util_monotonic_ms();
	if (!wg)
		return;
	json_object_set_new(wg, "status", json_string(status));
	json_object_set_new(wg, "since", json_integer((json_int_t)time(NULL)));
	if (reason)
		json_object_set_new(wg, "reason", json_string(reason));
	else
		json_object_del(wg, "reason");
	if (!strcmp(status, "down"))
		json_object_set_new(wg, "downs", json_integer(state_get_int(wg, "downs", 0) + 1));
	if (sv_state_save(p->c))
		log_warn("wireguard: could not save state.json");
	if (!strcmp(status, "down"))
		log_warn("wireguard: %s is down: %s; the guest's traffic stays cut (kill switch): "
			 "nothing of it leaves by another interface", p->spec.ifname, reason ? reason : "?");
	else
		log_info("wireguard: %s is %s%s%s", p->spec.ifname, status, reason ? ": " : "",
			 reason ? reason : "");
}

/* ---- checks shared by up, prepare and check-config -------------------- */

static int wg_vm_allowed(const struct cfg_vm *vm, const char *where)
{
	if (vm->network.mode != CFG_NET_NAT) {
		log_err("%s: wireguard.conf needs network mode nat: VM '%s' uses mode %s, which "
			"cannot route the guest through a tunnel (set network.mode: nat)", where,
			vm->name, vm->network.mode == CFG_NET_USER ? "user" : "none");
		return -EINVAL;
	}
	if (vm->network.ipv6) {
		log_err("%s: wireguard.conf with network.ipv6: true is not supported: the tunnel "
			"carries the guest's IPv4 only, and IPv6 would leave outside it", where);
		return -EINVAL;
	}
	return 0;
}

/* ---- the nft part (called by net/) ------------------------------------ */

int wg_nft_vm(const char *project_dir, json_t *state, struct nft_wg *out)
{
	json_t *wg = json_object_get(state, "wg");
	const char *ifname, *id, *dns;
	char want[IFNAMSIZ];
	long long table;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(wg) || !state_get_str(wg, "ifname")) {
		if (project_dir && wg_conf_present(project_dir)) {
			log_err("wireguard: the project has a wireguard.conf but no tunnel is up: not "
				"starting the VM without its kill switch");
			return -ENOLINK;
		}
		return 0;
	}
	ifname = state_get_str(wg, "ifname");
	id = state_get_str(wg, "id");
	table = state_get_int(wg, "table", 0);
	dns = state_get_str(wg, "dns");
	if (!id || wg_ifname(id, want, sizeof(want)) || strcmp(want, ifname) ||
	    table < WG_TABLE_MIN || table > WG_TABLE_MAX)
		return -EINVAL;
	memcpy(out->ifname, want, strlen(want) + 1);
	out->mark = (uint32_t)table;
	if (dns && inet_pton(AF_INET, dns, &out->dns) != 1)
		return -EINVAL;
	return 0;
}

/* ---- watching --------------------------------------------------------- */

static void wg_lost(struct wg_priv *p, const char *why)
{
	char r[160];

	if (p->lost)
		return;
	p->lost = true;
	p->restore_at = util_monotonic_ms() + p->backoff_ms;
	util_snprintf(r, sizeof(r), "%s (restoring in %" PRIu64 " s)", why, p->backoff_ms / 1000);
	wg_set_status(p, "down", r);
}

static void wg_unwatch_pid(struct wg_priv *p)
{
	if (p->pid_watched) {
		sv_unwatch_fd(p->c, p->link.pidfd);
		p->pid_watched = 0;
	}
}

static void wg_on_daemon(struct sv_ctx *c, int fd, void *arg)
{
	struct wg_priv *p = arg;
	int st = 0;

	(void)c;
	(void)fd;
	wg_unwatch_pid(p);
	if (p->link.pid > 0 && waitpid(p->link.pid, &st, WNOHANG) > 0)
		log_warn("wireguard: wireguard-go for %s exited (%s %d)", p->spec.ifname,
			 WIFSIGNALED(st) ? "signal" : "status", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
	close(p->link.pidfd);
	p->link.pidfd = -1;
	p->link.pid = 0;
	wg_lost(p, "wireguard-go exited");
}

/*
 * A route of the VM's table or a rule to it was deleted (`ip route flush
 * table all`, a network manager): the unreachable route or the other rule
 * held; put everything back at once.  Adding what exists is a no-op, so our
 * own repairs do not wake us again.
 */
static void wg_table_repair(struct wg_priv *p)
{
	struct priv_wg w;
	int rc;

	if (!p->lost && wg_rt_has_default(p->spec.table, p->link.ifindex) == 0)
		log_warn("wireguard: the route through %s was removed; restoring it", p->spec.ifname);
	rc = priv_wg_fix(p->id, WG_FIX_RULES, NULL, NULL, &w);
	if (rc)
		log_warno(rc, "wireguard: repairing the routing of %s", p->spec.ifname);
}

/* the link, its table or a rule changed: look at how things are now */
static void wg_on_link(struct sv_ctx *c, int fd, void *arg)
{
	struct wg_priv *p = arg;
	unsigned ev = 0;
	int rc, st;

	(void)c;
	rc = wg_rt_watch_read(fd, p->spec.ifname, p->spec.table, &ev);
	if (rc == -ENOBUFS)
		ev = WG_EV_LINK | WG_EV_TABLE;	/* events lost: check everything */
	else if (rc)
		log_warno(rc, "wireguard: reading link events");
	if (ev & WG_EV_LINK) {
		st = wg_rt_link_state(p->spec.ifname);
		if (st == WG_LINK_GONE)
			wg_lost(p, "the link was deleted");
		else if (st == WG_LINK_DOWN)
			wg_lost(p, "the link was set down");
		else if (st == WG_LINK_UP && p->lost)
			p->restore_at = util_monotonic_ms();	/* set up again by someone: route it now */
	}
	if (ev & WG_EV_TABLE)
		wg_table_repair(p);
}

static int wg_watch_pid(struct wg_priv *p)
{
	int rc;

	if (p->link.pidfd < 0 || p->pid_watched)
		return 0;
	rc = sv_watch_fd(p->c, p->link.pidfd, wg_on_daemon, p);
	if (!rc)
		p->pid_watched = 1;
	return rc;
}

/* wireguard-go as the user on the tun and socket the privileged side made */
static int wg_go_start(struct wg_priv *p, int fds[2])
{
	int rc = wg_go_run(&p->spec, fds, &p->link);

	close(fds[0]);
	close(fds[1]);
	return rc;
}

static void wg_go_stop(struct wg_priv *p)
{
	if (p->link.pid > 0)
		wg_go_kill(p->link.pid, p->spec.ifname);
	if (p->link.pidfd >= 0)
		close(p->link.pidfd);
	p->link.pidfd = -1;
	p->link.pid = 0;
}

static void wg_try_restore(struct wg_priv *p, uint64_t now)
{
	enum wg_fix how = WG_FIX_RELINK;
	struct priv_wg w;
	json_t *wg;
	int rc;

	wg_unwatch_pid(p);
	/* still there (set down, or its route removed): up and routed again; else made anew */
	if (wg_rt_link_state(p->spec.ifname) != WG_LINK_GONE &&
	    (p->link.impl == WG_IMPL_KERNEL || (p->link.pid > 0 && kill(p->link.pid, 0) == 0)))
		how = WG_FIX_LINK;
	else
		wg_go_stop(p);
	rc = priv_wg_fix(p->id, how, &p->conf, &p->spec.endpoint, &w);
	if (!rc) {
		p->link.impl = w.impl;
		p->link.ifindex = w.ifindex;
		if (w.go_fds[0] >= 0)
			rc = wg_go_start(p, w.go_fds);
	}
	if (!rc)
		rc = wg_watch_pid(p);
	p->backoff_ms = p->backoff_ms * 2 > WG_BACKOFF_MAX_MS ? WG_BACKOFF_MAX_MS : p->backoff_ms * 2;
	if (rc) {
		log_warno(rc, "wireguard: restoring %s failed; next try in %" PRIu64 " s", p->spec.ifname,
			  p->backoff_ms / 1000);
		p->restore_at = now + p->backoff_ms;
		return;
	}
	p->lost = false;
	p->start_ms = p->last_rx_ms = now;
	p->rx = p->tx_at_rx = 0;
	wg = wg_state(p->c->state);
	if (wg) {
		json_object_set_new(wg, "restores", json_integer(state_get_int(wg, "restores", 0) + 1));
		json_object_set_new(wg, "impl", json_string(wg_impl_name(p->link.impl)));
		if (p->link.pid > 0)
			json_object_set_new(wg, "pid", json_integer(p->link.pid));
		else
			json_object_del(wg, "pid");
	}
	log_info("wireguard: %s restored (%s)", p->spec.ifname, wg_impl_name(p->link.impl));
	wg_set_status(p, "connecting", "restored, waiting for a handshake");
}

/*
 * The peer's counters: wireguard-go's over our UAPI socket, the kernel's
 * through the privileged side.  @st, when given, gets that side's answer
 * too (the kill switch's drop counters, for `hutch wg`), asked once.
 */
static int wg_live_read(const struct wg_link *l, const char *id, const char *ifname,
			struct wg_live *out, struct priv_wg_stat *st)
{
	struct priv_wg_stat mine;
	int rc = -ENOENT;

	if (l->impl == WG_IMPL_KERNEL || st) {
		if (!st)
			st = &mine;
		memset(st, 0, sizeof(*st));
		if (id)
			rc = priv_wg_get(id, st);
	}
	if (l->impl != WG_IMPL_KERNEL)
		return wg_get(l, ifname, out);
	if (rc)
		return rc;
	if (!st->has_live)
		return -ENODEV;
	*out = st->live;
	return 0;
}

/*
 * The peer's health from its counters.  A live peer answers data within
 * 10 s (WireGuard's passive keepalive), so: more sent since the last byte
 * received than keepalives and handshake retries explain, and nothing
 * received for WG_SILENT_MS, means it stopped answering.
 */
static void wg_health(struct wg_priv *p, uint64_t now)
{
	struct wg_live l = { 0 };
	int64_t age;

	if (p->lost || wg_live_read(&p->link, p->id, p->spec.ifname, &l, NULL))
		return;
	if (l.rx != p->rx || l.rx < p->rx) {
		p->rx = l.rx;
		p->tx_at_rx = l.tx;
		p->last_rx_ms = now;
	}
	age = l.handshake ? (int64_t)time(NULL) - l.handshake : -1;
	if (l.tx > p->tx_at_rx + WG_SILENT_TX && now - p->last_rx_ms >= WG_SILENT_MS)
		wg_set_status(p, "down", "the peer stopped answering (the guest sends, nothing comes back)");
	else if (age < 0)
		wg_set_status(p, now - p->start_ms >= WG_CONNECT_MS ? "down" : "connecting",
			      now - p->start_ms >= WG_CONNECT_MS ? "no handshake with the peer" : NULL);
	else if (age <= WG_REJECT_AFTER_S)
		wg_set_status(p, "up", NULL);
	else if (l.keepalive)
		wg_set_status(p, "down", "no handshake for 3 minutes despite keepalives");
	else
		wg_set_status(p, "idle", "no traffic: the session expired");
	if (!strcmp(p->status, "up") && now - p->up_ms >= WG_STABLE_MS)
		p->backoff_ms = WG_BACKOFF_MIN_MS;
}

static void wg_on_timer(struct sv_ctx *c, int fd, void *arg)
{
	struct wg_priv *p = arg;
	uint64_t now = util_monotonic_ms(), exp;

	(void)c;
	if (read(fd, &exp, sizeof(exp)) < 0)
		return;
	if (p->lost && now >= p->restore_at)
		wg_try_restore(p, now);
	if (++p->ticks % WG_HEALTH_EVERY == 0)
		wg_health(p, now);
}

static void wg_watch_stop(struct wg_priv *p)
{
	wg_unwatch_pid(p);
	if (p->ev_fd >= 0) {
		sv_unwatch_fd(p->c, p->ev_fd);
		close(p->ev_fd);
		p->ev_fd = -1;
	}
	if (p->timer_fd >= 0) {
		sv_unwatch_fd(p->c, p->timer_fd);
		close(p->timer_fd);
		p->timer_fd = -1;
	}
}

static int wg_watch_start(struct wg_priv *p)
{
	struct itimerspec its = { .it_interval = { WG_TICK_MS / 1000, 0 }, .it_value = { WG_TICK_MS / 1000, 0 } };
	int rc;

	p->ev_fd = wg_rt_watch_open();
	if (p->ev_fd < 0)
		return p->ev_fd;
	if ((rc = sv_watch_fd(p->c, p->ev_fd, wg_on_link, p))) {
		close(p->ev_fd);
		p->ev_fd = -1;
		return rc;
	}
	p->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (p->timer_fd < 0)
		return -errno;
	rc = timerfd_settime(p->timer_fd, 0, &its, NULL) < 0 ? -errno : 0;
	if (!rc)
		rc = sv_watch_fd(p->c, p->timer_fd, wg_on_timer, p);
	if (rc) {
		close(p->timer_fd);
		p->timer_fd = -1;
		return rc;
	}
	return wg_watch_pid(p);
}

/* ---- the supervisor extension ----------------------------------------- */

/* state "wg": what gc needs, as soon as the tunnel exists; then what it is */
static int wg_record(struct wg_priv *p, bool up)
{
	json_t *wg = wg_state(p->c->state);
	char ep[80], key[WG_KEY_B64_LEN + 1], dns[INET_ADDRSTRLEN];

	if (!wg)
		return -ENOMEM;
	if (!up) {
		json_object_clear(wg);
		json_object_set_new(wg, "id", json_string(p->id));
		json_object_set_new(wg, "ifname", json_string(p->spec.ifname));
		json_object_set_new(wg, "table", json_integer(p->spec.table));
		json_object_set_new(wg, "status", json_string("starting"));
		return sv_state_save(p->c);
	}
	wg_sockaddr_str(&p->spec.endpoint, ep, sizeof(ep));
	wg_key_to_base64(p->conf.peer.public_key, key);
	json_object_set_new(wg, "impl", json_string(wg_impl_name(p->link.impl)));
	if (p->link.pid > 0)
		json_object_set_new(wg, "pid", json_integer(p->link.pid));
	json_object_set_new(wg, "endpoint", json_string(ep));
	json_object_set_new(wg, "peer", json_string(key));
	if (wg_conf_dns_v4(&p->conf) && inet_ntop(AF_INET, wg_conf_dns_v4(&p->conf)->addr, dns, sizeof(dns)))
		json_object_set_new(wg, "dns", json_string(dns));
	return sv_state_save(p->c);
}

static int wg_prepare(struct sv_ctx *c, void **privp)
{
	struct wg_conf_error e;
	struct wg_priv *p;
	struct priv_wg w;
	int rc;

	*privp = NULL;
	if (!wg_conf_present(c->project_dir)) {
		json_object_del(c->state, "wg");
		return 0;
	}
	if ((rc = wg_vm_allowed(c->vm, "wireguard")))
		return rc;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->c = c;
	p->ev_fd = p->timer_fd = p->link.pidfd = -1;
	p->backoff_ms = WG_BACKOFF_MIN_MS;
	p->start_ms = p->last_rx_ms = util_monotonic_ms();
	if ((rc = wg_conf_load(c->project_dir, &p->conf, &e))) {
		log_err("%s", e.msg[0] ? e.msg : "wireguard.conf: cannot read it");
		goto err_free;
	}
	p->spec.conf = &p->conf;
	if ((rc = wg_endpoint_resolve(&p->conf, &p->spec.endpoint, &p->spec.endpoint_len)) ||
	    (rc = priv_wg_up(c->vm->name, &p->conf, &p->spec.endpoint, &w)))
		goto err_free;
	memcpy(p->id, w.id, sizeof(p->id));
	memcpy(p->spec.ifname, w.ifname, sizeof(p->spec.ifname));
	p->spec.table = w.table;
	p->link.impl = w.impl;
	p->link.ifindex = w.ifindex;
	if ((rc = wg_record(p, false)))
		goto err_down;
	if (w.go_fds[0] >= 0 && (rc = wg_go_start(p, w.go_fds)))
		goto err_down;
	if ((rc = wg_record(p, true)) || (rc = wg_watch_start(p)))
		goto err_down;
	log_info("wireguard: %s up through %s, table and fwmark 0x%x", p->spec.ifname,
		 wg_impl_name(p->link.impl), p->spec.table);
	util_snprintf(p->status, sizeof(p->status), "starting");
	wg_set_status(p, "connecting", NULL);
	*privp = p;
	return 0;

err_down:
	wg_watch_stop(p);
	wg_go_stop(p);
	priv_wg_down(p->id);
	json_object_del(c->state, "wg");
	sv_state_save(c);
err_free:
	wg_conf_wipe(&p->conf);
	free(p);
	return rc;
}

static void wg_teardown(struct sv_ctx *c, void *priv)
{
	struct wg_priv *p = priv;
	json_t *wg;
	int rc;

	if (!p)
		return;
	wg_watch_stop(p);
	wg_go_stop(p);
	rc = priv_wg_down(p->id);
	if (rc)
		log_warno(rc, "wireguard: removing %s", p->spec.ifname);
	wg = json_object_get(c->state, "wg");
	if (json_is_object(wg)) {
		json_object_set_new(wg, "status", json_string("stopped"));
		json_object_del(wg, "pid");
		json_object_del(wg, "reason");
		sv_state_save(c);
	}
	wg_conf_wipe(&p->conf);
	free(p);
}

/*
 * Supervisor gone: its wireguard-go (ours, by name) stopped; the link, its
 * socket, rules and table go with the privileged side's entry.
 */
static int wg_gc(const char *vm_dir, json_t *state)
{
	json_t *wg = json_object_get(state, "wg");
	const char *id, *ifname;
	char want[IFNAMSIZ];
	long long pid;
	int rc;

	if (!json_is_object(wg))
		return 0;
	id = state_get_str(wg, "id");
	ifname = state_get_str(wg, "ifname");
	pid = state_get_int(wg, "pid", 0);
	(void)vm_dir;
	if (!id || !ifname || wg_ifname(id, want, sizeof(want)) || strcmp(want, ifname))
		return 0;
	if (pid > 1 && pid < 0x7fffffff && wg_go_kill((pid_t)pid, want) > 0)
		log_info("gc: stopped wireguard-go %lld of %s", pid, want);
	rc = priv_wg_down(id);
	json_object_set_new(wg, "status", json_string("stopped"));
	json_object_del(wg, "pid");
	return rc;
}

static int wg_inspect(const char *vm_dir, json_t *state, FILE *out, json_t *json)
{
	json_t *st;

	(void)vm_dir;
	st = wg_status_json(state, true);
	if (!st)
		return 0;
	if (json)
		return json_object_set_new(json, "wg", st) ? -ENOMEM : 0;
	if (out) {
		fprintf(out, "wireguard:\n");
		wg_status_print(out, st);
	}
	json_decref(st);
	return 0;
}

const struct sv_ext wg_sv_ext = {
	.name = "wg",
	.prepare = wg_prepare,
	.teardown = wg_teardown,
	.gc = wg_gc,
	.inspect = wg_inspect,
};

/* ---- the CLI side ----------------------------------------------------- */

/* `up`: everything that can be checked before a supervisor starts */
static int wg_before_up(struct up_ctx *u)
{
	struct sockaddr_storage ss;
	struct wg_conf_error e;
	struct wg_conf conf;
	socklen_t len;
	char exe[4096];
	uint16_t fam;
	int rc;

	if (!wg_conf_present(u->cfg->dir))
		return 0;
	if ((rc = wg_vm_allowed(u->vm, u->cfg->path)))
		return rc;
	if ((rc = wg_conf_load(u->cfg->dir, &conf, &e))) {
		log_err("%s", e.msg[0] ? e.msg : "wireguard.conf: cannot read it");
		return rc;
	}
	if (!wg_conf_dns_v4(&conf))
		log_warn("wireguard.conf has no IPv4 DNS: the guest's DNS queries to the gateway are "
			 "dropped (they would leave outside the tunnel)");
	if (!wg_conf_covers_default(&conf))
		log_warn("wireguard.conf: AllowedIPs does not hold 0.0.0.0/0: guest traffic to other "
			 "addresses is dropped, never sent outside the tunnel");
	rc = wg_endpoint_resolve(&conf, &ss, &len);
	wg_conf_wipe(&conf);
	if (rc)
		return rc;
	if (wg_genl_family(&fam) && proc_find_exe("wireguard-go", NULL, exe, sizeof(exe))) {
		log_err("wireguard.conf: this host has neither the kernel's WireGuard module nor "
			"wireguard-go: install one (apt install wireguard-go)");
		return -ENOENT;
	}
	return 0;
}

const struct up_ext wg_up_ext = {
	.name = "wg",
	.before_up = wg_before_up,
};

int wg_check_config(const struct cfg *c, FILE *out, json_t *json)
{
	struct wg_conf_error e;
	struct wg_conf conf;
	int rc;

	if (!wg_conf_present(c->dir))
		return 0;
	for (size_t i = 0; i < c->n_vms; i++)
		if ((rc = wg_vm_allowed(&c->vms[i], c->path)))
			return rc;
	if ((rc = wg_conf_load(c->dir, &conf, &e))) {
		log_err("%s", e.msg[0] ? e.msg : "wireguard.conf: cannot read it");
		return rc;
	}
	if (json)
		rc = json_object_set_new(json, "wireguard", wg_conf_to_json(&conf)) ? -ENOMEM : 0;
	else if (out)
		rc = wg_conf_print(out, &conf);
	wg_conf_wipe(&conf);
	return rc;
}

/* ---- hutch wg --------------------------------------------------------- */

static void wg_live_json(json_t *o, json_t *wg, const char *ifname, const char *impl)
{
	struct wg_link lk = { .pidfd = -1 };
	struct priv_wg_stat st = { 0 };
	struct wg_live l = { 0 };
	const char *id = state_get_str(wg, "id");
	char ep[80], key[WG_KEY_B64_LEN + 1];
	int rc;

	lk.impl = !strcmp(impl, "kernel") ? WG_IMPL_KERNEL : !strcmp(impl, "wireguard-go") ? WG_IMPL_GO :
		  WG_IMPL_NONE;
	if (wg_uapi_path(ifname, lk.uapi, sizeof(lk.uapi)))
		lk.uapi[0] = 0;
	/* the kill switch's counters (and a kernel tunnel's) come from the privileged side */
	rc = wg_live_read(&lk, id, ifname, &l, &st);
	if (rc) {
		json_object_set_new(o, "live_error", json_string(strerror(-rc)));
	} else {
		if (l.has_peer) {
			wg_key_to_base64(l.peer_key, key);
			json_object_set_new(o, "peer", json_string(key));
		}
		if (l.endpoint.ss_family && !wg_sockaddr_str(&l.endpoint, ep, sizeof(ep)))
			json_object_set_new(o, "endpoint", json_string(ep));
		json_object_set_new(o, "latest_handshake", json_integer(l.handshake));
		if (l.handshake)
			json_object_set_new(o, "handshake_age_s",
					    json_integer((json_int_t)time(NULL) - l.handshake));
		json_object_set_new(o, "rx_bytes", json_integer((json_int_t)l.rx));
		json_object_set_new(o, "tx_bytes", json_integer((json_int_t)l.tx));
		json_object_set_new(o, "persistent_keepalive", json_integer(l.keepalive));
	}
	if (st.has_drops)
		json_object_set_new(o, "killswitch", json_pack("{s:I, s:I}", "dropped_packets",
							       (json_int_t)st.drop_pkts, "dropped_bytes",
							       (json_int_t)st.drop_bytes));
}

json_t *wg_status_json(json_t *state, bool live)
{
	json_t *wg = json_object_get(state, "wg"), *o;
	const char *ifname = state_get_str(wg, "ifname"), *impl = state_get_str(wg, "impl");
	long long table = state_get_int(wg, "table", 0);
	static const char *const keys[] = { "status", "reason", "peer", "endpoint", "dns" };
	char mark[16];

	if (!json_is_object(wg) || !ifname)
		return NULL;
	util_snprintf(mark, sizeof(mark), "0x%llx", (unsigned long long)table);
	o = json_pack("{s:s, s:s, s:I, s:s}", "interface", ifname, "implementation",
		      impl ? impl : "none", "table", (json_int_t)table, "fwmark", mark);
	if (!o)
		return NULL;
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(keys); i++)
		if (state_get_str(wg, keys[i]))
			json_object_set_new(o, keys[i], json_string(state_get_str(wg, keys[i])));
	json_object_set_new(o, "since", json_integer(state_get_int(wg, "since", 0)));
	json_object_set_new(o, "downs", json_integer(state_get_int(wg, "downs", 0)));
	json_object_set_new(o, "restores", json_integer(state_get_int(wg, "restores", 0)));
	if (live && impl)
		wg_live_json(o, wg, ifname, impl);
	return o;
}

void wg_status_print(FILE *out, json_t *st)
{
	static const char *const keys[] = { "interface", "implementation", "status", "reason", "peer",
					    "endpoint", "dns", "fwmark" };
	json_t *ks = json_object_get(st, "killswitch");
	long long hs = state_get_int(st, "latest_handshake", 0);

	for (size_t i = 0; i < UTIL_ARRAY_SIZE(keys); i++) {
		const char *v = state_get_str(st, keys[i]);
		char esc[160];

		if (v)
			fprintf(out, "  %-17s %s\n", keys[i], log_escape(esc, sizeof(esc), v, strlen(v)));
	}
	if (json_object_get(st, "latest_handshake")) {
		if (hs > 0)
			fprintf(out, "  %-17s %lld s ago\n", "latest handshake",
				state_get_int(st, "handshake_age_s", 0));
		else
			fprintf(out, "  %-17s never\n", "latest handshake");
		fprintf(out, "  %-17s %lld received, %lld sent\n", "bytes", state_get_int(st, "rx_bytes", 0),
			state_get_int(st, "tx_bytes", 0));
	}
	if (state_get_str(st, "live_error"))
		fprintf(out, "  %-17s %s\n", "tunnel", state_get_str(st, "live_error"));
	if (json_is_object(ks))
		fprintf(out, "  %-17s %lld packets, %lld bytes dropped\n", "kill switch",
			state_get_int(ks, "dropped_packets", 0), state_get_int(ks, "dropped_bytes", 0));
	fprintf(out, "  %-17s %lld down, %lld restored\n", "events", state_get_int(st, "downs", 0),
		state_get_int(st, "restores", 0));
}
