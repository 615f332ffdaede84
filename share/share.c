// SPDX-License-Identifier: MIT
/*
 * share: the host side of shared folders (see DOC in share.h): tags and
 * paths, virtiofsd processes, the guest's fstab.  The image and its loop
 * mount are in image.c.
 */
#include "share/share.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "src/log.h"
#include "src/proc.h"
#include "src/trust.h"
#include "src/util.h"

static void share_sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

bool share_tag_valid(const char *tag)
{
	size_t n = strlen(tag);

	if (n == 0 || n > SHARE_TAG_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = tag[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-'))
			return false;
	}
	return true;
}

bool share_path_opt_safe(const char *path)
{
	for (const unsigned char *p = (const unsigned char *)path; *p; p++)
		if (*p == ',' || *p == '\\' || *p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

int share_image_path(const struct cfg_share *s, char *buf, size_t n)
{
	if (!s->host || s->host[0] != '/')
		return -EINVAL;
	return util_snprintf(buf, n, "%s.img", s->host);
}

int share_check_paths(const struct cfg_share *s, const char *project_dir)
{
	char why[TRUST_WHY_MAX];
	int rc;

	/* the one containment check, as the config loader makes it (src/trust.h) */
	rc = trust_check(project_dir, s->host, TRUST_DIR, 0, why, sizeof(why));
	if (rc == -EPERM)
		log_err("shared folder %s %s", s->host, why);
	else if (rc)
		log_errno(rc, "shared folder %s", s->host);
	return rc;
}

int share_virtiofsd_find(char *buf, size_t n)
{
	static const char *const extra[] = { "/usr/libexec", "/usr/lib/qemu", NULL };

	return proc_find_exe("virtiofsd", extra, buf, n);
}

int share_virtiofsd_start(const char *exe, const char *dir, const char *sock, const char *log,
			  bool die_with_us, pid_t *pidp, int *pidfdp)
{
	char a_sock[PATH_MAX + 32], a_src[PATH_MAX + 32];
	const char *argv[12];
	struct proc_fdmap fds[1];
	size_t n_fds = 0;
	int logfd = -1, rc, status, pidfd = -1;
	uint64_t deadline;
	pid_t pid;

	/* the last line of defence: "w,source=/etc" would serve /etc (share.h) */
	if (!share_path_opt_safe(dir)) {
		log_err("shared folder %s: ',', '\\' or a control character in its path would "
			"split virtiofsd's options; rename the folder", dir);
		return -EINVAL;
	}
	if ((rc = util_snprintf(a_sock, sizeof(a_sock), "--socket-path=%s", sock)) < 0 ||
	    (rc = util_snprintf(a_src, sizeof(a_src), "source=%s", dir)) < 0)
		return rc;
	if (unlink(sock) < 0 && errno != ENOENT)
		return -errno;
	/*
	 * This is the C virtiofsd of QEMU <= 7.2 (Debian 12) or the Rust one;
	 * both take --socket-path and the -o options below (their -o parsers
	 * differ in escaping, hence share_path_opt_safe() above).  sandbox=namespace:
	 * it pivot_roots into the shared folder in its own mount, pid and net
	 * namespaces, so a compromised virtiofsd sees nothing else of the host.
	 */
	argv[0] = exe;
	argv[1] = a_sock;
	argv[2] = "-o";
	argv[3] = a_src;
	argv[4] = "-o";
	argv[5] = "cache=auto";
	argv[6] = "-o";
	argv[7] = "sandbox=namespace";
	argv[8] = NULL;
	if (log) {
		logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (logfd < 0)
			return -errno;
		fds[n_fds++] = (struct proc_fdmap){ .parent = logfd, .child = 2 };
	}
	{
		struct proc_opts o = {
			.argv = argv,
			.envp = proc_default_env(),
			.fds = fds,
			.n_fds = n_fds,
			.setsid = true,
			.pdeathsig = die_with_us ? SIGTERM : 0,
			.want_pidfd = pidfdp != NULL,
		};

		rc = proc_spawn(&o, &pid, &pidfd);
	}
	if (logfd >= 0)
		close(logfd);
	if (rc < 0)
		return rc;

	/* ready when the vhost-user socket is listening; generous: TCG hosts are slow */
	deadline = util_monotonic_ms() + 30000;
	for (;;) {
		struct stat st;
		pid_t w;

		if (stat(sock, &st) == 0 && S_ISSOCK(st.st_mode))
			break;
		w = waitpid(pid, &status, WNOHANG);
		if (w == pid) {
			log_err("virtiofsd for %s exited (status %d) before its socket appeared%s%s",
				dir, proc_exit_code(status), log ? "; see " : "", log ? log : "");
			rc = -ECHILD;
			goto err;
		}
		if (util_monotonic_ms() > deadline) {
			share_virtiofsd_stop(pid, 1000, true);
			rc = -ETIMEDOUT;
			goto err;
		}
		share_sleep_ms(20);
	}
	*pidp = pid;
	if (pidfdp)
		*pidfdp = pidfd;
	return 0;

err:
	if (pidfd >= 0)
		close(pidfd);
	return rc;
}

/*
 * virtiofsd for the supervisor, never as root (issue 10).  The C virtiofsd
 * of QEMU 7.2, the only one Debian 12 ships (bookworm-backports has none
 * either), needs CAP_SYS_ADMIN for its namespace sandbox and writes a pid
 * file under /var/run/virtiofsd for --socket-path.  So:
 *
 *  - it starts as root of a new user namespace whose uid 0 is the user
 *    (proc_sandbox.userns_root): its sandbox (mount, pid and net namespaces,
 *    pivot_root into the folder, seccomp) works there, and outside it holds
 *    only the user's uid;
 *  - "-o modcaps=-..." removes the eight capabilities it would keep for its
 *    file-server work, so once set up both its processes (the waiting
 *    parent drops everything itself) show CapEff, CapPrm and CapBnd 0;
 *  - the vhost-user socket is ours: --fd=3 gets a listening socket the
 *    supervisor bound and already connected to (that connection goes to
 *    QEMU), so there is no pid file and no socket path it must reach;
 *  - when hutch runs as root, the folder is bound over /tmp in a private
 *    mount namespace first, so a user who may not walk /root/... still gets
 *    exactly that folder (and "-o source=/tmp" then names it).
 *
 * The price of an unprivileged file server: it cannot act as another uid.
 * Files the guest's root creates belong to the user on the host (as with
 * any rootless virtiofsd); a guest user other than root can read and write
 * what exists but not create files (setresuid to an unmapped uid fails).
 */
int share_virtiofsd_start_fd(const char *exe, const char *dir, int listen_fd, const char *id,
			     const char *log, const struct proc_user *u, pid_t *pidp, int *pidfdp)
{
	char a_src[PATH_MAX + 32], e_id[PATH_MAX + 32];
	const char *argv[16], *env[16];
	const char *const *base = proc_default_env();
	struct proc_fdmap fds[2] = { { listen_fd, 3 } };
	struct proc_sandbox sb = { .user = u, .no_new_privs = true, .userns_root = true,
				   .no_core = true, .nofile = 65536 };
	size_t n = 0, ne = 0, n_fds = 1;
	int logfd = -1, rc;

	/* the last line of defence: "w,source=/etc" would serve /etc (share.h) */
	if (!share_path_opt_safe(dir)) {
		log_err("share folder %s: ',', '\\' or a control character would split virtiofsd's "
			"options", dir);
		return -EINVAL;
	}
	if (u->switch_ids) {
		sb.bind_src = dir;
		sb.bind_dst = "/tmp";
	} else if (getgroups(0, NULL) > 0) {
		/*
		 * It drops supplementary groups at start (CVE-2022-0358), which a
		 * namespace we map ourselves forbids: only root (or a helper that
		 * writes the maps, see issue 10) can start it for a user who has any.
		 */
		log_err("virtiofsd cannot start unprivileged for a user with supplementary groups; "
			"run hutch as root (sudo), or leave shared_folders out");
		return -EPERM;
	}
	if ((rc = util_snprintf(a_src, sizeof(a_src), "source=%s", sb.bind_src ? "/tmp" : dir)) < 0 ||
	    (rc = util_snprintf(e_id, sizeof(e_id), "HUTCH_VFS_SOCKET=%s", id)) < 0)
		return rc;
	for (; base && base[ne] && ne < UTIL_ARRAY_SIZE(env) - 2; ne++)
		env[ne] = base[ne];
	env[ne++] = e_id;	/* how gc tells our virtiofsd from anyone's (share_pid_is_virtiofsd) */
	env[ne] = NULL;
	argv[n++] = exe;
	argv[n++] = "--fd=3";
	argv[n++] = "-o";
	argv[n++] = a_src;
	argv[n++] = "-o";
	argv[n++] = "cache=auto";
	argv[n++] = "-o";
	argv[n++] = "sandbox=namespace";
	argv[n++] = "-o";
	argv[n++] = "modcaps=-chown:-dac_override:-fowner:-fsetid:-setgid:-setuid:-mknod:-setfcap";
	argv[n++] = "--rlimit-nofile=0";	/* ours (sb.nofile); it may not raise it */
	argv[n] = NULL;
	if (log) {
		logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (logfd < 0)
			return -errno;
		fds[n_fds++] = (struct proc_fdmap){ .parent = logfd, .child = 2 };
	}
	{
		struct proc_opts o = { .argv = argv, .envp = env, .fds = fds, .n_fds = n_fds,
				       .setsid = true, .pdeathsig = SIGTERM, .sb = &sb,
				       .want_pidfd = pidfdp != NULL };

		rc = proc_spawn(&o, pidp, pidfdp);
	}
	if (logfd >= 0)
		close(logfd);
	return rc;
}

/* /proc/@pid/environ holds "HUTCH_VFS_SOCKET=@sock" (virtiofsd started by fd) */
static bool share_pid_env_is(pid_t pid, const char *sock)
{
	char path[64], want[PATH_MAX + 32], *buf = NULL;
	size_t n = 0, off = 0;
	bool found = false;

	if (util_snprintf(path, sizeof(path), "/proc/%ld/environ", (long)pid) < 0 ||
	    util_snprintf(want, sizeof(want), "HUTCH_VFS_SOCKET=%s", sock) < 0 ||
	    util_read_file(path, 65536, &buf, &n) < 0)
		return false;
	while (off < n && !found) {
		size_t l = strnlen(buf + off, n - off);

		found = l == strlen(want) && !memcmp(buf + off, want, l);
		off += l + 1;
	}
	free(buf);
	return found;
}

/* gone: no such process, or a zombie waiting for its parent (not us) */
static bool share_pid_gone(pid_t pid)
{
	char path[64], *buf = NULL, *rp;
	bool gone;

	if (kill(pid, 0) < 0 && errno == ESRCH)
		return true;
	if (util_snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid) < 0 ||
	    util_read_file(path, 4096, &buf, NULL) < 0)
		return true;
	rp = strrchr(buf, ')');	/* comm may hold anything; the state follows the last ')' */
	gone = !rp || (rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X'));
	free(buf);
	return gone;
}

int share_virtiofsd_stop(pid_t pid, int grace_ms, bool reap)
{
	uint64_t deadline;
	int status;

	if (pid <= 0)
		return -EINVAL;
	if (kill(pid, SIGTERM) < 0 && errno == ESRCH)
		return 0;
	deadline = util_monotonic_ms() + (uint64_t)grace_ms;
	for (int killed = 0;;) {
		if (reap) {
			pid_t w = waitpid(pid, &status, WNOHANG);

			if (w == pid || (w < 0 && errno == ECHILD))
				return 0;
		} else if (share_pid_gone(pid)) {
			return 0;
		}
		if (!killed && util_monotonic_ms() > deadline) {
			kill(pid, SIGKILL);
			killed = 1;
			deadline = util_monotonic_ms() + 10000;
		} else if (killed && util_monotonic_ms() > deadline) {
			return -ETIMEDOUT;
		}
		share_sleep_ms(20);
	}
}

bool share_pid_is_virtiofsd(pid_t pid, const char *sock)
{
	char path[64], want[PATH_MAX + 32], *buf = NULL;
	bool exe_ok = false, sock_ok = false;
	size_t n, off = 0;

	if (pid <= 1 || util_snprintf(path, sizeof(path), "/proc/%ld/cmdline", (long)pid) < 0 ||
	    util_snprintf(want, sizeof(want), "--socket-path=%s", sock) < 0 ||
	    util_read_file(path, 65536, &buf, &n) < 0)
		return false;
	for (int i = 0; off < n; i++) {
		const char *arg = buf + off;
		size_t l = strnlen(arg, n - off);

		if (i == 0) {
			const char *base = strrchr(arg, '/');

			exe_ok = strcmp(base ? base + 1 : arg, "virtiofsd") == 0;
		} else if (strcmp(arg, want) == 0) {
			sock_ok = true;
		}
		off += l + 1;
	}
	free(buf);
	return exe_ok && (sock_ok || share_pid_env_is(pid, sock));
}

int share_fstab_lines(const struct cfg_vm *vm, char **out)
{
	size_t cap = 1, len = 0;
	char *s;

	for (size_t i = 0; i < vm->n_shares; i++) {
		const struct cfg_share *sh = &vm->shares[i];

		if (!sh->tag || !share_tag_valid(sh->tag) || !sh->guest || sh->guest[0] != '/')
			return -EINVAL;
		for (const char *p = sh->guest; *p; p++)
			if ((unsigned char)*p <= ' ' || *p == '\\' || (unsigned char)*p >= 0x7f)
				return -EINVAL;	/* fstab separates fields by blanks */
		cap += strlen(sh->tag) + strlen(sh->guest) + 40;
	}
	s = malloc(cap);
	if (!s)
		return -ENOMEM;
	s[0] = '\0';
	for (size_t i = 0; i < vm->n_shares; i++) {
		int w = snprintf(s + len, cap - len, "%s %s virtiofs defaults,nofail 0 0\n",
				 vm->shares[i].tag, vm->shares[i].guest);

		if (w < 0 || (size_t)w >= cap - len) {
			free(s);
			return -ENAMETOOLONG;
		}
		len += (size_t)w;
	}
	*out = s;
	return 0;
}
