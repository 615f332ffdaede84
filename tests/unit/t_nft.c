// SPDX-License-Identifier: MIT
/*
 * net/nft.c: argument checks (no privileges needed), then, as root, the
 * whole API against the kernel inside a network namespace of our own
 * (unshare(CLONE_NEWNET)), so the host's ruleset is never touched.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/nft.h"
#include "src/log.h"
#include "tap.h"

static struct cfg_host_access ha[2];

static struct nft_vm mkvm(const char *id, const char *tap, const char *addr)
{
	struct nft_vm vm = { .isolation = true, .prefix = 24, .mac = { 0x52, 0x54, 0, 0, 0, 0x0a },
			     .host_access = ha, .n_host_access = 2 };

	snprintf(vm.id, sizeof(vm.id), "%s", id);
	snprintf(vm.tap, sizeof(vm.tap), "%s", tap);
	inet_pton(AF_INET, addr, &vm.addr);
	inet_pton(AF_INET, "10.77.0.1", &vm.gw);
	return vm;
}

static int dump_count(const char *id, const char *needle, size_t *lines)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int found = 0;

	if (!f)
		return -1;
	if (nft_dump(id, f) != 0) {
		fclose(f);
		free(buf);
		return -1;
	}
	fclose(f);
	*lines = 0;
	for (char *p = buf; p && *p; p++)
		if (*p == '\n')
			(*lines)++;
	if (buf && strstr(buf, needle))
		found = 1;
	free(buf);
	return found;
}

static void checks(void)
{
	struct nft_vm vm = mkvm("a", "ht-a", "10.77.0.10");
	struct in_addr net = { .s_addr = htonl(0x0a4d0000) };

	vm = mkvm("", "ht-a", "10.77.0.10");
	is_int(nft_vm_add(&vm), -EINVAL, "empty id refused");
	vm = mkvm("A", "ht-a", "10.77.0.10");
	is_int(nft_vm_add(&vm), -EINVAL, "upper-case id refused");
	vm = mkvm("a-b", "ht-a", "10.77.0.10");
	is_int(nft_vm_add(&vm), -EINVAL, "id with '-' refused (chain names stay unambiguous)");
	vm = mkvm("a", "eth0", "10.77.0.10");
	is_int(nft_vm_add(&vm), -EINVAL, "a tap not named ht-* refused");
	vm = mkvm("a", "ht-", "10.77.0.10");
	is_int(nft_vm_add(&vm), -EINVAL, "tap \"ht-\" alone refused");
	vm = mkvm("a", "ht-a", "10.77.0.10");
	vm.prefix = 33;
	is_int(nft_vm_add(&vm), -EINVAL, "prefix 33 refused");
	is_int(nft_vm_add(NULL), -EINVAL, "NULL refused");
	is_int(nft_vm_del("x y"), -EINVAL, "nft_vm_del checks the id");
	is_int(nft_vm_present("../x"), -EINVAL, "nft_vm_present checks the id");
	is_int(nft_dump("A", stdout), -EINVAL, "nft_dump checks the id");
	is_int(nft_base_ensure("averyveryverylongbridge", net, 24), -EINVAL, "bridge name longer than IFNAMSIZ refused");
	is_int(nft_base_ensure("hutch0", net, 40), -EINVAL, "prefix 40 refused");

	{
		struct cfg_vm cv = { 0 };
		struct nft_vm out = { 0 };
		const uint8_t mac[6] = { 0x52, 0x54, 0, 1, 2, 3 };
		struct in_addr a = { .s_addr = htonl(0x0a4d0005) }, gw = { .s_addr = htonl(0x0a4d0001) };

		cv.network.isolation = false;
		cv.network.ipv6 = true;
		cv.network.host_access = ha;
		cv.network.n_host_access = 2;
		is_int(nft_vm_init(&out, "vm1", "ht-vm1", mac, a, gw, 24, &cv), 0, "nft_vm_init");
		ok(!strcmp(out.id, "vm1") && !strcmp(out.tap, "ht-vm1") && out.mac[5] == 3 &&
		   out.addr.s_addr == a.s_addr && out.gw.s_addr == gw.s_addr && out.prefix == 24 &&
		   !out.isolation && out.ipv6 && out.host_access == ha && out.n_host_access == 2,
		   "nft_vm_init copies the config");
		is_int(nft_vm_init(&out, "vm1", "tap0", mac, a, gw, 24, &cv), -EINVAL, "nft_vm_init checks the tap");
		is_int(nft_vm_init(&out, "Vm1", "ht-vm1", mac, a, gw, 24, &cv), -EINVAL, "nft_vm_init checks the id");
	}
}

static void kernel(void)
{
	struct in_addr net = { .s_addr = htonl(0x0a4d0000) };
	struct nft_vm a = mkvm("a", "ht-a", "10.77.0.10"), b = mkvm("b", "ht-b", "10.77.0.11");
	struct nft_vm c = mkvm("c", "ht-c", "10.77.0.10");
	char ids[4][NFT_ID_MAX];
	size_t n = 99, lines = 0, lines2 = 0;
	int fd;

	is_int(nft_base_present(), 0, "no base in a fresh namespace");
	is_int(nft_vm_list(ids, 4, &n), 0, "nft_vm_list without tables");
	is_int(n, 0, "... lists nothing");
	is_int(nft_vm_del("a"), 0, "nft_vm_del without tables is fine");
	is_int(nft_base_remove(), 0, "nft_base_remove without tables is fine");

	is_int(nft_base_ensure("hutch0", net, 24), 0, "nft_base_ensure");
	is_int(nft_base_present(), 1, "base present");
	is_int(nft_base_ensure("hutch0", net, 24), 0, "nft_base_ensure twice");
	is_int(nft_vm_add(&a), 0, "nft_vm_add a");
	is_int(nft_vm_present("a"), 1, "a present");
	is_int(dump_count("a", "allow-host-port tcp/8080 on 10.77.0.1", &lines), 1, "nft_dump a shows its host port");
	is_int(dump_count("a", "allow-lan-host 192.168.1.50", &lines), 1, "nft_dump a shows its LAN host");
	is_int(nft_vm_add(&a), 0, "nft_vm_add a again replaces");
	is_int(dump_count("a", "internet", &lines2), 1, "nft_dump a after replace");
	is_int(lines2, lines, "replace does not duplicate rules");
	is_int(nft_vm_add(&c), -EEXIST, "c with a's address refused (-EEXIST)");
	is_int(nft_vm_present("c"), 0, "... and nothing of c remains");
	is_int(nft_vm_add(&b), 0, "nft_vm_add b");
	is_int(nft_vm_list(ids, 4, &n), 0, "nft_vm_list");
	ok(n == 2 && ((!strcmp(ids[0], "a") && !strcmp(ids[1], "b")) || (!strcmp(ids[0], "b") && !strcmp(ids[1], "a"))),
	   "nft_vm_list gives a and b");
	is_int(nft_vm_list(ids, 1, &n), -ENOSPC, "nft_vm_list with no room: -ENOSPC");
	is_int(nft_base_ensure("hutch0", net, 24), 0, "nft_base_ensure with VMs installed");
	is_int(nft_vm_present("a") + nft_vm_present("b"), 2, "... keeps them");
	is_int(nft_vm_del("a"), 0, "nft_vm_del a");
	is_int(nft_vm_present("a"), 0, "a gone");
	is_int(nft_vm_present("b"), 1, "b stays");
	is_int(dump_count("a", "x", &lines), 0, "nft_dump of a removed VM prints nothing");
	is_int(lines, 0, "... no lines");

	/* content checks and repair */
	is_int(nft_base_intact("hutch0", net, 24), 1, "nft_base_intact");
	is_int(nft_base_intact("hutch1", net, 24), 0, "... not for another bridge");
	is_int(nft_vm_intact(&b), 1, "nft_vm_intact b");
	{
		struct nft_vm b2 = b;

		b2.n_host_access = 1;
		is_int(nft_vm_intact(&b2), 0, "... not with other host_access (content differs)");
		b2 = b;
		b2.addr.s_addr = htonl(0x0a4d0063);
		is_int(nft_vm_intact(&b2), 0, "... not with another address (rules and elements differ)");
	}
	is_int(nft_vm_intact(&a), 0, "a (deleted) is not intact");
	is_int(nft_repair(&b, "hutch0", net, 24), 0, "nft_repair with nothing to do: 0");
	is_int(nft_vm_del("b"), 0, "nft_vm_del b");
	is_int(nft_repair(&b, "hutch0", net, 24), 1, "nft_repair re-installs b: 1");
	is_int(nft_vm_intact(&b), 1, "... and b is intact");
	is_int(nft_base_ensure("hutch1", net, 24), -EBUSY, "a base for another bridge while b runs: -EBUSY");
	is_int(nft_base_intact("hutch0", net, 24), 1, "... the base still serves hutch0");
	is_int(nft_base_remove(), -EBUSY, "nft_base_remove while b has rules: -EBUSY");
	is_int(nft_base_present(), 1, "... the base stays");

	fd = nft_watch_open();
	ok(fd >= 0, "nft_watch_open");
	if (fd >= 0) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		is_int(nft_watch_handle(fd), 0, "no event yet");
		is_int(nft_vm_del("b"), 0, "nft_vm_del b");
		is_int(nft_watch_handle(fd) >= 0, 1, "(events drained)");
		is_int(nft_base_remove(), 0, "nft_base_remove");
		ok(poll(&p, 1, 5000) == 1, "an event arrives");
		is_int(nft_watch_handle(fd), 1, "nft_watch_handle reports hutch's tables deleted");
		close(fd);
	}
	is_int(nft_base_present(), 0, "base gone");
	is_int(nft_vm_list(ids, 4, &n), 0, "nft_vm_list after removal");
	is_int(n, 0, "... empty");
}

int main(void)
{
	log_init("t_nft", LOG_LVL_ERR);
	ha[0] = (struct cfg_host_access){ .kind = CFG_HA_HOST_PORT, .proto = CFG_PROTO_TCP, .port = 8080 };
	ha[1] = (struct cfg_host_access){ .kind = CFG_HA_LAN_HOST };
	inet_pton(AF_INET, "192.168.1.50", &ha[1].addr);
	checks();
	if (geteuid() != 0 || unshare(CLONE_NEWNET) != 0)
		printf("ok %d - kernel tests # SKIP needs root for a network namespace\n", ++tap_n);
	else
		kernel();
	return tap_done();
}
