// SPDX-License-Identifier: MIT
/*
 * The caller's side of the seam (net/priv.h): encode a request, hand it to
 * the privileged side in this process (root) or to hutch-helper over a
 * SOCK_SEQPACKET socketpair, and decode the reply and the fds it carries.
 * One connection per process, opened on first use.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "net/priv.h"
#include "net/privd.h"
#include "net/wg_rt.h"
#include "src/log.h"
#include "src/proc.h"
#include "src/util.h"

#ifndef HUTCH_LIBEXECDIR
#define HUTCH_LIBEXECDIR "/usr/local/libexec/hutch"
#endif

#define PRIV_TIMEOUT_MS 120000	/* a request may wait for the network lock */
#define PRIV_SETUP_HINT "run 'sudo hutch setup' once (as root), then log in again"

static struct {
	struct privd *d;	/* in-process (root) */
	int sock;		/* to hutch-helper */
	pid_t pid;
} P = { .sock = -1 };

static void priv_helper_path(char *buf, size_t n)
{
	const char *e = getenv("HUTCH_HELPER");

	if (!e || !*e || util_snprintf(buf, n, "%s", e))
		util_snprintf(buf, n, "%s/hutch-helper", HUTCH_LIBEXECDIR);
}

static void priv_drop_helper(void)
{
	if (P.sock >= 0)
		close(P.sock);
	P.sock = -1;
	if (P.pid > 0) {
		/* it exits on EOF; reap it if it did, else its exit is reaped by init */
		for (int i = 0; i < 50 && waitpid(P.pid, NULL, WNOHANG) == 0; i++)
			usleep(2000);
	}
	P.pid = 0;
}

static int priv_spawn(void)
{
	char path[PATH_MAX];
	const char *argv[2] = { path, NULL };
	static const char *const envp[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL };
	struct proc_fdmap fds[2];
	struct proc_opts o = { .argv = argv, .envp = envp, .fds = fds, .n_fds = 2 };
	int sv[2], rc;

	priv_helper_path(path, sizeof(path));
	if (access(path, X_OK) < 0) {
		rc = -errno;
		if (rc == -EACCES)
			log_err("%s: permission denied: you are not in the 'hutch' group yet; %s",
				path, PRIV_SETUP_HINT);
		else
			log_err("%s: %s: hutch-helper is not installed; %s", path, strerror(-rc),
				PRIV_SETUP_HINT);
		return -ENOPKG;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	fds[0] = (struct proc_fdmap){ sv[1], 3 };
	fds[1] = (struct proc_fdmap){ STDERR_FILENO, STDERR_FILENO };
	rc = proc_spawn(&o, &P.pid, NULL);
	close(sv[1]);
	if (rc) {
		close(sv[0]);
		log_errno(rc, "starting %s", path);
		return rc == -EACCES || rc == -ENOENT ? -ENOPKG : rc;
	}
	P.sock = sv[0];
	return 0;
}

static int priv_connect(void)
{
	int rc;

	if (P.d || P.sock >= 0)
		return 0;
	if (geteuid() != 0)
		return priv_spawn();
	P.d = calloc(1, sizeof(*P.d));
	if (!P.d)
		return -ENOMEM;
	rc = privd_init_inproc(P.d);
	if (rc) {
		privd_close(P.d);
		free(P.d);
		P.d = NULL;
	}
	return rc;
}

static void priv_take_fds(struct msghdr *mh, int *fds, size_t max, size_t *nfds)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		size_t k;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (*nfds < max)
				fds[(*nfds)++] = fd;
			else
				close(fd);
		}
	}
}

/* one request out, one reply (and its fds) back; the helper never sends unasked */
static int priv_xfer(const char *req, size_t len, char *buf, size_t *blen, int *fds,
		     size_t *nfds)
{
	union {
		char c[CMSG_SPACE(3 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { buf, *blen };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.c,
			     .msg_controllen = sizeof(u.c) };
	struct pollfd p = { .fd = P.sock, .events = POLLIN };
	ssize_t r;
	int rc;

	for (int attempt = 0;; attempt++) {
		if ((rc = priv_connect()))
			return rc;
		r = send(P.sock, req, len, MSG_NOSIGNAL);
		if (r == (ssize_t)len)
			break;
		rc = r < 0 ? -errno : -EIO;
		priv_drop_helper();
		/* the helper died before it read anything: a new one may take it */
		if (attempt == 1 || (rc != -EPIPE && rc != -ECONNRESET))
			return rc;
	}
	p.fd = P.sock;
	rc = poll(&p, 1, PRIV_TIMEOUT_MS);
	if (rc <= 0) {
		priv_drop_helper();
		return rc == 0 ? -ETIMEDOUT : -errno;
	}
	r = recvmsg(P.sock, &mh, MSG_CMSG_CLOEXEC);
	if (r <= 0) {
		rc = r == 0 ? -ECONNRESET : -errno;
		priv_drop_helper();
		log_err("hutch-helper went away during a request");
		return rc;
	}
	priv_take_fds(&mh, fds, 3, nfds);
	if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
		return -EPROTO;
	*blen = (size_t)r;
	return 0;
}

static void priv_close_fds(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
}

/*
 * Send @req (consumed), get the reply object; on {"ok": false} the
 * privileged side's message is logged and its errno returned.
 */
static int priv_call(json_t *req, json_t **reply, int fds[3], size_t *nfds)
{
	char *text = req ? json_dumps(req, JSON_COMPACT) : NULL, *buf = NULL;
	size_t blen = PRIV_REPLY_MAX;
	json_t *rep = NULL;
	int rc;

	json_decref(req);
	*nfds = 0;
	if (!text)
		return -ENOMEM;
	if ((rc = priv_connect()))
		goto out;
	if (P.d) {
		privd_handle(P.d, text, strlen(text), &rep, fds, nfds);
	} else {
		buf = malloc(blen);
		if (!buf) {
			rc = -ENOMEM;
			goto out;
		}
		if ((rc = priv_xfer(text, strlen(text), buf, &blen, fds, nfds)))
			goto out;
		rep = json_loadb(buf, blen, 0, NULL);
	}
	if (!json_is_object(rep)) {
		rc = -EPROTO;
		goto out;
	}
	if (!json_is_true(json_object_get(rep, "ok"))) {
		json_int_t e = json_integer_value(json_object_get(rep, "errno"));
		const char *msg = json_string_value(json_object_get(rep, "error"));
		char esc[512];

		rc = e > 0 && e < 4096 ? -(int)e : -EIO;
		log_err("%s", msg ? log_escape(esc, sizeof(esc), msg, strlen(msg)) : strerror(-rc));
		goto out;
	}
	*reply = rep;
	rep = NULL;
out:
	if (rc) {
		priv_close_fds(fds, *nfds);
		*nfds = 0;
	}
	json_decref(rep);
	free(buf);
	free(text);
	return rc;
}

static int priv_simple(json_t *req, json_t **keep)
{
	json_t *rep = NULL;
	int fds[3];
	size_t n = 0;
	int rc = priv_call(req, &rep, fds, &n);

	priv_close_fds(fds, n);
	if (keep)
		*keep = rep;
	else
		json_decref(rep);
	return rc;
}

int priv_ping(void)
{
	return priv_simple(json_pack("{s:s}", "op", "ping"), NULL);
}

int priv_check(void)
{
	int rc;

	if (geteuid() == 0)
		return 0;
	rc = priv_ping();
	if (rc == -ENOPKG)
		return rc;
	if (rc)
		log_err("hutch-helper does not answer (%s); %s", strerror(-rc), PRIV_SETUP_HINT);
	return rc ? -ENOPKG : 0;
}

static json_t *priv_ha_json(const struct priv_net_req *q)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < q->n_ha; i++) {
		const struct cfg_host_access *h = &q->ha[i];
		char s[INET_ADDRSTRLEN];

		if (h->kind == CFG_HA_LAN_HOST)
			json_array_append_new(a, json_pack("{s:s}", "lan",
							   inet_ntop(AF_INET, &h->addr, s, sizeof(s))));
		else
			json_array_append_new(a, json_pack("{s:s, s:i}", "proto",
							   h->proto == CFG_PROTO_UDP ? "udp" : "tcp",
							   "port", (int)h->port));
	}
	return a;
}

static int priv_net_reply(json_t *rep, const int *fds, size_t nfds, bool dns,
			  struct priv_net *out)
{
	const char *id = json_string_value(json_object_get(rep, "id"));
	const char *tap = json_string_value(json_object_get(rep, "tap"));
	const char *a = json_string_value(json_object_get(rep, "addr"));
	const char *m = json_string_value(json_object_get(rep, "mac"));
	const char *g = json_string_value(json_object_get(rep, "gw_mac"));
	json_int_t ifi = json_integer_value(json_object_get(rep, "ifindex"));
	struct priv_net n = { 0 };

	if (nfds != (dns ? 3u : 2u) || !id || !tap || !a || !m || !g || ifi <= 0 || ifi > INT_MAX ||
	    util_snprintf(n.id, sizeof(n.id), "%s", id) ||
	    util_snprintf(n.tap, sizeof(n.tap), "%s", tap) || inet_pton(AF_INET, a, &n.addr) != 1 ||
	    net_mac_parse(m, n.mac) || net_mac_parse(g, n.gw_mac))
		return -EPROTO;
	n.ifindex = (int)ifi;
	n.tap_fd = fds[0];
	n.dhcp_fd = fds[1];
	n.dns_fd = dns ? fds[2] : -1;
	*out = n;
	return 0;
}

int priv_net_up(const struct priv_net_req *q, struct priv_net *out)
{
	char sub[32], gw[INET_ADDRSTRLEN], mac[18], pref[INET_ADDRSTRLEN];
	json_t *req, *rep = NULL;
	int fds[3], rc;
	size_t n = 0;

	if (q->n_ha > PRIV_HA_MAX)
		return -E2BIG;
	inet_ntop(AF_INET, &q->nc.gw, gw, sizeof(gw));
	if ((rc = util_snprintf(sub, sizeof(sub), "%s/%u", gw, q->nc.prefix)) ||
	    (rc = util_snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", q->mac[0],
				q->mac[1], q->mac[2], q->mac[3], q->mac[4], q->mac[5])))
		return rc;
	req = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:b, s:o}", "op", "net_up", "name",
			q->name, "bridge", q->nc.bridge, "subnet", sub, "mac", mac, "isolation",
			q->isolation, "ipv6", q->ipv6, "dns", q->dns, "host_access", priv_ha_json(q));
	if (req && q->wg && q->wg->ifname[0])
		json_object_set_new(req, "wg", privd_wg_json(q->wg));
	if (req && q->prefer.s_addr)
		json_object_set_new(req, "prefer",
				    json_string(inet_ntop(AF_INET, &q->prefer, pref, sizeof(pref))));
	rc = priv_call(req, &rep, fds, &n);
	if (rc)
		return rc;
	rc = priv_net_reply(rep, fds, n, q->dns, out);
	json_decref(rep);
	if (rc) {
		log_err("hutch-helper: a malformed net_up reply");
		priv_close_fds(fds, n);
	}
	return rc;
}

int priv_net_down(const char *id)
{
	return priv_simple(json_pack("{s:s, s:s}", "op", "net_down", "id", id), NULL);
}

int priv_gc(const char *id)
{
	json_t *req = json_pack("{s:s}", "op", "gc");

	if (req && id)
		json_object_set_new(req, "id", json_string(id));
	return priv_simple(req, NULL);
}

int priv_inspect(const char *id, char **text)
{
	json_t *rep = NULL;
	const char *t;
	int rc = priv_simple(json_pack("{s:s, s:s}", "op", "inspect", "id", id), &rep);

	if (rc)
		return rc;
	t = json_string_value(json_object_get(rep, "text"));
	*text = strdup(t ? t : "");
	json_decref(rep);
	return *text ? 0 : -ENOMEM;
}

int priv_mount(const char *dir, unsigned size_gib, bool keep, int *loopnr)
{
	json_t *rep = NULL;
	int rc = priv_simple(json_pack("{s:s, s:s, s:i, s:b}", "op", "mount", "dir", dir, "size",
				       (int)size_gib, "keep", keep),
			     &rep);

	if (!rc && loopnr)
		*loopnr = (int)json_integer_value(json_object_get(rep, "loop"));
	json_decref(rep);
	return rc;
}

int priv_unmount(const char *dir)
{
	return priv_simple(json_pack("{s:s, s:s}", "op", "unmount", "dir", dir), NULL);
}

int priv_userns_map(pid_t pid)
{
	return priv_simple(json_pack("{s:s, s:I}", "op", "userns_map", "pid", (json_int_t)pid), NULL);
}

int priv_watch_fd(void)
{
	if (P.d)
		return P.d->watch_fd >= 0 ? P.d->watch_fd : -ENOENT;
	return P.sock >= 0 ? P.sock : -ENOTCONN;
}

void priv_watch_event(const char *const *ids, size_t n)
{
	if (P.d) {
		privd_watch(P.d);
		return;
	}
	/* the helper never speaks unasked: readable means it is gone */
	log_warn("hutch-helper exited; starting a new one for this VM's network");
	priv_drop_helper();
	for (size_t i = 0; i < n; i++)
		if (priv_simple(json_pack("{s:s, s:s}", "op", "attach", "id", ids[i]), NULL))
			log_err("could not re-attach the network of %s to a new hutch-helper", ids[i]);
}

void priv_close(void)
{
	if (P.d) {
		privd_close(P.d);
		free(P.d);
		P.d = NULL;
	}
	priv_drop_helper();
}

/* ---- WireGuard ---- */

static json_t *priv_wg_conf_req(json_t *req, const struct wg_conf *c, const struct sockaddr_storage *ep)
{
	char *text, epb[80];
	size_t len = 0;

	if (!req || !c)
		return req;
	text = malloc(PRIV_REQ_MAX / 2);
	if (!text || wg_conf_text(c, text, PRIV_REQ_MAX / 2, &len) ||
	    wg_sockaddr_str(ep, epb, sizeof(epb)) ||
	    json_object_set_new(req, "conf", json_stringn(text, len)) ||
	    json_object_set_new(req, "endpoint", json_string(epb))) {
		if (text)
			log_err("wireguard.conf is too large for hutch-helper's requests (at most %d bytes)",
				PRIV_REQ_MAX / 2);
		json_decref(req);
		req = NULL;
	}
	if (text)
		explicit_bzero(text, PRIV_REQ_MAX / 2);
	free(text);
	return req;
}

static int priv_wg_reply(json_t *rep, const int *fds, size_t nfds, struct priv_wg *out)
{
	const char *id = json_string_value(json_object_get(rep, "id"));
	const char *ifn = json_string_value(json_object_get(rep, "ifname"));
	const char *impl = json_string_value(json_object_get(rep, "impl"));
	json_int_t table = json_integer_value(json_object_get(rep, "table"));
	json_int_t ifi = json_integer_value(json_object_get(rep, "ifindex"));
	struct priv_wg w = { .go_fds = { -1, -1 } };

	if (!id || !ifn || !impl || table < WG_TABLE_MIN || table > WG_TABLE_MAX || ifi < 0 ||
	    ifi > INT_MAX || util_snprintf(w.id, sizeof(w.id), "%s", id) ||
	    util_snprintf(w.ifname, sizeof(w.ifname), "%s", ifn) || (nfds != 0 && nfds != 2))
		return -EPROTO;
	w.table = (uint32_t)table;
	w.ifindex = (int)ifi;
	w.impl = !strcmp(impl, "kernel") ? WG_IMPL_KERNEL : !strcmp(impl, "wireguard-go") ? WG_IMPL_GO :
		 WG_IMPL_NONE;
	if (nfds == 2) {
		w.go_fds[0] = fds[0];
		w.go_fds[1] = fds[1];
	}
	*out = w;
	return 0;
}

static int priv_wg_call(json_t *req, struct priv_wg *out)
{
	json_t *rep = NULL;
	int fds[3], rc;
	size_t n = 0;

	rc = priv_call(req, &rep, fds, &n);
	if (!rc && (rc = priv_wg_reply(rep, fds, n, out)))
		priv_close_fds(fds, n);
	json_decref(rep);
	return rc;
}

int priv_wg_up(const char *name, const struct wg_conf *c, const struct sockaddr_storage *ep,
	       struct priv_wg *out)
{
	return priv_wg_call(priv_wg_conf_req(json_pack("{s:s, s:s}", "op", "wg_up", "name", name), c, ep),
			    out);
}

int priv_wg_fix(const char *id, enum wg_fix how, const struct wg_conf *c,
		const struct sockaddr_storage *ep, struct priv_wg *out)
{
	static const char *const hows[] = { [WG_FIX_RULES] = "rules", [WG_FIX_LINK] = "link",
					    [WG_FIX_RELINK] = "relink" };

	if ((unsigned)how > WG_FIX_RELINK)
		return -EINVAL;
	return priv_wg_call(priv_wg_conf_req(json_pack("{s:s, s:s, s:s}", "op", "wg_fix", "id", id, "how",
						       hows[how]), how == WG_FIX_RULES ? NULL : c, ep),
			    out);
}

int priv_wg_down(const char *id)
{
	return priv_simple(json_pack("{s:s, s:s}", "op", "wg_down", "id", id), NULL);
}

int priv_wg_get(const char *id, struct priv_wg_stat *out)
{
	json_t *rep = NULL, *live, *drops;
	const char *peer, *ep;
	int rc = priv_simple(json_pack("{s:s, s:s}", "op", "wg_get", "id", id), &rep);

	memset(out, 0, sizeof(*out));
	if (rc)
		return rc;
	live = json_object_get(rep, "live");
	drops = json_object_get(rep, "drops");
	if (json_is_object(live)) {
		socklen_t len;

		out->has_live = true;
		out->live.handshake = json_integer_value(json_object_get(live, "handshake"));
		out->live.rx = (uint64_t)json_integer_value(json_object_get(live, "rx"));
		out->live.tx = (uint64_t)json_integer_value(json_object_get(live, "tx"));
		out->live.keepalive = (uint16_t)json_integer_value(json_object_get(live, "keepalive"));
		peer = json_string_value(json_object_get(live, "peer"));
		ep = json_string_value(json_object_get(live, "endpoint"));
		out->live.has_peer = peer && wg_key_from_base64(peer, out->live.peer_key) == 0;
		if (ep)
			wg_sockaddr_parse(ep, &out->live.endpoint, &len);
	}
	if (json_is_object(drops)) {
		out->has_drops = true;
		out->drop_pkts = (uint64_t)json_integer_value(json_object_get(drops, "packets"));
		out->drop_bytes = (uint64_t)json_integer_value(json_object_get(drops, "bytes"));
	}
	json_decref(rep);
	return 0;
}
