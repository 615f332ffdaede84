// SPDX-License-Identifier: MIT
/* QEMU argv and accelerator selection: what ends up on QEMU's command line. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/accel.h"
#include "src/qemu.h"
#include "tests/unit/tap.h"

/* index of @s in @a at or after @from, or -1 */
static int find(const struct qemu_argv *a, const char *s)
{
	for (size_t i = 0; i < a->n; i++)
		if (!strcmp(a->v[i], s))
			return (int)i;
	return -1;
}

/* the value after option @opt, which must be @val somewhere in argv */
static int has_pair(const struct qemu_argv *a, const char *opt, const char *val)
{
	for (size_t i = 0; i + 1 < a->n; i++)
		if (!strcmp(a->v[i], opt) && !strcmp(a->v[i + 1], val))
			return 1;
	return 0;
}

static int has_prefix_pair(const struct qemu_argv *a, const char *opt, const char *val)
{
	for (size_t i = 0; i + 1 < a->n; i++)
		if (!strcmp(a->v[i], opt) && !strncmp(a->v[i + 1], val, strlen(val)))
			return 1;
	return 0;
}

int main(void)
{
	struct cfg_forward fw[2] = { { CFG_PROTO_TCP, 8080, 80 }, { CFG_PROTO_UDP, 5353, 53 } };
	struct cfg_vm vm = { .name = "agent", .cpus = 2, .memory_mib = 512 };
	struct qemu_params p = { .vm = &vm, .accel = ACCEL_TCG, .mac = "52:54:00:01:02:03",
				 .qmp_fd = 3, .serial_fd = 4, .ssh_port = 2222, .sandbox = true };
	struct qemu_argv a = { 0 };
	enum accel_kind k = ACCEL_KVM;
	char mac[32], mac2[32];
	uint16_t port = 0;

	/* accel selection */
	ok(accel_decide(CFG_ACCEL_AUTO, false, &k) == 0 && k == ACCEL_TCG, "auto without KVM: tcg");
	ok(accel_decide(CFG_ACCEL_AUTO, true, &k) == 0 && k == ACCEL_KVM, "auto with KVM: kvm");
	k = ACCEL_TCG;
	is_int(accel_decide(CFG_ACCEL_KVM, false, &k), -ENODEV, "kvm forced, unusable: -ENODEV");
	ok(k == ACCEL_TCG, "output untouched on failure");
	ok(accel_decide(CFG_ACCEL_KVM, true, &k) == 0 && k == ACCEL_KVM, "kvm forced, usable: kvm");
	ok(accel_decide(CFG_ACCEL_TCG, true, &k) == 0 && k == ACCEL_TCG, "tcg forced even with KVM");
	ok(!strcmp(accel_qemu_accel(ACCEL_TCG), "tcg,thread=multi") &&
		   !strcmp(accel_qemu_cpu(ACCEL_TCG), "max"), "TCG: multi-threaded, -cpu max");
	ok(!strcmp(accel_qemu_accel(ACCEL_KVM), "kvm") && !strcmp(accel_qemu_cpu(ACCEL_KVM), "host"),
	   "KVM: -cpu host");
	ok(accel_parse("kvm", &k) == 0 && k == ACCEL_KVM && accel_parse("tcg", &k) == 0 &&
		   k == ACCEL_TCG && accel_parse("xen", &k) == -EINVAL, "accel_parse");

	/* minimal: network none, no disk, no kernel */
	vm.network.mode = CFG_NET_NONE;
	is_int(qemu_build_argv(&p, &a), 0, "build argv (mode none)");
	ok(a.v[a.n] == NULL, "argv is NULL-terminated");
	ok(!strcmp(a.v[0], "qemu-system-x86_64"), "argv[0]");
	ok(find(&a, "-nodefaults") > 0 && find(&a, "-no-user-config") > 0, "-nodefaults -no-user-config");
	ok(has_pair(&a, "-accel", "tcg,thread=multi") && has_pair(&a, "-cpu", "max"), "TCG accel");
	ok(has_pair(&a, "-m", "512") && has_pair(&a, "-smp", "2"), "memory and cpus");
	ok(has_pair(&a, "-name", "agent") && has_pair(&a, "-M", "q35"), "name and machine");
	ok(has_pair(&a, "-display", "none"), "no display");
	ok(has_prefix_pair(&a, "-sandbox", "on,"), "seccomp sandbox");
	ok(has_pair(&a, "-chardev", "socket,id=qmp,fd=3") &&
		   has_pair(&a, "-mon", "chardev=qmp,mode=control"), "QMP on an inherited fd");
	ok(has_pair(&a, "-chardev", "socket,id=ser0,fd=4") && has_pair(&a, "-serial", "chardev:ser0"),
	   "serial on an inherited fd");
	ok(find(&a, "-netdev") < 0 && find(&a, "-kernel") < 0 && find(&a, "-drive") < 0,
	   "mode none: no NIC; no disk, no kernel");
	ok(has_pair(&a, "-device", "virtio-rng-pci"), "virtio-rng");
	qemu_argv_free(&a);

	/* user networking with forwards, disk, seed, kernel */
	vm.network.mode = CFG_NET_USER;
	vm.network.forward = fw;
	vm.network.n_forward = 2;
	vm.kernel.path = "/k/vmlinuz";
	vm.kernel.initrd = "/k/initrd.img";
	vm.kernel.cmdline = "console=ttyS0 quiet";
	p.disk = "/vms/a,readonly=off/disk.qcow2";
	p.seed = "/vms/a/seed.iso";
	p.accel = ACCEL_KVM;
	is_int(qemu_build_argv(&p, &a), 0, "build argv (mode user)");
	ok(has_pair(&a, "-netdev",
		    "user,id=n0,hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=tcp:127.0.0.1:8080-:80,"
		    "hostfwd=udp:127.0.0.1:5353-:53,ipv6=off"),
	   "user netdev: SSH and forwards on 127.0.0.1 only, no IPv6");
	ok(has_pair(&a, "-device", "virtio-net-pci,netdev=n0,mac=52:54:00:01:02:03"),
	   "virtio-net with the VM's MAC");
	ok(has_pair(&a, "-drive", "file=/vms/a,,readonly=off/disk.qcow2,if=virtio,format=qcow2,discard=unmap"),
	   "disk is virtio qcow2, comma in the path escaped");
	ok(has_pair(&a, "-drive", "file=/vms/a/seed.iso,if=virtio,format=raw,readonly=on"),
	   "seed is a read-only virtio disk");
	{
		char *e1 = qemu_opt_escape("/d,file=/etc/shadow,,x"), *e2 = qemu_opt_escape("");

		ok(e1 && strcmp(e1, "/d,,file=/etc/shadow,,,,x") == 0 && e2 && !e2[0],
		   "qemu_opt_escape() doubles every comma (issue 15.2)");
		free(e1);
		free(e2);
	}
	ok(has_pair(&a, "-kernel", "/k/vmlinuz") && has_pair(&a, "-initrd", "/k/initrd.img") &&
		   has_pair(&a, "-append", "console=ttyS0 quiet"), "direct kernel boot");
	ok(has_pair(&a, "-accel", "kvm") && has_pair(&a, "-cpu", "host"), "KVM accel");
	qemu_argv_free(&a);

	vm.network.mode = CFG_NET_NAT;
	p.sandbox = false;
	is_int(qemu_build_argv(&p, &a), 0, "build argv (mode nat)");
	ok(find(&a, "-netdev") < 0, "mode nat: the core adds no netdev (the net extension does)");
	ok(find(&a, "-sandbox") < 0, "no sandbox when unsupported");
	qemu_argv_free(&a);

	ok(qemu_mac_for("agent", mac, sizeof(mac)) == 0 && qemu_mac_for("agent", mac2, sizeof(mac2)) == 0 &&
		   !strcmp(mac, mac2) && !strncmp(mac, "52:54:00:", 9) && strlen(mac) == 17,
	   "MAC is stable and in 52:54:00: %s", mac);
	ok(qemu_mac_for("other", mac2, sizeof(mac2)) == 0 && strcmp(mac, mac2), "MAC differs per name");
	/* SHA-256("agent") starts d4f0bc: VMs keep their MAC across hutch versions */
	ok(!strcmp(mac, "52:54:00:d4:f0:bc"), "MAC is the first 3 bytes of SHA-256(name): %s", mac);
	ok(qemu_free_port(&port) == 0 && port > 0, "free port %u", port);
	return tap_done();
}
