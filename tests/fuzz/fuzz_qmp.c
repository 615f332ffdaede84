// SPDX-License-Identifier: MIT
/*
 * fuzz_qmp: arbitrary bytes as the monitor's side of a QMP connection.
 *
 * The first byte picks where the fuzzed bytes start: 0 (even) feeds them
 * from the very first byte, so the greeting parser sees them; 1 (odd)
 * prefixes a valid greeting and qmp_capabilities reply, so the bytes reach
 * the reply/event side.  The client then runs query-status twice (ids 2
 * and 3) and qmp_process() until the stream ends.  The peer's end is shut
 * after the bytes, so every wait ends with EOF rather than a timeout.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "qmp/qmp.h"
#include "src/log.h"

static const char prefix[] =
	"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, "
	"\"package\": \"\"}, \"capabilities\": []}}\r\n{\"return\": {}, \"id\": 1}\r\n";

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
	return send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)n ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *devnull;
	struct qmp *q = NULL;
	enum qmp_runstate st;
	char name[32];
	json_t *r = NULL;
	int sv[2], rc;

	if (!devnull) {
		devnull = fopen("/dev/null", "w");
		log_init("fuzz_qmp", LOG_LVL_DEBUG);
		log_set_file(devnull);
	}
	if (size < 1 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return 0;
	if ((data[0] & 1) && put(sv[1], prefix, sizeof(prefix) - 1) < 0)
		goto out;
	if (size > 1 && put(sv[1], data + 1, size - 1) < 0)
		goto out;
	shutdown(sv[1], SHUT_WR);

	rc = qmp_open_fd(sv[0], 2000, &q);
	if (rc < 0) {
		close(sv[0]);
		goto out;
	}
	qmp_set_event_cb(q, on_event, NULL);
	rc = qmp_command(q, "query-status", NULL, &r, 2000);
	json_decref(r);
	if (rc == -EIO)
		qmp_last_error(q, NULL);
	qmp_query_status(q, &st, name, sizeof(name), 2000);
	for (int i = 0; i < 64 && qmp_process(q) == 0; i++)
		;
	qmp_close(q);
out:
	close(sv[1]);
	return 0;
}
