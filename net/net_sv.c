// SPDX-License-Identifier: MIT
/*
 * The net extension (network mode nat): bridge, tap, rules, DHCP and DNS
 * for one VM inside its supervisor, cleanup from state alone (gc), inspect,
 * and the CLI's wait for the guest's DHCP lease.
 *
 * Order in .prepare is chosen to fail closed: the tap is enslaved and its
 * VM rules are installed (nft_vm_add) BEFORE it is set up, and the base
 * chains drop whatever comes from an ht-* tap without a VM chain, so the
 * guest's NIC never passes a frame without its rules.  If the rules cannot
 * be installed the VM does not start.
 *
 * state.json "net": {"id", "tap", "bridge", "addr", "gateway", "prefix",
 * "mac", and once the guest took its lease "ip" and "lease_at"}.  "addr" is
 * reserved at prepare (stable across restarts), "ip" means "the guest has
 * it": `hutch up` waits for it and `hutch ip` reports it.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "net/dhcp.h"
#include "net/dns.h"
#include "net/fwd.h"
#include "net/net.h"
#include "net/nft.h"
#include "net/nl.h"
#include "net/tap.h"
#include "src/ext.h"
#include "src/log.h"
#include "src/state.h"
#include "src/util.h"

#define NET_LEASE_S 3600


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

int net_bridge_ensure(const struct net_conf *nc, bool ipv6)
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
	return nl_forwarding_on();
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

int net_bridge_release(const char *bridge)
{
	size_t n = 0;
	int rc;

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
	rc = nl_forwarding_restore();
	if (rc < 0)
		log_warno(rc, "restoring net.ipv4.ip_forward");
	return 1;
}

int net_lock(const char *vms_dir)
{
	char path[4096];
	int fd, rc;

	if ((rc = util_path_join(path, sizeof(path), vms_dir, ".net.lock")))
		return rc;
	if ((rc = util_mkdir_p(vms_dir, 0700)))
		return rc;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			rc = -errno;
			close(fd);
			return rc;
		}
	}
	return fd;
}

/* state.json of @dir, or NULL (read directly: bounded, type-checked by the caller) */
static json_t *net_state_read(const char *dir)
{
	char path[4096], *buf = NULL;
	size_t len;
	json_t *j;

	if (util_path_join(path, sizeof(path), dir, "state.json") ||
	    util_read_file(path, STATE_MAX_BYTES, &buf, &len))
		return NULL;
	j = json_loadb(buf, len, 0, NULL);
	free(buf);
	if (j && !json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

static bool net_pid_alive(json_t *st)
{
	json_t *p = json_object_get(st, "supervisor_pid");
	json_int_t pid;

	if (!json_is_integer(p))
		return false;
	pid = json_integer_value(p);
	if (pid <= 1 || pid > 4194304)
		return false;
	return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

static void net_mark_used(json_t *net, const char *key, const struct net_conf *nc, uint8_t *used)
{
	json_t *v = json_object_get(net, key);
	struct in_addr a;
	uint32_t h;

	if (!json_is_string(v) || inet_pton(AF_INET, json_string_value(v), &a) != 1)
		return;
	if ((a.s_addr & net_mask(nc->prefix)) != nc->net.s_addr)
		return;
	h = ntohl(a.s_addr) - ntohl(nc->net.s_addr);
	if (h < (1u << (32 - nc->prefix)))
		used[h / 8] |= (uint8_t)(1u << (h % 8));
}

int net_pick_addr(const char *vms_dir, const char *self, const struct net_conf *nc,
		  struct in_addr prefer, struct in_addr *out)
{
	uint32_t size = 1u << (32 - nc->prefix), gwh, h;
	uint8_t *used;
	DIR *d;
	struct dirent *e;

	used = calloc(size / 8 + 1, 1);
	if (!used)
		return -ENOMEM;
	d = opendir(vms_dir);
	while (d && (e = readdir(d))) {
		char dir[4096];
		json_t *st, *net;

		if (e->d_name[0] == '.' || (self && !strcmp(e->d_name, self)))
			continue;
		if (util_path_join(dir, sizeof(dir), vms_dir, e->d_name))
			continue;
		st = net_state_read(dir);
		if (!st)
			continue;
		net = json_object_get(st, "net");
		if (json_is_object(net) && net_pid_alive(st)) {
			net_mark_used(net, "addr", nc, used);
			net_mark_used(net, "ip", nc, used);
		}
		json_decref(st);
	}
	if (d)
		closedir(d);
	gwh = ntohl(nc->gw.s_addr) - ntohl(nc->net.s_addr);
	used[0] |= 1;				/* network address */
	used[(size - 1) / 8] |= (uint8_t)(1u << ((size - 1) % 8));	/* broadcast */
	used[gwh / 8] |= (uint8_t)(1u << (gwh % 8));
	if (prefer.s_addr && (prefer.s_addr & net_mask(nc->prefix)) == nc->net.s_addr) {
		h = ntohl(prefer.s_addr) - ntohl(nc->net.s_addr);
		if (!(used[h / 8] & (1u << (h % 8)))) {
			*out = prefer;
			free(used);
			return 0;
		}
	}
	for (h = 1; h < size - 1; h++) {
		if (!(used[h / 8] & (1u << (h % 8)))) {
			out->s_addr = htonl(ntohl(nc->net.s_addr) + h);
			free(used);
			return 0;
		}
	}
	free(used);
	return -EADDRNOTAVAIL;
}

/* <data>/vms from <data>/vms/<name> */
static int net_vms_dir(const char *vm_dir, char *buf, size_t n, const char **name)
{
	const char *slash = strrchr(vm_dir, '/');
	size_t len;

	if (!slash || slash == vm_dir || !slash[1])
		return -EINVAL;
	len = (size_t)(slash - vm_dir);
	if (len >= n)
		return -ENAMETOOLONG;
	memcpy(buf, vm_dir, len);
	buf[len] = 0;
	*name = slash + 1;
	return 0;
}

/** struct net_priv - one VM's network, owned by its supervisor */
struct net_priv {
	struct sv_ctx *c;
	struct net_conf nc;
	char id[NFT_ID_MAX];
	char tap[IFNAMSIZ];
	int tap_fd;
	int tap_ifindex;
	int dhcp_fd;
	struct dhcp_lease lease;
	struct dns_fwd *dns;
	struct fwd *fwd;
	int watch_fd;
	struct nft_vm nv;
	bool leased;
	bool rules;
	bool fenced;	/* tap down: its rules could not be restored */
};

static json_t *net_state_obj(json_t *state)
{
	json_t *net = json_object_get(state, "net");

	if (!json_is_object(net)) {
		net = json_object();
		if (!net || json_object_set_new(state, "net", net))
			return NULL;
	}
	return net;
}

static void net_on_dhcp(struct sv_ctx *c, int fd, void *arg)
{
	struct net_priv *p = arg;
	enum dhcp_event ev = DHCP_EV_NONE;
	char a[INET_ADDRSTRLEN];
	json_t *net;
	int rc;

	rc = dhcp_input(fd, p->tap_ifindex, &p->lease, &ev);
	if (rc)
		log_ratelimited(LOG_LVL_WARN, "dhcp-read", "dhcp: reading from %s: %s", p->tap, strerror(-rc));
	switch (ev) {
	case DHCP_EV_ACK:
		if (p->leased)
			return;
		net = net_state_obj(c->state);
		inet_ntop(AF_INET, &p->lease.addr, a, sizeof(a));
		if (!net || json_object_set_new(net, "ip", json_string(a)) ||
		    json_object_set_new(net, "lease_at", json_integer((json_int_t)time(NULL)))) {
			log_err("dhcp: cannot record the lease of %s", a);
			return;
		}
		rc = sv_state_save(c);
		if (rc) {
			log_errno(rc, "dhcp: saving state");
			return;
		}
		p->leased = true;
		log_info("guest took its DHCP lease %s", a);
		break;
	case DHCP_EV_DECLINE:
		log_ratelimited(LOG_LVL_WARN, "dhcp-decline",
				"dhcp: the guest declined its address (in use on the bridge?)");
		break;
	case DHCP_EV_RELEASE:
		log_debug("dhcp: the guest released its address");
		break;
	case DHCP_EV_NONE:
	case DHCP_EV_OFFER:
	case DHCP_EV_INFORM:
	case DHCP_EV_NAK:
		break;
	}
}

static void net_on_dns_client(struct sv_ctx *c, int fd, void *arg)
{
	(void)c;
	(void)fd;
	dns_fwd_on_client(arg);
}

static void net_on_dns_upstream(struct sv_ctx *c, int fd, void *arg)
{
	(void)c;
	(void)fd;
	dns_fwd_on_upstream(arg);
}

static int net_dns_start(struct net_priv *p)
{
	const char *path = getenv("HUTCH_RESOLV_CONF");
	struct sockaddr_in up[DNS_UPSTREAM_MAX], lsn = { .sin_family = AF_INET,
							 .sin_port = htons(53),
							 .sin_addr = p->nc.gw };
	size_t n = 0;
	int rc;

	if (!path || !*path)
		path = "/etc/resolv.conf";
	rc = dns_resolv_load(path, up, DNS_UPSTREAM_MAX, &n);
	if (rc) {
		log_warno(rc, "dns: no usable IPv4 nameserver in %s; the guest gets no DNS", path);
		return 0;
	}
	rc = dns_fwd_open(&lsn, p->nc.net, p->nc.prefix, up, n, &p->dns);
	if (rc)
		return rc;
	if ((rc = sv_watch_fd(p->c, dns_fwd_client_fd(p->dns), net_on_dns_client, p->dns)))
		goto err;
	if ((rc = sv_watch_fd(p->c, dns_fwd_upstream_fd(p->dns), net_on_dns_upstream, p->dns))) {
		sv_unwatch_fd(p->c, dns_fwd_client_fd(p->dns));
		goto err;
	}
	return 0;
err:
	dns_fwd_close(p->dns);
	p->dns = NULL;
	return rc;
}

static void net_dns_stop(struct net_priv *p)
{
	if (!p->dns)
		return;
	sv_unwatch_fd(p->c, dns_fwd_client_fd(p->dns));
	sv_unwatch_fd(p->c, dns_fwd_upstream_fd(p->dns));
	dns_fwd_close(p->dns);
	p->dns = NULL;
}

static void net_on_fwd(struct sv_ctx *c, int fd, void *arg)
{
	(void)c;
	(void)fd;
	fwd_dispatch(arg);
}

/*
 * Someone changed nftables (`nft flush ruleset`, a firewall reload): put
 * hutch's base chains and this VM's chains back.  Our own changes wake us
 * too; then both lookups say "present" and nothing happens.
 */
static void net_on_nft_event(struct sv_ctx *c, int fd, void *arg)
{
	struct net_priv *p = arg;
	int rc;

	(void)c;
	if (nft_watch_handle(fd) == 0)
		return;
	/* content, not names: a flushed table keeps its chains */
	rc = nft_repair(&p->nv, p->nc.bridge, p->nc.net, p->nc.prefix);
	if (rc < 0) {
		/* fail closed: without its rules the tap passes nothing */
		log_errno(rc, "nftables: the rules of %s cannot be restored; taking %s down", p->id, p->tap);
		if (!p->fenced && (rc = nl_link_down(p->tap)))
			log_errno(rc, "net: taking %s down", p->tap);
		p->fenced = true;
	} else if (p->fenced && nl_link_up(p->tap) == 0) {
		log_info("nftables: the rules of %s are back; %s is up again", p->id, p->tap);
		p->fenced = false;
	}
}

/* rule repair (nft watch) and port forwards (net/fwd.h) */
static int net_extras_start(struct net_priv *p)
{
	const struct cfg_vm *vm = p->c->vm;
	int rc;

	rc = nft_watch_open();
	if (rc < 0) {
		/* repair is a second line of defence; the VM still runs with its rules */
		log_warno(rc, "nftables: cannot watch for rule changes");
	} else {
		p->watch_fd = rc;
		if ((rc = sv_watch_fd(p->c, p->watch_fd, net_on_nft_event, p))) {
			close(p->watch_fd);
			p->watch_fd = -1;
			return rc;
		}
	}
	if (vm->network.n_forward == 0)
		return 0;
	rc = fwd_start(vm->network.forward, vm->network.n_forward, p->lease.addr, &p->fwd);
	if (rc) {
		log_errno(rc, "net: port forwards");
		return rc;
	}
	rc = sv_watch_fd(p->c, fwd_epoll_fd(p->fwd), net_on_fwd, p->fwd);
	if (rc) {
		fwd_stop(p->fwd);
		p->fwd = NULL;
	}
	return rc;
}

static void net_extras_stop(struct net_priv *p)
{
	if (p->fwd) {
		sv_unwatch_fd(p->c, fwd_epoll_fd(p->fwd));
		fwd_stop(p->fwd);
		p->fwd = NULL;
	}
	if (p->watch_fd >= 0) {
		sv_unwatch_fd(p->c, p->watch_fd);
		close(p->watch_fd);
		p->watch_fd = -1;
	}
}

/* the MAC the core chose ("mac"), or a new one recorded in state */
static int net_vm_mac(json_t *state, uint8_t mac[6])
{
	const char *s = json_string_value(json_object_get(state, "mac"));
	char buf[18];

	if (s && net_mac_parse(s, mac) == 0)
		return 0;
	mac[0] = 0x52;
	mac[1] = 0x54;
	mac[2] = 0x00;
	if (getrandom(mac + 3, 3, 0) != 3)
		return -EIO;
	util_snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2],
		      mac[3], mac[4], mac[5]);
	return json_object_set_new(state, "mac", json_string(buf)) ? -ENOMEM : 0;
}

static int net_prepare(struct sv_ctx *c, void **privp)
{
	const struct cfg_vm *vm = c->vm;
	char vms[4096], a[INET_ADDRSTRLEN], g[INET_ADDRSTRLEN], macs[18], arg[128];
	const char *self;
	struct net_priv *p;
	struct in_addr prefer = { 0 };
	json_t *net;
	int lock = -1, rc, qfd;
	uint8_t srv_mac[6];

	*privp = NULL;
	if (vm->network.mode != CFG_NET_NAT)
		return 0;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->c = c;
	p->tap_fd = p->dhcp_fd = p->watch_fd = -1;
	if ((rc = net_conf_get(&p->nc)))
		goto err_free;
	if ((rc = net_vms_dir(c->vm_dir, vms, sizeof(vms), &self)))
		goto err_free;
	if ((rc = net_vm_mac(c->state, p->lease.mac)))
		goto err_free;

	lock = net_lock(vms);
	if (lock < 0) {
		rc = lock;
		log_errno(rc, "net: locking %s/.net.lock", vms);
		goto err_free;
	}
	net = net_state_obj(c->state);
	if (!net) {
		rc = -ENOMEM;
		goto err_unlock;
	}
	{
		const char *prev = json_string_value(json_object_get(net, "addr"));

		if (prev)
			inet_pton(AF_INET, prev, &prefer);
	}
	if ((rc = net_pick_addr(vms, self, &p->nc, prefer, &p->lease.addr))) {
		log_errno(rc, "net: no free address left in the bridge subnet");
		goto err_unlock;
	}
	if ((rc = tap_new_id(p->id, sizeof(p->id))) || (rc = tap_name(p->id, p->tap, sizeof(p->tap))))
		goto err_unlock;

	/* record what gc needs before anything exists, so a kill -9 from here on is recoverable */
	inet_ntop(AF_INET, &p->lease.addr, a, sizeof(a));
	inet_ntop(AF_INET, &p->nc.gw, g, sizeof(g));
	util_snprintf(macs, sizeof(macs), "%02x:%02x:%02x:%02x:%02x:%02x", p->lease.mac[0],
		      p->lease.mac[1], p->lease.mac[2], p->lease.mac[3], p->lease.mac[4],
		      p->lease.mac[5]);
	json_object_del(net, "ip");
	json_object_del(net, "lease_at");
	if (json_object_set_new(net, "id", json_string(p->id)) ||
	    json_object_set_new(net, "tap", json_string(p->tap)) ||
	    json_object_set_new(net, "bridge", json_string(p->nc.bridge)) ||
	    json_object_set_new(net, "addr", json_string(a)) ||
	    json_object_set_new(net, "gateway", json_string(g)) ||
	    json_object_set_new(net, "prefix", json_integer(p->nc.prefix)) ||
	    json_object_set_new(net, "mac", json_string(macs))) {
		rc = -ENOMEM;
		goto err_unlock;
	}
	if ((rc = sv_state_save(c))) {
		log_errno(rc, "net: saving state");
		goto err_unlock;
	}

	if ((rc = net_bridge_ensure(&p->nc, vm->network.ipv6))) {
		log_errno(rc, "net: setting up bridge %s", p->nc.bridge);
		goto err_unlock;
	}
	if ((rc = nft_base_ensure(p->nc.bridge, p->nc.net, p->nc.prefix))) {
		log_errno(rc, "net: base nftables rules");
		goto err_bridge;
	}
	if ((rc = tap_open(p->tap, c->uid, c->gid, &p->tap_fd))) {
		log_errno(rc, "net: creating tap %s", p->tap);
		goto err_bridge;
	}
	if ((rc = net_port_attach(p->tap, p->nc.bridge, vm->network.ipv6)) ||
	    (rc = nl_fdb_add(p->tap, p->lease.mac))) {
		log_errno(rc, "net: attaching %s to %s", p->tap, p->nc.bridge);
		goto err_tap;
	}
	rc = nft_vm_init(&p->nv, p->id, p->tap, p->lease.mac, p->lease.addr, p->nc.gw, p->nc.prefix,
			 vm);
	if (rc)
		goto err_tap;
	if ((rc = nft_vm_add(&p->nv))) {
		log_errno(rc, "net: installing the VM's nftables rules; not starting it");
		goto err_tap;
	}
	p->rules = true;
	if ((rc = nl_link_up(p->tap)))
		goto err_rules;
	if ((rc = nl_link_get(p->tap, &p->tap_ifindex, NULL)) ||
	    (rc = nl_link_get(p->nc.bridge, &(int){ 0 }, srv_mac)))
		goto err_rules;
	close(lock);
	lock = -1;

	memcpy(p->lease.srv_mac, srv_mac, 6);
	p->lease.gw = p->nc.gw;
	p->lease.prefix = p->nc.prefix;
	p->lease.lease_s = NET_LEASE_S;
	p->lease.mtu = 1500;
	memcpy(p->lease.hostname, vm->name, strnlen(vm->name, DHCP_HOSTNAME_MAX));
	rc = dhcp_open(p->tap_ifindex);
	if (rc < 0) {
		log_errno(rc, "net: DHCP socket on %s", p->tap);
		goto err_relock;
	}
	p->dhcp_fd = rc;
	if ((rc = sv_watch_fd(c, p->dhcp_fd, net_on_dhcp, p)))
		goto err_dhcp;
	if ((rc = net_dns_start(p))) {
		log_errno(rc, "net: DNS forwarder on %s:53", g);
		goto err_watch;
	}
	if (p->dns) {	/* udp/53 opens only now that the forwarder listens */
		p->nv.dns = true;
		if ((rc = nft_vm_add(&p->nv)))
			goto err_dns;
	}
	if ((rc = net_extras_start(p)))
		goto err_dns;

	qfd = sv_qemu_fd(c, p->tap_fd);
	if (qfd < 0) {
		rc = qfd;
		goto err_dns;
	}
	if ((rc = util_snprintf(arg, sizeof(arg), "tap,id=n0,fd=%d,vhost=off", qfd)) ||
	    (rc = sv_qemu_arg(c, "-netdev")) || (rc = sv_qemu_arg(c, arg)) ||
	    (rc = util_snprintf(arg, sizeof(arg), "virtio-net-pci,netdev=n0,mac=%s", macs)) ||
	    (rc = sv_qemu_arg(c, "-device")) || (rc = sv_qemu_arg(c, arg)))
		goto err_dns;
	log_info("network: %s on %s, address %s, tap %s", macs, p->nc.bridge, a, p->tap);
	*privp = p;
	return 0;

err_dns:
	net_extras_stop(p);
	net_dns_stop(p);
err_watch:
	sv_unwatch_fd(c, p->dhcp_fd);
err_dhcp:
	close(p->dhcp_fd);
err_relock:
	lock = net_lock(vms);
err_rules:
	nft_vm_del(p->id);
err_tap:
	close(p->tap_fd);
	nl_link_del(p->tap);
err_bridge:
	if (lock >= 0)
		net_bridge_release(p->nc.bridge);
err_unlock:
	if (lock >= 0)
		close(lock);
err_free:
	free(p);
	return rc;
}

static void net_teardown(struct sv_ctx *c, void *priv)
{
	struct net_priv *p = priv;
	char vms[4096];
	const char *self;
	json_t *net;
	int lock = -1, rc;

	if (!p)
		return;
	net_extras_stop(p);
	net_dns_stop(p);
	if (p->dhcp_fd >= 0) {
		sv_unwatch_fd(c, p->dhcp_fd);
		close(p->dhcp_fd);
	}
	if (net_vms_dir(c->vm_dir, vms, sizeof(vms), &self) == 0)
		lock = net_lock(vms);
	if (p->rules && (rc = nft_vm_del(p->id)))
		log_warno(rc, "net: removing the rules of %s", p->id);
	close(p->tap_fd);
	rc = nl_link_del(p->tap);	/* usually gone already: QEMU closed its copy */
	(void)rc;
	if (lock >= 0) {
		rc = net_bridge_release(p->nc.bridge);
		if (rc < 0)
			log_warno(rc, "net: removing bridge %s", p->nc.bridge);
		close(lock);
	}
	net = json_object_get(c->state, "net");
	if (json_is_object(net)) {
		json_object_del(net, "ip");
		json_object_del(net, "lease_at");
		sv_state_save(c);
	}
	free(p);
}

static int net_gc(const char *vm_dir, json_t *state)
{
	json_t *net = json_object_get(state, "net");
	const char *id, *tap, *bridge, *self;
	char want[IFNAMSIZ], vms[4096];
	int lock, rc = 0;

	if (!json_is_object(net))
		return 0;
	id = json_string_value(json_object_get(net, "id"));
	tap = json_string_value(json_object_get(net, "tap"));
	bridge = json_string_value(json_object_get(net, "bridge"));
	/* state.json is untrusted: only names hutch itself would have made */
	if (!id || !tap || tap_name(id, want, sizeof(want)) || strcmp(want, tap))
		return 0;
	/*
	 * Only ever the bridge hutch is configured to use: a state.json naming
	 * some other interface must not get it deleted.
	 */
	{
		struct net_conf nc;

		if (bridge && (net_conf_get(&nc) || strcmp(bridge, nc.bridge)))
			bridge = NULL;
	}
	if ((rc = net_vms_dir(vm_dir, vms, sizeof(vms), &self)))
		return rc;
	lock = net_lock(vms);
	if (lock < 0)
		return lock;
	rc = nft_vm_del(id);
	if (rc)
		log_warno(rc, "gc: rules of %s", id);
	if (nl_link_del(tap) == 0)
		log_info("gc: removed %s", tap);
	if (bridge && net_bridge_release(bridge) == 1)
		log_info("gc: removed bridge %s (no VM left on it)", bridge);
	close(lock);
	json_object_del(net, "ip");
	json_object_del(net, "lease_at");
	return rc;
}

static int net_inspect(const char *vm_dir, json_t *state, FILE *out, json_t *json)
{
	json_t *net = json_object_get(state, "net");
	const char *s;

	(void)vm_dir;
	if (!json_is_object(net))
		return 0;
	if (json)
		return json_object_set(json, "net", net) ? -ENOMEM : 0;
	if (!out)
		return 0;
	fprintf(out, "network (nat):\n");
	static const char *const keys[] = { "bridge", "tap", "mac", "addr", "ip", "gateway" };
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(keys); i++) {
		s = json_string_value(json_object_get(net, keys[i]));
		/* from a file: printable names and addresses only, escaped anyway */
		if (s) {
			char esc[128];

			fprintf(out, "  %-8s %s\n", keys[i], log_escape(esc, sizeof(esc), s, strlen(s)));
		}
	}
	s = json_string_value(json_object_get(net, "id"));
	if (s) {
		char want[IFNAMSIZ];

		if (tap_name(s, want, sizeof(want)) == 0) {
			bool iso = false;

			s = json_string_value(json_object_get(net, "tap"));
			if (s && !strcmp(s, want) && nl_brport_isolated(s, &iso) == 0)
				fprintf(out, "  port     %s\n", iso ? "isolated" : "NOT isolated");
			fprintf(out, "rules:\n");
			nft_dump(json_string_value(json_object_get(net, "id")), out);
		}
	}
	return 0;
}

const struct sv_ext net_sv_ext = {
	.name = "net",
	.prepare = net_prepare,
	.teardown = net_teardown,
	.gc = net_gc,
	.inspect = net_inspect,
};

/*
 * `hutch up` waits for the lease.  Direct kernel boots (test rigs) only when
 * their cmdline asks for DHCP with hutch.net=dhcp: a test kernel without a
 * DHCP client would otherwise make every up wait for timeouts.boot.
 */
static int net_wait(struct up_ctx *u)
{
	const struct cfg_vm *vm = u->vm;
	uint64_t start = util_monotonic_ms(), limit = (uint64_t)vm->timeouts.boot * 1000;
	bool progress = u->cli && u->cli->tty && !u->cli->quiet;
	int rc;

	if (vm->network.mode != CFG_NET_NAT)
		return 0;
	if (vm->kernel.path && (!vm->kernel.cmdline || !strstr(vm->kernel.cmdline, "hutch.net=dhcp")))
		return 0;
	for (;;) {
		json_t *net;
		const char *ip;
		uint64_t el = util_monotonic_ms() - start;

		rc = up_state_reload(u);
		if (rc == 0) {
			net = json_object_get(u->state, "net");
			ip = json_string_value(json_object_get(net, "ip"));
			if (ip) {
				if (progress)
					fprintf(stderr, "\r\033[K");
				log_info("%s has address %s", vm->name, ip);
				return 0;
			}
		}
		if (!up_vm_alive(u)) {
			if (progress)
				fprintf(stderr, "\r\033[K");
			log_err("%s stopped before it took its DHCP lease", vm->name);
			return -ESRCH;
		}
		if (el >= limit) {
			if (progress)
				fprintf(stderr, "\r\033[K");
			log_err("%s took no DHCP lease within %u s (timeouts.boot)", vm->name,
				vm->timeouts.boot);
			return -ETIMEDOUT;
		}
		if (progress)
			fprintf(stderr, "\rwaiting for %s's DHCP lease... %llus", vm->name,
				(unsigned long long)(el / 1000));
		usleep(200 * 1000);
	}
}

const struct up_ext net_up_ext = {
	.name = "net",
	.wait = net_wait,
};
