/* SPDX-License-Identifier: MIT */
#ifndef HUTCH_QEMU_H
#define HUTCH_QEMU_H
/**
 * DOC: qemu - QEMU's command line for one VM
 *
 * Built as an argv array (never a shell string).  QMP and the serial console
 * are inherited socketpair fds ("-chardev socket,fd=N"), so there is no
 * qmp.sock for another local user, or the guest's owner, to race for.
 * Network mode nat adds nothing here: the net extension appends its own
 * "-netdev tap,fd=N" through sv_qemu_arg()/sv_qemu_fd().
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "src/accel.h"
#include "src/cfg.h"

/** struct qemu_argv - a growable, NULL-terminated argv; every string owned */
struct qemu_argv {
	char **v;
	size_t n;
	size_t cap;
};

int qemu_argv_add(struct qemu_argv *a, const char *s);
int qemu_argv_addf(struct qemu_argv *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void qemu_argv_free(struct qemu_argv *a);

/**
 * qemu_opt_escape() - @s as one value inside QEMU's comma-separated options
 *
 * QEMU's option parser splits on ',' and reads ",," as a literal comma, so
 * doubling every comma is the whole escape: a path such as
 * "/d,readonly=off" stays one value instead of adding an option.  Every
 * path that goes into -drive, -chardev or -netdev goes through this.
 * Return: a malloc'd string, or NULL (ENOMEM)
 */
char *qemu_opt_escape(const char *s);

/**
 * struct qemu_params - what the argv is built from
 * @vm:        the VM's config
 * @accel:     chosen accelerator
 * @disk:      qcow2 overlay path, or NULL (direct kernel boot without image)
 * @seed:      NoCloud seed ISO path, or NULL
 * @mac:       "52:54:00:xx:xx:xx"
 * @qmp_fd:    fd number of QMP in the child
 * @serial_fd: fd number of the serial console in the child
 * @ssh_port:  network mode user: host port forwarded to the guest's 22
 * @sandbox:   add "-sandbox on,..." (QEMU built with seccomp)
 * @uefi_code: OVMF code image for firmware uefi, or NULL
 * @disk_opts: more -drive options for @disk (the backing chain by fd, src/vmfd.h), or NULL
 * @kernel:    path QEMU opens for -kernel instead of vm->kernel.path ("/proc/self/fd/N"), or NULL
 * @initrd:    likewise for -initrd
 */
struct qemu_params {
	const struct cfg_vm *vm;
	enum accel_kind accel;
	const char *disk;
	const char *seed;
	const char *mac;
	int qmp_fd;
	int serial_fd;
	uint16_t ssh_port;
	bool sandbox;
	const char *uefi_code;
	const char *disk_opts;
	const char *kernel;
	const char *initrd;
};

/**
 * qemu_build_argv() - append QEMU's argv for @p to @a
 * Return: 0, -ENOMEM, or -ENAMETOOLONG
 */
int qemu_build_argv(const struct qemu_params *p, struct qemu_argv *a);

/** qemu_mac_for() - stable locally administered MAC from the VM name */
int qemu_mac_for(const char *name, char *buf, size_t n);

/**
 * qemu_free_port() - a TCP port on 127.0.0.1 free right now
 *
 * QEMU must bind the forward itself, so the port can be taken between this
 * call and QEMU's bind; the supervisor retries QEMU with a new port when
 * the host forwarding could not be set up.
 */
int qemu_free_port(uint16_t *port);

/** qemu_argv_json() - the argv as a JSON array, new reference (for inspect) */
struct json_t;
struct json_t *qemu_argv_json(const struct qemu_argv *a);

#endif
