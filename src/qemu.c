// SPDX-License-Identifier: MIT
#include "src/qemu.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "src/lazy.h"
#include "src/util.h"

int qemu_argv_add(struct qemu_argv *a, const char *s)
{
	char *d;

	if (a->n + 2 > a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 64;
		char **v = realloc(a->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		a->v = v;
		a->cap = cap;
	}
	d = strdup(s);
	if (!d)
		return -ENOMEM;
	a->v[a->n++] = d;
	a->v[a->n] = NULL;
	return 0;
}

int qemu_argv_addf(struct qemu_argv *a, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int rc;

	va_start(ap, fmt);
	rc = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (rc < 0)
		return -ENOMEM;
	rc = qemu_argv_add(a, s);
	free(s);
	return rc;
}

void qemu_argv_free(struct qemu_argv *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->v[i]);
	free(a->v);
	*a = (struct qemu_argv){ 0 };
}

char *qemu_opt_escape(const char *s)
{
	size_t n = strlen(s), j = 0;
	char *esc = malloc(2 * n + 1);

	if (!esc)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		esc[j++] = s[i];
		if (s[i] == ',')
			esc[j++] = ',';
	}
	esc[j] = 0;
	return esc;
}

/* "PREFIX<path>SUFFIX" with @path escaped: a comma in it cannot start an option */
static int qemu_add_path(struct qemu_argv *a, const char *prefix, const char *path,
			 const char *suffix)
{
	char *esc = qemu_opt_escape(path);
	int rc;

	if (!esc)
		return -ENOMEM;
	rc = qemu_argv_addf(a, "%s%s%s", prefix, esc, suffix);
	free(esc);
	return rc;
}

/* "user,id=n0,hostfwd=..." for network mode user; malloc'd into *@out */
static int qemu_user_netdev(const struct qemu_params *p, char **out)
{
	const struct cfg_vm *vm = p->vm;
	char *s = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&s, &len);

	if (!f)
		return -ENOMEM;
	fprintf(f, "user,id=n0,hostfwd=tcp:127.0.0.1:%u-:22", p->ssh_port);
	for (size_t i = 0; i < vm->network.n_forward; i++) {
		const struct cfg_forward *w = &vm->network.forward[i];

		fprintf(f, ",hostfwd=%s:127.0.0.1:%u-:%u", w->proto == CFG_PROTO_UDP ? "udp" : "tcp",
			w->host_port, w->guest_port);
	}
	/* network.ipv6: false holds in user mode too: slirp offers IPv6 by default */
	if (!vm->network.ipv6)
		fprintf(f, ",ipv6=off");
	if (fclose(f)) {
		free(s);
		return -ENOMEM;
	}
	*out = s;
	return 0;
}

int qemu_build_argv(const struct qemu_params *p, struct qemu_argv *a)
{
	const struct cfg_vm *vm = p->vm;
	const char *fixed[] = { "qemu-system-x86_64", "-nodefaults", "-no-user-config", "-M", "q35",
				"-display", "none", "-accel", accel_qemu_accel(p->accel),
				"-cpu", accel_qemu_cpu(p->accel), "-name", vm->name };
	char *nd;
	int rc;

	for (size_t i = 0; i < UTIL_ARRAY_SIZE(fixed); i++)
		if ((rc = qemu_argv_add(a, fixed[i])))
			return rc;
	if ((rc = qemu_argv_add(a, "-m")) || (rc = qemu_argv_addf(a, "%u", vm->memory_mib)) ||
	    (rc = qemu_argv_add(a, "-smp")) || (rc = qemu_argv_addf(a, "%u", vm->cpus)))
		return rc;
	if (p->sandbox &&
	    ((rc = qemu_argv_add(a, "-sandbox")) ||
	     (rc = qemu_argv_add(a, "on,obsolete=deny,elevateprivileges=deny,spawn=deny,"
				    "resourcecontrol=deny"))))
		return rc;
	if (vm->firmware == CFG_FW_UEFI && p->uefi_code &&
	    ((rc = qemu_argv_add(a, "-drive")) ||
	     (rc = qemu_add_path(a, "if=pflash,format=raw,readonly=on,file=", p->uefi_code, ""))))
		return rc;
	if ((rc = qemu_argv_add(a, "-chardev")) ||
	    (rc = qemu_argv_addf(a, "socket,id=qmp,fd=%d", p->qmp_fd)) ||
	    (rc = qemu_argv_add(a, "-mon")) || (rc = qemu_argv_add(a, "chardev=qmp,mode=control")) ||
	    (rc = qemu_argv_add(a, "-chardev")) ||
	    (rc = qemu_argv_addf(a, "socket,id=ser0,fd=%d", p->serial_fd)) ||
	    (rc = qemu_argv_add(a, "-serial")) || (rc = qemu_argv_add(a, "chardev:ser0")))
		return rc;
	if (vm->kernel.path) {
		if ((rc = qemu_argv_add(a, "-kernel")) ||
		    (rc = qemu_argv_add(a, p->kernel ? p->kernel : vm->kernel.path)))
			return rc;
		if (vm->kernel.initrd &&
		    ((rc = qemu_argv_add(a, "-initrd")) ||
		     (rc = qemu_argv_add(a, p->initrd ? p->initrd : vm->kernel.initrd))))
			return rc;
		if (vm->kernel.cmdline && ((rc = qemu_argv_add(a, "-append")) ||
					   (rc = qemu_argv_add(a, vm->kernel.cmdline))))
			return rc;
	}
	if (p->disk) {
		char sfx[1024];

		if ((rc = util_snprintf(sfx, sizeof(sfx), ",if=virtio,format=qcow2,discard=unmap%s",
					p->disk_opts ? p->disk_opts : "")) ||
		    (rc = qemu_argv_add(a, "-drive")) || (rc = qemu_add_path(a, "file=", p->disk, sfx)))
			return rc;
	}
	/* a q35 CD-ROM needs AHCI, which Debian's cloud kernel lacks: a read-only virtio disk */
	if (p->seed && ((rc = qemu_argv_add(a, "-drive")) ||
			(rc = qemu_add_path(a, "file=", p->seed, ",if=virtio,format=raw,readonly=on"))))
		return rc;
	switch (vm->network.mode) {
	case CFG_NET_USER:
		if ((rc = qemu_user_netdev(p, &nd)))
			return rc;
		rc = qemu_argv_add(a, "-netdev");
		if (!rc)
			rc = qemu_argv_add(a, nd);
		free(nd);
		if (rc || (rc = qemu_argv_add(a, "-device")) ||
		    (rc = qemu_argv_addf(a, "virtio-net-pci,netdev=n0,mac=%s", p->mac)))
			return rc;
		break;
	case CFG_NET_NAT:	/* the net extension adds -netdev tap and its NIC */
	case CFG_NET_NONE:
		break;
	}
	return qemu_argv_add(a, "-device") ?: qemu_argv_add(a, "virtio-rng-pci");
}

int qemu_mac_for(const char *name, char *buf, size_t n)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	const struct lazy_crypto *cr;
	unsigned int mdlen = 0;
	int rc = lazy_crypto(&cr);

	/* `up` only: the supervisor reads the MAC from state.json */
	if (rc)
		return rc;
	if (!cr->digest(name, strlen(name), md, &mdlen, cr->sha256(), NULL) || mdlen < 3)
		return -EIO;
	/* 52:54:00 is QEMU's prefix, locally administered and unicast */
	return util_snprintf(buf, n, "52:54:00:%02x:%02x:%02x", md[0], md[1], md[2]);
}

int qemu_free_port(uint16_t *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int fd, rc = 0;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) < 0)
		rc = -errno;
	else
		*port = ntohs(sa.sin_port);
	close(fd);
	return rc;
}

json_t *qemu_argv_json(const struct qemu_argv *a)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < a->n; i++)
		json_array_append_new(arr, json_string(a->v[i]));
	return arr;
}
