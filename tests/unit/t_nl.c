// SPDX-License-Identifier: MIT
/* The pure parts of net/: names, subnets, MACs, tap ids. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/net.h"
#include "net/tap.h"
#include "src/util.h"
#include "tests/unit/tap.h"

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
	return tap_done();
}
