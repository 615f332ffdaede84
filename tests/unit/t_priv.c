// SPDX-License-Identifier: MIT
/*
 * The privileged side's pure parts: the request parser (what a hostile
 * caller may send), the helper's configuration, the registry's parser, and
 * the choice of addresses and MACs across users.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "net/privd.h"
#include "tests/unit/tap.h"

static struct privd_req q;
static char err[512];

static int parse(const char *s)
{
	err[0] = 0;
	return privd_parse(s, strlen(s), &q, err, sizeof(err));
}

#define NET_UP(extra) \
	"{\"op\":\"net_up\",\"name\":\"a\",\"bridge\":\"hutch0\",\"subnet\":\"10.77.0.1/24\"," \
	"\"mac\":\"52:54:00:12:34:56\",\"isolation\":true,\"ipv6\":false" extra "}"

static void t_requests(void)
{
	char big[PRIV_REQ_MAX + 2];

	is_int(parse("{\"op\":\"ping\"}"), 0, "ping");
	is_int(parse(NET_UP("")), 0, "net_up");
	ok(q.op == PRIVD_NET_UP && !strcmp(q.nc.bridge, "hutch0") && q.nc.prefix == 24 &&
	   q.isolation && !q.ipv6 && q.mac[5] == 0x56, "net_up fields");
	is_int(parse(NET_UP(",\"prefer\":\"10.77.0.9\",\"host_access\":[{\"proto\":\"tcp\","
			    "\"port\":8081},{\"lan\":\"192.168.1.5\"}]")), 0, "net_up with extras");
	ok(q.n_ha == 2 && q.ha[0].kind == CFG_HA_HOST_PORT && q.ha[0].port == 8081 &&
	   q.ha[1].kind == CFG_HA_LAN_HOST, "host_access parsed");
	is_int(parse(NET_UP(",\"prefer\":\"10.78.0.9\"")), -EINVAL, "an address outside the subnet");
	ok(strstr(err, "prefer") != NULL, "... named: %s", err);
	is_int(parse(NET_UP(",\"tap\":\"eth0\"")), -EINVAL, "a tap name from the caller");
	ok(strstr(err, "unknown key 'tap'") != NULL, "... refused: %s", err);
	is_int(parse(NET_UP(",\"table\":\"filter\"")), -EINVAL, "a table from the caller");
	is_int(parse("{\"op\":\"net_up\",\"name\":\"a\",\"bridge\":\"ht-x\",\"subnet\":\"10.77.0.1/24\","
		     "\"mac\":\"52:54:00:12:34:56\",\"isolation\":true,\"ipv6\":false}"),
	       -EINVAL, "a bridge named like a tap");
	is_int(parse("{\"op\":\"net_up\",\"name\":\"a\",\"bridge\":\"eth0;x\",\"subnet\":\"10.77.0.1/24\","
		     "\"mac\":\"52:54:00:12:34:56\",\"isolation\":true,\"ipv6\":false}"),
	       -EINVAL, "a bridge name with odd bytes");
	is_int(parse(NET_UP(",\"host_access\":[{\"lan\":\"8.8.8.8\"}]")), -EINVAL,
	       "allow-lan-host of a public address");
	is_int(parse(NET_UP(",\"host_access\":[{\"proto\":\"icmp\",\"port\":1}]")), -EINVAL,
	       "a protocol other than tcp/udp");
	is_int(parse(NET_UP(",\"host_access\":[{\"proto\":\"tcp\",\"port\":70000}]")), -EINVAL,
	       "a port out of range");
	is_int(parse(NET_UP(",\"wg\":{\"ifname\":\"hw-abc\",\"mark\":1752629249,\"dns\":\"10.64.0.1\"}")),
	       0, "net_up with a WireGuard kill switch");
	ok(!strcmp(q.wg.ifname, "hw-abc") && q.wg.mark == 0x68770001u, "... its interface and mark");
	is_int(parse(NET_UP(",\"wg\":{\"ifname\":\"eth0\",\"mark\":1752629249,\"dns\":\"10.64.0.1\"}")),
	       -EINVAL, "a kill switch on an interface not hutch's");
	is_int(parse(NET_UP(",\"wg\":{\"ifname\":\"hw-abc\",\"mark\":1,\"dns\":\"10.64.0.1\"}")),
	       -EINVAL, "a mark outside hutch's range");
	is_int(parse("{\"op\":\"net_up\",\"name\":\"a\"}"), -EINVAL, "missing members");
	is_int(parse("{\"op\":\"net_up\",\"name\":\"a\",\"bridge\":\"hutch0\",\"subnet\":\"10.77.0.1/24\","
		     "\"mac\":\"53:54:00:12:34:56\",\"isolation\":true,\"ipv6\":false}"),
	       -EINVAL, "a multicast MAC");
	is_int(parse("{\"op\":\"net_up\",\"name\":\"a\",\"bridge\":\"hutch0\",\"subnet\":\"10.77.0.1/24\","
		     "\"mac\":\"52:54:00:12:34:56\",\"isolation\":1,\"ipv6\":false}"),
	       -EINVAL, "a number for a boolean");
	is_int(parse("{\"op\":\"net_down\",\"id\":\"../../x\"}"), -EINVAL, "an id with a path");
	is_int(parse("{\"op\":\"net_down\",\"id\":\"abcdefgh\"}"), 0, "net_down");
	is_int(parse("{\"op\":\"gc\"}"), 0, "gc without an id");
	ok(!q.has_id, "... has none");
	is_int(parse("{\"op\":\"ping\",\"op\":\"gc\"}"), -EPROTO, "a duplicate key");
	is_int(parse("{\"op\":\"ping\"} x"), -EPROTO, "trailing bytes");
	is_int(parse("{\"op\":\"ping\""), -EPROTO, "a truncated request");
	is_int(parse("[\"ping\"]"), -EPROTO, "not an object");
	is_int(parse("{\"op\":\"reboot\"}"), -EINVAL, "an unknown op");
	is_int(privd_parse("", 0, &q, err, sizeof(err)), -EPROTO, "an empty request");
	memset(big, ' ', sizeof(big));
	is_int(privd_parse(big, sizeof(big), &q, err, sizeof(err)), -E2BIG, "an oversized request");
	is_int(parse("{\"op\":\"mount\",\"dir\":\"/p/w\",\"size\":10,\"keep\":false}"), 0,
	       "mount");
	is_int(parse("{\"op\":\"mount\",\"image\":\"/p/x.img\",\"dir\":\"/p/w\",\"size\":10,"
		     "\"keep\":false}"),
	       -EINVAL, "the image is never named: always <folder>.img");
	is_int(parse("{\"op\":\"mount\",\"dir\":\"/p/../etc\",\"size\":10,\"keep\":false}"),
	       -EINVAL, "a path with ..");
	is_int(parse("{\"op\":\"mount\",\"dir\":\"p/w\",\"size\":10,\"keep\":false}"), -EINVAL,
	       "a relative path");
	is_int(parse("{\"op\":\"mount\",\"dir\":\"/p/w\",\"size\":0,\"keep\":false}"), -EINVAL,
	       "a size of 0");
	is_int(parse("{\"op\":\"unmount\",\"dir\":\"/p//w\"}"), -EINVAL, "a path with //");
	is_int(parse("{\"op\":\"unmount\",\"dir\":\"/p/w/\"}"), -EINVAL, "a trailing slash");
	is_int(parse("{\"op\":\"userns_map\",\"pid\":4242}"), 0, "userns_map");
	ok(q.op == PRIVD_USERNS_MAP && q.pid == 4242, "userns_map: the pid");
	is_int(parse("{\"op\":\"userns_map\"}"), -EINVAL, "userns_map without a pid");
	is_int(parse("{\"op\":\"userns_map\",\"pid\":1}"), -EINVAL, "userns_map of init");
	is_int(parse("{\"op\":\"userns_map\",\"pid\":-5}"), -EINVAL, "a negative pid");
	is_int(parse("{\"op\":\"userns_map\",\"pid\":4194305}"), -EINVAL, "a pid over pid_max");
	is_int(parse("{\"op\":\"userns_map\",\"pid\":2.5}"), -EINVAL, "a pid that is a real");
	is_int(parse("{\"op\":\"userns_map\",\"pid\":2,\"uid\":0}"), -EINVAL,
	       "no uid of the caller's choosing");
}

static void t_conf(void)
{
	struct privd_conf c;
	char cbuf[] = "# c\n\nrundir /var/run/x\nnetwork hb0 10.9.0.1/24\nnetwork hb1 10.10.0.1/16\n";

	is_int(privd_conf_parse(cbuf, strlen(cbuf), &c, err, sizeof(err)), 0, "configuration");
	ok(!strcmp(c.rundir, "/var/run/x") && c.n_nets == 2 && !strcmp(c.nets[1].bridge, "hb1") &&
	   c.nets[1].prefix == 16, "its values");
	is_int(privd_conf_parse("", 0, &c, err, sizeof(err)), 0, "an empty one");
	ok(!strcmp(c.rundir, PRIVD_RUNDIR) && c.n_nets == 1 && !strcmp(c.nets[0].bridge, "hutch0"),
	   "gives the defaults");
	is_int(privd_conf_parse("rundir x", 8, &c, err, sizeof(err)), -EINVAL, "a relative rundir");
	is_int(privd_conf_parse("network ht-a 10.0.0.1/24", 24, &c, err, sizeof(err)), -EINVAL,
	       "a tap name as bridge");
	is_int(privd_conf_parse("user root", 9, &c, err, sizeof(err)), -EINVAL, "an unknown line");
	is_int(privd_conf_parse("rundir /a\0b", 11, &c, err, sizeof(err)), -EINVAL, "a NUL byte");
}

static void ent(struct privd_ent *e, const char *id, unsigned long long ns, const char *addr,
		uint8_t last)
{
	memset(e, 0, sizeof(*e));
	e->kind = PRIVD_ENT_NET;
	e->uid = 1000;
	e->pid = getpid();
	e->start = privd_proc_start(getpid());
	e->ns = ns;
	snprintf(e->id, sizeof(e->id), "%s", id);
	snprintf(e->name, sizeof(e->name), "vm-%s", id);
	net_subnet_parse("10.9.0.1/24", &e->nc);
	memcpy(e->nc.bridge, "hb0", 4);
	inet_pton(AF_INET, addr, &e->addr);
	memcpy(e->mac, (uint8_t[]){ 0x52, 0x54, 0, 1, 2, last }, 6);
}

static void t_registry(void)
{
	static const char junk[] = "{\"vms\":[{\"id\":\"x\"},{\"uid\":\"root\"}],\"mounts\":[1]} trailing";
	struct privd_reg r = { 0 }, r2;
	struct privd_ent e;
	struct net_conf nc;
	struct in_addr got, none = { 0 }, pref;
	uint8_t mac[6], want[6] = { 0x52, 0x54, 0, 1, 2, 3 };
	char a[INET_ADDRSTRLEN];

	net_subnet_parse("10.9.0.1/24", &nc);
	memcpy(nc.bridge, "hb0", 4);
	is_int(privd_reg_pick(&r, 7, &nc, none, want, &got, mac), 0, "pick in an empty registry");
	inet_ntop(AF_INET, &got, a, sizeof(a));
	ok(!strcmp(a, "10.9.0.2") && !memcmp(mac, want, 6), "lowest free host, MAC kept: %s", a);
	ent(&e, "aaaa1111", 7, "10.9.0.2", 3);
	privd_reg_add(&r, &e);
	ent(&e, "bbbb2222", 8, "10.9.0.3", 4);	/* another namespace: not in the way */
	privd_reg_add(&r, &e);
	privd_reg_pick(&r, 7, &nc, none, want, &got, mac);
	inet_ntop(AF_INET, &got, a, sizeof(a));
	ok(!strcmp(a, "10.9.0.3"), "another user's address is skipped: %s", a);
	ok(memcmp(mac, want, 6) && mac[0] == 0x52 && mac[1] == 0x54 && mac[2] == 0,
	   "another VM's MAC is replaced by a fresh 52:54:00 one");
	inet_pton(AF_INET, "10.9.0.77", &pref);
	privd_reg_pick(&r, 7, &nc, pref, want, &got, mac);
	ok(got.s_addr == pref.s_addr, "the previous address is kept when free");
	inet_pton(AF_INET, "10.9.0.1", &pref);
	privd_reg_pick(&r, 7, &nc, pref, want, &got, mac);
	ok(got.s_addr != pref.s_addr, "never the gateway");
	net_subnet_parse("10.9.0.1/30", &nc);
	memcpy(nc.bridge, "hb0", 4);
	is_int(privd_reg_pick(&r, 7, &nc, none, want, &got, mac), -EADDRNOTAVAIL,
	       "a full subnet: -EADDRNOTAVAIL");
	ok(privd_ent_alive(&r.e[0]), "our own process is alive");
	r.e[0].start++;
	ok(!privd_ent_alive(&r.e[0]), "a reused pid (other start time) is not");
	is_int(privd_reg_find(&r, "bbbb2222"), 1, "find by id");
	is_int(privd_reg_parse(junk, strlen(junk), &r2), 0, "a registry with malformed entries");
	is_int(r2.n, 0, "... loses them");
	privd_reg_free(&r2);
	is_int(privd_reg_parse("", 0, &r2), 0, "an empty file is an empty registry");
	privd_reg_free(&r);
}

/* saves go to the other slot, then the header: a cut save leaves the last one whole */
static void t_registry_file(void)
{
	char path[] = "/tmp/t_priv.XXXXXX";
	struct privd d = { .reg_fd = mkstemp(path) };
	struct privd_reg r = { 0 }, got;
	struct privd_ent e;
	unsigned slot;
	size_t len;

	unlink(path);
	is_int(privd_reg_load(d.reg_fd, &got), 0, "an empty file loads");
	is_int(got.n, 0, "... as an empty registry");
	ent(&e, "aaaa1111", 7, "10.9.0.2", 3);
	privd_reg_add(&r, &e);
	is_int(privd_reg_save(&d, &r), 0, "save");
	ent(&e, "bbbb2222", 7, "10.9.0.3", 4);
	privd_reg_add(&r, &e);
	is_int(privd_reg_save(&d, &r), 0, "save again (the other slot)");
	is_int(privd_reg_load(d.reg_fd, &got), 0, "load");
	ok(got.n == 2 && privd_reg_find(&got, "bbbb2222") == 1 &&
	   got.e[1].addr.s_addr == r.e[1].addr.s_addr, "both entries back, with their values");
	privd_reg_free(&got);
	/* a save killed half-way: garbage in the slot the header does not name */
	(void)!pwrite(d.reg_fd, "{\"vms\":[{\"id", 12, 4096 + (off_t)(r.slot ^ 1) * PRIVD_REG_MAX_BYTES);
	is_int(privd_reg_load(d.reg_fd, &got), 0, "a half-written save in the other slot");
	is_int(got.n, 2, "... leaves the last whole registry");
	privd_reg_free(&got);
	ok(privd_reg_header("hutch-registry 1 slot=2 len=5", 29, &slot, &len) != 0,
	   "a header naming a third slot is refused");
	(void)!pwrite(d.reg_fd, "junk", 4, 0);
	is_int(privd_reg_load(d.reg_fd, &got), -EUCLEAN, "a damaged header: refused, not emptied");
	privd_reg_free(&r);
	close(d.reg_fd);
}

/* a zombie owner is gone (gc after a kill -9 while init has not reaped it yet) */
static void t_zombie(void)
{
	struct privd_ent e = { 0 };
	char path[64], st[256] = "", c;
	int go[2];
	FILE *f;

	/* the child lives until its start time is read: then it exits and stays a zombie */
	if (pipe(go) < 0)
		return;
	e.pid = fork();
	if (e.pid == 0) {
		close(go[1]);
		(void)!read(go[0], &c, 1);
		_exit(0);
	}
	close(go[0]);
	e.start = privd_proc_start(e.pid);
	ok(e.start != 0, "the owner's start time, while it runs");
	ok(privd_ent_alive(&e), "an entry whose owner runs is alive");
	close(go[1]);
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)e.pid);
	for (int i = 0; i < 6000 && !strstr(st, ") Z"); i++) {	/* up to 60 s */
		f = fopen(path, "r");
		if (f) {
			if (!fgets(st, sizeof(st), f))
				st[0] = 0;
			fclose(f);
		}
		nanosleep(&(struct timespec){ .tv_nsec = 10000000 }, NULL);
	}
	ok(strstr(st, ") Z") != NULL, "the child is a zombie");
	is_int((int)privd_proc_start(e.pid), 0, "a zombie has no start time");
	ok(!privd_ent_alive(&e), "an entry whose owner is a zombie is not alive");
	e.start = 0;
	ok(!privd_ent_alive(&e), "... also when the entry recorded no start time");
	waitpid(e.pid, NULL, 0);
}

#define WG_CONF_JSON \
	"\"[Interface]\\nPrivateKey = yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\\nAddress = 10.200.0.2/32\\n" \
	"[Peer]\\nPublicKey = xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\\nEndpoint = 192.0.2.1:51820\\n" \
	"AllowedIPs = 0.0.0.0/0\\n\""

/* the WireGuard operations (issue 11): strict like the others */
static void t_wg_requests(void)
{
	is_int(parse("{\"op\":\"wg_up\",\"name\":\"a\",\"endpoint\":\"192.0.2.1:51820\",\"conf\":" WG_CONF_JSON "}"),
	       0, "wg_up");
	ok(q.op == PRIVD_WG_UP && q.has_wgc && q.wgc.n_addr == 1 && q.wg_ep.ss_family == AF_INET,
	   "  the conf and the endpoint parsed");
	is_int(parse("{\"op\":\"wg_up\",\"name\":\"a\",\"endpoint\":\"192.0.2.1:51820\",\"conf\":" WG_CONF_JSON
		     ",\"ifname\":\"eth0\"}"), -EINVAL, "wg_up naming its link");
	is_int(parse("{\"op\":\"wg_up\",\"name\":\"a\",\"endpoint\":\"vpn.example:51820\",\"conf\":" WG_CONF_JSON "}"),
	       -EINVAL, "wg_up with an endpoint name (the helper resolves nothing)");
	is_int(parse("{\"op\":\"wg_up\",\"name\":\"a\",\"endpoint\":\"192.0.2.1:51820\",\"conf\":\"[Interface]\\nPostUp = sh\\n\"}"),
	       -EINVAL, "wg_up with a PostUp");
	ok(strstr(err, "PostUp") != NULL, "  refused: %s", err);
	is_int(parse("{\"op\":\"wg_up\",\"name\":\"a\"}"), -EINVAL, "wg_up without its conf");
	is_int(parse("{\"op\":\"wg_fix\",\"id\":\"abc123\",\"how\":\"rules\"}"), 0, "wg_fix rules (no conf needed)");
	ok(q.op == PRIVD_WG_FIX && q.wg_how == WG_FIX_RULES && !q.has_wgc, "  fields");
	is_int(parse("{\"op\":\"wg_fix\",\"id\":\"abc123\",\"how\":\"relink\"}"), -EINVAL,
	       "wg_fix relink without its conf");
	is_int(parse("{\"op\":\"wg_fix\",\"id\":\"abc123\",\"how\":\"relink\",\"endpoint\":\"192.0.2.1:51820\","
		     "\"conf\":" WG_CONF_JSON "}"), 0, "wg_fix relink");
	is_int(parse("{\"op\":\"wg_fix\",\"id\":\"abc123\",\"how\":\"rm -rf\"}"), -EINVAL, "wg_fix with an unknown how");
	is_int(parse("{\"op\":\"wg_down\",\"id\":\"../eth0\"}"), -EINVAL, "wg_down with a path for an id");
	is_int(parse("{\"op\":\"wg_get\",\"id\":\"abc123\"}"), 0, "wg_get");
	is_int(parse(NET_UP(",\"wg\":{\"ifname\":\"eth0\",\"mark\":1752629249,\"dns\":\"10.200.0.1\"}")), -EINVAL,
	       "net_up with a kill switch on a link not hutch's");
}

int main(void)
{
	t_zombie();
	t_requests();
	t_wg_requests();
	t_conf();
	t_registry();
	t_registry_file();
	return tap_done();
}
