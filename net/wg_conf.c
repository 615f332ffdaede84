// SPDX-License-Identifier: MIT
/*
 * wireguard.conf: reading (owner, mode, type, size checked on the open fd)
 * and parsing (line by line, every field bounded).  See wg_conf.h for what
 * is accepted and why some wg-quick keys are refused.
 */
#include "net/wg_conf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/util.h"

#define WG_LINE_MAX 4096

/* ---- keys ------------------------------------------------------------- */

static int b64_val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * As wg(8)'s key_from_base64(): 43 symbols and one '=' pad; the last
 * symbol carries 4 bits of key and 2 zero bits, so a non-zero tail is a
 * mistyped key, not a different one.
 */
int wg_key_from_base64(const char *s, uint8_t key[WG_KEY_LEN])
{
	uint8_t k[WG_KEY_LEN];
	uint32_t acc = 0;
	size_t o = 0;

	if (!s || strlen(s) != WG_KEY_B64_LEN || s[WG_KEY_B64_LEN - 1] != '=')
		return -EINVAL;
	for (size_t i = 0; i < WG_KEY_B64_LEN - 1; i++) {
		int v = b64_val(s[i]);

		if (v < 0)
			return -EINVAL;
		acc = (acc << 6) | (uint32_t)v;
		if (i % 4 == 3) {
			k[o++] = (uint8_t)(acc >> 16);
			k[o++] = (uint8_t)(acc >> 8);
			k[o++] = (uint8_t)acc;
			acc = 0;
		}
	}
	/* 40 symbols made 30 bytes; 3 symbols (18 bits) left: 2 bytes + 2 zero bits */
	if (acc & 3)
		return -EINVAL;
	k[o++] = (uint8_t)(acc >> 10);
	k[o++] = (uint8_t)(acc >> 2);
	memcpy(key, k, WG_KEY_LEN);
	explicit_bzero(k, sizeof(k));
	return 0;
}

void wg_key_to_base64(const uint8_t key[WG_KEY_LEN], char out[WG_KEY_B64_LEN + 1])
{
	static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0, i;

	for (i = 0; i + 3 <= WG_KEY_LEN; i += 3) {
		uint32_t v = (uint32_t)key[i] << 16 | (uint32_t)key[i + 1] << 8 | key[i + 2];

		out[o++] = al[(v >> 18) & 63];
		out[o++] = al[(v >> 12) & 63];
		out[o++] = al[(v >> 6) & 63];
		out[o++] = al[v & 63];
	}
	/* 2 bytes left */
	{
		uint32_t v = (uint32_t)key[i] << 16 | (uint32_t)key[i + 1] << 8;

		out[o++] = al[(v >> 18) & 63];
		out[o++] = al[(v >> 12) & 63];
		out[o++] = al[(v >> 6) & 63];
		out[o++] = '=';
	}
	out[o] = 0;
}

/* ---- addresses -------------------------------------------------------- */

static int ip_parse(const char *s, struct wg_ip *out)
{
	struct wg_ip a = { 0 };

	if (inet_pton(AF_INET, s, a.addr) == 1)
		a.family = AF_INET;
	else if (inet_pton(AF_INET6, s, a.addr) == 1)
		a.family = AF_INET6;
	else
		return -EINVAL;
	*out = a;
	return 0;
}

/* "A" (a host route) or "A/N" */
static int cidr_parse(const char *s, struct wg_cidr *out)
{
	char addr[INET6_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	struct wg_ip ip;
	long p;

	if (n == 0 || n >= sizeof(addr))
		return -EINVAL;
	memcpy(addr, s, n);
	addr[n] = 0;
	if (ip_parse(addr, &ip))
		return -EINVAL;
	p = ip.family == AF_INET ? 32 : 128;
	if (slash && util_parse_long(slash + 1, 0, p, &p))
		return -EINVAL;
	out->family = ip.family;
	memcpy(out->addr, ip.addr, sizeof(out->addr));
	out->prefix = (uint8_t)p;
	return 0;
}

int wg_ip_str(const struct wg_ip *a, char *buf, size_t n)
{
	return inet_ntop(a->family, a->addr, buf, (socklen_t)n) ? 0 : -ENAMETOOLONG;
}

int wg_cidr_str(const struct wg_cidr *c, char *buf, size_t n)
{
	char a[INET6_ADDRSTRLEN];

	if (!inet_ntop(c->family, c->addr, a, sizeof(a)))
		return -EINVAL;
	return util_snprintf(buf, n, "%s/%u", a, c->prefix);
}

const struct wg_cidr *wg_conf_first_v4(const struct wg_conf *c)
{
	for (size_t i = 0; i < c->n_addr; i++)
		if (c->addr[i].family == AF_INET)
			return &c->addr[i];
	return NULL;
}

const struct wg_ip *wg_conf_dns_v4(const struct wg_conf *c)
{
	for (size_t i = 0; i < c->n_dns; i++)
		if (c->dns[i].family == AF_INET)
			return &c->dns[i];
	return NULL;
}

bool wg_conf_covers_default(const struct wg_conf *c)
{
	for (size_t i = 0; i < c->peer.n_allowed; i++)
		if (c->peer.allowed[i].family == AF_INET && c->peer.allowed[i].prefix == 0)
			return true;
	return false;
}

/* host names as DNS allows them: letters, digits, '-', '.'; no empty label */
static bool host_name_ok(const char *s)
{
	size_t n = strlen(s), label = 0;

	if (n == 0 || n > WG_HOST_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)c) && c != '-')
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0 || s[n - 1] == '.';
}

/* "host:port", "[v6]:port" */
static int endpoint_parse(const char *s, struct wg_peer *p, const char **why)
{
	char host[WG_HOST_MAX + 1];
	const char *colon;
	size_t n;
	long port;

	if (s[0] == '[') {
		const char *end = strchr(s, ']');

		if (!end || end[1] != ':') {
			*why = "an IPv6 endpoint is written [address]:port";
			return -EINVAL;
		}
		n = (size_t)(end - s - 1);
		colon = end + 1;
		if (n == 0 || n >= sizeof(host)) {
			*why = "bad IPv6 address";
			return -EINVAL;
		}
		memcpy(host, s + 1, n);
		host[n] = 0;
		if (inet_pton(AF_INET6, host, &(struct in6_addr){ 0 }) != 1) {
			*why = "bad IPv6 address";
			return -EINVAL;
		}
	} else {
		colon = strrchr(s, ':');
		if (!colon) {
			*why = "expected host:port";
			return -EINVAL;
		}
		n = (size_t)(colon - s);
		if (n == 0 || n >= sizeof(host)) {
			*why = "expected host:port";
			return -EINVAL;
		}
		memcpy(host, s, n);
		host[n] = 0;
		if (strchr(host, ':')) {
			*why = "an IPv6 endpoint is written [address]:port";
			return -EINVAL;
		}
		if (!host_name_ok(host)) {
			*why = "not an address or a host name";
			return -EINVAL;
		}
	}
	if (util_parse_long(colon + 1, 1, 65535, &port)) {
		*why = "the port must be 1..65535";
		return -EINVAL;
	}
	memcpy(p->host, host, n + 1);
	p->port = (uint16_t)port;
	return 0;
}

/* ---- the parser ------------------------------------------------------- */

enum wg_sec { SEC_NONE, SEC_IFACE, SEC_PEER };

/* line numbers of what was seen (0: not yet), for "given twice" and "missing" */
struct wg_seen {
	unsigned iface, peer, private_key, mtu, listen_port, public_key, psk, endpoint, keepalive,
		allowed;
};

struct wg_parse {
	const char *name;
	unsigned line;
	enum wg_sec sec;
	struct wg_seen seen;
	struct wg_conf *c;
	struct wg_conf_error *e;
};

__attribute__((format(printf, 2, 3)))
static int perr(struct wg_parse *p, const char *fmt, ...)
{
	char m[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(m, sizeof(m), fmt, ap);	/* a message; long input is cut visibly below */
	va_end(ap);
	if (p->line)
		snprintf(p->e->msg, sizeof(p->e->msg), "%s:%u: %s", p->name, p->line, m);
	else
		snprintf(p->e->msg, sizeof(p->e->msg), "%s: %s", p->name, m);
	return -EINVAL;
}

static char *trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		*--end = 0;
	return s;
}

static int once(struct wg_parse *p, unsigned *seen, const char *key)
{
	if (*seen)
		return perr(p, "%s given twice (first on line %u)", key, *seen);
	*seen = p->line;
	return 0;
}

/* for each comma-separated item of @v (trimmed, non-empty), call @fn */
static int each_item(struct wg_parse *p, char *v, const char *key,
		     int (*fn)(struct wg_parse *p, const char *item))
{
	int rc;

	if (!*v)
		return perr(p, "%s is empty", key);
	for (;;) {
		char *comma = strchr(v, ',');
		char *item;

		if (comma)
			*comma = 0;
		item = trim(v);
		if (!*item)
			return perr(p, "%s: empty list item", key);
		if ((rc = fn(p, item)))
			return rc;
		if (!comma)
			return 0;
		v = comma + 1;
	}
}

static int item_address(struct wg_parse *p, const char *s)
{
	struct wg_cidr c;

	if (cidr_parse(s, &c))
		return perr(p, "Address: '%.64s' is not an address or address/prefix", s);
	if (p->c->n_addr >= WG_ADDR_MAX)
		return perr(p, "Address: more than %d addresses", WG_ADDR_MAX);
	p->c->addr[p->c->n_addr++] = c;
	return 0;
}

static int item_dns(struct wg_parse *p, const char *s)
{
	struct wg_ip a;

	if (ip_parse(s, &a))
		return perr(p, "DNS: '%.64s' is not an address (search domains are not supported: "
			       "the guest's resolver is set by hutch)", s);
	if (p->c->n_dns >= WG_DNS_MAX)
		return perr(p, "DNS: more than %d servers", WG_DNS_MAX);
	p->c->dns[p->c->n_dns++] = a;
	return 0;
}

static int item_allowed(struct wg_parse *p, const char *s)
{
	struct wg_cidr c;

	if (cidr_parse(s, &c))
		return perr(p, "AllowedIPs: '%.64s' is not an address/prefix", s);
	if (p->c->peer.n_allowed >= WG_ALLOWED_MAX)
		return perr(p, "AllowedIPs: more than %d entries", WG_ALLOWED_MAX);
	p->c->peer.allowed[p->c->peer.n_allowed++] = c;
	return 0;
}

static int key_value(struct wg_parse *p, const char *key, const char *v, uint8_t out[WG_KEY_LEN])
{
	if (wg_key_from_base64(v, out))
		return perr(p, "%s is not a WireGuard key (44 characters of base64 ending in '=', "
			       "as `wg genkey` prints)", key);
	return 0;
}

static int num_value(struct wg_parse *p, const char *key, const char *v, long min, long max,
		     long *out)
{
	if (util_parse_long(v, min, max, out))
		return perr(p, "%s must be a number in %ld..%ld", key, min, max);
	return 0;
}

static int iface_key(struct wg_parse *p, const char *k, char *v)
{
	struct wg_conf *c = p->c;
	long n;
	int rc;

	if (!strcasecmp(k, "PrivateKey"))
		return (rc = once(p, &p->seen.private_key, "PrivateKey")) ? rc :
									     key_value(p, "PrivateKey", v, c->private_key);
	if (!strcasecmp(k, "Address"))
		return each_item(p, v, "Address", item_address);
	if (!strcasecmp(k, "DNS"))
		return each_item(p, v, "DNS", item_dns);
	if (!strcasecmp(k, "MTU")) {
		if ((rc = once(p, &p->seen.mtu, "MTU")) || (rc = num_value(p, "MTU", v, 576, 9000, &n)))
			return rc;
		c->mtu = (unsigned)n;
		return 0;
	}
	if (!strcasecmp(k, "ListenPort")) {
		if ((rc = once(p, &p->seen.listen_port, "ListenPort")) ||
		    (rc = num_value(p, "ListenPort", v, 0, 65535, &n)))
			return rc;
		c->listen_port = (uint16_t)n;
		return 0;
	}
	if (!strcasecmp(k, "PreUp") || !strcasecmp(k, "PostUp") || !strcasecmp(k, "PreDown") ||
	    !strcasecmp(k, "PostDown"))
		return perr(p, "%s is refused: hutch never runs commands from a project file", k);
	if (!strcasecmp(k, "Table") || !strcasecmp(k, "FwMark"))
		return perr(p, "%s is refused: hutch chooses the VM's routing table and mark itself", k);
	if (!strcasecmp(k, "SaveConfig"))
		return perr(p, "SaveConfig is refused: hutch never writes wireguard.conf");
	return perr(p, "unknown key '%.40s' in [Interface]", k);
}

static int peer_key(struct wg_parse *p, const char *k, char *v)
{
	struct wg_peer *pe = &p->c->peer;
	const char *why = "";
	long n;
	int rc;

	if (!strcasecmp(k, "PublicKey"))
		return (rc = once(p, &p->seen.public_key, "PublicKey")) ? rc :
									    key_value(p, "PublicKey", v, pe->public_key);
	if (!strcasecmp(k, "PresharedKey")) {
		if ((rc = once(p, &p->seen.psk, "PresharedKey")) ||
		    (rc = key_value(p, "PresharedKey", v, pe->psk)))
			return rc;
		pe->has_psk = true;
		return 0;
	}
	if (!strcasecmp(k, "Endpoint")) {
		if ((rc = once(p, &p->seen.endpoint, "Endpoint")))
			return rc;
		if (endpoint_parse(v, pe, &why))
			return perr(p, "Endpoint '%.80s': %s", v, why);
		return 0;
	}
	if (!strcasecmp(k, "AllowedIPs")) {
		if (!p->seen.allowed)
			p->seen.allowed = p->line;
		return each_item(p, v, "AllowedIPs", item_allowed);
	}
	if (!strcasecmp(k, "PersistentKeepalive")) {
		if ((rc = once(p, &p->seen.keepalive, "PersistentKeepalive")))
			return rc;
		if (!strcasecmp(v, "off")) {
			pe->keepalive = 0;
			return 0;
		}
		if ((rc = num_value(p, "PersistentKeepalive", v, 0, 65535, &n)))
			return rc;
		pe->keepalive = (uint16_t)n;
		return 0;
	}
	return perr(p, "unknown key '%.40s' in [Peer]", k);
}

static int section(struct wg_parse *p, const char *s)
{
	if (!strcasecmp(s, "[Interface]")) {
		if (p->seen.iface)
			return perr(p, "a second [Interface] (the first is on line %u)", p->seen.iface);
		p->seen.iface = p->line;
		p->sec = SEC_IFACE;
		return 0;
	}
	if (!strcasecmp(s, "[Peer]")) {
		if (p->seen.peer)
			return perr(p, "a second [Peer] (the first is on line %u): hutch's tunnel has "
				       "exactly one peer", p->seen.peer);
		p->seen.peer = p->line;
		p->sec = SEC_PEER;
		return 0;
	}
	return perr(p, "unknown section '%.40s' (expected [Interface] or [Peer])", s);
}

static int parse_line(struct wg_parse *p, char *line)
{
	char *hash = strchr(line, '#'), *eq, *k, *v;

	if (hash)
		*hash = 0;
	line = trim(line);
	if (!*line)
		return 0;
	if (line[0] == '[')
		return section(p, line);
	eq = strchr(line, '=');
	if (!eq)
		return perr(p, "expected Key = Value or a [Section]");
	*eq = 0;
	k = trim(line);
	v = trim(eq + 1);
	if (!*k)
		return perr(p, "a value without a key");
	if (p->sec == SEC_NONE)
		return perr(p, "'%.40s' before any [Interface] or [Peer] section", k);
	if (!*v)
		return perr(p, "%.40s has no value", k);
	return p->sec == SEC_IFACE ? iface_key(p, k, v) : peer_key(p, k, v);
}

/* what must be there once the whole file is read */
static int parse_finish(struct wg_parse *p)
{
	struct wg_conf *c = p->c;

	p->line = 0;
	if (!p->seen.iface)
		return perr(p, "no [Interface] section");
	p->line = p->seen.iface;
	if (!p->seen.private_key)
		return perr(p, "[Interface] has no PrivateKey");
	if (!wg_conf_first_v4(c))
		return perr(p, "[Interface] has no IPv4 Address (the tunnel's own address, e.g. "
			       "Address = 10.64.0.2/32)");
	if (!p->seen.peer) {
		p->line = 0;
		return perr(p, "no [Peer] section: hutch's tunnel needs exactly one peer");
	}
	p->line = p->seen.peer;
	if (!p->seen.public_key)
		return perr(p, "[Peer] has no PublicKey");
	if (!p->seen.endpoint)
		return perr(p, "[Peer] has no Endpoint (host:port): hutch connects to the peer, "
			       "it does not wait for it");
	if (!c->peer.n_allowed)
		return perr(p, "[Peer] has no AllowedIPs (e.g. AllowedIPs = 0.0.0.0/0)");
	if (!memcmp(c->private_key, c->peer.public_key, WG_KEY_LEN))
		return perr(p, "the peer's PublicKey is this interface's PrivateKey");
	return 0;
}

int wg_conf_parse(const char *buf, size_t len, const char *name, struct wg_conf *out,
		  struct wg_conf_error *e)
{
	struct wg_parse p = { .name = name ? name : WG_CONF_NAME, .c = out, .e = e };
	char line[WG_LINE_MAX + 1];
	size_t off = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	out->mtu = WG_MTU_DEFAULT;
	e->msg[0] = 0;
	if (len > WG_CONF_MAX_BYTES)
		return perr(&p, "larger than %d bytes", WG_CONF_MAX_BYTES);
	if (memchr(buf, 0, len))
		return perr(&p, "a NUL byte: not a text file");
	while (off < len) {
		const char *nl = memchr(buf + off, '\n', len - off);
		size_t n = nl ? (size_t)(nl - (buf + off)) : len - off;

		p.line++;
		if (n > WG_LINE_MAX) {
			rc = perr(&p, "line longer than %d bytes", WG_LINE_MAX);
			goto err;
		}
		memcpy(line, buf + off, n);
		line[n] = 0;
		off += n + (nl ? 1 : 0);
		if ((rc = parse_line(&p, line)))
			goto err;
	}
	if ((rc = parse_finish(&p)))
		goto err;
	explicit_bzero(line, sizeof(line));
	return 0;
err:
	explicit_bzero(line, sizeof(line));
	wg_conf_wipe(out);
	return rc;
}

void wg_conf_wipe(struct wg_conf *c)
{
	explicit_bzero(c, sizeof(*c));
}

/* ---- the file --------------------------------------------------------- */

/* a message for the user; long paths are cut, the reason stays readable */
__attribute__((format(printf, 2, 3)))
static void set_err(struct wg_conf_error *e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
}

/* the invoking user: the uid, or under sudo the user who ran sudo */
static bool owner_ok(uid_t owner)
{
	const char *s = getuid() == 0 ? getenv("SUDO_UID") : NULL;
	long su;

	if (owner == getuid() || owner == geteuid())
		return true;
	return s && util_parse_long(s, 1, 0x7fffffff, &su) == 0 && owner == (uid_t)su;
}

bool wg_conf_present(const char *project_dir)
{
	char path[4096];
	struct stat sb;

	return util_path_join(path, sizeof(path), project_dir, WG_CONF_NAME) == 0 &&
	       lstat(path, &sb) == 0;
}

/* open and check the file; the fd on success, else a negative errno with @e set */
static int conf_open(const char *path, struct wg_conf_error *e, size_t *size)
{
	struct stat sb;
	int fd, rc;

	/* O_NONBLOCK: a FIFO named wireguard.conf must not hang `up` */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		rc = -errno;
		if (rc == -ENOENT)
			return rc;
		if (rc == -ELOOP)
			set_err(e, "%s: a symbolic link: refused (it must be a "
				 "regular file in the project)", path);
		else
			set_err(e, "%s: cannot read it: %s", path, strerror(-rc));
		return rc;
	}
	rc = -EACCES;
	if (fstat(fd, &sb) < 0) {
		rc = -errno;
		set_err(e, "%s: %s", path, strerror(-rc));
	} else if (!S_ISREG(sb.st_mode)) {
		set_err(e, "%s: not a regular file", path);
	} else if (!owner_ok(sb.st_uid)) {
		set_err(e, "%s: owned by uid %u, not by you: refused (it "
			 "decides where the VM's traffic goes)", path, (unsigned)sb.st_uid);
	} else if (sb.st_mode & (S_IRGRP | S_IROTH)) {
		set_err(e, "%s: other users can read it (mode %03o) and it "
			 "holds the private key: refused; run chmod 600 %s", path,
			 (unsigned)(sb.st_mode & 0777), path);
	} else if (sb.st_mode & (S_IWGRP | S_IWOTH)) {
		set_err(e, "%s: other users can change it (mode %03o): "
			 "refused; run chmod 600 %s", path, (unsigned)(sb.st_mode & 0777), path);
	} else if (sb.st_size > WG_CONF_MAX_BYTES) {
		set_err(e, "%s: larger than %d bytes", path, WG_CONF_MAX_BYTES);
		rc = -EFBIG;
	} else {
		*size = (size_t)sb.st_size;
		return fd;
	}
	close(fd);
	return rc;
}

int wg_conf_load(const char *project_dir, struct wg_conf *out, struct wg_conf_error *e)
{
	char path[4096], *buf;
	size_t size = 0, have = 0;
	int fd, rc;

	e->msg[0] = 0;
	if ((rc = util_path_join(path, sizeof(path), project_dir, WG_CONF_NAME))) {
		set_err(e, "%s: path too long", project_dir);
		return rc;
	}
	fd = conf_open(path, e, &size);
	if (fd < 0)
		return fd;
	buf = malloc(WG_CONF_MAX_BYTES + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	/* read to EOF, bounded: the size may change under us */
	for (;;) {
		ssize_t r = read(fd, buf + have, WG_CONF_MAX_BYTES + 1 - have);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			set_err(e, "%s: %s", path, strerror(-rc));
			goto out;
		}
		if (r == 0)
			break;
		have += (size_t)r;
		if (have > WG_CONF_MAX_BYTES)
			break;
	}
	rc = wg_conf_parse(buf, have, path, out, e);
out:
	explicit_bzero(buf, WG_CONF_MAX_BYTES + 1);
	free(buf);
	close(fd);
	return rc;
}

/* ---- display ---------------------------------------------------------- */

static void print_list(FILE *out, const char *ind, const char *key, const struct wg_cidr *c, size_t n)
{
	char b[64];

	if (!n)
		return;
	fprintf(out, "%s%s = ", ind, key);
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%s%s", i ? ", " : "", wg_cidr_str(&c[i], b, sizeof(b)) ? "?" : b);
	fputc('\n', out);
}

/* @c as wg-quick text: for people (@secrets false: keys redacted, indented) or for wg_conf_parse() */
static int conf_emit(FILE *out, const struct wg_conf *c, bool secrets)
{
	const char *ind = secrets ? "" : "  ";
	char b[64];

	if (secrets)
		wg_key_to_base64(c->private_key, b);
	fprintf(out, "%s[Interface]\n%sPrivateKey = %s\n", ind, ind, secrets ? b : "(redacted)");
	print_list(out, ind, "Address", c->addr, c->n_addr);
	if (c->n_dns) {
		fprintf(out, "%sDNS = ", ind);
		for (size_t i = 0; i < c->n_dns; i++)
			fprintf(out, "%s%s", i ? ", " : "", wg_ip_str(&c->dns[i], b, sizeof(b)) ? "?" : b);
		fputc('\n', out);
	}
	fprintf(out, "%sMTU = %u\n", ind, c->mtu);
	if (c->listen_port)
		fprintf(out, "%sListenPort = %u\n", ind, c->listen_port);
	wg_key_to_base64(c->peer.public_key, b);
	fprintf(out, "%s[Peer]\n%sPublicKey = %s\n", ind, ind, b);
	if (c->peer.has_psk) {
		if (secrets)
			wg_key_to_base64(c->peer.psk, b);
		fprintf(out, "%sPresharedKey = %s\n", ind, secrets ? b : "(redacted)");
	}
	fprintf(out, strchr(c->peer.host, ':') ? "%sEndpoint = [%s]:%u\n" : "%sEndpoint = %s:%u\n", ind,
		c->peer.host, c->peer.port);
	print_list(out, ind, "AllowedIPs", c->peer.allowed, c->peer.n_allowed);
	if (c->peer.keepalive)
		fprintf(out, "%sPersistentKeepalive = %u\n", ind, c->peer.keepalive);
	explicit_bzero(b, sizeof(b));
	return ferror(out) ? -EIO : 0;
}

int wg_conf_print(FILE *out, const struct wg_conf *c)
{
	fprintf(out, "wireguard.conf:\n");
	return conf_emit(out, c, false);
}

int wg_conf_text(const struct wg_conf *c, char *buf, size_t n, size_t *len)
{
	char *text = NULL;
	size_t tlen = 0;
	FILE *f = open_memstream(&text, &tlen);
	int rc;

	if (!f)
		return -errno;
	rc = conf_emit(f, c, true);
	if (fclose(f) && !rc)
		rc = -EIO;
	if (!rc && tlen >= n)
		rc = -ENOSPC;	/* never cut: a cut key or AllowedIPs would be another tunnel */
	if (!rc) {
		memcpy(buf, text, tlen + 1);
		*len = tlen;
	} else if (n) {
		explicit_bzero(buf, n);
	}
	if (text)
		explicit_bzero(text, tlen);
	free(text);
	return rc;
}

static json_t *cidr_array(const struct wg_cidr *c, size_t n)
{
	json_t *a = json_array();
	char b[64];

	for (size_t i = 0; a && i < n; i++)
		if (wg_cidr_str(&c[i], b, sizeof(b)) == 0)
			json_array_append_new(a, json_string(b));
	return a;
}

json_t *wg_conf_to_json(const struct wg_conf *c)
{
	json_t *o, *dns = json_array();
	char b[64];

	for (size_t i = 0; dns && i < c->n_dns; i++)
		if (wg_ip_str(&c->dns[i], b, sizeof(b)) == 0)
			json_array_append_new(dns, json_string(b));
	wg_key_to_base64(c->peer.public_key, b);
	o = json_pack("{s:s, s:o, s:o, s:i, s:i, s:{s:s, s:b, s:s, s:i, s:o, s:i}}", "private_key",
		      "(redacted)", "address", cidr_array(c->addr, c->n_addr), "dns", dns, "mtu",
		      (int)c->mtu, "listen_port", (int)c->listen_port, "peer", "public_key", b,
		      "preshared_key", c->peer.has_psk, "endpoint_host", c->peer.host, "endpoint_port",
		      (int)c->peer.port, "allowed_ips", cidr_array(c->peer.allowed, c->peer.n_allowed),
		      "persistent_keepalive", (int)c->peer.keepalive);
	return o;
}
