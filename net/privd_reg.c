// SPDX-License-Identifier: MIT
/*
 * The helper's registry: who owns which VM network and which mount.
 *
 * One root-owned file, <rundir>/registry.json (mode 0600), opened once when
 * the helper starts (CAP_DAC_OVERRIDE raised for that open only) and
 * flock()ed around every operation: the lock is also the network lock that
 * serialises bridge set-up, teardown and the choice of addresses and MACs,
 * across users and across in-process (root) and helper callers.  Two slots
 * and a header make every save atomic (privd_reg_save()).
 *
 * {"vms": [{"id", "uid", "pid", "start", "ns", "name", "bridge", "gateway",
 *           "prefix", "addr", "mac", "isolation", "ipv6", "host_access"}],
 *  "mounts": [{"uid", "pid", "start", "ns", "image", "dir"}]}
 *
 * The file is root's, but it is parsed like any other input: bounded,
 * typed, and a malformed entry is dropped (its objects become orphans that
 * `gc` removes) rather than trusted.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <unistd.h>

#include "net/privd.h"
#include "net/tap.h"
#include "net/wg_rt.h"
#include "src/log.h"
#include "src/util.h"

int net_mac_parse(const char *s, uint8_t mac[6])
{
	unsigned int b[6];
	char end;

	if (!s || strlen(s) != 17 ||
	    sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
		   &end) != 6)
		return -EINVAL;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)b[i];
	/* a unicast, non-zero address */
	if ((mac[0] & 1) || !(mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]))
		return -EINVAL;
	return 0;
}

static int reg_get_u64(json_t *o, const char *k, unsigned long long max, unsigned long long *out)
{
	json_t *v = json_object_get(o, k);

	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (unsigned long long)json_integer_value(v) > max)
		return -EINVAL;
	*out = (unsigned long long)json_integer_value(v);
	return 0;
}

static int reg_get_owner(json_t *o, struct privd_ent *e)
{
	unsigned long long uid, pid;

	if (reg_get_u64(o, "uid", 0xfffffffe, &uid) || reg_get_u64(o, "pid", 4194304, &pid) ||
	    reg_get_u64(o, "start", ~0ULL >> 1, &e->start) || reg_get_u64(o, "ns", ~0ULL >> 1, &e->ns))
		return -EINVAL;
	e->uid = (uid_t)uid;
	e->pid = (pid_t)pid;
	return 0;
}

static int reg_get_str(json_t *o, const char *k, char *buf, size_t n)
{
	const char *s = json_string_value(json_object_get(o, k));

	if (!s)
		return -EINVAL;
	return util_snprintf(buf, n, "%s", s);
}

static int reg_parse_ha(json_t *arr, struct privd_ent *e)
{
	json_t *h;
	size_t i;

	if (!json_is_array(arr) || json_array_size(arr) > PRIV_HA_MAX)
		return -EINVAL;
	json_array_foreach(arr, i, h) {
		struct cfg_host_access *ha = &e->ha[i];
		const char *lan = json_string_value(json_object_get(h, "lan"));
		json_int_t port = json_integer_value(json_object_get(h, "port"));
		const char *proto = json_string_value(json_object_get(h, "proto"));

		if (lan) {
			ha->kind = CFG_HA_LAN_HOST;
			if (inet_pton(AF_INET, lan, &ha->addr) != 1)
				return -EINVAL;
		} else if (proto && port > 0 && port < 65536) {
			ha->kind = CFG_HA_HOST_PORT;
			ha->port = (uint16_t)port;
			if (!strcmp(proto, "tcp"))
				ha->proto = CFG_PROTO_TCP;
			else if (!strcmp(proto, "udp"))
				ha->proto = CFG_PROTO_UDP;
			else
				return -EINVAL;
		} else {
			return -EINVAL;
		}
	}
	e->n_ha = json_array_size(arr);
	return 0;
}

static int reg_parse_vm(json_t *o, struct privd_ent *e)
{
	char gw[INET_ADDRSTRLEN], addr[INET_ADDRSTRLEN], mac[18], sub[32];
	unsigned long long prefix;

	memset(e, 0, sizeof(*e));
	e->kind = PRIVD_ENT_NET;
	if (!json_is_object(o) || reg_get_owner(o, e) || reg_get_str(o, "id", e->id, sizeof(e->id)) ||
	    !privd_id_ok(e->id) || reg_get_str(o, "name", e->name, sizeof(e->name)) ||
	    reg_get_str(o, "bridge", e->nc.bridge, sizeof(e->nc.bridge)) ||
	    reg_get_str(o, "gateway", gw, sizeof(gw)) || reg_get_u64(o, "prefix", 30, &prefix) ||
	    reg_get_str(o, "addr", addr, sizeof(addr)) || reg_get_str(o, "mac", mac, sizeof(mac)) ||
	    !json_is_boolean(json_object_get(o, "isolation")) ||
	    !json_is_boolean(json_object_get(o, "ipv6")) ||
	    util_snprintf(sub, sizeof(sub), "%s/%llu", gw, prefix) ||
	    net_subnet_parse(sub, &e->nc) || inet_pton(AF_INET, addr, &e->addr) != 1 ||
	    net_mac_parse(mac, e->mac) || reg_parse_ha(json_object_get(o, "host_access"), e))
		return -EINVAL;
	e->isolation = json_is_true(json_object_get(o, "isolation"));
	e->ipv6 = json_is_true(json_object_get(o, "ipv6"));
	e->dns = json_is_true(json_object_get(o, "dns"));	/* absent in older entries: closed */
	if (json_object_get(o, "wg") && privd_wg_parse(json_object_get(o, "wg"), &e->wg))
		return -EINVAL;
	return 0;
}

static int reg_parse_wg(json_t *o, struct privd_ent *e)
{
	const char *impl = json_string_value(json_object_get(o, "impl"));
	unsigned long long table;
	char ifname[IFNAMSIZ];

	memset(e, 0, sizeof(*e));
	e->kind = PRIVD_ENT_WG;
	if (!json_is_object(o) || reg_get_owner(o, e) || reg_get_str(o, "id", e->id, sizeof(e->id)) ||
	    wg_ifname(e->id, ifname, sizeof(ifname)) || reg_get_str(o, "name", e->name, sizeof(e->name)) ||
	    reg_get_u64(o, "table", WG_TABLE_MAX, &table) || table < WG_TABLE_MIN || !impl)
		return -EINVAL;
	e->table = (uint32_t)table;
	e->impl = !strcmp(impl, "kernel") ? WG_IMPL_KERNEL : !strcmp(impl, "wireguard-go") ? WG_IMPL_GO :
		  WG_IMPL_NONE;
	return 0;
}

static int reg_parse_mount(json_t *o, struct privd_ent *e)
{
	const char *img = json_string_value(json_object_get(o, "image"));
	const char *dir = json_string_value(json_object_get(o, "dir"));

	memset(e, 0, sizeof(*e));
	e->kind = PRIVD_ENT_MOUNT;
	if (!json_is_object(o) || reg_get_owner(o, e) || !img || !dir || img[0] != '/' ||
	    dir[0] != '/' || strlen(img) >= PATH_MAX || strlen(dir) >= PATH_MAX)
		return -EINVAL;
	e->image = (char *)img;	/* borrowed until privd_reg_add() copies it */
	e->dir = (char *)dir;
	return 0;
}

int privd_reg_add(struct privd_reg *r, const struct privd_ent *e)
{
	struct privd_ent *c;

	if (r->n >= PRIVD_REG_MAX_ENTS)
		return -ENOSPC;
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		struct privd_ent *ne = realloc(r->e, cap * sizeof(*ne));

		if (!ne)
			return -ENOMEM;
		r->e = ne;
		r->cap = cap;
	}
	c = &r->e[r->n];
	*c = *e;
	c->image = c->dir = NULL;
	if (e->kind == PRIVD_ENT_MOUNT) {
		c->image = strdup(e->image);
		c->dir = strdup(e->dir);
		if (!c->image || !c->dir) {
			free(c->image);
			free(c->dir);
			return -ENOMEM;
		}
	}
	r->n++;
	return 0;
}

void privd_reg_del(struct privd_reg *r, size_t i)
{
	if (i >= r->n)
		return;
	free(r->e[i].image);
	free(r->e[i].dir);
	memmove(&r->e[i], &r->e[i + 1], (r->n - i - 1) * sizeof(r->e[0]));
	r->n--;
}

void privd_reg_free(struct privd_reg *r)
{
	while (r->n)
		privd_reg_del(r, r->n - 1);
	free(r->e);
	memset(r, 0, sizeof(*r));
}

static int reg_parse_list(json_t *arr, struct privd_reg *r,
			  int (*parse)(json_t *o, struct privd_ent *e), size_t *bad)
{
	struct privd_ent e;
	json_t *o;
	size_t i;
	int rc;

	if (!arr)
		return 0;
	if (!json_is_array(arr))
		return -EINVAL;
	json_array_foreach(arr, i, o) {
		if (parse(o, &e)) {
			(*bad)++;
			continue;
		}
		if ((rc = privd_reg_add(r, &e)))
			return rc;
	}
	return 0;
}

int privd_reg_parse(const char *buf, size_t n, struct privd_reg *r)
{
	json_t *j;
	int rc;

	size_t blank = 0, bad = 0;

	memset(r, 0, sizeof(*r));
	while (blank < n && (buf[blank] == ' ' || buf[blank] == '\t' || buf[blank] == '\r' ||
			     buf[blank] == '\n'))
		blank++;
	if (blank == n)
		return 0;	/* a new (empty) registry */
	if (n > PRIVD_REG_MAX_BYTES)
		return -EFBIG;
	j = json_loadb(buf, n, JSON_DISABLE_EOF_CHECK | JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		log_warn("registry: not a JSON object; starting from an empty one");
		return 0;
	}
	rc = reg_parse_list(json_object_get(j, "vms"), r, reg_parse_vm, &bad);
	if (!rc)
		rc = reg_parse_list(json_object_get(j, "mounts"), r, reg_parse_mount, &bad);
	if (!rc)
		rc = reg_parse_list(json_object_get(j, "tunnels"), r, reg_parse_wg, &bad);
	json_decref(j);
	if (bad)
		log_warn("registry: %zu malformed entries dropped", bad);
	if (rc)
		privd_reg_free(r);
	return rc;
}

static json_t *reg_ent_json(const struct privd_ent *e)
{
	char gw[INET_ADDRSTRLEN], addr[INET_ADDRSTRLEN], mac[18];
	json_t *o, *ha;

	if (e->kind == PRIVD_ENT_WG)
		return json_pack("{s:s, s:I, s:I, s:I, s:I, s:s, s:I, s:s}", "id", e->id, "uid",
				 (json_int_t)e->uid, "pid", (json_int_t)e->pid, "start", (json_int_t)e->start,
				 "ns", (json_int_t)e->ns, "name", e->name, "table", (json_int_t)e->table,
				 "impl", wg_impl_name(e->impl));
	if (e->kind == PRIVD_ENT_MOUNT)
		return json_pack("{s:I, s:I, s:I, s:I, s:s, s:s}", "uid", (json_int_t)e->uid, "pid",
				 (json_int_t)e->pid, "start", (json_int_t)e->start, "ns",
				 (json_int_t)e->ns, "image", e->image, "dir", e->dir);
	inet_ntop(AF_INET, &e->nc.gw, gw, sizeof(gw));
	inet_ntop(AF_INET, &e->addr, addr, sizeof(addr));
	if (util_snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", e->mac[0], e->mac[1],
			  e->mac[2], e->mac[3], e->mac[4], e->mac[5]))
		return NULL;
	ha = json_array();
	for (size_t i = 0; ha && i < e->n_ha; i++) {
		char a[INET_ADDRSTRLEN];
		const struct cfg_host_access *h = &e->ha[i];

		inet_ntop(AF_INET, &h->addr, a, sizeof(a));
		json_array_append_new(ha, h->kind == CFG_HA_LAN_HOST ?
				      json_pack("{s:s}", "lan", a) :
				      json_pack("{s:s, s:i}", "proto",
						h->proto == CFG_PROTO_UDP ? "udp" : "tcp", "port",
						(int)h->port));
	}
	o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:s, s:s, s:s, s:i, s:s, s:s, s:b, s:b, s:b, s:o*}",
		      "id", e->id, "uid", (json_int_t)e->uid, "pid", (json_int_t)e->pid, "start",
		      (json_int_t)e->start, "ns", (json_int_t)e->ns, "name", e->name, "bridge",
		      e->nc.bridge, "gateway", gw, "prefix", (int)e->nc.prefix, "addr", addr, "mac",
		      mac, "isolation", e->isolation, "ipv6", e->ipv6, "dns", e->dns, "host_access",
		      ha);
	if (o && e->wg.ifname[0])
		json_object_set_new(o, "wg", privd_wg_json(&e->wg));
	return o;
}

/*
 * The file: a 64-byte header "hutch-registry 1 slot=S len=N" at offset 0,
 * and two slots of PRIVD_REG_MAX_BYTES after the first page.  A save writes
 * the whole new registry into the slot the header does not name, then the
 * header (one small write within one page, which a signal cannot cut): a
 * writer killed at any instant (the caller may kill -9 its own helper)
 * leaves the header naming a complete registry.
 */
#define REG_HDR_LEN 64
#define REG_SLOT0   4096

static off_t reg_slot_off(unsigned slot)
{
	return REG_SLOT0 + (off_t)slot * PRIVD_REG_MAX_BYTES;
}

int privd_reg_header(const char *buf, size_t n, unsigned *slot, size_t *len)
{
	char h[REG_HDR_LEN + 1], *s, *l;
	unsigned long v;

	if (n < REG_HDR_LEN)
		return -EBADMSG;
	memcpy(h, buf, REG_HDR_LEN);
	h[REG_HDR_LEN] = 0;
	if (strncmp(h, "hutch-registry 1 slot=", 22) || h[REG_HDR_LEN - 1] != '\n')
		return -EBADMSG;
	s = h + 22;
	l = strchr(s, ' ');
	if (!l || strncmp(l, " len=", 5))
		return -EBADMSG;
	*l = 0;
	l += 5;
	l[strcspn(l, " \n")] = 0;
	if ((s[0] != '0' && s[0] != '1') || s[1] ||
	    util_parse_ulong_base(l, 10, PRIVD_REG_MAX_BYTES, &v))
		return -EBADMSG;
	*slot = (unsigned)(s[0] - '0');
	*len = v;
	return 0;
}

int privd_reg_load(int fd, struct privd_reg *r)
{
	char hdr[REG_HDR_LEN], *buf;
	unsigned slot;
	size_t len;
	ssize_t got;
	int rc;

	memset(r, 0, sizeof(*r));
	got = pread(fd, hdr, sizeof(hdr), 0);
	if (got == 0)
		return 0;	/* a new (empty) registry, as `hutch setup` makes it */
	if (got < 0)
		return -errno;
	if (privd_reg_header(hdr, (size_t)got, &slot, &len)) {
		log_err("registry: damaged header; root must remove it ('hutch setup' makes a new one)");
		return -EUCLEAN;
	}
	buf = malloc(len + 1);
	if (!buf)
		return -ENOMEM;
	got = pread(fd, buf, len, reg_slot_off(slot));
	if (got != (ssize_t)len) {
		free(buf);
		return got < 0 ? -errno : -EUCLEAN;
	}
	buf[len] = 0;
	rc = privd_reg_parse(buf, len, r);
	free(buf);
	if (!rc)
		r->slot = slot;
	return rc;
}

int privd_reg_save(struct privd *d, const struct privd_reg *r)
{
	static const char *const lists[] = { [PRIVD_ENT_NET] = "vms", [PRIVD_ENT_MOUNT] = "mounts",
					     [PRIVD_ENT_WG] = "tunnels" };
	json_t *j = json_pack("{s:[], s:[], s:[]}", "vms", "mounts", "tunnels"), *o;
	char *buf = NULL, hdr[REG_HDR_LEN + 1];
	unsigned slot = r->slot ^ 1;
	size_t len;
	int rc = 0;

	if (!j)
		return -ENOMEM;
	for (size_t i = 0; i < r->n && !rc; i++) {
		o = reg_ent_json(&r->e[i]);
		if (!o || json_array_append_new(json_object_get(j, lists[r->e[i].kind]), o))
			rc = -ENOMEM;
	}
	if (!rc) {
		buf = json_dumps(j, JSON_COMPACT);
		rc = buf ? 0 : -ENOMEM;
	}
	json_decref(j);
	if (rc)
		return rc;
	len = strlen(buf);
	if (len > PRIVD_REG_MAX_BYTES)
		rc = -EFBIG;
	else if (pwrite(d->reg_fd, buf, len, reg_slot_off(slot)) != (ssize_t)len)
		rc = errno ? -errno : -EIO;
	else if ((rc = util_snprintf(hdr, sizeof(hdr), "hutch-registry 1 slot=%u len=%-*zu\n", slot,
				     REG_HDR_LEN - 29, len)) == 0 &&
		 pwrite(d->reg_fd, hdr, REG_HDR_LEN, 0) != REG_HDR_LEN)
		rc = errno ? -errno : -EIO;
	free(buf);
	if (rc)
		log_errno(rc, "registry: writing it back");
	else
		((struct privd_reg *)r)->slot = slot;
	return rc;
}

/*
 * The lock is also the network lock.  Bounded: a caller's helper that
 * holds it and is stopped (SIGSTOP: the user may signal their own helper)
 * must not hang everybody else's up and halt for good.
 */
int privd_reg_lock(struct privd *d, struct privd_reg *r)
{
	int rc;

	memset(r, 0, sizeof(*r));
	if (d->reg_fd < 0)
		return -EBADF;
	rc = util_flock_fd(d->reg_fd, PRIVD_LOCK_MS, NULL);
	if (rc == -ETIMEDOUT)
		log_err("registry: still locked by another hutch-helper after %d s",
			PRIVD_LOCK_MS / 1000);
	if (rc)
		return rc;
	rc = privd_reg_load(d->reg_fd, r);
	if (rc == -EUCLEAN && !d->helper && d->uid == 0) {
		/* root in-process: no boundary to keep, start a new one (as `hutch setup` would) */
		log_warn("registry: starting a new one; what the damaged one recorded is left to gc");
		rc = ftruncate(d->reg_fd, 0) < 0 ? -errno : privd_reg_load(d->reg_fd, r);
	}
	if (rc)
		flock(d->reg_fd, LOCK_UN);
	return rc;
}

void privd_reg_unlock(struct privd *d, struct privd_reg *r)
{
	privd_reg_free(r);
	if (d->reg_fd >= 0)
		flock(d->reg_fd, LOCK_UN);
}

ssize_t privd_reg_find_kind(const struct privd_reg *r, enum privd_kind kind, const char *id)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->e[i].kind == kind && !strcmp(r->e[i].id, id))
			return (ssize_t)i;
	return -1;
}

ssize_t privd_reg_find(const struct privd_reg *r, const char *id)
{
	return privd_reg_find_kind(r, PRIVD_ENT_NET, id);
}

unsigned long long privd_proc_start(pid_t pid)
{
	char path[64], buf[1024], *p, state;
	unsigned long long start = 0;
	ssize_t n;
	int fd;

	if (pid <= 0 || util_snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid))
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	/* proc(5): comm may hold anything, so fields are counted after the last ')' */
	p = strrchr(buf, ')');
	if (!p)
		return 0;
	p++;
	/*
	 * field 3 (state) is the first after ')'; starttime is field 22.  A
	 * zombie is gone: it holds none of the VM's resources, and its reaper
	 * (init, which may poll) may take seconds to collect it after a kill -9
	 */
	if (sscanf(p, " %c", &state) != 1 || state == 'Z' || state == 'X')
		return 0;
	for (int field = 3; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	if (!p || sscanf(p, " %llu", &start) != 1)
		return 0;
	return start;
}

bool privd_ent_alive(const struct privd_ent *e)
{
	unsigned long long start;

	if (e->pid == 0)
		return true;
	/* gone or a zombie (0) is never alive, whatever start time was recorded */
	start = privd_proc_start(e->pid);
	return start != 0 && start == e->start;
}

static bool reg_addr_used(const struct privd_reg *r, unsigned long long ns,
			  const struct net_conf *nc, struct in_addr a)
{
	if (a.s_addr == nc->gw.s_addr || a.s_addr == nc->net.s_addr ||
	    a.s_addr == (nc->net.s_addr | ~net_mask(nc->prefix)) ||
	    (a.s_addr & net_mask(nc->prefix)) != nc->net.s_addr)
		return true;
	for (size_t i = 0; i < r->n; i++) {
		const struct privd_ent *e = &r->e[i];

		if (e->kind == PRIVD_ENT_NET && e->ns == ns && !strcmp(e->nc.bridge, nc->bridge) &&
		    e->addr.s_addr == a.s_addr)
			return true;
	}
	return false;
}

static bool reg_mac_used(const struct privd_reg *r, unsigned long long ns, const char *bridge,
			 const uint8_t mac[6])
{
	for (size_t i = 0; i < r->n; i++) {
		const struct privd_ent *e = &r->e[i];

		if (e->kind == PRIVD_ENT_NET && e->ns == ns && !strcmp(e->nc.bridge, bridge) &&
		    !memcmp(e->mac, mac, 6))
			return true;
	}
	return false;
}

int privd_reg_pick(const struct privd_reg *r, unsigned long long ns, const struct net_conf *nc,
		   struct in_addr prefer, const uint8_t mac_in[6], struct in_addr *addr,
		   uint8_t mac[6])
{
	uint32_t size = 1u << (32 - nc->prefix), base = ntohl(nc->net.s_addr);
	struct in_addr a = prefer;
	uint8_t m[6];
	int tries;

	if (!prefer.s_addr || reg_addr_used(r, ns, nc, prefer)) {
		a.s_addr = 0;
		for (uint32_t h = 1; h < size - 1; h++) {
			struct in_addr c = { htonl(base + h) };

			if (!reg_addr_used(r, ns, nc, c)) {
				a = c;
				break;
			}
		}
		if (!a.s_addr)
			return -EADDRNOTAVAIL;
	}
	memcpy(m, mac_in, 6);
	/* QEMU's 52:54:00 prefix, locally administered, unicast; 2^24 choices */
	for (tries = 0; reg_mac_used(r, ns, nc->bridge, m) && tries < 64; tries++) {
		m[0] = 0x52;
		m[1] = 0x54;
		m[2] = 0x00;
		if (getrandom(m + 3, 3, 0) != 3)
			return -EIO;
	}
	if (tries == 64)
		return -EADDRNOTAVAIL;
	*addr = a;
	memcpy(mac, m, 6);
	return 0;
}
