// SPDX-License-Identifier: MIT
/*
 * The net extension (network mode nat): one VM's network inside its
 * supervisor, cleanup from state alone (gc), inspect, and the CLI's wait for
 * the guest's DHCP lease.
 *
 * Everything privileged goes through the seam (net/priv.h): priv_net_up()
 * brings the bridge, the base rules, the tap and the VM's rules up, in an
 * order that fails closed (the tap is enslaved and its VM rules installed
 * BEFORE it is set up, and the base chains drop whatever comes from an
 * ht-* tap without a VM chain, so the guest's NIC never passes a frame
 * without its rules), and hands back the tap and the DHCP and DNS sockets.
 * What runs here, as the user, is only what needs no privilege: the DHCP
 * responder and DNS forwarder on those sockets, and the port forwards.
 * If the rules cannot be installed the VM does not start.
 *
 * state.json "net": {"id", "tap", "bridge", "addr", "gateway", "prefix",
 * "mac", and once the guest took its lease "ip" and "lease_at"}.  "addr" is
 * preferred at the next start, "ip" means "the guest has it": `hutch up`
 * waits for it and `hutch ip` reports it.  The privileged side records the
 * VM in its registry before it creates anything, so gc works even when the
 * supervisor died before it wrote "net".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "net/dhcp.h"
#include "net/dns.h"
#include "net/fwd.h"
#include "net/net.h"
#include "net/priv.h"
#include "net/tap.h"
#include "net/wg_sv.h"
#include "src/ext.h"
#include "src/log.h"
#include "src/state.h"
#include "src/util.h"

#define NET_LEASE_S 3600

/** struct net_priv - one VM's network, owned by its supervisor */
struct net_priv {
	struct sv_ctx *c;
	struct net_conf nc;
	struct priv_net pn;	/* from the privileged side; its fds are ours */
	struct dhcp_lease lease;
	struct dns_fwd *dns;
	struct fwd *fwd;
	int watch_fd;
	bool leased;
	bool up;
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

	rc = dhcp_input(fd, p->pn.ifindex, &p->lease, &ev);
	if (rc)
		log_ratelimited(LOG_LVL_WARN, "dhcp-read", "dhcp: reading from %s: %s", p->pn.tap,
				strerror(-rc));
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

/* the forwarder on the socket the privileged side bound to gw:53 (taken over here) */
static int net_dns_start(struct net_priv *p)
{
	const char *path = getenv("HUTCH_RESOLV_CONF");
	struct sockaddr_in up[DNS_UPSTREAM_MAX];
	int fd = p->pn.dns_fd, rc;
	size_t n = 0;

	p->pn.dns_fd = -1;
	if (!path || !*path)
		path = "/etc/resolv.conf";
	rc = dns_resolv_load(path, up, DNS_UPSTREAM_MAX, &n);
	if (rc) {
		log_warno(rc, "dns: no usable IPv4 nameserver in %s; the guest gets no DNS", path);
		/*
		 * Kept bound, never read, closed at teardown: the VM's rules let
		 * udp/53 to the gateway through, and a closed socket would hand
		 * its queries to whatever else listens on the host's port 53
		 */
		p->pn.dns_fd = fd;
		return 0;
	}
	rc = dns_fwd_adopt(fd, p->nc.gw, p->nc.net, p->nc.prefix, up, n, &p->dns);
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

static void net_watch(struct net_priv *p);

/*
 * The privileged side wants attention: in this process, someone changed
 * nftables (`nft flush ruleset`, a firewall reload) and the rules are put
 * back; with the helper, the helper died and a new one takes this VM over
 * (it repairs the rules itself from then on).
 */
static void net_on_priv(struct sv_ctx *c, int fd, void *arg)
{
	struct net_priv *p = arg;
	const char *ids[1] = { p->pn.id };

	sv_unwatch_fd(c, fd);
	p->watch_fd = -1;
	priv_watch_event(ids, 1);
	net_watch(p);
}

static void net_watch(struct net_priv *p)
{
	int fd = priv_watch_fd();

	/* repair is a second line of defence; the VM still runs with its rules */
	if (fd < 0) {
		log_warno(fd, "nftables: nothing watches for rule changes");
		return;
	}
	if (sv_watch_fd(p->c, fd, net_on_priv, p) == 0)
		p->watch_fd = fd;
}

/* rule repair (the seam's watch) and port forwards (net/fwd.h) */
static int net_extras_start(struct net_priv *p)
{
	const struct cfg_vm *vm = p->c->vm;
	int rc;

	net_watch(p);
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
		p->watch_fd = -1;
	}
}

/* the MAC the core chose ("mac"), or a new one */
static int net_vm_mac(json_t *state, uint8_t mac[6])
{
	const char *s = json_string_value(json_object_get(state, "mac"));

	if (s && net_mac_parse(s, mac) == 0)
		return 0;
	mac[0] = 0x52;
	mac[1] = 0x54;
	mac[2] = 0x00;
	return getrandom(mac + 3, 3, 0) == 3 ? 0 : -EIO;
}

/* what the privileged side gave us, in state.json (the MAC may have changed: state "mac" too) */
static int net_record(struct net_priv *p, char *macs, size_t n)
{
	char a[INET_ADDRSTRLEN], g[INET_ADDRSTRLEN];
	const uint8_t *m = p->pn.mac;
	json_t *net = net_state_obj(p->c->state);
	int rc;

	if (!net)
		return -ENOMEM;
	inet_ntop(AF_INET, &p->pn.addr, a, sizeof(a));
	inet_ntop(AF_INET, &p->nc.gw, g, sizeof(g));
	if ((rc = util_snprintf(macs, n, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3],
				m[4], m[5])))
		return rc;
	json_object_del(net, "ip");
	json_object_del(net, "lease_at");
	if (json_object_set_new(net, "id", json_string(p->pn.id)) ||
	    json_object_set_new(net, "tap", json_string(p->pn.tap)) ||
	    json_object_set_new(net, "bridge", json_string(p->nc.bridge)) ||
	    json_object_set_new(net, "addr", json_string(a)) ||
	    json_object_set_new(net, "gateway", json_string(g)) ||
	    json_object_set_new(net, "prefix", json_integer(p->nc.prefix)) ||
	    json_object_set_new(net, "mac", json_string(macs)) ||
	    json_object_set_new(p->c->state, "mac", json_string(macs)))
		return -ENOMEM;
	return sv_state_save(p->c);
}

static int net_up(struct net_priv *p)
{
	const struct cfg_vm *vm = p->c->vm;
	struct nft_wg wg;
	struct priv_net_req q = { .name = vm->name, .isolation = vm->network.isolation,
				  .ipv6 = vm->network.ipv6, .ha = vm->network.host_access,
				  .n_ha = vm->network.n_host_access, .wg = &wg };
	const char *prev = json_string_value(json_object_get(json_object_get(p->c->state, "net"),
							     "addr"));
	int rc;

	if ((rc = net_conf_get(&p->nc)))
		return rc;
	/* the WireGuard kill switch, when the wg extension (before us) brought a tunnel up */
	if ((rc = wg_nft_vm(p->c->project_dir, p->c->state, &wg)))
		return rc;
	q.nc = p->nc;
	if ((rc = net_vm_mac(p->c->state, q.mac)))
		return rc;
	if (prev)
		inet_pton(AF_INET, prev, &q.prefer);
	if (q.n_ha > PRIV_HA_MAX) {
		log_err("net: at most %d host_access entries", PRIV_HA_MAX);
		return -E2BIG;
	}
	rc = priv_net_up(&q, &p->pn);
	if (rc) {
		log_errno(rc, "net: bringing the network of %s up; not starting it", vm->name);
		return rc;
	}
	p->up = true;
	return 0;
}

static int net_qemu_args(struct net_priv *p, const char *macs)
{
	char arg[128];
	int rc, qfd = sv_qemu_fd(p->c, p->pn.tap_fd);

	if (qfd < 0)
		return qfd;
	if ((rc = util_snprintf(arg, sizeof(arg), "tap,id=n0,fd=%d,vhost=off", qfd)) ||
	    (rc = sv_qemu_arg(p->c, "-netdev")) || (rc = sv_qemu_arg(p->c, arg)) ||
	    (rc = util_snprintf(arg, sizeof(arg), "virtio-net-pci,netdev=n0,mac=%s", macs)) ||
	    (rc = sv_qemu_arg(p->c, "-device")) || (rc = sv_qemu_arg(p->c, arg)))
		return rc;
	return 0;
}

static void net_teardown(struct sv_ctx *c, void *priv);

static int net_prepare(struct sv_ctx *c, void **privp)
{
	const struct cfg_vm *vm = c->vm;
	char macs[18], a[INET_ADDRSTRLEN];
	struct net_priv *p;
	int rc;

	*privp = NULL;
	if (vm->network.mode != CFG_NET_NAT)
		return 0;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->c = c;
	p->watch_fd = p->pn.tap_fd = p->pn.dhcp_fd = p->pn.dns_fd = -1;
	if ((rc = net_up(p)))
		goto err;
	if ((rc = net_record(p, macs, sizeof(macs)))) {
		log_errno(rc, "net: saving state");
		goto err;
	}
	memcpy(p->lease.mac, p->pn.mac, 6);
	memcpy(p->lease.srv_mac, p->pn.gw_mac, 6);
	p->lease.addr = p->pn.addr;
	p->lease.gw = p->nc.gw;
	p->lease.prefix = p->nc.prefix;
	p->lease.lease_s = NET_LEASE_S;
	p->lease.mtu = 1500;
	memcpy(p->lease.hostname, vm->name, strnlen(vm->name, DHCP_HOSTNAME_MAX));
	if ((rc = sv_watch_fd(c, p->pn.dhcp_fd, net_on_dhcp, p)))
		goto err;
	inet_ntop(AF_INET, &p->nc.gw, a, sizeof(a));
	if ((rc = net_dns_start(p))) {
		log_errno(rc, "net: DNS forwarder on %s:53", a);
		goto err;
	}
	if ((rc = net_extras_start(p)) || (rc = net_qemu_args(p, macs)))
		goto err;
	inet_ntop(AF_INET, &p->pn.addr, a, sizeof(a));
	log_info("network: %s on %s, address %s, tap %s", macs, p->nc.bridge, a, p->pn.tap);
	*privp = p;
	return 0;
err:
	net_teardown(c, p);
	return rc;
}

static void net_teardown(struct sv_ctx *c, void *priv)
{
	struct net_priv *p = priv;
	json_t *net;
	int rc;

	if (!p)
		return;
	net_extras_stop(p);
	net_dns_stop(p);
	if (p->pn.dhcp_fd >= 0) {
		sv_unwatch_fd(c, p->pn.dhcp_fd);
		close(p->pn.dhcp_fd);
	}
	if (p->pn.dns_fd >= 0)
		close(p->pn.dns_fd);
	if (p->pn.tap_fd >= 0)
		close(p->pn.tap_fd);
	if (p->up && (rc = priv_net_down(p->pn.id)))
		log_warno(rc, "net: removing the network of %s", p->pn.id);
	net = json_object_get(c->state, "net");
	if (json_is_object(net)) {
		json_object_del(net, "ip");
		json_object_del(net, "lease_at");
		sv_state_save(c);
	}
	free(p);
}

/* state.json is untrusted: only an id hutch itself would have made */
static const char *net_state_id(json_t *net)
{
	const char *id = json_string_value(json_object_get(net, "id"));
	char tap[IFNAMSIZ];

	return id && tap_name(id, tap, sizeof(tap)) == 0 ? id : NULL;
}

static int net_gc(const char *vm_dir, json_t *state)
{
	json_t *net = json_object_get(state, "net");
	int rc;

	(void)vm_dir;
	if (!json_is_object(net))
		return 0;
	/* the privileged side removes what dead supervisors left, ours included */
	rc = priv_gc(net_state_id(net));
	if (rc)
		log_warno(rc, "gc: the network of this VM");
	json_object_del(net, "ip");
	json_object_del(net, "lease_at");
	return rc;
}

static int net_inspect(const char *vm_dir, json_t *state, FILE *out, json_t *json)
{
	json_t *net = json_object_get(state, "net");
	const char *s, *id;
	char *rules = NULL;

	(void)vm_dir;
	if (!json_is_object(net))
		return 0;
	id = net_state_id(net);
	if (id && (json || out) && priv_inspect(id, &rules))
		rules = NULL;
	if (json) {
		json_t *copy = json_deep_copy(net);

		if (copy && rules)
			json_object_set_new(copy, "rules", json_string(rules));
		free(rules);
		return copy && json_object_set_new(json, "net", copy) == 0 ? 0 : -ENOMEM;
	}
	if (!out) {
		free(rules);
		return 0;
	}
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
	if (rules)
		fputs(rules, out);
	free(rules);
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

/*
 * Before anything starts: a user's VM in mode nat, or with an isolated
 * share, needs hutch-helper; say which command sets it up (exit 78).
 */
static int net_before_up(struct up_ctx *u)
{
	bool need = u->vm->network.mode == CFG_NET_NAT;
	int rc;

	for (size_t i = 0; i < u->vm->n_shares; i++)
		need |= u->vm->shares[i].isolation;
	if (!need || geteuid() == 0)
		return 0;
	rc = priv_check();
	priv_close();
	if (rc)
		log_err("%s needs hutch-helper (network mode nat, isolated shared folders): "
			"run 'sudo hutch setup' once, then log in again", u->vm->name);
	return rc ? -ENOPKG : 0;
}

const struct up_ext net_up_ext = {
	.name = "net",
	.before_up = net_before_up,
	.wait = net_wait,
};
