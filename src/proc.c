// SPDX-License-Identifier: MIT
#include "src/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/seccomp.h>
#include <sys/capability.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "share/share.h"
#include "src/log.h"
#include "src/util.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
/* <linux/mount.h> clashes with glibc 2.36's <sys/mount.h>: the two bits we use */
#define PROC_MOUNT_ATTR_RDONLY 0x00000001ULL
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

struct proc_mount_attr {
	unsigned long long attr_set, attr_clr, propagation, userns_fd;
};

/*
 * Which confinement step failed in the child: reported back beside the errno
 * so that the supervisor's log says "dropping capabilities: Operation not
 * permitted", not only the errno.
 */
enum proc_step {
	PROC_STEP_EXEC, PROC_STEP_FDS, PROC_STEP_SETSID, PROC_STEP_CWD, PROC_STEP_RLIMIT,
	PROC_STEP_MOUNTNS, PROC_STEP_BOUND, PROC_STEP_IDS, PROC_STEP_USERNS, PROC_STEP_NNP,
	PROC_STEP_CAPS, PROC_STEP_FILTER, PROC_STEP_PDEATH,
	PROC_STEP_USERNS_READY,	/* not a failure: unshared, waiting for the parent's maps */
};

static const char *const proc_step_name[] = {
	[PROC_STEP_EXEC] = "exec", [PROC_STEP_FDS] = "passing fds", [PROC_STEP_SETSID] = "setsid",
	[PROC_STEP_CWD] = "chdir", [PROC_STEP_RLIMIT] = "rlimits",
	[PROC_STEP_MOUNTNS] = "private mount namespace",
	[PROC_STEP_BOUND] = "dropping the capability bounding set",
	[PROC_STEP_IDS] = "switching uid/gid", [PROC_STEP_USERNS] = "user namespace",
	[PROC_STEP_NNP] = "no_new_privs", [PROC_STEP_CAPS] = "dropping capabilities",
	[PROC_STEP_FILTER] = "seccomp filter", [PROC_STEP_PDEATH] = "parent-death signal",
	[PROC_STEP_USERNS_READY] = "user namespace",
};

struct proc_err {
	int err;
	int step;
};

int proc_pidfd_open(pid_t pid)
{
	long fd = syscall(SYS_pidfd_open, pid, 0);

	if (fd < 0)
		return -errno;
	if (util_set_cloexec((int)fd, true) < 0) {
		close((int)fd);
		return -EIO;
	}
	return (int)fd;
}

/* what the child tells the parent before it _exit()s */
static _Noreturn void proc_child_fail(int errpipe, int err, enum proc_step step)
{
	struct proc_err e = { .err = err ? err : EIO, .step = (int)step };

	(void)!write(errpipe, &e, sizeof(e));
	_exit(127);
}

static int proc_write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, s, strlen(s)) != (ssize_t)strlen(s))
		rc = -errno;
	close(fd);
	return rc;
}

/*
 * Private mount namespace (only with privilege): nothing propagates back to
 * the host, optionally everything read-only (mount_setattr, one recursive
 * call), then optionally one directory bound over another so that a child
 * that may not walk to it (root's 0700 home) still gets exactly that one.
 * The bind comes after the read-only pass, so it stays writable.
 */
/* what QEMU may still see in its read-only view: the system, devices, proc and sys */
static bool proc_mount_kept(const char *mp)
{
	static const char *const keep[] = { "/dev", "/proc", "/sys", "/usr", "/lib", "/lib32",
					    "/lib64", "/libx32", "/bin", "/sbin", "/etc" };

	if (!strcmp(mp, "/"))
		return true;
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(keep); i++) {
		size_t l = strlen(keep[i]);

		if (!strncmp(mp, keep[i], l) && (mp[l] == '\0' || mp[l] == '/'))
			return true;
	}
	return false;
}

/*
 * Detach every other mount from the copy the new namespace got: /home,
 * /tmp, and above all other VMs' share images, whose loop devices would
 * otherwise stay attached (and their folders stay busy) for as long as this
 * QEMU lives.  Deepest first: mountinfo lists parents before children.
 */
static int proc_mountns_prune(void)
{
	struct share_mntent *e = malloc(sizeof(*e));
	char *buf = NULL, *mps[256];
	size_t n = 0, off = 0, nmp = 0;
	int rc;

	if (!e)
		return -ENOMEM;
	rc = util_read_file("/proc/self/mountinfo", 16u << 20, &buf, &n);
	while (rc == 0 && off < n) {
		const char *line = buf + off, *nl = memchr(line, '\n', n - off);
		size_t ll = nl ? (size_t)(nl - line) : n - off;

		off += ll + 1;
		if (share_mountinfo_parse_line(line, ll, e) < 0 || proc_mount_kept(e->mountpoint))
			continue;
		if (nmp == UTIL_ARRAY_SIZE(mps) || !(mps[nmp] = strdup(e->mountpoint))) {
			rc = -E2BIG;
			break;
		}
		nmp++;
	}
	while (nmp-- > 0) {
		/* EINVAL: went with a parent already */
		if (rc == 0 && umount2(mps[nmp], MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
			rc = -errno;
		free(mps[nmp]);
	}
	free(buf);
	free(e);
	return rc;
}

static int proc_mountns(const struct proc_sandbox *sb)
{
	int rc;

	struct proc_mount_attr ma = { .attr_set = PROC_MOUNT_ATTR_RDONLY };

	if (unshare(CLONE_NEWNS) < 0 || mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return -errno;
	if (sb->mount_ro && (rc = proc_mountns_prune()) < 0)
		return rc;
	if (sb->mount_ro &&
	    syscall(SYS_mount_setattr, AT_FDCWD, "/", AT_RECURSIVE, &ma, sizeof(ma)) < 0)
		return -errno;
	if (sb->bind_src && sb->bind_dst &&
	    mount(sb->bind_src, sb->bind_dst, NULL, MS_BIND | MS_REC, NULL) < 0)
		return -errno;
	return 0;
}

/* root of a new user namespace whose uid 0 is who we are now (one mapping) */
static int proc_userns(void)
{
	char map[64];
	uid_t uid = geteuid();
	gid_t gid = getegid();
	int rc;

	/*
	 * The id switch made us non-dumpable, which leaves /proc/self/ owned by
	 * root and its maps unwritable for us; execve() recomputes it anyway.
	 */
	if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0 || unshare(CLONE_NEWUSER) < 0)
		return -errno;
	/* an unprivileged writer of gid_map must give up setgroups first */
	if ((rc = proc_write_str("/proc/self/setgroups", "deny")) < 0 ||
	    (rc = util_snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)uid)) < 0 ||
	    (rc = proc_write_str("/proc/self/uid_map", map)) < 0 ||
	    (rc = util_snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)gid)) < 0 ||
	    (rc = proc_write_str("/proc/self/gid_map", map)) < 0)
		return rc;
	return 0;
}

/*
 * Root of a new user namespace that the parent has mapped for us
 * (proc_sandbox.userns_map: hutch-helper writes "0 <uid> 1" into both maps
 * without denying setgroups), then no supplementary groups at all, so that
 * virtiofsd finds none to drop.  @errpipe tells the parent we unshared;
 * @syncfd brings its answer (0, or the negative errno of the mapping).
 */
static int proc_userns_mapped(int errpipe, int syncfd)
{
	struct proc_err ready = { .err = 0, .step = PROC_STEP_USERNS_READY };
	int res = -EPROTO;
	ssize_t r;

	/* dumpable: /proc/self stays ours, so the helper may open its maps as us */
	if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0 || unshare(CLONE_NEWUSER) < 0)
		return -errno;
	if (write(errpipe, &ready, sizeof(ready)) != (ssize_t)sizeof(ready))
		return -EPIPE;
	do
		r = read(syncfd, &res, sizeof(res));
	while (r < 0 && errno == EINTR);
	if (r != (ssize_t)sizeof(res))
		return -EPIPE;	/* the parent went away */
	if (res < 0)
		return res;
	if (setgroups(0, NULL) < 0)
		return -errno;
	return getgroups(0, NULL) == 0 ? 0 : -EPERM;
}

/* empty every capability set we may empty, then check them with libcap */
static int proc_drop_caps(bool bound_too)
{
	cap_t c = cap_init(), now;
	int rc = 0, cmp;

	if (!c)
		return -ENOMEM;
	if (cap_set_proc(c) < 0 || cap_reset_ambient() < 0) {
		rc = -errno;
		goto out;
	}
	now = cap_get_proc();
	if (!now) {
		rc = -errno;
		goto out;
	}
	cmp = cap_compare(c, now);
	cap_free(now);
	if (cmp != 0) {
		rc = -EPERM;
		goto out;
	}
	for (cap_value_t v = 0; v <= CAP_LAST_CAP; v++) {
		if (cap_get_ambient(v) > 0 || (bound_too && cap_get_bound(v) > 0)) {
			rc = -EPERM;
			goto out;
		}
	}
out:
	cap_free(c);
	return rc;
}

static int proc_rlimits(const struct proc_sandbox *sb)
{
	struct rlimit r;

	if (sb->nofile) {
		if (getrlimit(RLIMIT_NOFILE, &r) < 0)
			return -errno;
		/*
		 * Lowering is always allowed; raising the hard limit needs
		 * CAP_SYS_RESOURCE, which even root may lack (containers): then
		 * the current hard limit is the bound.
		 */
		rlim_t hard = r.rlim_max;

		r.rlim_cur = r.rlim_max = sb->nofile;
		if (setrlimit(RLIMIT_NOFILE, &r) < 0) {
			if (errno != EPERM || hard == RLIM_INFINITY || sb->nofile < hard)
				return -errno;
			r.rlim_cur = r.rlim_max = hard;
			if (setrlimit(RLIMIT_NOFILE, &r) < 0)
				return -errno;
		}
	}
	if (sb->no_core) {
		r = (struct rlimit){ 0, 0 };
		if (setrlimit(RLIMIT_CORE, &r) < 0)
			return -errno;
	}
	return 0;
}

/*
 * Apply @sb in the child.  Order matters: everything that needs privilege
 * (rlimits above the hard limit, the mount namespace, the bounding set)
 * comes before the id switch, which clears the rest; the user namespace
 * after it, so that its uid 0 maps to the unprivileged user.
 */
static int proc_confine(const struct proc_sandbox *sb, enum proc_step *step, int errpipe,
			int syncfd)
{
	const struct proc_user *u = sb->user;
	bool priv = u && u->switch_ids;
	int rc;

	*step = PROC_STEP_RLIMIT;
	if ((rc = proc_rlimits(sb)) < 0)
		return rc;
	*step = PROC_STEP_MOUNTNS;
	if (priv && (sb->mount_ro || sb->bind_src) && (rc = proc_mountns(sb)) < 0)
		return rc;
	*step = PROC_STEP_BOUND;
	if (priv) {
		for (cap_value_t v = 0; v <= CAP_LAST_CAP; v++)
			if (cap_get_bound(v) > 0 && cap_drop_bound(v) < 0)
				return -errno;
	}
	/*
	 * A user namespace's root may not change its groups (setgroups is
	 * denied there for an unprivileged mapping), and QEMU 7.2's virtiofsd
	 * insists on dropping them: it gets none.
	 */
	*step = PROC_STEP_IDS;
	if (priv && (setgroups(sb->userns_root ? 0 : u->n_groups, u->groups) < 0 || setresgid(u->gid, u->gid, u->gid) < 0 ||
		     setresuid(u->uid, u->uid, u->uid) < 0))
		return -errno;
	if (priv && (getuid() != u->uid || geteuid() != u->uid || getegid() != u->gid))
		return -EPERM;
	*step = PROC_STEP_USERNS;
	rc = 0;
	if (sb->userns_root && !priv && syncfd >= 0)
		rc = proc_userns_mapped(errpipe, syncfd);
	else if (sb->userns_root)
		rc = proc_userns();
	if (rc < 0)
		return rc;
	*step = PROC_STEP_NNP;
	if (sb->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	*step = PROC_STEP_CAPS;
	if (sb->drop_caps && !sb->userns_root && (rc = proc_drop_caps(priv)) < 0)
		return rc;
	/* last: the filter holds for what the program does, not for our steps */
	*step = PROC_STEP_FILTER;
	if (sb->filter && prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, sb->filter) < 0)
		return -errno;
	return 0;
}

/*
 * In the child, after fork(): move every passed fd to a number above all of
 * the target numbers first, so that a mapping like {5->3, 3->5} cannot
 * clobber itself, then dup2 into place and close everything else.
 */
static _Noreturn void proc_child(const struct proc_opts *o, int errpipe, int syncfd, pid_t parent)
{
	int tmp[64];
	size_t i;
	int maxchild = 2, devnull;
	int base, top;
	enum proc_step step = PROC_STEP_FDS;

	if (o->n_fds > UTIL_ARRAY_SIZE(tmp))
		proc_child_fail(errpipe, EINVAL, step);
	for (i = 0; i < o->n_fds; i++)
		if (o->fds[i].child > maxchild)
			maxchild = o->fds[i].child;
	base = maxchild + 1;
	if (errpipe < base) {
		int e = fcntl(errpipe, F_DUPFD_CLOEXEC, base);

		if (e < 0)
			goto fail;
		errpipe = e;
	}
	/* the parent's answer to proc_userns_mapped(), kept beside the error pipe */
	if (syncfd >= 0 && (syncfd = fcntl(syncfd, F_DUPFD_CLOEXEC, errpipe + 1)) < 0)
		goto fail;
	top = syncfd > errpipe ? syncfd : errpipe;
	base = top + 1;
	for (i = 0; i < o->n_fds; i++) {
		tmp[i] = fcntl(o->fds[i].parent, F_DUPFD, base);
		if (tmp[i] < 0)
			goto fail;
		base = tmp[i] + 1;
	}
	devnull = open("/dev/null", O_RDWR);
	if (devnull < 0)
		goto fail;
	for (int s = 0; s <= 2; s++)
		if (dup2(devnull, s) < 0)
			goto fail;
	for (i = 0; i < o->n_fds; i++)
		if (dup2(tmp[i], o->fds[i].child) < 0)
			goto fail;
	/* close everything but the mapped fds and the error pipe */
	for (int fd = 3; fd <= maxchild; fd++) {
		bool keep = false;

		for (i = 0; i < o->n_fds; i++)
			keep |= o->fds[i].child == fd;
		if (!keep)
			close(fd);
	}
	for (int fd = maxchild + 1; fd < top; fd++)
		if (fd != errpipe && fd != syncfd)
			close(fd);
	if (syscall(SYS_close_range, top + 1, ~0U, 0) < 0) {
		for (int fd = top + 1; fd < 4096; fd++)
			close(fd);
	}
	step = PROC_STEP_SETSID;
	if (o->setsid && setsid() < 0)
		goto fail;
	/* before the id switch: a hook's project dir may be one only root can walk to */
	step = PROC_STEP_CWD;
	if (o->cwd && chdir(o->cwd) < 0)
		goto fail;
	if (o->sb) {
		int rc = proc_confine(o->sb, &step, errpipe, syncfd);

		if (rc < 0)
			proc_child_fail(errpipe, -rc, step);
	}
	/* last: every credential change clears it; the parent may have died before prctl */
	step = PROC_STEP_PDEATH;
	if (o->pdeathsig && (prctl(PR_SET_PDEATHSIG, o->pdeathsig) < 0 || getppid() != parent))
		goto fail;
	{
		sigset_t all;

		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		signal(SIGPIPE, SIG_DFL);
	}
	step = PROC_STEP_EXEC;
	{
		static const char *const empty[] = { NULL };
		char *const *env = (char *const *)(o->envp ? o->envp : empty);

		if (strchr(o->argv[0], '/'))
			execve(o->argv[0], (char *const *)o->argv, env);
		else {
			char path[PATH_MAX];

			if (proc_find_exe(o->argv[0], NULL, path, sizeof(path)) == 0)
				execve(path, (char *const *)o->argv, env);
			else
				errno = ENOENT;
		}
	}
fail:
	proc_child_fail(errpipe, errno, step);
}

/*
 * The parent's side of proc_userns_mapped(): read the child's messages;
 * "unshared" is answered with the result of the caller's mapping callback,
 * anything else (a failure, or EOF at exec) ends it.
 * Return: bytes of the last read (sizeof(*e) when the child failed)
 */
static ssize_t proc_spawn_wait(const struct proc_opts *o, pid_t pid, int errfd, int syncfd,
			       struct proc_err *e)
{
	ssize_t r;

	for (;;) {
		do
			r = read(errfd, e, sizeof(*e));
		while (r < 0 && errno == EINTR);
		if (r != (ssize_t)sizeof(*e) || e->step != PROC_STEP_USERNS_READY || syncfd < 0)
			break;
		{
			int res = o->sb->userns_map(pid, o->sb->userns_arg);

			/* a short write: the child reads EOF and fails */
			(void)!write(syncfd, &res, sizeof(res));
		}
		close(syncfd);
		syncfd = -1;
	}
	if (syncfd >= 0)
		close(syncfd);
	if (r == (ssize_t)sizeof(*e) && e->err <= 0)
		e->err = EPROTO;	/* "unshared" twice, or unasked */
	return r;
}

int proc_spawn(const struct proc_opts *o, pid_t *pidp, int *pidfdp)
{
	struct proc_err e = { 0 };
	int pfd[2], sync[2] = { -1, -1 }, err = 0, rc, pidfd = -1;
	ssize_t r;
	pid_t pid, self = getpid();

	if (!o->argv || !o->argv[0])
		return -EINVAL;
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	/* a user namespace the parent maps (hutch is not root: the helper writes the maps) */
	if (o->sb && o->sb->userns_root && o->sb->userns_map &&
	    !(o->sb->user && o->sb->user->switch_ids) && pipe2(sync, O_CLOEXEC) < 0) {
		rc = -errno;
		close(pfd[0]);
		close(pfd[1]);
		return rc;
	}
	pid = fork();
	if (pid < 0) {
		rc = -errno;
		close(pfd[0]);
		close(pfd[1]);
		if (sync[0] >= 0) {
			close(sync[0]);
			close(sync[1]);
		}
		return rc;
	}
	if (pid == 0) {
		close(pfd[0]);
		proc_child(o, pfd[1], sync[0], self);
	}
	close(pfd[1]);
	if (sync[0] >= 0)
		close(sync[0]);
	r = proc_spawn_wait(o, pid, pfd[0], sync[1], &e);
	close(pfd[0]);
	if (r == (ssize_t)sizeof(e)) {
		int st;

		proc_wait(pid, &st);
		/* a missing program is the caller's to report; a failed confinement step is ours */
		if (e.step != PROC_STEP_EXEC && e.step >= 0 &&
		    (size_t)e.step < UTIL_ARRAY_SIZE(proc_step_name))
			log_err("starting %s: %s: %s", o->argv[0], proc_step_name[e.step],
				strerror(e.err));
		return -e.err;
	}
	if (o->want_pidfd) {
		pidfd = proc_pidfd_open(pid);
		if (pidfd < 0) {
			kill(pid, SIGKILL);
			proc_wait(pid, &err);
			return pidfd;
		}
		*pidfdp = pidfd;
	}
	*pidp = pid;
	return 0;
}

int proc_wait(pid_t pid, int *status)
{
	int st;

	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	*status = st;
	return 0;
}

int proc_exit_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 255;
}

int proc_run(const char *const *argv, const char *const *envp, char **out, size_t max,
	     int *status)
{
	struct proc_fdmap fds[2];
	struct proc_opts o = { .argv = argv, .envp = envp ? envp : proc_default_env() };
	size_t len = 0;
	char *buf = NULL;
	int p[2], rc;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	fds[0] = (struct proc_fdmap){ p[1], 1 };
	fds[1] = (struct proc_fdmap){ p[1], 2 };
	o.fds = fds;
	o.n_fds = 2;
	rc = proc_spawn(&o, &pid, NULL);
	close(p[1]);
	if (rc) {
		close(p[0]);
		return rc;
	}
	if (out) {
		buf = malloc(max + 1);
		if (!buf) {
			rc = -ENOMEM;
		}
	}
	for (;;) {
		char tmp[4096];
		ssize_t r = read(p[0], tmp, sizeof(tmp));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (buf && len < max) {
			size_t take = (size_t)r < max - len ? (size_t)r : max - len;

			memcpy(buf + len, tmp, take);
			len += take;
		}
	}
	close(p[0]);
	{
		int w = proc_wait(pid, status);

		if (w && !rc)
			rc = w;
	}
	if (rc) {
		free(buf);
		return rc;
	}
	if (buf) {
		buf[len] = '\0';
		*out = buf;
	}
	return 0;
}

const char *const *proc_default_env(void)
{
	static char path[512], home[512], user[128], lang[64], term[128], tmpdir[512];
	static char sudo_uid[32], sudo_gid[32];
	static const char *env[10];
	const char *v, *v2;
	size_t n = 0;

	if (env[0])
		return env;
	v = getenv("PATH");
	if (util_snprintf(path, sizeof(path), "PATH=%s",
			  v ? v : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin") == 0)
		env[n++] = path;
	if ((v = getenv("HOME")) && util_snprintf(home, sizeof(home), "HOME=%s", v) == 0)
		env[n++] = home;
	if ((v = getenv("USER")) && util_snprintf(user, sizeof(user), "USER=%s", v) == 0)
		env[n++] = user;
	if ((v = getenv("TERM")) && util_snprintf(term, sizeof(term), "TERM=%s", v) == 0)
		env[n++] = term;
	if ((v = getenv("TMPDIR")) && util_snprintf(tmpdir, sizeof(tmpdir), "TMPDIR=%s", v) == 0)
		env[n++] = tmpdir;
	if (util_snprintf(lang, sizeof(lang), "LANG=C.UTF-8") == 0)
		env[n++] = lang;
	/*
	 * Root under sudo: the supervisor (started with this environment) must
	 * know the invoking user too, to run QEMU and virtiofsd as that user.
	 */
	if (geteuid() == 0 && (v = getenv("SUDO_UID")) && (v2 = getenv("SUDO_GID")) &&
	    util_snprintf(sudo_uid, sizeof(sudo_uid), "SUDO_UID=%s", v) == 0 &&
	    util_snprintf(sudo_gid, sizeof(sudo_gid), "SUDO_GID=%s", v2) == 0) {
		env[n++] = sudo_uid;
		env[n++] = sudo_gid;
	}
	env[n] = NULL;
	return env;
}

int proc_find_exe(const char *name, const char *const *extra, char *buf, size_t n)
{
	const char *path = getenv("PATH");
	char copy[4096];
	char *save = NULL, *dir;

	if (!path)
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	if (util_snprintf(copy, sizeof(copy), "%s", path))
		return -ENAMETOOLONG;
	for (dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		if (util_snprintf(buf, n, "%s/%s", dir, name) == 0 && access(buf, X_OK) == 0)
			return 0;
	}
	for (; extra && *extra; extra++) {
		if (util_snprintf(buf, n, "%s/%s", *extra, name) == 0 && access(buf, X_OK) == 0)
			return 0;
	}
	return -ENOENT;
}

/* ---- who children run as ---- */

/* @u's uid, gid, name and groups from the password database (groups: at least @gid) */
static int proc_user_fill(struct proc_user *u, uid_t uid, gid_t gid)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	int n = PROC_MAX_GROUPS;

	u->uid = uid;
	u->gid = gid;
	u->groups[0] = gid;
	u->n_groups = 1;
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) != 0 || !res)
		return util_snprintf(u->name, sizeof(u->name), "uid %u", (unsigned)uid) ? -EINVAL : 0;
	if (util_snprintf(u->name, sizeof(u->name), "%s", pw.pw_name) < 0)
		(void)util_snprintf(u->name, sizeof(u->name), "uid %u", (unsigned)uid);
	/* more groups than we keep: fail rather than silently drop one */
	if (getgrouplist(pw.pw_name, gid, u->groups, &n) < 0)
		return -E2BIG;
	u->n_groups = (size_t)n;
	return 0;
}

/*
 * The dedicated user for plain root: a system user with its own group, no
 * home, no shell, in group kvm when the host has one (so that accel: kvm
 * works).  useradd(8) keeps /etc/passwd, /etc/shadow and /etc/group
 * consistent and locked; we run it with an argv, never a shell.
 */
static int proc_vm_user(struct proc_user *u)
{
	char buf[4096];
	struct passwd pw, *res = NULL;
	const char *argv[16];
	size_t n = 0;
	char *out = NULL;
	int st, rc;

	if (getpwnam_r(PROC_VM_USER, &pw, buf, sizeof(buf), &res) == 0 && res)
		return proc_user_fill(u, pw.pw_uid, pw.pw_gid);
	argv[n++] = "useradd";
	argv[n++] = "--system";
	argv[n++] = "--user-group";
	argv[n++] = "--no-create-home";
	argv[n++] = "--home-dir";
	argv[n++] = "/nonexistent";
	argv[n++] = "--shell";
	argv[n++] = "/usr/sbin/nologin";
	argv[n++] = "--comment";
	argv[n++] = "hutch VMs (QEMU, virtiofsd) when hutch runs as root";
	if (getgrnam("kvm")) {
		argv[n++] = "--groups";
		argv[n++] = "kvm";
	}
	argv[n++] = PROC_VM_USER;
	argv[n] = NULL;
	log_info("creating the system user %s, which runs QEMU, virtiofsd, hooks and Ansible "
		 "when hutch runs as root without sudo", PROC_VM_USER);
	rc = proc_run(argv, NULL, &out, 4096, &st);
	if (rc == 0 && proc_exit_code(st) != 0 && proc_exit_code(st) != 9) {	/* 9: exists (a race) */
		char esc[512];

		log_err("useradd %s failed: %s", PROC_VM_USER,
			log_escape(esc, sizeof(esc), out ? out : "", out ? strlen(out) : 0));
		rc = -ENOENT;
	}
	free(out);
	if (rc)
		return rc;
	if (getpwnam_r(PROC_VM_USER, &pw, buf, sizeof(buf), &res) != 0 || !res)
		return -ENOENT;
	return proc_user_fill(u, pw.pw_uid, pw.pw_gid);
}

static int proc_user_lookup(struct proc_user *u)
{
	const char *su = getenv("SUDO_UID"), *sg = getenv("SUDO_GID");
	long uid, gid;
	int rc;

	memset(u, 0, sizeof(*u));
	if (geteuid() != 0) {
		/* a normal user: children run as we do; nothing to switch */
		u->uid = getuid();
		u->gid = getgid();
		return util_snprintf(u->name, sizeof(u->name), "uid %u", (unsigned)u->uid) ? -EINVAL : 0;
	}
	if (su && util_parse_long(su, 1, (long)UINT32_MAX - 1, &uid) == 0) {
		if (!sg || util_parse_long(sg, 0, (long)UINT32_MAX - 1, &gid) < 0) {
			log_err("SUDO_UID is set but SUDO_GID is not a gid");
			return -EINVAL;
		}
		rc = proc_user_fill(u, (uid_t)uid, (gid_t)gid);
	} else {
		rc = proc_vm_user(u);
	}
	if (rc < 0)
		return rc;
	if (u->uid == 0 || u->gid == 0) {
		log_err("refusing to run children as root (%s)", u->name);
		return -EPERM;
	}
	u->switch_ids = true;
	return 0;
}

int proc_user_resolve(struct proc_user *u)
{
	static struct proc_user cached;
	static int state;	/* 0: not yet, 1: ok, <0: the error */

	if (state == 0) {
		int rc = proc_user_lookup(&cached);

		state = rc < 0 ? rc : 1;
	}
	if (state < 0)
		return state;
	*u = cached;
	return 0;
}

void proc_sandbox_guest(struct proc_sandbox *sb, const struct proc_user *u)
{
	/* QEMU holds one fd per disk, tap queue, chardev and vhost ring: 4096 is ample */
	*sb = (struct proc_sandbox){ .user = u, .no_new_privs = true, .drop_caps = true,
				     .nofile = 4096, .no_core = true, .mount_ro = true };
}

void proc_sandbox_user(struct proc_sandbox *sb, const struct proc_user *u)
{
	*sb = (struct proc_sandbox){ .user = u, .no_new_privs = true, .drop_caps = true,
				     .no_core = true };
}

/* ---- reading a process's rights back ---- */

/* "Key:\tvalue\n" lines; @key includes the colon */
static const char *proc_status_field(const char *buf, size_t n, const char *key, size_t *len)
{
	size_t kl = strlen(key), off = 0;

	while (off < n) {
		const char *line = buf + off, *nl = memchr(line, '\n', n - off);
		size_t ll = nl ? (size_t)(nl - line) : n - off;

		if (ll > kl && !memcmp(line, key, kl)) {
			size_t i = kl;

			while (i < ll && (line[i] == '\t' || line[i] == ' '))
				i++;
			*len = ll - i;
			return line + i;
		}
		off += ll + 1;
	}
	return NULL;
}

/* the @idx-th number (from 0) of a field, base 10 or 16, whole token, bounded */
static int proc_status_num(const char *buf, size_t n, const char *key, size_t idx, int base,
			   unsigned long long *out)
{
	char tok[24];
	size_t len, i = 0;
	const char *v = proc_status_field(buf, n, key, &len);
	unsigned long long x = 0;

	if (!v)
		return -ENOENT;
	for (; idx > 0; idx--) {	/* skip a token and the blanks after it */
		while (i < len && v[i] != '\t' && v[i] != ' ')
			i++;
		while (i < len && (v[i] == '\t' || v[i] == ' '))
			i++;
	}
	v += i;
	len -= i;
	i = 0;
	while (i < len && i < sizeof(tok) - 1 && v[i] != '\t' && v[i] != ' ') {
		tok[i] = v[i];
		i++;
	}
	tok[i] = '\0';
	if (i == 0 || (i < len && v[i] != '\t' && v[i] != ' '))
		return -EINVAL;
	for (size_t j = 0; j < i; j++) {
		int d;

		if (tok[j] >= '0' && tok[j] <= '9')
			d = tok[j] - '0';
		else if (base == 16 && tok[j] >= 'a' && tok[j] <= 'f')
			d = tok[j] - 'a' + 10;
		else
			return -EINVAL;
		if (x > (~0ULL - (unsigned)d) / (unsigned)base)
			return -ERANGE;
		x = x * (unsigned)base + (unsigned)d;
	}
	*out = x;
	return 0;
}

int proc_status_parse(const char *buf, size_t n, struct proc_status *st)
{
	unsigned long long uid, eff, bnd, nnp = 0, ppid = 0, ids[3];
	struct proc_status out = { 0 };
	int rc;

	if ((rc = proc_status_num(buf, n, "Uid:", 0, 10, &uid)) < 0 ||
	    (rc = proc_status_num(buf, n, "CapEff:", 0, 16, &eff)) < 0 ||
	    (rc = proc_status_num(buf, n, "CapBnd:", 0, 16, &bnd)) < 0)
		return rc;
	if (uid > UINT32_MAX)
		return -ERANGE;
	/* NoNewPrivs appeared in Linux 4.10: absent means unknown, read as off */
	rc = proc_status_num(buf, n, "NoNewPrivs:", 0, 10, &nnp);
	if (rc < 0 && rc != -ENOENT)
		return rc;
	/* PPid and the effective, saved and fs uids: absent reads as 0 and -1 (never a match) */
	if (proc_status_num(buf, n, "PPid:", 0, 10, &ppid) < 0 || ppid > INT32_MAX)
		ppid = 0;
	for (size_t i = 0; i < 3; i++)
		if (proc_status_num(buf, n, "Uid:", i + 1, 10, &ids[i]) < 0 || ids[i] > UINT32_MAX)
			ids[i] = UINT32_MAX;
	out = (struct proc_status){ .uid = (uid_t)uid, .cap_eff = eff, .cap_bnd = bnd,
				    .no_new_privs = nnp == 1, .ppid = (pid_t)ppid };
	out.uids[0] = (uid_t)uid;
	for (size_t i = 0; i < 3; i++)
		out.uids[i + 1] = (uid_t)ids[i];
	*st = out;
	return 0;
}

int proc_status_read(pid_t pid, struct proc_status *st)
{
	char path[64], *buf = NULL;
	size_t n = 0;
	int rc;

	if (pid <= 0 || util_snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid) < 0)
		return -EINVAL;
	rc = util_read_file(path, 65536, &buf, &n);
	if (rc < 0)
		return rc == -ENOENT ? -ESRCH : rc;
	rc = proc_status_parse(buf, n, st);
	free(buf);
	return rc;
}
