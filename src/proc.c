// SPDX-License-Identifier: MIT
#include "src/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "src/util.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

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

/*
 * In the child, after fork(): move every passed fd to a number above all of
 * the target numbers first, so that a mapping like {5->3, 3->5} cannot
 * clobber itself, then dup2 into place and close everything else.
 */
static _Noreturn void proc_child(const struct proc_opts *o, int errpipe, pid_t parent)
{
	int tmp[64];
	size_t i;
	int maxchild = 2, err, devnull;
	int base;

	if (o->n_fds > UTIL_ARRAY_SIZE(tmp))
		goto fail_einval;
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
	base = errpipe + 1;
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
	for (int fd = maxchild + 1; fd < errpipe; fd++)
		close(fd);
	if (syscall(SYS_close_range, errpipe + 1, ~0U, 0) < 0) {
		for (int fd = errpipe + 1; fd < 4096; fd++)
			close(fd);
	}
	if (o->setsid && setsid() < 0)
		goto fail;
	/* the parent may have died before prctl: then nobody would signal us */
	if (o->pdeathsig && (prctl(PR_SET_PDEATHSIG, o->pdeathsig) < 0 || getppid() != parent))
		goto fail;
	if (o->cwd && chdir(o->cwd) < 0)
		goto fail;
	{
		sigset_t all;

		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		signal(SIGPIPE, SIG_DFL);
	}
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
	err = errno;
	(void)!write(errpipe, &err, sizeof(err));
	_exit(127);
fail_einval:
	err = EINVAL;
	(void)!write(errpipe, &err, sizeof(err));
	_exit(127);
}

int proc_spawn(const struct proc_opts *o, pid_t *pidp, int *pidfdp)
{
	int pfd[2], err = 0, rc, pidfd = -1;
	ssize_t r;
	pid_t pid, self = getpid();

	if (!o->argv || !o->argv[0])
		return -EINVAL;
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		rc = -errno;
		close(pfd[0]);
		close(pfd[1]);
		return rc;
	}
	if (pid == 0) {
		close(pfd[0]);
		proc_child(o, pfd[1], self);
	}
	close(pfd[1]);
	do
		r = read(pfd[0], &err, sizeof(err));
	while (r < 0 && errno == EINTR);
	close(pfd[0]);
	if (r == (ssize_t)sizeof(err)) {
		int st;

		proc_wait(pid, &st);
		return -err;
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
	static const char *env[8];
	const char *v;
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
