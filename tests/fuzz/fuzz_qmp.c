// SPDX-License-Identifier: MIT
/*
 * fuzz_qmp: arbitrary bytes as the monitor's side of a QMP connection.
 *
 * The first byte picks the mode.  Even: the bytes are the whole stream from
 * the first byte on, so the greeting parser sees them.  Odd: a fake monitor
 * (a thread on the other end of a socketpair) plays QEMU: it sends a valid
 * greeting, waits for qmp_capabilities and answers it with its id, and only
 * then sends the fuzzed bytes, so events and command replies are what gets
 * fuzzed.  The client reads ahead, so a reply written before its command was
 * sent would be dropped as "a reply to no command": the bytes are therefore
 * split at NUL bytes into segments, the first sent right after the
 * handshake and each next one after the monitor read the client's next
 * command (query-status twice, ids 2 and 3, then a "stop" with id 4).  The
 * client then runs qmp_process() until the stream ends.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "qmp/qmp.h"
#include "src/log.h"

static const char greeting[] =
	"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, "
	"\"package\": \"\"}, \"capabilities\": [\"oob\"]}}\r\n";

#define CMD_MS 20

struct monitor {
	int fd;
	const uint8_t *data;
	size_t size;
};

static size_t n_events;

static void on_event(struct qmp *q, const struct qmp_event *ev, void *opaque)
{
	char esc[64];

	(void)q;
	(void)opaque;
	/* touch what a callback would: the name, the kind, the data */
	log_escape(esc, sizeof(esc), ev->name, strlen(ev->name));
	if (ev->data && json_object_size(ev->data) > 1000000)
		n_events--;
	n_events += (size_t)ev->kind + 1;
}

static int put(int fd, const void *p, size_t n)
{
	/* the socket buffer holds far more than -max_len; never block */
	return n == 0 || send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)n ? 0 : -1;
}

/*
 * Read what the client sent up to the end of one line (a command; it sends
 * the next only after this one's answer or timeout); 0, or -1 on EOF, error
 * or 2 s of silence
 */
static int get_line(int fd)
{
	char buf[512];

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (poll(&p, 1, 2000) <= 0)
			return -1;
		r = read(fd, buf, sizeof(buf));
		if (r <= 0)
			return -1;
		if (memchr(buf, '\n', (size_t)r))
			return 0;
	}
}

/* The next NUL-separated segment of @m's data; false when none is left */
static bool next_segment(struct monitor *m, const uint8_t **seg, size_t *len)
{
	const uint8_t *nul;

	if (!m->data)
		return false;
	*seg = m->data;
	nul = memchr(m->data, 0, m->size);
	*len = nul ? (size_t)(nul - m->data) : m->size;
	if (nul) {
		m->size -= *len + 1;
		m->data = nul + 1;
	} else {
		m->data = NULL;
	}
	return true;
}

static void *monitor_run(void *arg)
{
	struct monitor *m = arg;
	const uint8_t *seg;
	size_t len;
	char c;

	if (put(m->fd, greeting, sizeof(greeting) - 1) || get_line(m->fd) ||
	    put(m->fd, "{\"return\": {}, \"id\": 1}\r\n", 25))
		goto out;
	if (next_segment(m, &seg, &len) && put(m->fd, seg, len))
		goto out;
	while (next_segment(m, &seg, &len)) {
		if (get_line(m->fd) || put(m->fd, seg, len))
			break;
	}
out:
	shutdown(m->fd, SHUT_WR);
	while (read(m->fd, &c, 1) > 0)	/* until the client closes: its writes never block */
		;
	return NULL;
}

static void client(int fd)
{
	struct qmp *q = NULL;
	enum qmp_runstate st;
	char name[32];
	json_t *r = NULL;
	int rc;

	/* short timeouts: a reply the fuzzed bytes lack costs this much per run */
	rc = qmp_open_fd(fd, 500, &q);
	if (rc < 0) {
		close(fd);
		return;
	}
	qmp_set_event_cb(q, on_event, NULL);
	rc = qmp_command(q, "query-status", NULL, &r, CMD_MS);
	json_decref(r);
	if (rc == -EIO)
		qmp_last_error(q, NULL);
	qmp_query_status(q, &st, name, sizeof(name), CMD_MS);
	r = NULL;
	qmp_command(q, "stop", NULL, &r, CMD_MS);
	json_decref(r);
	for (int i = 0; i < 64 && qmp_process(q) == 0; i++)
		;
	qmp_close(q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *devnull;
	struct monitor m;
	pthread_t th;
	int sv[2];

	if (!devnull) {
		devnull = fopen("/dev/null", "w");
		log_init("fuzz_qmp", LOG_LVL_DEBUG);
		log_set_file(devnull);
	}
	if (size < 1 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return 0;
	if (!(data[0] & 1)) {
		/* the raw stream: greeting parser and everything after it */
		if (put(sv[1], data + 1, size - 1) == 0) {
			shutdown(sv[1], SHUT_WR);
			client(sv[0]);
		} else {
			close(sv[0]);
		}
		close(sv[1]);
		return 0;
	}
	m = (struct monitor){ .fd = sv[1], .data = size > 1 ? data + 1 : NULL, .size = size - 1 };
	if (pthread_create(&th, NULL, monitor_run, &m)) {
		close(sv[0]);
		close(sv[1]);
		return 0;
	}
	client(sv[0]);	/* closes sv[0], which ends the monitor */
	pthread_join(th, NULL);
	close(sv[1]);
	return 0;
}
