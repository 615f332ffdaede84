// SPDX-License-Identifier: MIT
/*
 * userns_map: the one privileged step a normal user's virtiofsd needs.
 *
 * QEMU 7.2's C virtiofsd (Debian 12) drops its supplementary groups at
 * start (CVE-2022-0358) and exits when setgroups(2) fails.  hutch starts it
 * as root of a user namespace mapped to the user; when the user maps that
 * namespace itself, the kernel insists that setgroups be denied first
 * (user_namespaces(7): an unprivileged gid_map write), so a user who has
 * any supplementary group cannot start it at all.  Writing gid_map without
 * denying setgroups takes CAP_SETGID in the parent namespace: that is this
 * operation, and the only use of CAP_SETGID.
 *
 * What the caller may get is fixed, whatever it asks: the namespace of its
 * own child (PPid is the caller, from SO_PEERCRED), running as the caller's
 * uid, in a user namespace that the caller owns (NS_GET_OWNER_UID), that is
 * a direct child of ours, and whose maps are still empty; the maps written
 * are "0 <caller uid> 1" and "0 <caller primary gid> 1", nothing else.  The
 * process is pinned by a pidfd first and /proc/PID opened after it: while
 * the pidfd's process has not exited, that directory is the same process
 * (a pid is reused only after it is reaped), so every file read or written
 * below goes through that directory fd.  The kernel checks the writes again
 * (one write per map, the namespace's owner must be our euid for uid_map,
 * CAP_SETGID at open and at write for gid_map).
 *
 * The cost, said in README: a member of group hutch can get a user
 * namespace in which it may drop its own supplementary groups, so a file
 * mode that denies a group stops holding for that user (as newgidmap(1)
 * allows for /etc/subgid users).  No other id is ever mapped.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/privd.h"
#include "src/log.h"
#include "src/proc.h"
#include "src/util.h"

/* the pidfd's process has not exited (a zombie counts as exited: POLLIN) */
static bool ums_running(int pidfd)
{
	struct pollfd p = { .fd = pidfd, .events = POLLIN };

	return poll(&p, 1, 0) == 0;
}

/* up to @n - 1 bytes of @name under the process directory @dfd, NUL-terminated */
static ssize_t ums_read(int dfd, const char *name, char *buf, size_t n)
{
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	size_t off = 0;
	ssize_t r = 0;

	if (fd < 0)
		return -errno;
	while (off < n - 1 && (r = read(fd, buf + off, n - 1 - off)) > 0)
		off += (size_t)r;
	if (r < 0)
		r = -errno;
	close(fd);
	buf[off] = 0;
	return r < 0 ? r : (ssize_t)off;
}

/* who @dfd's process is: all four uids the caller's, its parent the caller */
static int ums_check_ids(const struct privd *d, int dfd, pid_t pid, char *err, size_t en)
{
	char *buf = malloc(16384);
	struct proc_status st;
	ssize_t n;
	int rc;

	if (!buf)
		return -ENOMEM;
	n = ums_read(dfd, "status", buf, 16384);
	rc = n < 0 ? (int)n : proc_status_parse(buf, (size_t)n, &st);
	free(buf);
	if (rc < 0)
		return privd_err(err, en, rc == -ENOENT ? -ESRCH : rc, "process %d: %s", (int)pid,
				 strerror(rc == -ENOENT ? ESRCH : -rc));
	for (size_t i = 0; i < 4; i++)
		if (st.uids[i] != d->uid)
			return privd_err(err, en, -EPERM, "process %d runs as uid %u, not as the caller "
					 "(uid %u)", (int)pid, (unsigned)st.uids[i], (unsigned)d->uid);
	if (st.ppid != d->pid || privd_proc_start(d->pid) != d->start)
		return privd_err(err, en, -EPERM, "process %d is not a child of the caller (its "
				 "parent is %d)", (int)pid, (int)st.ppid);
	return 0;
}

/* its user namespace: not ours, a direct child of ours, owned by the caller */
static int ums_check_ns(const struct privd *d, int dfd, pid_t pid, char *err, size_t en)
{
	struct stat self, ns, parent;
	uid_t owner = (uid_t)-1;
	int nsfd, pfd = -1, rc = 0;

	if (stat("/proc/self/ns/user", &self) < 0)
		return privd_err(err, en, -errno, "our own user namespace: %s", strerror(errno));
	nsfd = openat(dfd, "ns/user", O_RDONLY | O_CLOEXEC);
	if (nsfd < 0 || fstat(nsfd, &ns) < 0) {
		rc = privd_err(err, en, -errno, "the user namespace of process %d: %s", (int)pid,
			       strerror(errno));
		goto out;
	}
	if (ns.st_ino == self.st_ino && ns.st_dev == self.st_dev) {
		rc = privd_err(err, en, -EPERM, "process %d is in hutch-helper's own user namespace, "
			       "not in a new one", (int)pid);
		goto out;
	}
	pfd = ioctl(nsfd, NS_GET_PARENT);
	if (pfd < 0 || fstat(pfd, &parent) < 0 || parent.st_ino != self.st_ino ||
	    parent.st_dev != self.st_dev) {
		rc = privd_err(err, en, -EPERM, "the user namespace of process %d is not a child of "
			       "hutch-helper's", (int)pid);
		goto out;
	}
	if (ioctl(nsfd, NS_GET_OWNER_UID, &owner) < 0 || owner != d->uid)
		rc = privd_err(err, en, -EPERM, "the user namespace of process %d belongs to uid %d, "
			       "not to the caller", (int)pid, (int)owner);
out:
	if (pfd >= 0)
		close(pfd);
	if (nsfd >= 0)
		close(nsfd);
	return rc;
}

/* both maps still empty: a namespace is mapped once, by us, or not at all */
static int ums_check_unmapped(int dfd, pid_t pid, char *err, size_t en)
{
	static const char *const maps[] = { "uid_map", "gid_map" };
	char buf[256];

	for (size_t i = 0; i < UTIL_ARRAY_SIZE(maps); i++) {
		ssize_t n = ums_read(dfd, maps[i], buf, sizeof(buf));

		if (n < 0)
			return privd_err(err, en, (int)n, "%s of process %d: %s", maps[i], (int)pid,
					 strerror((int)-n));
		if (n > 0)
			return privd_err(err, en, -EEXIST, "the user namespace of process %d already "
					 "has its maps (%s written)", (int)pid, maps[i]);
	}
	return 0;
}

/* one write of @text to @name; @caps raised around the open and the write (the kernel checks both) */
static int ums_write(const struct privd *d, int dfd, const char *name, const char *text,
		     unsigned caps)
{
	size_t len = strlen(text);
	int fd, rc = 0;

	if (caps && (rc = privd_caps(d, caps)))
		return rc;
	fd = openat(dfd, name, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || write(fd, text, len) != (ssize_t)len)
		rc = -errno ? -errno : -EIO;
	if (caps)
		privd_caps(d, 0);
	if (fd >= 0)
		close(fd);
	return rc;
}

int privd_userns_map(const struct privd *d, const struct privd_req *q, char *err, size_t en)
{
	char path[64], umap[64], gmap[64];
	int pidfd, dfd = -1, rc;

	pidfd = proc_pidfd_open(q->pid);
	if (pidfd < 0)
		return privd_err(err, en, pidfd, "process %d: %s", (int)q->pid,
				 pidfd == -ESRCH ? "no such process" : strerror(-pidfd));
	if ((rc = util_snprintf(path, sizeof(path), "/proc/%d", (int)q->pid)) ||
	    (rc = util_snprintf(umap, sizeof(umap), "0 %u 1\n", (unsigned)d->uid)) ||
	    (rc = util_snprintf(gmap, sizeof(gmap), "0 %u 1\n", (unsigned)d->gid)))
		goto out;
	dfd = open(path, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (dfd < 0) {
		rc = privd_err(err, en, -ESRCH, "process %d: no such process", (int)q->pid);
		goto out;
	}
	/* opened after the pidfd and the process still runs: dfd is that process */
	if (!ums_running(pidfd)) {
		rc = privd_err(err, en, -ESRCH, "process %d has exited", (int)q->pid);
		goto out;
	}
	if ((rc = ums_check_ids(d, dfd, q->pid, err, en)) ||
	    (rc = ums_check_ns(d, dfd, q->pid, err, en)) ||
	    (rc = ums_check_unmapped(dfd, q->pid, err, en)))
		goto out;
	if (!ums_running(pidfd)) {
		rc = privd_err(err, en, -ESRCH, "process %d has exited", (int)q->pid);
		goto out;
	}
	/* uid_map: our own euid, no capability; gid_map with setgroups allowed: CAP_SETGID */
	if ((rc = ums_write(d, dfd, "uid_map", umap, 0)) ||
	    (rc = ums_write(d, dfd, "gid_map", gmap, PRIVD_CAP_SETGID))) {
		privd_err(err, en, rc, "mapping the user namespace of process %d: %s", (int)q->pid,
			  strerror(-rc));
		goto out;
	}
	log_debug("mapped the user namespace of process %d to uid %u gid %u", (int)q->pid,
		  (unsigned)d->uid, (unsigned)d->gid);
out:
	if (dfd >= 0)
		close(dfd);
	close(pidfd);
	return rc;
}
