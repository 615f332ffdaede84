// SPDX-License-Identifier: MIT
/*
 * trust: project paths stay inside the project; hutch's dirs stay hutch's
 * (see the DOC block in src/trust.h for the model).
 */
#include "src/trust.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/openat2.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "src/cfg.h"
#include "src/consent.h"
#include "src/proc.h"
#include "src/util.h"

#define TRUST_HINT "only ~/.config/hutch/config.yaml (allow_paths) can allow a place outside it"

/* A message into @why; a cut one ends in "..." (never silently short). */
static void __attribute__((format(printf, 3, 4)))
trust_why(char *why, size_t n, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (!why || !n)
		return;
	va_start(ap, fmt);
	r = vsnprintf(why, n, fmt, ap);
	va_end(ap);
	if (r >= 0 && (size_t)r >= n && n > 4)
		memcpy(why + n - 4, "...", 4);
}

bool trust_uid_ok(uid_t uid)
{
	uid_t me = geteuid();
	const char *s;
	unsigned long v;

	if (uid == me)
		return true;
	/* under sudo the files are the invoking user's, and theirs is the word */
	s = me == 0 ? getenv("SUDO_UID") : NULL;
	return s && util_parse_ulong_base(s, 10, UINT32_MAX - 1, &v) == 0 && v != 0 &&
	       (uid_t)v == uid;
}

/*
 * A shared folder's mount point shows the root of its image, which belongs
 * to whoever runs virtiofsd: under plain root the system user hutch-vm
 * (src/proc.h; under sudo that is SUDO_UID, already accepted).  Only for
 * folders: the guest writes nothing but inside its share, which is never
 * the project nor its code, so a folder of hutch-vm's is no hostile code.
 * Looked up, never created here (loading a config has no side effects).
 */
static bool trust_dir_uid_ok(uid_t uid)
{
	const struct passwd *pw;

	if (trust_uid_ok(uid))
		return true;
	if (geteuid() != 0 || getenv("SUDO_UID"))
		return false;
	pw = getpwnam(PROC_VM_USER);
	return pw && pw->pw_uid != 0 && pw->pw_uid == uid;
}

/* @path is @dir or below it (both absolute, normalised); @rel: the part below */
static bool trust_under(const char *dir, const char *path, const char **rel)
{
	size_t l = strlen(dir);

	if (!strcmp(dir, "/")) {
		if (rel)
			*rel = path + 1;
		return path[0] == '/';
	}
	if (strncmp(dir, path, l) || (path[l] != '\0' && path[l] != '/'))
		return false;
	if (rel)
		*rel = path[l] ? path + l + 1 : path + l;
	return true;
}

/*
 * Where @path may be opened from: the project (@inside), or a directory
 * the user allows.  @base and @rel point into the user config or @path.
 */
static int trust_base(const char *project_dir, const char *path, bool lexical,
		      const char **base, const char **rel, bool *inside, char *why, size_t whyn)
{
	const struct cfg_user *u = NULL;
	struct cfg_error e;
	int rc;

	if (trust_under(project_dir, path, rel)) {
		*base = project_dir;
		*inside = true;
		return 0;
	}
	if (lexical) {
		trust_why(why, whyn, "is outside the project directory; %s", TRUST_HINT);
		return -EPERM;
	}
	rc = cfg_user_get(&u, &e);
	if (rc) {
		trust_why(why, whyn, "%s", e.msg);
		return rc == -EPERM ? -EPERM : rc;
	}
	for (size_t i = 0; i < u->n_allow; i++) {
		if (trust_under(u->allow[i], path, rel)) {
			*base = u->allow[i];
			*inside = false;
			return 0;
		}
	}
	trust_why(why, whyn, "is outside the project directory; %s", TRUST_HINT);
	return -EPERM;
}

/*
 * Kernels before 5.6 have no openat2: walk one component at a time with
 * O_NOFOLLOW and refuse any symlink (stricter than RESOLVE_BENEATH allows).
 */
static int trust_walk(int dfd, const char *rel, int flags)
{
	char buf[PATH_MAX], *save = NULL, *comp, *next;
	struct stat st;
	int fd = dfd, nfd, rc;

	if (util_snprintf(buf, sizeof(buf), "%s", rel))
		return -ENAMETOOLONG;
	for (comp = strtok_r(buf, "/", &save); comp; comp = next) {
		next = strtok_r(NULL, "/", &save);
		if (!strcmp(comp, "..")) {
			rc = -EXDEV;
			goto out;
		}
		nfd = openat(fd, comp, (next ? O_PATH | O_DIRECTORY : flags) | O_NOFOLLOW | O_CLOEXEC);
		if (nfd < 0) {
			rc = errno == ENOTDIR || errno == ELOOP ? -ELOOP : -errno;
			goto out;
		}
		if (fd != dfd)
			close(fd);
		fd = nfd;
		if (fstat(fd, &st) == 0 && S_ISLNK(st.st_mode)) {
			rc = -ELOOP;
			goto out;
		}
	}
	return fd == dfd ? -EINVAL : fd;
out:
	if (fd != dfd)
		close(fd);
	return rc;
}

/* openat2 beneath @dfd; @strict: no symlink at all (inside the project) */
static int trust_openat2(int dfd, const char *rel, int flags, bool strict)
{
	struct open_how how = { .flags = (uint64_t)(flags | O_CLOEXEC),
				.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS |
					   (strict ? RESOLVE_NO_SYMLINKS : 0) };
	long fd = syscall(SYS_openat2, dfd, rel, &how, sizeof(how));

	if (fd >= 0)
		return (int)fd;
	if (errno != ENOSYS)
		return -errno;
	return trust_walk(dfd, rel, flags);
}

int trust_file_ok(const struct stat *st, const char *what, char *why, size_t whyn)
{
	if (!S_ISREG(st->st_mode)) {
		trust_why(why, whyn, "%s is not a regular file", what);
		return -EPERM;
	}
	if (!trust_uid_ok(st->st_uid)) {
		trust_why(why, whyn, "%s is owned by uid %u, not by you", what, (unsigned)st->st_uid);
		return -EPERM;
	}
	return 0;
}

/*
 * trust_resolve() - open @path (as trust_check allows it) with @flags
 * Return: the fd, or a negative errno (-EPERM with @why)
 */
static int trust_resolve(const char *project_dir, const char *path, int flags, bool *inside,
			 char *why, size_t whyn)
{
	const char *base, *rel;
	int dfd, fd, rc;

	rc = trust_base(project_dir, path, false, &base, &rel, inside, why, whyn);
	if (rc)
		return rc;
	/* the base is the project or a directory the user named: its own path is theirs */
	dfd = open(base, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	if (!rel[0]) {
		if (flags & O_PATH)
			return dfd;
		fd = openat(dfd, ".", flags | O_CLOEXEC);
		rc = fd < 0 ? -errno : fd;
	} else {
		rc = trust_openat2(dfd, rel, flags, *inside);
	}
	close(dfd);
	if (rc == -ELOOP) {
		trust_why(why, whyn, "goes through a symbolic link (not followed in a project)");
		return -EPERM;
	}
	if (rc == -EXDEV) {
		trust_why(why, whyn, "leads out of %s through a symbolic link",
			  *inside ? "the project directory" : base);
		return -EPERM;
	}
	return rc;
}

int trust_check(const char *project_dir, const char *path, enum trust_kind kind, unsigned flags,
		char *why, size_t whyn)
{
	const char *rel, *base;
	struct stat st;
	bool inside;
	int fd, rc;

	if (kind == TRUST_DIR) {
		/* the guest must not reach hutch.yaml, hooks/ and what else runs on the host */
		if (trust_under(path, project_dir, NULL)) {
			trust_why(why, whyn, "is the project directory or contains it; the guest must "
				  "not reach hutch.yaml and hooks/ (share a subfolder such as ./workspace)");
			return -EPERM;
		}
		if (trust_under(project_dir, path, &rel) && consent_covers(project_dir, rel)) {
			trust_why(why, whyn, "holds code that runs on the host (hooks/, the playbook's "
				  "folders); the guest must not write it");
			return -EPERM;
		}
	}
	if (flags & TRUST_LEXICAL)
		return trust_base(project_dir, path, true, &base, &rel, &inside, why, whyn);
	fd = trust_resolve(project_dir, path, O_PATH, &inside, why, whyn);
	if (fd == -ENOENT)
		return (flags & TRUST_MUST_EXIST) ? -ENOENT : 0;
	if (fd < 0)
		return fd;
	rc = fstat(fd, &st) < 0 ? -errno : 0;
	close(fd);
	if (rc)
		return rc;
	if (kind == TRUST_DIR && !S_ISDIR(st.st_mode)) {
		trust_why(why, whyn, "is not a directory");
		return -EPERM;
	}
	if (kind == TRUST_FILE && !S_ISREG(st.st_mode)) {
		trust_why(why, whyn, "is not a regular file");
		return -EPERM;
	}
	if (inside && !(kind == TRUST_DIR ? trust_dir_uid_ok(st.st_uid) : trust_uid_ok(st.st_uid))) {
		trust_why(why, whyn, "is owned by uid %u, not by you", (unsigned)st.st_uid);
		return -EPERM;
	}
	return 0;
}

int trust_open(const char *project_dir, const char *path, int flags, int *fdp, struct stat *stp,
	       char *why, size_t whyn)
{
	struct stat st;
	bool inside;
	int fd, rc;

	/* O_NONBLOCK: opening a FIFO for reading must not wait for a writer */
	fd = trust_resolve(project_dir, path, flags | O_NONBLOCK | O_NOCTTY, &inside, why, whyn);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto err;
	}
	rc = inside ? trust_file_ok(&st, "it", why, whyn) : S_ISREG(st.st_mode) ? 0 : -EPERM;
	if (rc) {
		if (!inside)
			trust_why(why, whyn, "is not a regular file");
		goto err;
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0) {
		rc = -errno;
		goto err;
	}
	if (stp)
		*stp = st;
	*fdp = fd;
	return 0;
err:
	close(fd);
	return rc;
}

int trust_read_fd(int fd, size_t max, char **bufp, size_t *lenp)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap), *nb;
	ssize_t r;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (len + 1 >= cap) {
			if (cap > max + 1) {
				free(buf);
				return -EFBIG;
			}
			nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
			cap *= 2;
		}
		r = read(fd, buf + len, cap - len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int rc = -errno;

			free(buf);
			return rc;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	if (len > max) {
		free(buf);
		return -EFBIG;
	}
	buf[len] = '\0';
	*bufp = buf;
	if (lenp)
		*lenp = len;
	return 0;
}

int trust_read(const char *project_dir, const char *path, size_t max, char **bufp, size_t *lenp,
	       char *why, size_t whyn)
{
	int fd, rc;

	rc = trust_open(project_dir, path, O_RDONLY, &fd, NULL, why, whyn);
	if (rc)
		return rc;
	rc = trust_read_fd(fd, max, bufp, lenp);
	close(fd);
	return rc;
}

/* Debian's user private group: named as the user, the user's primary group */
static bool trust_private_group(gid_t gid)
{
	struct passwd *pw = getpwuid(geteuid());
	struct group *gr = getgrgid(gid);

	return pw && gr && pw->pw_gid == gid && !strcmp(pw->pw_name, gr->gr_name) &&
	       (!gr->gr_mem || !gr->gr_mem[0]);
}

/* one directory on the path: whose it is and who else may write it */
static int trust_dir_ok(const struct stat *st, const char *path, bool ours, char *why,
			size_t whyn)
{
	bool root_sticky = st->st_uid == 0 && (st->st_mode & S_ISVTX);

	if (!S_ISDIR(st->st_mode)) {
		trust_why(why, whyn, "%s is not a directory", path);
		return -EPERM;
	}
	if (ours ? !trust_uid_ok(st->st_uid) : st->st_uid != 0 && !trust_uid_ok(st->st_uid)) {
		trust_why(why, whyn, "%s is owned by uid %u, not by you%s: another user could "
			  "replace what hutch keeps there", path, (unsigned)st->st_uid,
			  ours ? "" : " or root");
		return -EPERM;
	}
	if (ours)
		return 0;	/* tightened to 0700 by the caller */
	if ((st->st_mode & S_IWOTH) && !root_sticky) {
		trust_why(why, whyn, "%s is writable by others: another user could replace what "
			  "hutch keeps below it", path);
		return -EPERM;
	}
	if ((st->st_mode & S_IWGRP) && !root_sticky && !trust_private_group(st->st_gid)) {
		trust_why(why, whyn, "%s is writable by its group (gid %u): another user could "
			  "replace what hutch keeps below it", path, (unsigned)st->st_gid);
		return -EPERM;
	}
	return 0;
}

/*
 * Check every directory of the real path @real from / down; returns an
 * O_PATH fd of @real for the caller to go on from.
 */
static int trust_walk_dirs(const char *real, char *why, size_t whyn)
{
	char buf[PATH_MAX], sofar[PATH_MAX] = "", *save = NULL, *comp;
	struct stat st;
	int fd, nfd, rc;

	if (util_snprintf(buf, sizeof(buf), "%s", real))
		return -ENAMETOOLONG;
	fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (comp = strtok_r(buf, "/", &save); comp; comp = strtok_r(NULL, "/", &save)) {
		nfd = openat(fd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		rc = nfd < 0 ? -errno : 0;
		close(fd);
		if (rc)
			return rc == -ELOOP || rc == -ENOTDIR ? -EAGAIN : rc;
		fd = nfd;
		if (strlen(sofar) + strlen(comp) + 2 > sizeof(sofar)) {
			rc = -ENAMETOOLONG;
			goto err;
		}
		strcat(strcat(sofar, "/"), comp);
		if (fstat(fd, &st) < 0) {
			rc = -errno;
			goto err;
		}
		rc = trust_dir_ok(&st, sofar, false, why, whyn);
		if (rc)
			goto err;
	}
	return fd;
err:
	close(fd);
	return rc;
}

/* mkdir -p for the part above hutch's own directories */
static int trust_mkdir_top(const char *top)
{
	struct stat st;

	if (stat(top, &st) == 0)
		return 0;
	return util_mkdir_p(top, 0700);
}

int trust_dir(const char *path, unsigned own, char *why, size_t whyn)
{
	char top[PATH_MAX], real[PATH_MAX], tail[PATH_MAX], *p, *save = NULL, *comp;
	struct stat st;
	unsigned n;
	int fd, nfd, rc;

	if (path[0] != '/' || util_snprintf(top, sizeof(top), "%s", path))
		return -EINVAL;
	/* split off the last @own components: they are hutch's */
	tail[0] = '\0';
	for (n = 0; n < own; n++) {
		p = strrchr(top, '/');
		if (!p || p == top)
			return -EINVAL;
		memmove(tail + strlen(p), tail, strlen(tail) + 1);
		memcpy(tail, p, strlen(p));
		*p = '\0';
	}
	if (own && (rc = trust_mkdir_top(top)) < 0)
		return rc;
	if (!realpath(top, real))
		return -errno;
	fd = trust_walk_dirs(real, why, whyn);
	if (fd == -EAGAIN) {
		trust_why(why, whyn, "%s changed while it was checked", top);
		return -EPERM;
	}
	if (fd < 0)
		return fd;
	for (comp = strtok_r(tail, "/", &save); comp; comp = strtok_r(NULL, "/", &save)) {
		if (mkdirat(fd, comp, 0700) < 0 && errno != EEXIST) {
			rc = -errno;
			goto err;
		}
		nfd = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (nfd < 0) {
			rc = -errno;
			if (rc == -ELOOP || rc == -ENOTDIR) {
				trust_why(why, whyn, "%s/%s is not a directory of its own (a symlink?)",
					  real, comp);
				rc = -EPERM;
			}
			goto err;
		}
		close(fd);
		fd = nfd;
		if (util_snprintf(real + strlen(real), sizeof(real) - strlen(real), "/%s", comp)) {
			rc = -ENAMETOOLONG;
			goto err;
		}
		if (fstat(fd, &st) < 0) {
			rc = -errno;
			goto err;
		}
		rc = trust_dir_ok(&st, real, true, why, whyn);
		if (rc)
			goto err;
		/* ours, and private: the cache and the VMs' state are nobody else's */
		if ((st.st_mode & 077) && fchmod(fd, st.st_mode & 0700) < 0) {
			rc = -errno;
			goto err;
		}
	}
	close(fd);
	return 0;
err:
	close(fd);
	return rc;
}
