// SPDX-License-Identifier: MIT
/* The pure parts of net/: names, subnets, MACs, tap ids. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/net.h"
#include "net/nl.h"
#include "net/tap.h"
#include "src/log.h"
#include "src/util.h"
#include "tests/unit/tap.h"

static char *logbuf;
static size_t loglen;
static FILE *logmem;

static void log_capture(void)
{
	if (logmem)
		fclose(logmem);
	free(logbuf);
	logbuf = NULL;
	logmem = open_memstream(&logbuf, &loglen);
	log_set_file(logmem);
}

static const char *log_text(void)
{
	fflush(logmem);
	return logbuf ? logbuf : "";
}

/* RTM_NEWLINK for a bridge @name, built into @buf as a caller of nl.h would */
static void *bridge_msg(void *buf, const char *name)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifinfomsg *ifi;
	struct nlattr *li;

	nlh->nlmsg_type = RTM_NEWLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	li = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "bridge");
	mnl_attr_nest_end(nlh, li);
	return nlh;
}

static int count_newlink(const struct nlmsghdr *nlh, void *data)
{
	if (nlh->nlmsg_type == RTM_NEWLINK)
		(*(int *)data)++;
	return 0;
}

static char fwd_now(void)
{
	char buf[4] = "";
	int fd = open("/proc/sys/net/ipv4/ip_forward", O_RDONLY);

	if (fd >= 0) {
		if (read(fd, buf, 1) < 0)
			buf[0] = '?';
		close(fd);
	}
	return buf[0];
}

/* nl.h's API against the kernel, in a network namespace of our own */
static void kernel(void)
{
	struct nl_sock *s = nl_open(NETLINK_GENERIC);
	struct nl_batch *b;
	uint16_t id = 0;
	uint8_t mac[6] = { 0x52, 0x54, 0, 1, 2, 3 };
	bool on = true;
	int ev, fd = -1, n = 0;
	uint32_t seq;

	ok(s != NULL, "nl_open(NETLINK_GENERIC)");
	is_int(nl_genl_family(s, "nlctrl", &id), 0, "nl_genl_family nlctrl");
	is_int(id, GENL_ID_CTRL, "... is GENL_ID_CTRL");
	is_int(nl_genl_family(s, "no-such-family", &id), -ENOENT, "an unknown family: -ENOENT");
	nl_close(s);

	ev = nl_event_open(NETLINK_ROUTE, RTNLGRP_LINK);
	ok(ev >= 0, "nl_event_open(RTNLGRP_LINK)");
	is_int(nl_bridge_add("tb0"), 0, "nl_bridge_add tb0");
	is_int(nl_bridge_add("tb0"), -EEXIST, "again: -EEXIST");
	is_int(nl_event_read(ev, count_newlink, &n), 0, "nl_event_read");
	ok(n >= 1, "... saw RTM_NEWLINK (%d)", n);

	/* a batch of three changes, the second fails: its description is named */
	s = nl_open(NETLINK_ROUTE);
	b = nl_batch_new();
	ok(s && b, "nl_open(NETLINK_ROUTE), nl_batch_new");
	if (s && b) {
		const char *names[3] = { "tb1", "tb0", "tb2" };

		for (int i = 0; i < 3; i++) {
			struct nlmsghdr *nlh = nl_batch_reserve(b, &seq, "create bridge %s", names[i]);

			if (nlh) {
				bridge_msg(nlh, names[i]);
				nlh->nlmsg_seq = seq;
				nl_batch_push(b);
			}
		}
		is_int(nl_batch_count(b), 3, "three messages in the batch");
		log_capture();
		is_int(nl_batch_talk(s, b, "test batch", 0), -EEXIST, "nl_batch_talk: the failing message's errno");
		ok(strstr(log_text(), "create bridge tb0") != NULL, "... the error names its object: %s", log_text());
		ok(!strstr(log_text(), "tb1") && !strstr(log_text(), "tb2"), "... and only it");
		log_set_file(NULL);
		ok(nl_link_get("tb1", &(int){ 0 }, NULL) == 0 && nl_link_get("tb2", &(int){ 0 }, NULL) == 0,
		   "rtnetlink is not transactional: the other two were made");
	}
	nl_batch_free(b);
	/* a full batch whose every message fails: all answers read, each named */
	b = nl_batch_new();
	if (s && b) {
		for (int i = 0; i < NL_BATCH_MSGS; i++) {
			struct nlmsghdr *nlh = nl_batch_reserve(b, &seq, "delete link nx%d", i);
			struct ifinfomsg *ifi;
			char name[16];

			if (!nlh)
				break;
			nlh = mnl_nlmsg_put_header(nlh);
			nlh->nlmsg_type = RTM_DELLINK;
			nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
			nlh->nlmsg_seq = seq;
			ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
			ifi->ifi_family = AF_UNSPEC;
			snprintf(name, sizeof(name), "nx%d", i);
			mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
			nl_batch_push(b);
		}
		log_capture();
		is_int(nl_batch_talk(s, b, "deletes", 0), -ENODEV, "%d failing messages: -ENODEV", NL_BATCH_MSGS);
		{
			char last[32];

			snprintf(last, sizeof(last), "delete link nx%d:", NL_BATCH_MSGS - 1);
			ok(strstr(log_text(), "delete link nx0:") && strstr(log_text(), last),
			   "... every answer read, the first and the last named");
		}
		log_set_file(NULL);
	}
	nl_batch_free(b);
	b = nl_batch_new();
	if (b) {
		for (int i = 0; i <= NL_BATCH_MSGS; i++) {
			struct nlmsghdr *nlh = nl_batch_reserve(b, &seq, "msg %d", i);

			if (!nlh)
				break;
			bridge_msg(nlh, "x");
			nlh->nlmsg_seq = seq;
			nl_batch_push(b);
		}
		is_int(nl_batch_error(b), -E2BIG, "a batch past NL_BATCH_MSGS fails (-E2BIG)");
		is_int(nl_batch_talk(s, b, "too big", 0), -E2BIG, "... and is not sent");
	}
	nl_batch_free(b);
	nl_close(s);

	/* a guest's port: isolated, no learning, a static FDB entry */
	if (tap_open("ht-t1", 0, 0, &fd) == 0) {
		is_int(nl_link_set_master("ht-t1", "tb0"), 0, "enslave ht-t1");
		is_int(nl_brport_isolate("ht-t1", true), 0, "nl_brport_isolate");
		is_int(nl_brport_isolated("ht-t1", &on), 0, "read back");
		ok(on, "... isolated");
		is_int(nl_brport_learning("ht-t1", &on), 0, "learning read back");
		ok(!on, "... learning off");
		is_int(nl_fdb_add("ht-t1", mac), 0, "nl_fdb_add");
		is_int(nl_fdb_add("ht-t1", mac), 0, "nl_fdb_add again (replace) is fine");
		is_int(nl_bridge_secure("tb0"), 0, "nl_bridge_secure");
		is_int(nl_link_up("ht-t1"), 0, "nl_link_up");
		is_int(nl_link_down("ht-t1"), 0, "nl_link_down");
	} else {
		ok(1, "tap tests # SKIP no /dev/net/tun");
	}

	/* ip_forward: restored only when hutch turned it on and no tap is left */
	if (fwd_now() == '0') {
		is_int(nl_forwarding_on(), 0, "nl_forwarding_on");
		ok(fwd_now() == '1', "ip_forward is 1");
		is_int(nl_forwarding_restore(), fd >= 0 ? 0 : 1, "nl_forwarding_restore while a tap exists: 0");
		if (fd >= 0) {
			close(fd);
			nl_link_del("ht-t1");
			is_int(nl_forwarding_restore(), 1, "... after the last tap: restored");
		}
		ok(fwd_now() == '0', "ip_forward is 0 again");
		is_int(nl_forwarding_restore(), 0, "nothing more to restore");
	}
	nl_link_del("tb1");
	nl_link_del("tb2");
	nl_link_del("tb0");
	is_int(nl_link_del("tb0"), -ENODEV, "nl_link_del of a missing link: -ENODEV");
	if (ev >= 0)
		close(ev);
}

int main(void)
{
	struct net_conf nc;
	uint8_t mac[6];
	char id[TAP_ID_LEN + 1], name[IFNAMSIZ], a[INET_ADDRSTRLEN];

	ok(net_ifname_valid("hutch0") && net_ifname_valid("ht-abc123de"), "valid interface names");
	ok(!net_ifname_valid("") && !net_ifname_valid("0123456789abcdef") && !net_ifname_valid("a/b") &&
		   !net_ifname_valid("..") && !net_ifname_valid("a b"),
	   "empty, 16 chars, slash, dots, space refused");

	is_int(net_subnet_parse("10.77.0.1/24", &nc), 0, "parse 10.77.0.1/24");
	inet_ntop(AF_INET, &nc.net, a, sizeof(a));
	ok(!strcmp(a, "10.77.0.0") && nc.prefix == 24, "network 10.77.0.0/24 (%s)", a);
	is_int(net_subnet_parse("10.77.0.0/24", &nc), -EINVAL, "network address as gateway refused");
	is_int(net_subnet_parse("10.77.0.255/24", &nc), -EINVAL, "broadcast as gateway refused");
	is_int(net_subnet_parse("10.77.0.1/31", &nc), -EINVAL, "/31 refused");
	is_int(net_subnet_parse("10.77.0.1/7", &nc), -EINVAL, "/7 refused");
	is_int(net_subnet_parse("10.77.0.1", &nc), -EINVAL, "no prefix refused");
	is_int(net_subnet_parse("10.77.0.1/24x", &nc), -EINVAL, "trailing junk refused");
	is_int(net_subnet_parse("10.77.0/24", &nc), -EINVAL, "short address refused");

	unsetenv("HUTCH_BRIDGE");
	unsetenv("HUTCH_SUBNET");
	is_int(net_conf_get(&nc), 0, "defaults");
	ok(!strcmp(nc.bridge, "hutch0") && nc.prefix == 24, "hutch0, /24");
	setenv("HUTCH_BRIDGE", "ht-evil", 1);
	is_int(net_conf_get(&nc), -EINVAL, "a bridge named like a tap refused");
	setenv("HUTCH_BRIDGE", "br-test", 1);
	setenv("HUTCH_SUBNET", "192.168.50.1/28", 1);
	is_int(net_conf_get(&nc), 0, "overrides");
	ok(!strcmp(nc.bridge, "br-test") && nc.prefix == 28, "override values");

	is_int(net_mac_parse("52:54:00:12:34:56", mac), 0, "parse MAC");
	ok(mac[0] == 0x52 && mac[5] == 0x56, "MAC bytes");
	is_int(net_mac_parse("53:54:00:12:34:56", mac), -EINVAL, "multicast MAC refused");
	is_int(net_mac_parse("00:00:00:00:00:00", mac), -EINVAL, "zero MAC refused");
	is_int(net_mac_parse("52:54:00:12:34:56:", mac), -EINVAL, "trailing byte refused");
	is_int(net_mac_parse("52:54:00:12:34", mac), -EINVAL, "short MAC refused");

	is_int(tap_new_id(id, sizeof(id)), 0, "new tap id");
	ok(strlen(id) == TAP_ID_LEN && strspn(id, "abcdefghijklmnopqrstuvwxyz0123456789") == TAP_ID_LEN,
	   "id is [a-z0-9]{%d}: %s", TAP_ID_LEN, id);
	is_int(tap_name(id, name, sizeof(name)), 0, "tap name");
	ok(!strncmp(name, "ht-", 3) && strlen(name) < IFNAMSIZ, "ht-<id> fits IFNAMSIZ: %s", name);
	is_int(tap_name("ABC", name, sizeof(name)), -EINVAL, "upper case id refused");
	is_int(tap_name("abc/../x", name, sizeof(name)), -EINVAL, "path-like id refused");
	is_int(tap_name("abcdefghi", name, sizeof(name)), -EINVAL, "id over 8 chars refused");

	/* address and MAC choice moved behind the seam: tests/unit/t_priv.c */
	if (geteuid() != 0 || unshare(CLONE_NEWNET) != 0)
		printf("ok %d - kernel tests # SKIP needs root for a network namespace\n", ++tap_n);
	else
		kernel();
	return tap_done();
}
