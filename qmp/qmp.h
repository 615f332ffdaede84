/* SPDX-License-Identifier: MIT */
#ifndef HUTCH_QMP_H
#define HUTCH_QMP_H
/**
 * DOC: qmp - a small QEMU Machine Protocol client
 *
 * QMP is line-delimited JSON over a unix socket: QEMU sends a greeting
 * ({"QMP": {"version": ...}}), we negotiate with qmp_capabilities, then each
 * command {"execute": ..., "arguments": ..., "id": N} is answered by a
 * {"return": ...} or {"error": {"class", "desc"}} carrying the same id, while
 * asynchronous {"event": ...} messages may arrive at any time, including
 * between a command and its reply.
 *
 * The monitor's bytes are treated as untrusted: QEMU runs the guest, and
 * event data carries guest-influenced strings.  Lines are bounded
 * (QMP_LINE_MAX; a longer one breaks the connection with -E2BIG), each is
 * parsed by json_loadb() with its length, and every message is checked for
 * the fields and types we use before anything is read from it (-EPROTO
 * otherwise).  Once a connection is broken (EOF, framing or protocol error,
 * a write timeout) every later call returns the same error: the stream can
 * no longer be trusted to be in sync, and the caller falls back to killing
 * QEMU.
 *
 * Two ways to use it, meant to be mixed in one poll() loop:
 *  - synchronous: qmp_command() and the helpers wait for their reply with a
 *    timeout; events read meanwhile are queued, never lost, and dispatched
 *    to the event callback just before qmp_command() returns;
 *  - asynchronous: poll qmp_fd() for POLLIN, then call qmp_process(), which
 *    reads what is available and dispatches complete events.
 *
 * Not thread-safe: one struct qmp is used by one thread.  The event callback
 * may call qmp_command() but must not call qmp_close().
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Longest line accepted from the monitor, "\r\n" included */
#define QMP_LINE_MAX (1024 * 1024)

/* Events queued while no callback runs; beyond this only known events are kept */
#define QMP_EVENT_QUEUE_SOFT 1024
/* Hard cap: past it every event is dropped (with a warning) */
#define QMP_EVENT_QUEUE_HARD 16384

struct qmp;

/**
 * enum qmp_event_kind - events the supervisor acts on; the rest are OTHER
 */
enum qmp_event_kind {
	QMP_EV_OTHER = 0,
	QMP_EV_SHUTDOWN,	/* QEMU is going down (guest poweroff, quit, signal) */
	QMP_EV_POWERDOWN,	/* system_powerdown reached the guest's ACPI */
	QMP_EV_STOP,		/* vCPUs stopped */
	QMP_EV_RESUME,		/* vCPUs running again */
	QMP_EV_RESET,		/* guest reset */
	QMP_EV_GUEST_PANICKED,	/* pvpanic or Hyper-V crash report */
	QMP_EV_SUSPEND,		/* guest entered S3 */
	QMP_EV_WAKEUP,		/* guest left S3 */
	QMP_EV_WATCHDOG,	/* watchdog fired */
	QMP_EV_BLOCK_IO_ERROR,	/* disk I/O error (e.g. host disk full) */
	QMP_EV_DEVICE_DELETED,	/* hot-unplug done */
};

/**
 * struct qmp_event - one event, as handed to the callback
 * @kind:     known event, or QMP_EV_OTHER
 * @name:     the raw event name (untrusted: escape before printing)
 * @data:     the "data" object, or NULL when the event has none; borrowed,
 *            valid during the callback only (json_incref() to keep it)
 * @ts_sec:   QEMU's timestamp, seconds (0 if absent)
 * @ts_usec:  and microseconds
 */
struct qmp_event {
	enum qmp_event_kind kind;
	const char *name;
	json_t *data;
	int64_t ts_sec;
	int64_t ts_usec;
};

/**
 * typedef qmp_event_cb - called once per event, in arrival order
 * @q:      the connection
 * @ev:     the event (borrowed)
 * @opaque: what was given to qmp_set_event_cb()
 */
typedef void (*qmp_event_cb)(struct qmp *q, const struct qmp_event *ev, void *opaque);

/**
 * enum qmp_runstate - QEMU's RunState, as reported by query-status
 */
enum qmp_runstate {
	QMP_RS_OTHER = 0,	/* a state this client does not know */
	QMP_RS_DEBUG,
	QMP_RS_INMIGRATE,
	QMP_RS_INTERNAL_ERROR,
	QMP_RS_IO_ERROR,
	QMP_RS_PAUSED,
	QMP_RS_POSTMIGRATE,
	QMP_RS_PRELAUNCH,
	QMP_RS_FINISH_MIGRATE,
	QMP_RS_RESTORE_VM,
	QMP_RS_RUNNING,
	QMP_RS_SAVE_VM,
	QMP_RS_SHUTDOWN,
	QMP_RS_SUSPENDED,
	QMP_RS_WATCHDOG,
	QMP_RS_GUEST_PANICKED,
	QMP_RS_COLO,
};

/**
 * qmp_connect() - connect to QEMU's QMP socket and negotiate capabilities
 * @path:       the unix socket path (QEMU's -qmp unix:PATH,server=on,wait=off)
 * @timeout_ms: total time allowed for connecting, the greeting and the
 *              qmp_capabilities reply; negative waits forever
 * @qp:         set to the new connection on success; the caller owns it and
 *              frees it with qmp_close()
 *
 * QEMU creates the socket a moment after it starts, so ENOENT and
 * ECONNREFUSED are retried until the timeout.
 *
 * Return: 0, or a negative errno: -ETIMEDOUT, -ENAMETOOLONG (path does not
 * fit in sun_path), -EPROTO (no valid greeting), -ECONNRESET, -EIO (QEMU
 * refused qmp_capabilities), or the errno of socket/connect.
 */
int qmp_connect(const char *path, int timeout_ms, struct qmp **qp);

/**
 * qmp_open_fd() - like qmp_connect() on an already-connected stream socket
 * @fd:         a connected SOCK_STREAM socket; ownership passes to the new
 *              connection on success only (on failure the caller still owns
 *              it).  It is made non-blocking and close-on-exec.
 * @timeout_ms: time allowed for the greeting and qmp_capabilities
 * @qp:         set to the new connection on success
 *
 * Return: 0, or a negative errno as for qmp_connect()
 */
int qmp_open_fd(int fd, int timeout_ms, struct qmp **qp);

/**
 * qmp_close() - close the socket, drop queued events, free everything
 * @q: the connection, or NULL.  Never call it from the event callback.
 */
void qmp_close(struct qmp *q);

/**
 * qmp_fd() - the socket, to poll() for POLLIN; then call qmp_process()
 * @q: the connection
 *
 * Return: the fd (still owned by @q)
 */
int qmp_fd(const struct qmp *q);

/**
 * qmp_set_event_cb() - where events go
 * @q:      the connection
 * @cb:     callback, or NULL to keep events queued (up to the queue bounds)
 * @opaque: passed back to @cb
 *
 * Events received before a callback is set (e.g. during qmp_connect())
 * stay queued and are dispatched by the next qmp_process() or
 * qmp_command().
 */
void qmp_set_event_cb(struct qmp *q, qmp_event_cb cb, void *opaque);

/**
 * qmp_get_event_cb() - the callback set now (NULL: none), and its @opaque
 *
 * For a caller that holds events back for a while (qmp_set_event_cb(q,
 * NULL, NULL)) and then restores the owner's callback.
 */
qmp_event_cb qmp_get_event_cb(const struct qmp *q, void **opaque);

/**
 * qmp_process() - read what the monitor has sent, dispatch complete events
 * @q: the connection
 *
 * Never blocks.  Reads a bounded amount per call (so a flooding monitor
 * cannot starve the caller's poll loop); if more is pending, the fd stays
 * readable.  Events read before an EOF or a protocol error are dispatched
 * before that error is returned, so a SHUTDOWN followed by QEMU exiting is
 * never lost.  Replies no command waits for (e.g. one that arrived after
 * its command timed out) are logged and dropped.
 *
 * Return: 0, or a negative errno: -ECONNRESET (QEMU closed the socket),
 * -E2BIG (a line over QMP_LINE_MAX), -EPROTO (a malformed message); the
 * connection is then broken.
 */
int qmp_process(struct qmp *q);

/**
 * qmp_pending() - whether queued events wait for a callback
 * @q: the connection
 *
 * Return: the number of queued, undispatched events
 */
size_t qmp_pending(const struct qmp *q);

/**
 * qmp_command() - run one QMP command and wait for its reply
 * @q:          the connection
 * @name:       the command ("query-status"); sent as a JSON string, so any
 *              bytes are safe
 * @args:       the "arguments" object, or NULL; borrowed (not stolen)
 * @reply:      if not NULL, set on success to the "return" value (a new
 *              reference, the caller json_decref()s it)
 * @timeout_ms: how long to wait for the reply; negative waits forever
 *
 * Each command gets a unique, increasing id, and only the reply carrying it
 * is taken: a late reply to an earlier, timed-out command is logged and
 * ignored, so replies can never be attributed to the wrong command.  Events
 * that arrive meanwhile are queued and dispatched before this returns
 * (whatever it returns), after the reply has been taken.
 *
 * Return: 0; -EIO when QEMU answered with an error (its class and desc are
 * then available from qmp_last_error()); -ETIMEDOUT; -ECONNRESET on EOF;
 * -E2BIG, -EPROTO on a bad stream; -EINVAL if @args is not an object.
 */
int qmp_command(struct qmp *q, const char *name, json_t *args, json_t **reply, int timeout_ms);

/* Commands sent with qmp_command_async() and not answered yet, at most */
#define QMP_ASYNC_MAX 8
/* qmp_command_async() waits at most this long for the command to go out */
#define QMP_ASYNC_SEND_MS 1000

/**
 * typedef qmp_reply_cb - the reply to an asynchronous command
 * @q:      the connection
 * @rc:     0, -EIO (QEMU answered with an error: qmp_last_error() says
 *          which, until the next command), -ETIMEDOUT, or the errno that
 *          broke the connection (-ECONNRESET also when it is closed)
 * @ret:    the "return" value when @rc is 0 (borrowed), else NULL
 * @opaque: as given
 */
typedef void (*qmp_reply_cb)(struct qmp *q, int rc, json_t *ret, void *opaque);

/**
 * qmp_command_async() - send a command; its reply goes to @cb later
 * @q, @name, @args: as for qmp_command()
 * @timeout_ms: after this long without a reply, @cb gets -ETIMEDOUT
 *              (from qmp_async_expire()); a later reply is then dropped
 * @cb:     called exactly once, from qmp_process(), qmp_command(),
 *          qmp_async_expire() or qmp_close(); may be NULL
 *
 * For a caller with its own poll loop (the supervisor): nothing waits, so
 * DHCP, DNS and the console go on while QEMU answers.  Replies are matched
 * by id like qmp_command()'s; the callback runs after the events that came
 * before the reply were dispatched.
 * Return: 0 (sent), -EBUSY (QMP_ASYNC_MAX commands in flight), or an errno
 */
int qmp_command_async(struct qmp *q, const char *name, json_t *args, int timeout_ms,
		      qmp_reply_cb cb, void *opaque);

/** qmp_async_next_ms() - ms until the earliest async deadline (for poll()), -1: none */
int qmp_async_next_ms(const struct qmp *q);

/** qmp_async_expire() - fail the async commands whose deadline passed (-ETIMEDOUT) */
void qmp_async_expire(struct qmp *q);

/**
 * qmp_command_fd() - qmp_command() that passes @fd to QEMU with the command
 * @fd: sent as SCM_RIGHTS with the command's first byte (the socket must be
 *      AF_UNIX); -1 for none.  The caller keeps its copy and closes it.
 *
 * For "getfd" and "add-fd": QEMU takes the fd it received with the command.
 * Return: as qmp_command()
 */
int qmp_command_fd(struct qmp *q, const char *name, json_t *args, int fd, json_t **reply,
		   int timeout_ms);

/**
 * qmp_last_error() - the error class and description of the last -EIO
 * @q:    the connection
 * @desc: if not NULL, set to the description ("" if none)
 *
 * Both strings are stored escaped (log_escape()), so they are safe to print
 * as they are; they stay valid until the next command.
 *
 * Return: the class ("GenericError", "CommandNotFound", ...), or NULL when
 * the last command did not fail with a QMP error
 */
const char *qmp_last_error(const struct qmp *q, const char **desc);

/**
 * qmp_version() - QEMU's version from the greeting
 * @q:     the connection
 * @major: set to the major version (may be NULL)
 * @minor: set to the minor version (may be NULL)
 * @micro: set to the micro version (may be NULL)
 *
 * Return: the "package" string, escaped (often ""), valid until qmp_close()
 */
const char *qmp_version(const struct qmp *q, int *major, int *minor, int *micro);

/**
 * qmp_event_name() - the QMP name of a known event kind
 * @kind: the kind
 *
 * Return: "SHUTDOWN", ..., or "OTHER"
 */
const char *qmp_event_name(enum qmp_event_kind kind);

/**
 * qmp_runstate_name() - QEMU's name of a run state ("running", "paused"...)
 * @st: the state
 *
 * Return: a static string; "unknown" for QMP_RS_OTHER
 */
const char *qmp_runstate_name(enum qmp_runstate st);

/**
 * qmp_query_status() - query-status: is the guest running, paused, shut down
 * @q:          the connection
 * @st:         set to the run state (QMP_RS_OTHER for a state we do not know)
 * @name:       if not NULL, set to QEMU's name for it, escaped
 * @namesz:     size of @name; -ENAMETOOLONG if it does not fit
 * @timeout_ms: as for qmp_command()
 *
 * Return: 0, or a negative errno as for qmp_command(); -EPROTO if the reply
 * has no "status" string
 */
int qmp_query_status(struct qmp *q, enum qmp_runstate *st, char *name, size_t namesz,
		     int timeout_ms);

/**
 * qmp_system_powerdown() - ask the guest to power off (ACPI power button)
 * @q:          the connection
 * @timeout_ms: for QEMU's acknowledgement, not for the guest to shut down:
 *              wait for QMP_EV_SHUTDOWN for that
 *
 * Return: 0, or a negative errno as for qmp_command()
 */
int qmp_system_powerdown(struct qmp *q, int timeout_ms);

/**
 * qmp_stop() - pause the vCPUs (a STOP event follows)
 * @q:          the connection
 * @timeout_ms: as for qmp_command()
 *
 * Return: 0, or a negative errno as for qmp_command()
 */
int qmp_stop(struct qmp *q, int timeout_ms);

/**
 * qmp_cont() - resume the vCPUs (a RESUME event follows)
 * @q:          the connection
 * @timeout_ms: as for qmp_command()
 *
 * Return: 0, or a negative errno as for qmp_command()
 */
int qmp_cont(struct qmp *q, int timeout_ms);

/**
 * qmp_quit() - make QEMU exit now (a SHUTDOWN event, then EOF)
 * @q:          the connection
 * @timeout_ms: as for qmp_command()
 *
 * QEMU may close the socket before its reply is read; that EOF counts as
 * success, since QEMU going away is what was asked for.
 *
 * Return: 0, or a negative errno as for qmp_command()
 */
int qmp_quit(struct qmp *q, int timeout_ms);

/* ---- warm start: fds, hotplug, migration --------------------------- */

/**
 * typedef qmp_event_match - does this event's data match what is waited for
 * @data: the event's "data" object, or NULL; borrowed, untrusted
 * @arg:  as given to qmp_wait_event()
 */
typedef bool (*qmp_event_match)(const json_t *data, void *arg);

/**
 * qmp_event_arm() - start watching for one event of @kind (and @match)
 * @q:     the connection
 * @kind:  the event kind waited for
 * @match: further test on its data, or NULL for any event of @kind
 * @arg:   for @match
 *
 * Arm before the command that causes the event: QEMU may send the event in
 * the same read as the command's reply, and qmp_command() dispatches it.
 * Then qmp_event_wait().  One watch at a time; arming again replaces it.
 */
void qmp_event_arm(struct qmp *q, enum qmp_event_kind kind, qmp_event_match match, void *arg);

/**
 * qmp_event_wait() - wait until the armed event has arrived, then disarm
 * @q:          the connection
 * @timeout_ms: how long to wait; negative waits forever
 *
 * Every event read meanwhile, the awaited one included, still goes to the
 * event callback, in order, before this returns.
 *
 * Return: 0, -ETIMEDOUT, -EINVAL when nothing was armed, or the error that
 * broke the connection
 */
int qmp_event_wait(struct qmp *q, int timeout_ms);

/**
 * qmp_getfd() - hand @fd to QEMU under @fdname (QMP "getfd", SCM_RIGHTS)
 * @q:          the connection (over a unix socket)
 * @fdname:     the name "fd:NAME" URIs and "closefd" use
 * @fd:         the fd; the caller keeps and closes its own copy
 * @timeout_ms: as for qmp_command()
 *
 * Return: 0, or a negative errno as for qmp_command()
 */
int qmp_getfd(struct qmp *q, const char *fdname, int fd, int timeout_ms);

/** qmp_closefd() - drop a named fd QEMU got with qmp_getfd() and did not use */
int qmp_closefd(struct qmp *q, const char *fdname, int timeout_ms);

/**
 * qmp_migrate() - start an outgoing migration ("fd:NAME" after qmp_getfd());
 * it runs in the background: poll qmp_query_migrate() until it ends
 */
int qmp_migrate(struct qmp *q, const char *uri, int timeout_ms);

/**
 * qmp_migrate_incoming() - load the migration stream of @uri into a QEMU
 * started with "-incoming defer"; runs in the background like qmp_migrate()
 * (on the destination, query-migrate reports the incoming side's status)
 */
int qmp_migrate_incoming(struct qmp *q, const char *uri, int timeout_ms);

/** enum qmp_mig_status - QEMU's MigrationStatus (OTHER: a value we do not know) */
enum qmp_mig_status {
	QMP_MIG_OTHER = 0,
	QMP_MIG_NONE,		/* no migration ran */
	QMP_MIG_SETUP,
	QMP_MIG_ACTIVE,
	QMP_MIG_DEVICE,
	QMP_MIG_COMPLETED,
	QMP_MIG_FAILED,
	QMP_MIG_CANCELLING,
	QMP_MIG_CANCELLED,
	QMP_MIG_PRE_SWITCHOVER,
	QMP_MIG_WAIT_UNPLUG,
};

/**
 * struct qmp_migrate_info - what query-migrate said
 * @status:          the status (QMP_MIG_NONE when no migration ran)
 * @ram_total:       guest RAM in bytes (0 if not reported)
 * @ram_transferred: bytes sent so far
 * @error:           "error-desc" when it failed, escaped ("" if none)
 */
struct qmp_migrate_info {
	enum qmp_mig_status status;
	uint64_t ram_total;
	uint64_t ram_transferred;
	char error[256];
};

/**
 * qmp_query_migrate() - status of the running or last migration
 * Return: 0 with @info filled, -EPROTO for a reply of the wrong shape, or a
 * negative errno as for qmp_command()
 */
int qmp_query_migrate(struct qmp *q, struct qmp_migrate_info *info, int timeout_ms);

/** qmp_migrate_status_name() - QEMU's name of @st ("completed", ...) */
const char *qmp_migrate_status_name(enum qmp_mig_status st);

/**
 * qmp_device_add() - hot-plug a device
 * @props: {"driver": ..., "id": ..., ...} as for -device; borrowed
 * Return: 0, -EINVAL without a driver, or as for qmp_command()
 */
int qmp_device_add(struct qmp *q, json_t *props, int timeout_ms);

/**
 * qmp_device_del() - ask for the unplug of device @id
 *
 * The guest has to let go first: wait for QMP_EV_DEVICE_DELETED whose
 * data "device" is @id (qmp_wait_event()) before relying on it.
 */
int qmp_device_del(struct qmp *q, const char *id, int timeout_ms);

/**
 * qmp_block_device() - the device name of the drive whose image is @file
 * @file: the image path exactly as QEMU was given it; NULL for the one
 *        writable drive (when QEMU got its image as "/dev/fdset/N")
 * @dev:  set to the name ("virtio0"), for block commands' "device"
 * Return: 0, -ENOENT when no drive matches, -ENOTUNIQ when @file is NULL
 * and more than one drive is writable, -EPROTO, or as for qmp_command()
 */
int qmp_block_device(struct qmp *q, const char *file, char *dev, size_t n, int timeout_ms);

#endif
