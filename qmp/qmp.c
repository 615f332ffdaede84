// SPDX-License-Identifier: MIT
/*
 * QMP client: framing, message classification, command/reply matching by
 * id, and an event queue.  See qmp.h for the model.
 *
 * Message classes (QEMU docs/interop/qmp-spec.rst, "Server responses"):
 *   greeting  {"QMP": {"version": {"qemu": {major,minor,micro}, "package"},
 *              "capabilities": [...]}}          first line, exactly once
 *   success   {"return": <any>, "id": <ours>}
 *   error     {"error": {"class": str, "desc": str}, "id": <ours>}
 *   event     {"event": str, "data": {...}?, "timestamp": {seconds, microseconds}}
 * Anything else is a protocol error.  QEMU may answer without an id when it
 * could not parse our command at all; we never send such commands, so such a
 * reply is ignored like any reply that is not for the command in flight.
 */
#include "qmp/qmp.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "src/log.h"
#include "src/util.h"

/* Initial input buffer; it grows up to QMP_LINE_MAX as long lines need */
#define QMP_BUF_INIT (64 * 1024)
/* qmp_process() reads at most this many times per call (fairness) */
#define QMP_PROCESS_READS 16
/* Delay between connect attempts while QEMU has not created the socket */
#define QMP_CONNECT_RETRY_MS 20

struct qmp_evnode {
	json_t *msg;
	struct qmp_evnode *next;
};

/* one command sent with qmp_command_async(); @id 0 is a free slot */
struct qmp_async {
	int64_t id;
	uint64_t deadline;
	qmp_reply_cb cb;
	void *opaque;
	json_t *reply;		/* arrived, to be handed over by qmp_dispatch() */
};

struct qmp {
	int fd;
	int broken;		/* 0, or the negative errno that broke the stream */

	char *buf;		/* input bytes [start, len) not yet parsed */
	size_t cap, start, len, scan;

	bool greeted;
	int ver_major, ver_minor, ver_micro;
	char package[128];

	int64_t next_id;
	bool waiting;		/* a command is in flight, awaiting wait_id */
	int64_t wait_id;
	json_t *reply;		/* the reply to wait_id once it arrived */

	bool have_error;
	char err_class[64];
	char err_desc[1024];

	struct {		/* qmp_wait_event(): the event being waited for */
		bool on, seen;
		enum qmp_event_kind kind;
		qmp_event_match match;
		void *arg;
	} evwait;

	struct qmp_async async[QMP_ASYNC_MAX];

	struct qmp_evnode *ev_head, *ev_tail;
	size_t ev_count;
	size_t ev_dropped;
	qmp_event_cb cb;
	void *opaque;
};

static const char *const qmp_event_names[] = {
	[QMP_EV_OTHER] = "OTHER",
	[QMP_EV_SHUTDOWN] = "SHUTDOWN",
	[QMP_EV_POWERDOWN] = "POWERDOWN",
	[QMP_EV_STOP] = "STOP",
	[QMP_EV_RESUME] = "RESUME",
	[QMP_EV_RESET] = "RESET",
	[QMP_EV_GUEST_PANICKED] = "GUEST_PANICKED",
	[QMP_EV_SUSPEND] = "SUSPEND",
	[QMP_EV_WAKEUP] = "WAKEUP",
	[QMP_EV_WATCHDOG] = "WATCHDOG",
	[QMP_EV_BLOCK_IO_ERROR] = "BLOCK_IO_ERROR",
	[QMP_EV_DEVICE_DELETED] = "DEVICE_DELETED",
};

/* QEMU's qapi/run-state.json RunState values */
static const char *const qmp_runstate_names[] = {
	[QMP_RS_OTHER] = "unknown",
	[QMP_RS_DEBUG] = "debug",
	[QMP_RS_INMIGRATE] = "inmigrate",
	[QMP_RS_INTERNAL_ERROR] = "internal-error",
	[QMP_RS_IO_ERROR] = "io-error",
	[QMP_RS_PAUSED] = "paused",
	[QMP_RS_POSTMIGRATE] = "postmigrate",
	[QMP_RS_PRELAUNCH] = "prelaunch",
	[QMP_RS_FINISH_MIGRATE] = "finish-migrate",
	[QMP_RS_RESTORE_VM] = "restore-vm",
	[QMP_RS_RUNNING] = "running",
	[QMP_RS_SAVE_VM] = "save-vm",
	[QMP_RS_SHUTDOWN] = "shutdown",
	[QMP_RS_SUSPENDED] = "suspended",
	[QMP_RS_WATCHDOG] = "watchdog",
	[QMP_RS_GUEST_PANICKED] = "guest-panicked",
	[QMP_RS_COLO] = "colo",
};

const char *qmp_event_name(enum qmp_event_kind kind)
{
	if ((size_t)kind >= UTIL_ARRAY_SIZE(qmp_event_names) || !qmp_event_names[kind])
		return "OTHER";
	return qmp_event_names[kind];
}

const char *qmp_runstate_name(enum qmp_runstate st)
{
	if ((size_t)st >= UTIL_ARRAY_SIZE(qmp_runstate_names) || !qmp_runstate_names[st])
		return "unknown";
	return qmp_runstate_names[st];
}

/*
 * Strings may hold NUL bytes (we parse with JSON_ALLOW_NUL so that a guest
 * able to get one into an event cannot break the monitor); compare with the
 * length, so "SHUTDOWN\u0000x" is not taken for SHUTDOWN.
 */
static bool qmp_str_eq(const json_t *s, const char *lit)
{
	size_t n = strlen(lit);

	return json_is_string(s) && json_string_length(s) == n &&
	       memcmp(json_string_value(s), lit, n) == 0;
}

static enum qmp_event_kind qmp_event_kind_of(const json_t *name)
{
	for (size_t i = 1; i < UTIL_ARRAY_SIZE(qmp_event_names); i++)
		if (qmp_event_names[i] && qmp_str_eq(name, qmp_event_names[i]))
			return (enum qmp_event_kind)i;
	return QMP_EV_OTHER;
}

/* Escape a JSON string (length-aware) for logs and for strings we keep */
static const char *qmp_esc(char *dst, size_t n, const json_t *s)
{
	if (!json_is_string(s))
		return log_escape(dst, n, "", 0);
	return log_escape(dst, n, json_string_value(s), json_string_length(s));
}

/* Record the first error that broke the stream; later calls return it */
static int qmp_break(struct qmp *q, int rc)
{
	if (!q->broken) {
		q->broken = rc;
		if (rc != -ECONNRESET)
			log_warno(rc, "QMP connection unusable");
		else
			log_debug("QMP: monitor closed the connection");
	}
	return q->broken;
}

/* ---- event queue ---------------------------------------------------- */

/*
 * Queue an event for the callback.  The queue is bounded so a monitor
 * flooding events while we wait for a reply cannot exhaust memory: past
 * QMP_EVENT_QUEUE_SOFT only events we act on are kept, past
 * QMP_EVENT_QUEUE_HARD nothing is.  Takes ownership of @m.
 */
static void qmp_ev_push(struct qmp *q, json_t *m, enum qmp_event_kind kind)
{
	struct qmp_evnode *n;

	/* before the bounds: an event waited for counts even when it is dropped */
	if (q->evwait.on && !q->evwait.seen && kind == q->evwait.kind &&
	    (!q->evwait.match || q->evwait.match(json_object_get(m, "data"), q->evwait.arg)))
		q->evwait.seen = true;
	if (q->ev_count >= QMP_EVENT_QUEUE_HARD ||
	    (q->ev_count >= QMP_EVENT_QUEUE_SOFT && kind == QMP_EV_OTHER)) {
		if (q->ev_dropped++ == 0)
			log_warn("QMP: event queue full, dropping events");
		json_decref(m);
		return;
	}
	n = calloc(1, sizeof(*n));
	if (!n) {
		q->ev_dropped++;
		log_warn("QMP: out of memory, event dropped");
		json_decref(m);
		return;
	}
	n->msg = m;
	if (q->ev_tail)
		q->ev_tail->next = n;
	else
		q->ev_head = n;
	q->ev_tail = n;
	q->ev_count++;
}

/* error class and desc of a reply into qmp_last_error()'s place; -EIO or 0 */
static int qmp_take_error(struct qmp *q, const json_t *r)
{
	const json_t *err = json_object_get(r, "error");

	q->have_error = err != NULL;
	q->err_class[0] = q->err_desc[0] = '\0';
	if (!err)
		return 0;
	qmp_esc(q->err_class, sizeof(q->err_class), json_object_get(err, "class"));
	qmp_esc(q->err_desc, sizeof(q->err_desc), json_object_get(err, "desc"));
	return -EIO;
}

/* free slot @a and call its callback with @rc and @ret (borrowed) */
static void qmp_async_finish(struct qmp *q, struct qmp_async *a, int rc, json_t *ret)
{
	struct qmp_async done = *a;

	memset(a, 0, sizeof(*a));
	if (done.cb)
		done.cb(q, rc, ret, done.opaque);
}

/*
 * Hand arrived replies of asynchronous commands to their callbacks.  The
 * slot is freed before the call, so a callback may send the next command.
 */
static void qmp_async_dispatch(struct qmp *q)
{
	for (size_t i = 0; i < QMP_ASYNC_MAX; i++) {
		struct qmp_async *a = &q->async[i];
		json_t *r = a->reply;
		int rc;

		if (!a->id || !r)
			continue;
		a->reply = NULL;
		rc = qmp_take_error(q, r);
		qmp_async_finish(q, a, rc, rc ? NULL : json_object_get(r, "return"));
		json_decref(r);
	}
	/* a broken stream answers nothing more: tell whoever still waits */
	for (size_t i = 0; q->broken && i < QMP_ASYNC_MAX; i++)
		if (q->async[i].id)
			qmp_async_finish(q, &q->async[i], q->broken, NULL);
}

/*
 * Hand queued events to the callback in arrival order.  The node is
 * unlinked before the call, so a callback that itself runs qmp_command()
 * (which dispatches too) sees the later events after this one, never twice.
 */
static void qmp_dispatch(struct qmp *q)
{
	while (q->cb && q->ev_head) {
		struct qmp_evnode *n = q->ev_head;
		const json_t *ts;
		json_t *name, *data;
		struct qmp_event ev = { 0 };

		q->ev_head = n->next;
		if (!q->ev_head)
			q->ev_tail = NULL;
		q->ev_count--;

		/* fields were checked by qmp_handle_event() */
		name = json_object_get(n->msg, "event");
		data = json_object_get(n->msg, "data");
		ts = json_object_get(n->msg, "timestamp");
		ev.kind = qmp_event_kind_of(name);
		ev.name = json_string_value(name);
		ev.data = data;
		if (ts) {
			ev.ts_sec = json_integer_value(json_object_get(ts, "seconds"));
			ev.ts_usec = json_integer_value(json_object_get(ts, "microseconds"));
		}
		q->cb(q, &ev, q->opaque);
		json_decref(n->msg);
		free(n);
	}
	qmp_async_dispatch(q);
}

/* ---- message handling ----------------------------------------------- */

static int qmp_get_int(const json_t *obj, const char *key, int64_t min, int64_t max,
		       int64_t *out)
{
	const json_t *v = json_object_get(obj, key);
	json_int_t x;

	if (!json_is_integer(v))
		return -EPROTO;
	x = json_integer_value(v);
	if (x < min || x > max)
		return -EPROTO;
	*out = x;
	return 0;
}

/* {"QMP": {"version": {"qemu": {"major","minor","micro"}, "package"}, ...}}; borrows @m */
static int qmp_handle_greeting(struct qmp *q, const json_t *m)
{
	const json_t *qmp = json_object_get(m, "QMP");
	const json_t *ver, *qemu, *pkg, *caps;
	int64_t maj, min, mic;

	if (q->greeted) {
		log_warn("QMP: second greeting");
		return -EPROTO;
	}
	ver = json_object_get(qmp, "version");
	qemu = json_object_get(ver, "qemu");
	if (!json_is_object(qmp) || !json_is_object(ver) || !json_is_object(qemu))
		goto bad;
	if (qmp_get_int(qemu, "major", 0, 100000, &maj) < 0 ||
	    qmp_get_int(qemu, "minor", 0, 100000, &min) < 0 ||
	    qmp_get_int(qemu, "micro", 0, 100000, &mic) < 0)
		goto bad;
	pkg = json_object_get(ver, "package");
	if (pkg && !json_is_string(pkg))
		goto bad;
	caps = json_object_get(qmp, "capabilities");
	if (caps && !json_is_array(caps))
		goto bad;
	q->ver_major = (int)maj;
	q->ver_minor = (int)min;
	q->ver_micro = (int)mic;
	qmp_esc(q->package, sizeof(q->package), pkg);
	q->greeted = true;
	log_debug("QMP: greeting from QEMU %d.%d.%d %s", q->ver_major, q->ver_minor,
		  q->ver_micro, q->package);
	return 0;
bad:
	log_warn("QMP: malformed greeting");
	return -EPROTO;
}

static int qmp_handle_event(struct qmp *q, json_t *m)
{
	const json_t *name = json_object_get(m, "event");
	const json_t *data = json_object_get(m, "data");
	const json_t *ts = json_object_get(m, "timestamp");
	enum qmp_event_kind kind;
	int64_t v;

	if (!json_is_string(name) || json_string_length(name) == 0)
		goto bad;
	if (data && !json_is_object(data))
		goto bad;
	if (ts && (!json_is_object(ts) ||
		   qmp_get_int(ts, "seconds", -1, INT64_MAX, &v) < 0 ||
		   qmp_get_int(ts, "microseconds", -1, INT64_MAX, &v) < 0))
		goto bad;
	kind = qmp_event_kind_of(name);
	if (log_get_level() >= LOG_LVL_DEBUG) {
		char esc[128];

		log_debug("QMP: event %s", qmp_esc(esc, sizeof(esc), name));
	}
	qmp_ev_push(q, m, kind);
	return 0;
bad:
	log_warn("QMP: malformed event");
	return -EPROTO;
}

static int qmp_handle_reply(struct qmp *q, json_t *m)
{
	const json_t *id = json_object_get(m, "id");
	const json_t *err = json_object_get(m, "error");

	if (err && (!json_is_object(err) ||
		    !json_is_string(json_object_get(err, "class")) ||
		    !json_is_string(json_object_get(err, "desc")))) {
		log_warn("QMP: malformed error reply");
		return -EPROTO;
	}
	if (q->waiting && json_is_integer(id) && json_integer_value(id) == q->wait_id &&
	    !q->reply) {
		q->reply = m;
		return 0;
	}
	for (size_t i = 0; json_is_integer(id) && i < QMP_ASYNC_MAX; i++) {
		if (q->async[i].id && q->async[i].id == json_integer_value(id) &&
		    !q->async[i].reply) {
			q->async[i].reply = m;
			return 0;
		}
	}
	/* Not for the command in flight: most likely the late reply to one
	 * that timed out.  Drop it; ids keep it from being misattributed. */
	if (json_is_integer(id) && json_integer_value(id) > 0 &&
	    json_integer_value(id) < q->next_id)
		log_debug("QMP: ignoring late reply to command %" PRId64,
			  (int64_t)json_integer_value(id));
	else
		log_warn("QMP: ignoring a reply to no command of ours");
	json_decref(m);
	return 0;
}

/* Classify one parsed line and act on it; takes ownership of @m */
static int qmp_handle(struct qmp *q, json_t *m)
{
	int rc;

	if (!json_is_object(m)) {
		log_warn("QMP: message is not a JSON object");
		rc = -EPROTO;
	} else if (json_object_get(m, "QMP")) {
		rc = qmp_handle_greeting(q, m);
	} else if (!q->greeted) {
		log_warn("QMP: no greeting from the monitor");
		rc = -EPROTO;
	} else if (json_object_get(m, "event")) {
		rc = qmp_handle_event(q, m);
		if (rc == 0)
			return 0;
	} else if (json_object_get(m, "return") || json_object_get(m, "error")) {
		rc = qmp_handle_reply(q, m);
		if (rc == 0)
			return 0;
	} else {
		log_warn("QMP: unknown message");
		rc = -EPROTO;
	}
	json_decref(m);
	return rc;
}

/* ---- framing -------------------------------------------------------- */

/*
 * Take the next complete line from the buffer.
 * Return: 1 with *@mp set (NULL for a blank line), 0 if no complete line is
 * buffered, or -E2BIG / -EPROTO.
 */
static int qmp_take_line(struct qmp *q, json_t **mp)
{
	const char *line = q->buf + q->start;
	const char *nl;
	size_t n, linelen;
	json_error_t jerr;

	nl = memchr(q->buf + q->scan, '\n', q->len - q->scan);
	if (!nl) {
		q->scan = q->len;
		if (q->len - q->start >= QMP_LINE_MAX)
			return -E2BIG;
		return 0;
	}
	linelen = (size_t)(nl - line) + 1;
	if (linelen > QMP_LINE_MAX)
		return -E2BIG;
	q->start += linelen;
	q->scan = q->start;

	n = linelen - 1;
	if (n && line[n - 1] == '\r')	/* QEMU ends lines with "\r\n" */
		n--;
	while (n && (line[0] == ' ' || line[0] == '\t')) {
		line++;
		n--;
	}
	if (!n) {
		*mp = NULL;
		return 1;
	}
	*mp = json_loadb(line, n, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
	if (!*mp) {
		char esc[160];

		log_warn("QMP: invalid JSON from the monitor (%s)",
			 log_escape(esc, sizeof(esc), jerr.text, strnlen(jerr.text, sizeof(jerr.text))));
		return -EPROTO;
	}
	return 1;
}

/* Parse and handle every complete buffered line */
static int qmp_drain(struct qmp *q)
{
	for (;;) {
		json_t *m;
		int rc = qmp_take_line(q, &m);

		if (rc <= 0)
			return rc;
		if (m) {
			rc = qmp_handle(q, m);
			if (rc < 0)
				return rc;
		}
	}
}

/*
 * One non-blocking read into the buffer.
 * Return: >0 bytes read, 0 if nothing is available, -ECONNRESET on EOF,
 * -E2BIG if an unterminated line already fills QMP_LINE_MAX, or -errno.
 */
static int qmp_read(struct qmp *q)
{
	ssize_t r;

	if (q->start) {		/* compact: parsed lines are gone */
		memmove(q->buf, q->buf + q->start, q->len - q->start);
		q->len -= q->start;
		q->scan -= q->start;
		q->start = 0;
	}
	if (q->len >= QMP_LINE_MAX)
		return -E2BIG;
	if (q->cap - q->len < 4096 && q->cap < QMP_LINE_MAX) {
		size_t ncap = q->cap * 2 > QMP_LINE_MAX ? QMP_LINE_MAX : q->cap * 2;
		char *nb = realloc(q->buf, ncap);

		if (!nb)
			return -ENOMEM;
		q->buf = nb;
		q->cap = ncap;
	}
	for (;;) {
		r = read(q->fd, q->buf + q->len, q->cap - q->len);
		if (r >= 0 || errno != EINTR)
			break;
	}
	if (r < 0)
		return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -errno;
	if (r == 0) {
		if (q->len)
			log_debug("QMP: EOF in the middle of a line, %zu bytes dropped", q->len);
		return -ECONNRESET;
	}
	q->len += (size_t)r;
	return (int)(r > INT32_MAX ? INT32_MAX : r);
}

/* Milliseconds left until @deadline (UINT64_MAX: forever), capped for poll() */
static int qmp_left(uint64_t deadline)
{
	uint64_t now;

	if (deadline == UINT64_MAX)
		return -1;
	now = util_monotonic_ms();
	if (now >= deadline)
		return 0;
	return deadline - now > INT32_MAX ? INT32_MAX : (int)(deadline - now);
}

static uint64_t qmp_deadline(int timeout_ms)
{
	return timeout_ms < 0 ? UINT64_MAX : util_monotonic_ms() + (uint64_t)timeout_ms;
}

static bool qmp_done_greeting(const struct qmp *q) { return q->greeted; }
static bool qmp_done_event(const struct qmp *q) { return q->evwait.seen; }
static bool qmp_done_reply(const struct qmp *q) { return q->reply != NULL; }

/*
 * Read and handle lines until @done or @deadline.  Everything complete in
 * the buffer is handled before the next read, so lines that arrived before
 * an EOF are never lost to it.
 */
static int qmp_wait(struct qmp *q, uint64_t deadline, bool (*done)(const struct qmp *))
{
	for (;;) {
		struct pollfd pfd = { .fd = q->fd, .events = POLLIN };
		int rc, left;

		rc = qmp_drain(q);
		if (rc < 0)
			return qmp_break(q, rc);
		if (done(q))
			return 0;
		rc = qmp_read(q);
		if (rc < 0)
			return qmp_break(q, rc);
		if (rc > 0)
			continue;
		left = qmp_left(deadline);
		if (left == 0)
			return -ETIMEDOUT;
		rc = poll(&pfd, 1, left);
		if (rc < 0 && errno != EINTR)
			return qmp_break(q, -errno);
	}
}

/* sendmsg() with @fd as SCM_RIGHTS (QMP getfd, add-fd) */
static ssize_t qmp_send_fd(int sock, const char *s, size_t n, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = (void *)s, .iov_len = n };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *cm;

	memset(&u, 0, sizeof(u));
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	return sendmsg(sock, &mh, MSG_NOSIGNAL);
}

/*
 * Write a whole message.  A timeout after part of it went out leaves QEMU
 * with half a command, so the stream is broken then; before any byte went
 * out, the connection stays usable.
 */
static int qmp_send(struct qmp *q, const char *s, size_t n, int pass_fd, uint64_t deadline)
{
	size_t off = 0;

	while (off < n) {
		struct pollfd pfd = { .fd = q->fd, .events = POLLOUT };
		ssize_t w;
		int left;

		/* the fd rides on the first byte that goes out; QEMU's monitor
		 * keeps it until the command reading that byte consumes it */
		if (pass_fd >= 0 && off == 0)
			w = qmp_send_fd(q->fd, s, n, pass_fd);
		else
			w = send(q->fd, s + off, n - off, MSG_NOSIGNAL);

		if (w > 0) {
			off += (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return qmp_break(q, errno == EPIPE ? -ECONNRESET : -errno);
		left = qmp_left(deadline);
		if (left == 0)
			return off ? qmp_break(q, -ETIMEDOUT) : -ETIMEDOUT;
		if (poll(&pfd, 1, left) < 0 && errno != EINTR)
			return qmp_break(q, -errno);
	}
	return 0;
}

/* ---- public API ----------------------------------------------------- */

int qmp_fd(const struct qmp *q) { return q->fd; }

size_t qmp_pending(const struct qmp *q) { return q->ev_count; }

void qmp_set_event_cb(struct qmp *q, qmp_event_cb cb, void *opaque)
{
	q->cb = cb;
	q->opaque = opaque;
}

qmp_event_cb qmp_get_event_cb(const struct qmp *q, void **opaque)
{
	if (opaque)
		*opaque = q->opaque;
	return q->cb;
}

const char *qmp_last_error(const struct qmp *q, const char **desc)
{
	if (!q->have_error)
		return NULL;
	if (desc)
		*desc = q->err_desc;
	return q->err_class;
}

const char *qmp_version(const struct qmp *q, int *major, int *minor, int *micro)
{
	if (major)
		*major = q->ver_major;
	if (minor)
		*minor = q->ver_minor;
	if (micro)
		*micro = q->ver_micro;
	return q->package;
}

void qmp_close(struct qmp *q)
{
	if (!q)
		return;
	/* whoever waits for a reply learns that none will come */
	if (!q->broken)
		q->broken = -ECONNRESET;
	for (size_t i = 0; i < QMP_ASYNC_MAX; i++) {
		json_decref(q->async[i].reply);
		q->async[i].reply = NULL;
		if (q->async[i].id)
			qmp_async_finish(q, &q->async[i], -ECONNRESET, NULL);
	}
	while (q->ev_head) {
		struct qmp_evnode *n = q->ev_head;

		q->ev_head = n->next;
		json_decref(n->msg);
		free(n);
	}
	json_decref(q->reply);
	if (q->fd >= 0)
		close(q->fd);
	free(q->buf);
	free(q);
}

int qmp_process(struct qmp *q)
{
	int rc = 0;

	if (!q->broken) {
		for (int i = 0; i < QMP_PROCESS_READS; i++) {
			rc = qmp_drain(q);
			if (rc < 0)
				break;
			rc = qmp_read(q);
			if (rc <= 0)
				break;
		}
		if (rc >= 0)
			rc = qmp_drain(q);
		if (rc < 0)
			qmp_break(q, rc);
	}
	qmp_dispatch(q);
	return q->broken;
}

/* {"execute": @name, "arguments": @args, "id": N}\n into *@linep (malloc'd) */
static int qmp_build(struct qmp *q, const char *name, json_t *args, int64_t *idp, char **linep,
		     size_t *np)
{
	json_t *msg;
	char *s, *line;
	size_t n;
	int64_t id;

	if (q->broken)
		return q->broken;
	if (!name || (args && !json_is_object(args)))
		return -EINVAL;
	id = q->next_id++;
	msg = json_object();
	if (!msg)
		return -ENOMEM;
	/* json_string() refuses invalid UTF-8: such a name is no command */
	if (json_object_set_new(msg, "execute", json_string(name)) < 0 ||
	    (args && json_object_set(msg, "arguments", args) < 0) ||
	    json_object_set_new(msg, "id", json_integer(id)) < 0) {
		json_decref(msg);
		return -EINVAL;
	}
	s = json_dumps(msg, JSON_COMPACT);
	json_decref(msg);
	if (!s)
		return -ENOMEM;
	n = strlen(s);
	line = realloc(s, n + 2);
	if (!line) {
		free(s);
		return -ENOMEM;
	}
	line[n] = '\n';
	line[n + 1] = '\0';
	*idp = id;
	*linep = line;
	*np = n + 1;
	return 0;
}

/* Send one command and wait for its reply; events stay queued */
static int qmp_exec(struct qmp *q, const char *name, json_t *args, int pass_fd, json_t **reply,
		    uint64_t deadline)
{
	char *line = NULL;
	size_t n;
	int64_t id;
	json_t *r;
	int rc;

	q->have_error = false;
	q->err_class[0] = q->err_desc[0] = '\0';
	rc = qmp_build(q, name, args, &id, &line, &n);
	if (rc)
		return rc;
	q->waiting = true;
	q->wait_id = id;
	rc = qmp_send(q, line, n, pass_fd, deadline);
	if (rc == 0)
		rc = qmp_wait(q, deadline, qmp_done_reply);
	q->waiting = false;
	free(line);
	if (rc < 0) {
		if (rc == -ETIMEDOUT) {
			char esc[64];

			log_warn("QMP: no reply to %s within the timeout",
				 log_escape(esc, sizeof(esc), name, strlen(name)));
		}
		return rc;
	}
	r = q->reply;
	q->reply = NULL;
	rc = qmp_take_error(q, r);
	if (!rc && reply)
		*reply = json_incref(json_object_get(r, "return"));
	json_decref(r);
	return rc;
}

int qmp_command_async(struct qmp *q, const char *name, json_t *args, int timeout_ms,
		      qmp_reply_cb cb, void *opaque)
{
	struct qmp_async *a = NULL;
	char *line = NULL;
	size_t n;
	int64_t id;
	int rc;

	for (size_t i = 0; i < QMP_ASYNC_MAX && !a; i++)
		if (!q->async[i].id)
			a = &q->async[i];
	if (!a)
		return -EBUSY;
	rc = qmp_build(q, name, args, &id, &line, &n);
	if (rc)
		return rc;
	/* a command line is small and the socket's buffer empty but for a
	 * stuck QEMU: a short bound on the send keeps the caller responsive */
	rc = qmp_send(q, line, n, -1, qmp_deadline(QMP_ASYNC_SEND_MS));
	free(line);
	if (rc)
		return rc;
	*a = (struct qmp_async){ .id = id, .deadline = qmp_deadline(timeout_ms), .cb = cb,
				 .opaque = opaque };
	return 0;
}

int qmp_async_next_ms(const struct qmp *q)
{
	uint64_t now = util_monotonic_ms(), next = UINT64_MAX;

	for (size_t i = 0; i < QMP_ASYNC_MAX; i++)
		if (q->async[i].id && q->async[i].deadline < next)
			next = q->async[i].deadline;
	if (next == UINT64_MAX)
		return -1;
	return next <= now ? 0 : next - now > INT32_MAX ? INT32_MAX : (int)(next - now);
}

void qmp_async_expire(struct qmp *q)
{
	uint64_t now = util_monotonic_ms();

	for (size_t i = 0; i < QMP_ASYNC_MAX; i++) {
		struct qmp_async *a = &q->async[i];

		if (a->id && !a->reply && a->deadline <= now) {
			log_warn("QMP: no reply to command %" PRId64 " within the timeout", a->id);
			qmp_async_finish(q, a, -ETIMEDOUT, NULL);
		}
	}
}

int qmp_command(struct qmp *q, const char *name, json_t *args, json_t **reply, int timeout_ms)
{
	return qmp_command_fd(q, name, args, -1, reply, timeout_ms);
}

int qmp_command_fd(struct qmp *q, const char *name, json_t *args, int fd, json_t **reply,
		   int timeout_ms)
{
	int rc = qmp_exec(q, name, args, fd, reply, qmp_deadline(timeout_ms));

	/* lines read past the reply would not wake the caller's poll() again */
	if (!q->broken) {
		int d = qmp_drain(q);

		if (d < 0)
			qmp_break(q, d);
	}
	qmp_dispatch(q);
	return rc;
}

int qmp_open_fd(int fd, int timeout_ms, struct qmp **qp)
{
	uint64_t deadline = qmp_deadline(timeout_ms);
	struct qmp *q;
	int rc;

	if (fd < 0)
		return -EBADF;
	rc = util_set_nonblock(fd, true);
	if (rc == 0)
		rc = util_set_cloexec(fd, true);
	if (rc < 0)
		return rc;
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->fd = fd;
	q->next_id = 1;
	q->cap = QMP_BUF_INIT;
	q->buf = malloc(q->cap);
	if (!q->buf) {
		rc = -ENOMEM;
		goto err_free;
	}
	rc = qmp_wait(q, deadline, qmp_done_greeting);
	if (rc < 0)
		goto err_free;
	/* Until capabilities are negotiated QEMU accepts no other command */
	rc = qmp_exec(q, "qmp_capabilities", NULL, -1, NULL, deadline);
	if (rc < 0) {
		if (rc == -EIO)
			log_warn("QMP: qmp_capabilities refused: %s", q->err_desc);
		goto err_free;
	}
	*qp = q;
	return 0;

err_free:
	q->fd = -1;		/* the caller keeps its fd on failure */
	qmp_close(q);
	return rc;
}

int qmp_connect(const char *path, int timeout_ms, struct qmp **qp)
{
	uint64_t deadline = qmp_deadline(timeout_ms);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, rc, left;

	if (!path)
		return -EINVAL;
	if (util_snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path) < 0)
		return -ENAMETOOLONG;
	for (;;) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		rc = -errno;
		close(fd);
		if (rc == -EINTR)
			continue;
		/* QEMU has not created or not started listening on it yet */
		if (rc != -ENOENT && rc != -ECONNREFUSED)
			return rc;
		left = qmp_left(deadline);
		if (left == 0)
			return -ETIMEDOUT;
		if (left < 0 || left > QMP_CONNECT_RETRY_MS)
			left = QMP_CONNECT_RETRY_MS;
		nanosleep(&(struct timespec){ .tv_nsec = (long)left * 1000000L }, NULL);
	}
	left = qmp_left(deadline);
	if (left == 0) {
		close(fd);
		return -ETIMEDOUT;
	}
	rc = qmp_open_fd(fd, left, qp);
	if (rc < 0)
		close(fd);
	return rc;
}

/* ---- helpers -------------------------------------------------------- */

static int qmp_simple(struct qmp *q, const char *name, int timeout_ms)
{
	return qmp_command(q, name, NULL, NULL, timeout_ms);
}

int qmp_system_powerdown(struct qmp *q, int timeout_ms)
{
	return qmp_simple(q, "system_powerdown", timeout_ms);
}

int qmp_stop(struct qmp *q, int timeout_ms) { return qmp_simple(q, "stop", timeout_ms); }

int qmp_cont(struct qmp *q, int timeout_ms) { return qmp_simple(q, "cont", timeout_ms); }

int qmp_quit(struct qmp *q, int timeout_ms)
{
	int rc = qmp_simple(q, "quit", timeout_ms);

	return rc == -ECONNRESET ? 0 : rc;
}

int qmp_query_status(struct qmp *q, enum qmp_runstate *st, char *name, size_t namesz,
		     int timeout_ms)
{
	json_t *r = NULL, *status;
	enum qmp_runstate s = QMP_RS_OTHER;
	char esc[64];
	int rc;

	rc = qmp_command(q, "query-status", NULL, &r, timeout_ms);
	if (rc < 0)
		return rc;
	status = json_object_get(r, "status");
	if (!json_is_object(r) || !json_is_string(status)) {
		log_warn("QMP: query-status reply has no status");
		rc = -EPROTO;
		goto out;
	}
	for (size_t i = 1; i < UTIL_ARRAY_SIZE(qmp_runstate_names); i++)
		if (qmp_runstate_names[i] && qmp_str_eq(status, qmp_runstate_names[i]))
			s = (enum qmp_runstate)i;
	if (name) {
		rc = util_snprintf(name, namesz, "%s", qmp_esc(esc, sizeof(esc), status));
		if (rc < 0)
			goto out;
	}
	*st = s;
out:
	json_decref(r);
	return rc;
}

/* ---- fds, devices, migration (warm start) ---------------------------- */

void qmp_event_arm(struct qmp *q, enum qmp_event_kind kind, qmp_event_match match, void *arg)
{
	q->evwait.on = true;
	q->evwait.seen = false;
	q->evwait.kind = kind;
	q->evwait.match = match;
	q->evwait.arg = arg;
}

int qmp_event_wait(struct qmp *q, int timeout_ms)
{
	int rc = 0;

	if (!q->evwait.on)
		return -EINVAL;
	if (!q->evwait.seen)
		rc = q->broken ? q->broken : qmp_wait(q, qmp_deadline(timeout_ms), qmp_done_event);
	q->evwait.on = false;
	qmp_dispatch(q);
	return rc;
}

int qmp_getfd(struct qmp *q, const char *fdname, int fd, int timeout_ms)
{
	json_t *args;
	int rc;

	if (fd < 0)
		return -EBADF;
	args = json_pack("{s:s}", "fdname", fdname);
	if (!args)
		return -EINVAL;
	rc = qmp_command_fd(q, "getfd", args, fd, NULL, timeout_ms);
	json_decref(args);
	return rc;
}

int qmp_closefd(struct qmp *q, const char *fdname, int timeout_ms)
{
	json_t *args = json_pack("{s:s}", "fdname", fdname);
	int rc;

	if (!args)
		return -EINVAL;
	rc = qmp_command(q, "closefd", args, NULL, timeout_ms);
	json_decref(args);
	return rc;
}

/* a command whose only argument is the string @key = @val */
static int qmp_cmd_str(struct qmp *q, const char *cmd, const char *key, const char *val,
		       int timeout_ms)
{
	json_t *args = json_pack("{s:s}", key, val);
	int rc;

	if (!args)
		return -EINVAL;	/* not UTF-8 */
	rc = qmp_command(q, cmd, args, NULL, timeout_ms);
	json_decref(args);
	return rc;
}

int qmp_migrate(struct qmp *q, const char *uri, int timeout_ms)
{
	return qmp_cmd_str(q, "migrate", "uri", uri, timeout_ms);
}

int qmp_migrate_incoming(struct qmp *q, const char *uri, int timeout_ms)
{
	return qmp_cmd_str(q, "migrate-incoming", "uri", uri, timeout_ms);
}

int qmp_device_del(struct qmp *q, const char *id, int timeout_ms)
{
	return qmp_cmd_str(q, "device_del", "id", id, timeout_ms);
}

int qmp_device_add(struct qmp *q, json_t *props, int timeout_ms)
{
	if (!json_is_object(props) || !json_is_string(json_object_get(props, "driver")))
		return -EINVAL;
	return qmp_command(q, "device_add", props, NULL, timeout_ms);
}

/* QEMU's qapi/migration.json MigrationStatus values */
static const char *const qmp_mig_names[] = {
	[QMP_MIG_OTHER] = "unknown",
	[QMP_MIG_NONE] = "none",
	[QMP_MIG_SETUP] = "setup",
	[QMP_MIG_ACTIVE] = "active",
	[QMP_MIG_DEVICE] = "device",
	[QMP_MIG_COMPLETED] = "completed",
	[QMP_MIG_FAILED] = "failed",
	[QMP_MIG_CANCELLING] = "cancelling",
	[QMP_MIG_CANCELLED] = "cancelled",
	[QMP_MIG_PRE_SWITCHOVER] = "pre-switchover",
	[QMP_MIG_WAIT_UNPLUG] = "wait-unplug",
};

int qmp_query_migrate(struct qmp *q, struct qmp_migrate_info *info, int timeout_ms)
{
	json_t *r = NULL, *status, *ram, *desc;
	struct qmp_migrate_info mi = { .status = QMP_MIG_NONE };
	int64_t v;
	int rc;

	rc = qmp_command(q, "query-migrate", NULL, &r, timeout_ms);
	if (rc < 0)
		return rc;
	if (!json_is_object(r)) {
		rc = -EPROTO;
		goto out;
	}
	/* no "status" at all: no migration has run (MigrationInfo is empty) */
	status = json_object_get(r, "status");
	if (status) {
		if (!json_is_string(status)) {
			rc = -EPROTO;
			goto out;
		}
		mi.status = QMP_MIG_OTHER;
		for (size_t i = 1; i < UTIL_ARRAY_SIZE(qmp_mig_names); i++)
			if (qmp_mig_names[i] && qmp_str_eq(status, qmp_mig_names[i]))
				mi.status = (enum qmp_mig_status)i;
	}
	ram = json_object_get(r, "ram");
	if (ram && !json_is_object(ram)) {
		rc = -EPROTO;
		goto out;
	}
	if (ram && qmp_get_int(ram, "total", 0, INT64_MAX, &v) == 0)
		mi.ram_total = (uint64_t)v;
	if (ram && qmp_get_int(ram, "transferred", 0, INT64_MAX, &v) == 0)
		mi.ram_transferred = (uint64_t)v;
	desc = json_object_get(r, "error-desc");
	if (desc && !json_is_string(desc)) {
		rc = -EPROTO;
		goto out;
	}
	qmp_esc(mi.error, sizeof(mi.error), desc);
	*info = mi;
out:
	if (rc == -EPROTO)
		log_warn("QMP: malformed query-migrate reply");
	json_decref(r);
	return rc;
}

const char *qmp_migrate_status_name(enum qmp_mig_status st)
{
	if ((size_t)st >= UTIL_ARRAY_SIZE(qmp_mig_names) || !qmp_mig_names[st])
		return "unknown";
	return qmp_mig_names[st];
}

/* one entry of query-block: is it the drive whose image is @file (NULL: a writable one)? */
static bool qmp_block_is(const json_t *b, const char *file, char *dev, size_t n)
{
	const json_t *ins = json_object_get(b, "inserted"), *f, *d;

	if (!json_is_object(b) || !json_is_object(ins))
		return false;
	f = json_object_get(ins, "file");
	d = json_object_get(b, "device");
	if (file ? !qmp_str_eq(f, file) : !json_is_false(json_object_get(ins, "ro")))
		return false;
	if (!json_is_string(d) || json_string_length(d) == 0 ||
	    json_string_length(d) >= n || memchr(json_string_value(d), 0, json_string_length(d)))
		return false;
	memcpy(dev, json_string_value(d), json_string_length(d) + 1);
	return true;
}

int qmp_block_device(struct qmp *q, const char *file, char *dev, size_t n, int timeout_ms)
{
	json_t *r = NULL, *b;
	size_t i, found = 0;
	int rc;

	rc = qmp_command(q, "query-block", NULL, &r, timeout_ms);
	if (rc < 0)
		return rc;
	rc = -ENOENT;
	if (!json_is_array(r)) {
		log_warn("QMP: query-block did not return a list");
		rc = -EPROTO;
	} else {
		json_array_foreach(r, i, b)
			if (qmp_block_is(b, file, dev, n))
				found++;
		/* by writability only one will do: two writable drives, no guess */
		if (found == 1 || (found && file))
			rc = 0;
		else if (found)
			rc = -ENOTUNIQ;
	}
	json_decref(r);
	return rc;
}
