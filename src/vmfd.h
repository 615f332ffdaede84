/* SPDX-License-Identifier: MIT */
#ifndef HUTCH_VMFD_H
#define HUTCH_VMFD_H
/**
 * DOC: vmfd - QEMU gets its files by fd, never by path
 *
 * QEMU runs as an unprivileged user (src/proc.h) while the VM directory and
 * the image cache belong to whoever runs hutch: root's are 0700 under
 * /root.  Rather than hand the VM's directory to QEMU's uid (then a QEMU
 * escape could rewrite state.json, which root's `gc` reads, or the
 * supervisor's log and lock), the supervisor opens each file QEMU needs and
 * passes the open file:
 *
 *  - disk.qcow2: an O_RDWR and an O_RDONLY fd in one fd set ("-add-fd",
 *    "file=/dev/fdset/1": QEMU dups the fd whose access mode it asks for,
 *    and it first opens images read-only);
 *  - each backing file down the chain (the base image in the cache, or a
 *    snapshot): O_RDONLY, in its own fd set, named through the disk's
 *    "backing.file.filename=" options, which override the path in the qcow2
 *    header (the header's backing format still applies);
 *  - seed.iso: O_RDONLY in an fd set;
 *  - kernel and initrd (direct kernel boot): QEMU reads them with plain
 *    open(), not through fd sets, so "/proc/self/fd/N" of an inherited fd;
 *    reopening that checks the file's own mode, so a file the user may not
 *    read is copied into a sealed memfd first.
 *
 * QEMU then needs no path at all, which is also what lets it run in a
 * read-only mount namespace.  The sockets were fds already (QMP, serial,
 * tap; vhost-user for shares, see share/share_sv.c).
 */
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#include "src/cfg.h"
#include "src/proc.h"
#include "src/qemu.h"

#define VMFD_MAX 12
#define VMFD_MAX_BACKING 4

/**
 * struct vmfd - the open files of one QEMU start; vmfd_close() releases them
 * @fd:        fds in the supervisor (CLOEXEC), passed at @child_base + i
 * @n:         how many
 * @disk:      "/dev/fdset/1", or "" without a disk
 * @disk_opts: ",backing.file.driver=file,backing.file.filename=/dev/fdset/2..."
 * @seed:      "/dev/fdset/N", or ""
 * @kernel:    "/proc/self/fd/N", or ""
 * @initrd:    "/proc/self/fd/N", or ""
 */
struct vmfd {
	int fd[VMFD_MAX];
	size_t n;
	char disk[24];
	char disk_opts[VMFD_MAX_BACKING * 96];
	char seed[24];
	char kernel[32];
	char initrd[32];
};

/**
 * vmfd_open() - open what QEMU will read and write for @vm
 * @vm_dir:     holds disk.qcow2 and seed.iso (either may be absent)
 * @u:          QEMU's user: decides whether kernel/initrd need a memfd copy
 * @child_base: fd number the first file gets in QEMU
 * @args:       "-add-fd fd=N,set=S" pairs are appended here
 * Return: 0, or a negative errno (nothing left open)
 */
int vmfd_open(struct vmfd *v, const char *vm_dir, const struct cfg_vm *vm,
	      const struct proc_user *u, int child_base, struct qemu_argv *args);

/** vmfd_close() - close the supervisor's copies (QEMU keeps its own) */
void vmfd_close(struct vmfd *v);

/**
 * vmfd_readable_by() - whether @u may open a file of this mode and owner
 * for reading (the check the kernel does on /proc/self/fd/N)
 */
bool vmfd_readable_by(const struct proc_user *u, uid_t uid, gid_t gid, mode_t mode);

#endif

/**
 * vmfd_inspect_rights() - `hutch inspect`: uid and capabilities of the VM's
 * processes (supervisor, QEMU, each share's virtiofsd and its sandboxed
 * child), read from /proc/<pid>/status
 * @state: state.json (pids; a pid whose name does not match is skipped)
 * @out:   text lines here, or NULL
 * @json:  or a "processes" array set here, or NULL
 */
void vmfd_inspect_rights(json_t *state, FILE *out, json_t *json);
