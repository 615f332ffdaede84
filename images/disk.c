// SPDX-License-Identifier: MIT
/*
 * A VM's disk files through qemu-img; see disk.h for why each operation is
 * shaped the way it is.
 */
#include "images/disk.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <dirent.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "images/img.h"
#include "src/log.h"
#include "src/proc.h"
#include "src/util.h"
#include "src/vm.h"

#define DISK_OUT_MAX (256 * 1024)	/* qemu-img output kept (info --output=json) */

/*
 * Run qemu-img to completion.  Its stderr (and stdout unless @progress) is
 * captured into *@out (may be NULL); with @progress its stdout, where -p
 * draws, goes to our stderr.  PDEATHSIG: a hutch killed with -9 does not
 * leave it running.
 * Return: 0 when it exited 0; -EIO with its words logged otherwise
 */
static int disk_run(const char *const *argv, bool progress, char **out)
{
	struct proc_fdmap fds[2];
	struct proc_opts o = { .argv = argv, .envp = proc_default_env(), .fds = fds, .n_fds = 2,
			       .pdeathsig = SIGKILL };
	char *buf = malloc(DISK_OUT_MAX + 1), esc[1024];
	size_t len = 0;
	int p[2], rc, st = 0;
	pid_t pid;

	if (!buf)
		return -ENOMEM;
	if (pipe2(p, O_CLOEXEC) < 0) {
		rc = -errno;
		goto out;
	}
	fds[0] = (struct proc_fdmap){ progress ? STDERR_FILENO : p[1], STDOUT_FILENO };
	fds[1] = (struct proc_fdmap){ p[1], STDERR_FILENO };
	rc = proc_spawn(&o, &pid, NULL);
	close(p[1]);
	if (rc) {
		close(p[0]);
		log_errno(rc, "qemu-img");
		goto out;
	}
	for (;;) {
		char tmp[4096];
		ssize_t r = read(p[0], tmp, sizeof(tmp));
		size_t take;

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		/* past the cap the rest is read and dropped, so qemu-img never blocks */
		take = (size_t)r < DISK_OUT_MAX - len ? (size_t)r : DISK_OUT_MAX - len;
		memcpy(buf + len, tmp, take);
		len += take;
	}
	close(p[0]);
	buf[len] = '\0';
	rc = proc_wait(pid, &st);
	if (!rc && proc_exit_code(st) != 0) {
		log_err("qemu-img %s failed: %s", argv[1],
			log_escape(esc, sizeof(esc), buf, strnlen(buf, 900)));
		rc = -EIO;
	}
	if (progress)
		fputs("\r\033[K", stderr);
	if (!rc && out) {
		*out = buf;
		buf = NULL;
	}
out:
	free(buf);
	return rc;
}

int disk_fsync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* fsync the directory holding @path, so a rename into it is durable */
static int disk_fsync_dir(const char *path)
{
	char dir[PATH_MAX], *slash;
	int rc = util_snprintf(dir, sizeof(dir), "%s", path);

	if (rc)
		return rc;
	slash = strrchr(dir, '/');
	if (!slash)
		return disk_fsync_path(".");
	*slash = '\0';
	return disk_fsync_path(dir[0] ? dir : "/");
}

/* fsync @tmp, rename it over @dst, fsync the directory; @tmp is gone on failure */
static int disk_commit_rename(const char *tmp, const char *dst)
{
	int rc = disk_fsync_path(tmp);

	if (!rc && rename(tmp, dst) < 0)
		rc = -errno;
	if (rc) {
		log_errno(rc, "%s", dst);
		unlink(tmp);
		return rc;
	}
	return disk_fsync_dir(dst);
}

static int disk_part_name(char *buf, size_t n, const char *dst)
{
	int rc = util_snprintf(buf, n, "%s.part", dst);

	if (rc)
		return rc;
	/* a .part is only ever ours and only ever incomplete: a killed run's */
	if (unlink(buf) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

/* fields of qemu-img info's JSON; the tool's output is still checked field by field */
static int disk_info_parse(const char *txt, struct disk_info *out, json_t **snaps)
{
	json_t *j = json_loads(txt, JSON_REJECT_DUPLICATES, NULL), *v;
	struct disk_info d = { 0 };
	int rc = -EIO;

	if (!json_is_object(j))
		goto out;
	v = json_object_get(j, "virtual-size");
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		goto out;
	d.vsize = (uint64_t)json_integer_value(v);
	v = json_object_get(j, "actual-size");
	if (json_is_integer(v) && json_integer_value(v) >= 0)
		d.allocated = (uint64_t)json_integer_value(v);
	v = json_object_get(j, "format");
	if (!json_is_string(v) || util_snprintf(d.format, sizeof(d.format), "%s", json_string_value(v)))
		goto out;
	v = json_object_get(j, "backing-filename");
	if (v && (!json_is_string(v) ||
		  util_snprintf(d.backing, sizeof(d.backing), "%s", json_string_value(v))))
		goto out;
	if (snaps) {
		v = json_object_get(j, "snapshots");
		*snaps = json_is_array(v) ? json_incref(v) : json_array();
	}
	*out = d;
	rc = 0;
out:
	json_decref(j);
	return rc;
}

/* info, and the internal snapshots (a new array reference) when @snaps */
static int disk_info_snaps(const char *path, struct disk_info *out, json_t **snaps)
{
	const char *argv[] = { "qemu-img", "info", "-U", "--output=json", path, NULL };
	char *txt = NULL;
	int rc;

	if (access(path, F_OK) < 0)
		return -errno;
	rc = disk_run(argv, false, &txt);
	if (!rc) {
		rc = disk_info_parse(txt, out, snaps);
		if (rc)
			log_err("qemu-img info %s: unexpected output", path);
	}
	free(txt);
	return rc;
}

int disk_info(const char *path, struct disk_info *out)
{
	return disk_info_snaps(path, out, NULL);
}

int disk_flatten(const char *src, const char *dst, bool progress)
{
	const char *argv[] = { "qemu-img", "convert", "-O", "qcow2", progress ? "-p" : "-q",
			       src, NULL, NULL };
	char tmp[PATH_MAX];
	int rc = disk_part_name(tmp, sizeof(tmp), dst);

	if (rc)
		return rc;
	argv[6] = tmp;
	rc = disk_run(argv, progress, NULL);
	if (rc) {
		unlink(tmp);
		return rc;
	}
	return disk_commit_rename(tmp, dst);
}

int disk_overlay(const char *backing, const char *dst, uint64_t vsize)
{
	const char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
			       backing, NULL, NULL, NULL };
	char tmp[PATH_MAX], size[32];
	struct disk_info bi;
	int rc;

	if (backing[0] != '/')
		return -EINVAL;
	rc = disk_info(backing, &bi);
	if (rc)
		return rc;
	if ((rc = disk_part_name(tmp, sizeof(tmp), dst)))
		return rc;
	argv[9] = tmp;
	if (vsize > bi.vsize) {
		if ((rc = util_snprintf(size, sizeof(size), "%" PRIu64, vsize)))
			return rc;
		argv[10] = size;
	}
	rc = disk_run(argv, false, NULL);
	if (rc) {
		unlink(tmp);
		return rc;
	}
	return disk_commit_rename(tmp, dst);
}

int disk_commit(const char *overlay)
{
	/* -d: leave the overlay as it is, so it reads the same until it is replaced */
	const char *argv[] = { "qemu-img", "commit", "-q", "-d", overlay, NULL };
	char backing[PATH_MAX];
	int rc = disk_run(argv, false, NULL);
	struct disk_info di;

	if (rc)
		return rc;
	rc = disk_info(overlay, &di);
	if (!rc && di.backing[0] &&
	    !(rc = util_snprintf(backing, sizeof(backing), "%s", di.backing)))
		rc = disk_fsync_path(backing);
	return rc;
}

int disk_resize(const char *path, uint64_t vsize)
{
	const char *argv[] = { "qemu-img", "resize", "-q", path, NULL, NULL };
	struct disk_info di;
	char size[32];
	int rc = disk_info(path, &di);

	if (rc)
		return rc;
	if (vsize < di.vsize)
		return -EINVAL;
	if (vsize == di.vsize)
		return 0;
	if ((rc = util_snprintf(size, sizeof(size), "%" PRIu64, vsize)))
		return rc;
	argv[4] = size;
	return disk_run(argv, false, NULL);
}

bool disk_tag_valid(const char *tag)
{
	size_t i;

	for (i = 0; tag[i]; i++)
		if (!((tag[i] >= 'a' && tag[i] <= 'z') || (tag[i] >= 'A' && tag[i] <= 'Z') ||
		      (tag[i] >= '0' && tag[i] <= '9') || tag[i] == '.' || tag[i] == '_' ||
		      tag[i] == '-'))
			return false;
	return i > 0 && i < DISK_TAG_MAX;
}

int disk_tag_exists(const char *path, const char *tag)
{
	struct disk_info di;
	json_t *snaps = NULL, *s;
	size_t i;
	int rc = disk_info_snaps(path, &di, &snaps), found = 0;

	if (rc)
		return rc;
	json_array_foreach(snaps, i, s) {
		json_t *name = json_object_get(s, "name");

		if (json_is_string(name) && !strcmp(json_string_value(name), tag))
			found = 1;
	}
	json_decref(snaps);
	return found;
}

int disk_tags(const char *path, json_t **names)
{
	struct disk_info di;
	json_t *snaps = NULL, *s, *out;
	size_t i;
	int rc = disk_info_snaps(path, &di, &snaps);

	if (rc)
		return rc;
	out = json_array();
	json_array_foreach(snaps, i, s) {
		json_t *name = json_object_get(s, "name");

		if (json_is_string(name) && disk_tag_valid(json_string_value(name)))
			json_array_append(out, name);
	}
	json_decref(snaps);
	*names = out;
	return out ? 0 : -ENOMEM;
}

int disk_tag_apply(const char *path, const char *tag)
{
	const char *argv[] = { "qemu-img", "snapshot", "-q", "-a", tag, path, NULL };

	if (!disk_tag_valid(tag))
		return -EINVAL;
	return disk_run(argv, false, NULL);
}

int disk_tag_delete(const char *path, const char *tag)
{
	const char *argv[] = { "qemu-img", "snapshot", "-q", "-d", tag, path, NULL };
	int rc;

	if (!disk_tag_valid(tag))
		return -EINVAL;
	rc = disk_tag_exists(path, tag);
	if (rc <= 0)
		return rc;
	return disk_run(argv, false, NULL);
}

/* whether the backing chain of @disk reaches @image (both real paths) */
static bool disk_based_on(const char *disk, const char *image)
{
	char cur[PATH_MAX], next[PATH_MAX], real[PATH_MAX];

	if (util_snprintf(cur, sizeof(cur), "%s", disk))
		return false;
	for (int depth = 0; depth < 16; depth++) {
		if (img_qcow2_backing(cur, next, sizeof(next)) || !next[0])
			return false;
		/* a relative backing name is relative to the file that names it */
		if (next[0] != '/') {
			char *slash = strrchr(cur, '/');

			if (!slash || util_snprintf(slash + 1, sizeof(cur) - (size_t)(slash + 1 - cur), "%s",
						    next))
				return false;
		} else if (util_snprintf(cur, sizeof(cur), "%s", next)) {
			return false;
		}
		if (realpath(cur, real) && !strcmp(real, image))
			return true;
	}
	return false;
}

int disk_users(const char *image, json_t *names)
{
	char vms[PATH_MAX], disk[PATH_MAX], real[PATH_MAX];
	struct dirent *de;
	int n = 0;
	DIR *d;

	if (!realpath(image, real))
		return -errno;
	if (vm_root_dir(vms, sizeof(vms)))
		return -ENAMETOOLONG;
	d = opendir(vms);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		if (!util_name_valid(de->d_name) ||
		    util_snprintf(disk, sizeof(disk), "%s/%s/disk.qcow2", vms, de->d_name))
			continue;
		if (disk_based_on(disk, real)) {
			json_array_append_new(names, json_string(de->d_name));
			n++;
		}
	}
	closedir(d);
	return n;
}
