// SPDX-License-Identifier: MIT
/*
 * wireguard-go, for hosts whose kernel has no WireGuard module.
 *
 * hutch makes the tun device itself (so the name and the moment it exists
 * are hutch's) and the UAPI listening socket (so configuring cannot race
 * the daemon's start: a connect() queues in the backlog until it accepts),
 * and hands both to `wireguard-go -f` by fd (WG_TUN_FD, WG_UAPI_FD).  The
 * daemon runs in the foreground as the supervisor's child, with
 * PR_SET_PDEATHSIG: when the supervisor dies, so does it, and with it the
 * tun (hutch keeps no fd of it), so its routes go too.  The socket must sit
 * at /var/run/wireguard/<if>.sock: wireguard-go watches that path.
 *
 * The UAPI protocol (https://www.wireguard.com/xplatform/) is line-based
 * "key=value" text ending with an empty line; keys are hex.  The answer to
 * "get=1" comes from another process: it is parsed with bounds and every
 * number range-checked.
 */
#include "net/wg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/net.h"
#include "src/log.h"
#include "src/proc.h"
#include "src/util.h"

#define WG_UAPI_MAX   (64 * 1024)
#define WG_UAPI_MS    5000

int wg_uapi_path(const char *ifname, char *buf, size_t n)
{
	if (!net_ifname_valid(ifname))
		return -EINVAL;
	return util_snprintf(buf, n, WG_UAPI_DIR "/%s.sock", ifname);
}

/* ---- text ------------------------------------------------------------- */

static void hex32(const uint8_t k[WG_KEY_LEN], char out[2 * WG_KEY_LEN + 1])
{
	static const char h[] = "0123456789abcdef";

	for (size_t i = 0; i < WG_KEY_LEN; i++) {
		out[2 * i] = h[k[i] >> 4];
		out[2 * i + 1] = h[k[i] & 15];
	}
	out[2 * WG_KEY_LEN] = 0;
}

/* append to @buf at *@off; -ENOSPC sticks */
__attribute__((format(printf, 4, 5)))
static int put(char *buf, size_t n, size_t *off, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (*off >= n)
		return -ENOSPC;
	va_start(ap, fmt);
	r = vsnprintf(buf + *off, n - *off, fmt, ap);
	va_end(ap);
	if (r < 0 || (size_t)r >= n - *off) {
		*off = n;
		return -ENOSPC;
	}
	*off += (size_t)r;
	return 0;
}

int wg_uapi_set_text(const struct wg_spec *s, char *buf, size_t n, size_t *len)
{
	const struct wg_conf *c = s->conf;
	char k[2 * WG_KEY_LEN + 1], ep[80], a[64];
	size_t off = 0;
	int rc = 0;

	if (wg_sockaddr_str(&s->endpoint, ep, sizeof(ep)))
		return -EINVAL;
	hex32(c->private_key, k);
	rc |= put(buf, n, &off, "set=1\nprivate_key=%s\nlisten_port=%u\nreplace_peers=true\n", k,
		  c->listen_port);
	hex32(c->peer.public_key, k);
	rc |= put(buf, n, &off, "public_key=%s\n", k);
	if (c->peer.has_psk) {
		hex32(c->peer.psk, k);
		rc |= put(buf, n, &off, "preshared_key=%s\n", k);
	}
	explicit_bzero(k, sizeof(k));
	rc |= put(buf, n, &off, "endpoint=%s\npersistent_keepalive_interval=%u\nreplace_allowed_ips=true\n",
		  ep, c->peer.keepalive);
	for (size_t i = 0; i < c->peer.n_allowed; i++) {
		if (wg_cidr_str(&c->peer.allowed[i], a, sizeof(a)))
			return -EINVAL;
		rc |= put(buf, n, &off, "allowed_ip=%s\n", a);
	}
	rc |= put(buf, n, &off, "\n");
	if (rc)
		return -ENOSPC;
	*len = off;
	return 0;
}

static int unhex32(const char *s, size_t n, uint8_t out[WG_KEY_LEN])
{
	if (n != 2 * WG_KEY_LEN)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;

		if (v < 0)
			return -EINVAL;
		out[i / 2] = (uint8_t)(i % 2 ? (out[i / 2] | v) : v << 4);
	}
	return 0;
}

static int u64_parse(const char *s, uint64_t max, uint64_t *out)
{
	unsigned long v;

	if (util_parse_ulong_base(s, 10, max > ULONG_MAX ? ULONG_MAX : (unsigned long)max, &v))
		return -EINVAL;
	*out = v;
	return 0;
}

/* "1.2.3.4:51820" or "[v6]:51820" */
static int endpoint_parse(const char *s, struct sockaddr_storage *ss)
{
	char host[INET6_ADDRSTRLEN];
	const char *colon = strrchr(s, ':');
	size_t n;
	uint64_t port;

	if (!colon || u64_parse(colon + 1, 65535, &port))
		return -EINVAL;
	n = (size_t)(colon - s);
	if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		if (n - 2 >= sizeof(host))
			return -EINVAL;
		memcpy(host, s + 1, n - 2);
		host[n - 2] = 0;
		memset(ss, 0, sizeof(*ss));
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		return inet_pton(AF_INET6, host, &a->sin6_addr) == 1 ? 0 : -EINVAL;
	}
	if (n >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, n);
	host[n] = 0;
	{
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		memset(ss, 0, sizeof(*ss));
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -EINVAL;
	}
}

/* one "key=value" of a get answer; peers after the first are ignored */
static int uapi_kv(const char *k, const char *v, struct wg_live *l, int *peers)
{
	uint64_t u;

	if (!strcmp(k, "public_key")) {
		if (++*peers == 1) {
			if (unhex32(v, strlen(v), l->peer_key))
				return -EPROTO;
			l->has_peer = true;
		}
		return 0;
	}
	if (!strcmp(k, "errno"))
		return u64_parse(v, 0x7fffffff, &u) || u ? -EPROTO : 0;
	if (*peers != 1)
		return 0;
	if (!strcmp(k, "endpoint"))
		return endpoint_parse(v, &l->endpoint) ? -EPROTO : 0;
	if (!strcmp(k, "last_handshake_time_sec")) {
		if (u64_parse(v, INT64_MAX, &u))
			return -EPROTO;
		l->handshake = (int64_t)u;
	} else if (!strcmp(k, "rx_bytes")) {
		if (u64_parse(v, UINT64_MAX, &l->rx))
			return -EPROTO;
	} else if (!strcmp(k, "tx_bytes")) {
		if (u64_parse(v, UINT64_MAX, &l->tx))
			return -EPROTO;
	} else if (!strcmp(k, "persistent_keepalive_interval")) {
		if (u64_parse(v, 65535, &u))
			return -EPROTO;
		l->keepalive = (uint16_t)u;
	}
	return 0;
}

int wg_uapi_parse(const char *buf, size_t len, struct wg_live *out)
{
	struct wg_live l = { 0 };
	char line[256];
	size_t off = 0;
	int peers = 0, rc;

	if (len > WG_UAPI_MAX)
		return -EMSGSIZE;
	while (off < len) {
		const char *nl = memchr(buf + off, '\n', len - off);
		size_t n = nl ? (size_t)(nl - (buf + off)) : len - off;
		char *eq;

		if (!nl)
			return -EPROTO;	/* every line ends with \n */
		if (n == 0)
			break;		/* the empty line ends the answer */
		if (n >= sizeof(line) || memchr(buf + off, 0, n))
			return -EPROTO;
		memcpy(line, buf + off, n);
		line[n] = 0;
		off += n + 1;
		eq = strchr(line, '=');
		if (!eq || eq == line)
			return -EPROTO;
		*eq = 0;
		if ((rc = uapi_kv(line, eq + 1, &l, &peers)))
			return rc;
	}
	*out = l;
	return 0;
}

/* ---- the socket ------------------------------------------------------- */

/* send @req to the UAPI socket at @path, read the answer up to its empty line */
static int uapi_talk(const char *path, const char *req, size_t rn, char *resp, size_t n,
		     size_t *got)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint64_t deadline = util_monotonic_ms() + WG_UAPI_MS;
	size_t have = 0;
	int fd, rc;

	if ((rc = util_snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path)))
		return rc;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    (rc = util_write_all(fd, req, rn)) != 0) {
		rc = rc ? rc : -errno;
		goto out;
	}
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		uint64_t now = util_monotonic_ms();
		ssize_t r;

		if (have >= 2 && resp[have - 1] == '\n' && resp[have - 2] == '\n')
			break;
		if (now >= deadline) {
			rc = -ETIMEDOUT;
			goto out;
		}
		if (poll(&p, 1, (int)(deadline - now)) < 0 && errno != EINTR) {
			rc = -errno;
			goto out;
		}
		r = read(fd, resp + have, n - have);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r < 0) {
			rc = -errno;
			goto out;
		}
		if (r == 0) {
			rc = -ECONNRESET;
			goto out;
		}
		have += (size_t)r;
		if (have >= n) {
			rc = -EMSGSIZE;
			goto out;
		}
	}
	*got = have;
	rc = 0;
out:
	close(fd);
	return rc;
}

int wg_go_get(const char *uapi, struct wg_live *out)
{
	char *resp;
	size_t got = 0;
	int rc;

	if (!uapi || !uapi[0])
		return -ENOENT;
	resp = malloc(WG_UAPI_MAX);
	if (!resp)
		return -ENOMEM;
	rc = uapi_talk(uapi, "get=1\n\n", 7, resp, WG_UAPI_MAX, &got);
	if (!rc)
		rc = wg_uapi_parse(resp, got, out);
	/* the answer holds the private key */
	explicit_bzero(resp, WG_UAPI_MAX);
	free(resp);
	return rc;
}

/* configure over UAPI: the answer is "errno=0" and an empty line */
static int go_set(const struct wg_spec *s, const char *path)
{
	char *req = malloc(WG_UAPI_MAX), resp[256];
	size_t n = 0, got = 0;
	struct wg_live l;
	int rc;

	if (!req)
		return -ENOMEM;
	rc = wg_uapi_set_text(s, req, WG_UAPI_MAX, &n);
	if (!rc)
		rc = uapi_talk(path, req, n, resp, sizeof(resp), &got);
	explicit_bzero(req, WG_UAPI_MAX);
	free(req);
	if (!rc && wg_uapi_parse(resp, got, &l))
		rc = -EPROTO;
	if (rc)
		log_errno(rc, "wireguard-go: configuring %s", s->ifname);
	return rc;
}

/* ---- the daemon ------------------------------------------------------- */

static int go_tun_open(const char *ifname)
{
	struct ifreq ifr = { .ifr_flags = IFF_TUN | IFF_TUN_EXCL };
	int fd, rc;

	if ((rc = util_snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname)))
		return rc;
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETPERSIST, 0UL) < 0) {
		rc = errno == EBUSY ? -EEXIST : -errno;
		close(fd);
		return rc;
	}
	return fd;
}

/*
 * wireguard-go watches its socket with inotify, which needs read access to
 * it: the socket belongs to whoever runs the daemon.  In hutch-helper that
 * is the caller already (the file system uid); root hands it to the VM user.
 */
static int uapi_owner(const char *path)
{
	struct proc_user u;
	int rc;

	if (geteuid() != 0)
		return 0;
	if ((rc = proc_user_resolve(&u)))
		return rc;
	if (u.switch_ids && chown(path, u.uid, u.gid) < 0)
		return -errno;
	return 0;
}

static int uapi_listen(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat sb;
	int fd, rc;

	/*
	 * Root makes the directory; hutch-helper must not (it would be the
	 * caller's, who could then replace root's sockets): `hutch setup`
	 * makes it, and its tmpfiles.d entry after a reboot.
	 */
	if (geteuid() == 0 && mkdir(WG_UAPI_DIR, 0755) < 0 && errno != EEXIST)
		return -errno;
	if ((rc = util_snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path)))
		return rc;
	/* a socket of ours left by a dead daemon; hw-<random> is never another's */
	if (lstat(path, &sb) == 0 && S_ISSOCK(sb.st_mode))
		unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0600) < 0 ||
	    (rc = uapi_owner(path)) < 0 || listen(fd, 8) < 0) {
		rc = rc < 0 ? rc : -errno;
		close(fd);
		unlink(path);
		return rc;
	}
	return fd;
}

/*
 * wireguard-go sets its tun's MTU at start (SIOCSIFMTU, which needs
 * CAP_NET_ADMIN), even on a tun it was handed.  The privileged side has set
 * the MTU of wireguard.conf already, so that one ioctl is made to succeed
 * without running, and the daemon (which parses every packet the peer
 * sends) needs no capability at all.  Everything else is allowed: this
 * filter grants nothing, it only takes a step away.
 */
#if defined(__x86_64__)
#define GO_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define GO_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif
static const struct sock_filter go_filter[] = {
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, GO_AUDIT_ARCH, 1, 0),
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_ioctl, 0, 3),
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SIOCSIFMTU, 0, 1),
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | 0),	/* returns 0, does nothing */
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
};

static int go_spawn(const char *ifname, int tun, int lsn, struct wg_link *l)
{
	static const struct sock_fprog prog = { .len = UTIL_ARRAY_SIZE(go_filter),
						.filter = (struct sock_filter *)go_filter };
	char exe[4096];
	const char *argv[] = { exe, "-f", ifname, NULL };
	const char *const *denv = proc_default_env();
	const char *env[24];
	struct proc_fdmap fds[] = { { tun, 3 }, { lsn, 4 }, { STDERR_FILENO, 1 }, { STDERR_FILENO, 2 } };
	struct proc_user u;
	struct proc_sandbox sb;
	struct proc_opts o = { .argv = argv, .envp = env, .fds = fds, .n_fds = UTIL_ARRAY_SIZE(fds),
			       .cwd = "/", .want_pidfd = true, .pdeathsig = SIGTERM, .sb = &sb };
	size_t n = 0;
	int rc;

	if ((rc = proc_find_exe("wireguard-go", NULL, exe, sizeof(exe)))) {
		log_err("wireguard-go is not installed and the kernel has no WireGuard module: "
			"install one of them (apt install wireguard-go)");
		return -ENOENT;
	}
	/* as the user, never root: as hooks are (no capabilities, no_new_privs) */
	if ((rc = proc_user_resolve(&u)))
		return rc;
	proc_sandbox_user(&sb, &u);
	sb.filter = &prog;
	for (size_t i = 0; denv[i] && n < UTIL_ARRAY_SIZE(env) - 5; i++)
		env[n++] = denv[i];
	env[n++] = "WG_TUN_FD=3";
	env[n++] = "WG_UAPI_FD=4";
	env[n++] = "WG_PROCESS_FOREGROUND=1";
	env[n++] = "LOG_LEVEL=error";
	env[n] = NULL;
	return proc_spawn(&o, &l->pid, &l->pidfd);
}

int wg_go_tun(const char *ifname, int fds[2])
{
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int rc;

	if ((rc = wg_uapi_path(ifname, path, sizeof(path))))
		return rc;
	fds[0] = go_tun_open(ifname);
	if (fds[0] < 0) {
		log_errno(fds[0], "wireguard-go: tun %s", ifname);
		return fds[0];
	}
	fds[1] = uapi_listen(path);
	if (fds[1] < 0) {
		rc = fds[1];
		if (rc == -ENOENT)
			log_err("wireguard-go: %s is missing: run 'sudo hutch setup' once more", WG_UAPI_DIR);
		else
			log_errno(rc, "wireguard-go: socket %s", path);
		close(fds[0]);
		fds[0] = fds[1] = -1;
		return rc;
	}
	return 0;
}

int wg_go_run(const struct wg_spec *s, const int fds[2], struct wg_link *l)
{
	int rc;

	if ((rc = wg_uapi_path(s->ifname, l->uapi, sizeof(l->uapi))))
		return rc;
	rc = go_spawn(s->ifname, fds[0], fds[1], l);
	if (rc)
		return rc;
	l->impl = WG_IMPL_GO;
	rc = go_set(s, l->uapi);
	if (rc) {
		wg_go_kill(l->pid, s->ifname);
		close(l->pidfd);
		l->pidfd = -1;
		l->pid = 0;
	}
	return rc;
}

/* NUL-separated /proc/<pid>/cmdline holds "wireguard-go" and @ifname */
static bool go_is_ours(pid_t pid, const char *ifname)
{
	char path[64], cmd[1024];
	bool exe = false, name = false;
	ssize_t r;
	int fd;

	if (util_snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid))
		return false;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	r = read(fd, cmd, sizeof(cmd) - 1);
	close(fd);
	if (r <= 0)
		return false;
	cmd[r] = 0;
	for (ssize_t off = 0; off < r; off += (ssize_t)strlen(cmd + off) + 1) {
		const char *slash = strrchr(cmd + off, '/');

		if (!strcmp(slash ? slash + 1 : cmd + off, "wireguard-go"))
			exe = true;
		if (!strcmp(cmd + off, ifname))
			name = true;
	}
	return exe && name;
}

int wg_go_kill(pid_t pid, const char *ifname)
{
	int fd;

	if (pid <= 1 || !go_is_ours(pid, ifname))
		return 0;
	fd = proc_pidfd_open(pid);
	kill(pid, SIGTERM);
	if (fd >= 0) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, 2000) <= 0) {
			kill(pid, SIGKILL);
			poll(&p, 1, 2000);
		}
		close(fd);
	}
	/* the supervisor's child: reap it (in gc it is not ours: ECHILD) */
	waitpid(pid, NULL, WNOHANG);
	return 1;
}
