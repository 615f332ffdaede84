// SPDX-License-Identifier: MIT
/*
 * qmp_client SOCKET STEP...: drives the qmp library against a real QEMU for
 * tests/qmp/t-real-qemu.sh.  Each step prints one line on stdout:
 *   version            "version: MAJOR.MINOR.MICRO"
 *   status             "status: <enum name> <qemu name>"
 *   stop|cont|powerdown|quit   "<step>: ok" or "<step>: <rc> <class>"
 *   cmd:NAME           "cmd NAME: ok" / "cmd NAME: <rc> <class>"
 *   wait:EVENT         "wait EVENT: ok" once the event was seen (now or
 *                      before), "wait EVENT: timeout" after 60 s
 *   eof                "eof: ok" once QEMU closed the socket
 * Every event received is also printed as "event: NAME KIND [reason=R]".
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qmp/qmp.h"
#include "src/log.h"
#include "src/util.h"

#define WAIT_MS 60000

static char seen[64][64];
static int n_seen;

static void on_event(struct qmp *q, const struct qmp_event *ev, void *opaque)
{
	const json_t *reason = json_object_get(ev->data, "reason");
	char esc[64], resc[64] = "";

	(void)q;
	(void)opaque;
	log_escape(esc, sizeof(esc), ev->name, strlen(ev->name));
	if (json_is_string(reason))
		log_escape(resc, sizeof(resc), json_string_value(reason), json_string_length(reason));
	printf("event: %s %s%s%s\n", esc, qmp_event_name(ev->kind), resc[0] ? " reason=" : "", resc);
	fflush(stdout);
	if (n_seen < 64)
		snprintf(seen[n_seen++], sizeof(seen[0]), "%s", esc);
}

static bool was_seen(const char *name)
{
	for (int i = 0; i < n_seen; i++)
		if (!strcmp(seen[i], name))
			return true;
	return false;
}

/* Poll until @name was seen (name NULL: until EOF); 0, -ETIMEDOUT, or rc */
static int wait_for(struct qmp *q, const char *name)
{
	uint64_t end = util_monotonic_ms() + WAIT_MS;

	while (!(name && was_seen(name))) {
		struct pollfd pfd = { .fd = qmp_fd(q), .events = POLLIN };
		uint64_t now = util_monotonic_ms();
		int rc;

		if (now >= end)
			return -ETIMEDOUT;
		poll(&pfd, 1, (int)(end - now));
		rc = qmp_process(q);
		if (rc < 0)
			return (name && was_seen(name)) ? 0 : rc;
	}
	return 0;
}

static void result(const char *what, struct qmp *q, int rc)
{
	const char *cls = qmp_last_error(q, NULL);

	if (rc == 0)
		printf("%s: ok\n", what);
	else
		printf("%s: %d %s\n", what, rc, rc == -EIO && cls ? cls : "-");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	struct qmp *q = NULL;
	int rc, fails = 0;

	log_init("qmp_client", getenv("QMP_DEBUG") ? LOG_LVL_DEBUG : LOG_LVL_WARN);
	if (argc < 2) {
		fprintf(stderr, "usage: qmp_client SOCKET STEP...\n");
		return 2;
	}
	rc = qmp_connect(argv[1], WAIT_MS, &q);
	if (rc < 0) {
		printf("connect: %d\n", rc);
		return 1;
	}
	printf("connect: ok\n");
	fflush(stdout);
	qmp_set_event_cb(q, on_event, NULL);
	for (int i = 2; i < argc; i++) {
		const char *s = argv[i];

		if (!strcmp(s, "version")) {
			int ma, mi, mc;

			qmp_version(q, &ma, &mi, &mc);
			printf("version: %d.%d.%d\n", ma, mi, mc);
			continue;
		}
		if (!strcmp(s, "status")) {
			enum qmp_runstate st;
			char name[32];

			rc = qmp_query_status(q, &st, name, sizeof(name), WAIT_MS);
			if (rc == 0) {
				printf("status: %s %s\n", qmp_runstate_name(st), name);
				fflush(stdout);	/* tests wait for this line */
			} else {
				result("status", q, rc);
			}
		} else if (!strcmp(s, "stop")) {
			rc = qmp_stop(q, WAIT_MS);
			result(s, q, rc);
		} else if (!strcmp(s, "cont")) {
			rc = qmp_cont(q, WAIT_MS);
			result(s, q, rc);
		} else if (!strcmp(s, "powerdown")) {
			rc = qmp_system_powerdown(q, WAIT_MS);
			result(s, q, rc);
		} else if (!strcmp(s, "quit")) {
			rc = qmp_quit(q, WAIT_MS);
			result(s, q, rc);
		} else if (!strncmp(s, "cmd:", 4)) {
			char what[128];
			json_t *r = NULL;

			rc = qmp_command(q, s + 4, NULL, &r, WAIT_MS);
			json_decref(r);
			snprintf(what, sizeof(what), "cmd %s", s + 4);
			result(what, q, rc);
		} else if (!strncmp(s, "wait:", 5)) {
			char what[128];

			rc = wait_for(q, s + 5);
			snprintf(what, sizeof(what), "wait %s", s + 5);
			result(what, q, rc);
		} else if (!strcmp(s, "eof")) {
			rc = wait_for(q, NULL);
			rc = rc == -ECONNRESET ? 0 : (rc ? rc : -EPROTO);
			result(s, q, rc);
		} else {
			fprintf(stderr, "unknown step %s\n", s);
			rc = -EINVAL;
		}
		if (rc < 0)
			fails++;
	}
	qmp_close(q);
	return fails ? 1 : 0;
}
