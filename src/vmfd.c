// SPDX-License-Identifier: MIT
/*
 * QEMU's files by fd (see src/vmfd.h).
 */
#include "src/vmfd.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "images/img.h"
#include "share/share.h"
#include "src/log.h"
#include "src/util.h"

/* one more fd for QEMU; its number there is @base + its index */
static int vmfd_add(struct vmfd *v, int fd, int base, int *child)
{
	if (v->n >= VMFD_MAX) {
		close(fd);
		return -EMFILE;
	}
	v->fd[v->n] = fd;
	*child = base + (int)v->n;
	v->n++;
	return 0;
}

static int vmfd_add_set(struct vmfd *v, const char *path, int flags, int set, int base,
			struct qemu_argv *args)
{
	int fd = open(path, flags | O_CLOEXEC), child, rc;

	if (fd < 0)
		return -errno;
	if ((rc = vmfd_add(v, fd, base, &child)) < 0)
		return rc;
	if ((rc = qemu_argv_add(args, "-add-fd")) < 0 ||
	    (rc = qemu_argv_addf(args, "fd=%d,set=%d", child, set)) < 0)
		return rc;
	return 0;
}

bool vmfd_readable_by(const struct proc_user *u, uid_t uid, gid_t gid, mode_t mode)
{
	if (uid == u->uid)
		return mode & S_IRUSR;
	for (size_t i = 0; i < u->n_groups; i++)
		if (u->groups[i] == gid)
			return mode & S_IRGRP;
	if (gid == u->gid)
		return mode & S_IRGRP;
	return mode & S_IROTH;
}

/*
 * A kernel or initrd: the file itself when QEMU's user may read it, else a
 * sealed memfd copy (a memfd's inode is open to whoever holds the fd).
 */
static int vmfd_add_boot_file(struct vmfd *v, const char *path, const struct proc_user *u,
			      int base, char *out, size_t n)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC), child, rc;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		rc = fstat(fd, &st) < 0 ? -errno : -EINVAL;
		close(fd);
		return rc;
	}
	if (!vmfd_readable_by(u, st.st_uid, st.st_gid, st.st_mode)) {
		int m = memfd_create("hutch-boot", MFD_CLOEXEC | MFD_ALLOW_SEALING);
		char buf[65536];
		ssize_t r;

		if (m < 0) {
			rc = -errno;
			close(fd);
			return rc;
		}
		while ((r = read(fd, buf, sizeof(buf))) > 0)
			if ((rc = util_write_all(m, buf, (size_t)r)) < 0)
				break;
		rc = r < 0 ? -errno : 0;
		close(fd);
		if (rc == 0 && fcntl(m, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK |
							F_SEAL_SEAL) < 0)
			rc = -errno;
		if (rc < 0) {
			close(m);
			return rc;
		}
		fd = m;
	}
	if ((rc = vmfd_add(v, fd, base, &child)) < 0)
		return rc;
	return util_snprintf(out, n, "/proc/self/fd/%d", child);
}

/* the backing chain of @disk, each level O_RDONLY in its own fd set from @set on */
static int vmfd_backing(struct vmfd *v, const char *disk, int set, int base,
			struct qemu_argv *args, int *next_set)
{
	char cur[PATH_MAX], name[PATH_MAX], dir[PATH_MAX], prefix[VMFD_MAX_BACKING * 8 + 1] = "";
	size_t o = 0;
	int rc;

	if ((rc = util_snprintf(cur, sizeof(cur), "%s", disk)) < 0)
		return rc;
	for (int depth = 0;; depth++) {
		char *slash;

		rc = img_qcow2_backing(cur, name, sizeof(name));
		if (rc < 0 || !name[0])
			break;	/* not a qcow2 (a raw base), or no backing: the chain ends */
		if (depth == VMFD_MAX_BACKING) {
			log_err("%s: backing chain deeper than %d", disk, VMFD_MAX_BACKING);
			return -ELOOP;
		}
		/* a relative backing name is relative to the image that names it */
		if (name[0] != '/') {
			if ((rc = util_snprintf(dir, sizeof(dir), "%s", cur)) < 0)
				return rc;
			slash = strrchr(dir, '/');
			if (slash)
				*slash = '\0';
			if ((rc = util_path_join(cur, sizeof(cur), slash ? dir : ".", name)) < 0)
				return rc;
		} else if ((rc = util_snprintf(cur, sizeof(cur), "%s", name)) < 0) {
			return rc;
		}
		strcat(prefix, "backing.");
		if ((rc = vmfd_add_set(v, cur, O_RDONLY, set, base, args)) < 0) {
			log_errno(rc, "backing file %s", cur);
			return rc;
		}
		rc = snprintf(v->disk_opts + o, sizeof(v->disk_opts) - o,
			      ",%sfile.driver=file,%sfile.filename=/dev/fdset/%d", prefix, prefix, set);
		if (rc < 0 || (size_t)rc >= sizeof(v->disk_opts) - o)
			return -ENAMETOOLONG;
		o += (size_t)rc;
		set++;
	}
	*next_set = set;
	return 0;
}

int vmfd_open(struct vmfd *v, const char *vm_dir, const struct cfg_vm *vm,
	      const struct proc_user *u, int child_base, struct qemu_argv *args)
{
	char disk[PATH_MAX], seed[PATH_MAX];
	int rc, set = 1;

	memset(v, 0, sizeof(*v));
	if ((rc = util_path_join(disk, sizeof(disk), vm_dir, "disk.qcow2")) < 0 ||
	    (rc = util_path_join(seed, sizeof(seed), vm_dir, "seed.iso")) < 0)
		return rc;
	if (access(disk, F_OK) == 0) {
		/* both access modes: QEMU opens read-only first, then reopens read-write */
		if ((rc = vmfd_add_set(v, disk, O_RDWR | O_NOFOLLOW, set, child_base, args)) < 0 ||
		    (rc = vmfd_add_set(v, disk, O_RDONLY | O_NOFOLLOW, set, child_base, args)) < 0 ||
		    (rc = util_snprintf(v->disk, sizeof(v->disk), "/dev/fdset/%d", set)) < 0 ||
		    (rc = vmfd_backing(v, disk, set + 1, child_base, args, &set)) < 0)
			goto err;
	}
	if (access(seed, F_OK) == 0) {
		if ((rc = vmfd_add_set(v, seed, O_RDONLY | O_NOFOLLOW, set, child_base, args)) < 0 ||
		    (rc = util_snprintf(v->seed, sizeof(v->seed), "/dev/fdset/%d", set)) < 0)
			goto err;
		set++;
	}
	if (vm->kernel.path &&
	    (rc = vmfd_add_boot_file(v, vm->kernel.path, u, child_base, v->kernel,
				     sizeof(v->kernel))) < 0) {
		log_errno(rc, "kernel %s", vm->kernel.path);
		goto err;
	}
	if (vm->kernel.path && vm->kernel.initrd &&
	    (rc = vmfd_add_boot_file(v, vm->kernel.initrd, u, child_base, v->initrd,
				     sizeof(v->initrd))) < 0) {
		log_errno(rc, "initrd %s", vm->kernel.initrd);
		goto err;
	}
	return 0;

err:
	vmfd_close(v);
	return rc;
}

void vmfd_close(struct vmfd *v)
{
	for (size_t i = 0; i < v->n; i++)
		close(v->fd[i]);
	v->n = 0;
}

/* /proc/@pid/comm starts with @want (comm is cut at 15 bytes) */
static bool vmfd_comm_is(pid_t pid, const char *want)
{
	char path[64], *buf = NULL;
	bool ok;

	if (util_snprintf(path, sizeof(path), "/proc/%ld/comm", (long)pid) < 0 ||
	    util_read_file(path, 256, &buf, NULL) < 0)
		return false;
	ok = strncmp(buf, want, strlen(want) < 15 ? strlen(want) : 15) == 0;
	free(buf);
	return ok;
}

static void vmfd_right(const char *role, json_int_t jpid, const char *comm, FILE *out,
		       json_t *arr)
{
	struct proc_status st;
	char eff[24], bnd[24];
	pid_t pid = (pid_t)jpid;

	if (jpid <= 1 || jpid > INT_MAX || !vmfd_comm_is(pid, comm) ||
	    proc_status_read(pid, &st) < 0 ||
	    util_snprintf(eff, sizeof(eff), "%016llx", st.cap_eff) < 0 ||
	    util_snprintf(bnd, sizeof(bnd), "%016llx", st.cap_bnd) < 0)
		return;
	if (out)
		fprintf(out, "process:     %-22s pid %-7ld uid %-6u CapEff %s CapBnd %s%s\n", role,
			(long)pid, (unsigned)st.uid, eff, bnd, st.no_new_privs ? " no_new_privs" : "");
	if (arr)
		json_array_append_new(arr, json_pack("{s:s, s:I, s:I, s:s, s:s, s:b}", "role", role,
						     "pid", (json_int_t)pid, "uid", (json_int_t)st.uid,
						     "cap_eff", eff, "cap_bnd", bnd, "no_new_privs",
						     st.no_new_privs));
}

void vmfd_inspect_rights(json_t *state, FILE *out, json_t *json)
{
	json_t *arr = json ? json_array() : NULL, *shares = json_object_get(state, "shares"), *e;
	size_t i;

	vmfd_right("supervisor", json_integer_value(json_object_get(state, "supervisor_pid")),
		   "hutch", out, arr);
	vmfd_right("qemu", json_integer_value(json_object_get(state, "qemu_pid")), "qemu-system",
		   out, arr);
	json_array_foreach(shares, i, e) {
		json_int_t pid = json_integer_value(json_object_get(e, "virtiofsd_pid"));
		const char *tag = json_string_value(json_object_get(e, "tag"));
		char role[64], path[64], *kids = NULL;

		if (!tag || !share_tag_valid(tag) ||
		    util_snprintf(role, sizeof(role), "virtiofsd %s", tag) < 0)
			continue;
		vmfd_right(role, pid, "virtiofsd", out, arr);
		/* its sandboxed server is a child in a pid namespace of its own */
		if (pid > 1 && pid <= INT_MAX &&
		    util_snprintf(path, sizeof(path), "/proc/%lld/task/%lld/children", (long long)pid,
				  (long long)pid) == 0 &&
		    util_read_file(path, 4096, &kids, NULL) == 0) {
			long kid;
			char *tok, *save = NULL;

			if (util_snprintf(role, sizeof(role), "virtiofsd %s (sandbox)", tag) == 0)
				for (tok = strtok_r(kids, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save))
					if (util_parse_long(tok, 2, INT_MAX, &kid) == 0)
						vmfd_right(role, kid, "virtiofsd", out, arr);
		}
		free(kids);
	}
	if (json)
		json_object_set_new(json, "processes", arr);
}
