// SPDX-License-Identifier: MIT
/*
 * The privileged side: request parsing, the helper's start-up (capabilities,
 * configuration, registry), dispatch, and the helper's loop.  The operations
 * themselves are in privd_ops.c, the registry in privd_reg.c; the model is
 * described in privd.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/privd.h"
#include "net/wg_rt.h"
#include "net/wg.h"
#include "src/log.h"
#include "src/util.h"

#define PRIVD_SOCK_FD 3

/* ---- request parsing ---- */

struct privd_opdef {
	const char *name;
	enum privd_op op;
	const char *const *keys;	/* allowed keys; the required ones first */
	size_t n_required;
};

static const char *const k_op[] = { "op", NULL };
static const char *const k_id[] = { "op", "id", NULL };
static const char *const k_net_up[] = { "op", "name", "bridge", "subnet", "mac", "isolation",
					"ipv6", "dns", "prefer", "host_access", "wg", NULL };
static const char *const k_mount[] = { "op", "dir", "size", "keep", NULL };
static const char *const k_unmount[] = { "op", "dir", NULL };
static const char *const k_userns_map[] = { "op", "pid", NULL };
static const char *const k_wg_up[] = { "op", "name", "conf", "endpoint", NULL };
static const char *const k_wg_fix[] = { "op", "id", "how", "conf", "endpoint", NULL };

static const struct privd_opdef privd_ops[] = {
	{ "ping", PRIVD_PING, k_op, 1 },
	{ "net_up", PRIVD_NET_UP, k_net_up, 7 },
	{ "net_down", PRIVD_NET_DOWN, k_id, 2 },
	{ "attach", PRIVD_ATTACH, k_id, 2 },
	{ "gc", PRIVD_GC, k_id, 1 },
	{ "inspect", PRIVD_INSPECT, k_id, 2 },
	{ "mount", PRIVD_MOUNT, k_mount, 4 },
	{ "unmount", PRIVD_UNMOUNT, k_unmount, 2 },
	{ "userns_map", PRIVD_USERNS_MAP, k_userns_map, 2 },
	{ "wg_up", PRIVD_WG_UP, k_wg_up, 4 },
	{ "wg_fix", PRIVD_WG_FIX, k_wg_fix, 3 },
	{ "wg_down", PRIVD_WG_DOWN, k_id, 2 },
	{ "wg_get", PRIVD_WG_GET, k_id, 2 },
};

int privd_err(char *err, size_t n, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, n, fmt, ap);	/* a message: cutting it is harmless */
	va_end(ap);
	return rc;
}

static bool privd_key_known(const struct privd_opdef *od, const char *key)
{
	for (size_t i = 0; od->keys[i]; i++)
		if (!strcmp(od->keys[i], key))
			return true;
	return false;
}

/* an absolute, normal path: no ".", "..", "//", trailing '/', control bytes */
static bool privd_path_ok(const char *p)
{
	size_t n = strlen(p);

	if (n < 2 || n >= PATH_MAX || p[0] != '/' || p[n - 1] == '/')
		return false;
	for (const char *c = p; *c; c++) {
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return false;
		if (c[0] == '/') {
			const char *s = c + 1;
			size_t len = strcspn(s, "/");

			if (len == 0 || (len == 1 && s[0] == '.') ||
			    (len == 2 && s[0] == '.' && s[1] == '.'))
				return false;
		}
	}
	return true;
}

bool privd_id_ok(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n >= NFT_ID_MAX)
		return false;
	return strspn(id, "abcdefghijklmnopqrstuvwxyz0123456789") == n;
}

/* 10/8, 172.16/12, 192.168/16, 100.64/10, 169.254/16: what allow-lan-host may name */
static bool privd_lan_ok(struct in_addr a)
{
	uint32_t h = ntohl(a.s_addr);

	return (h >> 24) == 10 || (h >> 20) == (172u << 4 | 1) || (h >> 16) == (192u << 8 | 168) ||
	       (h >> 22) == (100u << 2 | 1) || (h >> 16) == (169u << 8 | 254);
}

static int privd_get_str(json_t *j, const char *k, char *buf, size_t n, char *err, size_t en)
{
	json_t *v = json_object_get(j, k);

	if (!json_is_string(v))
		return privd_err(err, en, -EINVAL, "'%s' must be a string", k);
	if (json_string_length(v) >= n)
		return privd_err(err, en, -EINVAL, "'%s' is too long (at most %zu bytes)", k, n - 1);
	memcpy(buf, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

static int privd_get_bool(json_t *j, const char *k, bool *out, char *err, size_t en)
{
	json_t *v = json_object_get(j, k);

	if (!json_is_boolean(v))
		return privd_err(err, en, -EINVAL, "'%s' must be true or false", k);
	*out = json_is_true(v);
	return 0;
}

static int privd_parse_ha(json_t *arr, struct privd_req *q, char *err, size_t en)
{
	json_t *h, *v;
	const char *k;
	size_t i;

	if (!json_is_array(arr))
		return privd_err(err, en, -EINVAL, "'host_access' must be a list");
	if (json_array_size(arr) > PRIV_HA_MAX)
		return privd_err(err, en, -EINVAL, "'host_access': at most %d entries", PRIV_HA_MAX);
	json_array_foreach(arr, i, h) {
		struct cfg_host_access *ha = &q->ha[i];
		json_t *lan = json_object_get(h, "lan"), *port = json_object_get(h, "port");
		const char *proto = json_string_value(json_object_get(h, "proto"));

		if (!json_is_object(h))
			return privd_err(err, en, -EINVAL, "host_access[%zu] must be an object", i);
		json_object_foreach(h, k, v)
			if (strcmp(k, "lan") && strcmp(k, "port") && strcmp(k, "proto"))
				return privd_err(err, en, -EINVAL, "host_access[%zu]: unknown key", i);
		if (lan && json_object_size(h) == 1) {
			ha->kind = CFG_HA_LAN_HOST;
			if (!json_is_string(lan) ||
			    inet_pton(AF_INET, json_string_value(lan), &ha->addr) != 1 ||
			    !privd_lan_ok(ha->addr))
				return privd_err(err, en, -EINVAL,
					    "host_access[%zu]: 'lan' must be a LAN IPv4 address", i);
		} else if (json_is_integer(port) && proto && json_object_size(h) == 2) {
			if (json_integer_value(port) < 1 || json_integer_value(port) > 65535 ||
			    (strcmp(proto, "tcp") && strcmp(proto, "udp")))
				return privd_err(err, en, -EINVAL,
					    "host_access[%zu]: port 1..65535, proto tcp or udp", i);
			ha->kind = CFG_HA_HOST_PORT;
			ha->port = (uint16_t)json_integer_value(port);
			ha->proto = strcmp(proto, "udp") ? CFG_PROTO_TCP : CFG_PROTO_UDP;
		} else {
			return privd_err(err, en, -EINVAL,
				    "host_access[%zu]: {\"lan\": ADDR} or {\"proto\", \"port\"}", i);
		}
	}
	q->n_ha = json_array_size(arr);
	return 0;
}

static int privd_parse_net_up(json_t *j, struct privd_req *q, char *err, size_t en)
{
	char sub[32], mac[18], pref[INET_ADDRSTRLEN];
	int rc;

	if ((rc = privd_get_str(j, "name", q->name, sizeof(q->name), err, en)) ||
	    (rc = privd_get_str(j, "bridge", q->nc.bridge, sizeof(q->nc.bridge), err, en)) ||
	    (rc = privd_get_str(j, "subnet", sub, sizeof(sub), err, en)) ||
	    (rc = privd_get_str(j, "mac", mac, sizeof(mac), err, en)) ||
	    (rc = privd_get_bool(j, "isolation", &q->isolation, err, en)) ||
	    (rc = privd_get_bool(j, "ipv6", &q->ipv6, err, en)) ||
	    /* optional: without it udp/53 stays closed and no socket comes back */
	    (json_object_get(j, "dns") && (rc = privd_get_bool(j, "dns", &q->dns, err, en))))
		return rc;
	if (!util_name_valid(q->name))
		return privd_err(err, en, -EINVAL, "'name' is not a VM name");
	if (!net_ifname_valid(q->nc.bridge) ||
	    !strncmp(q->nc.bridge, NET_TAP_PREFIX, strlen(NET_TAP_PREFIX)))
		return privd_err(err, en, -EINVAL, "'bridge' is not a bridge name hutch would use");
	{
		char br[IFNAMSIZ];

		memcpy(br, q->nc.bridge, sizeof(br));
		if (net_subnet_parse(sub, &q->nc))
			return privd_err(err, en, -EINVAL, "'subnet' must be A.B.C.D/N (N 8..30)");
		memcpy(q->nc.bridge, br, sizeof(br));
	}
	if (net_mac_parse(mac, q->mac))
		return privd_err(err, en, -EINVAL, "'mac' must be a unicast MAC address");
	if (json_object_get(j, "prefer")) {
		if ((rc = privd_get_str(j, "prefer", pref, sizeof(pref), err, en)))
			return rc;
		if (inet_pton(AF_INET, pref, &q->prefer) != 1 ||
		    (q->prefer.s_addr & net_mask(q->nc.prefix)) != q->nc.net.s_addr)
			return privd_err(err, en, -EINVAL, "'prefer' must be an address of the subnet");
	}
	if (json_object_get(j, "wg") && privd_wg_parse(json_object_get(j, "wg"), &q->wg))
		return privd_err(err, en, -EINVAL, "'wg' must be {ifname: hw-..., mark, dns}");
	if (json_object_get(j, "host_access"))
		return privd_parse_ha(json_object_get(j, "host_access"), q, err, en);
	return 0;
}

json_t *privd_wg_json(const struct nft_wg *wg)
{
	char dns[INET_ADDRSTRLEN];

	if (!wg || !wg->ifname[0])
		return NULL;
	inet_ntop(AF_INET, &wg->dns, dns, sizeof(dns));
	return json_pack("{s:s, s:I, s:s}", "ifname", wg->ifname, "mark", (json_int_t)wg->mark,
			 "dns", dns);
}

int privd_wg_parse(json_t *o, struct nft_wg *out)
{
	const char *ifname = json_string_value(json_object_get(o, "ifname"));
	const char *dns = json_string_value(json_object_get(o, "dns"));
	json_t *mark = json_object_get(o, "mark");
	struct nft_wg w = { 0 };

	if (!json_is_object(o) || json_object_size(o) != 3 || !ifname || !dns ||
	    !json_is_integer(mark) || strncmp(ifname, WG_IF_PREFIX, strlen(WG_IF_PREFIX)) ||
	    !net_ifname_valid(ifname) || json_integer_value(mark) < WG_TABLE_MIN ||
	    json_integer_value(mark) > WG_TABLE_MAX || inet_pton(AF_INET, dns, &w.dns) != 1)
		return -EINVAL;
	memcpy(w.ifname, ifname, strlen(ifname) + 1);
	w.mark = (uint32_t)json_integer_value(mark);
	*out = w;
	return 0;
}

/* "conf" (wireguard.conf text, strict: wg_conf_parse()) and "endpoint" ("A.B.C.D:P", "[v6]:P") */
static int privd_parse_wg_conf(json_t *j, struct privd_req *q, char *err, size_t en)
{
	json_t *conf = json_object_get(j, "conf");
	struct wg_conf_error e;
	char ep[80];
	int rc;

	if (!conf && !json_object_get(j, "endpoint"))
		return 0;
	if (!json_is_string(conf) || (rc = privd_get_str(j, "endpoint", ep, sizeof(ep), err, en)))
		return privd_err(err, en, -EINVAL, "'conf' and 'endpoint' go together, as strings");
	if (wg_conf_parse(json_string_value(conf), json_string_length(conf), "conf", &q->wgc, &e))
		return privd_err(err, en, -EINVAL, "%s", e.msg);
	q->has_wgc = true;
	if (wg_sockaddr_parse(ep, &q->wg_ep, &q->wg_ep_len))
		return privd_err(err, en, -EINVAL, "'endpoint' must be A.B.C.D:PORT or [IPv6]:PORT");
	return 0;
}

static int privd_parse_wg(json_t *j, struct privd_req *q, char *err, size_t en)
{
	static const char *const hows[] = { [WG_FIX_RULES] = "rules", [WG_FIX_LINK] = "link",
					    [WG_FIX_RELINK] = "relink" };
	char how[16];
	int rc;

	if (q->op == PRIVD_WG_UP) {
		if ((rc = privd_get_str(j, "name", q->name, sizeof(q->name), err, en)))
			return rc;
		if (!util_name_valid(q->name))
			return privd_err(err, en, -EINVAL, "'name' is not a VM name");
	} else {
		if ((rc = privd_get_str(j, "id", q->id, sizeof(q->id), err, en)))
			return rc;
		if (!privd_id_ok(q->id))
			return privd_err(err, en, -EINVAL, "'id' must be [a-z0-9]{1,15}");
		q->has_id = true;
	}
	if (q->op == PRIVD_WG_FIX) {
		if ((rc = privd_get_str(j, "how", how, sizeof(how), err, en)))
			return rc;
		q->wg_how = WG_FIX_RELINK + 1;
		for (size_t i = 0; i < UTIL_ARRAY_SIZE(hows); i++)
			if (!strcmp(how, hows[i]))
				q->wg_how = (enum wg_fix)i;
		if (q->wg_how > WG_FIX_RELINK)
			return privd_err(err, en, -EINVAL, "'how' must be rules, link or relink");
	}
	if ((rc = privd_parse_wg_conf(j, q, err, en)))
		return rc;
	if (!q->has_wgc && (q->op == PRIVD_WG_UP || (q->op == PRIVD_WG_FIX && q->wg_how != WG_FIX_RULES)))
		return privd_err(err, en, -EINVAL, "'conf' and 'endpoint' are needed here");
	return 0;
}

static int privd_parse_fields(json_t *j, struct privd_req *q, char *err, size_t en)
{
	int rc;

	switch (q->op) {
	case PRIVD_PING:
		return 0;
	case PRIVD_NET_UP:
		return privd_parse_net_up(j, q, err, en);
	case PRIVD_NET_DOWN:
	case PRIVD_ATTACH:
	case PRIVD_GC:
	case PRIVD_INSPECT:
		if (!json_object_get(j, "id"))
			return 0;	/* gc without an id */
		if ((rc = privd_get_str(j, "id", q->id, sizeof(q->id), err, en)))
			return rc;
		if (!privd_id_ok(q->id))
			return privd_err(err, en, -EINVAL, "'id' must be [a-z0-9]{1,15}");
		q->has_id = true;
		return 0;
	case PRIVD_MOUNT: {
		json_t *sz = json_object_get(j, "size");

		if ((rc = privd_get_bool(j, "keep", &q->keep, err, en)))
			return rc;
		if (!json_is_integer(sz) || json_integer_value(sz) < 1 ||
		    json_integer_value(sz) > 65536)
			return privd_err(err, en, -EINVAL, "'size' must be 1..65536 (GiB)");
		q->size_gib = (unsigned)json_integer_value(sz);
	}
		/* fall through */
	case PRIVD_UNMOUNT:
		if ((rc = privd_get_str(j, "dir", q->dir, sizeof(q->dir), err, en)))
			return rc;
		/* "<dir>.img" must fit too */
		if (!privd_path_ok(q->dir) || strlen(q->dir) + 5 > sizeof(q->dir))
			return privd_err(err, en, -EINVAL, "'dir' must be an absolute normal path");
		return 0;
	case PRIVD_USERNS_MAP: {
		json_t *pid = json_object_get(j, "pid");

		/* pid_max is at most 2^22 (PID_MAX_LIMIT); 1 (init) is never a caller's child */
		if (!json_is_integer(pid) || json_integer_value(pid) < 2 ||
		    json_integer_value(pid) > (1 << 22))
			return privd_err(err, en, -EINVAL, "'pid' must be a process id (2..4194304)");
		q->pid = (pid_t)json_integer_value(pid);
		return 0;
	}
	case PRIVD_WG_UP:
	case PRIVD_WG_FIX:
	case PRIVD_WG_DOWN:
	case PRIVD_WG_GET:
		return privd_parse_wg(j, q, err, en);
	}
	return privd_err(err, en, -EINVAL, "unknown operation");
}

int privd_parse(const char *buf, size_t n, struct privd_req *q, char *err, size_t en)
{
	const struct privd_opdef *od = NULL;
	json_error_t je;
	const char *op, *k;
	json_t *j, *v;
	int rc;

	memset(q, 0, sizeof(*q));
	if (n > PRIV_REQ_MAX)
		return privd_err(err, en, -E2BIG, "request of %zu bytes refused (at most %d)", n,
			    PRIV_REQ_MAX);
	if (n == 0)
		return privd_err(err, en, -EPROTO, "empty request");
	/* EOF check on: trailing bytes after the object refuse it */
	j = json_loadb(buf, n, JSON_REJECT_DUPLICATES, &je);
	if (!j)
		return privd_err(err, en, -EPROTO, "request is not JSON (line %d column %d)", je.line,
			    je.column);
	rc = -EPROTO;
	if (!json_is_object(j)) {
		privd_err(err, en, rc, "a request is a JSON object");
		goto out;
	}
	op = json_string_value(json_object_get(j, "op"));
	for (size_t i = 0; op && i < UTIL_ARRAY_SIZE(privd_ops); i++)
		if (!strcmp(privd_ops[i].name, op))
			od = &privd_ops[i];
	if (!od) {
		privd_err(err, en, -EINVAL, "unknown or missing 'op'");
		rc = -EINVAL;
		goto out;
	}
	rc = -EINVAL;
	json_object_foreach(j, k, v) {
		if (!privd_key_known(od, k)) {
			char esc[64];

			privd_err(err, en, rc, "%s: unknown key '%s'", od->name,
			     log_escape(esc, sizeof(esc), k, strlen(k)));
			goto out;
		}
	}
	for (size_t i = 0; i < od->n_required; i++) {
		if (!json_object_get(j, od->keys[i])) {
			privd_err(err, en, rc, "%s: '%s' is missing", od->name, od->keys[i]);
			goto out;
		}
	}
	q->op = od->op;
	rc = privd_parse_fields(j, q, err, en);
out:
	json_decref(j);
	return rc;
}

/* ---- configuration ---- */

void privd_conf_default(struct privd_conf *c)
{
	memset(c, 0, sizeof(*c));
	memcpy(c->rundir, PRIVD_RUNDIR, sizeof(PRIVD_RUNDIR));
	memcpy(c->statedir, PRIVD_STATEDIR, sizeof(PRIVD_STATEDIR));
	memcpy(c->nets[0].bridge, NET_BRIDGE_DEFAULT, sizeof(NET_BRIDGE_DEFAULT));
	net_subnet_parse(NET_SUBNET_DEFAULT, &c->nets[0]);
	c->n_nets = 1;
}

static int privd_conf_line(char *line, size_t lineno, struct privd_conf *c, bool *nets_seen,
			   char *err, size_t en)
{
	char *key = strtok(line, " \t"), *a = strtok(NULL, " \t"), *b = strtok(NULL, " \t");

	if (!key || key[0] == '#')
		return 0;
	/* "rundir DIR" moves the state dir with it (a test rig's); "statedir DIR" after it apart */
	if ((!strcmp(key, "rundir") || !strcmp(key, "statedir")) && a && !b) {
		if (!privd_path_ok(a))
			return privd_err(err, en, -EINVAL, "line %zu: %s must be an absolute path",
					 lineno, key);
		if (key[0] == 'r' && util_snprintf(c->rundir, sizeof(c->rundir), "%s", a))
			return -ENAMETOOLONG;
		return util_snprintf(c->statedir, sizeof(c->statedir), "%s", a);
	}
	if (!strcmp(key, "network") && a && b && !strtok(NULL, " \t")) {
		struct net_conf *nc;

		if (!*nets_seen)
			c->n_nets = 0;
		*nets_seen = true;
		if (c->n_nets >= PRIVD_NETS_MAX)
			return privd_err(err, en, -EINVAL, "line %zu: at most %d networks", lineno,
				    PRIVD_NETS_MAX);
		nc = &c->nets[c->n_nets];
		if (!net_ifname_valid(a) || !strncmp(a, NET_TAP_PREFIX, strlen(NET_TAP_PREFIX)) ||
		    net_subnet_parse(b, nc))
			return privd_err(err, en, -EINVAL, "line %zu: network BRIDGE A.B.C.D/N", lineno);
		memcpy(nc->bridge, a, strlen(a) + 1);
		c->n_nets++;
		return 0;
	}
	return privd_err(err, en, -EINVAL,
			 "line %zu: expected 'rundir DIR', 'statedir DIR' or 'network BRIDGE CIDR'", lineno);
}

int privd_conf_parse(const char *buf, size_t n, struct privd_conf *c, char *err, size_t en)
{
	struct privd_conf tmp;
	bool nets_seen = false;
	size_t off = 0, lineno = 0;
	int rc;

	if (n > PRIVD_CONF_MAX)
		return privd_err(err, en, -EFBIG, "over %d bytes", PRIVD_CONF_MAX);
	privd_conf_default(&tmp);
	while (off < n) {
		const char *nl = memchr(buf + off, '\n', n - off);
		size_t len = nl ? (size_t)(nl - (buf + off)) : n - off;
		char line[512];

		lineno++;
		if (len >= sizeof(line))
			return privd_err(err, en, -EINVAL, "line %zu is too long", lineno);
		memcpy(line, buf + off, len);
		line[len] = 0;
		if (strlen(line) != len)
			return privd_err(err, en, -EINVAL, "line %zu holds a NUL byte", lineno);
		if ((rc = privd_conf_line(line, lineno, &tmp, &nets_seen, err, en)))
			return rc;
		off += len + 1;
	}
	*c = tmp;
	return 0;
}

/*
 * hutch-helper.conf beside the helper binary: trusted only when it and its
 * directory belong to root and nobody else may write them (then whoever
 * could change it could replace the helper itself, too).
 */
static int privd_conf_load(struct privd *d)
{
	char exe[PATH_MAX], dir[PATH_MAX], *slash, *buf = NULL, err[160];
	struct stat ds, fs;
	ssize_t n;
	size_t len;
	int rc;

	privd_conf_default(&d->conf);
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return -errno;
	exe[n] = 0;
	memcpy(dir, exe, (size_t)n + 1);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return -EINVAL;
	*slash = 0;
	if ((rc = util_path_join(d->conf_path, sizeof(d->conf_path), dir, PRIVD_CONF_NAME)))
		return rc;
	if (lstat(d->conf_path, &fs) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (stat(dir, &ds) < 0)
		return -errno;
	if (ds.st_uid != 0 || (ds.st_mode & 022) || fs.st_uid != 0 || (fs.st_mode & 022) ||
	    !S_ISREG(fs.st_mode)) {
		log_warn("ignoring %s: it and its directory must be root's and not writable by others",
			 d->conf_path);
		return 0;
	}
	if ((rc = util_read_file(d->conf_path, PRIVD_CONF_MAX, &buf, &len)))
		return rc;
	rc = privd_conf_parse(buf, len, &d->conf, err, sizeof(err));
	free(buf);
	if (rc)
		log_err("%s: %s", d->conf_path, err);
	return rc;
}

/* ---- capabilities ---- */

static const cap_value_t privd_caps_all[] = { CAP_NET_ADMIN, CAP_NET_RAW, CAP_NET_BIND_SERVICE,
					      CAP_SYS_ADMIN, CAP_DAC_OVERRIDE, CAP_SETGID };

int privd_caps(const struct privd *d, unsigned mask)
{
	cap_value_t eff[UTIL_ARRAY_SIZE(privd_caps_all)];
	int n = 0, rc = 0;
	cap_t c;

	if (!d->helper)
		return 0;
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(privd_caps_all); i++)
		if (mask & (1u << i))
			eff[n++] = privd_caps_all[i];
	c = cap_init();
	if (!c)
		return -ENOMEM;
	if (cap_set_flag(c, CAP_PERMITTED, (int)UTIL_ARRAY_SIZE(privd_caps_all), privd_caps_all,
			 CAP_SET) ||
	    (n && cap_set_flag(c, CAP_EFFECTIVE, n, eff, CAP_SET)) || cap_set_proc(c))
		rc = -errno ? -errno : -EPERM;
	cap_free(c);
	if (rc)
		log_errno(rc, "setting the effective capabilities");
	return rc;
}

/*
 * Start-up: keep exactly our permitted set, nothing effective, no new
 * privileges through exec, not dumpable (the user may not ptrace a process
 * that holds capabilities).  A missing capability is not fatal here: every
 * request is then answered with what to run.
 */
static int privd_caps_init(struct privd *d)
{
	cap_t c = cap_get_proc();
	cap_flag_value_t v;

	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	if (!c)
		return -errno;
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(privd_caps_all); i++) {
		if (cap_get_flag(c, privd_caps_all[i], CAP_PERMITTED, &v) || v != CAP_SET) {
			char *name = cap_to_name(privd_caps_all[i]);

			util_snprintf(d->setup_err, sizeof(d->setup_err),
				      "hutch-helper has no %s: it is not set up; run 'sudo hutch setup'",
				      name ? name : "capability");
			cap_free(name);
			break;
		}
	}
	cap_free(c);
	if (d->setup_err[0])
		return -ENOPKG;
	if (privd_caps(d, 0) || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -EPERM;
	return 0;
}

/* ---- connections ---- */

static unsigned long long privd_ns_ino(const char *which)
{
	struct stat st;

	return stat(which, &st) == 0 ? (unsigned long long)st.st_ino : 0;
}

/* rundir/registry.json, root's and private; opened with CAP_DAC_OVERRIDE raised for this call only */
static int privd_reg_open(struct privd *d, bool create)
{
	struct stat st;
	int dfd, fd, rc = 0;

	if (create && mkdir(d->conf.rundir, 0755) < 0 && errno != EEXIST)
		return -errno;
	if (d->helper && (rc = privd_caps(d, PRIVD_CAP_DAC)))
		return rc;
	dfd = open(d->conf.rundir, O_DIRECTORY | O_NOFOLLOW | O_RDONLY | O_CLOEXEC);
	fd = dfd < 0 ? -1 :
	     openat(dfd, PRIVD_REGISTRY, O_RDWR | O_NOFOLLOW | O_CLOEXEC | (create ? O_CREAT : 0),
		    0600);
	if (fd < 0)
		rc = -errno;
	if (d->helper)
		privd_caps(d, 0);
	if (rc)
		goto out;
	if (fstat(dfd, &st) < 0 || st.st_uid != 0 || (st.st_mode & 022) || fstat(fd, &st) < 0 ||
	    !S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & 077)) {
		rc = -EPERM;
		close(fd);
		goto out;
	}
	d->reg_fd = fd;
out:
	if (dfd >= 0)
		close(dfd);
	return rc;
}

int privd_init_inproc(struct privd *d)
{
	const char *rd = getenv("HUTCH_RUN_DIR");
	int rc;

	memset(d, 0, sizeof(*d));
	d->reg_fd = d->watch_fd = -1;
	d->uid = getuid();
	d->gid = getgid();
	d->pid = getpid();
	d->start = privd_proc_start(d->pid);
	d->any_net = true;
	d->netns = privd_ns_ino("/proc/self/ns/net");
	d->mntns = privd_ns_ino("/proc/self/ns/mnt");
	privd_conf_default(&d->conf);
	if (net_conf_get(&d->conf.nets[0]))
		privd_conf_default(&d->conf);
	/* a test rig's run dir (HUTCH_RUN_DIR) holds its state too: nothing of it in /var/lib */
	if (rd && *rd && ((rc = util_snprintf(d->conf.rundir, sizeof(d->conf.rundir), "%s", rd)) ||
			  (rc = util_snprintf(d->conf.statedir, sizeof(d->conf.statedir), "%s", rd))))
		return rc;
	rc = privd_reg_open(d, true);
	if (rc)
		log_errno(rc, "the registry in %s", d->conf.rundir);
	return rc;
}

static int privd_init_helper(struct privd *d, int sock)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	int type = 0, rc;
	socklen_t tl = sizeof(type);

	memset(d, 0, sizeof(*d));
	d->reg_fd = d->watch_fd = -1;
	d->helper = true;
	if (getsockopt(sock, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || type != SOCK_SEQPACKET ||
	    getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0) {
		log_err("hutch-helper is started by hutch, with its socket on fd %d", PRIVD_SOCK_FD);
		return -ENOTSOCK;
	}
	/* the caller is the socket's peer; a file-capability program keeps the caller's uid too */
	d->uid = cr.uid;
	d->gid = cr.gid;
	d->pid = cr.pid;
	d->start = privd_proc_start(cr.pid);
	d->netns = privd_ns_ino("/proc/self/ns/net");
	d->mntns = privd_ns_ino("/proc/self/ns/mnt");
	d->any_net = cr.uid == 0;
	if (cr.uid != getuid())
		util_snprintf(d->setup_err, sizeof(d->setup_err),
			      "hutch-helper serves only the user who started it");
	if ((rc = privd_caps_init(d)) && !d->setup_err[0])
		util_snprintf(d->setup_err, sizeof(d->setup_err), "hutch-helper: %s", strerror(-rc));
	if (privd_conf_load(d) && !d->setup_err[0])
		util_snprintf(d->setup_err, sizeof(d->setup_err),
			      "hutch-helper: bad configuration %s", d->conf_path);
	if (!d->setup_err[0] && (rc = privd_reg_open(d, false)))
		util_snprintf(d->setup_err, sizeof(d->setup_err),
			      "hutch-helper: no usable registry in %s (%s): run 'sudo hutch setup'",
			      d->conf.rundir, strerror(-rc));
	return 0;
}

void privd_close(struct privd *d)
{
	if (d->watch_fd >= 0)
		close(d->watch_fd);
	if (d->reg_fd >= 0)
		close(d->reg_fd);
	d->watch_fd = d->reg_fd = -1;
}

/* ---- dispatch ---- */

static json_t *privd_err_reply(int rc, const char *msg)
{
	return json_pack("{s:b, s:i, s:s}", "ok", 0, "errno", -rc, "error",
			 msg && *msg ? msg : strerror(-rc));
}

void privd_handle(struct privd *d, const char *buf, size_t n, json_t **reply, int fds[3],
		  size_t *nfds)
{
	struct privd_req *q;
	char err[512] = "";
	json_t *out;
	int rc;

	*nfds = 0;
	*reply = NULL;
	if (d->setup_err[0]) {
		*reply = privd_err_reply(-ENOPKG, d->setup_err);
		return;
	}
	q = malloc(sizeof(*q));
	out = json_pack("{s:b}", "ok", 1);
	if (!q || !out) {
		free(q);
		json_decref(out);
		*reply = privd_err_reply(-ENOMEM, NULL);
		return;
	}
	rc = privd_parse(buf, n, q, err, sizeof(err));
	if (!rc)
		rc = privd_ops_run(d, q, out, fds, nfds, err, sizeof(err));
	explicit_bzero(q, sizeof(*q));	/* a wireguard.conf's keys */
	free(q);
	if (rc) {
		json_decref(out);
		out = privd_err_reply(rc, err);
	}
	*reply = out;
}

/* ---- the helper ---- */

static int privd_send(int sock, json_t *reply, const int *fds, size_t nfds)
{
	union {
		char buf[CMSG_SPACE(3 * sizeof(int))];
		struct cmsghdr align;
	} u;
	char *text = json_dumps(reply, JSON_COMPACT);
	struct iovec iov;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t w;

	if (!text)
		return -ENOMEM;
	iov.iov_base = text;
	iov.iov_len = strlen(text);
	if (iov.iov_len > PRIV_REPLY_MAX) {
		free(text);
		return -E2BIG;
	}
	if (nfds) {
		struct cmsghdr *cm;

		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
	}
	do {
		w = sendmsg(sock, &mh, MSG_NOSIGNAL);
	} while (w < 0 && errno == EINTR);
	free(text);
	return w < 0 ? -errno : 0;
}

/*
 * One message in: requests carry no fds, so any that came along are closed
 * and the request refused; a message longer than the buffer arrives cut
 * (MSG_TRUNC) and is refused whole.
 */
static ssize_t privd_recv(int sock, char *buf, size_t n, bool *bad)
{
	union {
		char buf[CMSG_SPACE(8 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { buf, n };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *cm;
	ssize_t r;

	do {
		r = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	*bad = (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0;
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
			size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			int fd;

			for (size_t i = 0; i < k; i++) {
				memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
				close(fd);
			}
			*bad = true;
		}
	}
	return r;
}

static void privd_serve_one(struct privd *d, int sock, char *buf)
{
	int fds[3];
	size_t nfds = 0;
	json_t *reply = NULL;
	bool bad = false;
	ssize_t r = privd_recv(sock, buf, PRIV_REQ_MAX + 1, &bad);

	if (r <= 0)
		return;
	if (bad || r > PRIV_REQ_MAX) {
		char msg[96];

		snprintf(msg, sizeof(msg), "request refused: over %d bytes, or it carried file "
			 "descriptors", PRIV_REQ_MAX);
		reply = privd_err_reply(-E2BIG, msg);
	} else {
		privd_handle(d, buf, (size_t)r, &reply, fds, &nfds);
	}
	if (!reply || privd_send(sock, reply, fds, nfds))
		log_warn("could not send a reply");
	json_decref(reply);
	for (size_t i = 0; i < nfds; i++)
		close(fds[i]);
}

int privd_helper_main(int argc, char **argv)
{
	struct privd d;
	char *buf;
	int sock = PRIVD_SOCK_FD;

	struct rlimit fl;

	/*
	 * The caller chose our fds, rlimits and signal dispositions.  No fd
	 * below 3 may stay closed (the registry would become "stderr"), and a
	 * file size limit must not cut a registry save short.
	 */
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd)
			return EXIT_ERR;
	if (getrlimit(RLIMIT_FSIZE, &fl) == 0 && fl.rlim_cur != fl.rlim_max) {
		fl.rlim_cur = fl.rlim_max;
		setrlimit(RLIMIT_FSIZE, &fl);
	}
	signal(SIGXFSZ, SIG_IGN);
	log_init("hutch-helper", LOG_LVL_INFO);
	signal(SIGPIPE, SIG_IGN);
	if (argc > 1) {
		fprintf(stderr, "%s\n", !strcmp(argv[1], "--version") ? "hutch-helper " HUTCH_VERSION :
			"hutch-helper: started by hutch with its socket on fd 3; it takes no arguments");
		return !strcmp(argv[1], "--version") ? EXIT_OK : EXIT_USAGE;
	}
	if (privd_init_helper(&d, sock))
		return EXIT_USAGE;
	if (getrlimit(RLIMIT_FSIZE, &fl) == 0 && fl.rlim_cur != RLIM_INFINITY &&
	    fl.rlim_cur < PRIVD_REG_FILE_MAX && !d.setup_err[0])
		util_snprintf(d.setup_err, sizeof(d.setup_err),
			      "hutch-helper: the file size limit (ulimit -f) is too small");
	buf = malloc(PRIV_REQ_MAX + 1);
	if (!buf)
		return EXIT_ERR;
	for (;;) {
		struct pollfd p[2] = { { .fd = sock, .events = POLLIN },
				       { .fd = d.watch_fd, .events = POLLIN } };

		if (poll(p, d.watch_fd >= 0 ? 2 : 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (d.watch_fd >= 0 && (p[1].revents & POLLIN))
			privd_watch(&d);
		if (p[0].revents & POLLIN) {
			char peek;
			ssize_t r = recv(sock, &peek, 1, MSG_PEEK | MSG_DONTWAIT);

			if (r == 0)
				break;
			privd_serve_one(&d, sock, buf);
		} else if (p[0].revents & (POLLHUP | POLLERR)) {
			break;
		}
	}
	free(buf);
	if (!d.setup_err[0])
		privd_hangup(&d);
	privd_close(&d);
	return EXIT_OK;
}
