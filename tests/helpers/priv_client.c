// SPDX-License-Identifier: MIT
/*
 * priv_client: talk to hutch-helper the way a hostile caller would.
 *
 *   priv_client HELPER [ARG...]
 *
 * Starts HELPER with a SOCK_SEQPACKET socket on fd 3 (as hutch does) and
 * sends one message per ARG, printing each reply on its own line followed
 * by " fds=N" (received fds are closed).  An ARG is a JSON request, or:
 *   @big:N        N bytes of '{' (an oversized or garbage request)
 *   @raw:TEXT     TEXT as is (truncated or broken JSON)
 *   @withfd:JSON  JSON with an fd (/dev/null) attached
 *   @bench:N      N pings; prints "rtt_us AVG" (mean round trip in microseconds)
 *   @time:JSON    JSON as a request; prints "ms T" (its round trip) after the reply
 *   @hold         wait until stdin closes before hanging up (kill -9 tests)
 *   @map:KIND     {"op":"userns_map","pid":P} for a process P made here:
 *                 child (our child in a new user namespace: after the reply
 *                 it prints "child: uid_map=... gid_map=... setgroups=..."),
 *                 grandchild (same, but not our child), initns (our child,
 *                 no new namespace), written (our child whose namespace it
 *                 mapped itself), nested (our child two namespaces down),
 *                 dead (a child that exited and was reaped)
 * Exit status: 0 when every reply said "ok": true, 1 otherwise, 2 on errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REPLY_MAX 65536

static int send_msg(int s, const char *buf, size_t n, int fd)
{
	union {
		char c[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { (void *)buf, n };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (fd >= 0) {
		struct cmsghdr *cm;

		memset(&u, 0, sizeof(u));
		mh.msg_control = u.c;
		mh.msg_controllen = sizeof(u.c);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	return sendmsg(s, &mh, MSG_NOSIGNAL) == (ssize_t)n ? 0 : -1;
}

/* one reply: printed (unless @quiet); returns 1 for "ok": true, 0 for not, -1 on EOF */
static int recv_reply(int s, char *buf, int quiet)
{
	union {
		char c[CMSG_SPACE(8 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { buf, REPLY_MAX - 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.c,
			     .msg_controllen = sizeof(u.c) };
	int nfds = 0;
	ssize_t r = recvmsg(s, &mh, 0);

	if (r <= 0)
		return -1;
	buf[r] = 0;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		int k = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));

		for (int i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			close(fd);
			nfds++;
		}
	}
	if (!quiet)
		printf("%s fds=%d\n", buf, nfds);
	return strstr(buf, "\"ok\":true") != NULL;
}

static void put(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY);

	if (fd >= 0) {
		if (write(fd, text, strlen(text)) < 0)
			perror(path);
		close(fd);
	}
}

/* a map file's one line, or "-" */
static void getmap(const char *path, char *out, size_t n)
{
	int fd = open(path, O_RDONLY);
	ssize_t r = fd < 0 ? -1 : read(fd, out, n - 1);

	if (fd >= 0)
		close(fd);
	if (r <= 0)
		snprintf(out, n, "-");
	else
		out[r] = 0;
	for (char *c = out; *c; c++)
		if (*c == '\n' || *c == '\t')
			*c = ' ';
}

/* the target of @map:KIND: tells the parent it is ready on @ready, waits on @go */
static void map_target(const char *kind, int ready, int go)
{
	char um[64], gm[64], c;
	unsigned uid = (unsigned)getuid(), gid = (unsigned)getgid();	/* unmapped after unshare */
	int sg, ng;
	pid_t me;

	if (!strcmp(kind, "grandchild")) {
		pid_t g = fork();

		if (g != 0) {	/* the middle process: the grandchild's parent; waits */
			if (read(go, &c, 1) < 0)
				_exit(1);
			kill(g, SIGKILL);
			_exit(0);
		}
	}
	if (strcmp(kind, "initns") && unshare(CLONE_NEWUSER) < 0)
		_exit(3);
	if (!strcmp(kind, "written") || !strcmp(kind, "nested")) {
		/* a nested namespace needs our ids mapped in this one first */
		snprintf(um, sizeof(um), "0 %u 1\n", uid);
		snprintf(gm, sizeof(gm), "0 %u 1\n", gid);
		put("/proc/self/setgroups", "deny");
		put("/proc/self/uid_map", um);
		put("/proc/self/gid_map", gm);
	}
	if (!strcmp(kind, "nested") && unshare(CLONE_NEWUSER) < 0)
		_exit(3);
	me = getpid();
	if (write(ready, &me, sizeof(me)) != sizeof(me) || read(go, &c, 1) < 0)
		_exit(1);
	if (strcmp(kind, "child"))
		_exit(0);
	getmap("/proc/self/uid_map", um, sizeof(um));
	getmap("/proc/self/gid_map", gm, sizeof(gm));
	sg = setgroups(0, NULL) == 0 ? 0 : errno;
	ng = getgroups(0, NULL);
	printf("child: uid_map=%s gid_map=%s setgroups=%s groups=%d\n", um, gm,
	       sg ? strerror(sg) : "ok", ng);
	fflush(stdout);
	_exit(0);
}

static int map_one(int s, const char *kind, char *buf)
{
	int ready[2], go[2], rc, st;
	char req[96];
	pid_t pid, target = 0;

	signal(SIGPIPE, SIG_IGN);	/* "go" to a target that is gone */
	if (pipe(ready) < 0 || pipe(go) < 0)
		return 2;
	pid = fork();
	if (pid == 0) {
		close(ready[0]);
		close(go[1]);
		if (!strcmp(kind, "dead"))
			_exit(0);
		map_target(kind, ready[1], go[0]);
	}
	close(ready[1]);
	close(go[0]);
	if (!strcmp(kind, "dead"))
		waitpid(pid, &st, 0);	/* reaped: its pid names nothing now */
	if (!strcmp(kind, "dead"))
		target = pid;
	else if (read(ready[0], &target, sizeof(target)) != sizeof(target))
		return 2;
	snprintf(req, sizeof(req), "{\"op\":\"userns_map\",\"pid\":%d}", (int)target);
	rc = send_msg(s, req, strlen(req), -1) ? -1 : recv_reply(s, buf, 0);
	if (write(go[1], "x", 1) < 0)
		perror("go");
	close(go[1]);
	close(ready[0]);
	if (strcmp(kind, "dead"))
		waitpid(pid, &st, 0);
	return rc == 1 ? 0 : rc < 0 ? 2 : 1;
}

static int bench(int s, char *buf, long n)
{
	static const char ping[] = "{\"op\":\"ping\"}";
	struct timespec a, b;

	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < n; i++)
		if (send_msg(s, ping, sizeof(ping) - 1, -1) || recv_reply(s, buf, 1) != 1)
			return 1;
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("rtt_us %.1f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / 1e3 / n);
	return 0;
}

static int one(int s, const char *arg, char *buf)
{
	int fd = -1, rc;

	if (!strncmp(arg, "@big:", 5)) {
		long n = strtol(arg + 5, NULL, 10);
		char *big = malloc((size_t)n);

		if (!big)
			return 2;
		memset(big, '{', (size_t)n);
		rc = send_msg(s, big, (size_t)n, -1);
		free(big);
	} else if (!strncmp(arg, "@raw:", 5)) {
		rc = send_msg(s, arg + 5, strlen(arg + 5), -1);
	} else if (!strncmp(arg, "@withfd:", 8)) {
		fd = open("/dev/null", O_RDONLY);
		rc = send_msg(s, arg + 8, strlen(arg + 8), fd);
		close(fd);
	} else if (!strncmp(arg, "@time:", 6)) {
		struct timespec a, b;

		clock_gettime(CLOCK_MONOTONIC, &a);
		if (send_msg(s, arg + 6, strlen(arg + 6), -1))
			return 2;
		rc = recv_reply(s, buf, 0);
		clock_gettime(CLOCK_MONOTONIC, &b);
		printf("ms %.2f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / 1e6);
		return rc == 1 ? 0 : rc < 0 ? 2 : 1;
	} else if (!strncmp(arg, "@bench:", 7)) {
		return bench(s, buf, strtol(arg + 7, NULL, 10));
	} else if (!strncmp(arg, "@map:", 5)) {
		return map_one(s, arg + 5, buf);
	} else if (!strcmp(arg, "@hold")) {
		char c;

		while (read(0, &c, 1) > 0)
			;
		return 0;
	} else {
		rc = send_msg(s, arg, strlen(arg), -1);
	}
	if (rc) {
		perror("send");
		return 2;
	}
	rc = recv_reply(s, buf, 0);
	if (rc < 0) {
		printf("EOF\n");
		return 2;
	}
	return rc ? 0 : 1;
}

int main(int argc, char **argv)
{
	int sv[2], ret = 0, status;
	char *buf = malloc(REPLY_MAX);
	pid_t pid;

	if (argc < 2 || !buf) {
		fprintf(stderr, "usage: priv_client HELPER [REQUEST...]\n");
		return 2;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return 2;
	pid = fork();
	if (pid == 0) {
		if (dup2(sv[1], 3) < 0)
			_exit(127);
		execl(argv[1], argv[1], (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 2; i < argc; i++) {
		int rc = one(sv[0], argv[i], buf);

		if (rc > ret)
			ret = rc;
		if (rc == 2)
			break;
	}
	close(sv[0]);
	waitpid(pid, &status, 0);
	free(buf);
	return ret;
}
