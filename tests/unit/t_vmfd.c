// SPDX-License-Identifier: MIT
/*
 * src/vmfd.c: QEMU's files by fd.  A qcow2 overlay over a qcow2 base gives
 * two fd sets for the disk (read-write and read-only fds in set 1) and one
 * for the base, named through "backing.file.filename"; the seed gets its
 * own set; a kernel the user may read is passed as it is, one it may not
 * read as a sealed memfd copy.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/proc.h"
#include "src/util.h"
#include "src/vmfd.h"
#include "tests/unit/tap.h"

static int sh(const char *cmd)
{
	const char *const argv[] = { "sh", "-c", cmd, NULL };
	int st;

	return proc_run(argv, NULL, NULL, 0, &st) == 0 && proc_exit_code(st) == 0 ? 0 : -1;
}

static char *joined(const struct qemu_argv *a)
{
	static char buf[4096];

	buf[0] = '\0';
	for (size_t i = 0; i < a->n; i++) {
		strncat(buf, a->v[i], sizeof(buf) - strlen(buf) - 2);
		strcat(buf, " ");
	}
	return buf;
}

int main(void)
{
	char tmp[] = "/tmp/t_vmfd.XXXXXX", cmd[1024], kern[PATH_MAX], lnk[PATH_MAX], path[64];
	struct proc_user u = { .uid = 65534, .gid = 65534, .groups = { 65534 }, .n_groups = 1 };
	struct cfg_vm vm = { 0 };
	struct qemu_argv a = { 0 };
	struct vmfd v;
	ssize_t l;

	if (!mkdtemp(tmp))
		return 1;
	snprintf(cmd, sizeof(cmd),
		 "cd %s && qemu-img create -q -f qcow2 base.qcow2 16M && "
		 "qemu-img create -q -f qcow2 -F qcow2 -b %s/base.qcow2 disk.qcow2 && "
		 "head -c 4096 /dev/zero >seed.iso && echo kernel >vmlinuz && echo initrd >initrd",
		 tmp, tmp);
	if (sh(cmd) < 0) {
		ok(1, "# SKIP qemu-img missing");
		return tap_done();
	}
	util_path_join(kern, sizeof(kern), tmp, "vmlinuz");
	vm.kernel.path = kern;
	chmod(kern, 0644);
	is_int(vmfd_open(&v, tmp, &vm, &u, 10, &a), 0, "vmfd_open");
	ok(!strcmp(v.disk, "/dev/fdset/1"), "disk is fd set 1 (%s)", v.disk);
	ok(strstr(joined(&a), "-add-fd fd=10,set=1 -add-fd fd=11,set=1 -add-fd fd=12,set=2 ") != NULL,
	   "read-write and read-only disk fds in set 1, the base in set 2: %s", joined(&a));
	ok(!strcmp(v.disk_opts, ",backing.file.driver=file,backing.file.filename=/dev/fdset/2"),
	   "the backing file is named by its fd set: %s", v.disk_opts);
	ok(!strcmp(v.seed, "/dev/fdset/3"), "seed in set 3 (%s)", v.seed);
	ok(!strcmp(v.kernel, "/proc/self/fd/14"), "kernel by /proc/self/fd (%s)", v.kernel);
	ok(fcntl(v.fd[0], F_GETFL) >= 0 && (fcntl(v.fd[0], F_GETFL) & O_ACCMODE) == O_RDWR &&
		   (fcntl(v.fd[1], F_GETFL) & O_ACCMODE) == O_RDONLY &&
		   (fcntl(v.fd[2], F_GETFL) & O_ACCMODE) == O_RDONLY,
	   "access modes: disk rw + ro, base ro");
	ok((fcntl(v.fd[0], F_GETFD) & FD_CLOEXEC), "our copies are CLOEXEC");
	snprintf(path, sizeof(path), "/proc/self/fd/%d", v.fd[4]);
	l = readlink(path, lnk, sizeof(lnk) - 1);
	lnk[l > 0 ? l : 0] = '\0';
	ok(!strcmp(lnk, kern), "a kernel the user may read is passed as it is (%s)", lnk);
	vmfd_close(&v);
	qemu_argv_free(&a);

	/* one the user may not read: a sealed memfd copy */
	chmod(kern, 0600);
	if (chown(kern, 0, 0) < 0 && geteuid() == 0)
		ok(0, "chown");
	memset(&a, 0, sizeof(a));
	is_int(vmfd_open(&v, tmp, &vm, &u, 10, &a), 0, "vmfd_open with a private kernel");
	snprintf(path, sizeof(path), "/proc/self/fd/%d", v.fd[v.n - 1]);
	l = readlink(path, lnk, sizeof(lnk) - 1);
	lnk[l > 0 ? l : 0] = '\0';
	ok(!strncmp(lnk, "/memfd:hutch-boot", 17), "copied into a memfd (%s)", lnk);
	ok((fcntl(v.fd[v.n - 1], F_GET_SEALS) & F_SEAL_WRITE) != 0, "sealed against writes");
	vmfd_close(&v);
	qemu_argv_free(&a);

	ok(vmfd_readable_by(&u, 65534, 0, 0400) && !vmfd_readable_by(&u, 0, 0, 0640) &&
		   vmfd_readable_by(&u, 0, 65534, 0040) && vmfd_readable_by(&u, 0, 0, 0004),
	   "readable_by: owner, group, other bits");

	/* a missing backing file fails the start, nothing left open */
	snprintf(cmd, sizeof(cmd), "rm %s/base.qcow2", tmp);
	sh(cmd);
	memset(&a, 0, sizeof(a));
	is_int(vmfd_open(&v, tmp, &vm, &u, 10, &a), -ENOENT, "a missing backing file: -ENOENT");
	is_int((int)v.n, 0, "and nothing left open");
	qemu_argv_free(&a);
	util_rm_rf(tmp);
	return tap_done();
}
