// SPDX-License-Identifier: MIT
/*
 * The QMP client against a fake monitor: a forked child on the other end
 * of a socketpair plays QEMU, following a script per scenario, and exits
 * non-zero if the client did not send what QEMU would expect.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "qmp/qmp.h"
#include "src/log.h"
#include "src/util.h"
#include "tests/unit/tap.h"

#define GREETING                                                                       \
	"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 1, \"minor\": 2, \"major\": 7}, " \
	"\"package\": \"Debian \\u001b[31m\"}, \"capabilities\": [\"oob\"]}}\r\n"
#define T_MS 5000

/* ---- the fake monitor (runs in the child) -------------------------- */

static int srv_fd = -1;

static _Noreturn void srv_die(int code)
{
	_exit(code);
}

static void srv_send(const char *s)
{
	size_t n = strlen(s), off = 0;

	while (off < n) {
		ssize_t w = send(srv_fd, s + off, n - off, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			srv_die(0);	/* client went away: its test decides */
		off += (size_t)w;
	}
}

static void srv_sendf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void srv_sendf(const char *fmt, ...)
{
	char buf[4096];
	va_list ap;

	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || n >= (int)sizeof(buf))
		srv_die(90);
	srv_send(buf);
}

/* One line from the client, parsed; NULL on EOF */
static json_t *srv_recv(void)
{
	char line[65536];
	size_t n = 0;

	for (;;) {
		ssize_t r = read(srv_fd, line + n, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return NULL;
		if (line[n] == '\n')
			break;
		if (++n >= sizeof(line))
			srv_die(91);
	}
	return json_loadb(line, n, 0, NULL);
}

/* Expect command @name (exit 3 otherwise); returns its id, *@args borrowed */
static long long srv_expect(const char *name, json_t **msgp)
{
	json_t *m = srv_recv();
	json_t *id;
	long long v;

	if (!m)
		srv_die(2);
	if (!json_is_string(json_object_get(m, "execute")) ||
	    strcmp(json_string_value(json_object_get(m, "execute")), name) != 0)
		srv_die(3);
	id = json_object_get(m, "id");
	if (!json_is_integer(id))
		srv_die(4);
	v = json_integer_value(id);
	if (msgp)
		*msgp = m;
	else
		json_decref(m);
	return v;
}

static void srv_reply(long long id, const char *ret)
{
	srv_sendf("{\"return\": %s, \"id\": %lld}\r\n", ret, id);
}

static void srv_event(const char *name)
{
	srv_sendf("{\"timestamp\": {\"seconds\": 1700000000, \"microseconds\": 42}, "
		  "\"event\": \"%s\"}\r\n", name);
}

static void srv_greet(void)
{
	srv_send(GREETING);
	srv_reply(srv_expect("qmp_capabilities", NULL), "{}");
}

/* Wait until the client closes its end */
static void srv_eof(void)
{
	char c;

	while (read(srv_fd, &c, 1) > 0 || errno == EINTR)
		;
}

typedef void (*srv_fn)(void);

static pid_t fake_start(srv_fn fn, int *cfd)
{
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		close(sv[0]);
		srv_fd = sv[1];
		fn();
		srv_eof();
		_exit(0);
	}
	close(sv[1]);
	*cfd = sv[0];
	return pid;
}

/* The child's exit code: 0 when the client behaved as QEMU expects */
static int fake_end(pid_t pid)
{
	int st;

	if (pid <= 0 || waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Start a fake monitor and connect to it; the fd is owned by *qp */
static pid_t fake_open(srv_fn fn, struct qmp **qp, int *rcp)
{
	int fd = -1, rc;
	pid_t pid = fake_start(fn, &fd);

	rc = qmp_open_fd(fd, T_MS, qp);
	if (rc < 0) {
		close(fd);
		*qp = NULL;
	}
	*rcp = rc;
	return pid;
}

/* ---- event recording (parent) ---------------------------------------- */

struct rec {
	int n;
	enum qmp_event_kind kind[4096];
	char name[8][64];
	long long ts_sec, ts_usec;
	int data_objects;
};

static void rec_cb(struct qmp *q, const struct qmp_event *ev, void *opaque)
{
	struct rec *r = opaque;

	(void)q;
	if (r->n < 8)
		snprintf(r->name[r->n], sizeof(r->name[0]), "%s", ev->name);
	if (r->n < 4096)
		r->kind[r->n] = ev->kind;
	r->n++;
	r->ts_sec = ev->ts_sec;
	r->ts_usec = ev->ts_usec;
	if (ev->data && json_is_object(ev->data))
		r->data_objects++;
}

/* ---- scenarios --------------------------------------------------------- */

static void srv_basic(void)
{
	json_t *m;
	long long id1, id2;

	srv_greet();
	/* arguments are passed through as an object */
	id1 = srv_expect("echo", &m);
	srv_sendf("{\"return\": %s, \"id\": %lld}\r\n",
		  json_dumps(json_object_get(m, "arguments"), JSON_COMPACT), id1);
	id2 = srv_expect("query-status", NULL);
	if (id2 <= id1)
		srv_die(5);	/* ids must increase */
	srv_reply(id2, "{\"status\": \"paused\", \"running\": false}");
	srv_reply(srv_expect("query-status", NULL), "{\"status\": \"colo-weird\"}");
	srv_reply(srv_expect("query-status", NULL), "{\"running\": true}");
}

static void test_basic(void)
{
	struct qmp *q;
	json_t *args, *r = NULL;
	enum qmp_runstate st = QMP_RS_RUNNING;
	char name[32];
	int rc, ma, mi, mc;
	const char *pkg;
	pid_t pid = fake_open(srv_basic, &q, &rc);

	is_int(rc, 0, "greeting + qmp_capabilities: connection opens");
	if (rc < 0)
		goto out;
	pkg = qmp_version(q, &ma, &mi, &mc);
	ok(ma == 7 && mi == 2 && mc == 1, "QEMU version from the greeting (7.2.1)");
	ok(strchr(pkg, '\033') == NULL && strstr(pkg, "\\x1b") != NULL,
	   "package string from QEMU is kept escaped (%s)", pkg);
	args = json_pack("{s:s, s:i}", "device", "disk0", "n", 3);
	rc = qmp_command(q, "echo", args, &r, T_MS);
	is_int(rc, 0, "command with arguments succeeds");
	ok(json_equal(r, args), "its arguments reach QEMU and the return value comes back");
	ok(qmp_last_error(q, NULL) == NULL, "no QMP error after a success");
	json_decref(r);
	json_decref(args);
	is_int(qmp_query_status(q, &st, name, sizeof(name), T_MS), 0, "query-status");
	ok(st == QMP_RS_PAUSED && !strcmp(name, "paused"), "paused maps to QMP_RS_PAUSED");
	is_int(qmp_query_status(q, &st, NULL, 0, T_MS), 0, "unknown run state is not an error");
	is_int(st, QMP_RS_OTHER, "unknown run state maps to QMP_RS_OTHER");
	is_int(qmp_query_status(q, &st, NULL, 0, T_MS), -EPROTO,
	       "query-status reply without status is -EPROTO");
	qmp_close(q);
out:
	is_int(fake_end(pid), 0, "fake monitor saw qmp_capabilities first, then increasing ids");
}

static void srv_order(void)
{
	long long id;

	srv_greet();
	id = srv_expect("query-x", NULL);
	srv_event("STOP");
	srv_sendf("{\"return\": \"wrong-id\", \"id\": %lld}\r\n", id + 1000);
	srv_sendf("{\"return\": \"string-id\", \"id\": \"%lld\"}\r\n", id);
	srv_send("{\"return\": \"no-id\"}\r\n");
	srv_sendf("{\"error\": {\"class\": \"GenericError\", \"desc\": \"x\"}, \"id\": %lld}\r\n",
		  id + 1);
	srv_event("RESUME");
	/* the reply, then another event in the same write */
	srv_sendf("{\"return\": \"right\", \"id\": %lld}\r\n"
		  "{\"event\": \"POWERDOWN\", \"data\": {\"x\": 1}, "
		  "\"timestamp\": {\"seconds\": 5, \"microseconds\": 6}}\r\n", id);
	/* later, unprompted by any command in flight */
	json_decref(srv_recv());
	srv_event("SHUTDOWN");
}

static void test_order(void)
{
	struct rec ev = { 0 };
	struct qmp *q;
	json_t *r = NULL;
	int rc;
	pid_t pid = fake_open(srv_order, &q, &rc);

	if (rc < 0) {
		ok(0, "open");
		fake_end(pid);
		return;
	}
	qmp_set_event_cb(q, rec_cb, &ev);
	rc = qmp_command(q, "query-x", NULL, &r, T_MS);
	is_int(rc, 0, "replies with other ids are skipped, ours is taken");
	ok(json_is_string(r) && !strcmp(json_string_value(r), "right"),
	   "the value returned is the one carrying our id");
	json_decref(r);
	is_int(ev.n, 3, "events arriving between a command and its reply are delivered");
	ok(ev.n >= 3 && ev.kind[0] == QMP_EV_STOP && ev.kind[1] == QMP_EV_RESUME &&
	   ev.kind[2] == QMP_EV_POWERDOWN, "in arrival order, with their kinds");
	ok(ev.ts_sec == 5 && ev.ts_usec == 6 && ev.data_objects == 1,
	   "timestamp and data reach the callback");
	/* SHUTDOWN arrives later: the async side picks it up */
	if (send(qmp_fd(q), "{}\n", 3, MSG_NOSIGNAL) != 3)
		ok(0, "send");
	for (int i = 0; i < 100 && ev.n < 4; i++) {
		struct pollfd p = { .fd = qmp_fd(q), .events = POLLIN };

		poll(&p, 1, 50);
		rc = qmp_process(q);
	}
	ok(ev.n == 4 && ev.kind[3] == QMP_EV_SHUTDOWN && !strcmp(ev.name[3], "SHUTDOWN"),
	   "event after the reply is dispatched by qmp_process()");
	qmp_close(q);
	is_int(fake_end(pid), 0, "fake monitor done");
}

static void srv_error(void)
{
	srv_greet();
	srv_sendf("{\"id\": %lld, \"error\": {\"class\": \"CommandNotFound\", "
		  "\"desc\": \"The command nope has not been found\\u001b]0;x\"}}\r\n",
		  srv_expect("nope", NULL));
	srv_reply(srv_expect("ok", NULL), "{}");
}

static void test_error(void)
{
	struct qmp *q;
	const char *cls, *desc = NULL;
	json_t *r = NULL;
	int rc;
	pid_t pid = fake_open(srv_error, &q, &rc);

	if (rc < 0) {
		ok(0, "open");
		fake_end(pid);
		return;
	}
	rc = qmp_command(q, "nope", NULL, &r, T_MS);
	is_int(rc, -EIO, "an error reply is -EIO");
	ok(r == NULL, "no reply value on error");
	cls = qmp_last_error(q, &desc);
	ok(cls && !strcmp(cls, "CommandNotFound"), "error class kept (%s)", cls ? cls : "NULL");
	ok(desc && !strncmp(desc, "The command nope has not been found", 35) &&
	   !strchr(desc, '\033'), "error description kept, escaped (%s)", desc ? desc : "NULL");
	is_int(qmp_command(q, "ok", NULL, NULL, T_MS), 0, "connection still usable after an error reply");
	ok(qmp_last_error(q, NULL) == NULL, "error cleared by the next command");
	qmp_close(q);
	is_int(fake_end(pid), 0, "fake monitor done");
}

/* Streams that must break the connection with -EPROTO */
static const char *bad_line;

static void srv_bad(void)
{
	srv_greet();
	srv_expect("x", NULL);
	srv_send(bad_line);
}

static void test_bad_lines(void)
{
	static const struct {
		const char *line, *what;
	} cases[] = {
		{ "this is not json\r\n", "non-JSON garbage" },
		{ "[1, 2, 3]\r\n", "a JSON array" },
		{ "\"just a string\"\r\n", "a bare JSON string" },
		{ "{\"foo\": 1}\r\n", "an object that is no QMP message" },
		{ "{\"event\": 42}\r\n", "an event whose name is not a string" },
		{ "{\"event\": \"STOP\", \"data\": [1]}\r\n", "an event whose data is not an object" },
		{ "{\"event\": \"STOP\", \"timestamp\": {\"seconds\": \"x\"}}\r\n",
		  "an event with a bad timestamp" },
		{ "{\"error\": \"boom\", \"id\": 2}\r\n", "an error that is not an object" },
		{ "{\"error\": {\"desc\": \"d\"}, \"id\": 2}\r\n", "an error without class" },
		{ "{\"return\": 1, \"return\": 2, \"id\": 2}\r\n", "duplicate keys" },
		{ GREETING, "a second greeting" },
		{ "{\"return\": {}, \"id\": 2\r\n", "truncated JSON" },
	};

	for (size_t i = 0; i < UTIL_ARRAY_SIZE(cases); i++) {
		struct qmp *q;
		int rc;
		pid_t pid;

		bad_line = cases[i].line;
		pid = fake_open(srv_bad, &q, &rc);
		if (rc < 0) {
			ok(0, "open");
			fake_end(pid);
			continue;
		}
		rc = qmp_command(q, "x", NULL, NULL, T_MS);
		is_int(rc, -EPROTO, "%s is rejected with -EPROTO", cases[i].what);
		is_int(qmp_command(q, "x", NULL, NULL, T_MS), -EPROTO,
		       "... and the connection stays broken");
		qmp_close(q);
		fake_end(pid);
	}
}

static void srv_blank(void)
{
	srv_greet();
	srv_sendf("\r\n\n  \r\n{\"return\": 7, \"id\": %lld}\n", srv_expect("x", NULL));
}

static void test_blank(void)
{
	struct qmp *q;
	json_t *r = NULL;
	int rc;
	pid_t pid = fake_open(srv_blank, &q, &rc);

	if (rc == 0) {
		rc = qmp_command(q, "x", NULL, &r, T_MS);
		is_int(rc, 0, "blank lines and bare \\n line ends are accepted");
		ok(json_integer_value(r) == 7, "reply after blank lines read");
		json_decref(r);
		qmp_close(q);
	} else {
		ok(0, "open");
	}
	fake_end(pid);
}

/* A line over QMP_LINE_MAX breaks the connection; one just under is fine */
static size_t long_len;

static void srv_long(void)
{
	static const char head[] = "{\"event\": \"BIG\", \"data\": {\"s\": \"";
	char chunk[8192];
	size_t sent;

	memset(chunk, 'a', sizeof(chunk) - 1);
	chunk[sizeof(chunk) - 1] = '\0';
	srv_greet();
	srv_expect("x", NULL);
	srv_send(head);
	for (sent = sizeof(head) - 1; sent + sizeof(chunk) - 1 <= long_len; sent += sizeof(chunk) - 1)
		srv_send(chunk);
	chunk[long_len - sent] = '\0';
	srv_send(chunk);
	srv_send("\"}}\r\n");
	srv_reply(2, "{}");
}

static void test_long(void)
{
	struct rec ev = { 0 };
	struct qmp *q;
	int rc;
	pid_t pid;

	long_len = QMP_LINE_MAX - 100;
	pid = fake_open(srv_long, &q, &rc);
	if (rc == 0) {
		qmp_set_event_cb(q, rec_cb, &ev);
		is_int(qmp_command(q, "x", NULL, NULL, T_MS), 0, "a line just under the limit is read");
		ok(ev.n == 1 && ev.data_objects == 1, "... and its event delivered");
		qmp_close(q);
	} else {
		ok(0, "open");
	}
	fake_end(pid);

	long_len = QMP_LINE_MAX + 100000;
	pid = fake_open(srv_long, &q, &rc);
	if (rc == 0) {
		is_int(qmp_command(q, "x", NULL, NULL, T_MS), -E2BIG,
		       "a line over the limit is -E2BIG, not buffered forever");
		is_int(qmp_process(q), -E2BIG, "... and the connection stays broken");
		qmp_close(q);
	} else {
		ok(0, "open");
	}
	fake_end(pid);
}

static void srv_no_greeting(void) { srv_send("{\"return\": {}, \"id\": 1}\r\n"); }
static void srv_eof_now(void) { _exit(0); }
static void srv_eof_midline(void)
{
	srv_send("{\"QMP\": {\"version\": ");
	_exit(0);
}
static void srv_bad_greeting(void)
{
	srv_send("{\"QMP\": {\"version\": {\"qemu\": {\"major\": \"7\", \"minor\": 2, \"micro\": 0}}}}\r\n");
}
static void srv_refuse_caps(void)
{
	srv_send(GREETING);
	srv_sendf("{\"error\": {\"class\": \"GenericError\", \"desc\": \"no\"}, \"id\": %lld}\r\n",
		  srv_expect("qmp_capabilities", NULL));
}
static void srv_silent(void) { srv_eof(); }

static void test_handshake(void)
{
	static const struct {
		srv_fn fn;
		int rc;
		const char *what;
	} cases[] = {
		{ srv_no_greeting, -EPROTO, "a reply instead of the greeting" },
		{ srv_bad_greeting, -EPROTO, "a greeting with a string version" },
		{ srv_eof_now, -ECONNRESET, "EOF before the greeting" },
		{ srv_eof_midline, -ECONNRESET, "EOF in the middle of the greeting" },
		{ srv_refuse_caps, -EIO, "qmp_capabilities refused" },
	};
	struct qmp *q = NULL;
	int fd, rc;
	pid_t pid;
	uint64_t t0;

	for (size_t i = 0; i < UTIL_ARRAY_SIZE(cases); i++) {
		pid = fake_start(cases[i].fn, &fd);
		rc = qmp_open_fd(fd, T_MS, &q);
		is_int(rc, cases[i].rc, "%s fails the connection", cases[i].what);
		ok(fcntl(fd, F_GETFD) >= 0, "... and the caller keeps its fd");
		if (rc == 0)
			qmp_close(q);
		else
			close(fd);
		fake_end(pid);
	}

	pid = fake_start(srv_silent, &fd);
	t0 = util_monotonic_ms();
	rc = qmp_open_fd(fd, 200, &q);
	is_int(rc, -ETIMEDOUT, "a monitor that never greets times out");
	ok(util_monotonic_ms() - t0 < 4000, "... within its timeout");
	close(fd);
	fake_end(pid);
}

static void srv_late(void)
{
	long long id1, id2;

	srv_greet();
	id1 = srv_expect("slow", NULL);
	/* the client gives up and sends its next command */
	id2 = srv_expect("fast", NULL);
	srv_reply(id1, "\"late\"");
	srv_reply(id2, "\"fast\"");
}

static void test_timeout(void)
{
	struct qmp *q;
	json_t *r = NULL;
	int rc;
	pid_t pid = fake_open(srv_late, &q, &rc);

	if (rc < 0) {
		ok(0, "open");
		fake_end(pid);
		return;
	}
	is_int(qmp_command(q, "slow", NULL, &r, 200), -ETIMEDOUT, "a reply that never comes is -ETIMEDOUT");
	ok(r == NULL, "no reply value on timeout");
	rc = qmp_command(q, "fast", NULL, &r, T_MS);
	is_int(rc, 0, "the connection is still usable after a timeout");
	ok(json_is_string(r) && !strcmp(json_string_value(r), "fast"),
	   "a late reply to the timed-out command is not taken for the next one");
	json_decref(r);
	qmp_close(q);
	is_int(fake_end(pid), 0, "fake monitor done");
}

static void srv_shutdown_eof(void)
{
	srv_greet();
	srv_expect("quit", NULL);
	srv_event("SHUTDOWN");
	/* QEMU exits before its reply is out */
	_exit(0);
}

static void srv_async_eof(void)
{
	srv_greet();
	json_decref(srv_recv());	/* the test's trigger */
	srv_event("RESET");
	srv_event("SHUTDOWN");
	srv_send("{\"event\": \"STO");	/* cut short */
	_exit(0);
}

static void test_eof(void)
{
	struct rec ev = { 0 };
	struct qmp *q;
	int rc;
	pid_t pid = fake_open(srv_shutdown_eof, &q, &rc);

	if (rc == 0) {
		qmp_set_event_cb(q, rec_cb, &ev);
		is_int(qmp_command(q, "quit", NULL, NULL, T_MS), -ECONNRESET, "EOF while waiting is -ECONNRESET");
		ok(ev.n == 1 && ev.kind[0] == QMP_EV_SHUTDOWN, "SHUTDOWN sent just before EOF is delivered");
		is_int(qmp_process(q), -ECONNRESET, "later calls report the EOF");
		qmp_close(q);
	} else {
		ok(0, "open");
	}
	fake_end(pid);

	pid = fake_open(srv_shutdown_eof, &q, &rc);
	if (rc == 0) {
		is_int(qmp_quit(q, T_MS), 0, "qmp_quit() counts QEMU closing the socket as done");
		qmp_close(q);
	} else {
		ok(0, "open");
	}
	fake_end(pid);

	memset(&ev, 0, sizeof(ev));
	pid = fake_open(srv_async_eof, &q, &rc);
	if (rc == 0) {
		int fd = qmp_fd(q);

		qmp_set_event_cb(q, rec_cb, &ev);
		is_int(qmp_process(q), 0, "qmp_process() with nothing to read returns 0 at once");
		if (send(fd, "{}\n", 3, MSG_NOSIGNAL) != 3)
			ok(0, "send");
		rc = 0;
		for (int i = 0; i < 100 && rc == 0; i++) {
			struct pollfd p = { .fd = fd, .events = POLLIN };

			poll(&p, 1, 100);
			rc = qmp_process(q);
		}
		is_int(rc, -ECONNRESET, "qmp_process() reports EOF (mid-line) as -ECONNRESET");
		ok(ev.n == 2 && ev.kind[0] == QMP_EV_RESET && ev.kind[1] == QMP_EV_SHUTDOWN,
		   "events complete before the EOF are all dispatched");
		qmp_close(q);
	} else {
		ok(0, "open");
	}
	fake_end(pid);
}

static void srv_events_early(void)
{
	srv_send(GREETING);
	srv_event("RESUME");
	srv_reply(srv_expect("qmp_capabilities", NULL), "{}");
	srv_send("{\"event\": \"SHUTDOWN\\u0000x\"}\r\n");
	srv_event("SOMETHING_NEW");
}

static void test_events_queue(void)
{
	struct rec ev = { 0 };
	struct qmp *q;
	int rc;
	pid_t pid = fake_open(srv_events_early, &q, &rc);

	if (rc < 0) {
		ok(0, "open");
		fake_end(pid);
		return;
	}
	ok(qmp_pending(q) >= 1, "event during capabilities negotiation is queued, not lost");
	for (int i = 0; i < 100 && qmp_pending(q) < 3; i++) {
		struct pollfd p = { .fd = qmp_fd(q), .events = POLLIN };

		poll(&p, 1, 50);
		qmp_process(q);
	}
	is_int(qmp_pending(q), 3, "events stay queued while no callback is set");
	qmp_set_event_cb(q, rec_cb, &ev);
	is_int(qmp_process(q), 0, "qmp_process() after setting the callback");
	is_int(ev.n, 3, "queued events are dispatched once a callback is set");
	ok(ev.n == 3 && ev.kind[0] == QMP_EV_RESUME, "RESUME first");
	ok(ev.n == 3 && ev.kind[1] == QMP_EV_OTHER, "a name with an embedded NUL is not SHUTDOWN");
	ok(ev.n == 3 && ev.kind[2] == QMP_EV_OTHER && !strcmp(ev.name[2], "SOMETHING_NEW"),
	   "unknown events are QMP_EV_OTHER with their raw name");
	is_int(qmp_pending(q), 0, "queue empty after dispatch");
	qmp_close(q);
	fake_end(pid);
}

static void srv_flood(void)
{
	long long id;

	srv_greet();
	id = srv_expect("x", NULL);
	for (int i = 0; i < QMP_EVENT_QUEUE_SOFT + 500; i++)
		srv_event("NIC_RX_FILTER_CHANGED");
	srv_event("SHUTDOWN");
	srv_reply(id, "{}");
}

static void test_flood(void)
{
	struct rec *ev = calloc(1, sizeof(*ev));
	struct qmp *q;
	int rc;
	pid_t pid = fake_open(srv_flood, &q, &rc);

	if (rc < 0 || !ev) {
		ok(0, "open");
		fake_end(pid);
		free(ev);
		return;
	}
	is_int(qmp_command(q, "x", NULL, NULL, T_MS), 0, "command completes under an event flood");
	is_int(qmp_pending(q), QMP_EVENT_QUEUE_SOFT + 1, "the event queue is bounded");
	qmp_set_event_cb(q, rec_cb, ev);
	qmp_process(q);
	ok(ev->n == QMP_EVENT_QUEUE_SOFT + 1 && ev->kind[ev->n - 1] == QMP_EV_SHUTDOWN,
	   "SHUTDOWN is kept even when the queue is full of other events");
	qmp_close(q);
	fake_end(pid);
	free(ev);
}

static void test_args(void)
{
	struct qmp *q;
	json_t *arr = json_array();
	int rc;
	pid_t pid = fake_open(srv_greet, &q, &rc);

	if (rc < 0) {
		ok(0, "open");
		fake_end(pid);
		return;
	}
	is_int(qmp_command(q, "x", arr, NULL, T_MS), -EINVAL, "arguments that are not an object are refused");
	is_int(qmp_command(q, "bad\xff", NULL, NULL, T_MS), -EINVAL, "a command name that is not UTF-8 is refused");
	is_int(qmp_command(q, NULL, NULL, NULL, T_MS), -EINVAL, "no command name is refused");
	json_decref(arr);
	qmp_close(q);
	is_int(fake_end(pid), 0, "nothing was sent for refused commands");
}

/* qmp_connect: the socket appears a moment after QEMU starts */
static char sock_path[108];

static void srv_listen_late(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int l, c;

	nanosleep(&(struct timespec){ .tv_nsec = 300000000 }, NULL);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	l = socket(AF_UNIX, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(l, 1) < 0)
		srv_die(10);
	c = accept(l, NULL, NULL);
	if (c < 0)
		srv_die(11);
	srv_fd = c;
	srv_greet();
	srv_reply(srv_expect("query-version", NULL), "{}");
}

static void test_connect(void)
{
	char dir[] = "/tmp/t_qmp.XXXXXX";
	char longp[200];
	struct qmp *q = NULL;
	int fd, rc;
	pid_t pid;

	if (!mkdtemp(dir)) {
		ok(0, "mkdtemp");
		return;
	}
	snprintf(sock_path, sizeof(sock_path), "%s/qmp.sock", dir);
	pid = fake_start(srv_listen_late, &fd);
	close(fd);
	rc = qmp_connect(sock_path, T_MS, &q);
	is_int(rc, 0, "qmp_connect() waits for a socket QEMU creates late");
	if (rc == 0) {
		is_int(qmp_command(q, "query-version", NULL, NULL, T_MS), 0, "and commands work over it");
		ok(fcntl(qmp_fd(q), F_GETFD) & FD_CLOEXEC, "the QMP fd is close-on-exec");
		qmp_close(q);
	}
	is_int(fake_end(pid), 0, "fake monitor done");
	unlink(sock_path);
	rmdir(dir);

	is_int(qmp_connect(sock_path, 150, &q), -ETIMEDOUT, "a socket that never appears times out");
	memset(longp, 'a', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	is_int(qmp_connect(longp, 100, &q), -ENAMETOOLONG, "a path longer than sun_path is refused");
	is_int(qmp_connect("/dev/null/qmp.sock", T_MS, &q), -ENOTDIR,
	       "connect errors other than ENOENT/ECONNREFUSED are returned at once");
}

/* ---- warm start: getfd, migration, hotplug ------------------------------ */

/* recvmsg() the first byte of the next command, with its SCM_RIGHTS fd */
static int srv_recv_fd(void)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	char c;
	struct iovec iov = { .iov_base = &c, .iov_len = 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *cm;
	int fd = -1;

	if (recvmsg(srv_fd, &mh, 0) != 1 || c != '{')
		srv_die(20);
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
			memcpy(&fd, CMSG_DATA(cm), sizeof(fd));
	return fd;
}

/* the rest of a command whose first byte srv_recv_fd() took */
static long long srv_expect_rest(const char *name, json_t **msgp)
{
	char line[65536] = "{";
	size_t n = 1;
	json_t *m;

	while (n < sizeof(line) - 1 && read(srv_fd, line + n, 1) == 1 && line[n] != '\n')
		n++;
	m = json_loadb(line, n, 0, NULL);
	if (!m || !json_is_string(json_object_get(m, "execute")) ||
	    strcmp(json_string_value(json_object_get(m, "execute")), name))
		srv_die(21);
	if (msgp)
		*msgp = m;
	else
		json_decref(m);
	return json_integer_value(json_object_get(m, "id"));
}

static void srv_getfd(void)
{
	json_t *m = NULL;
	long long id;
	int fd;

	srv_greet();
	fd = srv_recv_fd();
	id = srv_expect_rest("getfd", &m);
	if (fd < 0)
		srv_die(22);	/* no fd came with the command */
	if (strcmp(json_string_value(json_object_get(json_object_get(m, "arguments"), "fdname")) ?: "",
		   "hutch-warm"))
		srv_die(23);
	if (write(fd, "via-scm", 7) != 7)
		srv_die(24);
	close(fd);
	json_decref(m);
	srv_reply(id, "{}");
	srv_reply(srv_expect("closefd", NULL), "{}");
}

static void test_getfd(void)
{
	struct qmp *q;
	int p[2], rc;
	char buf[16] = { 0 };
	pid_t pid = fake_open(srv_getfd, &q, &rc);

	if (rc < 0 || pipe(p) < 0) {
		ok(0, "open");
		fake_end(pid);
		return;
	}
	is_int(qmp_getfd(q, "hutch-warm", -1, T_MS), -EBADF, "getfd without an fd is refused");
	is_int(qmp_getfd(q, "hutch-warm", p[1], T_MS), 0, "getfd: QEMU takes the fd");
	close(p[1]);
	ok(read(p[0], buf, sizeof(buf) - 1) == 7 && !strcmp(buf, "via-scm"),
	   "the fd arrived by SCM_RIGHTS and is the caller's pipe (%s)", buf);
	close(p[0]);
	is_int(qmp_closefd(q, "hutch-warm", T_MS), 0, "closefd");
	qmp_close(q);
	is_int(fake_end(pid), 0, "fake monitor saw the fd on the getfd command");
}

static void srv_migrate(void)
{
	json_t *m = NULL;
	long long id;

	srv_greet();
	id = srv_expect("migrate", &m);
	if (strcmp(json_string_value(json_object_get(json_object_get(m, "arguments"), "uri")) ?: "",
		   "fd:hutch-warm"))
		srv_die(30);
	json_decref(m);
	srv_reply(id, "{}");
	srv_reply(srv_expect("query-migrate", NULL), "{}");
	srv_reply(srv_expect("query-migrate", NULL),
		  "{\"status\": \"active\", \"ram\": {\"total\": 268435456, \"transferred\": 1024}}");
	srv_reply(srv_expect("query-migrate", NULL), "{\"status\": \"completed\"}");
	srv_reply(srv_expect("query-migrate", NULL),
		  "{\"status\": \"failed\", \"error-desc\": \"disk \\u001b[2J full\"}");
	srv_reply(srv_expect("query-migrate", NULL), "{\"status\": \"postcopy-somewhere\"}");
	srv_reply(srv_expect("query-migrate", NULL), "{\"status\": 7}");
	srv_reply(srv_expect("migrate-incoming", NULL), "{}");
	srv_reply(srv_expect("query-migrate", NULL), "[]");
}

static void test_migrate(void)
{
	struct qmp_migrate_info mi;
	struct qmp *q;
	int rc;
	pid_t pid = fake_open(srv_migrate, &q, &rc);

	if (rc < 0) {
		ok(0, "open");
		fake_end(pid);
		return;
	}
	is_int(qmp_migrate(q, "fd:hutch-warm", T_MS), 0, "migrate to a named fd");
	is_int(qmp_query_migrate(q, &mi, T_MS), 0, "query-migrate before any migration");
	is_int(mi.status, QMP_MIG_NONE, "... no status is QMP_MIG_NONE");
	is_int(qmp_query_migrate(q, &mi, T_MS), 0, "query-migrate while active");
	ok(mi.status == QMP_MIG_ACTIVE && mi.ram_total == 268435456 && mi.ram_transferred == 1024,
	   "status and RAM counters read");
	is_int(qmp_query_migrate(q, &mi, T_MS), 0, "query-migrate when completed");
	ok(mi.status == QMP_MIG_COMPLETED && !strcmp(qmp_migrate_status_name(mi.status), "completed"),
	   "completed");
	is_int(qmp_query_migrate(q, &mi, T_MS), 0, "query-migrate when failed");
	ok(mi.status == QMP_MIG_FAILED && strstr(mi.error, "disk") && !strchr(mi.error, '\033'),
	   "failed, with QEMU's reason kept escaped (%s)", mi.error);
	is_int(qmp_query_migrate(q, &mi, T_MS), 0, "an unknown status is no error");
	is_int(mi.status, QMP_MIG_OTHER, "... it is QMP_MIG_OTHER");
	is_int(qmp_query_migrate(q, &mi, T_MS), -EPROTO, "a status that is not a string is -EPROTO");
	is_int(qmp_migrate_incoming(q, "fd:hutch-warm", T_MS), 0, "migrate-incoming");
	is_int(qmp_query_migrate(q, &mi, T_MS), -EPROTO, "a reply that is not an object is -EPROTO");
	qmp_close(q);
	is_int(fake_end(pid), 0, "fake monitor saw the migration commands");
}

static void srv_hotplug(void)
{
	json_t *m = NULL;
	long long id;

	srv_greet();
	id = srv_expect("device_del", &m);
	if (strcmp(json_string_value(json_object_get(json_object_get(m, "arguments"), "id")) ?: "",
		   "hutch-fs0"))
		srv_die(40);
	json_decref(m);
	srv_reply(id, "{}");
	srv_sendf("{\"event\": \"DEVICE_DELETED\", \"data\": {\"path\": \"/machine/peripheral/hutch-fs0/virtio-backend\"}}\r\n");
	srv_event("STOP");
	srv_sendf("{\"event\": \"DEVICE_DELETED\", \"data\": {\"device\": \"hutch-fs1\", \"path\": \"x\"}}\r\n");
	srv_sendf("{\"event\": \"DEVICE_DELETED\", \"data\": {\"device\": \"hutch-fs0\", \"path\": \"y\"}}\r\n");
	id = srv_expect("device_add", &m);
	if (strcmp(json_string_value(json_object_get(json_object_get(m, "arguments"), "driver")) ?: "",
		   "vhost-user-fs-pci") ||
	    strcmp(json_string_value(json_object_get(json_object_get(m, "arguments"), "tag")) ?: "", "ws"))
		srv_die(41);
	json_decref(m);
	srv_reply(id, "{}");
	srv_reply(srv_expect("device_del", NULL), "{}");
	/* this one never comes: the waiter times out */
}

static bool match_dev(const json_t *data, void *arg)
{
	const json_t *d = json_object_get(data, "device");

	return json_is_string(d) && !strcmp(json_string_value(d), arg);
}

static void test_hotplug(void)
{
	struct rec ev = { 0 };
	struct qmp *q;
	json_t *props;
	uint64_t t0;
	int rc;
	pid_t pid = fake_open(srv_hotplug, &q, &rc);

	if (rc < 0) {
		ok(0, "open");
		fake_end(pid);
		return;
	}
	qmp_set_event_cb(q, rec_cb, &ev);
	is_int(qmp_event_wait(q, T_MS), -EINVAL, "waiting without arming is an error");
	qmp_event_arm(q, QMP_EV_DEVICE_DELETED, match_dev, (void *)"hutch-fs0");
	is_int(qmp_device_del(q, "hutch-fs0", T_MS), 0, "device_del");
	is_int(qmp_event_wait(q, T_MS), 0,
	       "DEVICE_DELETED of that device, sent right behind the reply, is not missed");
	ok(ev.n == 4 && ev.kind[0] == QMP_EV_DEVICE_DELETED && ev.kind[1] == QMP_EV_STOP &&
	   ev.kind[3] == QMP_EV_DEVICE_DELETED,
	   "every event on the way, the awaited one too, reached the callback in order (%d)", ev.n);
	props = json_pack("{s:s}", "tag", "ws");
	is_int(qmp_device_add(q, props, T_MS), -EINVAL, "device_add without a driver is refused");
	json_object_set_new(props, "driver", json_string("vhost-user-fs-pci"));
	is_int(qmp_device_add(q, props, T_MS), 0, "device_add passes the properties through");
	json_decref(props);
	qmp_event_arm(q, QMP_EV_DEVICE_DELETED, match_dev, (void *)"hutch-fs1");
	is_int(qmp_device_del(q, "hutch-fs1", T_MS), 0, "device_del of a device that never goes");
	t0 = util_monotonic_ms();
	is_int(qmp_event_wait(q, 300),
	       -ETIMEDOUT, "an event that does not come times out");
	ok(util_monotonic_ms() - t0 < 4000, "... within its timeout");
	qmp_close(q);
	is_int(fake_end(pid), 0, "fake monitor done");
}

static void srv_block(void)
{
	srv_greet();
	srv_reply(srv_expect("query-block", NULL),
		  "[{\"device\": \"virtio1\", \"inserted\": {\"file\": \"/vm/seed.iso\"}},"
		  " {\"device\": 3, \"inserted\": {\"file\": \"/vm/disk.qcow2\"}},"
		  " \"junk\", {\"device\": \"x\", \"inserted\": []},"
		  " {\"device\": \"virtio0\", \"inserted\": {\"file\": \"/vm/disk.qcow2\"}}]");
	srv_reply(srv_expect("query-block", NULL), "[{\"device\": \"virtio1\"}]");
	srv_reply(srv_expect("query-block", NULL), "{}");
	srv_reply(srv_expect("query-block", NULL),
		  "[{\"device\": \"virtio1\", \"inserted\": {\"file\": \"/dev/fdset/3\", \"ro\": true}},"
		  " {\"device\": \"virtio0\", \"inserted\": {\"file\": \"/dev/fdset/1\", \"ro\": false}}]");
	srv_reply(srv_expect("query-block", NULL),
		  "[{\"device\": \"a\", \"inserted\": {\"file\": \"x\", \"ro\": false}},"
		  " {\"device\": \"b\", \"inserted\": {\"file\": \"y\", \"ro\": false}}]");
}

static void test_block(void)
{
	struct qmp *q;
	char dev[32] = "";
	int rc;
	pid_t pid = fake_open(srv_block, &q, &rc);

	if (rc < 0) {
		ok(0, "open");
		fake_end(pid);
		return;
	}
	is_int(qmp_block_device(q, "/vm/disk.qcow2", dev, sizeof(dev), T_MS), 0,
	       "query-block: the drive of an image is found");
	ok(!strcmp(dev, "virtio0"), "... skipping entries of the wrong shape (%s)", dev);
	is_int(qmp_block_device(q, "/vm/disk.qcow2", dev, sizeof(dev), T_MS), -ENOENT,
	       "no drive with that image: -ENOENT");
	is_int(qmp_block_device(q, "/vm/disk.qcow2", dev, sizeof(dev), T_MS), -EPROTO,
	       "a reply that is not a list: -EPROTO");
	ok(qmp_block_device(q, NULL, dev, sizeof(dev), T_MS) == 0 && !strcmp(dev, "virtio0"),
	   "without a path: the one writable drive (images passed as fd sets)");
	is_int(qmp_block_device(q, NULL, dev, sizeof(dev), T_MS), -ENOTUNIQ,
	       "two writable drives: no guess");
	qmp_close(q);
	is_int(fake_end(pid), 0, "fake monitor done");
}

/* ---- asynchronous commands (the supervisor's) ---------------------------- */

static void srv_async(void)
{
	long long a, b, c;

	srv_greet();
	a = srv_expect("query-status", NULL);
	b = srv_expect("stop", NULL);
	c = srv_expect("never-answered", NULL);
	(void)c;
	/* out of order, an event in between, and an error */
	srv_sendf("{\"error\": {\"class\": \"GenericError\", \"desc\": \"no\"}, \"id\": %lld}\r\n", b);
	srv_event("STOP");
	srv_reply(a, "{\"status\": \"paused\", \"running\": false}");
	/* a synchronous command in between still gets only its own reply */
	srv_reply(srv_expect("sync", NULL), "{}");
	srv_expect("left-pending", NULL);
}

struct async_rec {
	int calls, rc;
	char what[64];
};

static void async_cb(struct qmp *q, int rc, json_t *ret, void *opaque)
{
	struct async_rec *r = opaque;
	const char *cls = rc == -EIO ? qmp_last_error(q, NULL) : NULL;

	r->calls++;
	r->rc = rc;
	snprintf(r->what, sizeof(r->what), "%s",
		 ret && json_is_string(json_object_get(ret, "status"))
			 ? json_string_value(json_object_get(ret, "status"))
			 : cls ? cls : "");
}

static void test_async(void)
{
	struct async_rec ra = { 0 }, rb = { 0 }, rc3 = { 0 }, rd = { 0 };
	struct rec ev = { 0 };
	struct qmp *q;
	int rc, i;
	pid_t pid = fake_open(srv_async, &q, &rc);

	is_int(rc, 0, "async: connection opens");
	if (rc < 0)
		goto out;
	qmp_set_event_cb(q, rec_cb, &ev);
	is_int(qmp_command_async(q, "query-status", NULL, T_MS, async_cb, &ra), 0, "async sent");
	is_int(qmp_command_async(q, "stop", NULL, T_MS, async_cb, &rb), 0, "second async sent");
	is_int(qmp_command_async(q, "never-answered", NULL, 200, async_cb, &rc3), 0,
	       "third async sent (short timeout)");
	is_int(qmp_async_next_ms(q) <= 200, 1, "the next deadline is the short one");
	for (i = 0; i < 200 && (ra.calls == 0 || rb.calls == 0); i++) {
		struct pollfd p = { .fd = qmp_fd(q), .events = POLLIN };

		poll(&p, 1, 50);
		qmp_process(q);
	}
	ok(ra.calls == 1 && ra.rc == 0 && !strcmp(ra.what, "paused"),
	   "first reply reaches its own callback (%d, %d, %s)", ra.calls, ra.rc, ra.what);
	ok(rb.calls == 1 && rb.rc == -EIO && !strcmp(rb.what, "GenericError"),
	   "an error reply reaches its callback as -EIO with the class (%s)", rb.what);
	is_int(ev.n, 1, "the event between the replies was dispatched");
	is_int(qmp_command(q, "sync", NULL, NULL, T_MS), 0, "a synchronous command meanwhile");
	usleep(300 * 1000);
	qmp_async_expire(q);
	ok(rc3.calls == 1 && rc3.rc == -ETIMEDOUT, "an unanswered async command times out once");
	is_int(qmp_async_next_ms(q), -1, "nothing in flight any more");
	is_int(qmp_command_async(q, "left-pending", NULL, T_MS, async_cb, &rd), 0, "one more sent");
	qmp_close(q);
	ok(rd.calls == 1 && rd.rc == -ECONNRESET, "closing tells the pending one (-ECONNRESET)");
out:
	is_int(fake_end(pid), 0, "fake monitor saw the async commands in order");
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	log_init("t_qmp", getenv("QMP_DEBUG") ? LOG_LVL_DEBUG : LOG_LVL_ERR);
	test_basic();
	test_order();
	test_error();
	test_bad_lines();
	test_blank();
	test_long();
	test_handshake();
	test_timeout();
	test_eof();
	test_events_queue();
	test_flood();
	test_args();
	test_connect();
	test_getfd();
	test_migrate();
	test_hotplug();
	test_block();
	test_async();
	return tap_done();
}
