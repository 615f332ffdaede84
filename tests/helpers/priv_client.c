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
 * Exit status: 0 when every reply said "ok": true, 1 otherwise, 2 on errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
